"""The one interface every base learner has.

A learner is a frozen, hashable dataclass (static under ``jax.jit``) with

* ``task``: ``"regression"`` or ``"classification"``;
* ``hyper()``: a dict of arrays holding the numbers a user may sweep or vmap over;
* ``fit(key, X, y, weight, hyper=None) -> params``: a pure function returning a pytree;
* ``predict(params, X) -> (n,)``: a mean for regression, ``P(y = 1 | x)`` for classification.

Ridge-type learners also offer ``crossfit_predict(key, X, y, weight, folds, hyper)
-> (prediction, used_hyper)``, a fast path that builds every fold's fit from one pass over
the data and reports the hyper-parameters each fold's fit used (per-fold arrays).
"""
from __future__ import annotations

from typing import Any, Protocol

import jax
import jax.numpy as jnp

from mrjax._typing import Array, Hyper, PRNGKey


class Learner(Protocol):
    task: str

    def hyper(self) -> dict[str, Array]: ...

    def fit(self, key: PRNGKey, X: Array, y: Array, weight: Array, hyper: Hyper | None = None) -> Any: ...

    def predict(self, params: Any, X: Array) -> Array: ...


def check_xyw(X: Array, y: Array, weight: Array) -> None:
    """Shape checks at trace time: ``X (n, d)``, ``y (n,)``, ``weight (n,)``."""
    if X.ndim != 2:
        raise ValueError(f"X: expected shape (n, d), got {X.shape}")
    n = X.shape[0]
    if y.shape != (n,):
        raise ValueError(f"y: expected shape ({n},) to match X {X.shape}, got {y.shape}")
    if weight.shape != (n,):
        raise ValueError(f"weight: expected shape ({n},) to match X {X.shape}, got {weight.shape}")


def used_hyper(hyper: dict, params: Any) -> dict:
    """``hyper`` with what a fit chose for itself (a selected penalty, learned length-scales, a chosen
    candidate), so that a refit with it holds that tuning fixed."""
    if hasattr(params, "used"):
        return params.used(hyper)
    if "penalty" in hyper and hasattr(params, "penalty"):
        return {**hyper, "penalty": params.penalty}
    return hyper


def positive_first(key: PRNGKey, weight: Array) -> tuple[Array, Array]:
    """A random order of the rows with the positive-weight rows first, and how many there are."""
    u = jax.random.uniform(key, weight.shape) + (weight <= 0)
    return jnp.argsort(u), jnp.sum(weight > 0)


def window(order: Array, count: Array, t: Array, size: int) -> tuple[Array, Array]:
    """Window ``t`` of ``size`` rows, cycling through the first ``count`` rows of ``order`` (:func:`positive_first`),
    and a 0/1 mask that is 0 on repeats when ``count < size``: consecutive windows visit every positive row once
    before any twice, from one sort instead of one draw per window."""
    c = jnp.maximum(count, 1)
    rows = order[(t * size % c + jnp.arange(size)) % c]
    return rows, (jnp.arange(size) < count)


def weighted_mean(v: Array, w: Array) -> Array:
    """The weighted mean of ``v`` over its rows (0 where the weights sum to 0). Fits take it out of the labels
    (and a linear model out of its features) before any sum of squares: an offset far above the spread would
    otherwise cancel in float32 (``Σ w y² − Σw · ȳ²``), and the unpenalised intercept takes it back exactly."""
    sw = jnp.sum(w)
    return jnp.matmul(w, v, precision="highest") / jnp.where(sw > 0, sw, 1.0)
