"""The Meta-Router and its baselines: fit the quality gain ψ(x) of the primary model.

``fit_router`` standardises the features, puts the preference labels on the gold scale, asks the
configured method value for a target and a weight per row (``Meta`` debiases the preference
labels with a CATE learner's Δ̂; the baselines in ``_baselines`` do what their names say), and
fits ψ̂ on them. A method with ``select_weight`` (``CrossValidatedWeight``) first chooses λ.
"""
from __future__ import annotations

import dataclasses
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from mrjax._typing import Array, PRNGKey
from mrjax.cate._base import count_nonfinite, fit_keys
from mrjax.data._dataset import Dataset, Standardizer, check_standardize, standardize
from mrjax.data._preprocess import Preprocessed, preprocess
from mrjax.data._scale import SCALE_METHODS, ScaleMethod
from mrjax.learners._auto import Auto
from mrjax.learners._base import Learner, used_hyper
from mrjax.learners._linear import RandomFeatureRidge
from mrjax.learners._relevance import FeatureRelevance
from mrjax.router._meta import Meta
from mrjax.router._protocol import RouterHyper


@dataclasses.dataclass(frozen=True)
class RouterConfig:
    """Static description of a quality-gain fit.

    Attributes
    ----------
    method : a router method value (``Meta(RLearner())``, ``Pooled()``, ``CrossValidatedWeight(…)``,
        …) or a name from ``router.PRESETS`` (``"meta"``, ``"meta_dr"``, ``"pooled"``, ``"meta_r_cv"``, …).
    quality_learner : regressor for ψ̂.
    scale : scale normalisation of the preference labels (see ``data.scale_constant``).
    standardize : centre and scale features with the training rows' weighted moments
        (label-free) before any learner sees them: ``True`` scales each feature to unit
        variance, ``"common"`` divides all by one common scale (relative scales kept; for
        principal components of embeddings, see ``data.fit_standardizer``), ``False`` leaves
        features as given.
    relevance : ``None`` (default), or a ``learners.FeatureRelevance``: it learns a length-scale per
        feature from the labels the method may use, after standardisation, and every model of the fit
        sees the features divided by it (the standardiser holds it, so queries get the same).
    """

    method: Any = Meta()
    quality_learner: Learner = RandomFeatureRidge()
    scale: ScaleMethod = "variance"
    standardize: bool | str = True
    relevance: FeatureRelevance | None = None

    def __post_init__(self):
        if isinstance(self.method, str):
            from mrjax.router._presets import preset  # the table is built from this module's values

            object.__setattr__(self, "method", preset(self.method))
        if not (hasattr(self.method, "targets") or hasattr(self.method, "select_weight")):
            raise ValueError(f"method must be a router method value or a preset name, got {self.method!r}")
        check_standardize(self.standardize)
        if self.scale not in SCALE_METHODS:
            raise ValueError(f"scale must be one of {SCALE_METHODS}, got {self.scale!r}")
        if self.quality_learner.task != "regression":
            raise ValueError("quality_learner must be a regressor")
        if self.relevance is not None and not isinstance(self.relevance, FeatureRelevance):
            raise ValueError(f"relevance must be a learners.FeatureRelevance or None, got {self.relevance!r}")


def default_hyper(config: RouterConfig) -> RouterHyper:
    """λ = 1 (the paper's equal weighting) and each learner's defaults."""
    return RouterHyper(jnp.asarray(1.0, jnp.float32), config.method.hyper(), config.quality_learner.hyper(),
                       {} if config.relevance is None else config.relevance.hyper())


class RouterFit(NamedTuple):
    """A fitted quality-gain model (a pytree).

    Attributes
    ----------
    standardizer : Standardizer applied to features before ψ̂ (with ``config.relevance``, its scale
        includes the learned length-scales: ψ̂'s own where :func:`searches_quality`).
    scale_constant : () constant ``c`` applied to preference labels.
    quality : params of the quality learner.
    cate : CateFit (Meta-Router only; an empty tuple otherwise).
    bias_standardizer : the Standardizer of the bias stages where ψ̂ learned its own relevance
        (:func:`searches_quality`); ``None`` where ``standardizer`` serves every model.
    """

    standardizer: Standardizer
    scale_constant: Array
    quality: object
    cate: object
    bias_standardizer: Standardizer | None = None


class RouterInfo(NamedTuple):
    """Diagnostics of a quality-gain fit.

    Attributes
    ----------
    scale_constant : () the preference-label scale constant.
    cate : CateInfo (zeros for baselines).
    mean_shift : () the shift added to preference labels (``MeanShift`` only, else 0).
    n_nonfinite : () int, non-finite training targets (after debiasing) — should be 0.
    preference_weight : () the λ used (the cross-validated choice with ``CrossValidatedWeight``).
    cv_loss : (G,) cross-validated gold loss per grid value (empty without cross-validation).
    quality_hyper : dict, the hyper-parameters ψ̂'s fit used (its selected penalty).
    scale_degenerate : () bool, a source was (near-)constant, so ``scale_constant`` is 1 (see
        ``data.scale_degenerate``).
    nonfinite : dict of () int arrays, NaN or infinite values of the router's own stages:
        ``features`` (after standardisation), ``scale`` (the constant), ``targets`` (= ``n_nonfinite``)
        and ``quality`` (ψ̂'s fitted parameters: finite parameters on finite features give finite
        ψ̂, at O(p) instead of a prediction pass) and ``relevance`` (the learned length-scales); the
        bias stages are in ``cate.nonfinite``.
    relevance : dict, the feature relevance's hyper-parameters with what it learned (``lengthscale``,
        (d,), on the standardised features' scale): a refit with it skips the search.
        Empty without ``config.relevance``.
    quality_relevance : dict, the same for ψ̂'s own relevance, learned from its targets
        (:func:`searches_quality`; empty otherwise).
    """

    scale_constant: Array
    cate: Any
    mean_shift: Array
    n_nonfinite: Array
    preference_weight: Array
    cv_loss: Array
    quality_hyper: dict
    scale_degenerate: Array = False
    nonfinite: dict = {}
    relevance: dict = {}
    quality_relevance: dict = {}


def searches_quality(config: RouterConfig) -> bool:
    """Whether ψ̂ learns its own feature relevance from its targets, after the bias stages: a Meta-Router's
    with ``config.relevance`` (and its ``quality`` switch on). Its targets are the debiased labels, whose
    relevant features are ψ's alone; the shared relevance, learned from the observed labels, also ranks
    the bias's features, which ψ̂ then spreads its kernel over. A baseline's targets are the labels its
    shared relevance learned from (up to λ or a constant shift), so it needs no second search."""
    method = config.method
    return (config.relevance is not None and config.relevance.quality and method.estimates_bias
            and not hasattr(method, "select_weight"))


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
        Gold labels for every training row; required by ``AllGolden``.
    known_propensity : () or (n,) array, optional (see ``nuisance.fit_propensity``).

    Returns
    -------
    fit : RouterFit
    info : RouterInfo
    """
    hyper = default_hyper(config) if hyper is None else hyper
    method = config.method
    if hasattr(method, "select_weight"):  # λ chosen first (a wrapper value), then the wrapped method fits
        lam, cv_loss = method.select_weight(key, data, config, hyper, gold_label, known_propensity)
        inner = dataclasses.replace(config, method=method.method)
        fit, info = fit_router(key, data, inner, hyper._replace(preference_weight=lam), gold_label, known_propensity)
        return fit, info._replace(cv_loss=cv_loss)
    prep, relevance, n_bad_features = prepare(key, data, config, hyper, gold_label)
    out = method.targets(key, prep.data, hyper, gold_label, known_propensity)
    return _finish(key, data, config, hyper, (prep, relevance, n_bad_features), out,
                   quality_relevance(key, data, config, hyper, out.target, out.weight))


def fit_targets(key: PRNGKey, data: Dataset, config: RouterConfig, hyper: RouterHyper,
                gold_label: Array | None = None, known_propensity: Array | None = None):
    """:func:`fit_router`'s first half: the method's ``Targets`` (a Meta-Router's bias stages). With
    :func:`quality_relevance` and :func:`finish_fit` it is ``fit_router`` in three stages, so that a study can
    run the relevance search between vmapped stages (``config`` must not select λ)."""
    prep, _, _ = prepare(key, data, config, hyper, gold_label)
    return config.method.targets(key, prep.data, hyper, gold_label, known_propensity)


def finish_fit(key: PRNGKey, data: Dataset, config: RouterConfig, hyper: RouterHyper, targets,
               quality_relevance: dict, gold_label: Array | None = None) -> tuple[RouterFit, RouterInfo]:
    """:func:`fit_router`'s last stage: ψ̂ on ``targets`` (:func:`fit_targets`) with ψ̂'s relevance
    ``quality_relevance`` (:func:`quality_relevance`). ``hyper.relevance`` should hold the learned length-scales,
    or the shared search runs again."""
    return _finish(key, data, config, hyper, prepare(key, data, config, hyper, gold_label), targets, quality_relevance)


def quality_relevance(key: PRNGKey, data: Dataset, config: RouterConfig, hyper: RouterHyper, target: Array,
                      weight: Array) -> dict:
    """ψ̂'s own relevance (:func:`searches_quality`), learned from ψ̂'s ``target`` and ``weight`` (a method's
    ``Targets``) on the standardised features; its used hyper-parameters like :func:`prepare`'s. ``{}`` where
    ψ̂ uses the shared one. Its settings are ``hyper.relevance``'s; a ``hyper.quality_relevance`` holding a
    ``lengthscale`` skips the search."""
    if not searches_quality(config):
        return {}
    X = preprocess(data, config.standardize, config.scale).data.features
    target = jnp.where(weight > 0, target, 0.0)
    qhyper = hyper.quality_relevance or {k: v for k, v in hyper.relevance.items() if k not in _LEARNED}
    learned = config.relevance.fit(jax.random.fold_in(key, 0x5E2), X, target, weight, qhyper)
    return {**qhyper, **learned}


_LEARNED = ("lengthscale", "held_out_z")  # what FeatureRelevance.fit adds to its hyper-parameters


def _finish(key, data, config, hyper, prepared, out, qrel) -> tuple[RouterFit, RouterInfo]:
    """ψ̂ on the method's targets ``out`` (``prepared``: :func:`prepare`'s return; ``qrel``: ψ̂'s relevance)."""
    _, k_q = fit_keys(key)  # the CATE's learner key: one random basis for the whole fit
    prep, relevance, n_bad_features = prepared
    X, o, std, c = prep.data.features, prep.data.label, prep.standardizer, prep.scale_constant
    bias_std = None
    if qrel:  # ψ̂ sees the standardised features divided by its own length-scales
        base = preprocess(data, config.standardize, config.scale).standardizer
        bias_std = std
        std = Standardizer(base.mean, base.scale * config.relevance.scale(qrel["lengthscale"], qrel["bandwidth"]))
        X = standardize(std, data.features)
    target, weight = out.target, out.weight
    n_nonfinite = jnp.sum(~jnp.isfinite(target) & (weight > 0))
    target = jnp.where(weight > 0, target, 0.0)
    if isinstance(config.quality_learner, Auto):  # ψ̂'s candidates are scored on held-out gold rows
        quality = config.quality_learner.fit(k_q, X, target, weight, hyper.quality, score_weight=prep.data.is_gold)
    else:
        quality = config.quality_learner.fit(k_q, X, target, weight, hyper.quality)
    n_bad_relevance = sum((count_nonfinite(r["lengthscale"]) for r in (relevance, qrel) if r), jnp.zeros((), jnp.int32))
    nonfinite = {"features": n_bad_features, "scale": count_nonfinite(c), "targets": n_nonfinite.astype(jnp.int32),
                 "quality": sum(count_nonfinite(leaf) for leaf in jax.tree_util.tree_leaves(quality)
                                if jnp.issubdtype(jnp.asarray(leaf).dtype, jnp.floating)),
                 "relevance": n_bad_relevance}
    info = RouterInfo(
        c, out.cate_info, out.shift, n_nonfinite, jnp.asarray(hyper.preference_weight, o.dtype),
        jnp.zeros((0,), data.label.dtype), used_hyper(hyper.quality, quality), prep.scale_degenerate, nonfinite,
        relevance, qrel,
    )
    return RouterFit(std, c, quality, out.cate, bias_std), info


def prepare(key: PRNGKey, data: Dataset, config: RouterConfig, hyper: RouterHyper,
            gold_label: Array | None = None) -> tuple[Preprocessed, dict, Array]:
    """``data`` as every model of a fit sees it: standardised, preference labels on the gold scale, and
    (with ``config.relevance``) each feature divided by its learned length-scale. Returns the preprocessed
    data, the relevance's used hyper-parameters (``{}`` without it), and the count of non-finite
    standardised features (before the relevance, so that a failure is attributed to its stage).

    The relevance learns from the labels the method may use (its ``relevance_labels``; by default every
    row's observed label). For methods with the default (:func:`shares_relevance`) the search depends only
    on the data, the key and ``config``'s standardisation, scale and relevance, so a study runs it once
    and passes it to them as ``hyper.relevance``, which skips the search.
    """
    prep = preprocess(data, config.standardize, config.scale)
    X = prep.data.features
    if config.relevance is None:
        return prep, {}, count_nonfinite(X)
    label, weight = _relevance_rows(prep, config, gold_label)
    learned = config.relevance.fit(_relevance_key(key), X, label, weight, hyper.relevance)
    used = {**hyper.relevance, **learned}
    std = Standardizer(prep.standardizer.mean,
                       prep.standardizer.scale * config.relevance.scale(learned["lengthscale"], used["bandwidth"]))
    return (prep._replace(data=prep.data._replace(features=standardize(std, data.features)), standardizer=std),
            used, count_nonfinite(X))


def _relevance_key(key: PRNGKey) -> PRNGKey:
    """The relevance search's own key: the learners' keys (``fit_keys``) stay those of a fit without it."""
    return jax.random.fold_in(key, 0x5E1)


def _relevance_rows(prep: Preprocessed, config: RouterConfig, gold_label: Array | None) -> tuple[Array, Array]:
    """The labels and weights ``config``'s relevance learns from (its method's ``relevance_labels``, by default
    every row's observed label)."""
    if hasattr(config.method, "relevance_labels"):
        return config.method.relevance_labels(prep.data, gold_label)
    return prep.data.label, prep.data.weight


def learn_relevances(key: PRNGKey, data: Dataset, configs: list, hypers: list,
                     gold_label: Array | None = None) -> list[dict]:
    """What :func:`prepare` learns for each of ``configs`` on ``data`` (its third return, ``used``), with the
    searches vmapped over the configurations: one compiled search instead of one per configuration, to float
    rounding of the separate searches. The configurations must share their standardisation, scale and
    relevance value (a study's do)."""
    first = configs[0]
    if any((c.standardize, c.scale, c.relevance) != (first.standardize, first.scale, first.relevance) for c in configs):
        raise ValueError("learn_relevances: the configurations must share standardize, scale and relevance")
    prep = preprocess(data, first.standardize, first.scale)
    rows = [_relevance_rows(prep, c, gold_label) for c in configs]
    hyper = jax.tree_util.tree_map(lambda *a: jnp.stack(a), *[h.relevance for h in hypers])
    k = _relevance_key(key)
    learned = jax.vmap(lambda y, w, h: first.relevance.fit(k, prep.data.features, y, w, h))(
        jnp.stack([r[0] for r in rows]), jnp.stack([r[1] for r in rows]), hyper)
    return [{**h.relevance, **jax.tree_util.tree_map(lambda a: a[i], learned)} for i, h in enumerate(hypers)]


def shares_relevance(config: RouterConfig) -> bool:
    """Whether ``config``'s feature relevance learns from every row's observed label (the default), so that
    fits of such configurations on the same data, key, standardisation and scale learn the same one.
    A cross-validated λ refits per fold on fewer rows, and learns its own."""
    method = config.method
    return config.relevance is not None and not hasattr(method, "relevance_labels") and not hasattr(method, "select_weight")


def _fix(obj):
    """``obj`` with every penalty-selecting learner inside it replaced by its fixed-penalty copy."""
    if getattr(obj, "penalty_grid", None) is not None:
        return dataclasses.replace(obj, penalty_grid=None)
    if isinstance(obj, tuple):  # Auto's candidates
        fixed = tuple(_fix(o) for o in obj)
        return obj if all(a is b for a, b in zip(fixed, obj)) else fixed
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        changes = {f.name: _fix(getattr(obj, f.name)) for f in dataclasses.fields(obj) if f.init}
        changes = {k: v for k, v in changes.items() if v is not getattr(obj, k)}
        return dataclasses.replace(obj, **changes) if changes else obj
    return obj


def fixed_config(config: RouterConfig) -> RouterConfig:
    """``config`` with a cross-validated λ unwrapped and every penalty-selecting learner fixed (the
    static half of :func:`fixed_tuning`)."""
    method = config.method.method if hasattr(config.method, "select_weight") else config.method
    return dataclasses.replace(config, method=_fix(method), quality_learner=_fix(config.quality_learner))


def fixed_tuning(config: RouterConfig, hyper: RouterHyper | None, info: RouterInfo) -> tuple[RouterConfig, RouterHyper]:
    """The configuration and hyper-parameters that refit with a fit's tuning held fixed.

    Every selected ridge penalty (GCV or leave-one-out; one per fold for cross-fitted nuisances), a
    cross-validated λ and the learned feature relevance are replaced by the values ``info`` reports, and the learners that
    selected them by fixed-penalty copies. ``fit_router`` with the result on the same data
    reproduces the fit (to float rounding); on re-weighted data (a bootstrap replicate) it
    refits everything except the tuning — a Cholesky solve where selection needs an
    eigendecomposition.
    """
    hyper = default_hyper(config) if hyper is None else hyper
    fixed = fixed_config(config)
    cate_hyper = hyper.cate
    if fixed.method.estimates_bias:
        cate_hyper = cate_hyper._replace(outcome=info.cate.outcome_hyper, effect=info.cate.effect_hyper)
    return fixed, hyper._replace(preference_weight=info.preference_weight, cate=cate_hyper, quality=info.quality_hyper,
                                 relevance=info.relevance, quality_relevance=info.quality_relevance)


def predict_quality(config: RouterConfig, fit: RouterFit, X: Array) -> Array:
    """ψ̂(x) for queries ``X (n, d)`` on the gold scale."""
    return config.quality_learner.predict(fit.quality, standardize(fit.standardizer, X))


def predict_router_bias(config: RouterConfig, fit: RouterFit, X: Array) -> Array:
    """Δ̂(x) for queries ``X (n, d)`` (Meta-Router only), on the gold scale."""
    if not config.method.estimates_bias:
        raise ValueError(f"only the Meta-Router estimates a bias; this fit is {config.method.name!r}")
    std = fit.standardizer if fit.bias_standardizer is None else fit.bias_standardizer
    return config.method.predict_bias(fit.cate, standardize(std, X))
