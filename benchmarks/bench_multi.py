"""Routing among nine models on real correctness with real prices (the nine-model set), paired across methods.

Each run draws a random test set (500 questions) and gold set from the 6,108 questions, the rest being
preference rows scored by a simulated judge that favours larger models (``data.load_llmrouter``, a new judge
seed per run); features are the top 50 principal components of the embeddings, fitted on the run's training
rows, on one common scale (``standardize="common"``, as mrjax's real-data studies: per-feature scaling would
give the trailing, mostly-noise components the weight of the leading ones); a question's cost for a model is its
price times the question's estimated tokens. Every method's
ψ̂_k (gain of model k over the cheapest, gemma-2-9b-it) routes the test questions by the same rule and
calibration (``MultiRouter.calibrate``: the weight that buys the most estimated quality within each budget,
found on the unlabelled test questions); scored by the test questions' true correctness. Budgets: ten mean
costs per question, evenly spaced from the cheapest model's cost to the dearest's. Peers: the authors'
random-forest pipeline per model (`_rf.py`: Golden-only and the DR Meta-Router by default, routed by the
same rule), and the best single model within each budget, chosen on the test labels (generous to it).

    python benchmarks/bench_multi.py --runs 20 --n-gold 500
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time

import jax.numpy as jnp
import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
from _meta import run_meta, write_result  # noqa: E402
from _paired import paired_differences  # noqa: E402
from _rf import rf_quality  # noqa: E402

METHODS = ("meta", "meta_dr", "golden", "preference", "pooled")
REFERENCE = "gemma-2-9b-it"


def _features(embedding, train, k=50):
    mu = embedding[train].mean(0)
    cov = np.cov((embedding[train] - mu).T)
    _, vecs = np.linalg.eigh(cov)
    return ((embedding - mu) @ vecs[:, ::-1][:, :k]).astype(np.float32)


def _routed_quality(score, cost, correct, budgets):
    """Mean true correctness of the models chosen at each budget's calibrated weight, and the mean cost spent."""
    import jax.numpy as jnp

    from mrjax.router import calibrate_multi_budget, evaluate_multi_routing, multi_breakpoints, route_multi

    bp = multi_breakpoints(jnp.asarray(score, jnp.float32), jnp.asarray(cost, jnp.float32))
    cal = calibrate_multi_budget(bp, jnp.asarray(budgets, jnp.float32))
    ev = evaluate_multi_routing(route_multi(bp, cal.cost_weight), jnp.asarray(correct, jnp.float32), bp.cost, budgets)
    return np.asarray(ev.quality), np.asarray(ev.cost)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    shared = os.environ.get("MRJAX_DATA") or os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data")
    p.add_argument("--data-dir", default=os.path.join(shared, "llmrouter-9models"))
    p.add_argument("--runs", type=int, default=20)
    p.add_argument("--n-gold", type=int, default=500)
    p.add_argument("--n-test", type=int, default=500)
    p.add_argument("--learner", default=None, help="mrjax's learner for every model (default: MetaRouter's)")
    p.add_argument("--cate", default=None,
                   help="the Meta-Routers' bias learner as KIND:LEARNER (e.g. t:forest: a T-learner of forests, "
                        "ψ̂ keeping --learner); default: each method's own")
    p.add_argument("--pair-with", default=None,
                   help="a previous bench_multi JSON on the same splits (gold rows, scaling; its first --runs runs): "
                        "its rows are paired with this run's Meta-Routers (named 'FILE:method')")
    p.add_argument("--standardize", default="common", choices=("common", "features"),
                   help="feature scaling: one common scale for principal components (mrjax's real-data default), "
                        "or per feature")
    p.add_argument("--methods", default=",".join(METHODS), help="mrjax methods (comma-separated)")
    p.add_argument("--rf", default="golden,meta_dr",
                   help="the authors' random-forest methods to run per model (comma-separated, '' for none)")
    p.add_argument("--confidence", default="", help="also route each Meta-Router by the uncertainty-aware rule at "
                   "these levels α (comma-separated): each gain at the ⌈α·B⌉-th largest of its bootstrap draws")
    p.add_argument("--replicates", type=int, default=100, help="bootstrap replicates for --confidence")
    p.add_argument("--out", default="benchmarks/results/bench_multi.json")
    args = p.parse_args(argv)

    from mrjax import MultiRouter
    from mrjax.cate import CATE_LEARNERS
    from mrjax.data import load_llmrouter
    from mrjax.learners import named
    from mrjax.router import kth_largest

    cate = None
    if args.cate:
        kind, _, name = args.cate.partition(":")
        cate = CATE_LEARNERS[kind](outcome=named(name)) if name else CATE_LEARNERS[kind]()

    base = load_llmrouter(args.data_dir, seed=0)
    K, N = len(base.models), base.embedding.shape[0]
    ref = base.models.index(REFERENCE)
    others = [k for k in range(K) if k != ref]
    cost_all = base.tokens[:, None] * base.price[None, :] / 1e3  # USD per 1,000 questions
    rf_methods = [m for m in args.rf.split(",") if m]
    methods = [m for m in args.methods.split(",") if m]
    levels = [float(a) for a in args.confidence.split(",") if a]
    cautious = [f"{m}@{a:g}" for m in methods if m in ("meta", "meta_dr") for a in levels]
    names = list(methods) + cautious + [f"rf:{m}" for m in rf_methods] + ["best single model", "oracle"]
    quality = {m: [] for m in names}
    seconds = {m: [] for m in methods}
    rf_seconds = {m: [] for m in rf_methods}
    budgets_all = []
    for r in range(args.runs):
        rng = np.random.default_rng(r)
        pool = load_llmrouter(args.data_dir, seed=1000 + r)
        perm = rng.permutation(N)
        test, gold, pref = perm[:args.n_test], perm[args.n_test:args.n_test + args.n_gold], perm[args.n_test + args.n_gold:]
        train = np.zeros(N, bool)
        train[perm[args.n_test:]] = True
        X = _features(pool.embedding, train)
        cost, correct = cost_all[test], pool.correct[test]
        mean_cost = cost.mean(0)
        budgets = np.linspace(mean_cost.min(), mean_cost.max(), 10)
        budgets_all.append(budgets)
        for m in methods:
            t0 = time.perf_counter()
            router = MultiRouter(reference=ref, method=m, learner=args.learner, seed=r, progress=False,
                                 cate=cate if m in ("meta", "meta_dr") else None,
                                 standardize="common" if args.standardize == "common" else True)
            router.fit(X[gold], pool.correct[gold], X[pref], pool.preference[pref])
            score = router.quality_gain(X[test])
            seconds[m].append(time.perf_counter() - t0)
            quality[m].append(_routed_quality(score, cost, correct, budgets)[0])
            if m in ("meta", "meta_dr") and levels:  # the same fit, routed on each gain's lower order statistic
                draws = jnp.asarray(router.draws(X[test], n_replicates=args.replicates))
                for a in levels:
                    quality[f"{m}@{a:g}"].append(_routed_quality(np.asarray(kth_largest(draws, a)), cost, correct,
                                                                 budgets)[0])
        fit_rows = np.concatenate([gold, pref])
        t = np.r_[np.ones(len(gold)), np.zeros(len(pref))]
        for m in rf_methods:  # the authors' pipeline on each model's gains, routed by the same rule
            t0 = time.perf_counter()
            score = np.zeros((len(test), K), np.float32)
            for k in others:
                o = np.r_[pool.correct[gold, k] - pool.correct[gold, ref], pool.preference[pref, k] - pool.preference[pref, ref]]
                score[:, k] = rf_quality(m, X[fit_rows], t, o, X[test])
            rf_seconds[m].append(time.perf_counter() - t0)
            quality[f"rf:{m}"].append(_routed_quality(score, cost, correct, budgets)[0])
        fixed = np.where(mean_cost[None, :] <= budgets[:, None] + 1e-12, correct.mean(0)[None, :], -np.inf).max(1)
        quality["best single model"].append(fixed)
        quality["oracle"].append(np.full(len(budgets), correct.max(1).mean()))
        print(f"run {r + 1}/{args.runs}: " + ", ".join(f"{m} {np.mean(quality[m][-1]):.3f}" for m in names), flush=True)

    Q = {m: np.stack(v) for m, v in quality.items()}  # (R, T)
    rows = {m: {"mean_quality": float(Q[m].mean()), "se": float(Q[m].mean(1).std(ddof=1) / np.sqrt(args.runs)),
                "by_budget": Q[m].mean(0).tolist(), "per_run": Q[m].mean(1).tolist()} for m in names}
    per_run = {m: Q[m].mean(1) for m in names}  # each run's quality averaged over the budgets
    pairs = [(a, b) for a in ("meta", "meta_dr") for b in names
             if a in Q and b != a and not (a == "meta_dr" and b == "meta") and b not in cautious]
    pairs += [(c, c.split("@")[0]) for c in cautious]  # the uncertainty-aware rule against its plug-in rule
    if args.pair_with:
        with open(args.pair_with) as f:
            other = json.load(f)
        same = all(other.get(k) == v for k, v in (("n_gold", args.n_gold), ("n_test", args.n_test),
                                                    ("standardize", args.standardize)))
        if not same or other["runs"] < args.runs:  # run r's split depends only on r: its first runs are ours
            raise SystemExit(f"--pair-with {args.pair_with}: not the same splits (n_gold, n_test, standardize, "
                             f"at least {args.runs} runs)")
        tag = os.path.basename(args.pair_with)
        theirs = [f"{tag}:{b}" for b in other["rows"] if b not in ("best single model", "oracle")]
        per_run.update({f"{tag}:{b}": np.asarray(row["per_run"][:args.runs]) for b, row in other["rows"].items()})
        pairs += [(a, b) for a in ("meta", "meta_dr") if a in Q for b in theirs]
    paired = paired_differences(per_run, pairs)
    result = {
        "benchmark": "bench_multi", "meta": run_meta(), "runs": args.runs, "learner": args.learner, "cate": args.cate,
        "pair_with": os.path.basename(args.pair_with) if args.pair_with else None,
        "standardize": args.standardize, "confidence": levels, "replicates": args.replicates if levels else None,
        "n_gold": args.n_gold, "n_test": args.n_test,
        "n_preference": N - args.n_test - args.n_gold, "models": list(base.models), "reference": REFERENCE,
        "budgets_mean": np.mean(budgets_all, 0).tolist(), "rows": rows, "paired": paired,
        "seconds_per_run": {m: float(np.median(v[1:] if len(v) > 1 else v)) for m, v in seconds.items()},
        "seconds_first_run": {m: float(v[0]) for m, v in seconds.items()},
        "rf_seconds_per_run": {m: float(np.median(v)) for m, v in rf_seconds.items()},
    }
    write_result(args.out, result)
    print(f"{'method':<20} mean quality over budgets")
    for m in names:
        print(f"{m:<20} {rows[m]['mean_quality']:.4f} ± {rows[m]['se']:.4f}")
    for k, v in paired.items():
        print(f"{k:<28} {v['mean']:+.4f} ± {v['se']:.4f}")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
