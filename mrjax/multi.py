"""Routing among ``K`` models: one Meta-Router per model for its gain over a reference model.

Model ``k``'s quality gain over the reference ``r`` is ``ψ_k(x) = E[gold_k − gold_r | x]``; its
preference labels are the judge's ``pref_k − pref_r``, biased by ``Δ_k(x)``. Each ``ψ_k`` is a
two-model Meta-Router problem on the same rows, so the ``K − 1`` fits differ only in their labels
and run as one vmapped, compiled program. Queries then go to ``argmax_k ψ̂_k(x) − w·c_k(x)``
(``ψ̂_r = 0``), with the exact curves and budget calibration of ``router.multi_breakpoints``.
"""
from __future__ import annotations

import json
import os
from typing import Sequence

import jax
import jax.numpy as jnp
import numpy as np

from mrjax import _persist
from mrjax._checks import integer, unit_interval
from mrjax._output import check_destination, results_folder
from mrjax._typing import ArrayLike
from mrjax.api import MetaRouter, _frame_names
from mrjax.data._dataset import Dataset, _as_float, _check_finite, from_sources
from mrjax.router._fit import fit_router, predict_quality
from mrjax.router._multi import (
    MultiCalibration, MultiCurve, calibrate_multi_budget, multi_breakpoints, multi_curve, route_multi,
)
from mrjax.router._tradeoff import kth_largest


def _fit_each(key, data: Dataset, labels, config, hyper):
    """``fit_router`` once per row of ``labels (M, n)``: the same rows, weights, key and settings."""
    return jax.vmap(lambda y: fit_router(key, data._replace(label=y), config, hyper, None))(labels)


_fit_each_jit = jax.jit(_fit_each, static_argnames=("config",))
_quality_each_jit = jax.jit(jax.vmap(predict_quality, in_axes=(None, 0, None)), static_argnames=("config",))
_breakpoints_jit = jax.jit(multi_breakpoints)
_route_jit = jax.jit(route_multi)
_curve_jit = jax.jit(multi_curve)
_calibrate_jit = jax.jit(calibrate_multi_budget)
FORMAT, FORMAT_VERSION, MANIFEST = "mrjax-multi-router", 1, "multi.json"


def _scores(name: str, scores, n: int):
    """``(values (n, K) float64, column names or None)``, finite, one row per feature row."""
    names = [str(c) for c in scores.columns] if hasattr(scores, "columns") else None
    values = _as_float(name, scores, 2)
    if values.shape[0] != n:
        raise ValueError(f"{name}: {values.shape[0]} rows for {n} feature rows")
    _check_finite(name, values)
    return values, names


class MultiRouter:
    """Fit each model's quality gain over a reference model from gold and preference scores, then route.

    Parameters
    ----------
    reference : the reference model, an index or (for DataFrame scores) a column name; its gain is 0.
        The cheapest model is the natural choice: every gain is then what a costlier model adds.
    **params : the settings of each model's ``MetaRouter`` (``method``, ``cate``, ``learner``, …),
        checked at once.

    Attributes (after ``fit``)
    --------------------------
    models_ : the K model names (score columns) or indices; routers_ : dict model name → fitted
    ``MetaRouter`` of that model's gain (``summary()``, ``effect``, intervals), the reference left out.

    ``save``/``load`` keep a fitted router in a folder (one ``MetaRouter`` folder per gain). ``draws`` and
    ``quality_interval`` bootstrap every gain on one set of resamples; ``route``, ``curve`` and ``calibrate``
    take ``confidence=`` for the uncertainty-aware rule.
    """

    def __init__(self, reference: int | str = 0, **params):
        self.reference = reference
        self.params = params
        self._prototype = MetaRouter(**params)  # checks the settings now
        self.models_, self.routers_, self._fits, self._index = None, None, None, None
        self.metadata_ = None  # JSON data kept by save(metadata=…), after load

    def __repr__(self) -> str:
        inner = repr(self._prototype)[len("MetaRouter("):-1]
        return f"MultiRouter(reference={self.reference!r}{', ' if inner else ''}{inner})"

    def fit(self, gold_features: ArrayLike, gold_scores: ArrayLike, preference_features: ArrayLike,
            preference_scores: ArrayLike, *, gold_sample_weight: ArrayLike | None = None,
            preference_sample_weight: ArrayLike | None = None) -> "MultiRouter":
        """Fit on gold ``(X_G, (n_G, K) scores)`` and preference ``(X_P, (n_P, K) judge scores)``.

        Column ``k`` of each score table is model ``k``'s score on that row; only differences to the
        reference's column are used (a pairwise judge's "k beats the reference" is column ``k`` with
        zeros in the reference's). DataFrame score tables name the models; their columns must agree.
        """
        names, gold_features, preference_features = _frame_names(gold_features, preference_features)
        n_g, n_p = len(gold_features), len(preference_features)
        gs, g_names = _scores("gold_scores", gold_scores, n_g)
        ps, p_names = _scores("preference_scores", preference_scores, n_p)
        if gs.shape[1] != ps.shape[1]:
            raise ValueError(f"gold_scores has {gs.shape[1]} models, preference_scores {ps.shape[1]}")
        K = gs.shape[1]
        if K < 2:
            raise ValueError(f"gold_scores: need at least 2 models (columns), got {K}")
        if g_names is not None and p_names is not None and g_names != p_names:
            raise ValueError(f"preference_scores' columns {p_names} differ from gold_scores' {g_names}")
        models = g_names or p_names or list(range(K))
        if isinstance(self.reference, str):
            if self.reference not in models:
                raise ValueError(f"reference {self.reference!r} is not a model; the models are {models}")
            ref = models.index(self.reference)
        else:
            ref = int(self.reference)
            if not 0 <= ref < K or ref != self.reference:
                raise ValueError(f"reference must be a model index in [0, {K}) or a score column name, got "
                                 f"{self.reference!r}")
        others = [k for k in range(K) if k != ref]
        gains = np.concatenate([gs[:, others] - gs[:, [ref]], ps[:, others] - ps[:, [ref]]]).T  # (K − 1, n)
        data = from_sources(gold_features, gains[0, :n_g], preference_features, gains[0, n_g:], gold_sample_weight,
                            preference_sample_weight)
        proto = self._prototype
        fits, infos = _fit_each_jit(jax.random.key(proto.seed), data, jnp.asarray(gains, jnp.float32), proto._static,
                                    proto.hyper)
        routers = {}
        for j, k in enumerate(others):
            router = MetaRouter(**self.params)
            pick = lambda tree: jax.tree_util.tree_map(lambda a: a[j], tree)
            try:
                router._finish(pick(fits), pick(infos), data._replace(label=jnp.asarray(gains[j], jnp.float32)), names,
                               False, stacklevel=4)
            except FloatingPointError as err:
                raise FloatingPointError(f"model {models[k]!r}: {err}") from None
            routers[models[k]] = router
        self.models_, self.routers_, self._fits, self._index = models, routers, fits, (ref, others)
        return self

    def save(self, path: str, keep_data: bool = False, overwrite: bool = False, metadata: dict | None = None) -> None:
        """Save to the folder ``path``: ``multi.json`` and one ``MetaRouter`` folder per model's gain
        (``MetaRouter.save``'s format, ``keep_data`` as there). Written whole or not at all."""
        self._check_fitted()
        check_destination(path, overwrite)
        ref, others = self._index
        manifest = {"format": FORMAT, "format_version": FORMAT_VERSION, "versions": _persist.versions(),
                    "reference": self.reference, "models": self.models_, "reference_index": ref,
                    "params": {k: _persist.encode(v, k) for k, v in self.params.items()},
                    "routers": {str(k): f"model_{k}" for k in others}, "metadata": metadata}
        json.dumps(manifest)  # JSON data only (model names, metadata): fails here, before anything is written
        with results_folder(path) as tmp:
            for k in others:
                self.routers_[self.models_[k]].save(os.path.join(tmp, f"model_{k}"), keep_data=keep_data)
            with open(os.path.join(tmp, MANIFEST), "w") as f:
                json.dump(manifest, f, indent=2)

    @classmethod
    def load(cls, path: str, classes: Sequence[type] = ()) -> "MultiRouter":
        """A router saved by ``save``: the same gains, bit for bit (``classes`` as in ``MetaRouter.load``)."""
        file = os.path.join(path, MANIFEST)
        if not os.path.isfile(file):
            raise _persist.LoadError(f"{path}: not a saved MultiRouter ({MANIFEST} is missing)")
        with open(file) as f:
            manifest = json.load(f)
        if manifest.get("format") != FORMAT or not isinstance(manifest.get("format_version"), int) \
                or manifest["format_version"] > FORMAT_VERSION:
            raise _persist.LoadError(f"{file}: not a MultiRouter manifest this mrjax reads (format "
                                     f"{manifest.get('format')!r} version {manifest.get('format_version')!r})")
        known = {f"{c.__module__}:{c.__qualname__}": c for c in classes}
        try:
            params = {k: _persist.decode(v, known) for k, v in manifest["params"].items()}
            router = cls(manifest["reference"], **params)
            models, ref = list(manifest["models"]), int(manifest["reference_index"])
            folders = {int(k): v for k, v in manifest["routers"].items()}
        except (KeyError, TypeError, ValueError) as err:
            raise _persist.LoadError(f"{file}: the manifest is incomplete ({err})") from None
        others = sorted(folders)
        routers = {models[k]: MetaRouter.load(os.path.join(path, folders[k]), classes) for k in others}
        router.models_, router.routers_, router._index = models, routers, (ref, others)
        router.metadata_ = manifest.get("metadata")
        router._fits = jax.tree_util.tree_map(lambda *a: jnp.stack(a), *(r.fit_ for r in routers.values()))
        return router

    @property
    def feature_names_in_(self):
        """The training DataFrame's feature columns (None for arrays or before ``fit``)."""
        return None if not self.routers_ else next(iter(self.routers_.values())).feature_names_in_

    def _check_fitted(self) -> None:
        if self.routers_ is None:
            raise RuntimeError("call fit() first")

    def _x(self, X: ArrayLike) -> jnp.ndarray:
        self._check_fitted()
        return next(iter(self.routers_.values()))._features(X)

    def _table(self, X: ArrayLike, values: np.ndarray):
        """``(n, K)`` values: NumPy, or a DataFrame of one column per model indexed like a DataFrame ``X``."""
        if hasattr(X, "columns"):
            import pandas as pd

            return pd.DataFrame(values, index=X.index, columns=self.models_)
        return values

    def _per_model(self, each, shape) -> np.ndarray:
        """``each(router)`` (of ``shape[:-1]``) in each non-reference model's column of ``shape``; 0 for the reference."""
        _, others = self._index
        out = np.zeros(shape, np.float32)
        for k in others:
            out[..., k] = np.asarray(each(self.routers_[self.models_[k]]))
        return out

    def quality_gain(self, X: ArrayLike) -> np.ndarray:
        """``(n, K)``: each model's estimated gain over the reference (its column 0)."""
        x = self._x(X)
        psi = np.asarray(_quality_each_jit(next(iter(self.routers_.values())).config, self._fits, x))  # (K − 1, n)
        out = np.zeros((x.shape[0], len(self.models_)), np.float32)
        out[:, self._index[1]] = psi.T
        return self._table(X, out)

    predict = quality_gain

    def draws(self, X: ArrayLike, n_replicates: int = 200, bootstrap: str = "multinomial", seed: int | None = None,
              retune: bool = True) -> np.ndarray:
        """Bootstrap draws of each model's gain over the reference at the queries ``X``: ``(B, n, K)``, the
        reference's column 0.

        Each model's Meta-Router refits its whole pipeline on the same resamples of the training rows (one
        weight matrix from the seed, for every model), so draw ``b`` of all models is one joint draw; the
        replicates are kept by the models' routers (``routers_``), and later draws, intervals and
        ``confidence`` routing with the same settings refit nothing. Needs the training data
        (``save(keep_data=True)`` for a loaded router)."""
        x = self._x(X)
        n_replicates = integer("n_replicates", n_replicates, 2)
        return self._per_model(lambda r: r._draws(x, "quality", n_replicates, bootstrap, seed, retune),
                               (n_replicates, x.shape[0], len(self.models_)))

    def quality_interval(self, X: ArrayLike, n_replicates: int = 200, level: float = 0.95, kind: str = "percentile",
                         bootstrap: str = "multinomial", seed: int | None = None, retune: bool = True):
        """Bootstrap interval for each model's gain over the reference: ``(lower, upper)``, each ``(n, K)``
        (the reference's columns 0), from the replicates ``draws`` keeps (``MetaRouter.quality_interval``'s
        options)."""
        x = self._x(X)
        level = unit_interval("level", level)
        lower, upper = self._per_model(
            lambda r: np.stack(r.quality_interval(x, n_replicates, level, kind, bootstrap, seed, retune)),
            (2, x.shape[0], len(self.models_)))
        return self._table(X, lower), self._table(X, upper)

    def _score(self, X, confidence):
        """The gains routing uses: ψ̂, or with ``confidence`` α each model's gain at the level its bootstrap
        draws clear with probability α (``router.kth_largest``)."""
        if confidence is None:
            return np.asarray(self.quality_gain(X))
        alpha = unit_interval("confidence", confidence)
        setting = next(iter(self.routers_.values()))._kept_setting()  # the last draws', else the defaults
        return np.asarray(kth_largest(jnp.asarray(self.draws(X, *setting)), alpha))

    def _breakpoints(self, X, cost, confidence=None):
        score = self._score(X, confidence)
        n, K = score.shape
        c = np.asarray(cost, dtype=np.float64)
        if c.shape not in ((K,), (n, K)):
            raise ValueError(f"cost: expected shape ({K},) (per model) or ({n}, {K}) (per query and model), got "
                             f"{c.shape}")
        if not np.isfinite(c).all():
            raise ValueError(f"cost: non-finite value {c[~np.isfinite(c)][0]!r}")
        return _breakpoints_jit(jnp.asarray(score), jnp.asarray(c, jnp.float32))

    _weights = staticmethod(MetaRouter._weights)  # the facade's check of cost weights

    def route(self, X: ArrayLike, cost_weight, cost, confidence: float | None = None) -> np.ndarray:
        """The model for each query, ``argmax_k ψ̂_k − w·c_k`` (ties to the cheaper model): indices into
        ``models_``, ``(n,)`` for one weight or ``(W, n)`` for ``(W,)``.

        ``cost``: ``(K,)`` per model or ``(n, K)`` per query and model. ``confidence`` α (uncertainty-aware
        routing): each model's gain is counted at the level its bootstrap draws exceed with probability α
        (``draws``; the kept replicates, else 200), so a costlier model is chosen only for a gain it clears
        with probability α; with two models this is ``inference.route_with_uncertainty``'s rule.
        """
        w = self._weights(cost_weight)
        return np.asarray(_route_jit(self._breakpoints(X, cost, confidence), jnp.asarray(w, jnp.float32)))

    def curve(self, X: ArrayLike, cost_weights, cost, values: ArrayLike | None = None,
              confidence: float | None = None) -> MultiCurve:
        """Usage per model, mean cost, and (with ``values (n, K)`` such as true scores) mean quality and
        policy value at every weight, exactly (``router.multi_curve``), as NumPy arrays; ``confidence`` as in
        ``route``."""
        w = np.atleast_1d(self._weights(cost_weights))
        bp = self._breakpoints(X, cost, confidence)
        v = None
        if values is not None:
            v, _ = _scores("values", values, bp.path.shape[0])
            if v.shape[1] != bp.path.shape[1]:
                raise ValueError(f"values: expected {bp.path.shape[1]} model columns, got {v.shape[1]}")
            v = jnp.asarray(v, jnp.float32)
        return MultiCurve(*(np.asarray(a) for a in _curve_jit(bp, jnp.asarray(w, jnp.float32), v)))

    def calibrate(self, X: ArrayLike, budget, cost, confidence: float | None = None) -> MultiCalibration:
        """The weight that buys the most estimated quality within a mean cost per query of ``budget`` on the
        queries ``X`` (one budget or ``(T,)``; never below 0): ``cost_weight``, and the ``usage`` per model
        and mean ``cost`` it achieves there; with ``confidence`` (as in ``route``), for that rule."""
        target = np.atleast_1d(np.asarray(budget, dtype=np.float64))
        if target.ndim > 1 or not np.isfinite(target).all():
            raise ValueError(f"budget must be a finite number or a 1-D array of them, got {budget!r}")
        bp = self._breakpoints(X, cost, confidence)
        cal = MultiCalibration(*(np.asarray(a) for a in _calibrate_jit(bp, jnp.asarray(target, jnp.float32))))
        # The cheapest policy (each query at its cheapest model) in float64, as the caller's budget is: the
        # engine's float32 sum of it can sit ulps above a budget equal to it (that budget gets the cheapest policy).
        least = float(np.mean(np.min(np.broadcast_to(np.asarray(cost, np.float64), bp.cost.shape), axis=1)))
        if (target < least).any():
            raise ValueError(f"budget {float(target[target < least].min())!r} is below the cost of the cheapest "
                             f"choice per query ({least!r} per query)")
        return cal


__all__: Sequence[str] = ("MultiRouter",)
