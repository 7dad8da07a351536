"""The user-facing facade: a ``MetaRouter`` class holding a fitted pytree.

Integer seeds are accepted here only; everything below takes explicit keys.
"""
from __future__ import annotations

import warnings
from typing import Sequence

import jax
import jax.numpy as jnp
import numpy as np

from mrjax._typing import ArrayLike
from mrjax.cate._cate import CateConfig, default_cate_hyper
from mrjax.data._dataset import Dataset, _as_float, _check_finite, from_sources
from mrjax.inference._bootstrap import bootstrap_predict, bootstrap_weights, interval
from mrjax.inference._value import policy_value_draws
from mrjax.learners._base import Learner
from mrjax.learners._linear import Logistic, RandomFeatureRidge
from mrjax.router._fit import CV_GRID, RouterConfig, RouterHyper, fit_router, predict_quality, predict_router_bias
from mrjax.router._rule import route as _route
from mrjax.router._tradeoff import Calibration, breakpoints, calibrate_budget, calibrate_share, tradeoff_curve

# MetaRouter(preference_weight=...) modes that choose λ by cross-validation → RouterConfig.cv_criterion
CV_MODES = {"cv": "squared_error", "cv_routing": "routing"}

_fit_jit = jax.jit(fit_router, static_argnames=("config",))


_bootstrap_jit = jax.jit(bootstrap_predict, static_argnames=("config", "target", "chunk", "retune"))


class MetaRouter:
    """Fit a router's quality gain ψ̂ from gold and preference labels, then route.

    Parameters
    ----------
    method : ``"meta"`` (default) or a baseline: ``"golden"``, ``"preference"``,
        ``"pooled"``, ``"mean_shift"``, ``"all_golden"``.
    cate : the bias learner, ``"r"``, ``"dr"``, ``"x"``, ``"t"`` or ``"s"``.
    learner : regressor used for the outcome models, the bias and ψ̂
        (random-feature ridge by default).
    propensity : classifier for ``P(gold | x)``, or ``"known"`` when the gold rows were
        drawn at random (then the gold share ``n / (n + m)`` is used).
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
        scales (principal components of embeddings: the leading directions carry the
        topic); ``False`` uses them as given.
    seed : int.

    Attributes (after ``fit``)
    --------------------------
    fit_ : RouterFit pytree; info_ : RouterInfo diagnostics.
    """

    def __init__(
        self,
        method: str = "meta",
        cate: str = "r",
        learner: Learner | None = None,
        propensity: Learner | str = "logistic",
        n_folds: int = 5,
        scale: str = "variance",
        preference_weight: float | str = 1.0,
        propensity_clip: Sequence[float] = (1e-3, 1 - 1e-3),
        bias_clip: float | None = None,
        standardize: bool | str = True,
        seed: int = 0,
    ):
        effect_learner = learner  # None: the CATE default for this kind
        learner = RandomFeatureRidge() if learner is None else learner
        if isinstance(propensity, str):
            if propensity not in ("logistic", "known"):
                raise ValueError(f"propensity must be a classifier, 'logistic' or 'known', got {propensity!r}")
            propensity = Logistic() if propensity == "logistic" else None
        low, high = (float(v) for v in propensity_clip)
        if not 0.0 <= low < high <= 1.0:
            raise ValueError(f"propensity_clip must satisfy 0 <= low < high <= 1, got {tuple(propensity_clip)}")
        grid, criterion = None, "squared_error"
        if isinstance(preference_weight, str):
            if preference_weight not in CV_MODES:
                raise ValueError(f"preference_weight must be a number >= 0, 'cv' or 'cv_routing', got {preference_weight!r}")
            grid, criterion, preference_weight = CV_GRID, CV_MODES[preference_weight], 1.0
        if preference_weight < 0 or not np.isfinite(preference_weight):
            raise ValueError(f"preference_weight must be finite and >= 0, got {preference_weight}")
        self.config = RouterConfig(
            method=method,
            cate=CateConfig(kind=cate, propensity_learner=propensity, outcome_learner=learner,
                            effect_learner=effect_learner, n_folds=n_folds),
            quality_learner=learner,
            scale=scale,
            standardize=standardize,
            preference_weight_grid=grid,
            cv_criterion=criterion,
        )
        cate_hyper = default_cate_hyper(self.config.cate)._replace(
            propensity_clip=jnp.asarray([low, high], jnp.float32),
            bias_clip=jnp.asarray(np.inf if bias_clip is None else bias_clip, jnp.float32),
        )
        self.hyper = RouterHyper(jnp.asarray(preference_weight, jnp.float32), cate_hyper, learner.hyper())
        self.seed = int(seed)
        self.fit_ = None
        self.info_ = None

    def fit(
        self,
        gold_features: ArrayLike | Dataset,
        gold_label: ArrayLike | None = None,
        preference_features: ArrayLike | None = None,
        preference_label: ArrayLike | None = None,
        *,
        gold_weight: ArrayLike | None = None,
        preference_weight: ArrayLike | None = None,
        all_gold_label: ArrayLike | None = None,
    ) -> "MetaRouter":
        """Fit on gold ``(X_G, r)`` and preference ``(X_P, y)`` data, or on a ready :class:`Dataset`.

        ``all_gold_label`` (gold labels for every pooled row) is needed only by ``"all_golden"``.
        """
        if isinstance(gold_features, Dataset):
            data = gold_features
        else:
            if gold_label is None or preference_features is None or preference_label is None:
                raise ValueError("fit needs gold_features, gold_label, preference_features and preference_label")
            data = from_sources(gold_features, gold_label, preference_features, preference_label,
                                gold_weight, preference_weight)
        gl = None
        if all_gold_label is not None:
            gl_np = _as_float("all_gold_label", all_gold_label, 1)
            _check_finite("all_gold_label", gl_np)
            gl = jnp.asarray(gl_np, jnp.float32)
        fit, info = _fit_jit(jax.random.key(self.seed), data, self.config, self.hyper, gl)
        if int(info.n_nonfinite) > 0:
            raise FloatingPointError(
                f"{int(info.n_nonfinite)} non-finite training targets after debiasing; "
                "check the propensity diagnostics (info_.cate.propensity) and the clip levels"
            )
        p = info.cate.propensity
        if int(p.n_extreme) > 0:
            warnings.warn(
                f"the propensity model returned 0 or 1 on {int(p.n_extreme)} rows (no overlap there); "
                f"they were clipped to {tuple(np.asarray(self.hyper.cate.propensity_clip).tolist())}",
                RuntimeWarning, stacklevel=2)
        self.fit_, self.info_, self.data_ = fit, info, data
        return self

    def _draws(self, x, target, n_replicates, bootstrap, seed, retune=True):
        if int(n_replicates) < 2:
            raise ValueError(f"n_replicates must be at least 2, got {n_replicates}")
        if target == "bias" and self.config.method != "meta":
            raise ValueError(f"only the Meta-Router estimates a bias; this fit is {self.config.method!r}")
        W = bootstrap_weights(jax.random.key(self.seed + 1 if seed is None else seed), self.data_.is_gold,
                              int(n_replicates), bootstrap)
        return _bootstrap_jit(jax.random.key(self.seed), self.data_, x, W, self.config, self.hyper, target,
                              retune=bool(retune))

    def _interval(self, X, target, n_replicates, level, kind, bootstrap, seed, retune):
        if not 0.0 < level < 1.0:
            raise ValueError(f"level must be in (0, 1), got {level}")
        x = self._features(X)
        draws = self._draws(x, target, n_replicates, bootstrap, seed, retune)
        predict = predict_quality if target == "quality" else predict_router_bias
        lo, hi = interval(draws, predict(self.config, self.fit_, x), level, kind)
        return np.asarray(lo), np.asarray(hi)

    def quality_interval(self, X, n_replicates=200, level=0.95, kind="percentile", bootstrap="multinomial", seed=None,
                         retune=True):
        """Bootstrap interval for ψ(x): ``(lower, upper)``, each ``(n,)``.

        The whole pipeline is refitted for each replicate (stratified ``multinomial``,
        ``dirichlet`` or ``poisson`` weights) in one compiled program; ``kind`` is
        ``percentile``, ``basic`` or ``normal``. ``retune=False`` holds the selected
        penalties (and a cross-validated λ) at this fit's choices (faster; see
        ``inference.bootstrap_predict``).
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
        if not 0.0 < level < 1.0:
            raise ValueError(f"level must be in (0, 1), got {level}")
        w = np.atleast_1d(self._weights(cost_weights))
        x = self._features(X)
        cp, ca = self._costs(x.shape[0], cost_primary, cost_alternative)
        draws = self._draws(x, "quality", n_replicates, bootstrap, seed, retune)
        v_draws, v_point = policy_value_draws(draws, predict_quality(self.config, self.fit_, x),
                                              jnp.asarray(w, jnp.float32), cp, ca)
        lo, hi = interval(v_draws, v_point, level, kind)
        return np.asarray(v_point), np.asarray(lo), np.asarray(hi)

    def _features(self, X: ArrayLike) -> jnp.ndarray:
        if self.fit_ is None:
            raise RuntimeError("call fit() first")
        x = _as_float("X", X, 2)
        d = self.fit_.standardizer.mean.shape[0]
        if x.shape[1] != d:
            raise ValueError(f"X: expected {d} feature columns (as in training), got {x.shape[1]}")
        _check_finite("X", x)
        return jnp.asarray(x, jnp.float32)

    def quality_gain(self, X: ArrayLike) -> np.ndarray:
        """ψ̂(x): estimated gold-standard gain of the primary model, shape ``(n,)``."""
        return np.asarray(predict_quality(self.config, self.fit_, self._features(X)))

    def effect(self, X: ArrayLike) -> np.ndarray:
        """Δ̂(x): estimated preference bias (gold minus preference), shape ``(n,)``."""
        return np.asarray(predict_router_bias(self.config, self.fit_, self._features(X)))

    def _costs(self, n: int, cost_primary, cost_alternative):
        out = []
        for name, c in (("cost_primary", cost_primary), ("cost_alternative", cost_alternative)):
            arr = np.asarray(c, dtype=np.float64)
            if arr.ndim > 1 or (arr.ndim == 1 and arr.shape[0] != n):
                raise ValueError(f"{name}: expected a scalar or shape ({n},) to match the {n} queries, got {arr.shape}")
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

    def route(self, X: ArrayLike, cost_weight, cost_primary=1.0, cost_alternative=0.0) -> np.ndarray:
        """Route to the primary iff ``ψ̂ − w (C_p − C_a) > 0``; ``(n,)`` or ``(W, n)`` booleans.

        Any finite ``w``: a negative weight also routes queries with ``ψ̂ ≤ 0`` (shares of
        primary calls above ``P(ψ̂ > 0)``); ``calibrate`` finds the weight for a target.
        """
        w = self._weights(cost_weight)
        psi = jnp.asarray(self.quality_gain(X))
        cp, ca = self._costs(psi.shape[0], cost_primary, cost_alternative)
        return np.asarray(_route(psi, jnp.asarray(w, jnp.float32), cp, ca))

    def sweep(self, X: ArrayLike, cost_weights, cost_primary=1.0, cost_alternative=0.0) -> np.ndarray:
        """Share of queries routed to the primary for each cost weight, shape ``(W,)``.

        Exact at every weight from one sort of the queries' breakpoints (``router.tradeoff_curve``
        gives cost, estimated quality and value too).
        """
        w = np.atleast_1d(self._weights(cost_weights))
        psi = jnp.asarray(self.quality_gain(X))
        cp, ca = self._costs(psi.shape[0], cost_primary, cost_alternative)
        return np.asarray(tradeoff_curve(breakpoints(psi, cp, ca), jnp.asarray(w, jnp.float32)).usage)

    def calibrate(self, X: ArrayLike, share=None, budget=None, cost_primary=1.0, cost_alternative=0.0) -> Calibration:
        """The cost weight for a target on the queries ``X`` (unlabelled: the traffic to route).

        ``share``: the weight (any sign) that routes that share of ``X`` to the primary, within
        one query unless tied scores prevent it. ``budget``: the weight that buys the most
        estimated quality with a mean cost per query of at most ``budget`` (never below 0).
        One target or many (``(T,)``). Returns a ``router.Calibration`` of NumPy arrays:
        ``cost_weight``, and the ``usage`` and mean ``cost`` each weight achieves on ``X``.
        Needs ``C_p ≥ C_a`` on every query.
        """
        if (share is None) == (budget is None):
            raise ValueError("calibrate needs exactly one of share= or budget=")
        psi = jnp.asarray(self.quality_gain(X))
        cp, ca = self._costs(psi.shape[0], cost_primary, cost_alternative)
        bp = breakpoints(psi, cp, ca)
        if share is not None:
            target = np.atleast_1d(np.asarray(share, dtype=np.float64))
            if target.ndim > 1 or not (np.isfinite(target).all() and (target >= 0).all() and (target <= 1).all()):
                raise ValueError(f"share must be in [0, 1] (one value or a 1-D array), got {share!r}")
            cal = calibrate_share(bp, jnp.asarray(target, jnp.float32))
        else:
            target = np.atleast_1d(np.asarray(budget, dtype=np.float64))
            if target.ndim > 1 or not np.isfinite(target).all():
                raise ValueError(f"budget must be a finite number or a 1-D array of them, got {budget!r}")
            cal = calibrate_budget(bp, jnp.asarray(target, jnp.float32))
            least = float(bp.base_cost)
            if (target < least).any():
                raise ValueError(f"budget {target[target < least].min()!r} is below the cost of routing every "
                                 f"query to the alternative ({least!r} per query)")
        return Calibration(*(np.asarray(a) for a in cal))
