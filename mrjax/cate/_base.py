"""What every CATE learner shares: its hyper-parameters, fit and diagnostics, and the generic
``fit_cate`` / ``predict_bias`` that run any learner value.

A CATE learner is a frozen dataclass (static under ``jit``) with a small protocol:

* ``hyper() -> CateHyper``: its sweepable numbers as arrays;
* ``fit_stages(key, data, hyper, known_propensity, folds) -> Stages``: the nuisance and final
  fits, returning the fitted params, the propensity diagnostics, the number of masked rows and
  the hyper-parameters each outcome model used;
* ``predict(params, X) -> (n,)``: the raw (unclipped) bias Δ̂;
* ``n_effect``: how many final-stage (effect) models ``params`` starts with;
* ``n_folds`` (optional): cross-fitting folds, drawn by ``fit_cate`` when at least 2.

Adding a kind is one new module with such a class and one line in ``cate._kinds.CATE_LEARNERS``.
"""
from __future__ import annotations

import dataclasses
from typing import Any, NamedTuple, Protocol

import jax
import jax.numpy as jnp

from mrjax._typing import Array, PRNGKey
from mrjax.data._dataset import Dataset
from mrjax.data._folds import Folds, make_folds
from mrjax.learners._base import Learner, used_hyper
from mrjax.learners._linear import RandomFeatureRidge
from mrjax.nuisance._nuisance import PropensityInfo, fit_propensity


class CateHyper(NamedTuple):
    """Sweepable numbers of a CATE fit (all arrays).

    Attributes
    ----------
    propensity_clip : (2,) ``[low, high]`` applied to p̂ (clipped rows are counted).
    bias_clip : () bound ``b``: Δ̂ is clipped to ``[−b, b]`` (``inf``: no clipping).
    pseudo_mask : () threshold ``c``; rows with ``|t − p̂| ≤ c`` (R) or
        ``p̂(1 − p̂) ≤ c`` (DR) get zero weight in the final regression (authors: 0.05).
    propensity : dict of the propensity learner's hyper-parameters.
    trim : () level ``a``: rows whose p̂ lies outside ``[a, 1 − a]`` get zero weight in the R and DR
        final regressions (0: none). The bias is then estimated where the sources overlap, and
        Δ̂ elsewhere is that regression's extrapolation (the estimand changes; see the guide).
    outcome, effect : dict of the outcome (effect) learner's hyper-parameters, shared by
        every outcome (effect) model; or a tuple of dicts, one per model in fit order
        (outcome: R ``(m,)``, DR/T/X ``(μ_1, μ_0)``, S ``(model,)``; effect: X ``(τ_1, τ_0)``,
        else one). A cross-fitted model's penalty may be (K,), one per fold.
        ``CateInfo.outcome_hyper`` / ``effect_hyper`` have this form.
    """

    propensity_clip: Array
    bias_clip: Array
    pseudo_mask: Array
    propensity: dict
    outcome: dict
    effect: dict
    trim: Array = 0.0


class CateFit(NamedTuple):
    """A fitted bias model (a pytree).

    Attributes
    ----------
    params : tuple of learner params; R/DR: ``(effect,)``; T: ``(μ_1, μ_0)``;
        S: ``(model on (x, t), (t̄, sd(t)))``; X: ``(τ_1, τ_0, propensity params or () array)``.
    bias_clip : () array, the bound applied to predictions.
    """

    params: tuple
    bias_clip: Array


class CateInfo(NamedTuple):
    """Diagnostics of a CATE fit.

    Attributes
    ----------
    propensity : PropensityInfo (zeros where the learner uses no propensity).
    n_clipped_bias : () int array, training rows whose Δ̂ was clipped.
    n_masked : () int array, rows given zero weight by ``pseudo_mask`` or by ``trim``.
    outcome_hyper, effect_hyper : tuples of dicts, the hyper-parameters each outcome
        (effect) model used, in fit order (selected penalties; per-fold arrays for cross-fitted
        models). Passed back as ``CateHyper.outcome`` / ``effect`` with fixed-penalty
        learners they refit with the tuning held fixed (see ``router.fixed_tuning``).
    nonfinite : dict of () int arrays, NaN or infinite values per stage, in pipeline order:
        ``propensity`` (raw p̂), ``outcome`` (the outcome models' predictions), ``pseudo_outcome``
        (the final stage's targets on rows it weights), ``bias`` (Δ̂ on the training rows).
    """

    propensity: PropensityInfo
    n_clipped_bias: Array
    n_masked: Array
    outcome_hyper: tuple = ()
    effect_hyper: tuple = ()
    nonfinite: dict = {}


class Stages(NamedTuple):
    """What a learner's ``fit_stages`` returns to ``fit_cate``: ``nonfinite`` counts NaN or infinite
    values of its ``outcome`` predictions and its ``pseudo_outcome`` targets (rows it weights)."""

    params: tuple
    propensity: PropensityInfo
    n_masked: Array
    outcome_hyper: tuple
    nonfinite: dict = {}


class CateLearner(Protocol):
    n_effect: int

    def hyper(self) -> CateHyper: ...

    def fit_stages(self, key: PRNGKey, data: Dataset, hyper: CateHyper, known_propensity: Array | None,
                   folds: Folds | None) -> Stages: ...

    def predict(self, params: tuple, X: Array) -> Array: ...


def default_effect(outcome: Learner, penalty) -> Learner:
    """A kind's default final stage: random-feature ridge with the outcome learner's number of
    random features (256 when it has none) and the kind's penalty rule."""
    n_features = getattr(getattr(outcome, "features", None), "n_features", 256)
    return RandomFeatureRidge(n_features=n_features, penalty=penalty)


def resolve_learners(learner, effect_penalty=None) -> None:
    """A learner value's ``__post_init__``: the kind's default final stage where ``effect`` is None
    (:func:`default_effect` with ``effect_penalty``), then :func:`check_learners`."""
    if effect_penalty is not None and learner.effect is None:
        object.__setattr__(learner, "effect", default_effect(learner.outcome, effect_penalty))
    check_learners(learner)


def check_learners(learner) -> None:
    """Learners of the right task in the right places (a config error, raised at construction)."""
    for name in ("outcome", "effect"):
        value = getattr(learner, name, None)
        if value is not None and value.task != "regression":
            raise ValueError(f"{type(learner).__name__}.{name} must be a regressor, got task {value.task!r}")
    p = getattr(learner, "propensity", None)
    if p is not None and p.task != "classification":
        raise ValueError(f"{type(learner).__name__}.propensity must be a classifier (task 'classification')")
    n_folds = getattr(learner, "n_folds", 0)
    if isinstance(n_folds, bool) or not isinstance(n_folds, int) or n_folds == 1 or n_folds < 0:
        raise ValueError(f"n_folds must be 0 (in-sample) or an integer of at least 2, got {n_folds!r}")


def default_cate_hyper(learner) -> CateHyper:
    """Defaults: propensity clipped to [0.001, 0.999], no bias clip, no pseudo-outcome mask."""
    propensity = getattr(learner, "propensity", None)
    effect = getattr(learner, "effect", None)
    return CateHyper(
        propensity_clip=jnp.asarray([1e-3, 1 - 1e-3], jnp.float32),
        bias_clip=jnp.asarray(jnp.inf, jnp.float32),
        pseudo_mask=jnp.asarray(0.0, jnp.float32),
        propensity={} if propensity is None else propensity.hyper(),
        outcome=learner.outcome.hyper(),
        effect={} if effect is None else effect.hyper(),
        trim=jnp.asarray(0.0, jnp.float32),
    )


def with_learners(learner, **learners):
    """``learner`` with the given component learners (``outcome``, ``effect``, ``propensity``,
    ``n_folds``) where it has such a field; ``effect=None`` gives the kind's default for the new
    outcome learner. Lets presets be written once and given the learners of a study or facade."""
    names = {f.name for f in dataclasses.fields(learner)}
    changes = {k: v for k, v in learners.items() if k in names}
    if "effect" in names and "effect" not in changes and "outcome" in changes:
        changes["effect"] = None
    return dataclasses.replace(learner, **changes)


def count_nonfinite(values: Array, where: Array | None = None) -> Array:
    """() int32: NaN or infinite entries of ``values`` (only where ``where`` holds, when given)."""
    bad = ~jnp.isfinite(values)
    return jnp.sum(bad if where is None else bad & where).astype(jnp.int32)


def fit_keys(key: PRNGKey) -> tuple[PRNGKey, PRNGKey]:
    """``(fold key, learner key)`` of a fit.

    Every learner of one fit — propensity, outcome, effect, and the router's quality
    learner — is fitted with the same learner key, so random-feature learners share one
    random basis: a fit computes its design matrix once (under ``jit``, equal computations
    are merged), Gram matrices of equal weights once, and methods fitted with the same key
    differ only in what they do, not in their basis (common random numbers).
    """
    k_fold, k_learn = jax.random.split(key)
    return k_fold, k_learn


def no_propensity() -> PropensityInfo:
    zero = jnp.zeros((), jnp.int32)
    return PropensityInfo(zero, jnp.zeros(()), jnp.zeros(()), zero, jnp.zeros(()), zero)


def trimmed(p: Array, hyper: CateHyper) -> Array:
    """(n,) bool: rows whose propensity lies outside ``[trim, 1 − trim]`` (none when ``trim`` is 0)."""
    a = jnp.asarray(hyper.trim, p.dtype)
    return (a > 0) & ((p < a) | (p > 1 - a))


def propensity_stage(learner, key, data, hyper: CateHyper, known_propensity, folds):
    """Cross-fitted (or known) propensity, clipped and counted (see ``nuisance.fit_propensity``)."""
    return fit_propensity(key, data, learner.propensity, folds, hyper.propensity_clip, hyper.propensity,
                          known_propensity)


def effect_fit(learner: Learner, key, X, pseudo, weight, hyper):
    """Fit a final stage; pseudo-outcomes are zeroed where the weight is 0 so ``0 * inf`` cannot make NaN."""
    pseudo = jnp.where(weight > 0, pseudo, 0.0)
    return learner.fit(key, X, pseudo, weight, hyper)


def model_hyper(h, i: int) -> dict:
    """Model ``i``'s hyper-parameters: a dict shared by a stage's models, or one per model."""
    return h[i] if isinstance(h, tuple) else h


def fit_cate(
    key: PRNGKey,
    data: Dataset,
    learner: Any,
    hyper: CateHyper | None = None,
    known_propensity: Array | None = None,
    folds: Folds | None = None,
) -> tuple[CateFit, CateInfo]:
    """Fit the bias ``Δ(x)`` with the CATE learner value ``learner`` (e.g. ``RLearner()``).

    Parameters
    ----------
    key : PRNGKey
    data : Dataset (features should be standardised for RFF learners)
    learner : a CATE learner (static under ``jit``)
    hyper : CateHyper, optional (``learner.hyper()``)
    known_propensity : () or (n,) array, used when the learner's propensity is None.
    folds : Folds, optional; drawn from ``key`` (stratified by source) when the learner
        cross-fits (``n_folds ≥ 2``) and none are given.

    Returns
    -------
    fit : CateFit
    info : CateInfo
    """
    hyper = learner.hyper() if hyper is None else hyper
    k_fold, k_learn = fit_keys(key)
    n_folds = getattr(learner, "n_folds", 0)
    if folds is None and n_folds >= 2:
        folds = make_folds(k_fold, data.is_gold, n_folds)
    if n_folds == 0:
        folds = None
    stages = learner.fit_stages(k_learn, data, hyper, known_propensity, folds)
    h_eff = lambda i: model_hyper(hyper.effect, i)  # noqa: E731
    effect_used = tuple(used_hyper(h_eff(i), stages.params[i]) for i in range(learner.n_effect))
    fit = CateFit(stages.params, hyper.bias_clip)
    raw = learner.predict(fit.params, data.features)
    zero = jnp.zeros((), jnp.int32)
    nonfinite = {"propensity": jnp.asarray(stages.propensity.n_nonfinite, jnp.int32),
                 "outcome": stages.nonfinite.get("outcome", zero),
                 "pseudo_outcome": stages.nonfinite.get("pseudo_outcome", zero),
                 "bias": count_nonfinite(raw)}
    info = CateInfo(stages.propensity, jnp.sum(jnp.abs(raw) > hyper.bias_clip), stages.n_masked,
                    stages.outcome_hyper, effect_used, nonfinite)
    return fit, info


def predict_bias(learner: Any, fit: CateFit, X: Array) -> Array:
    """Δ̂(x) at new queries ``X (n, d)``, clipped to ``[−bias_clip, bias_clip]``."""
    return jnp.clip(learner.predict(fit.params, X), -fit.bias_clip, fit.bias_clip)
