"""Robustness across sizes: 100, 1,000 and 10,000 gold rows with 39 preference rows per gold row.

For each size, a study on the paper-like simulator (500 test queries) with the default
Meta-Routers and the Golden-only and Pooled baselines; prints area, peak and ψ̂ RMSE with
standard errors over runs, and writes JSON.

    python benchmarks/bench_sizes.py [--sizes 100,1000,10000] [--runs 20] [--batch-size 10] [--methods ...]
"""
from __future__ import annotations

import argparse
import json
import os
import sys

import jax
import numpy as np

from mrjax.router import summarize_gain
from mrjax.sim import StudyConfig, run_study

sys.path.insert(0, os.path.dirname(__file__))
from _meta import run_meta  # noqa: E402
from _paired import paired_differences, per_run_area  # noqa: E402

METHODS = ("meta_r", "meta_x", "meta_dr", "golden", "pooled")


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sizes", default="100,1000,10000")
    p.add_argument("--runs", type=int, default=20)
    p.add_argument("--batch-size", type=int, default=10,
                   help="runs per batch, divided by 10 per decade above 1k gold rows (memory)")
    p.add_argument("--methods", default=",".join(METHODS), help="study methods, e.g. meta_r,meta_r_cv,golden,pooled")
    p.add_argument("--out", default="benchmarks/results/bench_sizes.json")
    args = p.parse_args(argv)
    out = {"benchmark": "bench_sizes", "meta": run_meta(), "runs": args.runs, "sizes": {}}
    for n_gold in (int(s) for s in args.sizes.split(",")):
        cfg = StudyConfig(n_runs=args.runs, n_gold=n_gold, n_preference=39 * n_gold, methods=tuple(args.methods.split(",")),
                          batch_size=max(1, min(args.batch_size, args.runs) * 1000 // max(n_gold, 1000)))
        res = run_study(jax.random.key(n_gold), cfg, progress=False)
        s = summarize_gain(res.efficiency, res.random, res.oracle, normalize="oracle")
        # Per-run areas give a standard error for the area difference between methods.
        per_run = per_run_area(res.efficiency, res.random, res.oracle)
        rows = {}
        for m, name in enumerate(res.methods):
            rows[name] = {"area": float(s.area[m]), "peak": float(s.peak[m]),
                          "area_run_mean": float(per_run[:, m].mean()),
                          "area_run_se": float(per_run[:, m].std(ddof=1) / np.sqrt(args.runs)),
                          "rmse": float(res.rmse[:, m].mean()),
                          "rmse_se": float(res.rmse[:, m].std(ddof=1) / np.sqrt(args.runs))}
        paired = paired_differences(dict(zip(res.methods, per_run.T)),
                                    [(m, ref) for m in res.methods if m.startswith("meta")
                                     for ref in ("golden", "pooled") if ref in res.methods])
        out["sizes"][n_gold] = {"seconds": res.seconds, "rows": rows, "paired_area": paired}
        print(f"\n{n_gold} gold / {39 * n_gold} preference: {res.seconds:.1f}s on {out['device']}")
        print(f"{'method':<10} {'area':>7} {'run-area':>16} {'ψ̂ RMSE':>16}")
        for name, v in rows.items():
            print(f"{name:<10} {v['area']:7.3f} {v['area_run_mean']:8.3f}±{v['area_run_se']:.3f} {v['rmse']:9.3f}±{v['rmse_se']:.3f}")
        for name, v in paired.items():
            print(f"  {name}: {v['mean']:+.3f} ± {v['se']:.3f} (paired per-run area)")
    os.makedirs(os.path.dirname(args.out) or ".", exist_ok=True)
    with open(args.out, "w") as f:
        json.dump(out, f, indent=2)


if __name__ == "__main__":
    main()
