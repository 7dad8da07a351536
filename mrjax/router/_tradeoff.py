"""Every cost–quality trade-off at once, exactly, from sorted breakpoints.

The routing rule sends query ``q`` to the primary iff ``ψ̂(q) − w·g(q) > 0`` with the cost
gap ``g = C_p − C_a``. As the cost weight ``w`` moves, each query switches once, at its
breakpoint ``b_q = ψ̂(q) / g(q)``: a query with ``g > 0`` is routed iff ``w < b_q``, one with
``g < 0`` iff ``w > b_q``, and one with ``g = 0`` at every ``w`` iff ``ψ̂(q) > 0``. Sorting the
``n`` breakpoints once turns every quantity of the routed set — its size, its cost, the sum
of any per-query values (true gains, estimates, every bootstrap or posterior draw) — into a
cumulative sum read at ``searchsorted(w)``: ``O(n log n)`` per score vector, ``O(S·n)`` per
``(S, n)`` block of values, then ``O(log n)`` per weight, with memory independent of the
number of weights. The same sorted breakpoints invert the curve: the weight that routes a
target share of queries, or the one that buys the most estimated quality within a budget.

:func:`route` (in ``_rule``) decides with the same comparison against ``b_q``, so decisions
and curves agree exactly, also at weights that sit on a breakpoint.
"""
from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from mrjax._typing import Array, ArrayLike


class Breakpoints(NamedTuple):
    """The sorted switching points of the plug-in policies of one score vector (a pytree).

    Attributes
    ----------
    falling : (n,) ascending; ``b_q`` of the queries with ``g > 0`` (routed iff ``w < b_q``),
        ``−inf`` for every other query (or a NaN score: never routed).
    falling_order : (n,) int32, the query of each entry of ``falling``.
    rising : (n,) ascending; ``b_q`` of the queries with ``g < 0`` (routed iff ``w > b_q``),
        ``+inf`` for every other query.
    rising_order : (n,) int32, the query of each entry of ``rising``.
    always : (n,) bool, queries with ``g = 0`` and ``ψ̂ > 0`` (routed at every weight).
    gap : (n,) the cost gap ``C_p − C_a`` of each query.
    base_cost : () mean ``C_a`` over the queries (the cost of routing none).
    """

    falling: Array
    falling_order: Array
    rising: Array
    rising_order: Array
    always: Array
    gap: Array
    base_cost: Array


def cost_gap(score: Array, cost_primary: ArrayLike = 1.0, cost_alternative: ArrayLike = 0.0) -> tuple[Array, Array]:
    """``(gap, alternative)`` as ``(n,)`` arrays from scalar or per-query costs (shape-checked)."""
    n = score.shape[0]
    cp = jnp.asarray(cost_primary, score.dtype)
    ca = jnp.asarray(cost_alternative, score.dtype)
    for name, c in (("cost_primary", cp), ("cost_alternative", ca)):
        if c.ndim > 1 or (c.ndim == 1 and c.shape[0] != n):
            raise ValueError(f"{name}: expected a scalar or shape ({n},) to match the {n} queries, got {c.shape}")
    return jnp.broadcast_to(cp - ca, (n,)), jnp.broadcast_to(ca, (n,))


def _divide(x: Array, d: Array) -> Array:
    """IEEE division ``x / d`` also when ``d`` is a compile-time constant.

    XLA rewrites division by a constant (costs closed over under ``jit``, a query count) as
    multiplication by its reciprocal, which moves a result by an ulp: breakpoints and usage
    shares would then differ between jitted and eager code. The barrier keeps ``d`` opaque.
    """
    return x / jax.lax.optimization_barrier(d)


def switch_points(score: Array, gap: Array) -> Array:
    """``b_q = ψ̂(q) / g(q)`` where ``g ≠ 0`` (0 elsewhere; those queries never switch)."""
    return _divide(score, jnp.where(gap != 0, gap, 1.0))


def decide(score: Array, gap: Array, cost_weight: Array) -> Array:
    """The routing decision at the weights ``cost_weight (...)``: ``(..., n)`` booleans."""
    lead = (1,) * cost_weight.ndim
    b, g, s = (a.reshape(lead + a.shape) for a in (switch_points(score, gap), gap, score))
    w = cost_weight[..., None]
    return jnp.where(g > 0, w < b, jnp.where(g < 0, w > b, s > 0))


def breakpoints(score: Array, cost_primary: ArrayLike = 1.0, cost_alternative: ArrayLike = 0.0) -> Breakpoints:
    """Sort the switching points of the plug-in policy of ``score (n,)`` once.

    Parameters
    ----------
    score : (n,) ψ̂ per query (any sign; a NaN score is never routed).
    cost_primary, cost_alternative : () or (n,) per-query costs (unit costs 1 and 0 by default,
        making the rule ``ψ̂ > w``).
    """
    score = jnp.asarray(score)
    if score.ndim != 1:
        raise ValueError(f"score: expected shape (n,), got {score.shape}")
    gap, alt = cost_gap(score, cost_primary, cost_alternative)
    b = switch_points(score, gap)
    ok = ~jnp.isnan(b)
    falling = jnp.where((gap > 0) & ok, b, -jnp.inf)
    rising = jnp.where((gap < 0) & ok, b, jnp.inf)
    f_order = jnp.argsort(falling, stable=True).astype(jnp.int32)
    r_order = jnp.argsort(rising, stable=True).astype(jnp.int32)
    always = (gap == 0) & (score > 0)
    return Breakpoints(falling[f_order], f_order, rising[r_order], r_order, always, gap, jnp.mean(alt))


def _positions(bp: Breakpoints, w: Array) -> tuple[Array, Array]:
    """Where each weight cuts the sorted breakpoints: routed are ``falling[i_f:]`` and ``rising[:i_r]``."""
    return jnp.searchsorted(bp.falling, w, side="right"), jnp.searchsorted(bp.rising, w, side="left")


def _sum_one(bp: Breakpoints, i_f: Array, i_r: Array, values: Array) -> Array:
    """``Σ_q values_q · 1[q routed]`` at each cut, for one ``(n,)`` value vector."""
    zero = jnp.zeros((1,), values.dtype)
    vf = jnp.where(bp.falling > -jnp.inf, values[bp.falling_order], 0.0)
    suffix = jnp.concatenate([jnp.cumsum(vf[::-1])[::-1], zero])  # suffix[i] = Σ_{j ≥ i}
    vr = jnp.where(bp.rising < jnp.inf, values[bp.rising_order], 0.0)
    prefix = jnp.concatenate([zero, jnp.cumsum(vr)])  # prefix[i] = Σ_{j < i}
    return suffix[i_f] + prefix[i_r] + jnp.sum(jnp.where(bp.always, values, 0.0))


def _weights(bp: Breakpoints, cost_weights: ArrayLike) -> Array:
    w = jnp.asarray(cost_weights, bp.gap.dtype)
    if w.ndim > 1:
        raise ValueError(f"cost_weights: expected a scalar or shape (W,), got {w.shape}")
    return jnp.atleast_1d(w)


def routed_sum(bp: Breakpoints, cost_weights: ArrayLike, values: Array, chunk: int | None = None) -> Array:
    """``Σ_q v_q · 1[q routed at w]`` at every weight, for one or many value vectors.

    Parameters
    ----------
    bp : Breakpoints
    cost_weights : () or (W,) weights, any sign.
    values : (n,) or (S, n) per-query values (gains, draws of ψ, costs, weighted residuals).
    chunk : rows of ``values`` summed at a time when it is ``(S, n)`` (default: about
        4M entries per chunk), so memory stays ``O(chunk·n)`` beyond the output.

    Returns
    -------
    (W,) or (S, W) array.
    """
    w = _weights(bp, cost_weights)
    values = jnp.asarray(values, bp.gap.dtype)
    n = bp.gap.shape[0]
    if values.shape[-1:] != (n,) or values.ndim > 2:
        raise ValueError(f"values: expected shape ({n},) or (S, {n}), got {values.shape}")
    i_f, i_r = _positions(bp, w)
    if values.ndim == 1:
        out = _sum_one(bp, i_f, i_r, values)
    else:
        chunk = max(1, min(values.shape[0], (1 << 22) // max(n, 1))) if chunk is None else int(chunk)
        out = jax.lax.map(lambda v: _sum_one(bp, i_f, i_r, v), values, batch_size=chunk)
    return jnp.where(jnp.isnan(w), jnp.nan, out)  # a NaN weight routes nothing knowable: say so


def routed_count(bp: Breakpoints, cost_weights: ArrayLike) -> Array:
    """Number of queries routed to the primary at each weight, ``(W,)`` int32 (exact).

    Entries never routed sit at ``−inf`` (falling) and ``+inf`` (rising), outside every cut.
    """
    i_f, i_r = _positions(bp, _weights(bp, cost_weights))
    return (bp.falling.shape[0] - i_f + i_r + jnp.sum(bp.always)).astype(jnp.int32)


class TradeoffCurve(NamedTuple):
    """The plug-in policies' exact curves at the requested weights (per query: divide-by-n means).

    Attributes
    ----------
    cost_weight : (W,) the weights.
    usage : (W,) share of queries routed to the primary.
    cost : (W,) mean cost per query, ``mean_q C_a(q) + g(q)·1[routed]``.
    quality : (W,) or (S, W) mean gain per query of the routed queries, ``mean_q ψ(q)·1[routed]``
        (``ψ`` the gains given: the truth, the estimate, or each draw).
    value : like ``quality``: the policy value ``mean_q (ψ(q) − w·g(q))·1[routed]``.
    efficiency_gain : like ``quality``: ``quality − usage · mean_q ψ(q)``, the gain over a random
        router with the same usage (per query; times ``n`` for the paper's totals).
    """

    cost_weight: Array
    usage: Array
    cost: Array
    quality: Array
    value: Array
    efficiency_gain: Array


def tradeoff_curve(bp: Breakpoints, cost_weights: ArrayLike, gains: Array | None = None,
                   chunk: int | None = None) -> TradeoffCurve:
    """Usage, cost, quality, policy value and efficiency gain at every weight, exactly.

    Parameters
    ----------
    bp : Breakpoints of the policy's score.
    cost_weights : () or (W,) weights, any sign.
    gains : (n,) or (S, n) gains to score the policies with; ``None`` scores with nothing
        (quality, value and efficiency gain are then NaN) — pass the score itself for the
        estimated curve.
    chunk : see :func:`routed_sum`.
    """
    w = _weights(bp, cost_weights)
    n = bp.gap.shape[0]
    share = _divide(routed_count(bp, w).astype(bp.gap.dtype), jnp.asarray(n, bp.gap.dtype))
    usage = jnp.where(jnp.isnan(w), jnp.nan, share)
    extra = routed_sum(bp, w, bp.gap) / n
    if gains is None:
        nan = jnp.full_like(w, jnp.nan)
        return TradeoffCurve(w, usage, bp.base_cost + extra, nan, nan, nan)
    gains = jnp.asarray(gains, bp.gap.dtype)
    quality = routed_sum(bp, w, gains, chunk) / n
    lead = (1,) * (gains.ndim - 1)  # a draws axis broadcasts against the (W,) curves
    value = quality - (w * extra).reshape(lead + w.shape)
    gain = quality - usage.reshape(lead + w.shape) * jnp.mean(gains, axis=-1, keepdims=gains.ndim == 2)
    return TradeoffCurve(w, usage, bp.base_cost + extra, quality, value, gain)


def kth_largest(draws: Array, alpha: float) -> Array:
    """Per query, the ``k``-th largest of ``S`` draws, ``k = ⌈α·S⌉``: ``(n,)`` from ``(S, n)`` draws, and
    ``(n, K)`` from ``(S, n, K)`` (each model's gain on its own).

    ``P̂(ψ(q) > w·g(q)) ≥ α`` over the draws holds exactly when this order statistic's own
    plug-in rule routes ``q``, so the uncertainty-aware policy is the plug-in policy of
    this score and gets its curves and calibration from the same breakpoints (among ``K``
    models, ``multi_breakpoints`` of the ``(n, K)`` score).
    """
    if draws.ndim not in (2, 3):
        raise ValueError(f"draws: expected shape (S, n) or (S, n, K), got {draws.shape}")
    S = draws.shape[0]
    k = int(np.ceil(float(alpha) * S - 1e-9))  # count/S ≥ α  ⇔  count ≥ ⌈α S⌉ (guarding float rounding)
    k = min(max(k, 1), S)
    return jnp.sort(draws, axis=0)[S - k]


class Calibration(NamedTuple):
    """Weights found for targets, and what they achieve on the queries they were found on.

    Attributes
    ----------
    cost_weight : (T,) one weight per target.
    usage : (T,) the share of queries each weight routes to the primary.
    cost : (T,) the mean cost per query each weight spends.
    """

    cost_weight: Array
    usage: Array
    cost: Array


def _check_nonnegative_gap(bp: Breakpoints) -> None:
    if isinstance(bp.gap, jax.core.Tracer):
        return
    gap = np.asarray(bp.gap)
    if (gap < 0).any():
        i = int(np.nonzero(gap < 0)[0][0])
        raise ValueError(
            f"calibration needs C_p >= C_a on every query (usage is then monotone in w); query {i} has a cost gap "
            f"of {gap[i]!r}")


def _segments(bp: Breakpoints) -> tuple[Array, Array, Array, Array]:
    """For ``j = 0..n`` falling queries routed (the top ``j`` breakpoints): whether some weight
    routes exactly those (no tie across the cut), a weight inside that segment, the mean cost
    per query it spends, and the number of queries routed at every weight."""
    b = bp.falling
    n = b.shape[0]
    p = jnp.sum(b > -jnp.inf)  # queries that some finite weight routes
    j = jnp.arange(n + 1)
    upper = jnp.concatenate([jnp.full((1,), jnp.inf, b.dtype), b[::-1]])  # upper[j]: the j-th largest b
    lower = jnp.concatenate([b[::-1], jnp.full((1,), -jnp.inf, b.dtype)])  # lower[j]: the (j+1)-th largest
    valid = (j <= p) & ((j == 0) | (j == p) | (lower < upper))
    # A weight in [lower, upper): the midpoint where both ends are finite; else an end point.
    mid = 0.5 * lower + 0.5 * upper
    below = jnp.nextafter(upper, jnp.full_like(upper, -jnp.inf))
    w = jnp.where(jnp.isfinite(lower) & jnp.isfinite(upper), mid, jnp.where(jnp.isfinite(lower), lower, below))
    g_top = jnp.where(bp.falling > -jnp.inf, bp.gap[bp.falling_order], 0.0)[::-1]
    spent = bp.base_cost + jnp.concatenate([jnp.zeros((1,), b.dtype), jnp.cumsum(g_top)]) / n
    return valid, w, spent, jnp.sum(bp.always)


def _result(bp: Breakpoints, w: Array, j: Array, spent: Array, n_always: Array) -> Calibration:
    n = bp.gap.shape[0]
    return Calibration(w, _divide((n_always + j).astype(w.dtype), jnp.asarray(n, w.dtype)), spent[j])


def calibrate_share(bp: Breakpoints, share: ArrayLike) -> Calibration:
    """Weights that route the target ``share (T,)`` of queries to the primary (any sign of ``w``).

    Each target gets the achievable count nearest to ``round(share·n)`` (within one query
    unless tied scores make it unreachable) and a weight in the middle of the interval of
    weights that route exactly that count. Queries with a zero gap and ``ψ̂ > 0`` are routed
    at every weight, so shares below theirs are not reachable. ``O(log n)`` per target.
    Needs ``C_p ≥ C_a`` everywhere (usage is then monotone in ``w``).
    """
    _check_nonnegative_gap(bp)
    share = jnp.atleast_1d(jnp.asarray(share, bp.gap.dtype))
    n = bp.gap.shape[0]
    valid, w_seg, spent, n_always = _segments(bp)
    target = jnp.clip(jnp.round(share * n) - n_always, 0, n).astype(jnp.int32)
    idx = jnp.arange(n + 1)
    prev = jax.lax.cummax(jnp.where(valid, idx, -1))
    nxt = jax.lax.cummin(jnp.where(valid, idx, n + 1), reverse=True)
    lo, hi = prev[target], nxt[target]
    pick = jnp.where((lo < 0) | ((hi <= n) & ((hi - target) < (target - lo))), hi, lo)
    return _result(bp, w_seg[pick], pick, spent, n_always)


def calibrate_budget(bp: Breakpoints, budget: ArrayLike) -> Calibration:
    """Weights that buy the most estimated quality within a mean cost per query of ``budget (T,)``.

    The smallest weight whose policy costs at most the budget, but never below 0: below
    ``w = 0`` the added queries have ``ψ̂ ≤ 0`` and lower the estimated quality. A budget
    below the cost of routing nothing gets the weight that routes nothing (its ``cost``
    then exceeds the budget: check it). ``O(log n)`` per target. Needs ``C_p ≥ C_a`` everywhere.
    """
    _check_nonnegative_gap(bp)
    budget = jnp.atleast_1d(jnp.asarray(budget, bp.gap.dtype))
    valid, w_seg, spent, n_always = _segments(bp)
    idx = jnp.arange(spent.shape[0])
    prev = jax.lax.cummax(jnp.where(valid, idx, -1))
    # spent grows with j: the largest affordable j, then the largest valid one at or below it.
    j = prev[jnp.maximum(jnp.searchsorted(spent, budget, side="right") - 1, 0)]
    j = jnp.maximum(j, 0)
    # Past w = 0 only queries with ψ̂ ≤ 0 are added: stop at w = 0, which routes those with b > 0.
    j0 = bp.falling.shape[0] - jnp.searchsorted(bp.falling, jnp.zeros((), bp.falling.dtype), side="right")
    negative = w_seg[j] < 0
    return _result(bp, jnp.where(negative, 0.0, w_seg[j]), jnp.where(negative, j0, j), spent, n_always)
