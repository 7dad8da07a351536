"""Coverage study: do mrjax's nominal 90% / 95% intervals cover the truth?

On the paper-like simulator (known ψ), for each of ``--datasets`` independent datasets
(100 gold + 3,900 preference rows, 500 test queries by default) and each uncertainty
method — the batched bootstrap of the default Meta-Router with ``multinomial``,
``dirichlet`` and ``poisson`` weights (percentile, basic and normal intervals), and the
Bayesian Meta-Router's posterior (``nuts``, ``svi``; central credible intervals) — record

* pointwise coverage of ψ(x) at the test queries and the mean interval width;
* coverage of the plug-in policy's value ``V(w) = mean_q (ψ(q) − w)·1[ψ̂(q) > w]`` at the
  cost weights ``--cost-weights`` (one Bernoulli per dataset and weight);
* the true value and usage of the plug-in rule beside the uncertainty-aware rule
  ``P(ψ(q) > w) ≥ α`` (α = 0.9) from the same draws;
* ``gold_corrected``: the policy value from ``inference.gold_corrected_value`` (plug-in plus
  a cross-fitted gold-residual correction, normal interval) — policy value only.

Error bars: the policy-value coverage is a binomial proportion over datasets,
``se = √(p(1 − p)/N)``; the pointwise ψ coverage is averaged per dataset first and its se
is the standard deviation of those averages over √N (test points within a dataset are
correlated). Results stream to JSON after every dataset, so a partial run is usable.

    python benchmarks/bench_coverage.py [--datasets 200] [--replicates 100]
        [--methods multinomial,dirichlet,poisson,svi,nuts] [--out benchmarks/results/coverage.json]
"""
from __future__ import annotations

import argparse
import os
import time

import jax
import jax.numpy as jnp
import numpy as np

import sys

sys.path.insert(0, os.path.dirname(__file__))
from _meta import run_meta, write_result  # noqa: E402

from mrjax.bayes import BayesConfig, fit_bayes, posterior_predict
from mrjax.data import paper_like
from mrjax.inference import (
    bootstrap_predict, bootstrap_weights, gold_corrected_value, interval, policy_value, route_with_uncertainty,
)
from mrjax.learners import FeatureRelevance
from mrjax.router import RouterConfig, fit_router, predict_quality

LEVELS = (0.90, 0.95)
BOOT_KINDS = ("multinomial", "dirichlet", "poisson")
INTERVALS = ("percentile", "basic", "normal")


def _kinds(m):
    return INTERVALS if m in BOOT_KINDS else ("normal",) if m == "gold_corrected" else ("percentile",)


def _summarize(records, methods, weights):
    out = {}
    for m in methods:
        rows = [r[m] for r in records if m in r]
        if not rows:
            continue
        N = len(rows)
        entry = {"datasets": N}
        for kind in _kinds(m):
            for lvl in LEVELS:
                tag = f"{kind}_{int(lvl * 100)}"
                psi = np.array([r["psi_cover"].get(tag, np.nan) for r in rows])
                val = np.array([r["value_cover"][tag] for r in rows])  # (N, W)
                p = val.mean(0)
                entry[tag] = {
                    "psi_coverage": float(psi.mean()), "psi_se": float(psi.std(ddof=1) / np.sqrt(N)) if N > 1 else None,
                    "psi_width": float(np.mean([r["psi_width"].get(tag, np.nan) for r in rows])),
                    "value_coverage": p.tolist(), "value_se": np.sqrt(p * (1 - p) / N).tolist(),
                    "value_width": np.mean([r["value_width"][tag] for r in rows], axis=0).tolist(),
                }
        if m == "gold_corrected":
            entry["seconds_per_dataset"] = float(np.mean([r["seconds"] for r in rows]))
            out[m] = entry
            continue
        entry["routing"] = {
            "cost_weights": list(weights),
            "plugin_value": np.mean([r["plugin_value"] for r in rows], 0).tolist(),
            "plugin_usage": np.mean([r["plugin_usage"] for r in rows], 0).tolist(),
            "aware_value": np.mean([r["aware_value"] for r in rows], 0).tolist(),
            "aware_usage": np.mean([r["aware_usage"] for r in rows], 0).tolist(),
        }
        entry["seconds_per_dataset"] = float(np.mean([r["seconds"] for r in rows]))
        out[m] = entry
    return out


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--datasets", type=int, default=200)
    p.add_argument("--replicates", type=int, default=100, help="bootstrap replicates (and posterior draws)")
    p.add_argument("--methods", default="multinomial,dirichlet,poisson,svi,nuts,gold_corrected")
    p.add_argument("--cost-weights", default="0,0.25,0.5")
    p.add_argument("--n-gold", type=int, default=100)
    p.add_argument("--n-preference", type=int, default=3900)
    p.add_argument("--alpha", type=float, default=0.9)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--relevance", action=argparse.BooleanOptionalAction, default=True,
                   help="the default Meta-Router's feature relevance (on, as in MetaRouter); the bootstrap "
                        "re-learns it in every replicate")
    p.add_argument("--out", default="benchmarks/results/coverage.json")
    a = p.parse_args(argv)
    methods = a.methods.split(",")
    weights = tuple(float(w) for w in a.cost_weights.split(","))
    W = jnp.asarray(weights, jnp.float32)
    config = RouterConfig(relevance=FeatureRelevance() if a.relevance else None)
    fit_jit = jax.jit(lambda k, d, X: predict_quality(config, fit_router(k, d, config)[0], X))
    boot_jit = jax.jit(bootstrap_predict, static_argnames=("config", "target", "chunk"))
    gc_jit = jax.jit(gold_corrected_value, static_argnames=("config", "level", "n_folds"))  # level 0.95; 90% from se
    bayes = {m: BayesConfig(inference=m, num_samples=max(a.replicates, 200)) for m in methods if m in ("nuts", "svi")}
    records = []
    meta = run_meta()
    os.makedirs(os.path.dirname(a.out) or ".", exist_ok=True)
    t_start = time.perf_counter()
    for i in range(a.datasets):
        k = jax.random.fold_in(jax.random.key(a.seed), i)
        k_sim, k_fit, k_boot = jax.random.split(k, 3)
        sim = paper_like(k_sim, n_gold=a.n_gold, n_preference=a.n_preference)
        psi = np.asarray(sim.test_truth.quality_gain)
        rec = {}
        point_fit = None  # the bootstrap methods' point ψ̂, fitted once per dataset
        for m in methods:
            t0 = time.perf_counter()
            if m == "gold_corrected":
                v = gc_jit(k_fit, sim.data, sim.test_features, W, config)
                # The policy it corrects is fitted with the first half of its key.
                v_true = np.asarray(policy_value(jnp.asarray(psi), fit_jit(jax.random.split(k_fit)[0], sim.data,
                                                                           sim.test_features), W))
                r = {"psi_cover": {}, "psi_width": {}, "value_cover": {}, "value_width": {}}
                for lvl in LEVELS:
                    z = float(jax.scipy.stats.norm.ppf(0.5 + lvl / 2))
                    lo, hi = (np.asarray(v.estimate + s * z * v.se) for s in (-1, 1))
                    r["value_cover"][f"normal_{int(lvl * 100)}"] = ((v_true >= lo) & (v_true <= hi)).astype(float).tolist()
                    r["value_width"][f"normal_{int(lvl * 100)}"] = (hi - lo).tolist()
                r["seconds"] = time.perf_counter() - t0
                rec[m] = r
                continue
            if m in BOOT_KINDS:
                point_fit = fit_jit(k_fit, sim.data, sim.test_features) if point_fit is None else point_fit
                point = point_fit
                Wb = bootstrap_weights(jax.random.fold_in(k_boot, BOOT_KINDS.index(m)), sim.data.is_gold, a.replicates, m)
                draws = boot_jit(k_fit, sim.data, sim.test_features, Wb, config)
                kinds = INTERVALS
            else:
                fit, _ = fit_bayes(k_fit, sim.data, bayes[m])
                draws = posterior_predict(bayes[m], fit, sim.test_features)
                point = jnp.mean(draws, axis=0)
                kinds = ("percentile",)
            draws.block_until_ready()
            seconds = time.perf_counter() - t0
            v_true = np.asarray(policy_value(jnp.asarray(psi), point, W))
            v_draws, v_point = policy_value(draws, point, W), policy_value(point, point, W)
            r = {"psi_cover": {}, "psi_width": {}, "value_cover": {}, "value_width": {}, "seconds": seconds}
            for kind in kinds:
                for lvl in LEVELS:
                    tag = f"{kind}_{int(lvl * 100)}"
                    lo, hi = (np.asarray(x) for x in interval(draws, point, lvl, kind))
                    r["psi_cover"][tag] = float(np.mean((psi >= lo) & (psi <= hi)))
                    r["psi_width"][tag] = float(np.mean(hi - lo))
                    vlo, vhi = (np.asarray(x) for x in interval(v_draws, v_point, lvl, kind))
                    r["value_cover"][tag] = ((v_true >= vlo) & (v_true <= vhi)).astype(float).tolist()
                    r["value_width"][tag] = (vhi - vlo).tolist()
            aware = np.asarray(route_with_uncertainty(draws, W, alpha=a.alpha))  # (W, n)
            plug = np.asarray(point)[None, :] > np.asarray(W)[:, None]
            r["plugin_value"] = np.mean(np.where(plug, psi[None] - np.asarray(W)[:, None], 0), 1).tolist()
            r["plugin_usage"] = plug.mean(1).tolist()
            r["aware_value"] = np.mean(np.where(aware, psi[None] - np.asarray(W)[:, None], 0), 1).tolist()
            r["aware_usage"] = aware.mean(1).tolist()
            rec[m] = r
        records.append(rec)
        summary = _summarize(records, methods, weights)
        write_result(a.out, {"benchmark": "bench_coverage", "meta": meta, "config": vars(a), "datasets_done": i + 1,
                             "elapsed_s": time.perf_counter() - t_start, "summary": summary}, indent=1)
        print(f"dataset {i + 1}/{a.datasets}  {time.perf_counter() - t_start:.0f} s", flush=True)

    print(f"\nCoverage over {len(records)} datasets (nominal level in the column name); "
          f"policy value at w = {list(weights)}")
    print("| method | interval | ψ(x) coverage ± se | ψ width | V(w) coverage (each w) ± se | V(w) width |")
    print("|---|---|---|---|---|---|")
    for m, e in summary.items():
        for kind in _kinds(m):
            for lvl in LEVELS:
                s = e[f"{kind}_{int(lvl * 100)}"]
                val = ", ".join(f"{c:.3f}±{se:.3f}" for c, se in zip(s["value_coverage"], s["value_se"]))
                psi = "-" if m == "gold_corrected" else (
                    f"{s['psi_coverage']:.3f}±{s['psi_se']:.3f}" if s["psi_se"] is not None else f"{s['psi_coverage']:.3f}")
                width = "-" if m == "gold_corrected" else f"{s['psi_width']:.3f}"
                vw = ", ".join(f"{x:.3f}" for x in s["value_width"])
                print(f"| {m} | {kind} {int(lvl * 100)}% | {psi} | {width} | {val} | {vw} |")
    print("\nRouting (true value per query / usage), plug-in vs P(ψ > w) ≥ α:")
    for m, e in summary.items():
        if "routing" not in e:
            continue
        rt = e["routing"]
        pairs = "; ".join(f"w={w}: {pv:.3f}/{pu:.2f} vs {av:.3f}/{au:.2f}" for w, pv, pu, av, au in
                          zip(rt["cost_weights"], rt["plugin_value"], rt["plugin_usage"], rt["aware_value"], rt["aware_usage"]))
        print(f"  {m}: {pairs}  ({e['seconds_per_dataset']:.1f} s/dataset)")


if __name__ == "__main__":
    main()
