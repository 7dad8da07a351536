"""Two source trees side by side on the same workloads: the default study, a large fit, a bootstrap.

For measuring what a change costs (e.g. safer numerics): each workload runs in a fresh
subprocess per tree, alternating trees and repeating, so a shared noisy machine affects both
alike. Workloads use only APIs both trees have (``run_study``, the ``MetaRouter`` facade).

    git worktree add /tmp/before <commit>
    python benchmarks/bench_versions.py --old /tmp/before --new . [--repeats 2] [--quick] [--workload trees]

``--workload trees``: the tree learners alone — steady-state fits of the forest (100, 1,000 and 5,000 rows ×
50 features) and of the boosted trees (1,000 and 10,000 rows; depth 4 and 6; logistic loss), with each
fit's test RMSE (or log-loss) on the paper-like simulator's ψ, so a change's effect on accuracy shows too.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys

WORKLOAD = r'''
import json, sys, time
sys.path.insert(0, {tree!r})
import jax, numpy as np
import mrjax
from mrjax import data as _d
assert mrjax.__file__.startswith({tree!r}), mrjax.__file__
from mrjax.api import MetaRouter
from mrjax.data import paper_like
from mrjax.sim import StudyConfig, run_study
out = {{}}
runs, big = {runs}, {big}
t0 = time.perf_counter(); r = run_study(jax.random.key(0), StudyConfig(n_runs=runs), progress=False)
out["study_s"] = time.perf_counter() - t0
out["study_area_sum"] = float(np.nansum(r.efficiency))
from mrjax.router import summarize_gain
out["study_areas"] = dict(zip(r.methods, summarize_gain(r.efficiency, r.random, r.oracle, normalize="oracle").area.tolist()))
sim = paper_like(jax.random.key(1), n_gold=big, n_preference=39 * big, n_test=500)
X, t, o = (np.asarray(a) for a in (sim.data.features, sim.data.is_gold, sim.data.label))
g = t == 1
for cate in ("dr", "r"):
    t0 = time.perf_counter(); MetaRouter(cate=cate, seed=0).fit(X[g], o[g], X[~g], o[~g]); first = time.perf_counter() - t0
    t0 = time.perf_counter(); mr = MetaRouter(cate=cate, seed=1).fit(X[g], o[g], X[~g], o[~g]); steady = time.perf_counter() - t0
    out[f"fit_{{cate}}_first_s"], out[f"fit_{{cate}}_steady_s"] = first, steady
sim = paper_like(jax.random.key(2))
X, t, o = (np.asarray(a) for a in (sim.data.features, sim.data.is_gold, sim.data.label))
g = t == 1
mr = MetaRouter(cate="dr", seed=0).fit(X[g], o[g], X[~g], o[~g])
Xq = np.asarray(sim.test_features)
t0 = time.perf_counter(); lo, hi = mr.quality_interval(Xq, n_replicates={reps}); out["bootstrap_first_s"] = time.perf_counter() - t0
# Another seed: a refit of new replicates with the compiled program (the same seed would reuse kept replicates).
t0 = time.perf_counter(); lo, hi = mr.quality_interval(Xq, n_replicates={reps}, seed=7); out["bootstrap_steady_s"] = time.perf_counter() - t0
out["bootstrap_width"] = float(np.mean(hi - lo))
print(json.dumps(out))
'''

TREES = r'''
import json, sys, time
sys.path.insert(0, {tree!r})
import jax, jax.numpy as jnp, numpy as np
import mrjax
assert mrjax.__file__.startswith({tree!r}), mrjax.__file__
from mrjax.data import paper_like
from mrjax.learners import GradientBoostedTrees, RandomForest
out = {{}}
cases = [("forest_100", RandomForest(), 100), ("forest_1000", RandomForest(), 1000), ("forest_5000", RandomForest(), 5000),
         ("gbt_1000", GradientBoostedTrees(), 1000), ("gbt_10000", GradientBoostedTrees(), 10_000),
         ("gbt_depth6_10000", GradientBoostedTrees(depth=6), 10_000),
         ("gbt_logistic_10000", GradientBoostedTrees(task="classification"), 10_000)]
for name, learner, n in cases:
    sim = paper_like(jax.random.key(n), n_gold=n, n_preference=0, n_test=2000)
    X, Xt = jnp.asarray(sim.data.features), jnp.asarray(sim.test_features)
    truth = np.asarray(sim.test_truth.quality_gain)
    y = sim.data.label if learner.task == "regression" else (sim.data.label > 0).astype(jnp.float32)
    fit = jax.jit(lambda k, X, y, w, learner=learner: learner.predict(learner.fit(k, X, y, w), Xt))
    jax.block_until_ready(fit(jax.random.key(0), X, y, jnp.ones_like(y)))
    times = []
    for seed in (1, 2, 3):
        t0 = time.perf_counter(); pred = np.asarray(fit(jax.random.key(seed), X, y, jnp.ones_like(y)))
        times.append(time.perf_counter() - t0)
    out[name + "_s"] = min(times)
    if learner.task == "regression":
        out[name + "_rmse"] = float(np.sqrt(np.mean((pred - truth) ** 2)))
    else:  # log-loss against the truth's sign
        p = np.clip(pred, 1e-6, 1 - 1e-6); z = truth > 0
        out[name + "_logloss"] = float(-np.mean(np.where(z, np.log(p), np.log1p(-p))))
print(json.dumps(out))
'''


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--old", required=True, help="source tree of the 'before' version")
    p.add_argument("--new", default=".", help="source tree of the 'after' version")
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--quick", action="store_true", help="20 runs, 1k gold rows, 50 replicates")
    p.add_argument("--workload", choices=("pipeline", "trees"), default="pipeline",
                   help="pipeline: the default study, large fits, a bootstrap; trees: the tree learners alone")
    p.add_argument("--out", default=None, help="default: benchmarks/results/bench_versions.json, "
                                                "bench_versions.trees.json with --workload trees")
    a = p.parse_args(argv)
    sys.path.insert(0, os.path.dirname(__file__))
    from _meta import run_meta, write_result

    a.out = a.out or f"benchmarks/results/bench_versions{'.trees' if a.workload == 'trees' else ''}.json"
    size = dict(runs=20, big=1000, reps=50) if a.quick else dict(runs=200, big=10_000, reps=200)
    source = TREES if a.workload == "trees" else WORKLOAD
    trees = {"old": os.path.abspath(a.old), "new": os.path.abspath(a.new)}

    def commit(tree):
        res = subprocess.run(["git", "-C", tree, "rev-parse", "HEAD"], capture_output=True, text=True)
        dirty = subprocess.run(["git", "-C", tree, "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True).stdout.strip()
        return (res.stdout.strip() or "unknown") + ("+dirty" if dirty else "")

    commits = {name: commit(tree) for name, tree in trees.items()}
    rows = {name: [] for name in trees}
    for r in range(a.repeats):
        for name in (("old", "new") if r % 2 == 0 else ("new", "old")):
            code = source.format(tree=trees[name], **size)
            res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
            if res.returncode != 0:
                raise SystemExit(f"{name} failed: {res.stderr[-2000:]}")
            rows[name].append(json.loads(res.stdout.strip().splitlines()[-1]))
            print(name, rows[name][-1], file=sys.stderr, flush=True)
    keys = [k for k in rows["old"][0] if k.endswith("_s")]
    summary = {k: {n: min(x[k] for x in rows[n]) for n in trees} for k in keys}
    for k in keys:
        summary[k]["new_over_old"] = summary[k]["new"] / summary[k]["old"]
    result = {"benchmark": "bench_versions", "meta": run_meta(), "trees": trees, "commits": commits, "size": size,
              "workload": a.workload, "runs": rows,
              "summary": summary, "quick": a.quick}
    write_result(a.out, result)
    print(f"{'workload':<22} {'old s':>8} {'new s':>8} {'new/old':>8}   (best of {a.repeats})")
    for k, v in summary.items():
        print(f"{k:<22} {v['old']:8.2f} {v['new']:8.2f} {v['new_over_old']:8.3f}")
    print(f"wrote {a.out}")


if __name__ == "__main__":
    main()
