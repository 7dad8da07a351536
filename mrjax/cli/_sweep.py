"""``mrjax sweep GRID.toml``: a grid of studies, resumable, with tidy results and paired differences.

    # GRID.toml
    [study]                     # settings every cell shares (any `mrjax study` setting)
    runs = 200
    methods = ["meta_r", "golden", "pooled"]
    [grid]                      # the Cartesian product of these axes
    n_gold = [100, 1000]
    bias_strength = [0.5, 1.0, 2.0]
    [[cells]]                   # further cells, each its own settings (optional)
    n_gold = 500
    [sweep]
    reference = "golden"        # paired differences against this method
    out = "sweep"

Each cell is a study. Cells whose settings differ only in numbers (λ, the simulator's strengths and
noises, the MMLU judge) share one compiled program; the others compile once per shape. Finished
cells are files renamed into place whole (``cells/<id>.parquet``), so an interrupted sweep resumes
where it stopped and a half-written cell is never read.
"""
from __future__ import annotations

import glob
import hashlib
import itertools
import json
import os
import tomllib

import numpy as np

from mrjax.cli._common import Failed, UsageError, run_meta, writer

SECTIONS = ("study", "grid", "cells", "sweep")
CELL_FILE = "cells/{}.{}"


def add_parser(sub) -> None:
    s = sub.add_parser(
        "sweep", help="run a grid of studies (resumable; tidy results, paired differences, figures)",
        description="Run every cell of a grid of studies described in a TOML file ([study] shared settings, "
                    "[grid] axes, [[cells]] extra cells, [sweep] reference and out). An interrupted sweep resumes "
                    "where it stopped: finished cells are kept, half-written ones redone. Writes results.parquet "
                    "(one row per cell x method x run; CSV without pyarrow), summary.csv (per cell x method, with "
                    "paired differences against the reference method), sweep.json, and with --report the figures.")
    s.add_argument("grid", help="the sweep's TOML file")
    s.add_argument("--out", help="output folder (default: [sweep] out, else 'sweep')")
    s.add_argument("--report", action="store_true", help="only draw the figures of a finished sweep in --out")
    s.add_argument("--overwrite", action="store_true", help="replace an output folder that holds a different sweep")
    s.add_argument("--quiet", action="store_true", help="no progress bars")
    s.set_defaults(run=sweep)


def _read(path: str) -> dict:
    if not os.path.isfile(path):
        raise UsageError(f"sweep file not found: {path}")
    try:
        with open(path, "rb") as f:
            spec = tomllib.load(f)
    except tomllib.TOMLDecodeError as err:
        raise UsageError(f"sweep file {path} is not valid TOML: {err}") from None
    unknown = sorted(set(spec) - set(SECTIONS))
    if unknown:
        raise UsageError(f"sweep file {path}: unknown sections {unknown}; use {list(SECTIONS)}")
    grid = spec.get("grid", {})
    for axis, values in grid.items():
        if not isinstance(values, list) or not values:
            raise UsageError(f"sweep file {path}: grid axis {axis!r} must be a non-empty list of values")
    cells = spec.get("cells", [])
    if not isinstance(cells, list) or not all(isinstance(c, dict) for c in cells):
        raise UsageError(f"sweep file {path}: [[cells]] must be tables of settings")
    extra = sorted(set(spec.get("sweep", {})) - {"reference", "out"})
    if extra:
        raise UsageError(f"sweep file {path}: unknown [sweep] keys {extra}; use reference, out")
    if not grid and not cells:
        raise UsageError(f"sweep file {path}: no cells (give a [grid] or [[cells]])")
    return spec


def cells_of(spec: dict) -> list[dict]:
    """The cells' settings as given (before defaults): the grid's product, then the explicit cells."""
    base = dict(spec.get("study", {}))
    grid = spec.get("grid", {})
    axes = list(grid)
    cells = [{**base, **dict(zip(axes, combo))} for combo in itertools.product(*(grid[a] for a in axes))] if axes else []
    cells += [{**base, **cell} for cell in spec.get("cells", [])]
    return cells


def cell_id(settings: dict) -> str:
    """A stable name for a cell: the hash of its full settings."""
    text = json.dumps(settings, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _axes(resolved: list[dict]) -> list[str]:
    """The settings that differ between cells (the sweep's axes), in a stable order."""
    keys = sorted(set().union(*resolved))
    return [k for k in keys if len({json.dumps(r.get(k), default=str) for r in resolved}) > 1]


def _rows(cid: str, settings: dict, axes: list[str], result, normalize):
    """One row per method × run of a finished cell."""
    import pandas as pd

    from mrjax.router._metrics import run_areas

    area, reach = run_areas(result.efficiency, result.random, result.oracle, result.grid, normalize)
    R, M = result.rmse.shape
    frame = pd.DataFrame({
        "cell": cid,
        "method": np.tile(np.asarray(result.methods), R),
        "run": np.repeat(np.arange(R), M),
        "area": area.reshape(-1), "reach": reach.reshape(-1), "psi_rmse": result.rmse.reshape(-1).astype(np.float64),
        "nonfinite": result.nonfinite.reshape(-1),
    })
    for a in reversed(axes):
        value = settings.get(a)
        frame.insert(1, a, ",".join(value) if isinstance(value, list) else value)
    return frame


def _write_cell(out: str, cid: str, frame) -> None:
    """Write a cell's rows whole or not at all (``write_table``: a temporary name, then a rename)."""
    from mrjax.data._tables import write_table

    write_table(frame, os.path.join(out, CELL_FILE.format(cid, "parquet" if _has_parquet() else "csv")))


def _has_parquet() -> bool:
    import importlib.util

    return importlib.util.find_spec("pyarrow") is not None


def _finished(out: str, cid: str, expected_rows: int):
    """A finished cell's rows, or None (absent, or not the rows it should hold: redone)."""
    from mrjax.data._tables import read_table

    for ext in ("parquet", "csv"):
        path = os.path.join(out, CELL_FILE.format(cid, ext))
        if os.path.isfile(path):
            try:
                frame = read_table(path)
            except ValueError:
                return None
            return frame if len(frame) == expected_rows else None
    return None


def summarize(frame, reference: str | None):
    """Per cell × method: mean and standard error of the per-run area and ψ̂ RMSE, and the paired difference
    against ``reference`` run by run (runs where both are defined)."""
    import pandas as pd

    rows = []
    for (cid, method), g in frame.groupby(["cell", "method"], sort=False):
        row = {"cell": cid, "method": method, "runs": len(g)}
        for col in ("area", "psi_rmse"):
            v = g[col].to_numpy(np.float64)
            v = v[np.isfinite(v)]
            row[f"{col}_mean"] = v.mean() if len(v) else np.nan
            row[f"{col}_se"] = v.std(ddof=1) / np.sqrt(len(v)) if len(v) > 1 else np.nan
        if reference is not None:
            ref = frame[(frame.cell == cid) & (frame.method == reference)].set_index("run")
            for col in ("area", "psi_rmse"):
                d = (g.set_index("run")[col] - ref[col]).to_numpy(np.float64)
                d = d[np.isfinite(d)]
                row[f"{col}_diff_vs_{reference}"] = d.mean() if len(d) else np.nan
                row[f"{col}_diff_se"] = d.std(ddof=1) / np.sqrt(len(d)) if len(d) > 1 else np.nan
        rows.append(row)
    return pd.DataFrame(rows)


def sweep(args) -> int:
    import pandas as pd

    from mrjax.cli._study import execute, resolve, study_config

    spec = _read(args.grid)
    out = args.out or spec.get("sweep", {}).get("out", "sweep")
    reference = spec.get("sweep", {}).get("reference")
    given = cells_of(spec)
    resolved = []
    for i, cell in enumerate(given):
        if "out" in cell:
            raise UsageError("the output folder is the sweep's ([sweep] out or --out), not a cell setting")
        try:
            settings = resolve(cell)
            study_config(settings)  # every cell checked before any runs
        except UsageError as err:
            raise UsageError(f"cell {i + 1} ({json.dumps(cell, default=str)}): {err}") from None
        resolved.append({k: v for k, v in settings.items() if k != "out"})
    methods = {tuple(r["methods"]) for r in resolved}
    if reference is not None and any(reference not in m for m in methods):
        raise UsageError(f"[sweep] reference {reference!r} is not among every cell's methods")
    ids = [cell_id(r) for r in resolved]
    if len(set(ids)) != len(ids):
        raise UsageError("two cells have the same settings; each cell must differ")
    axes = _axes(resolved)
    if args.report:
        return _report(out, args)
    manifest = {"sweep_file": os.path.abspath(args.grid), "spec": spec, "axes": axes, "reference": reference,
                "cells": [{"id": c, "settings": r} for c, r in zip(ids, resolved)]}
    write = writer()
    if write:
        _prepare(out, manifest, args.overwrite)
    expected = [int(r["runs"]) * len(r["methods"]) for r in resolved]
    kept = [_finished(out, cid, n) if write else None for cid, n in zip(ids, expected)]
    todo = np.asarray([k is None for k in kept])
    import jax

    if jax.process_count() > 1:  # the first process read the folder; every process runs the same cells
        from jax.experimental import multihost_utils

        todo = np.asarray(multihost_utils.broadcast_one_to_all(todo))
    from tqdm import tqdm

    bar = tqdm(total=len(ids), desc="mrjax: sweep cells", unit="cell", disable=args.quiet or not write)
    frames, redone = [], 0
    for i, (cid, settings) in enumerate(zip(ids, resolved)):
        frame = kept[i]
        if todo[i]:
            config, result = execute({**settings}, progress=not args.quiet and write)
            if int(np.sum(result.nonfinite)):
                raise Failed(f"cell {cid}: non-finite ψ̂ in some runs; finished cells are kept in {out}")
            frame = _rows(cid, settings, axes, result, settings["normalize"])
            if write:
                _write_cell(out, cid, frame)
            redone += 1
        frames.append(frame)
        bar.update(1)
    bar.close()
    if not write:
        return 0
    frame = pd.concat(frames, ignore_index=True)
    from mrjax.data._tables import write_table

    write_table(frame, os.path.join(out, "results.parquet" if _has_parquet() else "results.csv"))
    summary = summarize(frame, reference)
    cell_axes = frame.drop_duplicates("cell").set_index("cell")[axes] if axes else None
    if cell_axes is not None:
        summary = summary.join(cell_axes, on="cell")
    write_table(summary, os.path.join(out, "summary.csv"))
    with open(os.path.join(out, "sweep.json"), "w") as f:
        json.dump({**manifest, **run_meta(), "complete": True}, f, indent=2, default=str)
    if not args.quiet:
        shown = summary[[c for c in ["cell", *axes, "method", "area_mean", "area_se", "psi_rmse_mean"] if c in summary]]
        print(shown.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
        print(f"{len(ids)} cells ({redone} run now, {len(ids) - redone} kept from before); wrote {out}/results, "
              "summary.csv, sweep.json")
    return 0


def _prepare(out: str, manifest: dict, overwrite: bool) -> None:
    """Make ``out`` ready: new, or the same sweep to resume (leftover temporary files removed)."""
    import shutil

    path = os.path.join(out, "sweep.json")
    if os.path.exists(out) and not os.path.isdir(out):
        raise UsageError(f"--out {out}: exists and is not a folder")
    if os.path.isdir(out):
        try:
            with open(path) as f:
                before = json.load(f)
        except (OSError, json.JSONDecodeError):
            before = None
        same = before is not None and [c["id"] for c in before.get("cells", [])] == [c["id"] for c in manifest["cells"]]
        if not same:
            if not overwrite:
                raise UsageError(f"--out {out}: holds something other than this sweep; choose another folder or pass "
                                 "--overwrite to replace it")
            shutil.rmtree(out)
    os.makedirs(os.path.join(out, "cells"), exist_ok=True)
    for tmp in glob.glob(os.path.join(out, "cells", ".*")):
        os.remove(tmp)  # a cell interrupted while being written (a temporary name): it will be redone
    with open(path, "w") as f:
        json.dump({**manifest, "complete": False}, f, indent=2, default=str)


def _report(out: str, args) -> int:
    """Figures of a finished sweep: the per-run area of each method against each swept axis (mean over runs and
    over the other axes' cells, ±1.96 standard errors)."""
    from mrjax.cli._figures import plot_sweep
    from mrjax.data._tables import read_table

    path = os.path.join(out, "sweep.json")
    try:
        with open(path) as f:
            manifest = json.load(f)
    except (OSError, json.JSONDecodeError):
        raise UsageError(f"{out}: no finished sweep here (sweep.json missing)") from None
    if not manifest.get("complete"):
        raise UsageError(f"{out}: the sweep has not finished; run it again to resume, then --report")
    results = [p for p in (os.path.join(out, "results.parquet"), os.path.join(out, "results.csv")) if os.path.isfile(p)]
    if not results:
        raise UsageError(f"{out}: results are missing")
    frame = read_table(results[0])
    axes = [a for a in manifest["axes"] if a in frame.columns]
    if not axes:
        raise UsageError(f"{out}: no axis varies between cells; nothing to draw")
    written = []
    for axis in axes:
        stem = os.path.join(out, f"sweep_{axis}")
        plot_sweep(stem, frame, axis)
        written.append(os.path.basename(stem))
    if not args.quiet:
        print(f"wrote {', '.join(w + '.png' for w in written)} (and .pdf, .svg) in {out}")
    return 0
