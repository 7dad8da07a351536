"""mrjax's regressors against scikit-learn's on the same rows: test RMSE (paired over seeds, with standard
errors) and steady-state fit time.

Tasks: Friedman #1–3 (``make_friedman1/2/3``, noise sd 1 / 125 / 0.1, n = 1k and 10k, RMSE against the
noise-free function on 2,000 test rows); the paper-like, selection-on-features and heteroscedastic
simulators' Golden-only (gold rows, gold labels) and All-Golden (every row with a gold label) regressions
at 100 and 1k gold rows (RMSE against the true ψ on 500 test queries); RouteLLM MMLU / GSM8K gold gains
(1,000 training prompts, 50 principal components of the MiniLM embeddings, RMSE against 2,000 held-out
prompts' gold gains; GSM8K's smaller pool: a third held out, the rest for training — label noise included, so only differences between learners mean anything).

Learners: mrjax ``rff`` (random-feature ridge, the default), ``relevance`` (ARD), ``gbt``, ``forest``,
``auto``; scikit-learn ``RandomForestRegressor`` with the Meta-Router authors' settings (100 trees, depth
20, ``max_features="sqrt"``) and ``HistGradientBoostingRegressor`` (defaults). Features are standardised
on the training rows for every learner (trees do not care). Each mrjax learner is compiled once per shape;
its time is the mean over the seeds after the first (steady state), the first seed's time less that is
reported as compile time.

    python benchmarks/bench_learners.py [--seeds 5] [--only friedman,sim,routellm] [--speed]
        [--data-dir ../shared/data/routellm-evals] [--out benchmarks/results/bench_learners.json] [--resume [--refresh gbt,auto]]

``--refresh`` re-runs the named learners on the tasks kept by ``--resume`` (after a change to them) and
keeps the other learners' per-seed results, so the paired ratios stay paired. ``--speed`` adds the boosted-tree fit on 10k gold + 390k preference rows (d = 50) of the paper-like
simulator (steady state). Needs the ``[bench]`` extra (scikit-learn).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
from _meta import run_meta, write_result  # noqa: E402

from mrjax.learners._auto import named

MRJAX = ("rff", "relevance", "gbt", "forest", "auto")
SKLEARN = ("sk_rf", "sk_hgb")


def _sk(name):
    from sklearn.ensemble import HistGradientBoostingRegressor, RandomForestRegressor

    if name == "sk_rf":
        return RandomForestRegressor(n_estimators=100, max_depth=20, max_features="sqrt", n_jobs=-1, random_state=0)
    return HistGradientBoostingRegressor(random_state=0)


def friedman_task(which, n, seed):
    from sklearn import datasets

    make = getattr(datasets, f"make_friedman{which}")
    noise = {1: 1.0, 2: 125.0, 3: 0.1}[which]
    X, y = make(n_samples=n, noise=noise, random_state=seed)
    Xt, ft = make(n_samples=2000, noise=0.0, random_state=10_000 + seed)
    return X, y, Xt, ft


def sim_task(kind, regression, n_gold, seed):
    from mrjax.data import heteroscedastic, paper_like, selection_on_features

    make = {"paper_like": paper_like, "selection": selection_on_features, "heteroscedastic": heteroscedastic}[kind]
    s = make(jax.random.key(seed), n_gold=n_gold, n_preference=3900)
    X = np.asarray(s.data.features, np.float64)
    if regression == "golden":
        g = np.asarray(s.data.is_gold) == 1
        X, y = X[g], np.asarray(s.data.label, np.float64)[g]
    else:  # all_golden: a gold label on every row
        y = np.asarray(s.gold_label, np.float64)
    return X, y, np.asarray(s.test_features, np.float64), np.asarray(s.test_truth.quality_gain, np.float64)


def routellm_split(pool, n_train):
    """(test rows, training rows): 2,000 and ``n_train`` prompts, or a third and the rest of a smaller pool."""
    N = pool.embedding.shape[0]
    n_test = min(2000, N // 3)
    return n_test, min(n_train, N - n_test)


def routellm_task(pool, n_train, seed):
    rng = np.random.default_rng(seed)
    perm = rng.permutation(pool.embedding.shape[0])
    n_test, n_train = routellm_split(pool, n_train)
    test, train = perm[:n_test], perm[n_test: n_test + n_train]
    E = pool.embedding.astype(np.float64)
    mean = E[train].mean(0)
    V = np.linalg.eigh(np.cov((E[train] - mean).T))[1][:, ::-1][:, :50]
    return (E[train] - mean) @ V, pool.gold_gain[train].astype(np.float64), (E[test] - mean) @ V, pool.gold_gain[test].astype(np.float64)


_FITS = {}


def _mrjax_fit_predict(name):
    """One jitted fit-and-predict per learner (compiled once per shape)."""
    if name not in _FITS:
        learner = named(name)

        def run(key, X, y, Xt):
            return learner.predict(learner.fit(key, X, y, jnp.ones_like(y)), Xt)

        _FITS[name] = jax.jit(run)
    return _FITS[name]


def run_task(label, make, seeds, learners, kept=None):
    """Every learner on ``make(seed)`` for each seed: RMSE per seed and seconds per fit. ``kept`` holds
    earlier per-seed results of some learners (same seeds), which are not run again."""
    kept = kept or {}
    out = {name: {"rmse": list(kept[name]["rmse"]), "seconds": list(kept[name]["seconds"])} if name in kept
           else {"rmse": [], "seconds": []} for name in learners}
    for seed in seeds:
        X, y, Xt, ft = make(seed)
        mu, sd = X.mean(0), X.std(0) + 1e-12
        Xs, Xts = (X - mu) / sd, (Xt - mu) / sd
        for name in learners:
            if name in kept:
                continue
            t0 = time.perf_counter()
            if name in SKLEARN:
                pred = _sk(name).fit(Xs, y).predict(Xts)
            else:
                pred = np.asarray(_mrjax_fit_predict(name)(jax.random.key(seed), jnp.asarray(Xs, jnp.float32),
                                                           jnp.asarray(y, jnp.float32), jnp.asarray(Xts, jnp.float32)))
            out[name]["seconds"].append(time.perf_counter() - t0)
            out[name]["rmse"].append(float(np.sqrt(np.mean((pred - ft) ** 2))))
    summary = {}
    present = [k for k in SKLEARN if k in out]  # the better of the scikit-learn regressors run
    best_sk = min(present, key=lambda k: np.mean(out[k]["rmse"])) if present else None
    for name, r in out.items():
        rm = np.asarray(r["rmse"])
        sec = np.asarray(r["seconds"])
        s = {"rmse": rm.tolist(), "mean": float(rm.mean()), "se": float(rm.std(ddof=1) / np.sqrt(len(rm))) if len(rm) > 1 else None,
             "seconds": sec.tolist(), "steady_s": float(sec[1:].mean() if len(sec) > 1 else sec[0])}
        if name not in SKLEARN:
            s["compile_s"] = float(sec[0] - s["steady_s"])
        if best_sk is not None:
            ratio = rm / np.asarray(out[best_sk]["rmse"])
            s["ratio_to_best_sklearn"] = float(ratio.mean())
            s["ratio_se"] = float(ratio.std(ddof=1) / np.sqrt(len(ratio))) if len(ratio) > 1 else None
        summary[name] = s
    row = {"task": label, "best_sklearn": best_sk, "learners": summary}
    best = min((n for n in summary if n not in SKLEARN), key=lambda n: summary[n]["mean"])
    row["best_mrjax"] = best
    print(f"{label:38s} " + " ".join(f"{n}={summary[n]['mean']:.3f}" for n in summary)
          + (f"  best mrjax {best} ×{summary[best]['ratio_to_best_sklearn']:.3f} of {best_sk}" if best_sk else ""), flush=True)
    return row


def speed(seeds):
    """Boosted-tree fit at 10k gold + 390k preference rows (the paper-like simulator, d = 50): the default
    (splits on windows of ``split_rows``) in steady state, and once with every row scoring every split;
    both scored on 20k held-out rows of the same mix."""
    import dataclasses

    from mrjax.data import paper_like

    s = paper_like(jax.random.key(0), n_gold=10_000, n_preference=390_000, n_test=10)
    X, y = s.data.features, s.data.label
    held = paper_like(jax.random.key(1), n_gold=500, n_preference=19_500, n_test=10).data  # the training mix
    Xh, yh = held.features, held.label
    learner = named("gbt")
    out = {"rows": int(X.shape[0]), "features": int(X.shape[1]), "split_rows": learner.split_rows}
    for name, g, runs in (("", learner, seeds), ("all_rows_", dataclasses.replace(learner, split_rows=None), seeds[:1])):
        fit = jax.jit(lambda k, X, y, w, g=g: g.fit(k, X, y, w))
        times = []
        for seed in [seeds[0], *runs] if name else runs:
            t0 = time.perf_counter()
            p = jax.block_until_ready(fit(jax.random.key(seed), X, y, jnp.ones_like(y)))
            times.append(time.perf_counter() - t0)
        out[name + "first_s"] = times[0]
        out[name + "steady_s"] = float(np.mean(times[1:]))
        out[name + "holdout_rmse"] = float(jnp.sqrt(jnp.mean((g.predict(p, Xh) - yh) ** 2)))
    print(f"gbt fit at {X.shape[0]:,} × {X.shape[1]}: first {out['first_s']:.1f} s, steady {out['steady_s']:.1f} s, "
          f"held-out RMSE {out['holdout_rmse']:.4f}; every row in every split: steady {out['all_rows_steady_s']:.1f} s, "
          f"RMSE {out['all_rows_holdout_rmse']:.4f}", flush=True)
    return out


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seeds", type=int, default=5)
    p.add_argument("--only", default="friedman,sim,routellm")
    p.add_argument("--learners", default=",".join(MRJAX + SKLEARN))
    p.add_argument("--speed", action="store_true")
    p.add_argument("--resume", action="store_true", help="keep the tasks already in --out (same seeds and learners)")
    p.add_argument("--refresh", default="", help="with --resume: run these learners again on the kept tasks, "
                   "keeping the others' per-seed results (paired ratios recomputed)")
    p.add_argument("--data-dir", default=os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data", "routellm-evals"))
    p.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "results", "bench_learners.json"))
    a = p.parse_args(argv)
    seeds = list(range(a.seeds))
    learners = tuple(a.learners.split(","))
    only = set(a.only.split(","))
    result = {"benchmark": "bench_learners", "meta": run_meta(), "config": {"seeds": a.seeds, "learners": learners}, "tasks": []}
    done = set()
    if a.resume and os.path.exists(a.out):  # keep the finished tasks of an interrupted run with the same settings
        with open(a.out) as f:
            old = json.load(f)
        if old["config"]["seeds"] == a.seeds and tuple(old["config"]["learners"]) == learners:
            result["tasks"] = old["tasks"]
            result["meta_resumed_from"] = old.get("meta_resumed_from", []) + [old["meta"]]
            done = {t["task"] for t in old["tasks"]}

    def save():
        write_result(a.out, result)

    refresh = set(filter(None, a.refresh.split(",")))

    def task(label, make):
        if label not in done:
            result["tasks"].append(run_task(label, make, seeds, learners))
            save()
        elif refresh:
            i = next(i for i, t in enumerate(result["tasks"]) if t["task"] == label)
            old = result["tasks"][i]["learners"]
            result["tasks"][i] = run_task(label, make, seeds, learners, {n: old[n] for n in learners if n not in refresh})
            result["tasks"][i]["refreshed"] = sorted(refresh)
            save()

    if "friedman" in only:
        for which in (1, 2, 3):
            for n in (1000, 10_000):
                task(f"Friedman #{which}, n = {n:,}", lambda s, w=which, n=n: friedman_task(w, n, s))
    if "sim" in only:
        for kind in ("paper_like", "selection", "heteroscedastic"):
            for regression in ("golden", "all_golden"):
                for n_gold in (100, 1000):
                    label = f"{kind} {regression.replace('_', '-')}, {n_gold:,} gold"
                    task(label, lambda s, k=kind, r=regression, g=n_gold: sim_task(k, r, g, s))
    if "routellm" in only:
        from mrjax.data import load_routellm

        for bench in ("mmlu", "gsm8k"):
            pool = load_routellm(a.data_dir, bench)
            n_test, n_train = routellm_split(pool, 1000)
            label = "RouteLLM MMLU gold gain, 1,000 prompts" if bench == "mmlu" else \
                f"RouteLLM {bench.upper()} gold gain, {n_train:,} prompts ({n_test:,} held out)"
            task(label, lambda s, pool=pool: routellm_task(pool, 1000, s))
    if a.speed:
        result["speed"] = speed(seeds[:3] if len(seeds) >= 3 else [0, 1])
        save()
    return result


if __name__ == "__main__":
    main()
