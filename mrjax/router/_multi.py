"""Routing among ``K`` models, every cost–quality trade-off at once, exactly.

The rule sends query ``q`` to ``argmax_k  s_k(q) − w·c_k(q)``: ``s_k`` the estimated quality of
model ``k`` (a gain over a reference model, or an absolute score: only differences matter),
``c_k`` its cost. For each query the chosen model, as ``w`` rises, walks down the upper
envelope of ``K`` lines: it starts at the most expensive model and switches at most ``K − 1``
times, each time to a cheaper one. Ties go to the cheaper model (then the lower index), so
at a switch point the rule already chooses the model after the switch. Computing each query's
switches once (``O(K²)`` per query) and sorting all ``n(K − 1)`` of them turns usage per model,
mean cost and the mean of any per-query, per-model value (true correctness, estimates, every
bootstrap draw) into cumulative sums read at ``searchsorted(w)``: ``O(log n)`` per weight
after the sort. :func:`route_multi` decides from the same switches, so decisions and curves
agree exactly, also at weights that sit on a switch point.

With ``K = 2``, scores ``(0, ψ̂)`` and costs ``(C_a, C_p)`` this is the two-model rule of
``router.route`` (routed iff ``ψ̂ − w (C_p − C_a) > 0``).
"""
from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from mrjax._typing import Array, ArrayLike
from mrjax.router._tradeoff import _divide


class MultiBreakpoints(NamedTuple):
    """Each query's path of chosen models as the cost weight rises, and every switch sorted (a pytree).

    Attributes
    ----------
    switch : (n, K − 1) per query, the ascending weights at which the choice changes (``+inf``
        where it changes no more).
    path : (n, K) int32, the model chosen between switches: ``path[q, j]`` for
        ``switch[q, j − 1] ≤ w < switch[q, j]`` (``path[q, 0]`` below the first switch).
    sorted_switch : (n (K − 1),) every switch, ascending.
    order : (n (K − 1),) int32, the flat index (``q (K − 1) + j``) of each sorted switch.
    cost : (n, K) the costs.
    """

    switch: Array
    path: Array
    sorted_switch: Array
    order: Array
    cost: Array


def _costs(score: Array, cost: ArrayLike) -> Array:
    n, K = score.shape
    c = jnp.asarray(cost, score.dtype)
    if c.shape not in ((K,), (n, K)):
        raise ValueError(f"cost: expected shape ({K},) (per model) or ({n}, {K}) (per query and model) to match the "
                         f"scores, got {c.shape}")
    return jnp.broadcast_to(c, (n, K))


def multi_breakpoints(score: ArrayLike, cost: ArrayLike) -> MultiBreakpoints:
    """Each query's switches between ``K`` models, found once and sorted.

    Parameters
    ----------
    score : (n, K) estimated quality of each model per query (a NaN score: that model is never
        chosen; a query with no finite score gets its cheapest model at every weight).
    cost : (K,) cost per model or (n, K) per query and model (finite; check before).
    """
    s = jnp.asarray(score)
    if s.ndim != 2 or s.shape[1] < 2:
        raise ValueError(f"score: expected shape (n, K) with K >= 2 models, got {s.shape}")
    n, K = s.shape
    c = _costs(s, cost)
    ok = ~jnp.isnan(s)
    # Start (w → −∞): the most expensive model with a score; equal costs: the higher score, then the lower index.
    # Lexicographic argmax by successive masks (exact, no arithmetic on the keys).
    top_c = jnp.max(jnp.where(ok, c, -jnp.inf), axis=1, keepdims=True)
    m = ok & (c == top_c)
    top_s = jnp.max(jnp.where(m, s, -jnp.inf), axis=1, keepdims=True)
    m = m & (s == top_s)
    cheapest = jnp.argmin(c, axis=1)  # a query without any finite score keeps its cheapest model
    cur = jnp.where(jnp.any(ok, axis=1), jnp.argmax(m, axis=1), cheapest).astype(jnp.int32)
    t_prev = jnp.full((n,), -jnp.inf, s.dtype)
    switches, path = [], [cur]
    for _ in range(K - 1):
        cj = jnp.take_along_axis(c, cur[:, None], axis=1)
        sj = jnp.take_along_axis(s, cur[:, None], axis=1)
        cand = ok & (c < cj)  # lines that fall more slowly: each overtakes the current one at t_jk
        t = _divide(sj - s, jnp.where(cand, cj - c, 1.0))
        t = jnp.where(cand, t, jnp.inf)
        t_min = jnp.min(t, axis=1, keepdims=True)
        # Several lines overtaking at t_min: the cheapest leads after it (then the lower index).
        at = cand & (t == t_min)
        c_min = jnp.min(jnp.where(at, c, jnp.inf), axis=1, keepdims=True)
        nxt = jnp.argmax(at & (c == c_min), axis=1).astype(jnp.int32)
        has = jnp.isfinite(t_min[:, 0])
        t_sw = jnp.where(has, jnp.maximum(t_min[:, 0], t_prev), jnp.inf)  # rounding never reorders a path
        cur = jnp.where(has, nxt, cur)
        t_prev = jnp.where(has, t_sw, t_prev)
        switches.append(t_sw)
        path.append(cur)
    switch = jnp.stack(switches, axis=1)
    flat = switch.reshape(-1)
    order = jnp.argsort(flat, stable=True).astype(jnp.int32)
    return MultiBreakpoints(switch, jnp.stack(path, axis=1), flat[order], order, c)


def _weights(bp: MultiBreakpoints, cost_weights: ArrayLike) -> Array:
    w = jnp.asarray(cost_weights, bp.switch.dtype)
    if w.ndim > 1:
        raise ValueError(f"cost_weights: expected a scalar or shape (W,), got {w.shape}")
    return w


def route_multi(bp: MultiBreakpoints, cost_weight: ArrayLike) -> Array:
    """The model chosen for each query: ``(n,)`` int32 for a scalar weight, ``(W, n)`` for ``(W,)``.

    ``argmax_k s_k − w·c_k`` read off the switches (ties to the cheaper model); a NaN weight
    chooses nothing (−1).
    """
    w = _weights(bp, cost_weight)
    passed = jnp.sum(bp.switch[None] <= jnp.atleast_1d(w)[:, None, None], axis=2)  # (W, n) switches at or below w
    chosen = jnp.take_along_axis(bp.path[None], passed[..., None], axis=2)[..., 0]
    chosen = jnp.where(jnp.isnan(jnp.atleast_1d(w))[:, None], -1, chosen)
    return chosen[0] if w.ndim == 0 else chosen


class MultiCurve(NamedTuple):
    """The policies' exact curves at the requested weights (means per query).

    Attributes
    ----------
    cost_weight : (W,) the weights.
    usage : (W, K) share of queries sent to each model.
    cost : (W,) mean cost per query.
    quality : (W,) or (S, W) mean value of the chosen models, ``mean_q v(q, chosen_q)`` (``v`` the
        values given: true correctness, the estimates, or each draw); NaN when none were given.
    value : like ``quality``: the policy value ``quality − w·cost``.
    """

    cost_weight: Array
    usage: Array
    cost: Array
    quality: Array
    value: Array


def _changes(bp: MultiBreakpoints, values: Array) -> tuple[Array, Array]:
    """``(start, prefix)`` for ``values (n, K)``: the sum over queries at the first model of each path,
    and the running sum of the changes at the sorted switches (``prefix[i]``: the first ``i``)."""
    n, K = values.shape
    at = jnp.take_along_axis(values, bp.path, axis=1)  # (n, K) value along each path
    delta = jnp.where(jnp.isfinite(bp.switch), at[:, 1:] - at[:, :-1], 0.0).reshape(-1)[bp.order]
    return jnp.sum(at[:, 0]), jnp.concatenate([jnp.zeros((1,), values.dtype), jnp.cumsum(delta)])


def _summed(bp: MultiBreakpoints, i: Array, values: Array) -> Array:
    start, prefix = _changes(bp, values)
    return start + prefix[i]


def multi_curve(bp: MultiBreakpoints, cost_weights: ArrayLike, values: ArrayLike | None = None) -> MultiCurve:
    """Usage per model, mean cost, mean value and policy value at every weight, exactly.

    Parameters
    ----------
    bp : MultiBreakpoints of the scores.
    cost_weights : () or (W,) weights, any sign.
    values : (n, K) or (S, n, K) per-query, per-model values to score the policies with (true
        correctness; the scores themselves for the estimated curve; draws); ``None``: quality
        and value are NaN.
    """
    w = jnp.atleast_1d(_weights(bp, cost_weights))
    n, K = bp.path.shape
    i = jnp.searchsorted(bp.sorted_switch, w, side="right")  # switches at or below w have happened
    nn = jnp.asarray(n, w.dtype)
    # Usage: each switch moves one query from its old model to its new one; one cumulative sum of those moves.
    moves = jax.nn.one_hot(bp.path[:, 1:], K, dtype=w.dtype) - jax.nn.one_hot(bp.path[:, :-1], K, dtype=w.dtype)
    moves = jnp.where(jnp.isfinite(bp.switch)[..., None], moves, 0.0).reshape(-1, K)[bp.order]
    start = jnp.sum(jax.nn.one_hot(bp.path[:, 0], K, dtype=w.dtype), axis=0, keepdims=True)
    usage = _divide(start + jnp.concatenate([jnp.zeros((1, K), w.dtype), jnp.cumsum(moves, axis=0)])[i], nn)
    cost = _divide(_summed(bp, i, bp.cost), nn)
    nan_w = jnp.isnan(w)
    usage, cost = jnp.where(nan_w[:, None], jnp.nan, usage), jnp.where(nan_w, jnp.nan, cost)
    if values is None:
        nan = jnp.full_like(w, jnp.nan)
        return MultiCurve(w, usage, cost, nan, nan)
    v = jnp.asarray(values, w.dtype)
    if v.shape[-2:] != (n, K) or v.ndim > 3:
        raise ValueError(f"values: expected shape ({n}, {K}) or (S, {n}, {K}), got {v.shape}")
    one = lambda vv: jnp.where(nan_w, jnp.nan, _divide(_summed(bp, i, vv), nn))
    quality = one(v) if v.ndim == 2 else jax.lax.map(one, v)
    spend = (w * cost).reshape((1,) * (quality.ndim - 1) + w.shape)  # a draws axis broadcasts against (W,)
    return MultiCurve(w, usage, cost, quality, quality - spend)


class MultiCalibration(NamedTuple):
    """Weights found for budgets, and what they achieve on the queries they were found on.

    Attributes
    ----------
    cost_weight : (T,) one weight per budget.
    usage : (T, K) share of queries each weight sends to each model.
    cost : (T,) the mean cost per query each weight spends.
    """

    cost_weight: Array
    usage: Array
    cost: Array


def calibrate_multi_budget(bp: MultiBreakpoints, budget: ArrayLike) -> MultiCalibration:
    """Weights that buy the most estimated quality within a mean cost per query of ``budget (T,)``.

    Cost falls as ``w`` rises (every switch is to a cheaper model), so this is the smallest weight
    whose policy costs at most the budget — but never below 0, where added spending buys models
    with lower estimated quality. A budget below the cost of the cheapest policy gets the weight
    of that policy (its ``cost`` then exceeds the budget: check it). ``O(log n)`` per budget.
    """
    budget = jnp.atleast_1d(jnp.asarray(budget, bp.switch.dtype))
    b = bp.sorted_switch
    E, n = b.shape[0], bp.path.shape[0]
    start, prefix = _changes(bp, bp.cost)
    spent = _divide(start + prefix, jnp.asarray(n, b.dtype))  # after the first i switches: non-increasing in i
    i = jnp.arange(E + 1)
    prev = jnp.concatenate([jnp.full((1,), -jnp.inf, b.dtype), b])  # b[i − 1]
    nxt = jnp.concatenate([b, jnp.full((1,), jnp.inf, b.dtype)])  # b[i]
    # Cut i (the first i switches passed) is reached by w = b[i − 1] unless a tie splits it; cut 0 below b[0].
    reachable = (i == 0) | (jnp.isfinite(prev) & (prev < nxt))
    last = jnp.sum(jnp.isfinite(b))  # every finite switch passed: the cheapest policy
    first = jnp.searchsorted(-spent, -budget, side="left")  # the first cut that fits the budget
    up = jax.lax.cummin(jnp.where(reachable, i, E + 1), reverse=True)  # the first reachable cut at or after i
    cut = jnp.minimum(up[jnp.minimum(first, E)], last)
    below = jnp.where(jnp.isfinite(b[0]), jnp.nextafter(b[0], jnp.asarray(-jnp.inf, b.dtype)), 0.0)
    w = jnp.maximum(jnp.where(cut == 0, below, prev[cut]), 0.0)
    curve = multi_curve(bp, w)
    return MultiCalibration(w, curve.usage, curve.cost)


class MultiEvaluation(NamedTuple):
    """A policy among ``K`` models judged on labelled queries at a list of budgets (means per query,
    weighted by the query weights).

    Attributes
    ----------
    budget : (T,) the budgets.
    cost : (T,) mean cost of the models chosen at each budget's weight.
    quality : (T,) mean true score of the chosen models.
    hull : (T,) the best mean score that choosing without looking at the query reaches at that cost: the
        upper, non-decreasing hull of the single models' ``(mean cost, mean score)`` points, i.e. the best
        random mixture of at most two models costing no more (below the cheapest model's mean cost, that
        model's score: a baseline the policy is at least as cheap as).
    gain : (T,) ``quality − hull``: what reading the query buys over the best query-blind choice.
    model_cost, model_quality : (K,) each model's mean cost and mean true score.
    oracle : () the mean of each query's best score (the ceiling of any policy).
    mean_quality, mean_gain : () ``quality`` and ``gain`` averaged over the budgets.
    """

    budget: Array
    cost: Array
    quality: Array
    hull: Array
    gain: Array
    model_cost: Array
    model_quality: Array
    oracle: Array
    mean_quality: Array
    mean_gain: Array


def single_model_hull(model_cost: Array, model_quality: Array, cost: Array) -> Array:
    """The upper, non-decreasing hull of the points ``(model_cost_k, model_quality_k)`` at each ``cost``:
    the best mean score of a random mixture of models whose mean cost is at most ``cost`` (a cost below
    every model's reads as the cheapest model's)."""
    cost = jnp.asarray(cost)
    c = jnp.maximum(cost.reshape(-1, 1), jnp.min(model_cost))  # (m, 1)
    alone = jnp.max(jnp.where(model_cost[None, :] <= c, model_quality[None, :], -jnp.inf), axis=1)
    lo_c, hi_c = model_cost[None, :, None], model_cost[None, None, :]  # pairs i (cheaper) → j (dearer)
    lo_q, hi_q = model_quality[None, :, None], model_quality[None, None, :]
    pair = lo_c < hi_c
    span = jnp.where(pair, hi_c - lo_c, 1.0)
    cc = c[:, :, None]
    chord = lo_q + (hi_q - lo_q) * _divide(cc - lo_c, span)
    chord = jnp.where(pair & (lo_c <= cc) & (cc <= hi_c), chord, -jnp.inf)
    return jnp.maximum(alone, jnp.max(chord, axis=(1, 2))).reshape(cost.shape)


def evaluate_multi_routing(chosen: ArrayLike, values: ArrayLike, cost: ArrayLike, budget: ArrayLike,
                           weight: ArrayLike | None = None) -> MultiEvaluation:
    """Judge the models ``chosen (T, n)`` (one row per budget, e.g. ``route_multi`` at the weights of
    ``calibrate_multi_budget``) with the queries' true scores ``values (n, K)`` and costs ``cost`` (``(K,)``
    or ``(n, K)``). Pure: vmap over ``weight (n,)`` for a bootstrap of the queries with the policy held
    fixed."""
    v = jnp.asarray(values)
    if v.ndim != 2 or v.shape[1] < 2:
        raise ValueError(f"values: expected shape (n, K) with K >= 2 models, got {v.shape}")
    n, K = v.shape
    ch = jnp.asarray(chosen)
    budget = jnp.atleast_1d(jnp.asarray(budget, v.dtype))
    if ch.shape != (budget.shape[0], n):
        raise ValueError(f"chosen: expected shape ({budget.shape[0]}, {n}) (one row of model indices per budget), "
                         f"got {ch.shape}")
    c = _costs(v, cost)
    w = jnp.ones((n,), v.dtype) if weight is None else jnp.asarray(weight, v.dtype)
    total = jnp.sum(w)
    mean = lambda a: _divide(jnp.sum(a * w[None, :], axis=-1) if a.ndim == 2 else jnp.sum(a * w), total)  # noqa: E731  (weighted mean over the last axis)
    model_cost, model_quality = mean(c.T), mean(v.T)
    at = lambda a: jnp.take_along_axis(a.T, ch, axis=0)  # noqa: E731  (T, n) the chosen models' entries
    spent, quality = mean(at(c)), mean(at(v))
    hull = single_model_hull(model_cost, model_quality, spent)
    gain = quality - hull
    return MultiEvaluation(budget, spent, quality, hull, gain, model_cost, model_quality, mean(jnp.max(v, axis=1)),
                           jnp.mean(quality), jnp.mean(gain))
