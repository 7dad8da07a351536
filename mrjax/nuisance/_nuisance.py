"""Propensity ``P(gold | x)`` and outcome regressions ``E[o | x]``, ``μ_1``, ``μ_0``."""
from __future__ import annotations

from typing import NamedTuple

import jax.numpy as jnp

from mrjax._typing import Array, Hyper, PRNGKey
from mrjax.data._dataset import Dataset
from mrjax.data._folds import Folds
from mrjax.learners._base import Learner
from mrjax.learners._crossfit import crossfit_predict


class PropensityInfo(NamedTuple):
    """Diagnostics of the propensity ``p̂(x)`` on the training rows.

    Attributes
    ----------
    n_clipped : () int array, rows whose raw p̂ fell outside ``[low, high]``.
    min_propensity, max_propensity : () arrays, range of the raw (unclipped) p̂.
    n_extreme : () int array, rows whose raw p̂ is 0 or 1 to float precision (no overlap
        there: the model itself failed; clipping hides it).
    convergence : () array, the learner's convergence diagnostic (see ``crossfit.convergence``).
    n_nonfinite : () int array, rows whose raw p̂ is NaN or infinite.
    histogram : (2, 10) weighted counts of the raw p̂ in ten bins of [0, 1], gold rows then preference
        rows (the overlap at a glance: where the sources share no bin, their labels cannot be compared).
    ess : (2,) Kish effective sample sizes of the inverse-propensity weights (clipped p̂) of the gold rows
        (``w/p̂``) and the preference rows (``w/(1 − p̂)``); far below the row counts means a few rows
        carry the bias estimate.
    """

    n_clipped: Array
    min_propensity: Array
    max_propensity: Array
    n_extreme: Array
    convergence: Array
    n_nonfinite: Array = 0
    histogram: Array = ()
    ess: Array = ()


def fit_propensity(
    key: PRNGKey,
    data: Dataset,
    learner: Learner | None,
    folds: Folds | None,
    clip: Array,
    hyper: Hyper | None = None,
    known: Array | None = None,
) -> tuple[Array, PropensityInfo]:
    """Cross-fitted (or known) propensity of a gold label, clipped to ``clip``.

    Parameters
    ----------
    learner : a classification Learner, or None for a known propensity.
    clip : (2,) array ``[low, high]``, user-controlled; clipped rows are counted.
    known : () or (n,) array, optional
        The propensity when it is known by design. With ``learner=None`` and no
        ``known``, the weighted share of gold rows is used — the right value when the
        gold rows were drawn at random (``n / (n + m)``).

    Returns
    -------
    propensity : (n,) array in ``[low, high]``
    info : PropensityInfo
    """
    n = data.label.shape[0]
    if learner is None:
        if known is None:
            raw = jnp.full((n,), jnp.sum(data.weight * data.is_gold) / jnp.sum(data.weight))
        else:
            raw = jnp.broadcast_to(jnp.asarray(known, data.label.dtype), (n,))
        conv = jnp.zeros((), data.label.dtype)
    else:
        if learner.task != "classification":
            raise ValueError(f"the propensity learner must be a classifier, got task {learner.task!r}")
        raw, conv, _ = crossfit_predict(learner, key, data.features, data.is_gold, data.weight, folds, hyper)
    low, high = clip[0], clip[1]
    clipped = jnp.clip(raw, low, high)
    eps = jnp.finfo(raw.dtype).eps
    gold, w = data.is_gold > 0.5, data.weight
    bins = jnp.clip(jnp.floor(jnp.where(jnp.isfinite(raw), raw, 0.0) * 10), 0, 9).astype(jnp.int32)
    hist = jnp.stack([jnp.zeros((10,), w.dtype).at[bins].add(jnp.where(g, w, 0.0)) for g in (gold, ~gold)])
    ess = lambda v: jnp.sum(v) ** 2 / jnp.maximum(jnp.sum(v**2), 1e-30)  # noqa: E731
    info = PropensityInfo(
        n_clipped=jnp.sum((raw < low) | (raw > high)),
        min_propensity=jnp.min(raw),
        max_propensity=jnp.max(raw),
        n_extreme=jnp.sum((raw <= eps) | (raw >= 1 - eps) | ~jnp.isfinite(raw)),
        convergence=conv,
        n_nonfinite=jnp.sum(~jnp.isfinite(raw)),
        histogram=hist,
        ess=jnp.stack([ess(jnp.where(gold, w / clipped, 0.0)), ess(jnp.where(gold, 0.0, w / (1 - clipped)))]),
    )
    return clipped, info


def fit_outcome(
    key: PRNGKey,
    data: Dataset,
    learner: Learner,
    folds: Folds | None,
    arm: str = "all",
    hyper: Hyper | None = None,
) -> tuple[Array, Hyper]:
    """Cross-fitted outcome regression on every row.

    ``arm="all"`` gives the marginal mean ``m̂(x) = E[o | x]`` (R-learner);
    ``"gold"`` gives ``μ̂_1(x)`` (fitted on gold rows); ``"preference"`` gives ``μ̂_0(x)``.
    Arms are selected by weights, not indexing, so shapes stay fixed.

    Returns
    -------
    prediction : (n,) array
    used : the hyper-parameters the fits used (see ``crossfit_predict``).
    """
    if learner.task != "regression":
        raise ValueError(f"the outcome learner must be a regressor, got task {learner.task!r}")
    weight = {"all": data.weight, "gold": data.weight * data.is_gold, "preference": data.weight * (1 - data.is_gold)}
    if arm not in weight:
        raise ValueError(f"arm must be 'all', 'gold' or 'preference', got {arm!r}")
    pred, _, used = crossfit_predict(learner, key, data.features, data.label, weight[arm], folds, hyper)
    return pred, used
