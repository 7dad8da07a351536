"""Generate ``docs/benchmarks.md`` from the benchmarks' JSON files (never edit that file by hand).

    python benchmarks/report.py [--results benchmarks/results] [--out docs/benchmarks.md]

Each benchmark that records its run (``meta``: versions, commit, device) has a renderer
here. The results are not committed, so a section whose JSON file is not under ``--results``
is kept as the existing report has it (rendered where that file was). Results of several devices
(CPU, GPU) are kept apart by file name: ``bench_<name>.json``, ``bench_<name>.<tag>.json``.
"""
from __future__ import annotations

import argparse
import glob
import json
import os


def _fmt(x, digits=3):
    return "—" if x is None else f"{x:.{digits}f}"


def _meta_line(meta: dict) -> str:
    commit = str(meta.get("commit"))
    dirty = " with uncommitted changes" if commit.endswith("+dirty") else ""
    return (f"mrjax {meta.get('mrjax')}, JAX {meta.get('jax')}, {meta.get('device_kind')} "
            f"({meta.get('n_devices')} device(s), {meta.get('cpu_count')} host cores), commit "
            f"`{commit[:12]}`{dirty}, {meta.get('date')}"
            + (f"; run as `{meta['command']}`" if meta.get("command") else ""))


def render_tradeoff(result: dict) -> list[str]:
    lines = [
        "Curves indexed by cost weight from one sort of the queries' breakpoints (`router.tradeoff_curve`,",
        "`inference.policy_value_draws`, `MetaRouter.sweep`) against the brute-force `(W, n)` decision matrix",
        "per draw that mrjax used before. Steady state is the median of repeated calls after the first;",
        "peak memory is each subprocess's resident peak (the inputs included).",
        "",
        "| case | draws × queries × weights | engine steady (s) | brute steady (s) | ratio | engine first (s) "
        "| engine peak (GiB) | brute peak (GiB) | max abs difference |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for case, r in result["cases"].items():
        e, b = r.get("engine") or {}, r.get("brute") or {}
        ratio = r.get("ratio_steady")
        size = f"{r['draws']:,} × {r['queries']:,} × {r['weights']:,}"
        diff = r.get("max_abs_difference")
        lines.append(
            f"| {r['kind']} | {size} | {_fmt(e.get('steady_s'))} | "
            f"{_fmt(b.get('steady_s')) if b else 'not run'} | {'—' if ratio is None else f'{ratio:.0f}×'} | "
            f"{_fmt(e.get('first_s'), 2)} | {_fmt(e.get('peak_rss_gib'), 2)} | {_fmt(b.get('peak_rss_gib'), 2)} | "
            f"{'—' if diff is None else f'{diff:.1e}'} |")
    skipped = [f"{c}: {r['brute_skipped']}" for c, r in result["cases"].items() if r.get("brute_skipped")]
    if skipped:
        lines += ["", "Brute force not run: " + "; ".join(skipped) + "."]
    return lines


def render_versions(result: dict) -> list[str]:
    trees = result.get("commits", result["trees"])
    size = result["size"]
    which = ("the tree learners' steady-state fits (best of 3 seeds each; `--workload trees`), with each fit's "
             "test RMSE against ψ (log-loss against its sign for the logistic loss) on the paper-like simulator"
             if result.get("workload") == "trees" else
             f"the default study ({size['runs']} runs), the facade's DR and R fits at {size['big']:,} / "
             f"{39 * size['big']:,} rows, and a whole-pipeline DR bootstrap of {size['reps']} replicates at 100 / 3,900")
    lines = [
        f"The same workloads on two source trees, alternating, best of {len(result['runs']['old'])} each "
        f"(`bench_versions.py`): {which}. Old: `{str(trees['old'])[:12]}`; new: `{str(trees['new'])[:12]}`"
        f"{' with uncommitted changes' if str(trees['new']).endswith('+dirty') else ''}.",
        "",
        "| workload | old (s) | new (s) | new / old |",
        "|---|---|---|---|",
    ]
    for k, v in result["summary"].items():
        lines.append(f"| {k.removesuffix('_s').replace('_', ' ')} | {v['old']:.2f} | {v['new']:.2f} | {v['new_over_old']:.3f} |")
    scores = [k for k in result["runs"]["old"][0] if k.endswith(("_rmse", "_logloss"))]
    if scores:
        lines += ["", "Accuracy of the same fits (first repeat; the seeds and rows are the same in both trees):", "",
                  "| fit | old | new |", "|---|---|---|"]
        lines += [f"| {k.replace('_', ' ')} | {result['runs']['old'][0][k]:.4f} | {result['runs']['new'][0][k]:.4f} |"
                  for k in scores]
    old, new = result["runs"]["old"][0].get("study_areas"), result["runs"]["new"][0].get("study_areas")
    if old and new:
        lines += ["", "Default study, oracle-normalised area per method (same 200 runs, same keys):", "",
                  "| method | old | new |", "|---|---|---|"]
        lines += [f"| {m} | {old[m]:.4f} | {new[m]:.4f} |" for m in old if m in new]
    return lines


def render_bootstrap(result: dict) -> list[str]:
    cfg = result.get("config", {})
    lines = [
        f"Whole-pipeline bootstrap (`bench_bootstrap.py`) at {cfg.get('n_gold')} gold / {cfg.get('n_preference')} "
        "preference rows, ψ̂ at 500 test queries; first call includes compilation.",
        "",
        "| pipeline | replicates | first call (s) | steady (s) | s / replicate |",
        "|---|---|---|---|---|",
    ]
    for name, r in result["results"].items():
        if "replicates" in r:
            lines.append(f"| {name} | {r['replicates']:,} | {r['first_call_s']:.1f} | {r['steady_s']:.1f} | "
                         f"{r['per_replicate_s']:.4f} |")
    return lines


def render_sweep(result: dict) -> list[str]:
    cfg = result["config"]
    grid = ", ".join(f"{k} {v}" for k, v in cfg["grid"].items())
    return [
        f"`bench_sweep.py`: a {' × '.join(str(len(v)) for v in cfg['grid'].values())} grid ({grid}), "
        f"{cfg['runs']} runs per cell, methods {', '.join(cfg['methods'])}, paper-like simulator; each command "
        "in its own process, wall time including start-up and compilation.",
        "",
        "| | seconds | peak memory (GiB) |",
        "|---|---|---|",
        f"| `mrjax sweep` ({cfg['cells']} cells, {cfg['programs']} compiled programs) | {result['sweep']['seconds']:.1f} | "
        f"{result['sweep']['peak_rss_gib']:.2f} |",
        f"| {cfg['cells']} separate `mrjax study` calls | {result['separate']['seconds']:.1f} | "
        f"{result['separate']['peak_rss_gib']:.2f} |",
        "",
        f"The sweep took 1/{result['ratio']:.2f} of the time; its per-cell mean ψ̂ RMSE equals the separate studies' "
        f"within {result['max_rmse_difference_vs_studies']:.1e}.",
    ]


def render_learners(result: dict) -> list[str]:
    names = list(result["config"]["learners"])
    seeds = result["config"]["seeds"]
    lines = [
        f"`bench_learners.py`: test RMSE, mean over {seeds} seeds (± its standard error), every learner on the same rows; "
        "mrjax's learners by name (`learners.named`), scikit-learn's `RandomForestRegressor` with the authors' settings "
        "(`sk_rf`) and `HistGradientBoostingRegressor` (`sk_hgb`). *best / sk*: the best mrjax learner's paired RMSE "
        "ratio to the better scikit-learn regressor run (± se over seeds; below 1 is better).",
        "",
        "| task | " + " | ".join(names) + " | best mrjax | best / sk |",
        "|---|" + "---|" * (len(names) + 2),
    ]
    for t in result["tasks"]:
        L = t["learners"]
        best = t["best_mrjax"]
        cells = [f"{L[n]['mean']:.3f} ± {L[n]['se']:.3f}" if L[n].get("se") is not None else f"{L[n]['mean']:.3f}" for n in names]
        ratio = L[best].get("ratio_to_best_sklearn")
        se = L[best].get("ratio_se")
        lines.append(f"| {t['task']} | " + " | ".join(cells) + f" | {best} | "
                     + ("—" if ratio is None else f"{ratio:.3f}" + ("" if se is None else f" ± {se:.3f}")) + " |")
    resumed = result.get("meta_resumed_from", [])
    if resumed:
        lines += ["", f"The tasks ran in {len(resumed) + 1} sessions (`--resume`), started at commits "
                  + ", ".join(f"`{str(m.get('commit'))[:12]}`" for m in resumed) + " and the one above."]
    lines += ["", "Steady-state seconds per fit (mean over the seeds after the first; mrjax's first seed also "
              "compiles, shown as compile seconds in the JSON). Single process, scikit-learn with all cores, on a "
              "shared 2-core machine where other jobs sometimes ran alongside: read them as orders of magnitude. In the "
              "selection design the number of gold rows differs from seed to seed, so there every mrjax fit "
              "compiles too.", "",
              "| task | " + " | ".join(names) + " |", "|---|" + "---|" * len(names)]
    for t in result["tasks"]:
        lines.append(f"| {t['task']} | " + " | ".join(f"{t['learners'][n]['steady_s']:.2f}" for n in names) + " |")
    if "speed" in result:
        sp = result["speed"]
        lines += ["", f"Boosted trees (`gbt`, defaults) on {sp['rows']:,} rows × {sp['features']} features: "
                  f"{sp['steady_s']:.1f} s per fit in steady state ({sp['first_s']:.1f} s for the first, compile included)"
                  + (f", with splits chosen on windows of {sp['split_rows']:,} rows; held-out RMSE {sp['holdout_rmse']:.4f}. "
                     f"With every row scoring every split: {sp['all_rows_steady_s']:.1f} s, held-out RMSE "
                     f"{sp['all_rows_holdout_rmse']:.4f}." if "all_rows_steady_s" in sp else ".")]
    return lines


def render_peers(result: dict) -> list[str]:
    learner = result.get("learner", "rff")
    lines = [
        f"`bench_peers.py`: {result['runs']} identical runs of {result['data']} at {result.get('n_gold', 100):,} gold rows, "
        f"mrjax with `learner=\"{learner}\"` for every model"
        f"{' and the feature relevance' if result.get('relevance') else ', no feature relevance'} "
        "against the authors' random-forest pipeline (`rf:`). "
        "Area: oracle-normalised efficiency-gain area; stop: the mean usage where the curve ends (ψ̂ turns "
        "non-positive); paired differences in raw area (the routed queries' true gains summed, integrated over usage) per run, ± se over runs. *Common support*: the same "
        "pair with both curves cut at the earlier stop, so that only the ranking counts (the protocol's area also "
        "grows with a curve's length).",
        "",
    ]
    has_stop = all("stop" in v for v in result["rows"].values())
    lines += ["| method | area | peak | ψ̂ RMSE | stop |", "|---|---|---|---|---|"] if has_stop else \
        ["| method | area | peak | ψ̂ RMSE |", "|---|---|---|---|"]
    for name, v in result["rows"].items():
        lines.append(f"| {name} | {v['area']:.3f} | {v['peak']:.3f} | {v['rmse']:.3f} |"
                     + (f" {v['stop']:.3f} |" if has_stop else ""))
    common = result.get("paired_raw_area_common_support")
    lines += ["", "| paired difference | mean ± se | common support |", "|---|---|---|"] if common else \
        ["", "| paired difference | mean ± se |", "|---|---|"]
    for name, v in result["paired_raw_area"].items():
        lines.append(f"| {name} | {v['mean']:+.2f} ± {v['se']:.2f} |"
                     + (f" {common[name]['mean']:+.2f} ± {common[name]['se']:.2f} |" if common else ""))
    lines += ["", f"Seconds for the {result['runs']} runs: mrjax (all {len(result['mrjax_methods'])} methods) "
              f"{result['mrjax_seconds_steady']:.1f} steady, {result['mrjax_seconds_incl_compile']:.1f} with compilation; "
              f"RF pipeline ({len([k for k in result['rows'] if k.startswith('rf:')])} methods) {result['rf_seconds_total']:.1f}."]
    if result.get("mrjax_study_seconds") is not None:
        steady = result.get("mrjax_study_seconds_steady")  # absent from results written before it was measured
        lines += ["", f"The same study configuration at {result['study_runs']} runs, compiled afresh: mrjax "
                      f"{result['mrjax_study_seconds']:.1f} s with compilation"
                      + (f" and {steady:.1f} s run again compiled" if steady is not None else "")
                      + f", against the RF pipeline's {result['rf_study_seconds_extrapolated']:.0f} s (its measured "
                      f"seconds per run × {result['study_runs']}): {result['speedup_study']:.0f}× faster with "
                      "compilation" + (f", {result['speedup_study_steady']:.0f}× steady." if steady is not None else ".")]
    return lines


def render_relevance(result: dict) -> list[str]:
    against = {t.get("against", "False") for t in result["tasks"]} - {"False"}
    if against:  # --against: the default search against a variant, not against no relevance
        lines = [
            "`bench_relevance.py --against`: the default study with the default feature relevance (\"default\") and with "
            f"the variant {', '.join(sorted(against))} (\"variant\"), on identical runs. Δ: paired per-run difference "
            "default − variant in raw area and in ψ̂ RMSE, ± se over runs (positive Δ area and negative Δ RMSE favour the "
            "default).",
        ]
        a, b = "default", "variant"
    else:
        lines = [
            "`bench_relevance.py`: the default study with the feature relevance (`relevance=True`, the default) and "
            "without it (`relevance=False`), on identical runs (same key, splits and random router). Area: oracle-normalised; Δ: paired "
            "per-run difference on − off in raw area (as in the studies against RF) and in ψ̂ RMSE, ± se over runs (positive Δ area and negative "
            "Δ RMSE favour the relevance).",
        ]
        a, b = "on", "off"
    for t in result["tasks"]:
        lines += ["", f"**{t['task']}**, {t['n_gold']} gold rows, {t['runs']} runs ({t['seconds_on']:.0f} s {a}, "
                      f"{t['seconds_off']:.0f} s {b}, with compilation)", "",
                  f"| method | area {a} | area {b} | Δ area | ψ̂ RMSE {a} | ψ̂ RMSE {b} | Δ RMSE |", "|---|---|---|---|---|---|---|"]
        for m, r in t["rows"].items():
            lines.append(f"| {m} | {r['area_on']:.3f} | {r['area_off']:.3f} | {r['area_diff']:+.2f} ± {r['area_diff_se']:.2f} | "
                         f"{r['rmse_on']:.3f} | {r['rmse_off']:.3f} | {r['rmse_diff']:+.3f} ± {r['rmse_diff_se']:.3f} |")
    return lines


def render_sizes(result: dict) -> list[str]:
    lines = [
        f"`bench_sizes.py`: the paper-like simulator at each size (39 preference rows per gold row, 500 test queries), "
        f"{result['runs']} runs per size, every method on identical runs with the default learner and feature relevance. "
        "`truth` ranks the test queries by ψ itself: a perfect ranking that stops at the true zero crossing, which a "
        "router exceeds only by a curve that runs past that crossing (the routed queries' gains there still exceed the "
        "mean gain). Area: oracle-normalised area of the mean curve, and the mean of per-run areas ± se; stop: mean "
        "usage where the curve ends. Paired differences: in the study's area (of the run-averaged curve, "
        "oracle-normalised; se over 2,000 resamples of the runs), and in raw area per run ± se, on the whole curves "
        "and on the common support (both cut at the earlier stop, so that only the ranking counts).",
    ]
    for n_gold, size in result["sizes"].items():
        lines += ["", f"**{int(n_gold):,} gold / {39 * int(n_gold):,} preference rows** ({size['seconds']:.0f} s with "
                      "compilation)", "", "| method | area | per-run area | stop | ψ̂ RMSE |", "|---|---|---|---|---|"]
        for name, v in size["rows"].items():
            rmse = "—" if v["rmse"] is None else f"{v['rmse']:.3f} ± {v['rmse_se']:.3f}"
            lines.append(f"| {name} | {v['area']:.3f} | {v['area_run_mean']:.3f} ± {v['area_run_se']:.3f} | "
                         f"{v['stop']:.3f} | {rmse} |")
        common, study = size["paired_raw_area_common_support"], size.get("paired_area")
        lines += ["", "| paired difference | area | raw area per run | common support |", "|---|---|---|---|"]
        for name, v in size["paired_raw_area"].items():
            area = "—" if study is None else f"{study[name]['mean']:+.4f} ± {study[name]['se']:.4f}"
            lines.append(f"| {name} | {area} | {v['mean']:+.2f} ± {v['se']:.2f} | {common[name]['mean']:+.2f} ± "
                         f"{common[name]['se']:.2f} |")
    return lines


def _rf_seconds(rf) -> str:
    if not rf:
        return "."
    if not isinstance(rf, dict):  # results written before the RF pipeline's methods were options: Golden-only
        rf = {"golden": rf}
    return "; the authors' random-forest pipeline, eight models: " + ", ".join(f"{m} {v:.1f}" for m, v in rf.items()) + "."


def render_multi(result: dict) -> list[str]:
    lines = [
        f"`bench_multi.py`: routing among the nine models of the nine-model set (real correctness and prices), "
        f"{result['runs']} runs, each a random split into {result['n_test']} test questions, {result['n_gold']} gold "
        f"and {result['n_preference']:,} preference rows scored by a simulated judge that favours larger models (a new "
        f"judge seed per run); features: 50 principal components on "
        f"{'one common scale' if result.get('standardize', 'features') == 'common' else 'per-feature scales'}"
        f"{', learner ' + result['learner'] if result.get('learner') else ''}"
        f"{'; the Meta-Routers bias learner ' + result['cate'] + ' (ψ̂ keeps the learner)' if result.get('cate') else ''}. "
        f"Every method's gains over {result['reference']} route the test questions by the same rule "
        "and budget calibration (on the unlabelled test questions); quality: the test questions' true correctness under "
        "the chosen models, averaged over ten budgets from the cheapest model's mean cost to the dearest's "
        f"(mean budgets in USD per 1,000 questions: {', '.join(f'{b:.3f}' for b in result['budgets_mean'])}). "
        "`rf:…`: the authors' random-forest pipeline on each model's gains (`_rf.py`); `best single model`: the best one model "
        "within each budget, chosen on the test labels; `oracle`: the best model per question in hindsight. "
        + (f"`meta…@α`: the same fit routed by the uncertainty-aware rule (each model's gain at the ⌈α·B⌉-th largest "
           f"of B = {result['replicates']} bootstrap draws, `MultiRouter.route(confidence=α)`), calibrated the same way. "
           if result.get("confidence") else "")
        + "Paired differences ± se over runs"
        + (f"; `{result['pair_with']}:…` rows are that file's runs on the same splits." if result.get("pair_with") else "."),
        "",
        "| method | mean quality over budgets |",
        "|---|---|",
    ]
    for name, v in result["rows"].items():
        lines.append(f"| {name} | {v['mean_quality']:.4f} ± {v['se']:.4f} |")
    lines += ["", "| paired difference | mean ± se |", "|---|---|"]
    for name, v in result["paired"].items():
        lines.append(f"| {name} | {v['mean']:+.4f} ± {v['se']:.4f} |")
    sec = result["seconds_per_run"]
    lines += ["", "Seconds per run (steady, median; eight models' gains fitted as one vmapped program): "
              + ", ".join(f"{m} {v:.1f}" for m, v in sec.items())
              + _rf_seconds(result.get("rf_seconds_per_run"))]
    return lines


RENDERERS = {
    "bench_tradeoff": ("Trade-off curves over cost weights", render_tradeoff),
    "bench_versions": ("Before and after a change, side by side", render_versions),
    "bench_bootstrap": ("Whole-pipeline bootstrap", render_bootstrap),
    "bench_sweep": ("A grid of studies: one sweep against separate studies", render_sweep),
    "bench_learners": ("Learners against scikit-learn's regressors", render_learners),
    "bench_peers": ("Studies against the authors' random-forest pipeline", render_peers),
    "bench_relevance": ("The feature relevance on and off, every simulator and RouteLLM", render_relevance),
    "bench_sizes": ("Across sizes: 100, 1k and 10k gold rows", render_sizes),
    "bench_multi": ("Routing among nine models on real correctness and prices", render_multi),
}


def kept_sections(path: str) -> dict[str, list[str]]:
    """``{json file name: its section's lines}`` of an existing report: the results are not committed, so a
    machine without a benchmark's JSON keeps that section as it was rendered where the JSON was."""
    if not os.path.exists(path):
        return {}
    sections, current = {}, None
    with open(path) as f:
        for line in f.read().splitlines():
            if line.startswith("## ") and line.endswith("`)") and "(`" in line:
                current = line[line.rindex("(`") + 2:-2]
                sections[current] = []
            if current is not None:
                sections[current].append(line)
    return {name: _strip(lines) for name, lines in sections.items()}


def _strip(lines: list[str]) -> list[str]:
    while lines and not lines[-1].strip():
        lines = lines[:-1]
    return lines + [""]


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--results", default="benchmarks/results")
    p.add_argument("--out", default="docs/benchmarks.md")
    args = p.parse_args(argv)
    lines = ["# Benchmark results", "",
             "Generated by `python benchmarks/report.py` from the JSON files the benchmarks write; do not edit.",
             "How each benchmark is run: `benchmarks/README.md`. Figures measured before the benchmarks recorded",
             "their runs: `benchmarks-recorded.md`.", ""]
    sections = kept_sections(args.out)
    for path in sorted(glob.glob(os.path.join(args.results, "*.json"))):
        with open(path) as f:
            result = json.load(f)
        name = result.get("benchmark")
        if name not in RENDERERS or "meta" not in result or result.get("quick"):
            continue
        title, render = RENDERERS[name]
        if name == "bench_relevance" and any(t.get("against", "False") != "False" for t in result["tasks"]):
            title = "The default relevance search against a variant"
        sections[os.path.basename(path)] = [f"## {title} (`{os.path.basename(path)}`)", "", _meta_line(result["meta"]),
                                            "", *render(result), ""]
    for name in sorted(sections):
        lines += sections[name]
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(args.out, "w") as f:
        f.write("\n".join(lines).rstrip() + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
