"""Curves over cost weights: the sorted-breakpoint engine against brute force, side by side.

Brute force is what mrjax did before the engine (and what ``route(psi, w).mean(axis=1)``
does): a ``(W, n)`` decision matrix per draw. Each (case, implementation) runs in its own
subprocess, so its peak resident memory is its own; both run in this one invocation.

    python benchmarks/bench_tradeoff.py [--quick] [--out benchmarks/results/bench_tradeoff.json]

Cases: the plug-in policy's value under ``S`` draws at ``W`` weights over ``n`` queries with
per-query costs (``policy_value_draws``), and the usage share at ``W`` weights (``sweep``).
Brute force runs only where its work fits (``--brute-max`` element-operations).
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time

CASES = {
    # name: (kind, S draws, n queries, W weights)
    "value_200x20k_1k": ("value", 200, 20_000, 1_000),
    "value_1000x100k_10k": ("value", 1_000, 100_000, 10_000),
    "sweep_100k_10k": ("sweep", 1, 100_000, 10_000),
    "sweep_1M_1k": ("sweep", 1, 1_000_000, 1_000),
}
QUICK = {"value_200x20k_1k": ("value", 50, 5_000, 500), "sweep_100k_10k": ("sweep", 1, 20_000, 2_000)}


def _inputs(kind, S, n, W):
    import jax
    import jax.numpy as jnp

    k1, k2, k3 = jax.random.split(jax.random.key(0), 3)
    point = 0.1 + 0.5 * jax.random.normal(k1, (n,))
    w = jnp.linspace(-0.5, 1.5, W)
    if kind == "sweep":
        return point, None, w, None
    gap = jax.random.uniform(k2, (n,), minval=0.5, maxval=2.0)
    draws = point[None, :] + 0.2 * jax.random.normal(k3, (S, n))
    return point, draws, w, gap


def _brute(kind):
    import jax
    import jax.numpy as jnp

    if kind == "sweep":
        return jax.jit(lambda point, draws, w, gap: jnp.mean(point[None, :] - w[:, None] > 0, axis=1))

    def value(point, draws, w, gap):
        price = w[:, None] * gap[None, :]
        routed = point[None, :] - price > 0
        return jax.vmap(lambda p: jnp.mean(jnp.where(routed, p[None, :] - price, 0.0), axis=1))(draws)

    return jax.jit(value)


def _engine(kind):
    import jax

    from mrjax.inference import policy_value
    from mrjax.router import breakpoints, tradeoff_curve

    if kind == "sweep":
        return jax.jit(lambda point, draws, w, gap: tradeoff_curve(breakpoints(point), w).usage)
    return jax.jit(lambda point, draws, w, gap: policy_value(draws, point, w, gap, 0.0))


def child(case, impl, repeats, sizes):
    import jax
    import numpy as np

    kind, S, n, W = sizes[case]
    args = _inputs(kind, S, n, W)
    fn = (_brute if impl == "brute" else _engine)(kind)
    t0 = time.perf_counter()
    out = jax.block_until_ready(fn(*args))
    first = time.perf_counter() - t0
    steady = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        jax.block_until_ready(fn(*args))
        steady.append(time.perf_counter() - t0)
    np.save(f"/tmp/bench_tradeoff_{case}_{impl}.npy", np.asarray(out))
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # KiB → GiB
    print(json.dumps({"first_s": first, "steady_s": float(np.median(steady)), "peak_rss_gib": rss}))


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", default="benchmarks/results/bench_tradeoff.json")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--quick", action="store_true", help="small sizes (a smoke run)")
    p.add_argument("--brute-max", type=float, default=2.5e10, help="largest S·n·W brute force is run at")
    p.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    sizes = QUICK if args.quick else CASES
    if args.child:
        return child(*args.child, args.repeats, sizes)

    import numpy as np

    sys.path.insert(0, os.path.dirname(__file__))
    from _meta import run_meta, write_result

    rows = {}
    for case, (kind, S, n, W) in sizes.items():
        row = {"kind": kind, "draws": S, "queries": n, "weights": W}
        for impl in ("engine", "brute"):
            if impl == "brute" and S * n * W > args.brute_max:
                row["brute"] = None
                row["brute_skipped"] = f"S·n·W = {S * n * W:.1e} element-operations > --brute-max {args.brute_max:.1e}"
                continue
            cmd = [sys.executable, __file__, "--child", case, impl, "--repeats", str(args.repeats)]
            cmd += ["--quick"] if args.quick else []
            res = subprocess.run(cmd, capture_output=True, text=True)
            if res.returncode != 0:
                row[impl] = None
                row[f"{impl}_error"] = res.stderr.strip().splitlines()[-1] if res.stderr.strip() else f"exit {res.returncode}"
                continue
            row[impl] = json.loads(res.stdout.strip().splitlines()[-1])
        if row.get("brute") and row.get("engine"):
            a = np.load(f"/tmp/bench_tradeoff_{case}_engine.npy")
            b = np.load(f"/tmp/bench_tradeoff_{case}_brute.npy")
            row["max_abs_difference"] = float(np.max(np.abs(a - b)))
            row["ratio_steady"] = row["brute"]["steady_s"] / row["engine"]["steady_s"]
        for impl in ("engine", "brute"):
            path = f"/tmp/bench_tradeoff_{case}_{impl}.npy"
            if os.path.exists(path):
                os.remove(path)
        rows[case] = row
        print(json.dumps({case: row}), file=sys.stderr)
    result = {"benchmark": "bench_tradeoff", "meta": run_meta(), "quick": args.quick, "cases": rows}
    write_result(args.out, result)
    print(f"{'case':<22} {'engine s':>9} {'brute s':>9} {'ratio':>7} {'engine GiB':>10} {'brute GiB':>9}")
    for case, r in rows.items():
        e, b = r.get("engine") or {}, r.get("brute") or {}
        print(f"{case:<22} {e.get('steady_s', float('nan')):9.3f} {b.get('steady_s', float('nan')):9.3f} "
              f"{r.get('ratio_steady', float('nan')):7.1f} {e.get('peak_rss_gib', float('nan')):10.2f} "
              f"{b.get('peak_rss_gib', float('nan')):9.2f}")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
