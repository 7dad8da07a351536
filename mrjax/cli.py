"""The command line: ``mrjax study`` runs the paper's protocol and writes results.

    mrjax study [--config study.toml] [--runs 200] [--n-gold 100] [--n-test 500]
                [--n-preference 3900] [--methods meta_r,pooled,...] [--seed 0]
                [--normalize oracle|CONST] [--aggregate mean|median] [--out results]
                [--bootstrap B [--bootstrap-method meta_r]]

Writes ``results.json`` (config, timings, per-method summaries), ``curves.csv``
(per-run efficiency curves) and ``efficiency_gain.png`` (the paper's Figure 1(a)
layout: efficiency gain vs primary-model usage, 95% bands over runs), and prints the
summary table. ``--bootstrap B`` adds within-run uncertainty: every run also refits one
method on B bootstrap replicates and reports a 95% band for its estimated efficiency
gain; ``results.json`` gets the mean band and how often the bands covered each run's
true gain, and the figure draws the mean band dashed. Everything is written to a temporary folder first and moved into place
at the end, so a failure leaves nothing half-written.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import os
import shutil
import sys
import tempfile
import tomllib
import warnings

import numpy as np

STUDY_KEYS = {"runs", "n_gold", "n_test", "n_preference", "methods", "seed", "normalize", "aggregate",
              "batch_size", "n_folds", "n_features_rff", "bias_strength", "out", "data", "data_dir",
              "judge_strength", "subject_sd", "length_coef", "judge_seed", "bootstrap", "bootstrap_method",
              "standardize"}
DATA_SOURCES = ("simulator", "routellm-mmlu", "routellm-gsm8k")
STANDARDIZE = {"features": True, "common": "common", "none": False}


class UsageError(Exception):
    pass


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="mrjax", description="Meta-Router studies in JAX")
    sub = p.add_subparsers(dest="command", required=True)
    s = sub.add_parser("study", help="run the paper's Monte-Carlo protocol on the paper-like simulator")
    s.add_argument("--config", help="TOML file with any of: " + ", ".join(sorted(STUDY_KEYS)))
    s.add_argument("--runs", type=int)
    s.add_argument("--n-gold", type=int)
    s.add_argument("--n-test", type=int)
    s.add_argument("--n-preference", type=int)
    s.add_argument("--methods", help="comma-separated method names")
    s.add_argument("--seed", type=int)
    s.add_argument("--normalize", help="'oracle' or a positive constant")
    s.add_argument("--aggregate", choices=["mean", "median"])
    s.add_argument("--batch-size", type=int)
    s.add_argument("--n-folds", type=int)
    s.add_argument("--n-features-rff", type=int)
    s.add_argument("--bias-strength", type=float)
    s.add_argument("--out", help="output folder (default: results)")
    s.add_argument("--data", choices=DATA_SOURCES, help="study data (default: the paper-like simulator)")
    s.add_argument("--data-dir", help="folder of RouteLLM's evals (mmlu/, gsm8k/, embeddings_minilm.npz)")
    s.add_argument("--judge-strength", type=float, help="MMLU simulated judge: a (default 1.0)")
    s.add_argument("--subject-sd", type=float, help="MMLU simulated judge: s (default 1.0)")
    s.add_argument("--length-coef", type=float, help="MMLU simulated judge: c (default 0.5)")
    s.add_argument("--judge-seed", type=int, help="MMLU simulated judge: seed (default 0)")
    s.add_argument("--bootstrap", type=int, help="within-run bootstrap replicates per run (default 0: none)")
    s.add_argument("--bootstrap-method", help="method to bootstrap (default: the first Meta-Router)")
    s.add_argument("--standardize", choices=list(STANDARDIZE),
                   help="feature scaling: per feature, one common scale, or none (default: 'features' on the "
                        "simulator, 'common' on RouteLLM's principal components)")
    s.add_argument("--quiet", action="store_true", help="no progress line")
    return p


def _settings(args) -> dict:
    settings = {"runs": 200, "n_gold": 100, "n_test": 500, "n_preference": 3900, "seed": 0,
                "normalize": "oracle", "aggregate": "mean", "batch_size": 50, "n_folds": 5,
                "n_features_rff": 256, "bias_strength": 1.0, "out": "results", "methods": None,
                "data": "simulator", "data_dir": None, "judge_strength": 1.0, "subject_sd": 1.0,
                "length_coef": 0.5, "judge_seed": 0, "bootstrap": 0, "bootstrap_method": None,
                "standardize": None}
    if args.config:
        if not os.path.isfile(args.config):
            raise UsageError(f"config file not found: {args.config}")
        try:
            with open(args.config, "rb") as f:
                cfg = tomllib.load(f)
        except tomllib.TOMLDecodeError as err:
            raise UsageError(f"config file {args.config} is not valid TOML: {err}") from None
        cfg = cfg.get("study", cfg)
        unknown = sorted(set(cfg) - STUDY_KEYS)
        if unknown:
            raise UsageError(f"config file {args.config}: unknown keys {unknown}; allowed: {sorted(STUDY_KEYS)}")
        settings.update(cfg)
    for key in STUDY_KEYS:
        value = getattr(args, key, None)
        if value is not None:
            settings[key] = value
    if settings["data"] not in DATA_SOURCES:
        raise UsageError(f"data must be one of {DATA_SOURCES}, got {settings['data']!r}")
    if settings["data"] != "simulator":
        if not settings["data_dir"]:
            raise UsageError(f"--data {settings['data']} needs --data-dir (a copy of RouteLLM's evals folder)")
        if not os.path.isdir(settings["data_dir"]):
            raise UsageError(f"data directory not found: {settings['data_dir']}")
    if settings["standardize"] is None:
        settings["standardize"] = "features" if settings["data"] == "simulator" else "common"
    if settings["standardize"] not in STANDARDIZE:
        raise UsageError(f"standardize must be one of {list(STANDARDIZE)}, got {settings['standardize']!r}")
    if isinstance(settings["methods"], str):
        settings["methods"] = [m.strip() for m in settings["methods"].split(",") if m.strip()]
    norm = settings["normalize"]
    if norm != "oracle":
        try:
            norm = float(norm)
        except (TypeError, ValueError):
            raise UsageError(f"normalize must be 'oracle' or a positive number, got {norm!r}") from None
        if not norm > 0:
            raise UsageError(f"normalize must be 'oracle' or a positive number, got {norm!r}")
        settings["normalize"] = norm
    return settings


def _plot(path, summary, methods, grid, normalize, band=None):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 6))
    for m, name in enumerate(methods):
        line, = ax.plot(grid, summary.curve[m], lw=2.5, label=name)
        ax.fill_between(grid, summary.lower[m], summary.upper[m], color=line.get_color(), alpha=0.12)
    if band is not None:
        name, lower, upper = band
        ax.plot(grid, lower, color="k", lw=1.2, ls=":", label=f"{name}: mean within-run 95% band")
        ax.plot(grid, upper, color="k", lw=1.2, ls=":")
    ax.axhline(0.0, color="k", lw=1, ls="--", label="random")
    ax.set_xlabel("primary-model usage ratio")
    ax.set_ylabel("efficiency gain" + (" (oracle-normalised)" if normalize == "oracle" else f" (÷ {normalize})"))
    ax.set_title("Efficiency gain vs usage (mean over runs, 95% bands)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def study(args) -> int:
    settings = _settings(args)
    import jax

    from mrjax.data._simulate import SimulationConfig
    from mrjax.router._metrics import summarize_gain
    from mrjax.sim._study import DEFAULT_METHODS, StudyConfig, run_study

    try:
        config = StudyConfig(
            n_runs=int(settings["runs"]), n_test=int(settings["n_test"]), n_gold=int(settings["n_gold"]),
            n_preference=int(settings["n_preference"]),
            methods=tuple(settings["methods"] or DEFAULT_METHODS),
            simulation=SimulationConfig(bias_strength=float(settings["bias_strength"])),
            n_features_rff=int(settings["n_features_rff"]), n_folds=int(settings["n_folds"]),
            batch_size=int(settings["batch_size"]), bootstrap=int(settings["bootstrap"]),
            bootstrap_method=settings["bootstrap_method"], standardize=STANDARDIZE[settings["standardize"]],
        )
    except (ValueError, TypeError) as err:
        raise UsageError(str(err)) from None
    run_fn = None
    if settings["data"] != "simulator":
        import jax.numpy as jnp

        from mrjax.data._routellm import load_routellm
        from mrjax.sim._study import pool_run

        try:
            pool = load_routellm(settings["data_dir"], settings["data"].split("-", 1)[1],
                                 float(settings["judge_strength"]), float(settings["subject_sd"]),
                                 float(settings["length_coef"]), int(settings["judge_seed"]))
        except (OSError, ValueError) as err:
            raise UsageError(str(err)) from None
        n_pool = pool.embedding.shape[0]
        if config.n_test + config.n_gold >= n_pool:
            raise UsageError(f"n_test + n_gold = {config.n_test + config.n_gold} leaves no preference rows in {n_pool} queries")
        config = dataclasses.replace(config, n_preference=n_pool - config.n_test - config.n_gold)
        settings["n_preference"] = config.n_preference
        E, GL, PL = (jnp.asarray(a) for a in (pool.embedding, pool.gold_gain, pool.preference_label))
        run_fn = lambda k: pool_run(k, E, GL, PL, config)  # noqa: E731
    result = run_study(jax.random.key(int(settings["seed"])), config, run_fn=run_fn, progress=not args.quiet)
    summary = summarize_gain(result.efficiency, result.random, result.oracle,
                             aggregate=settings["aggregate"], normalize=settings["normalize"])
    out = settings["out"]
    parent = os.path.dirname(os.path.abspath(out))
    os.makedirs(parent, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix=".mrjax-", dir=parent)
    try:
        methods = list(result.methods)
        report = {
            "config": {**{k: v for k, v in settings.items() if k != "out"}, "methods": methods},
            "device": str(jax.devices()[0]), "n_devices": jax.local_device_count(),
            "seconds": result.seconds, "compile_seconds": result.compile_seconds,
            "usage_grid": result.grid.tolist(),
            "methods": {
                name: {
                    "peak_gain": _num(summary.peak[m]), "usage_at_peak": _num(summary.peak_usage[m]),
                    "area": _num(summary.area[m]), "psi_rmse_mean": _num(result.rmse[:, m].mean()),
                    "psi_rmse_se": _num(result.rmse[:, m].std(ddof=1) / np.sqrt(len(result.rmse)) if len(result.rmse) > 1 else float("nan")),
                    "curve": [_num(v) for v in summary.curve[m]],
                    "band_lower": [_num(v) for v in summary.lower[m]],
                    "band_upper": [_num(v) for v in summary.upper[m]],
                }
                for m, name in enumerate(methods)
            },
        }
        band = None
        if result.band is not None:
            report["bootstrap"], band = _band_report(result, config, settings)
        with open(os.path.join(tmp, "results.json"), "w") as f:
            json.dump(report, f, indent=2)
        _write_curves(os.path.join(tmp, "curves.csv"), result)
        _plot(os.path.join(tmp, "efficiency_gain.png"), summary, methods, result.grid, settings["normalize"], band)
        if os.path.isdir(out):
            for name in os.listdir(tmp):
                os.replace(os.path.join(tmp, name), os.path.join(out, name))
            os.rmdir(tmp)
        else:
            os.replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    print(f"{result.seconds:.1f}s for {config.n_runs} runs x {len(methods)} methods "
          f"({result.compile_seconds:.1f}s first batch incl. compile) on {report['device']}")
    print(f"{'method':<12} {'peak':>7} {'usage':>6} {'area':>7} {'psi RMSE':>9}")
    for m, name in enumerate(methods):
        print(f"{name:<12} {summary.peak[m]:7.3f} {summary.peak_usage[m]:6.2f} {summary.area[m]:7.3f} {result.rmse[:, m].mean():9.3f}")
    if result.band is not None:
        b = report["bootstrap"]
        print(f"within-run {config.bootstrap_level:.0%} bands ({config.bootstrap} replicates of {config.bootstrap_method}): "
              f"covered the run's true gain at {b['coverage_mean']:.3f} of (run, usage) points")
    print(f"wrote {out}/results.json, curves.csv, efficiency_gain.png")
    return 0


def _band_report(result, config, settings):
    """Mean within-run band (normalised like the curves) and its coverage of each run's true gain."""
    lower, upper, truth = result.band[:, 0], result.band[:, 1], result.band[:, 2]
    if settings["normalize"] == "oracle":
        denom = np.mean(result.oracle)[None] - np.mean(result.random, axis=0)
    else:
        denom = np.full(result.grid.shape, float(settings["normalize"]))
    defined = np.isfinite(lower) & np.isfinite(upper)
    covered = np.where(defined, (truth >= lower) & (truth <= upper), np.nan)
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        mean_lo, mean_hi = np.nanmean(lower, 0) / denom, np.nanmean(upper, 0) / denom
        cover = np.nanmean(covered, 0)
    report = {
        "method": config.bootstrap_method, "replicates": config.bootstrap, "level": config.bootstrap_level,
        "mean_band_lower": [_num(v) for v in mean_lo], "mean_band_upper": [_num(v) for v in mean_hi],
        "coverage_by_usage": [_num(v) for v in cover], "coverage_mean": _num(np.nanmean(covered)),
        "note": "band: percentile interval of the run's bootstrap draws of its estimated efficiency gain "
                "(ranking fixed by the point fit, expected random router); coverage: share of runs whose "
                "true gain of that ranking lies inside",
    }
    return report, (config.bootstrap_method, mean_lo, mean_hi)


def _num(x):
    x = float(x)
    return x if np.isfinite(x) else None


def _write_curves(path, result):
    import pandas as pd

    R, M, G = result.efficiency.shape
    frame = pd.DataFrame({
        "run": np.repeat(np.arange(R), M * G),
        "method": np.tile(np.repeat(np.asarray(result.methods), G), R),
        "usage": np.tile(result.grid, R * M),
        "total_efficiency": result.efficiency.reshape(-1),
        "random_efficiency": np.repeat(result.random[:, None, :], M, axis=1).reshape(-1),
    })
    frame["efficiency_gain"] = frame.total_efficiency - frame.random_efficiency
    frame.to_csv(path, index=False)


def main(argv=None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.command == "study":
            return study(args)
    except UsageError as err:
        print(f"mrjax: error: {err}", file=sys.stderr)
        return 2
    return 1


if __name__ == "__main__":
    sys.exit(main())
