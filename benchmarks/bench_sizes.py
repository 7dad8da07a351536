"""Robustness across sizes: 100, 1,000 and 10,000 gold rows with 39 preference rows per gold row.

For each size, a study on the paper-like simulator (500 test queries) with the default
Meta-Routers and the Golden-only and Pooled baselines, and beside them on the same runs the
``truth`` router, which ranks the test queries by ψ itself (a perfect ranking that stops at the true
zero crossing): how much room a router has, short of a curve that runs past that crossing. Prints area, peak, stop and ψ̂ RMSE with standard errors
over runs and paired per-run differences in raw area (the true gains summed over the test queries,
integrated over usage), also on the common support of each
pair's curves (both cut at the earlier stop); writes JSON.

    python benchmarks/bench_sizes.py [--sizes 100,1000,10000] [--runs 20] [--batch-size 10] [--methods ...]
"""
from __future__ import annotations

import argparse
import json
import os
import sys

import jax
import jax.numpy as jnp
import numpy as np

from mrjax.router import USAGE_GRID, efficiency_curve, summarize_gain
from mrjax.sim import StudyConfig, one_run, run_study
from mrjax.sim._study import _simulated, study_hyper

sys.path.insert(0, os.path.dirname(__file__))
from _meta import run_meta  # noqa: E402
from _paired import (  # noqa: E402
    aggregate_area_differences, common_support_differences, paired_differences, per_run_area, stop_usage,
)

METHODS = ("meta_r", "meta_x", "meta_dr", "golden", "pooled")
TRUTH = "truth"


def with_truth(config: StudyConfig):
    """A study run (``run_study``'s ``run_fn``) that appends the truth router to the methods: the test queries
    ranked by their true gains, on the run's own simulated data."""
    hyper = study_hyper(config)
    grid = jnp.asarray(USAGE_GRID)

    def run(key):
        eff, rnd, orc, rmse, nonfinite = one_run(key, config, hyper)
        truth = _simulated(key, config, hyper).truth  # the same draw as one_run's (XLA merges the two)
        best = efficiency_curve(truth, truth, grid.astype(truth.dtype))
        return (jnp.concatenate([eff, best[None]]), rnd, orc, jnp.concatenate([rmse, jnp.zeros(1, rmse.dtype)]),
                jnp.concatenate([nonfinite, jnp.zeros(1, nonfinite.dtype)]))
    return run


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
        res = run_study(jax.random.key(n_gold), cfg, run_fn=with_truth(cfg), progress=False)
        names = list(res.methods) + [TRUTH]
        s = summarize_gain(res.efficiency, res.random, res.oracle, normalize="oracle")
        # Per-run areas give a standard error for the area difference between methods.
        per_run = per_run_area(res.efficiency, res.random, res.oracle)
        stops = stop_usage(res.efficiency, res.random, res.grid)
        rows = {}
        for m, name in enumerate(names):
            rows[name] = {"area": float(s.area[m]), "peak": float(s.peak[m]),
                          "area_run_mean": float(per_run[:, m].mean()),
                          "area_run_se": float(per_run[:, m].std(ddof=1) / np.sqrt(args.runs)),
                          "stop": float(np.nanmean(stops[:, m])),
                          "rmse": None if name == TRUTH else float(res.rmse[:, m].mean()),
                          "rmse_se": None if name == TRUTH else float(res.rmse[:, m].std(ddof=1) / np.sqrt(args.runs))}
        refs = [r for r in ("golden", "pooled") if r in names]
        pairs = [(m, ref) for m in names if m.startswith("meta") or m == "all_golden" for ref in refs]
        pairs += [(TRUTH, m) for m in names if m != TRUTH]
        raw = per_run_area(res.efficiency, res.random)
        paired = paired_differences(dict(zip(names, raw.T)), pairs)
        gain = dict(zip(names, np.moveaxis(res.efficiency - res.random[:, None, :], 1, 0)))
        common = common_support_differences(gain, pairs, res.grid)
        # The study's own statistic: the area of the run-averaged curve, paired by resampling runs.
        study = aggregate_area_differences(res.efficiency, res.random, res.oracle, names, pairs)
        out["sizes"][n_gold] = {"seconds": res.seconds, "methods": names, "rows": rows, "paired_area": study,
                                "paired_raw_area": paired, "paired_raw_area_common_support": common}
        print(f"\n{n_gold} gold / {39 * n_gold} preference, {args.runs} runs: {res.seconds:.1f}s on {out['meta']['device']}")
        print(f"{'method':<10} {'area':>7} {'run-area':>16} {'stop':>6} {'ψ̂ RMSE':>16}")
        for name, v in rows.items():
            rmse = "" if v["rmse"] is None else f"{v['rmse']:9.3f}±{v['rmse_se']:.3f}"
            print(f"{name:<10} {v['area']:7.3f} {v['area_run_mean']:8.3f}±{v['area_run_se']:.3f} {v['stop']:6.3f} {rmse}")
        print("paired: area of the mean curve | raw area per run | raw area per run on the common support")
        for name, v in paired.items():
            a, c = study[name], common[name]
            print(f"  {name}: {a['mean']:+.4f} ± {a['se']:.4f} | {v['mean']:+.2f} ± {v['se']:.2f} | "
                  f"{c['mean']:+.2f} ± {c['se']:.2f}")
    os.makedirs(os.path.dirname(args.out) or ".", exist_ok=True)
    with open(args.out, "w") as f:
        json.dump(out, f, indent=2)


if __name__ == "__main__":
    main()
