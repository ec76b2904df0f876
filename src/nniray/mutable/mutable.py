"""NNI 3.0's space model (``nni.mutable``): search-space dimensions as objects.

A :class:`Mutable` is something that becomes a concrete value once every decision it depends
on is known.  Decisions are identified by *labels*; a *sample* is a plain dict
``{label: value}``.  The leaves (:class:`Categorical`, :class:`CategoricalMultiple`,
:class:`Numerical`) each own one label; :class:`MutableExpression` (arithmetic on leaves),
:class:`MutableDict` and :class:`MutableList` are built from them.

* ``simplify()`` lists the leaves by label (one decision per label: two leaves with the same
  label must be the same dimension, else :class:`DuplicateLabelError` names the label);
* ``freeze(sample)`` gives the concrete value, raising :class:`SampleMissingError` (a KeyError
  that names the missing and the known labels) or :class:`SampleValidationError`;
* ``contains(sample)`` says whether a sample is legal;
* ``random()``, ``default()`` and ``grid()`` produce samples.

The same objects describe an HPO search space (see :mod:`nniray.mutable.search_space` for the
JSON format both ways) and the choices of a NAS model space.
"""
from __future__ import annotations

import itertools
import math
import operator
from typing import Any, Callable, Iterable, Iterator, Sequence

import numpy as np

__all__ = [
    "Sample", "Mutable", "LabeledMutable", "Categorical", "CategoricalMultiple", "Numerical",
    "MutableExpression", "MutableDict", "MutableList", "SampleValidationError", "SampleMissingError",
    "DuplicateLabelError", "MISSING",
]

Sample = dict


class _Missing:
    def __repr__(self) -> str:
        return "MISSING"


MISSING: Any = _Missing()


class SampleValidationError(ValueError):
    """A sample that does not fit the space; the message names the label."""


class SampleMissingError(SampleValidationError, KeyError):
    """A label the sample has no value for.  A KeyError, so ``except KeyError`` works."""

    def __init__(self, label: str, known: Iterable[str]):
        self.label = label
        self.known = sorted(str(k) for k in known)
        super().__init__(f"no value for label {label!r} in the sample; the sample has: "
                         f"{', '.join(map(repr, self.known)) or 'no labels'}")

    def __str__(self) -> str:  # KeyError would print the repr of the message
        return self.args[0]


class DuplicateLabelError(ValueError):
    """Two different dimensions under one label."""


def _rng(random_state: Any) -> np.random.RandomState:
    if isinstance(random_state, np.random.RandomState):
        return random_state
    return np.random.RandomState(random_state)


class Mutable:
    """Base of everything that can be frozen by a sample."""

    # -- to implement ---------------------------------------------------------------------
    def leaf_mutables(self, is_leaf: Callable[["Mutable"], bool] | None = None) -> Iterator["LabeledMutable"]:
        raise NotImplementedError  # abstract

    def freeze(self, sample: Sample) -> Any:
        raise NotImplementedError  # abstract

    # -- derived --------------------------------------------------------------------------
    def simplify(self, is_leaf: Callable[["Mutable"], bool] | None = None) -> dict[str, "LabeledMutable"]:
        """The leaves by label.  Shared labels are one decision; they must agree."""
        out: dict[str, LabeledMutable] = {}
        for leaf in self.leaf_mutables(is_leaf):
            prev = out.get(leaf.label)
            if prev is None:
                out[leaf.label] = leaf
            elif prev is not leaf and not prev.equals(leaf):
                raise DuplicateLabelError(
                    f"label {leaf.label!r} is used by two different choices: {prev!r} and {leaf!r}; a shared label "
                    f"means a shared decision, so give them the same candidates or different labels")
        return out

    def check_contains(self, sample: Sample) -> SampleValidationError | None:
        """The reason ``sample`` is not legal here, or None."""
        try:
            self.freeze(sample)
        except SampleValidationError as e:
            return e
        return None

    def contains(self, sample: Sample) -> bool:
        return self.check_contains(sample) is None

    def validate(self, sample: Sample) -> None:
        err = self.check_contains(sample)
        if err is not None:
            raise err

    def random(self, memo: Sample | None = None, random_state: Any = None) -> Any:
        """A random concrete value; ``memo`` receives (and may pre-set) the decisions."""
        memo = {} if memo is None else memo
        rng = _rng(random_state)
        for leaf in _active_leaves(self, memo, lambda m: m._random_value(rng)):
            pass
        return self.freeze(memo)

    def default(self, memo: Sample | None = None) -> Any:
        memo = {} if memo is None else memo
        for _ in _active_leaves(self, memo, lambda m: m._default_value()):
            pass
        return self.freeze(memo)

    def grid(self, memo: Sample | None = None) -> Iterator[Any]:
        """Every concrete value of a finite space, in order (the last label changes fastest)."""
        for sample in grid_samples(self.simplify(), memo):
            yield self.freeze(sample)

    def equals(self, other: Any) -> bool:
        return self is other


def _active_leaves(mutable: Mutable, memo: Sample, pick: Callable[["LabeledMutable"], Any]) -> Iterator["LabeledMutable"]:
    """Decide every leaf that the frozen value depends on.  Conditional leaves (inside a
    chosen option of a :class:`Categorical`) are decided only when their branch is active."""
    for leaf in mutable.leaf_mutables(lambda m: isinstance(m, LabeledMutable)):
        if leaf.label not in memo:
            memo[leaf.label] = pick(leaf)
        yield leaf
        if isinstance(leaf, Categorical):
            chosen = leaf.freeze_value(memo[leaf.label])
            if isinstance(chosen, Mutable):
                yield from _active_leaves(chosen, memo, pick)


def grid_samples(space: dict[str, "LabeledMutable"], memo: Sample | None = None) -> Iterator[Sample]:
    """Every sample of a finite space ``{label: leaf}`` (as from ``simplify()``)."""
    memo = dict(memo or {})
    labels = [k for k in space if k not in memo]
    domains = []
    for k in labels:
        values = space[k].grid_values()
        domains.append(values)
    for combo in itertools.product(*domains):
        s = dict(memo)
        s.update(zip(labels, combo))
        yield s


def auto_label_hint() -> str:
    from .label import auto_label
    return auto_label()


class _Symbolic:
    """Arithmetic on mutables builds :class:`MutableExpression` (NNI 3.0 behaviour; NNI 2.x
    refused it)."""

    def _bin(self, op: Callable, other: Any, reverse: bool = False) -> "MutableExpression":
        args = [other, self] if reverse else [self, other]
        return MutableExpression(op, args)

    def __add__(self, o): return self._bin(operator.add, o)
    def __radd__(self, o): return self._bin(operator.add, o, True)
    def __sub__(self, o): return self._bin(operator.sub, o)
    def __rsub__(self, o): return self._bin(operator.sub, o, True)
    def __mul__(self, o): return self._bin(operator.mul, o)
    def __rmul__(self, o): return self._bin(operator.mul, o, True)
    def __truediv__(self, o): return self._bin(operator.truediv, o)
    def __rtruediv__(self, o): return self._bin(operator.truediv, o, True)
    def __floordiv__(self, o): return self._bin(operator.floordiv, o)
    def __rfloordiv__(self, o): return self._bin(operator.floordiv, o, True)
    def __mod__(self, o): return self._bin(operator.mod, o)
    def __rmod__(self, o): return self._bin(operator.mod, o, True)
    def __pow__(self, o): return self._bin(operator.pow, o)
    def __rpow__(self, o): return self._bin(operator.pow, o, True)
    def __lt__(self, o): return self._bin(operator.lt, o)
    def __le__(self, o): return self._bin(operator.le, o)
    def __gt__(self, o): return self._bin(operator.gt, o)
    def __ge__(self, o): return self._bin(operator.ge, o)
    def __neg__(self): return MutableExpression(operator.neg, [self])
    def __abs__(self): return MutableExpression(operator.abs, [self])

    def __getitem__(self, key: Any) -> "MutableExpression":
        return MutableExpression(operator.getitem, [self, key])

    # Equality stays identity (mutables are dict keys and set members); use ``.eq()``.
    __hash__ = object.__hash__

    def eq(self, other: Any) -> "MutableExpression":
        return MutableExpression(operator.eq, [self, other])

    # A mutable has no truth value until frozen: refuse ``if choice:`` / ``int(choice)`` clearly.
    def __bool__(self) -> bool:
        raise TypeError(f"{self!r} has no value until an architecture/sample is chosen; use it as an argument of "
                        f"a nniray.nas.nn module, or freeze it (nniray.mutable.ensure_frozen / fixed_arch)")


class LabeledMutable(Mutable):
    """A leaf: one decision, under :attr:`label`."""

    label: str

    def leaf_mutables(self, is_leaf: Callable[[Mutable], bool] | None = None) -> Iterator["LabeledMutable"]:
        yield self

    def _random_value(self, rng: np.random.RandomState) -> Any:
        raise NotImplementedError  # abstract

    def _default_value(self) -> Any:
        raise NotImplementedError  # abstract

    def grid_values(self) -> list:
        raise SampleValidationError(f"label {self.label!r}: {type(self).__name__} is continuous and has no grid; "
                                    f"quantize it or use a Categorical")

    def _get(self, sample: Sample) -> Any:
        if self.label not in sample:
            raise SampleMissingError(self.label, sample.keys())
        return sample[self.label]


def _check_label(label: str | None) -> str:
    if label is None:
        return auto_label_hint()
    if not isinstance(label, str) or not label:
        raise ValueError(f"label must be a non-empty string, got {label!r}")
    return label


class Categorical(_Symbolic, LabeledMutable):
    """One of ``values`` (NNI's ``choice``).  ``weights`` is the sampling prior."""

    def __init__(self, values: Iterable[Any], *, weights: Sequence[float] | None = None, default: Any = MISSING,
                 label: str | None = None) -> None:
        values = list(values)
        self.label = _check_label(label)
        if not values:
            raise ValueError(f"label {self.label!r}: candidates are empty; give at least one")
        self.values = values
        if weights is not None:
            weights = [float(w) for w in weights]
            if len(weights) != len(values) or any(w < 0 for w in weights) or not math.isclose(sum(weights), 1.0,
                                                                                               rel_tol=1e-6):
                raise ValueError(f"label {self.label!r}: prior/weights must be {len(values)} non-negative numbers "
                                 f"summing to 1, got {weights}")
        self.weights = weights
        if default is not MISSING and not any(_same(default, v) for v in values):
            raise ValueError(f"label {self.label!r}: default {default!r} is not one of {values!r}")
        self.default_value = default

    def __repr__(self) -> str:
        return f"Categorical({self.values!r}, label={self.label!r})"

    def leaf_mutables(self, is_leaf=None):
        yield self
        if is_leaf is None:  # conditional leaves inside options (nested spaces)
            for v in self.values:
                if isinstance(v, Mutable):
                    yield from v.leaf_mutables(is_leaf)

    def freeze_value(self, chosen: Any) -> Any:
        """The option for a sampled value (options that are nested spaces are sampled by name)."""
        for v in self.values:
            if _same(v, chosen) or (isinstance(v, MutableDict) and v.get("_name") == chosen):
                return v
        raise SampleValidationError(f"label {self.label!r}: {chosen!r} is not one of the candidates {self._shown()}")

    def _shown(self) -> list:
        return [v.get("_name") if isinstance(v, MutableDict) else v for v in self.values]

    def freeze(self, sample: Sample) -> Any:
        chosen = self.freeze_value(self._get(sample))
        return chosen.freeze(sample) if isinstance(chosen, Mutable) else chosen

    def _random_value(self, rng):
        idx = rng.choice(len(self.values), p=self.weights)
        return self._sample_of(self.values[int(idx)])

    def _default_value(self):
        return self.default_value if self.default_value is not MISSING else self._sample_of(self.values[0])

    @staticmethod
    def _sample_of(v: Any) -> Any:
        return v.get("_name") if isinstance(v, MutableDict) else v

    def grid_values(self) -> list:
        return [self._sample_of(v) for v in self.values]

    def equals(self, other: Any) -> bool:
        # a ValueChoice and an nniray.choice with the same label and values are one decision
        return (isinstance(other, Categorical) and isinstance(self, Categorical) and other.label == self.label
                and len(other.values) == len(self.values) and all(_same(a, b) for a, b in zip(self.values, other.values)))


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, Mutable) or isinstance(b, Mutable):
        return a is b or (isinstance(a, Mutable) and a.equals(b))
    try:
        return type(a) is type(b) and bool(a == b) or (_num(a) and _num(b) and a == b)
    except Exception:  # noqa: BLE001 - e.g. tensors: compare by identity
        return a is b


def _num(x: Any) -> bool:
    return isinstance(x, (int, float, np.integer, np.floating)) and not isinstance(x, bool)


class CategoricalMultiple(_Symbolic, LabeledMutable):
    """Several of ``values``: exactly ``n_chosen`` distinct ones, or any subset when
    ``n_chosen`` is None.  The sample is the list of chosen values in candidate order."""

    def __init__(self, values: Iterable[Any], *, n_chosen: int | None = None, weights: Sequence[float] | None = None,
                 default: Any = MISSING, label: str | None = None) -> None:
        self.values = list(values)
        self.label = _check_label(label)
        if not self.values:
            raise ValueError(f"label {self.label!r}: candidates are empty; give at least one")
        if n_chosen is not None and not (isinstance(n_chosen, int) and 0 <= n_chosen <= len(self.values)):
            raise ValueError(f"label {self.label!r}: n_chosen must be None or 0..{len(self.values)}, got {n_chosen!r}")
        self.n_chosen = n_chosen
        self.weights = list(weights) if weights is not None else None
        self.default_value = default

    def __repr__(self) -> str:
        return f"CategoricalMultiple({self.values!r}, n_chosen={self.n_chosen!r}, label={self.label!r})"

    def freeze(self, sample: Sample) -> list:
        chosen = self._get(sample)
        if not isinstance(chosen, (list, tuple)):
            raise SampleValidationError(f"label {self.label!r}: expects a list of chosen candidates, got {chosen!r}")
        for c in chosen:
            if not any(_same(c, v) for v in self.values):
                raise SampleValidationError(f"label {self.label!r}: {c!r} is not one of the candidates {self.values!r}")
        if len({repr(c) for c in chosen}) != len(chosen):
            raise SampleValidationError(f"label {self.label!r}: chosen candidates repeat: {list(chosen)!r}")
        if self.n_chosen is not None and len(chosen) != self.n_chosen:
            raise SampleValidationError(f"label {self.label!r}: expects {self.n_chosen} chosen, got {list(chosen)!r}")
        return list(chosen)

    def _random_value(self, rng):
        n = len(self.values)
        if self.n_chosen is None:
            mask = rng.rand(n) < 0.5
            return [v for v, m in zip(self.values, mask) if m]
        p = None
        if self.weights is not None:
            p = np.asarray(self.weights, dtype=float)
            p = p / p.sum()
        idx = sorted(rng.choice(n, size=self.n_chosen, replace=False, p=p).tolist())
        return [self.values[i] for i in idx]

    def _default_value(self):
        if self.default_value is not MISSING:
            return self.default_value
        return list(self.values[: self.n_chosen]) if self.n_chosen is not None else list(self.values)

    def grid_values(self) -> list:
        n = len(self.values)
        sizes = [self.n_chosen] if self.n_chosen is not None else range(n + 1)
        return [[self.values[i] for i in combo] for k in sizes for combo in itertools.combinations(range(n), k)]

    def equals(self, other: Any) -> bool:
        return (type(other) is type(self) and other.label == self.label and other.n_chosen == self.n_chosen
                and len(other.values) == len(self.values) and all(_same(a, b) for a, b in zip(self.values, other.values)))


class Numerical(_Symbolic, LabeledMutable):
    """A number: uniform in [low, high] (log-uniform with ``log_distributed``), or normal
    (``mu``, ``sigma``, log-normal with ``log_distributed``), optionally rounded to multiples of
    ``quantize``; ``integer`` makes it NNI's ``randint`` (low inclusive, high exclusive)."""

    def __init__(self, low: float = float("-inf"), high: float = float("inf"), *, mu: float | None = None,
                 sigma: float | None = None, log_distributed: bool = False, quantize: float | None = None,
                 integer: bool = False, default: Any = MISSING, label: str | None = None) -> None:
        self.label = _check_label(label)
        self.low, self.high, self.mu, self.sigma = low, high, mu, sigma
        self.log_distributed, self.quantize, self.integer = log_distributed, quantize, integer
        self.is_normal = mu is not None
        if self.is_normal:
            if sigma is None or not sigma > 0:
                raise ValueError(f"label {self.label!r}: sigma must be > 0, got {sigma!r}")
        else:
            if not low < high:
                raise ValueError(f"label {self.label!r}: needs low < high, got [{low}, {high}]")
            if log_distributed and not low > 0:
                raise ValueError(f"label {self.label!r}: a log distribution needs 0 < low, got {low}")
        if quantize is not None and not quantize > 0:
            raise ValueError(f"label {self.label!r}: quantize must be > 0, got {quantize!r}")
        self.default_value = default

    def __repr__(self) -> str:
        if self.is_normal:
            return f"Numerical(mu={self.mu}, sigma={self.sigma}, log={self.log_distributed}, label={self.label!r})"
        kind = "randint" if self.integer else ("loguniform" if self.log_distributed else "uniform")
        return f"Numerical({self.low}, {self.high}, {kind}, q={self.quantize}, label={self.label!r})"

    def _q(self, x: float) -> float:
        if self.quantize:
            x = round(x / self.quantize) * self.quantize
            if not self.is_normal:
                x = min(max(x, self.low), self.high)
        return x

    def freeze(self, sample: Sample) -> float | int:
        v = self._get(sample)
        if not _num(v):
            raise SampleValidationError(f"label {self.label!r}: expects a number, got {v!r}")
        if not self.is_normal:
            hi_ok = v < self.high if self.integer else v <= self.high
            if not (self.low <= v and hi_ok):
                rng = f"[{self.low}, {self.high})" if self.integer else f"[{self.low}, {self.high}]"
                raise SampleValidationError(f"label {self.label!r}: {v!r} is outside {rng}")
        if self.integer and int(v) != v:
            raise SampleValidationError(f"label {self.label!r}: expects an integer, got {v!r}")
        return int(v) if self.integer else v

    def _random_value(self, rng):
        if self.integer:
            return int(rng.randint(int(self.low), int(self.high)))
        if self.is_normal:
            x = rng.normal(self.mu, self.sigma)
            x = math.exp(min(x, 709.0)) if self.log_distributed else x
        elif self.log_distributed:
            x = math.exp(rng.uniform(math.log(self.low), math.log(self.high)))
        else:
            x = rng.uniform(self.low, self.high)
        return float(self._q(x))

    def _default_value(self):
        if self.default_value is not MISSING:
            return self.default_value
        if self.integer:
            return int(self.low)
        if self.is_normal:
            return float(self._q(math.exp(self.mu) if self.log_distributed else self.mu))
        mid = math.sqrt(self.low * self.high) if self.log_distributed else (self.low + self.high) / 2
        return float(self._q(mid))

    def grid_values(self) -> list:
        if self.integer:
            return list(range(int(self.low), int(self.high)))
        if self.quantize and not self.is_normal:
            n = int(math.floor((self.high - self.low) / self.quantize + 1e-9))
            return sorted({float(self._q(self.low + i * self.quantize)) for i in range(n + 1)} | {float(self.high)})
        return super().grid_values()

    def equals(self, other: Any) -> bool:
        keys = ("label", "low", "high", "mu", "sigma", "log_distributed", "quantize", "integer")
        return type(other) is type(self) and all(getattr(self, k) == getattr(other, k) for k in keys)


def _freeze_any(value: Any, sample: Sample) -> Any:
    return value.freeze(sample) if isinstance(value, Mutable) else value


def _leaves_of(values: Iterable[Any], is_leaf) -> Iterator[LabeledMutable]:
    for v in values:
        if isinstance(v, Mutable):
            yield from v.leaf_mutables(is_leaf)


class MutableExpression(_Symbolic, Mutable):
    """``function(*arguments)`` where some arguments are mutables; frozen by freezing them."""

    def __init__(self, function: Callable[..., Any], arguments: Sequence[Any], repr_template: str | None = None):
        self.function = function
        self.arguments = list(arguments)
        self.repr_template = repr_template

    def leaf_mutables(self, is_leaf=None):
        yield from _leaves_of(self.arguments, is_leaf)

    def freeze(self, sample: Sample) -> Any:
        return self.function(*[_freeze_any(a, sample) for a in self.arguments])

    def __repr__(self) -> str:
        name = getattr(self.function, "__name__", repr(self.function))
        return f"{name}({', '.join(map(repr, self.arguments))})"

    def equals(self, other: Any) -> bool:
        return (isinstance(other, MutableExpression) and other.function is self.function
                and len(other.arguments) == len(self.arguments)
                and all(_same(a, b) for a, b in zip(self.arguments, other.arguments)))

    # NNI 3.0's helpers for what Python operators cannot express
    @staticmethod
    def max(*args: Any) -> "MutableExpression":
        return MutableExpression(_max, list(args))

    @staticmethod
    def min(*args: Any) -> "MutableExpression":
        return MutableExpression(_min, list(args))

    @staticmethod
    def condition(pred: Any, true: Any, false: Any) -> "MutableExpression":
        return MutableExpression(_cond, [pred, true, false])

    @staticmethod
    def to_int(x: Any) -> "MutableExpression":
        return MutableExpression(int, [x])

    @staticmethod
    def to_float(x: Any) -> "MutableExpression":
        return MutableExpression(float, [x])


def _max(*a):
    return max(a)


def _min(*a):
    return min(a)


def _cond(p, t, f):
    return t if p else f


class MutableDict(Mutable, dict):
    """A dict whose values may be mutables; frozen value by value."""

    def leaf_mutables(self, is_leaf=None):
        yield from _leaves_of(self.values(), is_leaf)

    def freeze(self, sample: Sample) -> dict:
        return {k: _freeze_any(v, sample) for k, v in self.items()}

    def equals(self, other: Any) -> bool:
        return (isinstance(other, MutableDict) and list(other.keys()) == list(self.keys())
                and all(_same(self[k], other[k]) for k in self))

    __hash__ = object.__hash__
    __eq__ = object.__eq__


class MutableList(Mutable, list):
    """A list whose items may be mutables."""

    def leaf_mutables(self, is_leaf=None):
        yield from _leaves_of(self, is_leaf)

    def freeze(self, sample: Sample) -> list:
        return [_freeze_any(v, sample) for v in self]

    def equals(self, other: Any) -> bool:
        return isinstance(other, MutableList) and len(other) == len(self) and all(map(_same, self, other))

    __hash__ = object.__hash__
    __eq__ = object.__eq__
