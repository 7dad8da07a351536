"""Time and score the Meta-Router fit (issue: estimation core).

DR- and R-learner Meta-Router with random-feature ridge nuisances and 5-fold
cross-fitting, on the paper-like simulator at 100/3,900, 1k/39k and 10k/390k
gold/preference rows (d = 50). Prints a table and writes JSON. With the ``[bench]``
extra it also fits the authors' random-forest pipeline (100 trees, depth 20, in-sample
nuisances, their clip levels) on the same data where that finishes in reasonable time.

    python benchmarks/bench_fit.py [--sizes 100,1000,10000] [--rf-max 1000] [--out results/bench_fit.json]
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time

import jax
import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
from _meta import run_meta  # noqa: E402
from _rf import rf_quality  # noqa: E402

from mrjax.data import paper_like
from mrjax.router import RouterConfig, fit_router, predict_quality


def _rmse(a, b):
    return float(np.sqrt(np.mean((np.asarray(a) - np.asarray(b)) ** 2)))


def time_mrjax(sim, kind, repeats=3):
    config = RouterConfig(method=f"meta_{kind}")
    fit = jax.jit(fit_router, static_argnums=2)
    t0 = time.perf_counter()
    out = fit(jax.random.key(0), sim.data, config)
    jax.block_until_ready(out)
    first = time.perf_counter() - t0
    steady = []
    for r in range(repeats):
        t0 = time.perf_counter()
        out = fit(jax.random.key(r + 1), sim.data, config)
        jax.block_until_ready(out)
        steady.append(time.perf_counter() - t0)
    psi = predict_quality(config, out[0], sim.test_features)
    return {"first_call_s": first, "steady_s": float(np.median(steady)),
            "psi_rmse": _rmse(psi, sim.test_truth.quality_gain)}


def time_random_forest(sim, kind):
    """The authors' pipeline (see ``_rf.py``) on the same data."""
    X, t, o = (np.asarray(a, np.float64) for a in (sim.data.features, sim.data.is_gold, sim.data.label))
    t0 = time.perf_counter()
    psi = rf_quality(f"meta_{kind}", X, t, o, np.asarray(sim.test_features, np.float64))
    return {"seconds": time.perf_counter() - t0, "psi_rmse": _rmse(psi, sim.test_truth.quality_gain)}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="100,1000,10000", help="gold sizes; preference = 39 x gold")
    parser.add_argument("--rf-max", type=int, default=1000, help="largest gold size for the random-forest pipeline (0: skip)")
    parser.add_argument("--out", default="benchmarks/results/bench_fit.json")
    args = parser.parse_args(argv)
    rows = []
    for n_gold in (int(s) for s in args.sizes.split(",")):
        sim = paper_like(jax.random.key(n_gold), n_gold=n_gold, n_preference=39 * n_gold, n_test=2000)
        for kind in ("dr", "r"):
            row = {"n_gold": n_gold, "n_preference": 39 * n_gold, "learner": kind, **time_mrjax(sim, kind)}
            if n_gold <= args.rf_max:
                try:
                    rf = time_random_forest(sim, kind)
                    row.update(rf_seconds=rf["seconds"], rf_psi_rmse=rf["psi_rmse"],
                               speedup_steady=rf["seconds"] / row["steady_s"])
                except ImportError:
                    pass
            rows.append(row)
            print(json.dumps(row), flush=True)
    meta = {**run_meta(), "platform": platform.platform()}
    os.makedirs(os.path.dirname(args.out) or ".", exist_ok=True)
    with open(args.out, "w") as f:
        json.dump({"benchmark": "bench_fit", "meta": meta, "rows": rows}, f, indent=2)
    print(f"\n{meta['device']}  ({meta['cpu_count']} CPUs, jax {meta['jax']})")
    print(f"{'gold':>6} {'pref':>7} {'CATE':>4} {'first s':>8} {'steady s':>9} {'ψ RMSE':>7} {'RF s':>7} {'RF RMSE':>8} {'× RF':>6}")
    for r in rows:
        rf = (f"{r['rf_seconds']:7.1f} {r['rf_psi_rmse']:8.3f} {r['speedup_steady']:6.0f}" if "rf_seconds" in r else f"{'-':>7} {'-':>8} {'-':>6}")
        print(f"{r['n_gold']:>6} {r['n_preference']:>7} {r['learner']:>4} {r['first_call_s']:8.2f} {r['steady_s']:9.3f} {r['psi_rmse']:7.3f} {rf}")


if __name__ == "__main__":
    main()
