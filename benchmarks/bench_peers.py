"""Peer comparison on identical Monte-Carlo runs: mrjax vs the authors' RF pipeline (and EconML).

Each run's data is drawn by mrjax's simulator from the run key, so every pipeline sees the
same splits, and every curve uses the same random router. Reports per method: wall time,
efficiency-gain area and peak (oracle-normalised), ψ̂ RMSE; and the ratio of wall times.

    python benchmarks/bench_peers.py [--runs 10] [--econml] [--out benchmarks/results/bench_peers.json]
    python benchmarks/bench_peers.py --data routellm-mmlu --data-dir ../shared/data/routellm-evals

``--peer-cache FILE.npz`` keeps every peer's per-run ψ̂ and seconds (run r is ``fold_in(key, r)``,
so a run does not depend on how many are asked for): an interrupted comparison resumes, and a
changed mrjax is scored against the same peer predictions without refitting the forests.

Needs the ``[bench]`` extra (scikit-learn; econml for ``--econml``).
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
from _meta import run_meta  # noqa: E402
from _paired import common_support_differences, paired_differences, per_run_area, stop_usage  # noqa: E402
from _rf import econml_quality, rf_quality  # noqa: E402

from mrjax.data import load_routellm, simulate
from mrjax.router import USAGE_GRID, run_curves, summarize_gain
from mrjax.sim import StudyConfig, pool_run, run_keys, run_study
from mrjax.sim._study import _compiled


def simulator_split(k, config):
    """The data ``one_run`` sees for run key ``k``, as NumPy."""
    k_sim, _, k_rand = jax.random.split(k, 3)
    sim = simulate(k_sim, config.n_gold, config.n_preference, config.n_test, config.simulation)
    X, t, o = (np.asarray(a, np.float64) for a in (sim.data.features, sim.data.is_gold, sim.data.label))
    return X, t, o, np.asarray(sim.test_features, np.float64), np.asarray(sim.test_truth.quality_gain), np.asarray(sim.gold_label, np.float64), k_rand


def pool_split(k, pool, config):
    """The split and per-run PCA ``pool_run`` uses for run key ``k``, as NumPy (training rows only)."""
    k_split, _, k_rand = jax.random.split(k, 3)
    perm = np.asarray(jax.random.permutation(k_split, pool.embedding.shape[0]))
    test, gold, pref = perm[: config.n_test], perm[config.n_test: config.n_test + config.n_gold], perm[config.n_test + config.n_gold:]
    train = np.r_[gold, pref]
    E = pool.embedding.astype(np.float64)
    mean = E[train].mean(0)
    cov = (E[train] - mean).T @ (E[train] - mean) / len(train)
    V = np.linalg.eigh(cov)[1][:, ::-1][:, : config.n_components]
    X, Xt = (E[train] - mean) @ V, (E[test] - mean) @ V
    t = np.r_[np.ones(len(gold)), np.zeros(len(pref))]
    o = np.r_[pool.gold_gain[gold], pool.preference_label[pref]].astype(np.float64)
    return X, t, o, Xt, pool.gold_gain[test], pool.gold_gain[train].astype(np.float64), k_rand

RF_METHODS = ("meta_r", "meta_dr", "golden", "preference", "pooled", "all_golden")


def _load_cache(path, data) -> dict:
    """``{(peer, run): (ψ̂, seconds)}`` from ``path`` (empty when absent); refuses another data source's."""
    if path is None or not os.path.exists(path):
        return {}
    with np.load(path) as z:
        if str(z["data"]) != data:
            raise SystemExit(f"--peer-cache {path} holds {z['data']} runs, not {data}")
        return {(str(n), int(r)): (z[f"psi/{n}/{r}"], float(s)) for n, r, s in zip(z["names"], z["runs"], z["seconds"])}


def _save_cache(path, data, cache) -> None:
    """Writes ``cache`` to ``path`` whole, by rename, so an interruption never leaves half a file."""
    if path is None:
        return
    keys = sorted(cache)
    arrays = {f"psi/{n}/{r}": cache[n, r][0] for n, r in keys}
    tmp = f"{path}.tmp.npz"
    np.savez(tmp, data=np.asarray(data), names=np.asarray([n for n, _ in keys]), runs=np.asarray([r for _, r in keys]),
             seconds=np.asarray([cache[k][1] for k in keys]), **arrays)
    os.replace(tmp, path)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--runs", type=int, default=10)
    p.add_argument("--econml", action="store_true")
    p.add_argument("--data", default="simulator", choices=["simulator", "routellm-mmlu", "routellm-gsm8k"])
    p.add_argument("--data-dir", default=None)
    p.add_argument("--out", default="benchmarks/results/bench_peers.json")
    p.add_argument("--rf-methods", default=",".join(RF_METHODS),
                   help=f"comma-separated subset of {','.join(RF_METHODS)}")
    p.add_argument("--peer-cache", default=None, help="NPZ of per-run peer ψ̂ and seconds, read and extended")
    p.add_argument("--learner", default="rff", help="StudyConfig.learner: the regressor of every mrjax model")
    p.add_argument("--n-gold", type=int, default=StudyConfig().n_gold)
    p.add_argument("--relevance", action=argparse.BooleanOptionalAction, default=StudyConfig().relevance,
                   help="StudyConfig.relevance: the feature relevance (on by default)")
    p.add_argument("--study-runs", type=int, default=200,
                   help="also time mrjax's whole study of this many runs (fresh compile; 0: skip) against "
                        "the RF pipeline's measured per-run time times this many runs")
    args = p.parse_args(argv)
    rf_methods = [m for m in args.rf_methods.split(",") if m]
    if unknown := sorted(set(rf_methods) - set(RF_METHODS)):
        p.error(f"--rf-methods: unknown {unknown}; choose from {list(RF_METHODS)}")
    key = jax.random.key(0)
    config = StudyConfig(n_runs=args.runs, batch_size=min(args.runs, 50), learner=args.learner, n_gold=args.n_gold,
                         relevance=args.relevance)
    run_fn, pool = None, None
    if args.data != "simulator":
        pool = load_routellm(args.data_dir, args.data.split("-", 1)[1])
        # As `mrjax study --data routellm-…`: principal components keep their relative scales.
        config = dataclasses.replace(
            config, n_preference=pool.embedding.shape[0] - config.n_test - config.n_gold, standardize="common"
        )
        E, GL, PL = (jnp.asarray(a) for a in (pool.embedding, pool.gold_gain, pool.preference_label))
        run_fn = lambda k: pool_run(k, E, GL, PL, config)  # noqa: E731

    res = run_study(key, config, run_fn=run_fn, progress=False)
    rows = {}
    s = summarize_gain(res.efficiency, res.random, res.oracle, normalize="oracle")
    stops = stop_usage(res.efficiency, res.random, res.grid)
    for m, name in enumerate(res.methods):
        rows[f"mrjax:{name}"] = {"area": s.area[m], "peak": s.peak[m], "rmse": res.rmse[:, m].mean(),
                                 "stop": np.nanmean(stops[:, m])}
    mrjax_total = res.seconds
    # Steady state: the same study again, compiled.
    res2 = run_study(key, config, run_fn=run_fn, progress=False)
    mrjax_steady = res2.seconds

    peers = [f"rf:{m}" for m in rf_methods] + (["econml:econml_dr", "econml:econml_dml"] if args.econml else [])
    eff = {p_: [] for p_ in peers}
    rmse = {p_: [] for p_ in peers}
    seconds = {p_: 0.0 for p_ in peers}
    rnd, orc = [], []
    tag = args.data if args.n_gold == StudyConfig().n_gold else f"{args.data}:gold{args.n_gold}"  # what the cache holds
    cache = _load_cache(args.peer_cache, tag)
    for r, k in enumerate(run_keys(key, args.runs)):
        X, t, o, Xt, truth, gold_label, k_rand = simulator_split(k, config) if pool is None else pool_split(k, pool, config)
        cached = len(cache)
        for name in peers:
            kind, method = name.split(":")
            if (name, r) in cache:
                psi, secs = cache[name, r]
            else:
                t0 = time.perf_counter()
                if kind == "rf":
                    psi = rf_quality(method, X, t, o, Xt, gold_label)
                else:
                    psi = econml_quality(method, X, t, o, Xt)
                secs = time.perf_counter() - t0
                cache[name, r] = (np.asarray(psi, np.float64), secs)
            seconds[name] += secs
            c = run_curves(k_rand, jnp.asarray(psi, jnp.float32)[None], jnp.asarray(truth), jnp.asarray(USAGE_GRID, jnp.float32))
            eff[name].append(np.asarray(c.efficiency[0]))
            rmse[name].append(float(np.sqrt(np.mean((psi - truth) ** 2))))
        c = run_curves(k_rand, jnp.zeros((1, config.n_test)), jnp.asarray(truth), jnp.asarray(USAGE_GRID, jnp.float32))
        rnd.append(np.asarray(c.random)); orc.append(float(c.oracle))
        if len(cache) > cached:  # this run fitted something new
            _save_cache(args.peer_cache, tag, cache)
        print(f"\rrun {r + 1}/{args.runs}", end="", file=sys.stderr, flush=True)
    print(file=sys.stderr)
    np.testing.assert_allclose(np.stack(rnd), res.random, atol=1e-3)  # same runs (to float32 fusion noise), same random router
    E = np.stack([np.stack(eff[p_]) for p_ in peers], axis=1)
    sp = summarize_gain(E, np.stack(rnd), np.asarray(orc), normalize="oracle")
    peer_stops = stop_usage(E, np.stack(rnd), res.grid)
    for i, name in enumerate(peers):
        rows[name] = {"area": sp.area[i], "peak": sp.peak[i], "rmse": float(np.mean(rmse[name])),
                      "stop": np.nanmean(peer_stops[:, i]), "seconds": seconds[name]}
    # Paired per-run differences in raw efficiency-gain area (± standard error over runs):
    # the comparisons the accuracy targets ask for, on identical runs.
    area = dict(zip([f"mrjax:{m}" for m in res.methods], per_run_area(res.efficiency, res.random).T))
    area.update(zip(peers, per_run_area(E, np.stack(rnd)).T))
    refs = [p_ for p_ in ("mrjax:pooled", "mrjax:golden", "rf:golden", "rf:meta_r", "rf:meta_dr") if p_ in area]
    pairs = [(f"mrjax:{m}", b) for m in res.methods if m.startswith("meta") for b in refs]
    # The ceiling: what gold labels on every training row (infeasible) add over the gold rows alone.
    pairs += [("mrjax:all_golden", b) for b in ("mrjax:golden", "rf:golden") if "mrjax:all_golden" in area and b in area]
    paired = paired_differences(area, pairs)
    # The same pairs with both curves cut at the earlier stop: the ranking alone, without the area a curve
    # earns by running longer (see _paired.common_support_differences).
    gain = dict(zip([f"mrjax:{m}" for m in res.methods], np.moveaxis(res.efficiency - res.random[:, None, :], 1, 0)))
    gain.update(zip(peers, np.moveaxis(E - np.stack(rnd)[:, None, :], 1, 0)))
    common = common_support_differences(gain, pairs, res.grid)
    rf_total = sum(v for k_, v in seconds.items() if k_.startswith("rf:"))
    study_seconds = study_steady = None
    if args.study_runs:
        # The whole study as a user runs it, compiled afresh (the cached program is dropped:
        # with --runs equal to --study-runs the configurations coincide), then again compiled.
        big = dataclasses.replace(config, n_runs=args.study_runs, batch_size=StudyConfig().batch_size)
        _compiled.cache_clear()
        big_fn = None if pool is None else (lambda k: pool_run(k, E, GL, PL, big))
        study_seconds = run_study(jax.random.key(1), big, run_fn=big_fn, progress=False).seconds
        study_steady = run_study(jax.random.key(1), big, run_fn=big_fn, progress=False).seconds
    rf_study = rf_total / args.runs * args.study_runs
    summary = {"benchmark": "bench_peers", "meta": run_meta(), "data": args.data, "runs": args.runs,
               "learner": args.learner, "relevance": args.relevance, "n_gold": args.n_gold, "mrjax_seconds_incl_compile": mrjax_total,
               "mrjax_seconds_steady": mrjax_steady, "mrjax_methods": list(res.methods),
               "rf_seconds_total": rf_total, "speedup_incl_compile": rf_total / mrjax_total,
               "speedup_steady": rf_total / mrjax_steady,
               "study_runs": args.study_runs, "mrjax_study_seconds": study_seconds,
               "mrjax_study_seconds_steady": study_steady, "rf_study_seconds_extrapolated": rf_study,
               "speedup_study": None if study_seconds is None else rf_study / study_seconds,
               "speedup_study_steady": None if study_steady is None else rf_study / study_steady,
               "rows": {k_: {kk: float(vv) for kk, vv in v.items()} for k_, v in rows.items()},
               "paired_raw_area": paired, "paired_raw_area_common_support": common}
    os.makedirs(os.path.dirname(args.out) or ".", exist_ok=True)
    with open(args.out, "w") as f:
        json.dump(summary, f, indent=2)
    print(f"{args.runs} identical runs of {args.data} on {summary['meta']['device']}")
    print(f"mrjax, all {len(res.methods)} methods: {mrjax_total:.1f}s incl. compile, {mrjax_steady:.1f}s steady")
    print(f"RF pipeline, {len(rf_methods)} methods: {rf_total:.1f}s  -> {summary['speedup_incl_compile']:.0f}x (incl. compile), {summary['speedup_steady']:.0f}x (steady)")
    if study_seconds is not None:
        print(f"whole study of {args.study_runs} runs: mrjax {study_seconds:.1f}s incl. compile, {study_steady:.1f}s "
              f"steady vs RF {rf_study:.0f}s ({rf_total / args.runs:.2f}s/run x {args.study_runs}) "
              f"-> {summary['speedup_study']:.0f}x (incl. compile), {summary['speedup_study_steady']:.0f}x (steady)")
    print("\n| method | area | peak | ψ̂ RMSE | stop | seconds |\n|---|---|---|---|---|---|")
    for name, v in rows.items():
        secs = f"{v['seconds']:.1f}" if "seconds" in v else "(shared)"
        print(f"| {name} | {v['area']:.3f} | {v['peak']:.3f} | {v['rmse']:.3f} | {v['stop']:.3f} | {secs} |")
    print("\npaired per-run raw-area differences (mean ± se over runs; common support: both cut at the earlier stop):")
    for name, v in paired.items():
        c = common[name]
        print(f"  {name}: {v['mean']:+.2f} ± {v['se']:.2f}   common support {c['mean']:+.2f} ± {c['se']:.2f}")


if __name__ == "__main__":
    main()
