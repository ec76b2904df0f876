"""DNGOTuner: Deep Networks for Global Optimization (Snoek et al., 2015), NNI's ``DNGOTuner``.

classArgs (NNI defaults): ``optimize_mode='maximize'``, ``sample_size=1000`` (candidates
scored per suggestion), ``trials_per_update=20`` (results between network retrainings),
``num_epochs_per_training=500``, plus ``seed``.
Search space: numeric choice, randint, uniform, quniform, loguniform, qloguniform.

Model: an MLP (3 hidden layers of 50 tanh units, as in the paper) fitted to the
standardised, power-transformed values to minimise; Bayesian linear regression on the last
hidden layer's features (plus a bias) gives the predictive mean and variance in closed form,
with the prior precision α and noise precision β chosen by maximising the marginal
likelihood.  The suggestion maximises expected improvement over ``sample_size`` candidates
(half uniform, half perturbations of the best points) polished by a short L-BFGS-B run.

Schedule (docs/decisions/tuners-bo.md): random suggestions until ``min(10,
trials_per_update)`` results; the network is then trained on the first ``c0 + k ·
trials_per_update`` results (k = 0, 1, ...), full-batch Adam for ``num_epochs_per_training``
steps (a few hundred ms); the Bayesian layer is refitted on *all* results at every
suggestion, so new results count immediately.  Which network is used depends only on the
results (not on the call history), so ``import_data`` resumes exactly.  torch is imported
lazily and runs on one thread.
"""
from __future__ import annotations

import math

import numpy as np
from scipy import linalg, optimize

from ._bo_acq import maximize_acquisition
from ._bo_base import UnitCubeTuner, check_int
from ._gp_core import OutputTransform, log_expected_improvement

DNGO_TYPES = ("choice", "randint", "uniform", "quniform", "loguniform", "qloguniform")
HIDDEN = 50
FIRST_TRAINING = 10


class BayesianLinearRegression:
    """Closed-form BLR on fixed features with α, β from the marginal likelihood."""

    def __init__(self, Phi: np.ndarray, y: np.ndarray):
        self.Phi, self.y = Phi, y
        res = optimize.minimize(lambda v: -self._log_ml(*np.exp(v)), x0=np.log([1.0, 100.0]),
                                method="L-BFGS-B", bounds=[(-10, 10), (-5, 15)])
        self.alpha, self.beta = np.exp(res.x)
        self._posterior(Phi, y)

    def _log_ml(self, alpha: float, beta: float) -> float:
        N, D = self.Phi.shape
        A = beta * self.Phi.T @ self.Phi + alpha * np.eye(D)
        try:
            L = linalg.cholesky(A, lower=True, check_finite=False)
        except linalg.LinAlgError:
            return -1e10
        m = beta * linalg.cho_solve((L, True), self.Phi.T @ self.y, check_finite=False)
        r = self.y - self.Phi @ m
        return float(0.5 * D * math.log(alpha) + 0.5 * N * math.log(beta) - 0.5 * beta * r @ r
                     - 0.5 * alpha * m @ m - np.log(np.diag(L)).sum() - 0.5 * N * math.log(2 * math.pi))

    def _posterior(self, Phi: np.ndarray, y: np.ndarray) -> None:
        D = Phi.shape[1]
        A = self.beta * Phi.T @ Phi + self.alpha * np.eye(D)
        self.L = linalg.cholesky(A, lower=True, check_finite=False)
        self.m = self.beta * linalg.cho_solve((self.L, True), Phi.T @ y, check_finite=False)

    def with_fantasies(self, Phi_p: np.ndarray, value: float) -> "BayesianLinearRegression":
        """Constant liar for running trials (α, β kept)."""
        if len(Phi_p) == 0:
            return self
        out = object.__new__(BayesianLinearRegression)
        out.alpha, out.beta = self.alpha, self.beta
        out.Phi = np.vstack([self.Phi, Phi_p])
        out.y = np.concatenate([self.y, np.full(len(Phi_p), value)])
        out._posterior(out.Phi, out.y)
        return out

    def predict(self, Phi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        mu = Phi @ self.m
        V = linalg.solve_triangular(self.L, Phi.T, lower=True, check_finite=False)
        return mu, np.sqrt(1.0 / self.beta + (V * V).sum(0))


class DNGOTuner(UnitCubeTuner):
    """DNGO: neural-network features + Bayesian linear regression; see the module docstring."""

    algorithm_name = "DNGOTuner"
    supported_types = DNGO_TYPES

    def __init__(self, optimize_mode: str = "maximize", sample_size: int = 1000, trials_per_update: int = 20,
                 num_epochs_per_training: int = 500, seed: int | None = None):
        super().__init__(optimize_mode, seed)
        self.sample_size = check_int("sample_size", sample_size, 1)
        self.trials_per_update = check_int("trials_per_update", trials_per_update, 1)
        self.num_epochs_per_training = check_int("num_epochs_per_training", num_epochs_per_training, 1)
        self._net = None
        self._net_key = None

    # -- schedule ------------------------------------------------------------------------
    @property
    def first_training(self) -> int:
        return min(FIRST_TRAINING, self.trials_per_update)

    def training_size(self, n: int) -> int:
        """How many of the first results the network in use was trained on (0: none yet)."""
        c0 = self.first_training
        if n < c0:
            return 0
        return c0 + ((n - c0) // self.trials_per_update) * self.trials_per_update

    # -- model ---------------------------------------------------------------------------
    def _network(self, T: int):
        """The network trained on the first T results (cached; retrained when they change)."""
        key = (T, self._X[:T].tobytes(), self._loss[:T].tobytes(), self.space.dim)
        if self._net_key != key:
            self._net = self._train(self._X[:T], OutputTransform(self._loss[:T])(self._loss[:T]), T)
            self._net_key = key
        return self._net

    def _train(self, X: np.ndarray, y: np.ndarray, T: int):
        import torch

        torch.set_num_threads(1)
        gen = torch.Generator().manual_seed(int(np.random.SeedSequence([self.seed, T]).generate_state(1)[0]))
        d = X.shape[1]
        body = torch.nn.Sequential(
            torch.nn.Linear(d, HIDDEN), torch.nn.Tanh(),
            torch.nn.Linear(HIDDEN, HIDDEN), torch.nn.Tanh(),
            torch.nn.Linear(HIDDEN, HIDDEN), torch.nn.Tanh())
        head = torch.nn.Linear(HIDDEN, 1)
        with torch.no_grad():  # seeded initialisation, independent of the global torch RNG
            for layer in list(body) + [head]:
                if isinstance(layer, torch.nn.Linear):
                    bound = 1.0 / math.sqrt(layer.in_features)
                    layer.weight.copy_(torch.rand(layer.weight.shape, generator=gen) * 2 * bound - bound)
                    layer.bias.copy_(torch.rand(layer.bias.shape, generator=gen) * 2 * bound - bound)
        params = list(body.parameters()) + list(head.parameters())
        opt = torch.optim.Adam(params, lr=1e-2, weight_decay=1e-4)
        Xt = torch.as_tensor(X, dtype=torch.float64).float()
        yt = torch.as_tensor(y, dtype=torch.float64).float()[:, None]
        for _ in range(self.num_epochs_per_training):  # full batch: n is small
            opt.zero_grad()
            loss = torch.mean((head(body(Xt)) - yt) ** 2)
            loss.backward()
            opt.step()
        body.eval()
        return body

    def _features(self, net, U: np.ndarray) -> np.ndarray:
        import torch

        with torch.no_grad():
            F = net(torch.as_tensor(np.asarray(U), dtype=torch.float32)).numpy().astype(float)
        return np.hstack([F, np.ones((len(F), 1))])

    # -- suggestion ----------------------------------------------------------------------
    def _suggest(self, rng: np.random.Generator) -> np.ndarray:
        n = len(self._loss)
        T = self.training_size(n)
        if T < 2:
            return self._random_point(rng)
        net = self._network(T)
        y = OutputTransform(self._loss)(self._loss)
        X = self._X
        blr = BayesianLinearRegression(self._features(net, X), y)
        pending = self.pending_points
        best = float(y.min())
        if len(pending):
            blr = blr.with_fantasies(self._features(net, pending), best)

        def acq(U):
            return log_expected_improvement(*blr.predict(self._features(net, U)), best)

        return maximize_acquisition(acq, self.space, rng, anchors=X[np.argsort(y)[:5]],
                                    exclude=np.vstack([X, pending]), n_pool=self.sample_size,
                                    n_starts=2, maxiter=30)
