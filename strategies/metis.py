"""MetisTuner: NNI's Metis (GP + GMM candidate selection), on our own GP core.

classArgs (NNI defaults): ``optimize_mode='maximize'``, ``no_resampling=True``,
``no_candidates=False``, ``selection_num_starting_points=600``, ``cold_start_num=10``,
``exploration_probability=0.9``, plus ``seed``.
Search space: numeric choice, randint, uniform, quniform (NNI's support matrix).

One suggestion, as in NNI's ``MetisTuner._selection``:

1. Cold start: the first ``cold_start_num`` suggestions are random.
2. Fit a GP to the results (values to minimise).  ``lm`` = the point of lowest predicted mean.
3. Unless ``no_candidates``: candidates are
   * exploration: the point of lowest confidence bound (mean − 1.96·std);
   * exploitation: the best of ``selection_num_starting_points`` samples from a Gaussian
     mixture fitted to the good results, scored by log p_good − log p_bad (GMM on the best
     third vs the rest);
   * re-sampling (only when ``no_resampling=False``): observed points whose result the GP,
     fitted without them, finds improbable (|z| > 2), at most once more each.
   The candidate of largest expected improvement is ``next`` (NNI scores by the drop of the
   lowest mean after refitting with the candidate fantasised; see the comment in the code).
4. With probability ``exploration_probability``, or if ``lm`` was already tried, the
   suggestion is ``next`` (random when there is none); otherwise it is ``lm``.

Simplifications against NNI (documented in docs/decisions/tuners-bo.md): our GP core and
batched optimiser replace scikit-learn GPR with 600 L-BFGS-B starts; running trials are
excluded from the candidates and fantasised at the best value seen, so parallel suggestions
differ.  NNI's "predicted optimum" log line is kept as ``self.predicted_optimum``.
"""
from __future__ import annotations

import warnings

import numpy as np

from ._bo_acq import _is_excluded, maximize_acquisition
from ._bo_base import UnitCubeTuner, check_bool, check_float, check_int
from ._gp_core import GaussianProcess, OutputTransform, expected_improvement, lower_confidence_bound

METIS_TYPES = ("choice", "randint", "uniform", "quniform")
MAX_POOL = 2000
# A random restart of the hyperparameter fit helps with few points; later the prior mode suffices.
RESTART_UNTIL = 60
RESAMPLE_Z = 2.0
CONFIDENCE_Z = 1.96


class MetisTuner(UnitCubeTuner):
    """Metis: GP exploitation/exploration plus GMM candidates; see the module docstring."""

    algorithm_name = "MetisTuner"
    supported_types = METIS_TYPES

    def __init__(self, optimize_mode: str = "maximize", no_resampling: bool = True, no_candidates: bool = False,
                 selection_num_starting_points: int = 600, cold_start_num: int = 10,
                 exploration_probability: float = 0.9, seed: int | None = None):
        super().__init__(optimize_mode, seed)
        self.no_resampling = check_bool("no_resampling", no_resampling)
        self.no_candidates = check_bool("no_candidates", no_candidates)
        self.selection_num_starting_points = check_int("selection_num_starting_points",
                                                       selection_num_starting_points, 1)
        self.cold_start_num = check_int("cold_start_num", cold_start_num, 0)
        p = check_float("exploration_probability", exploration_probability, 0.0)
        if p > 1.0:
            raise ValueError(f"exploration_probability must be in [0, 1], got {exploration_probability!r}")
        self.exploration_probability = p
        self.predicted_optimum: dict | None = None
        self.last_reason: str | None = None

    def _suggest(self, rng: np.random.Generator) -> np.ndarray:
        n = len(self._loss)
        if n < max(self.cold_start_num, 2):
            self.last_reason = "cold start"
            return self._random_point(rng)
        X = self._X
        transform = OutputTransform(self._loss)
        y = transform(self._loss)
        gp = GaussianProcess(self.space.dim)
        gp.fit(X, y, rng, n_restarts=1 if n <= RESTART_UNTIL else 0)
        post = gp.condition(X, y)
        pending = self.pending_points
        post_p = post.with_fantasies(pending, float(y.min()))
        exclude = np.vstack([X, pending])
        n_pool = min(self.selection_num_starting_points, MAX_POOL)
        anchors = X[np.argsort(y)[:5]]

        # lm: lowest predicted mean (allowed to be an observed point: that is the signal to explore).
        lm = maximize_acquisition(lambda U: -post_p.predict(U)[0], self.space, rng, anchors=anchors,
                                  exclude=pending, n_pool=n_pool)
        self.predicted_optimum = self.space.decode(lm)
        if self.no_candidates:
            self.last_reason = "exploitation (lowest mean)"
            return lm

        candidates: list[tuple[str, np.ndarray]] = []
        # Exploration: the lowest confidence bound mu - 1.96 sigma.
        explore = maximize_acquisition(lambda U: lower_confidence_bound(*post_p.predict(U), CONFIDENCE_Z),
                                       self.space, rng, anchors=anchors, exclude=exclude, n_pool=n_pool)
        candidates.append(("exploration", explore))
        gmm_point = self._gmm_candidate(X, y, exclude, rng, n_pool)
        if gmm_point is not None:
            candidates.append(("exploitation (GMM)", gmm_point))
        if not self.no_resampling:
            candidates += [("resampling", u) for u in self._outliers(gp, X, y)]

        nxt, reason = None, None
        if candidates:
            # NNI refits the GP with each candidate fantasised at its predicted mean and keeps
            # the one whose lowest mean drops most.  With fixed hyperparameters that fantasy
            # leaves the mean unchanged, so we score by expected improvement instead.
            best = float(y.min())
            U = np.array([u for _, u in candidates])
            ei = expected_improvement(*post_p.predict(U), best)
            k = int(np.argmax(ei))
            reason, nxt = candidates[k]
        lm_tried = bool(_is_excluded(lm[None], exclude)[0])
        if lm_tried or rng.uniform() <= self.exploration_probability:
            if nxt is None:
                self.last_reason = "random"
                return self._random_point(rng)
            self.last_reason = reason
            return nxt
        self.last_reason = "exploitation (lowest mean)"
        return lm

    def _gmm_candidate(self, X, y, exclude, rng, n_samples):
        """Sample from a GMM of the good third, keep the best good/bad density ratio."""
        from sklearn.mixture import GaussianMixture

        order = np.argsort(y)
        n_good = max(2, len(y) // 3)
        good, bad = X[order[:n_good]], X[order[n_good:]]
        if len(bad) < 2:
            return None
        seed = int(rng.integers(2 ** 31))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            g = GaussianMixture(n_components=min(3, len(good) // 2 or 1), reg_covar=1e-3, random_state=seed).fit(good)
            b = GaussianMixture(n_components=min(3, len(bad) // 2 or 1), reg_covar=1e-3, random_state=seed).fit(bad)
        S = self.space.snap(g.sample(n_samples)[0])
        score = g.score_samples(S) - b.score_samples(S)
        score[_is_excluded(S, exclude)] = -np.inf
        i = int(np.argmax(score))
        return S[i] if np.isfinite(score[i]) else None

    def _outliers(self, gp, X, y) -> list[np.ndarray]:
        """Observed points that a GP fitted without them predicts badly (at most one re-run each)."""
        out = []
        for i in range(len(y)):
            if np.sum(np.all(np.abs(X - X[i]) < 1e-9, axis=1)) > 1:
                continue  # already re-sampled
            keep = np.arange(len(y)) != i
            mu, sd = gp.condition(X[keep], y[keep]).predict(X[i][None])
            if abs(y[i] - mu[0]) / sd[0] > RESAMPLE_Z:
                out.append(X[i].copy())
        return out[:3]
