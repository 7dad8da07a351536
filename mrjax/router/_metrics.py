"""Routing evaluation as the Meta-Router paper defines it (its Figure 1(a) protocol).

Per Monte-Carlo run: rank the test queries by ψ̂ (descending); routing the top k to the
primary gives usage ``k / n_test`` and **total efficiency** = the sum of the true gold
gains of the routed queries. The curve stops where ψ̂ turns non-positive (``w ≥ 0``).
A random router (a random permutation, redrawn per run) gives the reference; the
**efficiency gain** is the difference, read on a usage grid (0.20 … 0.80 by 0.01) by
linear interpolation of each run's curve. Grid points past a run's stop are NaN and
are left out of the average over runs.
"""
from __future__ import annotations

import warnings
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from mrjax._typing import Array, PRNGKey

USAGE_GRID = np.round(np.arange(20, 81) / 100.0, 2)


def _cumulative(order: Array, gain: Array) -> Array:
    return jnp.concatenate([jnp.zeros((1,), gain.dtype), jnp.cumsum(gain[order])])


def efficiency_curve(score: Array, gain: Array, grid: Array, truncate: bool = True) -> Array:
    """Total efficiency on the usage ``grid`` when routing the top-ranked queries by ``score``.

    Parameters
    ----------
    score : (n,) ψ̂ on the test queries.
    gain : (n,) true gold gains of the test queries.
    grid : (G,) usage ratios.
    truncate : stop the curve where ``score`` turns non-positive (NaN past that usage).

    Returns
    -------
    (G,) array.
    """
    n = score.shape[0]
    order = jnp.argsort(-score, stable=True)
    cum = _cumulative(order, gain)
    usage = jnp.arange(n + 1, dtype=gain.dtype) / n
    curve = jnp.interp(grid, usage, cum)
    if truncate:
        stop = jnp.sum(score > 0) / n
        curve = jnp.where(grid <= stop + 1e-9, curve, jnp.nan)
    return curve


def random_curve(key: PRNGKey, gain: Array, grid: Array) -> Array:
    """Total efficiency of a random router (one random permutation) on ``grid``."""
    n = gain.shape[0]
    cum = _cumulative(jax.random.permutation(key, n), gain)
    return jnp.interp(grid, jnp.arange(n + 1, dtype=gain.dtype) / n, cum)


class RunCurves(NamedTuple):
    """One run's curves on the usage grid.

    Attributes
    ----------
    efficiency : (M, G) total efficiency of each method (NaN past its stop).
    random : (G,) the random router.
    oracle : () total of the positive true gains (the best total efficiency at any usage).
    """

    efficiency: Array
    random: Array
    oracle: Array


def run_curves(key: PRNGKey, scores: Array, gain: Array, grid: Array) -> RunCurves:
    """Curves of ``M`` methods' scores ``(M, n)`` against the true ``gain (n,)`` in one run."""
    eff = jax.vmap(lambda s: efficiency_curve(s, gain, grid))(scores)
    return RunCurves(eff, random_curve(key, gain, grid), jnp.sum(jnp.maximum(gain, 0.0)))


class GainSummary(NamedTuple):
    """Efficiency gain of each method aggregated over runs.

    Attributes
    ----------
    curve : (M, G) aggregated (mean or median) efficiency gain, normalised.
    lower, upper : (M, G) 2.5% and 97.5% quantiles over runs (the 95% band).
    n_runs : (M, G) runs whose curve reaches each usage (the curve is NaN where fewer than
        ``min_runs`` of them do).
    peak : (M,) largest aggregated gain; peak_usage : (M,) usage where it occurs.
    area : (M,) trapezoid area under the aggregated curve over its defined range (NaN where the
        curve is defined nowhere).
    """

    curve: np.ndarray
    lower: np.ndarray
    upper: np.ndarray
    n_runs: np.ndarray
    peak: np.ndarray
    peak_usage: np.ndarray
    area: np.ndarray


def summarize_gain(
    efficiency: np.ndarray,
    random: np.ndarray,
    oracle: np.ndarray,
    grid: np.ndarray = USAGE_GRID,
    aggregate: str = "mean",
    normalize: str | float = 1.0,
    min_runs: float = 0.5,
) -> GainSummary:
    """Aggregate per-run curves into efficiency-gain summaries (host-side NumPy).

    Parameters
    ----------
    efficiency : (R, M, G); random : (R, G); oracle : (R,)
    aggregate : ``"mean"`` or ``"median"`` over runs.
    normalize : a constant to divide by, or ``"oracle"`` for
        ``(method − random) / (oracle − random)`` computed on the aggregated curves.
    min_runs : the aggregated curve (and its peak and area) is reported where at least this share of
        the runs reach the usage, NaN beyond: past it the average is over the few runs that route
        the most — a selected minority whose curve jumps as each run drops out.
    """
    eff, rnd, orc = _check_summary(efficiency, random, oracle, aggregate, normalize, min_runs)
    curve, scaled, n_runs, reported = _aggregate(eff, rnd, orc, aggregate, normalize, min_runs)
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN slices past every run's stop
        lower = np.nanquantile(scaled, 0.025, axis=0)
        upper = np.nanquantile(scaled, 0.975, axis=0)
    lower, upper = (np.where(reported, a, np.nan) for a in (lower, upper))
    peak, peak_usage, area = _curve_summaries(curve, np.asarray(grid, np.float64))
    return GainSummary(curve, lower, upper, n_runs, peak, peak_usage, area)


def area_resamples(
    efficiency: np.ndarray,
    random: np.ndarray,
    oracle: np.ndarray,
    grid: np.ndarray = USAGE_GRID,
    aggregate: str = "mean",
    normalize: str | float = 1.0,
    min_runs: float = 0.5,
    n_resamples: int = 1000,
    seed: int = 0,
) -> np.ndarray:
    """(n_resamples, M) :func:`summarize_gain`'s area on the runs drawn with replacement (host-side NumPy).

    The spread over resamples is the Monte-Carlo error of a study's areas, and since the methods of a
    resample share its runs, the spread of a difference of two columns is that difference's (paired) error:
    the area of a run-averaged curve is not an average of per-run areas, so no per-run formula gives it.
    ``seed`` fixes the resamples (same inputs, same result).
    """
    eff, rnd, orc = _check_summary(efficiency, random, oracle, aggregate, normalize, min_runs)
    if isinstance(n_resamples, bool) or not isinstance(n_resamples, (int, np.integer)) or n_resamples < 2:
        raise ValueError(f"n_resamples must be an integer of at least 2, got {n_resamples!r}")
    grid = np.asarray(grid, np.float64)
    rng = np.random.default_rng(seed)
    R = eff.shape[0]
    out = np.empty((n_resamples, eff.shape[1]))
    for b in range(n_resamples):
        rows = rng.integers(0, R, R)
        curve = _aggregate(eff[rows], rnd[rows], orc[rows], aggregate, normalize, min_runs)[0]
        out[b] = _curve_summaries(curve, grid)[2]
    return out


def _check_summary(efficiency, random, oracle, aggregate, normalize, min_runs):
    if aggregate not in ("mean", "median"):
        raise ValueError(f"aggregate must be 'mean' or 'median', got {aggregate!r}")
    if normalize != "oracle" and (isinstance(normalize, str) or not float(normalize) > 0):
        raise ValueError(f"normalize must be a positive constant or 'oracle', got {normalize!r}")
    if not 0.0 < float(min_runs) <= 1.0:
        raise ValueError(f"min_runs must be a share in (0, 1], got {min_runs!r}")
    return tuple(np.asarray(a, np.float64) for a in (efficiency, random, oracle))


def _aggregate(eff, rnd, orc, aggregate, normalize, min_runs):
    """The run-aggregated, normalised curve (M, G) (NaN where fewer than ``min_runs`` of the runs reach the
    usage), the per-run normalised gains (R, M, G), the runs reaching each usage (M, G) and where the curve
    is reported (M, G)."""
    agg = np.nanmean if aggregate == "mean" else np.nanmedian
    per_run = eff - rnd[:, None, :]
    n_runs = np.isfinite(per_run).sum(axis=0)
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN slices past every run's stop
        if normalize == "oracle":
            denom = agg(orc)[None] - agg(rnd, axis=0)
            curve = (agg(eff, axis=0) - agg(rnd, axis=0)[None, :]) / denom[None, :]
            scaled = per_run / (orc[:, None, None] - rnd[:, None, :])
        else:
            c = float(normalize)
            curve = agg(per_run, axis=0) / c
            scaled = per_run / c
    reported = (n_runs > 0) & (n_runs >= min_runs * eff.shape[0])
    return np.where(reported, curve, np.nan), scaled, n_runs, reported


def _curve_summaries(curve, grid):
    """Peak, its usage and the trapezoid area of each aggregated curve (NaN where defined nowhere)."""
    M = curve.shape[0]
    peak, peak_usage, area = np.full(M, np.nan), np.full(M, np.nan), np.full(M, np.nan)
    for m in range(M):
        ok = np.isfinite(curve[m])
        if ok.any():
            i = int(np.nanargmax(curve[m]))
            peak[m], peak_usage[m] = curve[m, i], grid[i]
            last = np.nonzero(ok)[0].max()
            seg = curve[m, : last + 1]
            x = grid[: last + 1]
            good = np.isfinite(seg)
            # A curve defined at one usage has zero area; one defined nowhere has none (NaN), never 0.0.
            area[m] = float(np.trapezoid(seg[good], x[good])) if good.sum() > 1 else 0.0
    return peak, peak_usage, area


def run_areas(efficiency: np.ndarray, random: np.ndarray, oracle: np.ndarray, grid: np.ndarray = USAGE_GRID,
              normalize: str | float = "oracle") -> tuple[np.ndarray, np.ndarray]:
    """Each run's own area and reach (host-side NumPy), for paired comparisons of methods run by run.

    The run's gain curve ``efficiency − random`` (divided by ``oracle − random`` at each usage with
    ``"oracle"``, or by a constant) is integrated by trapezoids over the usages it reaches; ``reach`` is
    the last of them (NaN areas and reaches for a curve defined nowhere).

    Returns
    -------
    area, reach : (R, M) arrays.
    """
    eff, rnd, orc = (np.asarray(a, np.float64) for a in (efficiency, random, oracle))
    gain = eff - rnd[:, None, :]
    if normalize == "oracle":
        with np.errstate(all="ignore"):
            gain = gain / (orc[:, None, None] - rnd[:, None, :])
    else:
        gain = gain / float(normalize)
    ok = np.isfinite(gain)
    grid = np.asarray(grid, np.float64)
    # Curves are defined on a prefix of the grid (they stop where ψ̂ turns non-positive).
    segment = np.where(ok[..., 1:] & ok[..., :-1], 0.5 * (gain[..., 1:] + gain[..., :-1]) * np.diff(grid), 0.0)
    area = np.where(ok.any(-1), segment.sum(-1), np.nan)
    last = ok.shape[-1] - 1 - np.argmax(ok[..., ::-1], axis=-1)
    reach = np.where(ok.any(-1), grid[last], np.nan)
    return area, reach


def routing_area(score: Array, gain: Array, weight: Array) -> Array:
    """Efficiency-gain area of routing by ``score`` on rows with known ``gain`` (raw scale).

    The evaluation protocol on a weighted sample: rows ranked by ``score`` (descending) take
    usage shares ``q_i`` (weight before them plus half their own); routing the share ``u``
    gains the weighted gains of the rows with ``q_i ≤ u``, a random router ``u`` times all of
    them; the difference is integrated over the usage grid up to the share ``U`` whose score
    is positive (the curve stops where ψ̂ ≤ 0). In closed form,
    ``Σ w_i g_i [(U − max(q_i, a))₊ − (U² − a²)₊ / 2]`` with ``U = min(b, share of score > 0)``
    and the grid ``[a, b]``; rows of weight 0 take no share and count nothing.
    """
    lo, hi = float(USAGE_GRID[0]), float(USAGE_GRID[-1])
    total = jnp.maximum(jnp.sum(weight), 1e-12)
    order = jnp.argsort(-score)
    w, g = weight[order], gain[order]
    q = (jnp.cumsum(w) - 0.5 * w) / total
    U = jnp.minimum(hi, jnp.sum(jnp.where(score > 0, weight, 0.0)) / total)
    own = jnp.maximum(U - jnp.maximum(q, lo), 0.0)
    rand = jnp.maximum(U**2 - lo**2, 0.0) / 2
    return jnp.sum(w * g * (own - rand))


FULL_GRID = np.round(np.arange(0, 101) / 100.0, 2)
CPT_LEVELS = (0.5, 0.8)


class RoutingEvaluation(NamedTuple):
    """A router's ranking judged on labelled queries (RouteLLM's metrics and the paper's curve).

    Routing the share ``u`` of queries with the largest scores to the primary recovers the gain
    ``G(u)`` (the routed queries' weighted gold gains, linear within a query), a random router
    ``u·G(1)`` in expectation.

    Attributes
    ----------
    usage : (G,) the usage grid.
    efficiency_gain : (G,) ``(G(u) − u·G(1)) / Σw``: gain per query over the random router.
    pgr : (G,) performance gap recovered, ``G(u) / G(1)`` (NaN unless ``G(1) > 0``).
    apgr : () its average over usage, the exact integral over ``[0, 1]``.
    cpt : (K,) call-performance thresholds: the smallest share of primary calls whose ranking recovers
        each level of the gap (``CPT_LEVELS``: 50%, 80%); NaN if never.
    """

    usage: Array
    efficiency_gain: Array
    pgr: Array
    apgr: Array
    cpt: Array


def evaluate_routing(score: Array, gain: Array, weight: Array | None = None, grid: Array = FULL_GRID,
                     levels: tuple = CPT_LEVELS) -> RoutingEvaluation:
    """Judge the ranking by ``score (n,)`` with the queries' true gold gains ``gain (n,)`` (pure; vmap over
    ``weight`` for a bootstrap of the queries). Ties keep the input order."""
    weight = jnp.ones_like(gain) if weight is None else weight
    order = jnp.argsort(-score, stable=True)
    w = weight[order]
    cum_w = jnp.concatenate([jnp.zeros((1,), w.dtype), jnp.cumsum(w)])
    cum_g = jnp.concatenate([jnp.zeros((1,), w.dtype), jnp.cumsum(w * gain[order])])
    total_w, total_g = cum_w[-1], cum_g[-1]
    u = cum_w / total_w
    grid = jnp.asarray(grid, gain.dtype)
    at = jnp.interp(grid, u, cum_g)
    ok = total_g > 0
    safe = jnp.where(ok, total_g, 1.0)
    pgr = jnp.where(ok, at / safe, jnp.nan)
    area = jnp.sum(0.5 * (cum_g[1:] + cum_g[:-1]) * jnp.diff(u))
    apgr = jnp.where(ok, area / safe, jnp.nan)
    reached = cum_g[None, :] >= jnp.asarray(levels, gain.dtype)[:, None] * total_g
    first = jnp.argmax(reached, axis=1)
    cpt = jnp.where(ok & reached.any(axis=1), u[first], jnp.nan)
    return RoutingEvaluation(grid, (at - grid * total_g) / total_w, pgr, apgr, cpt)
