"""Paired per-run comparisons of study methods (shared by the benchmark scripts)."""
from __future__ import annotations

import numpy as np

from mrjax.router import summarize_gain


def per_run_area(efficiency, random, oracle=None) -> np.ndarray:
    """(R, M) area under each run's efficiency-gain curve: oracle-normalised when ``oracle``
    (R,) is given, raw (normalised by 1) otherwise."""
    def one(r):
        if oracle is None:
            return summarize_gain(efficiency[r:r + 1], random[r:r + 1], np.ones(1), normalize=1.0).area
        return summarize_gain(efficiency[r:r + 1], random[r:r + 1], oracle[r:r + 1], normalize="oracle").area
    return np.stack([one(r) for r in range(len(efficiency))])


def paired_differences(area: dict, pairs) -> dict:
    """``{"a - b": {"mean", "se"}}`` of per-run differences ``area[a] − area[b]`` over runs."""
    out = {}
    for a, b in pairs:
        d = np.asarray(area[a]) - np.asarray(area[b])
        out[f"{a} - {b}"] = {"mean": float(d.mean()), "se": float(d.std(ddof=1) / np.sqrt(len(d)))}
    return out
