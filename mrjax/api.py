"""The user-facing facade: a ``MetaRouter`` class holding a fitted pytree.

Integer seeds are accepted here only; everything below takes explicit keys.
"""
from __future__ import annotations

import dataclasses
import json
import sys
import warnings
from typing import Sequence

import jax
import jax.numpy as jnp
import numpy as np

from mrjax._typing import ArrayLike
from mrjax import _persist
from mrjax._checks import choice, finite, integer, unit_interval
from mrjax._output import check_destination, results_folder
from mrjax.cate._kinds import CATE_LEARNERS
from mrjax.data._dataset import Dataset, _as_float, _check_finite, from_sources
from mrjax.inference._bootstrap import (
    ReplicateFits, WEIGHT_KINDS, _default_chunk, bootstrap_fits, bootstrap_weights, equal_chunk, interval,
    replicate_predict,
)
from mrjax.inference._value import policy_value_draws
from mrjax._hyper import structure
from mrjax.learners._auto import CLASSIFIERS, REGRESSORS, Auto, named
from mrjax.learners._base import Learner
from mrjax.learners._features import RandomFourier
from mrjax.learners._linear import RandomFeatureRidge, Ridge
from mrjax.learners._relevance import FeatureRelevance
from mrjax.router._cv import CrossValidatedWeight
from mrjax.router._fit import RouterConfig, fit_router, predict_quality, predict_router_bias
from mrjax.router._presets import CV_SUFFIXES, preset
from mrjax.router._protocol import RouterHyper
from mrjax.router._rule import route as _route
from mrjax.router._tradeoff import (
    Calibration, _check_nonnegative_gap, breakpoints, calibrate_budget, calibrate_share, kth_largest, tradeoff_curve,
)


def _name(learner) -> str:
    """A learner's public name: its class's, except that a ridge on random Fourier features is the
    ``RandomFeatureRidge`` users build, so that it is not read as the linear ``Ridge``."""
    if isinstance(learner, Ridge) and isinstance(learner.features, RandomFourier):
        return "RandomFeatureRidge"
    return type(learner).__name__


def _learner_name(learner, used: dict) -> str:
    """A learner's name; for ``Auto``, ``"Auto → <chosen>"``."""
    if isinstance(learner, Auto) and "choice" in used:
        return f"Auto → {_name(learner.candidates[int(np.asarray(used['choice']))])}"
    return _name(learner)


def _losses(learner, used: dict) -> str:
    """Each ``Auto`` candidate's cross-validated loss, by name."""
    return ", ".join(f"{_name(c)} {float(v):.4g}" for c, v in zip(learner.candidates, np.asarray(used["cv_loss"])))


_fit_jit = jax.jit(fit_router, static_argnames=("config",))
_replicates_jit = jax.jit(bootstrap_fits, static_argnames=("config", "chunk", "retune"))
_replicate_predict_jit = jax.jit(replicate_predict, static_argnames=("config", "target", "retune"))
# The verbs' small steps compiled too: op by op, a first calibrate or sweep compiled its ~100–200 operations one
# at a time (seconds), for the same bits (the trade-off functions are written to agree under jit).
_quality_jit = jax.jit(predict_quality, static_argnames=("config",))
_bias_jit = jax.jit(predict_router_bias, static_argnames=("config",))
_breakpoints_jit = jax.jit(breakpoints)
_usage_jit = jax.jit(lambda bp, w: tradeoff_curve(bp, w).usage)
_calibrate_share_jit = jax.jit(calibrate_share)
_calibrate_budget_jit = jax.jit(calibrate_budget)
_route_jit = jax.jit(_route)

_PARAMS = ("method", "cate", "learner", "propensity", "n_folds", "scale", "preference_weight", "propensity_clip",
           "bias_clip", "standardize", "relevance", "seed", "trim", "progress")


STAGES = (  # the pipeline's stages in order: (where the count is, name, what it is)
    ("router", "features", "the standardised features"),
    ("router", "scale", "the preference labels' scale constant"),
    ("router", "relevance", "the learned feature length-scales"),
    ("cate", "propensity", "the propensity model's p̂"),
    ("cate", "outcome", "the outcome models' predictions"),
    ("cate", "pseudo_outcome", "the bias learner's pseudo-outcomes"),
    ("cate", "bias", "the bias Δ̂ on the training rows"),
    ("router", "targets", "the debiased training targets"),
    ("router", "quality", "the fitted parameters of ψ̂"),
)
CLIP_WARN_SHARE = 0.10  # a larger share of rows with clipped propensities is poor overlap: say so


def _first_nonfinite(info):
    """``(stage, count, description)`` of the first stage with NaN or infinite values, or None."""
    for where, name, what in STAGES:
        counts = info.nonfinite if where == "router" else getattr(info.cate, "nonfinite", {})
        count = int(counts.get(name, 0))
        if count:
            return name, count, what
    return None


def _warnings(info, hyper) -> list[str]:
    """What a careful user should hear about a finite fit: degenerate scale, no overlap, poor overlap,
    a propensity that did not converge."""
    out = []
    if bool(info.scale_degenerate):
        out.append("one label source is (near-)constant, so its spread cannot set the scale: the preference "
                   "labels were used on their own scale (scale constant 1); check the judge's labels")
    p = info.cate.propensity
    n = int(np.sum(np.asarray(p.histogram))) if np.size(p.histogram) else 0
    if int(p.n_extreme) > 0:
        out.append(f"the propensity model returned 0 or 1 on {int(p.n_extreme)} rows (no overlap there); they were "
                   f"clipped to {tuple(np.asarray(hyper.cate.propensity_clip).tolist())}")
    if n and int(p.n_clipped) > CLIP_WARN_SHARE * n:
        out.append(f"{int(p.n_clipped)} of {n} rows ({int(p.n_clipped) / n:.0%}) had their propensity clipped: the "
                   "sources overlap poorly. Inspect info_.cate.propensity.histogram; consider trimming those rows "
                   "from the bias fit or a propensity model that fits the data")
    if float(p.convergence) > 1e-3:
        out.append(f"the propensity model did not converge (gradient norm per unit weight {float(p.convergence):.2g}); "
                   "its p̂ and the bias estimate may be off")
    return out


class MetaRouter:
    """Fit a router's quality gain ψ̂ from gold and preference labels, then route.

    Parameters
    ----------
    method : ``"meta"`` (default), a baseline (``"golden"``, ``"preference"``, ``"pooled"``,
        ``"mean_shift"``, ``"all_golden"``), any name from ``router.PRESETS``, or a router method value.
    cate : the bias learner, ``"r"``, ``"dr"``, ``"x"``, ``"t"``, ``"s"`` (``cate.CATE_LEARNERS``) or
        a CATE learner value such as ``DRLearner(outcome=…)``; ``None`` (default) keeps the method's
        own (``"meta"`` is the R-learner, ``"meta_dr"`` the DR-learner). A value is used as given, with
        its own outcome, effect and propensity learners and folds (``learner`` then sets ψ̂'s alone), so
        the bias and ψ̂ can use different learners; ``propensity`` and ``n_folds`` must then be left at
        their defaults.
    learner : regressor used for the outcome models, the bias and ψ̂: a learner value or a name,
        ``"rff"`` (random-feature ridge, the default), ``"relevance"`` (the same with a length-scale per
        feature), ``"gbt"`` (boosted trees), ``"forest"``, ``"ridge"`` (linear), or ``"auto"``: each of
        those models picks among rff, relevance and gbt by cross-validated loss on its own rows (ψ̂ on
        held-out gold rows), inside the compiled program; ``summary()`` reports the choices.
    propensity : classifier for ``P(gold | x)``: a learner value, ``"logistic"`` (default), ``"gbt"``,
        ``"forest"``, ``"auto"`` (logistic or gbt by cross-validated log-loss), or ``"known"`` when the
        gold rows were drawn at random (then the gold share ``n / (n + m)`` is used).
    n_folds : cross-fitting folds (0: in-sample nuisances).
    scale : ``"variance"`` (default), ``"magnitude"``, ``"wasserstein"`` or ``"none"``.
    preference_weight : λ, the weight of the debiased preference rows, or ``"cv"`` to choose
        it from ``router.CV_GRID`` (0 … 1) by 5-fold cross-validated squared error on the gold
        rows, ``"cv_routing"`` by the held-out gold rows' routing area (the chosen value is
        ``info_.preference_weight``).
    propensity_clip : ``(low, high)``.
    bias_clip : bound on ``|Δ̂|`` (None: no clipping).
    standardize : ``True`` (default) scales each feature to unit variance on the training
        rows; ``"common"`` centres them and divides all by one scale, keeping their relative
        scales (principal components of embeddings); ``False`` uses them as given.
    relevance : ``True`` learns a length-scale per feature once per fit, from the labels the method may
        use (a Meta-Router: both sources), and divides the features by it before every model
        (``learners.FeatureRelevance``): features no label depends on fade out of every kernel and
        penalty. ``summary()`` then reports the most relevant features. The learned length-scales are
        kept only when they beat the shared one on held-out rows, so where no feature stands out the fit
        is the relevance-free one. A Meta-Router's ψ̂ learns its own from its debiased targets (ψ's features
        alone). ``True`` by default (``learners.FeatureRelevance()``); a value sets its settings; ``False``
        skips it.
    seed : int in ``[0, 2**32)``.
    trim : ``a`` in ``[0, 0.5)``: rows whose propensity lies outside ``[a, 1 − a]`` are left out of the
        R/DR bias fit (by weight; 0: none). Δ̂ is then estimated where the sources overlap and
        extrapolated elsewhere — a different estimand, chosen for stability under poor overlap.
    progress : show a progress bar (tqdm, on stderr) while bootstrap replicates are fitted.

    The constructor keeps its arguments as attributes and checks them at once (scikit-learn's
    estimator conventions: ``get_params``, ``set_params``, ``sklearn.base.clone`` work). Numbers
    (penalties, λ, clip levels) travel to the compiled program as arrays, so changing them does
    not recompile.

    Queries given as a pandas DataFrame give pandas results indexed like it (a Series per query, a
    DataFrame per query × cost weight); columns are matched by name to the training features when
    the router was fitted on DataFrames. ``predict`` is ``quality_gain`` (ψ̂). The interval methods
    share one bootstrap: the replicates' fits are kept after the first call (for the last
    ``n_replicates``/``bootstrap``/``seed``/``retune`` asked for), so ψ̂, Δ̂ and value intervals at any
    queries refit nothing. ``save``/``load`` keep a fitted router in a folder (JSON and ``.npz``).

    Attributes (after ``fit``)
    --------------------------
    fit_ : RouterFit pytree; info_ : RouterInfo diagnostics; feature_names_in_ : the training
    DataFrame's feature columns (None for arrays); n_features_in_ : d.
    """

    def __init__(
        self,
        method="meta",
        cate=None,
        learner: Learner | None = None,
        propensity: Learner | str = "logistic",
        n_folds: int = 5,
        scale: str = "variance",
        preference_weight: float | str = 1.0,
        propensity_clip: Sequence[float] = (1e-3, 1 - 1e-3),
        bias_clip: float | None = None,
        standardize: bool | str = True,
        relevance: bool | FeatureRelevance = True,
        seed: int = 0,
        trim: float = 0.0,
        progress: bool = True,
    ):
        self.method = method
        self.cate = cate
        self.learner = learner
        self.propensity = propensity
        self.n_folds = n_folds
        self.scale = scale
        self.preference_weight = preference_weight
        self.propensity_clip = propensity_clip
        self.bias_clip = bias_clip
        self.standardize = standardize
        self.relevance = relevance
        self.seed = seed
        self.trim = trim
        self.progress = progress
        self._build()
        self._reset()

    def _reset(self) -> None:
        self.fit_ = self.info_ = self.data_ = self.feature_names_in_ = self.n_features_in_ = None
        self._replicates = None  # ((n_replicates, bootstrap, seed, retune), ReplicateFits): the kept bootstrap
        self._sizes, self._all_gold = None, False  # (gold, preference) rows of a loaded router; all-gold labels used
        self.metadata_ = None

    def get_params(self, deep: bool = True) -> dict:
        """The constructor's arguments (scikit-learn's protocol)."""
        return {name: getattr(self, name) for name in _PARAMS}

    def set_params(self, **params) -> "MetaRouter":
        """Set constructor arguments (checked at once); a fitted router must be fitted again."""
        unknown = sorted(set(params) - set(_PARAMS))
        if unknown:
            raise ValueError(f"unknown parameters {unknown}; MetaRouter takes {list(_PARAMS)}")
        old = self.get_params()
        for name, value in params.items():
            setattr(self, name, value)
        try:
            self._build()
        except ValueError:
            for name, value in old.items():
                setattr(self, name, value)
            raise
        return self

    def __repr__(self) -> str:
        defaults = MetaRouter.__init__.__defaults__
        changed = [f"{n}={getattr(self, n)!r}" for n, d in zip(_PARAMS, defaults) if getattr(self, n) is not d
                   and not (isinstance(d, (str, int, float, tuple, type(None))) and getattr(self, n) == d)]
        return f"MetaRouter({', '.join(changed)})"

    def _build(self) -> None:
        """The static configuration and the array hyper-parameters from the constructor's arguments."""
        learner = self.learner
        if isinstance(learner, str):
            learner = named(choice("learner", learner, REGRESSORS))
        elif learner is None:
            learner = RandomFeatureRidge()
        elif getattr(learner, "task", None) != "regression":
            raise ValueError(f"learner must be a regressor (task 'regression') or one of {REGRESSORS}, got {learner!r}")
        propensity = self.propensity
        if isinstance(propensity, str):
            choice("propensity", propensity, CLASSIFIERS + ("known",))
            propensity = None if propensity == "known" else named(propensity, "classification")
        elif getattr(propensity, "task", None) != "classification":
            raise ValueError(f"propensity must be a classifier, 'known' or one of {CLASSIFIERS}, got {propensity!r}")
        n_folds = integer("n_folds", self.n_folds, 0)
        clip = tuple(self.propensity_clip) if np.ndim(self.propensity_clip) == 1 else ()
        if len(clip) != 2:
            raise ValueError(f"propensity_clip must be (low, high), got {self.propensity_clip!r}")
        low, high = (finite("propensity_clip", v) for v in clip)
        if not 0.0 <= low < high <= 1.0:
            raise ValueError(f"propensity_clip must satisfy 0 <= low < high <= 1, got {tuple(self.propensity_clip)}")
        bias_clip = np.inf if self.bias_clip is None else finite("bias_clip", self.bias_clip, 0.0, strict=True)
        trim = finite("trim", self.trim, 0.0)
        if trim >= 0.5:
            raise ValueError(f"trim must be in [0, 0.5), got {self.trim!r}")
        if not isinstance(self.relevance, (bool, FeatureRelevance)):
            raise ValueError(f"relevance must be True, False or a learners.FeatureRelevance, got {self.relevance!r}")
        if not isinstance(self.progress, bool):
            raise ValueError(f"progress must be True or False, got {self.progress!r}")
        integer("seed", self.seed, 0)
        if self.seed >= 2**32:
            raise ValueError(f"seed must be below 2**32, got {self.seed}")
        lam, cv_mode = self.preference_weight, None
        if isinstance(lam, str):
            cv_mode, lam = choice("preference_weight", lam, tuple(CV_SUFFIXES)), 1.0
        lam = finite("preference_weight", lam, 0.0)
        method = preset(self.method) if isinstance(self.method, str) else self.method
        if method.estimates_bias and self.cate is not None:  # the Meta-Router's bias learner: a name or a value
            cate = CATE_LEARNERS[choice("cate", self.cate, tuple(CATE_LEARNERS))]() if isinstance(self.cate, str) \
                else self.cate
            method = method.with_cate(cate)
        if cv_mode is not None and not hasattr(method, "select_weight"):
            method = CrossValidatedWeight(method, criterion=CV_SUFFIXES[cv_mode])
        if method.estimates_bias and self.cate is not None and not isinstance(self.cate, str):
            # A CATE learner value is used as given: its outcome, effect and propensity learners and folds
            # are the user's choice, and ``learner`` is ψ̂'s alone. Settings that would be ignored are refused.
            defaults = dict(zip(_PARAMS, MetaRouter.__init__.__defaults__))
            ignored = [f"{name}={getattr(self, name)!r}" for name in ("propensity", "n_folds")
                       if not (type(getattr(self, name)) is type(defaults[name]) and getattr(self, name) == defaults[name])]
            if ignored:
                raise ValueError(f"{', '.join(ignored)} would be ignored: a CATE learner value "
                                 f"(cate={type(self.cate).__name__}(…)) keeps its own propensity and folds; "
                                 "set them on that value")
        else:
            method = method.with_learners(outcome=learner, effect=None if self.learner in (None, "rff") else learner,
                                          propensity=propensity, n_folds=n_folds)
        config = RouterConfig(method=method, quality_learner=learner, scale=self.scale, standardize=self.standardize,
                              relevance=self.relevance if isinstance(self.relevance, FeatureRelevance)
                              else FeatureRelevance() if self.relevance else None)
        cate_hyper = method.hyper()
        if method.estimates_bias:
            cate_hyper = cate_hyper._replace(propensity_clip=jnp.asarray([low, high], jnp.float32),
                                             bias_clip=jnp.asarray(bias_clip, jnp.float32),
                                             trim=jnp.asarray(trim, jnp.float32))
        self.config = config
        self.hyper = RouterHyper(jnp.asarray(lam, jnp.float32), cate_hyper, learner.hyper(),
                                 config.relevance.hyper() if config.relevance else {})
        # The compiled programs are keyed by the configuration's structure only: numbers are in ``hyper``.
        self._static = structure(config)

    def fit(
        self,
        gold_features: ArrayLike | Dataset,
        gold_label: ArrayLike | None = None,
        preference_features: ArrayLike | None = None,
        preference_label: ArrayLike | None = None,
        *,
        gold_sample_weight: ArrayLike | None = None,
        preference_sample_weight: ArrayLike | None = None,
        all_gold_label: ArrayLike | None = None,
    ) -> "MetaRouter":
        """Fit on gold ``(X_G, r)`` and preference ``(X_P, y)`` data, or on a ready :class:`Dataset`.

        ``gold_sample_weight`` / ``preference_sample_weight`` are per-row sample weights (not λ,
        which is the constructor's ``preference_weight``). They count rows, as the bootstrap's do: a weight
        of 2 counts the row twice (its copies stay in one cross-fitting fold) and 0 drops it, so their scale
        matters (penalties are absolute, as scikit-learn's); weights that are only relative belong rescaled
        to mean 1 within each source. ``all_gold_label`` (gold labels for every pooled row) is needed only
        by ``"all_golden"``.
        """
        names = None
        if isinstance(gold_features, Dataset):
            data = gold_features
        else:
            if gold_label is None or preference_features is None or preference_label is None:
                raise ValueError("fit needs gold_features, gold_label, preference_features and preference_label")
            names, gold_features, preference_features = _frame_names(gold_features, preference_features)
            data = from_sources(gold_features, gold_label, preference_features, preference_label,
                                gold_sample_weight, preference_sample_weight)
        gl = None
        if all_gold_label is not None:
            gl_np = _as_float("all_gold_label", all_gold_label, 1)
            _check_finite("all_gold_label", gl_np)
            gl = jnp.asarray(gl_np, jnp.float32)
        fit, info = _fit_jit(jax.random.key(self.seed), data, self._static, self.hyper, gl)
        return self._finish(fit, info, data, names, gl is not None)

    def _finish(self, fit, info, data: Dataset, names, all_gold: bool, stacklevel: int = 3) -> "MetaRouter":
        """Keep a fit's results: name the first stage that went non-finite, else keep the fit and warn."""
        self._reset()
        self.info_, self.data_ = info, data  # diagnostics stay readable if the fit fails
        self.feature_names_in_, self.n_features_in_ = names, int(data.features.shape[1])
        self._all_gold = all_gold
        stage = _first_nonfinite(info)
        if stage is not None:
            name, count, what = stage
            raise FloatingPointError(
                f"{count} non-finite values at stage '{name}' ({what}); every earlier stage was finite. "
                "info_ holds each stage's count (info_.nonfinite, info_.cate.nonfinite) and the overlap "
                "diagnostics (info_.cate.propensity: range, histogram by source, effective sizes)")
        self.fit_ = fit
        for message in _warnings(info, self.hyper):
            warnings.warn(message, RuntimeWarning, stacklevel=stacklevel)
        return self

    def _kept_replicates(self, n_replicates, bootstrap, seed, retune) -> ReplicateFits:
        """The bootstrap's replicate fits: fitted once per setting (chunks of replicates, one progress step
        each) and kept for every later interval."""
        self._check_fitted()
        n_replicates = integer("n_replicates", n_replicates, 2)
        choice("bootstrap", bootstrap, WEIGHT_KINDS)
        seed = self.seed + 1 if seed is None else integer("seed", seed, 0)
        setting = (n_replicates, bootstrap, seed, bool(retune))
        if self._replicates is not None and self._replicates[0] == setting:
            return self._replicates[1]
        if self.data_ is None:
            raise RuntimeError("this router was saved without its training data, which intervals refit on; "
                               "save it with keep_data=True to compute intervals after loading")
        W = bootstrap_weights(jax.random.key(seed), self.data_.is_gold, n_replicates, bootstrap)
        chunk = equal_chunk(n_replicates, _default_chunk(self.data_))  # as bootstrap_predict's chunks
        parts = []
        with _progress(self.progress, n_replicates, "bootstrap replicates") as bar:
            for start in range(0, n_replicates, chunk):
                w = W[start:start + chunk]
                if w.shape[0] < chunk:  # the same shape every call: one compiled program
                    w = jnp.concatenate([w, jnp.ones((chunk - w.shape[0], w.shape[1]), w.dtype)])
                reps = _replicates_jit(jax.random.key(self.seed), self.data_, w, self._static, self.hyper,
                                       chunk=chunk, retune=bool(retune))
                parts.append(jax.tree_util.tree_map(lambda a, k=min(chunk, n_replicates - start): a[:k], reps.fits))
                shared, std = reps.shared, reps.standardizer
                bar.update(min(chunk, n_replicates - start))
        fits = jax.tree_util.tree_map(lambda *a: jnp.concatenate(a), *parts)
        self._replicates = (setting, ReplicateFits(std, shared, fits))
        return self._replicates[1]

    def _draws(self, x, target, n_replicates, bootstrap, seed, retune=True):
        if target == "bias" and not self.config.method.estimates_bias:
            raise ValueError(f"only the Meta-Router estimates a bias; this fit is {self.config.method.name!r}")
        reps = self._kept_replicates(n_replicates, bootstrap, seed, retune)
        return _replicate_predict_jit(self._static, reps, x, target, retune=bool(retune))

    def draws(self, X, target="quality", n_replicates=200, bootstrap="multinomial", seed=None, retune=True) -> np.ndarray:
        """Bootstrap draws of ψ(x) (``target="quality"``) or Δ(x) (``"bias"``) at the queries ``X``: ``(B, n)``.

        From the kept replicates the interval methods use (fitted on the first call with these settings).
        The draws feed ``inference.route_with_uncertainty``, ``inference.interval`` and
        ``inference.policy_value_draws``, like posterior draws from ``mrjax.bayes``.
        """
        choice("target", target, ("quality", "bias"))
        return np.asarray(self._draws(self._features(X), target, n_replicates, bootstrap, seed, retune))

    def _interval(self, X, target, n_replicates, level, kind, bootstrap, seed, retune):
        level = unit_interval("level", level)
        x = self._features(X)
        draws = self._draws(x, target, n_replicates, bootstrap, seed, retune)
        predict = _quality_jit if target == "quality" else _bias_jit
        lo, hi = interval(draws, predict(self.config, self.fit_, x), level, kind)
        return self._out(X, lo, "lower"), self._out(X, hi, "upper")

    def quality_interval(self, X, n_replicates=200, level=0.95, kind="percentile", bootstrap="multinomial", seed=None,
                         retune=True):
        """Bootstrap interval for ψ(x): ``(lower, upper)``, each ``(n,)``.

        The whole pipeline is refitted for each replicate (stratified ``multinomial``,
        ``dirichlet`` or ``poisson`` weights) in one compiled program; ``kind`` is
        ``percentile``, ``basic`` or ``normal``. ``retune=False`` holds the selected
        penalties (and a cross-validated λ) at this fit's choices (faster; see
        ``inference.bootstrap_predict``). The replicates are kept: later intervals with the
        same bootstrap settings, at any queries, refit nothing.
        """
        return self._interval(X, "quality", n_replicates, level, kind, bootstrap, seed, retune)

    def effect_interval(self, X, n_replicates=200, level=0.95, kind="percentile", bootstrap="multinomial", seed=None,
                        retune=True):
        """Bootstrap interval for the bias Δ(x): ``(lower, upper)``, each ``(n,)`` (see ``quality_interval``)."""
        return self._interval(X, "bias", n_replicates, level, kind, bootstrap, seed, retune)

    def value_interval(self, X, cost_weights, n_replicates=200, level=0.95, kind="percentile",
                       bootstrap="multinomial", seed=None, cost_primary=1.0, cost_alternative=0.0, retune=True):
        """Value per query of the fitted (plug-in) policy on the queries ``X`` at each cost weight.

        ``V(w) = mean_q (ψ(q) − w·ΔC(q)) · 1[ψ̂(q) > w·ΔC(q)]``, estimated with ψ̂ and
        bootstrapped with the policy held fixed. Returns ``(estimate, lower, upper)``,
        each ``(W,)``. Simultaneous bands over ``w``: ``inference.simultaneous_band`` on
        ``inference.policy_value_draws``.
        """
        level = unit_interval("level", level)
        w = np.atleast_1d(self._weights(cost_weights))
        x = self._features(X)
        cp, ca = self._costs(x.shape[0], cost_primary, cost_alternative)
        draws = self._draws(x, "quality", n_replicates, bootstrap, seed, retune)
        v_draws, v_point = policy_value_draws(draws, _quality_jit(self.config, self.fit_, x),
                                              jnp.asarray(w, jnp.float32), cp, ca)
        lo, hi = interval(v_draws, v_point, level, kind)
        return np.asarray(v_point), np.asarray(lo), np.asarray(hi)

    def _check_fitted(self) -> None:
        if self.fit_ is None:
            raise RuntimeError("call fit() first" if self.info_ is None else
                               "the last fit failed (see its FloatingPointError and info_); fit again")

    def _features(self, X: ArrayLike) -> jnp.ndarray:
        self._check_fitted()
        if self.feature_names_in_ is not None and hasattr(X, "columns"):
            missing = [c for c in self.feature_names_in_ if c not in X.columns]
            if missing:
                raise ValueError(f"X: feature columns {missing[:10]} of the training data are missing "
                                 f"({len(missing)} of {len(self.feature_names_in_)})")
            X = X[list(self.feature_names_in_)]
        x = _as_float("X", X, 2)
        d = self.fit_.standardizer.mean.shape[0]
        if x.shape[1] != d:
            raise ValueError(f"X: expected {d} feature columns (as in training), got {x.shape[1]}")
        _check_finite("X", x)
        return jnp.asarray(x, jnp.float32)

    @staticmethod
    def _out(X, values, name: str):
        """NumPy results, or pandas indexed like ``X`` when ``X`` is a DataFrame: ``(n,)`` → Series,
        ``(W, n)`` → DataFrame of one column per row of ``values``."""
        values = np.asarray(values)
        index = getattr(X, "index", None)
        if index is None or not hasattr(X, "columns"):
            return values
        import pandas as pd

        if values.ndim == 1:
            return pd.Series(values, index=index, name=name)
        return pd.DataFrame(values.T, index=index, columns=name)

    def quality_gain(self, X: ArrayLike) -> np.ndarray:
        """ψ̂(x): estimated gold-standard gain of the primary model, shape ``(n,)``."""
        return self._out(X, _quality_jit(self.config, self.fit_, self._features(X)), "quality_gain")

    def predict(self, X: ArrayLike) -> np.ndarray:
        """ψ̂(x), as ``quality_gain`` (the estimator protocol's prediction)."""
        return self.quality_gain(X)

    def effect(self, X: ArrayLike) -> np.ndarray:
        """Δ̂(x): estimated preference bias (gold minus preference), shape ``(n,)``."""
        return self._out(X, _bias_jit(self.config, self.fit_, self._features(X)), "bias")

    def _costs(self, n: int, cost_primary, cost_alternative):
        """Costs as float32 arrays, finite (checked here, eagerly); shapes are ``router.cost_gap``'s to check."""
        out = []
        for name, c in (("cost_primary", cost_primary), ("cost_alternative", cost_alternative)):
            arr = np.asarray(c, dtype=np.float64)
            if not np.isfinite(arr).all():
                i = int(np.nonzero(~np.isfinite(np.atleast_1d(arr)))[0][0])
                raise ValueError(f"{name}: non-finite cost at query {i} ({np.atleast_1d(arr)[i]!r})")
            out.append(jnp.asarray(arr, jnp.float32))
        return out

    @staticmethod
    def _weights(cost_weight) -> np.ndarray:
        w = np.asarray(cost_weight, dtype=np.float64)
        if w.ndim > 1 or not np.isfinite(w).all():
            raise ValueError(f"cost_weight must be a finite number or a 1-D array of them, got {cost_weight!r}")
        return w

    def _kept_setting(self) -> tuple:
        """The bootstrap settings of the kept replicates (``n_replicates, bootstrap, seed, retune``), else the
        defaults."""
        return (200, "multinomial", None, True) if self._replicates is None else self._replicates[0]

    def _score(self, X, confidence) -> jnp.ndarray:
        """What routing ranks: ψ̂, or with ``confidence`` α the ⌈α·B⌉-th largest bootstrap draw of ψ."""
        if confidence is None:
            return jnp.asarray(np.asarray(self.quality_gain(X)))
        alpha = unit_interval("confidence", confidence)
        return kth_largest(self._draws(self._features(X), "quality", *self._kept_setting()), alpha)

    def route(self, X: ArrayLike, cost_weight, cost_primary=1.0, cost_alternative=0.0,
              confidence: float | None = None) -> np.ndarray:
        """Route to the primary iff ``ψ̂ − w (C_p − C_a) > 0``; ``(n,)`` or ``(W, n)`` booleans.

        Any finite ``w``: a negative weight also routes queries with ``ψ̂ ≤ 0`` (shares of
        primary calls above ``P(ψ̂ > 0)``); ``calibrate`` finds the weight for a target.
        ``confidence`` α (uncertainty-aware routing, here and in ``sweep`` and ``calibrate``): primary
        iff ``P̂(ψ > w (C_p − C_a)) ≥ α`` over the bootstrap draws (``inference.route_with_uncertainty``),
        the plug-in rule on the ⌈α·B⌉-th largest draw; from the kept replicates (the last ``draws`` or
        interval's settings), else 200 multinomial ones.
        """
        w = self._weights(cost_weight)
        psi = self._score(X, confidence)
        cp, ca = self._costs(psi.shape[0], cost_primary, cost_alternative)
        out = _route_jit(psi, jnp.asarray(w, jnp.float32), cp, ca)
        return self._out(X, out, "to_primary" if w.ndim == 0 else [float(v) for v in w])

    def sweep(self, X: ArrayLike, cost_weights, cost_primary=1.0, cost_alternative=0.0,
              confidence: float | None = None) -> np.ndarray:
        """Share of queries routed to the primary for each cost weight, shape ``(W,)``.

        Exact at every weight from one sort of the queries' breakpoints (``router.tradeoff_curve``
        gives cost, estimated quality and value too); ``confidence`` as in ``route``.
        """
        w = np.atleast_1d(self._weights(cost_weights))
        psi = self._score(X, confidence)
        cp, ca = self._costs(psi.shape[0], cost_primary, cost_alternative)
        return np.asarray(_usage_jit(_breakpoints_jit(psi, cp, ca), jnp.asarray(w, jnp.float32)))

    def calibrate(self, X: ArrayLike, share=None, budget=None, cost_primary=1.0, cost_alternative=0.0,
                  confidence: float | None = None) -> Calibration:
        """The cost weight for a target on the queries ``X`` (unlabelled: the traffic to route).

        ``share``: the weight (any sign) that routes that share of ``X`` to the primary, within
        one query unless tied scores prevent it. ``budget``: the weight that buys the most
        estimated quality with a mean cost per query of at most ``budget`` (never below 0).
        One target or many (``(T,)``). Returns a ``router.Calibration`` of NumPy arrays:
        ``cost_weight``, and the ``usage`` and mean ``cost`` each weight achieves on ``X``.
        Needs ``C_p ≥ C_a`` on every query. With ``confidence`` (as in ``route``), for that rule.
        """
        if (share is None) == (budget is None):
            raise ValueError("calibrate needs exactly one of share= or budget=")
        psi = self._score(X, confidence)
        cp, ca = self._costs(psi.shape[0], cost_primary, cost_alternative)
        bp = _breakpoints_jit(psi, cp, ca)
        _check_nonnegative_gap(bp)
        if share is not None:
            target = np.atleast_1d(np.asarray(share, dtype=np.float64))
            if target.ndim > 1 or not (np.isfinite(target).all() and (target >= 0).all() and (target <= 1).all()):
                raise ValueError(f"share must be in [0, 1] (one value or a 1-D array), got {share!r}")
            cal = _calibrate_share_jit(bp, jnp.asarray(target, jnp.float32))
        else:
            target = np.atleast_1d(np.asarray(budget, dtype=np.float64))
            if target.ndim > 1 or not np.isfinite(target).all():
                raise ValueError(f"budget must be a finite number or a 1-D array of them, got {budget!r}")
            cal = _calibrate_budget_jit(bp, jnp.asarray(target, jnp.float32))
            # In float64, as the caller's budget is: the engine's float32 mean can sit ulps above a budget equal to it.
            least = float(np.mean(np.broadcast_to(np.asarray(cost_alternative, np.float64), psi.shape)))
            if (target < least).any():
                raise ValueError(f"budget {float(target[target < least].min())!r} is below the cost of routing every "
                                 f"query to the alternative ({least!r} per query)")
        return Calibration(*(np.asarray(a) for a in cal))

    def _rows(self) -> tuple[int, int]:
        """(gold, preference) training rows, also for a router loaded without its data."""
        if self.data_ is not None:
            return int(self.data_.n_gold), int(self.data_.n_preference)
        return self._sizes

    def summary(self):
        """The fit at a glance: a one-column DataFrame (``value``) of its settings and diagnostics."""
        import pandas as pd

        self._check_fitted()
        info, method = self.info_, self.config.method
        inner = getattr(method, "method", method)
        rows = {
            "method": inner.name + (" (λ by cross-validation)" if inner is not method else ""),
            "bias learner": type(inner.cate).__name__ if getattr(inner, "estimates_bias", False) else "—",
            "gold rows": self._rows()[0],
            "preference rows": self._rows()[1],
            "features": self.n_features_in_,
            "scale constant": float(info.scale_constant),
            "scale degenerate": bool(info.scale_degenerate),
            "preference weight λ": float(info.preference_weight),
            "quality learner": _learner_name(self.config.quality_learner, info.quality_hyper),
            "quality penalty": float(np.asarray(info.quality_hyper.get("penalty", np.nan))),
        }
        for prefix, rel in (("", info.relevance), ("quality ", info.quality_relevance)):
            if rel:  # the shortest learned length-scales: the features the labels (ψ̂'s: its targets) depend on most
                ell = np.asarray(rel["lengthscale"])
                z = float(np.asarray(rel.get("held_out_z", np.nan)))
                min_z = float(np.asarray(rel.get("min_z", np.nan)))
                names = self.feature_names_in_ or [f"x{j}" for j in range(ell.shape[0])]
                rejected = z <= min_z  # False when unchecked (held_out=False: z is nan)
                rows[f"{prefix}relevance held-out z"] = z
                rows[f"{prefix}relevant features"] = (
                    f"none kept (held-out improvement {z:.2g} se ≤ {min_z:g})" if rejected
                    else ", ".join(f"{names[j]} ({ell[j]:.3g})" for j in np.argsort(ell)[:5]))
        if isinstance(self.config.quality_learner, Auto):
            rows["quality cv losses"] = _losses(self.config.quality_learner, info.quality_hyper)
        cate = getattr(inner, "cate", None)
        for part in ("outcome", "effect"):  # the bias learner's models that chose a candidate (cross-fitted: per model)
            used = getattr(info.cate, f"{part}_hyper", ()) if getattr(inner, "estimates_bias", False) else ()
            learner = getattr(cate, part, None)
            if isinstance(learner, Auto) and used:
                rows[f"{part} learners"] = ", ".join(_learner_name(learner, h) for h in used)
        if getattr(inner, "estimates_bias", False):
            p = info.cate.propensity
            ess = np.asarray(p.ess) if np.size(p.ess) else np.full(2, np.nan)
            rows.update({
                "propensity min": float(p.min_propensity), "propensity max": float(p.max_propensity),
                "rows clipped (propensity)": int(p.n_clipped), "ESS gold": float(ess[0]),
                "ESS preference": float(ess[1]), "rows trimmed or masked": int(info.cate.n_masked),
                "rows clipped (bias)": int(info.cate.n_clipped_bias),
                "propensity gradient norm": float(p.convergence),
            })
        rows["non-finite values"] = int(sum(int(v) for v in info.nonfinite.values()) +
                                        sum(int(v) for v in getattr(info.cate, "nonfinite", {}).values()))
        return pd.DataFrame({"value": pd.Series(rows, dtype=object)})

    def save(self, path: str, keep_data: bool = False, overwrite: bool = False, metadata: dict | None = None) -> None:
        """Save the fitted router to the folder ``path``: ``manifest.json`` and ``arrays.npz`` (no pickle).

        ``keep_data=True`` also stores the training data (``data.npz``), which interval methods refit
        on; without it a loaded router predicts, routes and calibrates but has no intervals. The
        folder is written whole or not at all; an existing one is replaced only with ``overwrite``.
        ``metadata``: any JSON data kept with the router (``metadata_`` after loading).
        """
        self._check_fitted()
        check_destination(path, overwrite)
        params = {name: _persist.encode(getattr(self, name), name) for name in _PARAMS}
        arrays = {**_persist.flatten(self.fit_, "fit"), **_persist.flatten(self.info_, "info")}
        data = None
        if keep_data:
            if self.data_ is None:
                raise ValueError("keep_data=True: this router has no training data (it was loaded without it)")
            data = {f: np.asarray(getattr(self.data_, f)) for f in Dataset._fields}
        std = self.fit_.standardizer
        gold, pref = self._rows()
        manifest = {
            "params": params,
            "rows": {"gold": gold, "preference": pref, "total": gold + pref},
            "n_features": self.n_features_in_,
            "feature_names": None if self.feature_names_in_ is None else [str(c) for c in self.feature_names_in_],
            "all_gold_label": bool(getattr(self, "_all_gold", False)),
            "standardizer": {"mean": np.asarray(std.mean).tolist(), "scale": np.asarray(std.scale).tolist()},
            "summary": {k: (v if isinstance(v, (str, bool, int)) or v is None else float(v))
                        for k, v in self.summary()["value"].items()},
            "metadata": self.metadata_ if metadata is None else metadata,
        }
        json.dumps(manifest["metadata"])  # JSON data only: fails here, before anything is written
        with results_folder(path) as tmp:
            _persist.write(tmp, manifest, arrays, data)

    @classmethod
    def load(cls, path: str, classes: Sequence[type] = ()) -> "MetaRouter":
        """A router saved by ``save``: the same ψ̂, bit for bit, in any process.

        ``classes``: your own learner or method types used in the saved router (only mrjax's are
        looked up otherwise). A folder from a newer format, a missing file or an altered array raises
        ``ValueError`` naming it.
        """
        manifest = _persist.read_manifest(path)
        known = {f"{c.__module__}:{c.__qualname__}": c for c in classes}
        try:
            params = {k: _persist.decode(v, known) for k, v in manifest["params"].items()}
            if manifest["format_version"] < 2 and params.get("relevance") not in (None, False):
                # Format 1 predates ψ̂'s own relevance: its Meta-Routers' ψ̂ used the shared one.
                rel = FeatureRelevance() if params["relevance"] is True else params["relevance"]
                params["relevance"] = dataclasses.replace(rel, quality=False)
            router = cls(**params)
            rows, d = manifest["rows"], int(manifest["n_features"])
        except (KeyError, TypeError) as err:
            raise _persist.LoadError(f"{path}: the manifest is incomplete ({err})") from None
        n = int(rows["total"])
        data_spec = Dataset(*(jax.ShapeDtypeStruct(s, jnp.float32) for s in ((n, d), (n,), (n,), (n,))))
        gl_spec = jax.ShapeDtypeStruct((n,), jnp.float32) if manifest.get("all_gold_label") else None
        template = jax.eval_shape(lambda k, data, h, gl: fit_router(k, data, router.config, h, gl),
                                  jax.random.key(0), data_spec, router.hyper, gl_spec)
        arrays = _persist.read_arrays(path, _persist.ARRAYS, manifest["arrays"])
        router.fit_ = _persist.unflatten(template[0], arrays, "fit")
        router.info_ = _persist.unflatten(template[1], arrays, "info")
        if manifest.get("data") is not None:
            data = _persist.read_arrays(path, _persist.DATA, manifest["data"])
            router.data_ = Dataset(*(jnp.asarray(data[f]) for f in Dataset._fields))
        names = manifest.get("feature_names")
        router.feature_names_in_ = None if names is None else list(names)
        router.n_features_in_ = d
        router._sizes = (int(rows["gold"]), int(rows["preference"]))
        router._all_gold = bool(manifest.get("all_gold_label"))
        router.metadata_ = manifest.get("metadata")
        return router


def _frame_names(gold, preference):
    """Feature names when both feature sets are DataFrames (the preference columns put in the gold order)."""
    g, p = hasattr(gold, "columns"), hasattr(preference, "columns")
    if not (g or p):
        return None, gold, preference
    if g != p:
        raise ValueError("gold_features and preference_features: give both as DataFrames or neither")
    names = [str(c) for c in gold.columns]
    missing = [c for c in gold.columns if c not in preference.columns]
    extra = [c for c in preference.columns if c not in gold.columns]
    if missing or extra:
        raise ValueError(f"preference_features: columns differ from gold_features' (missing {missing[:10]}, "
                         f"extra {extra[:10]})")
    return names, gold, preference[list(gold.columns)]


def _progress(show: bool, total: int, what: str):
    """A tqdm bar on stderr (tqdm already comes with numpyro), or a silent stand-in."""
    if show:
        from tqdm import tqdm

        return tqdm(total=total, desc=f"mrjax: {what}", unit="", leave=False, file=sys.stderr)
    return _Silent()


class _Silent:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def update(self, n=1):
        pass
