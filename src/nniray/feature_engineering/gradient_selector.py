"""NNI's ``FeatureGradientSelector`` (its docs: "GradientFeatureSelector"): feature selection
by gradient descent on a relaxed feature mask, after Feature Gradients (Grover et al.).

Each feature ``j`` gets a gate ``g_j = sigmoid(theta_j)``.  On mini-batches of the
(z-scored) data, the selector maximises the centred kernel-target alignment between a
polynomial kernel of the gated features, ``K = (1 + <x * g, x' * g> / d) ** order``, and the
target kernel (same class for classification, balanced by class frequency when ``balanced``;
the product of z-scored targets for regression or ``ordinal``), minus ``penalty * sum(g) / d**2``.
A gate stays open when its feature makes samples of one class (or of close targets) look
alike; the penalty closes the others.  ``get_selected_features()`` returns the ``n_features``
columns with the largest gates (or, without ``n_features``, those whose gate is above 1/2, at
most ``max_features``), best first.

NNI's constructor arguments are all accepted; ``target_batch_size``, ``soft_grouping`` and
``groups`` are NNI's memory/grouping knobs and have no effect here (documented in
docs/decisions/hpo-surface.md).  Torch runs on ``device`` (default 'cpu').
"""
from __future__ import annotations

import math
import time
from typing import Any

import numpy as np

from .feature_selector import FeatureSelector, FeatureSelectorError, check_k, check_xy


class FeatureGradientSelector(FeatureSelector):
    def __init__(self, order: int = 4, penalty: float = 1, n_features: int | None = None,
                 max_features: int | None = None, learning_rate: float = 1e-1, init: str = "zero",
                 n_epochs: int = 1, shuffle: bool = True, batch_size: int = 1000, target_batch_size: int = 1000,
                 max_time: float = np.inf, classification: bool = True, ordinal: bool = False,
                 balanced: bool = True, preprocess: str = "zscore", soft_grouping: bool = False,
                 verbose: int = 0, device: str = "cpu", seed: int = 0) -> None:
        super().__init__()
        if isinstance(order, bool) or not isinstance(order, int) or order < 1:
            raise FeatureSelectorError(f"order must be a positive integer, got {order!r}")
        if not (isinstance(penalty, (int, float)) and penalty >= 0):
            raise FeatureSelectorError(f"penalty must be a number >= 0, got {penalty!r}")
        if not (isinstance(learning_rate, (int, float)) and learning_rate > 0):
            raise FeatureSelectorError(f"learning_rate must be a positive number, got {learning_rate!r}")
        if init not in ("zero", "on", "off", "onhigh", "offhigh", "sklearn", "first", "last"):
            raise FeatureSelectorError(f"init must be 'zero', 'on' or 'off' (NNI's names), got {init!r}")
        if preprocess not in ("zscore", "center", None, "none"):
            raise FeatureSelectorError(f"preprocess must be 'zscore', 'center' or None, got {preprocess!r}")
        for name, v in (("n_epochs", n_epochs), ("batch_size", batch_size)):
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise FeatureSelectorError(f"{name} must be a positive integer, got {v!r}")
        self.order, self.penalty, self.n_features, self.max_features = order, float(penalty), n_features, max_features
        self.learning_rate, self.init, self.n_epochs, self.shuffle = float(learning_rate), init, n_epochs, shuffle
        self.batch_size, self.target_batch_size, self.max_time = batch_size, target_batch_size, max_time
        self.classification, self.ordinal, self.balanced = classification, ordinal, balanced
        self.preprocess, self.soft_grouping, self.verbose, self.device = preprocess, soft_grouping, verbose, device
        self.seed = seed
        self.gates_: np.ndarray | None = None

    # the minimum number of optimisation steps, whatever n_epochs * batches is: a few steps
    # leave every gate near its initial value
    MIN_STEPS = 150

    def fit(self, X: Any, y: Any, groups: Any = None) -> "FeatureGradientSelector":
        import torch

        X, y = check_xy(X, y)
        n, d = X.shape
        if self.n_features is not None:
            check_k("n_features", self.n_features, d)
        if self.max_features is not None:
            check_k("max_features", self.max_features, d)
        if self.preprocess in ("zscore", "center"):
            X = X - X.mean(axis=0)
            if self.preprocess == "zscore":
                std = X.std(axis=0)
                X = X / np.where(std > 0, std, 1.0)
        gen = torch.Generator().manual_seed(int(self.seed))
        Xt = torch.tensor(X, dtype=torch.float32, device=self.device)
        target = self._target_matrix_factory(y, torch)
        theta0 = {"zero": 0.0, "on": 2.0, "onhigh": 4.0, "off": -2.0, "offhigh": -4.0}.get(self.init, 0.0)
        theta = torch.full((d,), theta0, dtype=torch.float32, device=self.device, requires_grad=True)
        opt = torch.optim.Adam([theta], lr=self.learning_rate)
        batch = min(self.batch_size, n)
        per_epoch = math.ceil(n / batch)
        steps = max(self.n_epochs * per_epoch, self.MIN_STEPS)
        started = time.monotonic()
        order = torch.randperm(n, generator=gen) if self.shuffle else torch.arange(n)
        for step in range(steps):
            if time.monotonic() - started > self.max_time:
                break
            k = step % per_epoch
            if k == 0 and step and self.shuffle:
                order = torch.randperm(n, generator=gen)
            idx = order[k * batch:(k + 1) * batch]
            if len(idx) < 2:
                idx = order[:batch]
            gates = torch.sigmoid(theta)
            xb = Xt[idx] * gates
            kx = (1 + xb @ xb.T / d) ** self.order
            ky = target(idx)
            # penalty per open gate, in alignment units / d: penalty 1 closes a gate whose
            # feature adds less than 1/d to the alignment
            loss = -_alignment(kx, ky) + self.penalty * gates.sum() / (d * d)
            opt.zero_grad()
            loss.backward()
            opt.step()
        self.gates_ = torch.sigmoid(theta).detach().cpu().numpy()
        ranked = [int(i) for i in np.argsort(-self.gates_, kind="stable")]
        if self.n_features is not None:
            self.selected_features_ = ranked[:self.n_features]
        else:
            chosen = [i for i in ranked if self.gates_[i] > 0.5] or ranked[:1]
            self.selected_features_ = chosen[:self.max_features] if self.max_features else chosen
        self.X, self.y = X, y
        return self

    def _target_matrix_factory(self, y: np.ndarray, torch: Any):
        if self.classification and not self.ordinal:
            classes, codes = np.unique(y, return_inverse=True)
            onehot = np.eye(len(classes), dtype=np.float32)[codes]
            if self.balanced:  # each class weighs the same, whatever its frequency
                onehot = onehot / np.sqrt(onehot.sum(axis=0, keepdims=True))
            t = torch.tensor(onehot, device=self.device)
            return lambda idx: t[idx] @ t[idx].T
        try:
            yf = np.asarray(y, dtype=np.float64)
        except (TypeError, ValueError):
            raise FeatureSelectorError("y must be numeric for regression or ordinal targets "
                                       "(classification=False or ordinal=True)") from None
        yf = (yf - yf.mean()) / (yf.std() or 1.0)
        t = torch.tensor(yf, dtype=torch.float32, device=self.device)[:, None]
        return lambda idx: t[idx] @ t[idx].T


def _centre(k: Any) -> Any:
    # H K H with H = I - 11^T/n, in O(n^2) instead of two matrix products
    return k - k.mean(dim=0, keepdim=True) - k.mean(dim=1, keepdim=True) + k.mean()


def _alignment(kx: Any, ky: Any) -> Any:
    """Centred kernel-target alignment <HKxH, HKyH> / (|HKxH| |HKyH|)."""
    kxc, kyc = _centre(kx), _centre(ky)
    return (kxc * kyc).sum() / (kxc.norm() * kyc.norm() + 1e-12)


GradientFeatureSelector = FeatureGradientSelector
