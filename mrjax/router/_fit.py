"""The Meta-Router and its baselines: fit the quality gain ψ(x) of the primary model.

Meta-Router (arXiv 2509.25535): scale the preference labels, estimate the bias Δ̂
with a CATE meta-learner, debias the preference labels ``y + Δ̂(x)``, and fit ψ̂ on
the gold rows plus the debiased preference rows, the latter weighted by λ.

Baselines (same learner, same scaling): ``golden`` (gold rows only), ``preference``
(raw preference rows only), ``pooled`` (gold ∪ raw preference, the usual practice),
``mean_shift`` (preference labels shifted by the mean gold − preference gap),
``all_golden`` (gold labels on every training row: an infeasible oracle).
"""
from __future__ import annotations

import dataclasses
from typing import NamedTuple

import jax
import jax.numpy as jnp

from mrjax._typing import Array, PRNGKey
from mrjax.cate._cate import CateConfig, CateHyper, CateInfo, default_cate_hyper, fit_cate, fit_keys, predict_bias
from mrjax.data._dataset import Dataset, Standardizer, check_standardize, fit_standardizer, standardize
from mrjax.data._folds import make_folds
from mrjax.data._scale import SCALE_METHODS, ScaleMethod, scale_constant
from mrjax.learners._base import Learner, used_hyper
from mrjax.learners._linear import RandomFeatureRidge
from mrjax.router._metrics import routing_area

METHODS = ("meta", "golden", "preference", "pooled", "mean_shift", "all_golden")
CV_GRID = (0.0, 0.1, 0.3, 1.0)  # a default grid for ``preference_weight_grid``
CV_CRITERIA = ("squared_error", "routing")


@dataclasses.dataclass(frozen=True)
class RouterConfig:
    """Static description of a quality-gain fit.

    Attributes
    ----------
    method : one of ``METHODS``; ``"meta"`` is the Meta-Router.
    cate : CateConfig for the bias (used by ``"meta"`` only).
    quality_learner : regressor for ψ̂.
    scale : scale normalisation of the preference labels (see ``data.scale_constant``).
    standardize : centre and scale features with the training rows' weighted moments
        (label-free) before any learner sees them: ``True`` scales each feature to unit
        variance, ``"common"`` divides all by one common scale (relative scales kept; for
        principal components of embeddings, see ``data.fit_standardizer``), ``False`` leaves
        features as given.
    preference_weight_grid : optional candidate λ values (static tuple). When given, λ
        is chosen per fit by K-fold cross-validated loss on the gold rows (``cv_criterion``)
        (each fold's gold rows held out of the whole pipeline, every candidate fitted
        on the rest) and ``hyper.preference_weight`` is ignored: the fit learns when
        to stop borrowing preference labels (λ = 0 is Golden-only with the same learner).
    cv_folds : folds of that cross-validation.
    cv_criterion : what the cross-validation scores on the held-out gold rows:
        ``"squared_error"`` (regression error of ψ̂) or ``"routing"`` (the held-out rows'
        efficiency-gain area: rank them by ψ̂, integrate the gain of routing the top share
        over the usage grid, minus a random router's, stopping where ψ̂ ≤ 0 — the
        evaluation protocol with gold labels for the truth; see ``routing_area``).
    """

    method: str = "meta"
    cate: CateConfig = CateConfig()
    quality_learner: Learner = RandomFeatureRidge()
    scale: ScaleMethod = "variance"
    standardize: bool | str = True
    preference_weight_grid: tuple[float, ...] | None = None
    cv_folds: int = 5
    cv_criterion: str = "squared_error"

    def __post_init__(self):
        if self.method not in METHODS:
            raise ValueError(f"method must be one of {METHODS}, got {self.method!r}")
        check_standardize(self.standardize)
        if self.scale not in SCALE_METHODS:
            raise ValueError(f"scale must be one of {SCALE_METHODS}, got {self.scale!r}")
        if self.quality_learner.task != "regression":
            raise ValueError("quality_learner must be a regressor")
        if self.preference_weight_grid is not None:
            grid = tuple(float(v) for v in self.preference_weight_grid)
            if len(grid) < 2 or any(not (v >= 0 and v < float("inf")) for v in grid):
                raise ValueError(f"preference_weight_grid needs at least 2 finite values >= 0, got {self.preference_weight_grid}")
            if self.method in ("golden", "preference", "all_golden"):
                raise ValueError(f"method {self.method!r} has no preference weight to choose")
            if self.cv_folds < 2:
                raise ValueError(f"cv_folds must be at least 2, got {self.cv_folds}")
            object.__setattr__(self, "preference_weight_grid", grid)
        if self.cv_criterion not in CV_CRITERIA:
            raise ValueError(f"cv_criterion must be one of {CV_CRITERIA}, got {self.cv_criterion!r}")


class RouterHyper(NamedTuple):
    """Sweepable numbers of a quality-gain fit.

    Attributes
    ----------
    preference_weight : () λ, the weight of the (debiased) preference rows in ψ̂'s fit.
    cate : CateHyper.
    quality : dict, hyper-parameters of the quality learner.
    """

    preference_weight: Array
    cate: CateHyper
    quality: dict


def default_hyper(config: RouterConfig) -> RouterHyper:
    """λ = 1 (the paper's equal weighting) and each learner's defaults."""
    return RouterHyper(jnp.asarray(1.0, jnp.float32), default_cate_hyper(config.cate), config.quality_learner.hyper())


class RouterFit(NamedTuple):
    """A fitted quality-gain model (a pytree).

    Attributes
    ----------
    standardizer : Standardizer applied to features before the learners.
    scale_constant : () constant ``c`` applied to preference labels.
    quality : params of the quality learner.
    cate : CateFit (meta only; an empty tuple otherwise).
    """

    standardizer: Standardizer
    scale_constant: Array
    quality: object
    cate: object


class RouterInfo(NamedTuple):
    """Diagnostics of a quality-gain fit.

    Attributes
    ----------
    scale_constant : () the preference-label scale constant.
    cate : CateInfo (zeros for baselines).
    mean_shift : () the shift added to preference labels (``mean_shift`` only, else 0).
    n_nonfinite : () int, non-finite training targets (after debiasing) — should be 0.
    preference_weight : () the λ used (the cross-validated choice with a grid).
    cv_loss : (G,) cross-validated gold loss per grid value (empty without a grid).
    quality_hyper : dict, the hyper-parameters ψ̂'s fit used (its selected penalty).
    """

    scale_constant: Array
    cate: CateInfo
    mean_shift: Array
    n_nonfinite: Array
    preference_weight: Array
    cv_loss: Array
    quality_hyper: dict


def _empty_cate_info() -> CateInfo:
    from mrjax.nuisance._nuisance import PropensityInfo

    z, f = jnp.zeros((), jnp.int32), jnp.zeros((), jnp.float32)
    return CateInfo(PropensityInfo(z, f, f, z, f), z, z)


def fit_router(
    key: PRNGKey,
    data: Dataset,
    config: RouterConfig = RouterConfig(),
    hyper: RouterHyper | None = None,
    gold_label: Array | None = None,
    known_propensity: Array | None = None,
) -> tuple[RouterFit, RouterInfo]:
    """Fit ψ̂ with ``config.method`` (pure; jit with ``config`` static).

    Parameters
    ----------
    key : PRNGKey
    data : Dataset; its ``weight`` is the sample (or bootstrap) weight.
    config : RouterConfig
    hyper : RouterHyper, optional
    gold_label : (n,) array, optional
        Gold labels for every training row; required by ``"all_golden"``.
    known_propensity : () or (n,) array, optional (see ``nuisance.fit_propensity``).

    Returns
    -------
    fit : RouterFit
    info : RouterInfo
    """
    hyper = default_hyper(config) if hyper is None else hyper
    cv_loss = jnp.zeros((0,), data.label.dtype)
    if config.preference_weight_grid is not None:
        lam, cv_loss = _select_preference_weight(key, data, config, hyper, gold_label, known_propensity)
        config = dataclasses.replace(config, preference_weight_grid=None)
        hyper = hyper._replace(preference_weight=lam)
        fit, info = fit_router(key, data, config, hyper, gold_label, known_propensity)
        return fit, info._replace(cv_loss=cv_loss)
    _, k_q = fit_keys(key)  # the CATE's learner key: one random basis for the whole fit
    t, w = data.is_gold, data.weight
    std = fit_standardizer(data.features, w, config.standardize)
    X = standardize(std, data.features)
    c = scale_constant(data, config.scale)
    o = jnp.where(t > 0.5, data.label, c * data.label)
    scaled = Dataset(X, t, o, w)
    lam = hyper.preference_weight
    cate_fit: object = ()
    cate_info = _empty_cate_info()
    shift = jnp.zeros((), o.dtype)

    if config.method == "meta":
        cate_fit, cate_info = fit_cate(key, scaled, config.cate, hyper.cate, known_propensity)
        target = jnp.where(t > 0.5, o, o + predict_bias(config.cate, cate_fit, X))
        weight = w * jnp.where(t > 0.5, 1.0, lam)
    elif config.method == "golden":
        target, weight = o, w * t
    elif config.method == "preference":
        target, weight = o, w * (1 - t)
    elif config.method == "pooled":
        target, weight = o, w * jnp.where(t > 0.5, 1.0, lam)
    elif config.method == "mean_shift":
        shift = jnp.sum(w * t * o) / jnp.sum(w * t) - jnp.sum(w * (1 - t) * o) / jnp.sum(w * (1 - t))
        target = jnp.where(t > 0.5, o, o + shift)
        weight = w * jnp.where(t > 0.5, 1.0, lam)
    else:  # all_golden
        if gold_label is None:
            raise ValueError("method 'all_golden' needs gold_label: a gold label for every training row")
        if gold_label.shape != o.shape:
            raise ValueError(f"gold_label: expected shape {o.shape}, got {gold_label.shape}")
        target, weight = gold_label, w

    n_nonfinite = jnp.sum(~jnp.isfinite(target) & (weight > 0))
    target = jnp.where(weight > 0, target, 0.0)
    quality = config.quality_learner.fit(k_q, X, target, weight, hyper.quality)
    info = RouterInfo(
        c, cate_info, shift, n_nonfinite, jnp.asarray(lam, o.dtype), cv_loss, used_hyper(hyper.quality, quality)
    )
    return RouterFit(std, c, quality, cate_fit), info


def fixed_tuning(config: RouterConfig, hyper: RouterHyper | None, info: RouterInfo) -> tuple[RouterConfig, RouterHyper]:
    """The configuration and hyper-parameters that refit with a fit's tuning held fixed.

    Every selected ridge penalty (GCV or leave-one-out; one per fold for cross-fitted nuisances) and a
    cross-validated λ are replaced by the values ``info`` reports, and the learners that
    selected them by fixed-penalty copies. ``fit_router`` with the result on the same data
    reproduces the fit (to float rounding); on re-weighted data (a bootstrap replicate) it
    refits everything except the tuning — a Cholesky solve where selection needs an
    eigendecomposition.
    """
    hyper = default_hyper(config) if hyper is None else hyper

    def fix(learner):
        return dataclasses.replace(learner, penalty_grid=None) if getattr(learner, "penalty_grid", None) else learner

    cate = dataclasses.replace(
        config.cate, outcome_learner=fix(config.cate.outcome_learner), effect_learner=fix(config.cate.effect_learner)
    )
    fixed = dataclasses.replace(config, cate=cate, quality_learner=fix(config.quality_learner), preference_weight_grid=None)
    cate_hyper = hyper.cate
    if config.method == "meta":
        cate_hyper = cate_hyper._replace(outcome=info.cate.outcome_hyper, effect=info.cate.effect_hyper)
    return fixed, hyper._replace(preference_weight=info.preference_weight, cate=cate_hyper, quality=info.quality_hyper)


def _select_preference_weight(key, data, config: RouterConfig, hyper: RouterHyper, gold_label, known_propensity):
    """λ from the grid minimising K-fold cross-validated loss on the gold rows
    (squared error, or minus the routing area: ``config.cv_criterion``).

    Fold k's gold rows get weight 0 in the whole pipeline; every λ is fitted on the rest
    (vmapped over λ: the bias stage, which does not depend on λ, is computed once per
    fold; folds run one after another) and scored on the held-out gold rows. Ties go to
    the smaller λ.
    """
    base = dataclasses.replace(config, preference_weight_grid=None)
    grid = jnp.asarray(config.preference_weight_grid, data.label.dtype)
    folds = make_folds(jax.random.fold_in(key, 7), data.is_gold, config.cv_folds)
    gold = data.is_gold > 0.5
    held = folds.held_out() & gold[None, :]  # (K, n): each fold's gold rows

    def fold_loss(out):
        d = data._replace(weight=jnp.where(out, 0.0, data.weight))

        def one(lam):
            fit, _ = fit_router(key, d, base, hyper._replace(preference_weight=lam), gold_label, known_propensity)
            pred = predict_quality(base, fit, data.features)
            if config.cv_criterion == "routing":
                return -routing_area(pred, data.label, jnp.where(out, data.weight, 0.0))
            return jnp.sum(jnp.where(out, data.weight * (data.label - pred) ** 2, 0.0))

        return jax.vmap(one)(grid)

    # Folds one after another (lax.map) bound memory: each holds |grid| pipelines at once.
    loss = jnp.sum(jax.lax.map(fold_loss, held), axis=0) / jnp.sum(data.weight * gold)
    return grid[jnp.argmin(loss)], loss


def predict_quality(config: RouterConfig, fit: RouterFit, X: Array) -> Array:
    """ψ̂(x) for queries ``X (n, d)`` on the gold scale."""
    return config.quality_learner.predict(fit.quality, standardize(fit.standardizer, X))


def predict_router_bias(config: RouterConfig, fit: RouterFit, X: Array) -> Array:
    """Δ̂(x) for queries ``X (n, d)`` (Meta-Router only), on the gold scale."""
    if config.method != "meta":
        raise ValueError(f"only the Meta-Router estimates a bias; this fit is {config.method!r}")
    return predict_bias(config.cate, fit.cate, standardize(fit.standardizer, X))
