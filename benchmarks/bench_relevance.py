"""The feature relevance on and off, on identical runs of every simulator and both RouteLLM data sets.

For each task the default study runs twice with the same key (so the same splits, data and random
router): ``StudyConfig(relevance=True)`` and ``relevance=False`` (the default). Reports each
method's oracle-normalised area and ψ̂ RMSE both ways, and the paired per-run differences (on − off)
in raw area (as `bench_peers`) and in ψ̂ RMSE, ± se over runs; and each study's seconds with compilation.
With ``--against search_features=32,batch_rows=256`` the "off" arm is instead the relevance with those
settings (``StudyConfig(relevance=FeatureRelevance(...))``): the default relevance against a variant.

    python benchmarks/bench_relevance.py [--runs 200] [--real-runs 100] [--only paper-like,routellm-mmlu]
        [--against KEY=VALUE,...] [--data-dir ../shared/data/routellm-evals]
        [--out benchmarks/results/bench_relevance.json]
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys

import jax
import jax.numpy as jnp
import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
from _meta import run_meta  # noqa: E402
from _paired import per_run_area  # noqa: E402

from mrjax.data import SimulationConfig, load_routellm
from mrjax.learners import FeatureRelevance
from mrjax.router import summarize_gain
from mrjax.sim import StudyConfig, run_study

SIMULATORS = {"paper-like": SimulationConfig(), "selection": SimulationConfig(overlap=1.0),
              "heteroscedastic": SimulationConfig(heteroscedastic=True)}
TASKS = [*((name, gold) for name in SIMULATORS for gold in (100, 1000)), ("routellm-mmlu", 100), ("routellm-gsm8k", 100)]


def _task(name, n_gold, runs, data_dir, against=False):
    pool = None
    if name in SIMULATORS:
        config = StudyConfig(n_runs=runs, n_gold=n_gold, simulation=SIMULATORS[name])
    else:
        p = load_routellm(data_dir, name.split("-", 1)[1])
        config = StudyConfig(n_runs=runs, n_gold=n_gold, standardize="common",
                             n_preference=p.embedding.shape[0] - StudyConfig().n_test - n_gold)
        pool = tuple(jnp.asarray(a) for a in (p.embedding, p.gold_gain, p.preference_label))
    out = {}
    for arm, relevance in ((True, True), (False, against)):
        res = run_study(jax.random.key(0), dataclasses.replace(config, relevance=relevance), pool=pool, progress=False)
        s = summarize_gain(res.efficiency, res.random, res.oracle, normalize="oracle")
        out[arm] = (res, s, per_run_area(res.efficiency, res.random))
    (on, s_on, a_on), (off, s_off, a_off) = out[True], out[False]
    rows = {}
    for m, method in enumerate(on.methods):
        da, dr = a_on[:, m] - a_off[:, m], on.rmse[:, m] - off.rmse[:, m]
        rows[method] = {
            "area_on": float(s_on.area[m]), "area_off": float(s_off.area[m]),
            "rmse_on": float(on.rmse[:, m].mean()), "rmse_off": float(off.rmse[:, m].mean()),
            "area_diff": float(np.nanmean(da)), "area_diff_se": float(np.nanstd(da, ddof=1) / np.sqrt(np.isfinite(da).sum())),
            "rmse_diff": float(dr.mean()), "rmse_diff_se": float(dr.std(ddof=1) / np.sqrt(len(dr))),
        }
    return {"task": name, "n_gold": n_gold, "runs": runs, "seconds_on": on.seconds, "seconds_off": off.seconds,
            "against": repr(against), "rows": rows}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--runs", type=int, default=200, help="runs per simulator task")
    p.add_argument("--real-runs", type=int, default=100, help="runs per RouteLLM task")
    p.add_argument("--only", default="", help="comma-separated task names (default: all)")
    p.add_argument("--against", default="", help="KEY=VALUE,... of a FeatureRelevance to compare the default "
                   "relevance with (default: no relevance)")
    p.add_argument("--data-dir", default="../shared/data/routellm-evals")
    p.add_argument("--out", default="benchmarks/results/bench_relevance.json")
    args = p.parse_args(argv)
    only = {t for t in args.only.split(",") if t}
    against = False
    if args.against:
        settings = dict(kv.split("=", 1) for kv in args.against.split(","))
        parse = lambda k, v: v in ("True", "true", "1") if isinstance(getattr(FeatureRelevance(), k), bool) \
            else type(getattr(FeatureRelevance(), k))(v)  # noqa: E731
        against = FeatureRelevance(**{k: parse(k, v) for k, v in settings.items()})
    tasks = []
    for name, gold in TASKS:
        if only and name not in only:
            continue
        runs = args.runs if name in SIMULATORS else args.real_runs
        t = _task(name, gold, runs, args.data_dir, against)
        tasks.append(t)
        print(f"\n{name}, {gold} gold, {runs} runs: {t['seconds_on']:.0f} s with relevance, {t['seconds_off']:.0f} s against {t['against']}")
        print("| method | area on | area off | Δ raw area | ψ̂ RMSE on | off | Δ RMSE |")
        for m, r in t["rows"].items():
            print(f"| {m} | {r['area_on']:.3f} | {r['area_off']:.3f} | {r['area_diff']:+.2f} ± {r['area_diff_se']:.2f} | "
                  f"{r['rmse_on']:.3f} | {r['rmse_off']:.3f} | {r['rmse_diff']:+.3f} ± {r['rmse_diff_se']:.3f} |", flush=True)
    os.makedirs(os.path.dirname(args.out) or ".", exist_ok=True)
    with open(args.out, "w") as f:
        json.dump({"benchmark": "bench_relevance", "meta": run_meta(), "tasks": tasks}, f, indent=2)


if __name__ == "__main__":
    main()
