"""``mrjax study``: the paper's Monte-Carlo protocol on the simulator or real data, written as results.

    mrjax study [--config study.toml] [--runs 200] [--n-gold 100] [--n-test 500]
                [--n-preference 3900] [--methods meta_r,pooled,...] [--seed 0]
                [--normalize oracle|CONST] [--aggregate mean|median] [--out results]
                [--bootstrap B [--bootstrap-method meta_r]]

Writes ``results.json`` (config, timings, per-method summaries, versions, commit, device; each area
with its Monte-Carlo standard error and the paired one of its difference from every other method,
both over resamples of the runs),
``curves.csv`` (per-run efficiency curves) and ``efficiency_gain.png``/``.pdf``/``.svg`` (the
paper's Figure 1(a): efficiency gain vs primary-model usage, one panel per method with its 95%
band over runs), and prints the
summary table. ``--bootstrap B`` adds within-run uncertainty: every run also refits one
method on B bootstrap replicates and reports a 95% band for its estimated efficiency
gain; ``results.json`` gets the mean band and how often the bands covered each run's
true gain, and the figure draws the mean band dashed. Everything is written to a temporary folder first and moved into place
at the end, so a failure leaves nothing half-written.
"""
from __future__ import annotations

import argparse
import dataclasses
import inspect
import json
import math
import os
import re
import tomllib
import warnings

from typing import NamedTuple

import numpy as np

from mrjax._checks import choice, finite, integer
from mrjax._output import check_destination, results_folder
from mrjax.cli._common import Failed, UsageError, num, run_meta, writer
from mrjax.cli._figures import plot_study

DATA_SOURCES = ("simulator", "routellm-mmlu", "routellm-gsm8k")
AREA_RESAMPLES = 1000  # resamples of the runs for the areas' Monte-Carlo error (its own error: about 2%)
STANDARDIZE = {"features": True, "common": "common", "none": False}
STUDY_RENAMES = {"n_runs": "runs"}  # StudyConfig field → setting name (flag --runs, TOML key runs)
STUDY_SPECIAL = {"methods", "simulation", "standardize"}  # fields with their own handling below
JUDGE = {"judge_strength": "judge_strength", "subject_sd": "subject_sd", "length_coef": "length_coef",
         "judge_seed": "seed"}  # setting → load_routellm argument


class Option(NamedTuple):
    """One study setting: its name (flag ``--name-with-dashes``, TOML key ``name``), type, default,
    where it goes (``study``: a StudyConfig field, ``simulation``: a SimulationConfig field,
    ``judge``: the MMLU judge, ``cli``: this command), and help."""

    name: str
    kind: object  # int, float, bool, str, or a tuple of choices
    default: object
    target: str
    help: str
    field: str = ""


def _field_help(cls) -> dict:
    """``name : text`` entries of a NumPy-style Attributes section, joined per field."""
    doc = inspect.getdoc(cls) or ""
    section = doc.split("Attributes", 1)[1] if "Attributes" in doc else ""
    out, current = {}, None
    for line in section.splitlines()[2:]:
        m = re.match(r"^([a-z_, ]+) : (.*)$", line)
        if m:
            names, text = m.group(1), m.group(2)
            current = [n.strip() for n in names.split(",")]
            for n in current:
                out[n] = text
        elif current and line.startswith("    "):
            for n in current:
                out[n] += " " + line.strip()
    return {k: v.replace("%", "%%") for k, v in out.items()}


def _kind(default):
    return type(default) if isinstance(default, (bool, int, float, str)) else str


def study_options() -> list[Option]:
    """Every ``mrjax study`` setting, generated from ``StudyConfig`` and ``SimulationConfig`` (their
    defaults and docstrings) and ``load_routellm``'s judge arguments, plus the command's own."""
    from mrjax.data._routellm import load_routellm
    from mrjax.data._simulate import SimulationConfig
    from mrjax.sim._study import DEFAULT_METHODS, StudyConfig

    study, sim = StudyConfig(), SimulationConfig()
    helps, sim_helps = _field_help(StudyConfig), _field_help(SimulationConfig)
    opts = [
        Option("seed", int, 0, "cli", "the study's random key (run r uses fold_in(key, r))"),
        Option("data", DATA_SOURCES, "simulator", "cli", "study data: the paper-like simulator or RouteLLM's real gold"),
        Option("data_dir", str, None, "cli", "folder of RouteLLM's evals (mmlu/, gsm8k/, embeddings_minilm.npz); "
                                             "needed by --data routellm-*"),
        Option("methods", str, ",".join(DEFAULT_METHODS), "study", "comma-separated names from router.PRESETS"),
        Option("normalize", str, "oracle", "cli", "'oracle' (gain / oracle gain) or a positive constant to divide by"),
        Option("aggregate", ("mean", "median"), "mean", "cli", "aggregate over runs"),
        Option("standardize", tuple(STANDARDIZE), None, "study",
               "feature scaling: per feature, one common scale, or none (default: 'features' on the simulator, "
               "'common' on RouteLLM's principal components)", "standardize"),
        Option("out", str, "results", "cli", "output folder"),
    ]
    for f in dataclasses.fields(StudyConfig):
        if f.name in STUDY_SPECIAL:
            continue
        default = getattr(study, f.name)
        kind = str if default is None else _kind(default)
        if f.name == "learner":
            from mrjax.learners._auto import REGRESSORS
            kind = REGRESSORS
        opts.append(Option(STUDY_RENAMES.get(f.name, f.name), kind, default, "study", helps.get(f.name, ""), f.name))
    for f in dataclasses.fields(SimulationConfig):
        default = getattr(sim, f.name)
        opts.append(Option(f.name, _kind(default), default, "simulation", "simulator: " + sim_helps.get(f.name, ""),
                           f.name))
    signature = inspect.signature(load_routellm).parameters
    for name, arg in JUDGE.items():
        default = signature[arg].default
        opts.append(Option(name, _kind(default), default, "judge", f"MMLU simulated judge: its {arg} argument"))
    return opts


def add_parser(sub) -> None:
    """The ``study`` subcommand and its options."""
    s = sub.add_parser("study", help="run the paper's Monte-Carlo protocol on the paper-like simulator or real data",
                       description="Run the paper's Monte-Carlo protocol. Every option can also be given in a TOML "
                                   "file (--config, keys as the option names with underscores, optionally under "
                                   "[study]); flags override the file.")
    s.add_argument("--config", help="TOML file of settings")
    for o in study_options():
        flag = "--" + o.name.replace("_", "-")
        if o.kind is bool:
            s.add_argument(flag, dest=o.name, action=argparse.BooleanOptionalAction, default=None, help=o.help)
        elif isinstance(o.kind, tuple):
            s.add_argument(flag, dest=o.name, choices=list(o.kind), default=None, help=o.help)
        else:
            s.add_argument(flag, dest=o.name, type=o.kind, default=None,
                           help=f"{o.help} (default {o.default})" if o.default not in (None, "") else o.help)
    s.add_argument("--overwrite", action="store_true", help="replace an existing results folder (kept otherwise)")
    s.add_argument("--quiet", action="store_true", help="no progress bar")
    s.set_defaults(run=study)


def _typed(o: Option, value):
    """A setting's value checked against its option's type (TOML gives any type)."""
    if value is None:
        return None
    try:
        if o.kind is bool:
            if not isinstance(value, bool):
                raise ValueError(f"{o.name} must be true or false, got {value!r}")
            return value
        if o.kind is int:
            return integer(o.name, value)
        if o.kind is float:
            return finite(o.name, value)
        if isinstance(o.kind, tuple):
            return choice(o.name, value, o.kind)
    except ValueError as err:
        raise UsageError(str(err)) from None
    if o.name == "normalize" and isinstance(value, (int, float)) and not isinstance(value, bool):
        return value  # a constant; checked with 'oracle' below
    if o.name == "methods" and isinstance(value, (list, tuple)):
        if not all(isinstance(v, str) for v in value):
            raise UsageError(f"methods must be names, got {value!r}")
        return ",".join(value)
    if not isinstance(value, str):
        raise UsageError(f"{o.name} must be a string, got {value!r}")
    return value


def _settings(args) -> dict:
    options = {o.name: o for o in study_options()}
    given = {}
    if args.config:
        if not os.path.isfile(args.config):
            raise UsageError(f"config file not found: {args.config}")
        try:
            with open(args.config, "rb") as f:
                cfg = tomllib.load(f)
        except tomllib.TOMLDecodeError as err:
            raise UsageError(f"config file {args.config} is not valid TOML: {err}") from None
        cfg = cfg.get("study", cfg)
        unknown = sorted(set(cfg) - set(options))
        if unknown:
            raise UsageError(f"config file {args.config}: unknown keys {unknown}; allowed: {sorted(options)}")
        given.update(cfg)
    for name in options:
        value = getattr(args, name, None)
        if value is not None:
            given[name] = value
    return resolve(given)


def resolve(given: dict) -> dict:
    """Every setting: the defaults updated with ``given`` (typed and checked; a mistake is a UsageError)."""
    options = {o.name: o for o in study_options()}
    unknown = sorted(set(given) - set(options))
    if unknown:
        raise UsageError(f"unknown settings {unknown}; allowed: {sorted(options)}")
    given = {k: _typed(options[k], v) for k, v in given.items()}
    settings = {name: o.default for name, o in options.items()}
    settings.update({k: v for k, v in given.items() if v is not None})
    if settings["data"] == "simulator":
        wrong = sorted(k for k in given if options[k].target == "judge" or k == "data_dir")
        if wrong:
            raise UsageError(f"{', '.join('--' + k.replace('_', '-') for k in wrong)}: only for real data "
                             f"(--data routellm-mmlu or routellm-gsm8k); the simulator was chosen")
    else:
        wrong = sorted(k for k in given if options[k].target == "simulation")
        if wrong:
            raise UsageError(f"{', '.join('--' + k.replace('_', '-') for k in wrong)}: only for the simulator, "
                             f"not to --data {settings['data']}")
        if not settings["data_dir"]:
            raise UsageError(f"--data {settings['data']} needs --data-dir (a copy of RouteLLM's evals folder)")
        if not os.path.isdir(settings["data_dir"]):
            raise UsageError(f"data directory not found: {settings['data_dir']}")
    if settings["standardize"] is None:
        settings["standardize"] = "features" if settings["data"] == "simulator" else "common"
    settings["methods"] = [m.strip() for m in settings["methods"].split(",") if m.strip()]
    norm = settings["normalize"]
    if norm != "oracle":
        try:
            norm = float(norm)
        except (TypeError, ValueError):
            raise UsageError(f"normalize must be 'oracle' or a positive number, got {norm!r}") from None
        if not (norm > 0 and math.isfinite(norm)):
            raise UsageError(f"normalize must be 'oracle' or a positive number, got {norm!r}")
        settings["normalize"] = norm
    return settings


def study_config(settings: dict):
    """The StudyConfig the settings describe (every StudyConfig and SimulationConfig field from its option)."""
    from mrjax.data._simulate import SimulationConfig
    from mrjax.sim._study import StudyConfig

    options = study_options()
    sim = {o.field: settings[o.name] for o in options if o.target == "simulation"}
    fields = {o.field: settings[o.name] for o in options if o.target == "study" and o.field}
    fields["standardize"] = STANDARDIZE[settings["standardize"]]
    try:
        return StudyConfig(**fields, methods=tuple(settings["methods"]), simulation=SimulationConfig(**sim))
    except (ValueError, TypeError) as err:
        raise UsageError(str(err)) from None


def execute(settings: dict, progress: bool = True):
    """Run the study the settings describe: ``(StudyConfig, StudyResult)``. Real-data settings load the pool
    (its arrays are program arguments: another judge reuses the compiled program); ``settings["n_preference"]``
    is set to the rest of the pool."""
    import jax
    import jax.numpy as jnp

    from mrjax.sim._study import run_study

    config = study_config(settings)
    pool = None
    if settings["data"] != "simulator":
        from mrjax.data._routellm import load_routellm

        try:
            loaded = load_routellm(settings["data_dir"], settings["data"].split("-", 1)[1],
                                   **{arg: settings[name] for name, arg in JUDGE.items()})
        except (OSError, ValueError) as err:
            raise UsageError(str(err)) from None
        n_pool = loaded.embedding.shape[0]
        if config.n_test + config.n_gold >= n_pool:
            raise UsageError(f"n_test + n_gold = {config.n_test + config.n_gold} leaves no preference rows in {n_pool} queries")
        config = dataclasses.replace(config, n_preference=n_pool - config.n_test - config.n_gold)
        settings["n_preference"] = config.n_preference
        pool = tuple(jnp.asarray(a) for a in (loaded.embedding, loaded.gold_gain, loaded.preference_label))
    return config, run_study(jax.random.key(int(settings["seed"])), config, pool=pool, progress=progress)


def study(args) -> int:
    settings = _settings(args)
    try:
        check_destination(settings["out"], args.overwrite)  # before any work: never discovered after the study
    except ValueError as err:
        raise UsageError(str(err)) from None
    from mrjax.router._metrics import area_resamples, summarize_gain

    config, result = execute(settings, progress=not args.quiet)
    summary = summarize_gain(result.efficiency, result.random, result.oracle,
                             aggregate=settings["aggregate"], normalize=settings["normalize"])
    bad = [(name, int((result.nonfinite[:, m] > 0).sum())) for m, name in enumerate(result.methods)]
    bad = [(name, k) for name, k in bad if k]
    if bad:
        raise Failed("non-finite ψ̂ in " + ", ".join(f"{name} ({k} of {len(result.rmse)} runs)" for name, k in bad)
                          + "; nothing was written. Check the data (NaN features or labels) and the settings")
    out = settings["out"]
    if not writer():  # a multi-controller run: every process computed every run; the first one writes
        return 0
    # Monte-Carlo error of the areas and of their differences (the methods share each resample's runs).
    draws = area_resamples(result.efficiency, result.random, result.oracle, aggregate=settings["aggregate"],
                           normalize=settings["normalize"], n_resamples=AREA_RESAMPLES) if len(result.rmse) > 1 else None
    with results_folder(out) as tmp:
        methods = list(result.methods)
        report = {
            "config": {**{k: v for k, v in settings.items() if k != "out"}, "methods": methods},
            **run_meta(),
            "seconds": result.seconds, "compile_seconds": result.compile_seconds,
            "usage_grid": result.grid.tolist(),
            "methods": {
                name: {
                    "peak_gain": num(summary.peak[m]), "usage_at_peak": num(summary.peak_usage[m]),
                    "area": num(summary.area[m]), "area_se": num(_spread(draws, m)),
                    "area_difference_se": {other: num(_spread(draws, m, k)) for k, other in enumerate(methods) if k != m},
                    "psi_rmse_mean": num(result.rmse[:, m].mean()),
                    "psi_rmse_se": num(result.rmse[:, m].std(ddof=1) / np.sqrt(len(result.rmse)) if len(result.rmse) > 1 else float("nan")),
                    "curve": [num(v) for v in summary.curve[m]],
                    "band_lower": [num(v) for v in summary.lower[m]],
                    "band_upper": [num(v) for v in summary.upper[m]],
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
        plot_study(os.path.join(tmp, "efficiency_gain"), summary, methods, result.grid, settings["normalize"],
                   len(result.rmse), band)
    print(f"{result.seconds:.1f}s for {config.n_runs} runs x {len(methods)} methods "
          f"({result.compile_seconds:.1f}s first batch incl. compile) on {report['device']}")
    print(f"{'method':<12} {'peak':>7} {'usage':>6} {'area':>7} {'± se':>6} {'psi RMSE':>9}")
    for m, name in enumerate(methods):
        print(f"{name:<12} {summary.peak[m]:7.3f} {summary.peak_usage[m]:6.2f} {summary.area[m]:7.3f} "
              f"{_spread(draws, m):6.3f} {result.rmse[:, m].mean():9.3f}")
    print(f"(± se: Monte-Carlo error over {AREA_RESAMPLES} resamples of the runs; results.json has the paired se of "
          "every difference)")
    if result.band is not None:
        b = report["bootstrap"]
        print(f"within-run {config.bootstrap_level:.0%} bands ({config.bootstrap} replicates of {config.bootstrap_method}): "
              f"covered the run's true gain at {b['coverage_mean']:.3f} of (run, usage) points")
    print(f"wrote {out}/results.json, curves.csv, efficiency_gain.png (.pdf, .svg)")
    return 0


def _spread(draws, m, k=None) -> float:
    """Standard deviation over the area resamples of method ``m``'s area, or of its difference from method ``k``'s
    (NaN for a single run or where an area is undefined)."""
    if draws is None:
        return float("nan")
    d = draws[:, m] if k is None else draws[:, m] - draws[:, k]
    return float(np.std(d, ddof=1)) if np.isfinite(d).all() else float("nan")


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
        "mean_band_lower": [num(v) for v in mean_lo], "mean_band_upper": [num(v) for v in mean_hi],
        "coverage_by_usage": [num(v) for v in cover], "coverage_mean": num(np.nanmean(covered)),
        "note": "band: percentile interval of the run's bootstrap draws of its estimated efficiency gain "
                "(ranking fixed by the point fit, expected random router); coverage: share of runs whose "
                "true gain of that ranking lies inside",
    }
    return report, (config.bootstrap_method, mean_lo, mean_hi)


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
