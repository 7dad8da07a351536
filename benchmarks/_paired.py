"""Paired per-run comparisons of study methods (shared by the benchmark scripts)."""
from __future__ import annotations

import numpy as np

from mrjax.router import area_resamples, summarize_gain


def per_run_area(efficiency, random, oracle=None) -> np.ndarray:
    """(R, M) area under each run's efficiency-gain curve: oracle-normalised when ``oracle``
    (R,) is given, raw (normalised by 1) otherwise. A run whose curve stops before the grid's first
    usage (ψ̂ positive on fewer queries) has area 0 there: the router gains nothing on the grid, and
    dropping such runs would favour the method that has them."""
    def one(r):
        if oracle is None:
            return summarize_gain(efficiency[r:r + 1], random[r:r + 1], np.ones(1), normalize=1.0).area
        return summarize_gain(efficiency[r:r + 1], random[r:r + 1], oracle[r:r + 1], normalize="oracle").area
    return np.nan_to_num(np.stack([one(r) for r in range(len(efficiency))]), nan=0.0)


def _points(curve) -> np.ndarray:
    """Grid points each curve is defined on (curves are defined on a prefix of the grid)."""
    return np.isfinite(np.asarray(curve)).sum(-1)


def stop_usage(efficiency, random, grid) -> np.ndarray:
    """(R, M) the last usage of each run's curve: where the method's ψ̂ turns non-positive (the protocol's stop)."""
    n = _points(np.asarray(efficiency) - np.asarray(random)[:, None, :])
    return np.where(n > 0, np.asarray(grid)[np.maximum(n - 1, 0)], np.nan)


def common_support_differences(gain: dict, pairs, grid) -> dict:
    """``{"a - b": {"mean", "se"}}`` of per-run raw-area differences with both curves cut at the shorter one's
    stop. ``gain[name]`` is (R, G): a method's efficiency gain over the random router per run (NaN past its stop).

    The protocol's area also rewards a curve for running longer (ψ̂ positive on more queries: past the true
    zero crossing the gain still rises while the routed query's gain exceeds the mean gain), so a method that
    ranks better can lose area by stopping earlier; on the common support only the ranking counts.
    """
    grid = np.asarray(grid, np.float64)
    out = {}
    for a, b in pairs:
        ga, gb = np.asarray(gain[a], np.float64), np.asarray(gain[b], np.float64)
        d = []
        for ra, rb in zip(ga, gb):
            k = int(min(_points(ra), _points(rb)))
            d.append(float(np.trapezoid(ra[:k] - rb[:k], grid[:k])) if k > 1 else 0.0)
        d = np.asarray(d)
        out[f"{a} - {b}"] = {"mean": float(d.mean()), "se": float(d.std(ddof=1) / np.sqrt(len(d)))}
    return out


def paired_differences(area: dict, pairs) -> dict:
    """``{"a - b": {"mean", "se"}}`` of per-run differences ``area[a] − area[b]`` over runs."""
    out = {}
    for a, b in pairs:
        d = np.asarray(area[a]) - np.asarray(area[b])
        out[f"{a} - {b}"] = {"mean": float(d.mean()), "se": float(d.std(ddof=1) / np.sqrt(len(d)))}
    return out


def aggregate_area_differences(efficiency, random, oracle, names, pairs, n_boot: int = 2000, seed: int = 0) -> dict:
    """``{"a - b": {"mean", "se"}}`` of differences in the study's own area: that of the curve averaged over runs
    (``summarize_gain``), oracle-normalised when ``oracle`` is given, raw otherwise. The mean is the difference on
    all runs, the se the spread over ``n_boot`` resamples of the runs (``router.area_resamples``: paired; NaN
    where an area is undefined in some resample, as ``mrjax study`` reports it)."""
    orc = np.ones(len(efficiency)) if oracle is None else oracle
    normalize = 1.0 if oracle is None else "oracle"
    point = summarize_gain(efficiency, random, orc, normalize=normalize).area
    draws = area_resamples(efficiency, random, orc, normalize=normalize, n_resamples=n_boot, seed=seed)
    index = {n: i for i, n in enumerate(names)}
    out = {}
    for a, b in pairs:
        i, j = index[a], index[b]
        out[f"{a} - {b}"] = {"mean": float(point[i] - point[j]), "se": float(np.std(draws[:, i] - draws[:, j], ddof=1))}
    return out
