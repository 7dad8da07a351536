"""Batched bootstrap of the whole Meta-Router pipeline and intervals from draws.

A bootstrap replicate is a weight vector: the pipeline is refitted with ``data.weight``
replaced by ``data.weight * w_b`` — nuisances, cross-fitting, Δ̂, debiasing and ψ̂ all see
it — and the ``(B, n)`` weight matrix is mapped over in one compiled program
(equal chunks of vmapped replicates, one after another, so memory stays bounded). No refit loop.
"""
from __future__ import annotations

import dataclasses
from typing import Literal, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from mrjax._checks import integer, unit_interval
from mrjax._typing import Array, PRNGKey
from mrjax.data._dataset import Dataset, fit_standardizer, standardize
from mrjax.learners._features import FeatureParams
from mrjax.router._fit import (
    RouterConfig, RouterHyper, fit_router, fixed_config, fixed_tuning, predict_quality, predict_router_bias,
)
from mrjax.router._rule import route
from mrjax.router._tradeoff import kth_largest

WEIGHT_KINDS = ("multinomial", "dirichlet", "poisson")
INTERVAL_KINDS = ("percentile", "basic", "normal")


def bootstrap_weights(
    key: PRNGKey,
    is_gold: Array,
    n_replicates: int,
    kind: Literal["multinomial", "dirichlet", "poisson"] = "multinomial",
    mask: Array | None = None,
) -> Array:
    """A ``(B, n)`` matrix of bootstrap weights, stratified by source.

    ``multinomial``: each stratum (gold, preference) resampled with replacement to its own
    size — counts sum to the stratum sizes. ``dirichlet``: the Bayesian bootstrap, Dirichlet(1)
    weights scaled to each stratum's size (they sum to n). ``poisson``: independent Poisson(1)
    counts (not stratified; sums vary). Rows where the optional boolean ``mask`` is False
    (e.g. held-out test rows kept for fixed shapes) get weight 0 and are never drawn.
    """
    if kind not in WEIGHT_KINDS:
        raise ValueError(f"bootstrap kind must be one of {WEIGHT_KINDS}, got {kind!r}")
    n_replicates = integer("n_replicates", n_replicates, 2)
    n = is_gold.shape[0]
    keep = jnp.ones((n,), bool) if mask is None else jnp.asarray(mask, bool)
    gold = (is_gold > 0.5) & keep
    pref = ~(is_gold > 0.5) & keep
    n_gold, n_pref = jnp.sum(gold), jnp.sum(pref)
    keys = jax.random.split(key, n_replicates)
    if kind == "poisson":
        return jax.vmap(lambda k: jnp.where(keep, jax.random.poisson(k, 1.0, (n,)), 0).astype(jnp.float32))(keys)
    if kind == "dirichlet":
        def one(k):
            e = jax.random.exponential(k, (n,))
            tot_g = jnp.sum(jnp.where(gold, e, 0.0))
            tot_p = jnp.sum(jnp.where(pref, e, 0.0))
            return jnp.where(gold, e / tot_g * n_gold, jnp.where(pref, e / tot_p * n_pref, 0.0))
        return jax.vmap(one)(keys)
    stratum = jnp.where(gold, 0, jnp.where(pref, 1, 2))
    order = jnp.argsort(stratum, stable=True)  # gold rows first, then preference, then masked

    def one(k):
        u = jax.random.uniform(k, (n,))
        pos = jnp.arange(n)
        in_gold = pos < n_gold
        draw = jnp.where(in_gold, jnp.floor(u * n_gold), n_gold + jnp.floor(u * n_pref)).astype(jnp.int32)
        draw = jnp.clip(draw, jnp.where(in_gold, 0, n_gold), jnp.where(in_gold, n_gold - 1, n_gold + n_pref - 1))
        count = jnp.where(pos < n_gold + n_pref, 1.0, 0.0)  # one draw per kept row
        return jnp.zeros((n,), jnp.float32).at[order[draw]].add(count)

    return jax.vmap(one)(keys)


def check_replicate_weights(weights) -> None:
    """Eager check of a concrete ``(B, n)`` weight matrix: finite and non-negative, naming the
    first bad replicate and row. Traced weights (inside ``jit``) are left to the caller."""
    if isinstance(weights, jax.core.Tracer):
        return
    w = np.asarray(weights)
    bad = ~np.isfinite(w) | (w < 0)
    if bad.any():
        b, i = (int(v) for v in np.argwhere(bad)[0])
        raise ValueError(
            f"weights: {int(bad.sum())} entries are NaN, infinite or negative; first at replicate {b}, row {i} "
            f"({w[b, i]!r})")


def _check_weights(data: Dataset, weights: Array) -> None:
    if weights.ndim != 2 or weights.shape[1] != data.label.shape[0]:
        raise ValueError(f"weights: expected shape (B, {data.label.shape[0]}), got {weights.shape}")
    if weights.shape[0] < 1:
        raise ValueError("weights: at least 1 replicate is needed")
    check_replicate_weights(weights)


def _default_chunk(data: Dataset) -> int:
    return max(1, min(64, 256_000 // data.label.shape[0]))


def equal_chunk(n_replicates: int, most: int) -> int:
    """The size of the fewest equal chunks of at most ``most`` replicates that hold ``n_replicates``: the last
    chunk is padded by fewer replicates than there are chunks."""
    return -(-n_replicates // -(-n_replicates // most))


def _map_chunks(f, weights: Array, chunk: int, carry=None):
    """``f`` over the rows of ``weights (B, n)``, vmapped over equal chunks of at most ``chunk`` rows that run one
    after another (``lax.scan``): one compiled copy of ``f`` for any ``B`` (``lax.map``'s ``batch_size`` compiles
    a second copy for a remainder). Padded rows repeat ``weights[0]`` and are dropped from the result.
    ``f(carry, w_chunk) -> (carry, y_chunk)`` when ``carry`` is given, else ``f(w) -> y`` per row."""
    B, n = weights.shape
    size = equal_chunk(B, chunk)
    n_chunks = -(-B // size)
    padded = jnp.concatenate([weights, jnp.broadcast_to(weights[:1], (n_chunks * size - B, n))]).reshape(n_chunks, size, n)
    body = f if carry is not None else (lambda c, w: (c, jax.vmap(f)(w)))
    carry, ys = jax.lax.scan(body, carry, padded)
    return carry, jax.tree_util.tree_map(lambda a: a.reshape((n_chunks * size,) + a.shape[2:])[:B], ys)


def replicate_config(config: RouterConfig, retune: bool = True) -> RouterConfig:
    """The static configuration every replicate fits with: features already standardised by the point
    fit's standardiser, and with ``retune=False`` fixed-penalty learners (``router.fixed_config``)."""
    config = dataclasses.replace(config, standardize=False)
    return config if retune else fixed_config(config)


def _prepared(key, data, X, config, hyper, retune):
    """Standardise once with the point fit's (label-free) standardiser; hold the tuning when not retuning."""
    if config.standardize:
        std = fit_standardizer(data.features, data.weight, config.standardize)
        data = data._replace(features=standardize(std, data.features))
        X = None if X is None else standardize(std, X)
        config = dataclasses.replace(config, standardize=False)
    if not retune:
        _, info = fit_router(key, data, config, hyper)
        config, hyper = fixed_tuning(config, hyper, info)
    return data, X, config, hyper


def _shared(node) -> bool:
    return isinstance(node, FeatureParams)


class ReplicateFits(NamedTuple):
    """``B`` refitted routers of one bootstrap, kept so that any queries, ψ̂ or Δ̂, are predicted
    without refitting (a pytree; from :func:`bootstrap_fits`).

    Attributes
    ----------
    standardizer : the point fit's Standardizer (applied to queries first), or None.
    shared : one replicate's fit; its feature maps (random Fourier frequencies: functions of the key
        alone, equal in every replicate) are used by all.
    fits : the replicates' fits stacked on a leading ``B`` axis, feature maps left out.
    """

    standardizer: object
    shared: object
    fits: object


def bootstrap_fits(
    key: PRNGKey,
    data: Dataset,
    weights: Array,
    config: RouterConfig = RouterConfig(),
    hyper: RouterHyper | None = None,
    chunk: int | None = None,
    retune: bool = True,
) -> ReplicateFits:
    """The whole pipeline refitted under each row of ``weights (B, n)``, kept as fits.

    The same replicates as :func:`bootstrap_predict` (same key, weights, standardisation and tuning
    rule), stored instead of evaluated, so ψ̂, Δ̂ and policy values at any queries come from one
    bootstrap (:func:`replicate_predict`). Memory is the learners' coefficients per replicate; the
    feature maps are stored once.
    """
    _check_weights(data, weights)
    chunk = _default_chunk(data) if chunk is None else chunk
    std = fit_standardizer(data.features, data.weight, config.standardize) if config.standardize else None
    data, _, config, hyper = _prepared(key, data, None, config, hyper, retune)
    strip = lambda fit: jax.tree_util.tree_map(lambda n: None if _shared(n) else n, fit, is_leaf=_shared)  # noqa: E731

    def one(w):
        return fit_router(key, data._replace(weight=data.weight * w), config, hyper)[0]

    # The feature maps (equal in every replicate) leave the loop as its carry, so the pipeline is compiled once,
    # vmapped, rather than once more for a separate fit that supplies them.
    shapes, treedef = jax.tree_util.tree_flatten(jax.eval_shape(one, weights[0]), is_leaf=_shared)

    def chunk_fits(_, w):
        fits = jax.vmap(one)(w)
        maps = [n for n in jax.tree_util.tree_leaves(fits, is_leaf=_shared) if _shared(n)]
        return jax.tree_util.tree_map(lambda a: a[0], maps), strip(fits)

    init = [jax.tree_util.tree_map(lambda s: jnp.zeros(s.shape, s.dtype), n) for n in shapes if _shared(n)]
    maps, fits = _map_chunks(chunk_fits, weights, chunk, init)
    # ``shared``: replicate 0's fit, its feature maps from the carry.
    maps, own = iter(maps), iter(jax.tree_util.tree_leaves(jax.tree_util.tree_map(lambda a: a[0], fits)))
    shared = jax.tree_util.tree_unflatten(treedef, [next(maps) if _shared(n) else next(own) for n in shapes])
    return ReplicateFits(std, shared, fits)


def replicate_predict(config: RouterConfig, replicates: ReplicateFits, X: Array, target: str = "quality",
                      retune: bool = True) -> Array:
    """ψ̂ (``target="quality"``) or Δ̂ (``"bias"``) at queries ``X (m, d)`` under each kept replicate:
    ``(B, m)``. ``config`` and ``retune`` are those the replicates were fitted with."""
    if target not in ("quality", "bias"):
        raise ValueError(f"target must be 'quality' or 'bias', got {target!r}")
    predict = predict_quality if target == "quality" else predict_router_bias
    rconfig = replicate_config(config, retune)
    if replicates.standardizer is not None:
        X = standardize(replicates.standardizer, X)

    def one(fit):
        full = jax.tree_util.tree_map(lambda s, f: s if _shared(s) else f, replicates.shared, fit, is_leaf=_shared)
        return predict(rconfig, full, X)

    return jax.vmap(one)(replicates.fits)


def bootstrap_predict(
    key: PRNGKey,
    data: Dataset,
    X: Array,
    weights: Array,
    config: RouterConfig = RouterConfig(),
    hyper: RouterHyper | None = None,
    target: str = "quality",
    chunk: int | None = None,
    retune: bool = True,
) -> Array:
    """ψ̂ (``target="quality"``) or Δ̂ (``"bias"``) at queries ``X (m, d)`` under each replicate: ``(B, m)``.

    Every replicate refits the whole pipeline with the same key (same folds and random
    features) and weights ``data.weight * weights[b]``; replicates are vmapped in the fewest
    equal chunks of at most ``chunk`` (default: about 256,000 rows per chunk, at most 64
    replicates — 64 at the paper's 4,000 rows, 6 at 40,000), one compiled copy of the
    pipeline. A replicate of all-ones weights reproduces the point fit.

    The feature standardisation (label-free centring and scaling) is the point fit's in
    every replicate: it is computed once, so the random-feature maps of the fixed
    design are computed once per chunk instead of once per replicate.

    ``retune=True`` (default) re-selects every tuned choice in every replicate (selected
    penalties, a cross-validated λ): tuning is part of the pipeline bootstrapped.
    ``retune=False`` holds them at the point fit's choices (``router.fixed_tuning``) — the
    bootstrap conditional on the tuning, faster because each replicate solves by Cholesky
    instead of an eigendecomposition per penalty choice.
    """
    if target not in ("quality", "bias"):
        raise ValueError(f"target must be 'quality' or 'bias', got {target!r}")
    _check_weights(data, weights)
    if weights.shape[0] < 2:
        raise ValueError(f"weights: at least 2 replicates are needed, got {weights.shape[0]}")
    chunk = _default_chunk(data) if chunk is None else chunk
    predict = predict_quality if target == "quality" else predict_router_bias
    data, X, config, hyper = _prepared(key, data, X, config, hyper, retune)

    def one(w):
        fit, _ = fit_router(key, data._replace(weight=data.weight * w), config, hyper)
        return predict(config, fit, X)

    return _map_chunks(one, weights, chunk)[1]


def interval(draws: Array, point: Array, level: float = 0.95, kind: str = "percentile") -> tuple[Array, Array]:
    """Pointwise intervals from bootstrap or posterior draws ``(B, ...)`` around ``point (...)``.

    ``percentile``: draw quantiles; ``basic`` (pivot): ``2·point − quantiles``; ``normal``:
    ``point ± z·sd(draws)``.
    """
    if kind not in INTERVAL_KINDS:
        raise ValueError(f"interval kind must be one of {INTERVAL_KINDS}, got {kind!r}")
    level = unit_interval("level", level)
    a = (1.0 - level) / 2.0
    if kind == "normal":
        z = jax.scipy.stats.norm.ppf(1.0 - a)
        sd = jnp.std(draws, axis=0, ddof=1)
        return point - z * sd, point + z * sd
    lo, hi = jnp.quantile(draws, a, axis=0), jnp.quantile(draws, 1.0 - a, axis=0)
    if kind == "basic":
        return 2 * point - hi, 2 * point - lo
    return lo, hi


def simultaneous_band(draws: Array, point: Array, level: float = 0.95) -> tuple[Array, Array]:
    """A max-t simultaneous band for a curve: ``point ± c·sd`` with ``c`` the ``level``
    quantile over draws of ``max_j |draw_j − point_j| / sd_j`` (draws ``(B, G)``)."""
    level = unit_interval("level", level)
    sd = jnp.std(draws, axis=0, ddof=1)
    safe = jnp.where(sd > 0, sd, 1.0)
    t = jnp.max(jnp.abs(draws - point[None]) / safe[None], axis=1)
    c = jnp.quantile(t, level)
    return point - c * sd, point + c * sd


def route_with_uncertainty(
    draws: Array, cost_weight, alpha: float = 0.9, cost_primary=1.0, cost_alternative=0.0
) -> Array:
    """Uncertainty-aware routing from draws of ψ: primary iff ``P(ψ(q) > w·ΔC(q)) ≥ alpha``.

    The rule is the plug-in rule on one score per query, the ``⌈alpha·S⌉``-th largest draw
    (``router.kth_largest``), so its usage, cost and value curves and its calibration come
    from ``router.breakpoints`` of that score.

    Parameters
    ----------
    draws : (B, n) bootstrap or posterior draws of ψ at the queries.
    cost_weight : () or (W,) cost weights.
    alpha : required probability in (0, 1); 0.5 is close to the plug-in rule on the median.

    Returns
    -------
    (n,) or (W, n) booleans.
    """
    alpha = unit_interval("alpha", alpha)
    if draws.ndim != 2:
        raise ValueError(f"draws: expected shape (B, n), got {draws.shape}")
    return route(kth_largest(draws, alpha), cost_weight, cost_primary, cost_alternative)
