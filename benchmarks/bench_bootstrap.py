"""Batched bootstrap speed: B replicates of the whole Meta-Router pipeline, beside EconML.

On the paper-like simulator at the paper's size (100 gold + 3,900 preference rows,
d = 50, 500 test queries): mrjax's ``bootstrap_predict`` for the DR and R Meta-Routers
(RFF ridge, 5-fold cross-fitting, learned propensity), first call (compilation
included) and steady state; and EconML's ``DRLearner`` with random-forest nuisances and
``inference=BootstrapInference`` (which clones and refits the estimator per replicate)
on the same data. Each mrjax pipeline runs twice: re-selecting every penalty in every
replicate (default) and with the tuning held at the point fit's choices (``retune=False``).
Reports seconds per replicate and the ratio, measured in one run.

    python benchmarks/bench_bootstrap.py [--replicates 1000] [--econml-replicates 10] [--relevance]
        [--n-gold 100 --n-preference 3900] [--out benchmarks/results/bench_bootstrap.json]

``--relevance`` adds each pipeline with the feature relevance (``RouterConfig.relevance``), which a
replicate re-learns, or holds with ``retune=False``.

EconML needs the ``[bench]`` extra; ``--econml-replicates 0`` skips it.
"""
from __future__ import annotations

import argparse
import json
import os
import time

import jax
import numpy as np

import sys

sys.path.insert(0, os.path.dirname(__file__))
from _meta import run_meta  # noqa: E402

from mrjax.data import paper_like
from mrjax.inference import bootstrap_predict, bootstrap_weights
from mrjax.learners import FeatureRelevance
from mrjax.router import RouterConfig


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--replicates", type=int, default=1000)
    p.add_argument("--chunk", type=int, default=None, help="replicates per vmapped chunk (default: bootstrap_predict's)")
    p.add_argument("--econml-replicates", type=int, default=10)
    p.add_argument("--n-gold", type=int, default=100)
    p.add_argument("--n-preference", type=int, default=3900)
    p.add_argument("--kinds", default="dr,r")
    p.add_argument("--relevance", action="store_true", help="also each pipeline with the feature relevance "
                   "(RouterConfig(relevance=FeatureRelevance()); re-learned per replicate unless retune=False)")
    p.add_argument("--out", default="benchmarks/results/bench_bootstrap.json")
    a = p.parse_args(argv)
    sim = paper_like(jax.random.key(0), n_gold=a.n_gold, n_preference=a.n_preference)
    W = bootstrap_weights(jax.random.key(1), sim.data.is_gold, a.replicates)
    boot = jax.jit(bootstrap_predict, static_argnames=("config", "target", "chunk", "retune"))
    rows = {}
    variants = [(kind, relevance) for kind in a.kinds.split(",") for relevance in ((False, True) if a.relevance else (False,))]
    for kind, relevance in variants:
        config = RouterConfig(method=f"meta_{kind}", relevance=FeatureRelevance() if relevance else None)
        for retune in (True, False):
            run = lambda: boot(jax.random.key(2), sim.data, sim.test_features, W, config, chunk=a.chunk,
                               retune=retune).block_until_ready()
            t0 = time.perf_counter()
            run()
            first = time.perf_counter() - t0
            t0 = time.perf_counter()
            run()
            steady = time.perf_counter() - t0
            name = f"mrjax_{kind}" + ("_relevance" if relevance else "") + ("" if retune else "_fixed_tuning")
            rows[name] = {"replicates": a.replicates, "retune": retune, "first_call_s": first, "steady_s": steady,
                          "per_replicate_s": steady / a.replicates}
            print(f"{name}: {a.replicates} replicates, first call {first:.1f} s, steady {steady:.1f} s", flush=True)
    if a.econml_replicates:
        from econml.dr import DRLearner
        from econml.inference import BootstrapInference
        from sklearn.ensemble import RandomForestClassifier, RandomForestRegressor

        X, t, o = (np.asarray(v, np.float64) for v in (sim.data.features, sim.data.is_gold, sim.data.label))
        g = t == 1
        o = np.where(g, o, o * o[g].std() / o[~g].std())
        rf = lambda: RandomForestRegressor(n_estimators=100, max_depth=20, max_features="sqrt", n_jobs=1, random_state=42)
        clf = RandomForestClassifier(n_estimators=100, max_depth=20, max_features="sqrt", n_jobs=1, random_state=42)
        est = DRLearner(model_propensity=clf, model_regression=rf(), model_final=rf(), cv=5, min_propensity=0.05,
                        random_state=0)
        t0 = time.perf_counter()
        est.fit(o, t.astype(int), X=X,
                inference=BootstrapInference(n_bootstrap_samples=a.econml_replicates, n_jobs=os.cpu_count()))
        est.effect_interval(np.asarray(sim.test_features, np.float64), alpha=0.05)
        total = time.perf_counter() - t0
        # The point fit plus one refit per replicate.
        rows["econml_dr"] = {"replicates": a.econml_replicates, "total_s": total,
                             "per_replicate_s": total / (a.econml_replicates + 1)}
        print(f"EconML DRLearner: {a.econml_replicates} replicates + point fit in {total:.1f} s", flush=True)
    print("\n| pipeline | replicates | first call (s) | steady (s) | s / replicate | EconML ÷ this |")
    print("|---|---|---|---|---|---|")
    econ = rows.get("econml_dr", {}).get("per_replicate_s")
    for name, r in rows.items():
        ratio = f"{econ / r['per_replicate_s']:.0f}×" if econ and name != "econml_dr" else "-"
        first = f"{r['first_call_s']:.1f}" if "first_call_s" in r else "-"
        steady = f"{r['steady_s']:.1f}" if "steady_s" in r else f"{r['total_s']:.1f}"
        print(f"| {name} | {r['replicates']} | {first} | {steady} | {r['per_replicate_s']:.3f} | {ratio} |")
    os.makedirs(os.path.dirname(a.out) or ".", exist_ok=True)
    with open(a.out, "w") as f:
        json.dump({"benchmark": "bench_bootstrap", "meta": run_meta(), "config": vars(a), "results": rows}, f, indent=2)


if __name__ == "__main__":
    main()
