"""A grid of studies: ``mrjax sweep`` against the same cells as separate ``mrjax study`` calls, side by side.

    python benchmarks/bench_sweep.py [--runs 200] [--quick] [--out benchmarks/results/bench_sweep.json]

The grid is 3 × 3 × 2: gold rows (100, 200, 400; shapes, so one program each), the judge's bias strength
(0.5, 1, 2) and λ (0.5, 1; numbers, which share a program), 3 methods (meta_r, golden, pooled) on the
paper-like simulator. Each command runs in its own process (wall time and peak resident memory from the
OS); the separate calls are timed one after another, as a user would run them. The sweep's per-cell
results are checked against the separate calls' (the same numbers: the same settings and seed).
"""
from __future__ import annotations

import argparse
import itertools
import json
import os
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _meta import run_meta, write_result  # noqa: E402

GRID = {"n_gold": [100, 200, 400], "bias_strength": [0.5, 1.0, 2.0], "preference_weight": [0.5, 1.0]}
METHODS = ["meta_r", "golden", "pooled"]


def _run(cmd: list[str]) -> tuple[float, float]:
    """Wall seconds and peak resident memory (GiB) of one command in a fresh process."""
    code = ("import resource, subprocess, sys, time, json; t = time.perf_counter(); "
            "r = subprocess.run(sys.argv[1:]); s = time.perf_counter() - t; "
            "print(json.dumps({'rc': r.returncode, 's': s, "
            "'rss': resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 2**20}))")
    out = subprocess.run([sys.executable, "-c", code, *cmd], capture_output=True, text=True)
    res = json.loads(out.stdout.strip().splitlines()[-1])
    if res["rc"] != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{out.stderr[-2000:]}")
    return res["s"], res["rss"]


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--runs", type=int, default=200)
    p.add_argument("--quick", action="store_true", help="8 runs (a smoke test; not rendered)")
    p.add_argument("--out", default="benchmarks/results/bench_sweep.json")
    args = p.parse_args(argv)
    runs = 8 if args.quick else args.runs
    work = tempfile.mkdtemp(prefix="bench_sweep-")
    grid_path = os.path.join(work, "grid.toml")
    with open(grid_path, "w") as f:
        f.write(f"[study]\nruns = {runs}\nmethods = {json.dumps(METHODS)}\n[grid]\n")
        for axis, values in GRID.items():
            f.write(f"{axis} = {json.dumps(values)}\n")
    mrjax = [sys.executable, "-m", "mrjax"]
    sweep_s, sweep_rss = _run([*mrjax, "sweep", grid_path, "--out", os.path.join(work, "sweep"), "--quiet"])
    print(f"sweep: {sweep_s:.1f} s, peak {sweep_rss:.2f} GiB", file=sys.stderr)
    cells = list(itertools.product(*GRID.values()))
    study_s, study_rss, areas = [], [], []  # areas: each study's mean ψ̂ RMSE per method
    for i, values in enumerate(cells):
        flags = [f"--{a.replace('_', '-')}={v}" for a, v in zip(GRID, values)]
        out = os.path.join(work, f"study{i}")
        s, rss = _run([*mrjax, "study", "--runs", str(runs), "--methods", ",".join(METHODS), *flags, "--out", out,
                       "--quiet"])
        study_s.append(s)
        study_rss.append(rss)
        with open(os.path.join(out, "results.json")) as f:
            areas.append({m: r["psi_rmse_mean"] for m, r in json.load(f)["methods"].items()})
        print(f"study {i + 1}/{len(cells)}: {s:.1f} s", file=sys.stderr)
    import pandas as pd

    summary = pd.read_csv(os.path.join(work, "sweep", "summary.csv"))
    with open(os.path.join(work, "sweep", "sweep.json")) as f:
        manifest = json.load(f)
    # The sweep's cells are the studies' cells: the mean ψ̂ RMSE of every cell and method must agree.
    import numpy as np

    frame = pd.read_parquet(os.path.join(work, "sweep", "results.parquet"))
    diffs = []
    for values, rmse in zip(cells, areas):
        rows = summary
        for a, v in zip(GRID, values):
            rows = rows[np.isclose(rows[a], v)]
        for m in METHODS:
            diffs.append(abs(float(rows[rows.method == m].psi_rmse_mean.iloc[0]) - rmse[m]))
    result = {
        "benchmark": "bench_sweep", "meta": run_meta(), "quick": args.quick,
        "config": {"grid": GRID, "methods": METHODS, "runs": runs, "cells": len(cells),
                   "programs": len(GRID["n_gold"])},
        "sweep": {"seconds": sweep_s, "peak_rss_gib": sweep_rss},
        "separate": {"seconds": float(np.sum(study_s)), "seconds_each": study_s, "peak_rss_gib": float(np.max(study_rss))},
        "ratio": float(np.sum(study_s) / sweep_s),
        "rows": len(frame), "cells_in_manifest": len(manifest["cells"]),
        "max_rmse_difference_vs_studies": float(max(diffs)),
    }
    write_result(args.out, result)
    print(f"{'':<22}{'seconds':>10}{'peak GiB':>10}")
    print(f"{'mrjax sweep':<22}{sweep_s:>10.1f}{sweep_rss:>10.2f}")
    print(f"{'18 x mrjax study':<22}{np.sum(study_s):>10.1f}{np.max(study_rss):>10.2f}")
    print(f"ratio {result['ratio']:.2f}x; per-cell ψ̂ RMSE equal to the studies' within "
          f"{result['max_rmse_difference_vs_studies']:.1e}; wrote {args.out}")


if __name__ == "__main__":
    main()
