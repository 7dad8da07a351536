"""``mrjax sweep``: numbers do not recompile, results are tidy, and an interrupted sweep resumes to the same bits."""
import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pandas as pd
import pytest

from mrjax.cli import main
from mrjax.data._tables import read_table
from mrjax.sim import _study

SMALL = """
[study]
runs = 4
methods = ["meta_r", "golden", "pooled"]
n_test = 40
n_gold = 20
n_preference = 80
n_features = 8
n_features_rff = 16
batch_size = 2
[sweep]
reference = "golden"
"""


def _grid(tmp_path, grid, name="grid.toml", relevance=True):
    path = tmp_path / name
    # Without the relevance each process compiles in about half the time; the tests that set it test how
    # cells are written, resumed and shared between processes (a run's bits with it: test_study).
    path.write_text((SMALL if relevance else SMALL.replace("batch_size = 2\n", "batch_size = 2\nrelevance = false\n")) + grid)
    return str(path)


@pytest.mark.slow  # end to end
def test_a_sweep_over_numbers_compiles_once_and_writes_tidy_results(tmp_path, capsys):
    path = _grid(tmp_path, "[grid]\npreference_weight = [0.25, 1.0]\nbias_strength = [0.5, 2.0]\ngold_noise = [0.3]\n")
    out = str(tmp_path / "sweep")
    _study._compiled.cache_clear()
    assert main(["sweep", path, "--out", out, "--quiet"]) == 0
    info = _study._compiled.cache_info()
    assert info.currsize == 1  # four cells, one program key
    import tomllib

    import jax

    from mrjax.cli._study import resolve, study_config

    config = study_config(resolve(tomllib.loads(SMALL)["study"]))
    batched, _, _ = _study._program(config, tuple(jax.devices()), None, False)
    assert _study._compiled.cache_info().currsize == 1 and batched._cache_size() == 1  # and it compiled once
    results = read_table(os.path.join(out, "results.parquet"))
    assert len(results) == 4 * 3 * 4  # cells × methods × runs
    assert {"cell", "bias_strength", "preference_weight", "method", "run", "area", "psi_rmse"} <= set(results.columns)
    assert "gold_noise" not in results.columns  # an axis with one value is a shared setting
    # Golden ignores the preference rows: its runs are equal in every cell; the Meta-Router's move with λ.
    golden = results[results.method == "golden"].pivot(index="run", columns="cell", values="area")
    assert np.allclose(golden.to_numpy(), golden.to_numpy()[:, :1])
    meta = results[results.method == "meta_r"].pivot(index="run", columns="cell", values="psi_rmse")
    assert np.ptp(meta.to_numpy(), axis=1).min() > 0
    summary = pd.read_csv(os.path.join(out, "summary.csv"))
    row = summary[(summary.method == "meta_r")].iloc[0]
    cell = results[(results.cell == row.cell)]
    d = cell[cell.method == "meta_r"].set_index("run").area - cell[cell.method == "golden"].set_index("run").area
    assert row.area_diff_vs_golden == pytest.approx(d.mean()) and row.area_diff_se == pytest.approx(d.std() / 2)
    manifest = json.load(open(os.path.join(out, "sweep.json")))
    assert manifest["complete"] and manifest["axes"] == ["bias_strength", "preference_weight"]
    assert main(["sweep", path, "--out", out, "--report", "--quiet"]) == 0
    assert {"sweep_bias_strength.png", "sweep_preference_weight.pdf"} <= set(os.listdir(out))


def test_sweep_mistakes_are_usage_errors(tmp_path, capsys):
    assert main(["sweep", _grid(tmp_path, "[grid]\nbogus = [1]\n"), "--out", str(tmp_path / "a")]) == 2
    assert "unknown settings ['bogus']" in capsys.readouterr().err
    assert main(["sweep", _grid(tmp_path, "[grid]\nn_gold = [2]\n"), "--out", str(tmp_path / "a")]) == 2
    assert "cell 1" in capsys.readouterr().err  # n_gold below n_folds, found before any run
    assert not os.path.exists(tmp_path / "a")


@pytest.mark.slow
def test_an_interrupted_sweep_resumes_to_the_same_bits(tmp_path):
    path = _grid(tmp_path, "[grid]\nn_gold = [20, 30]\npreference_weight = [0.5, 1.0]\n", relevance=False)
    whole = str(tmp_path / "whole")
    assert main(["sweep", path, "--out", whole, "--quiet"]) == 0
    part = str(tmp_path / "part")
    proc = subprocess.Popen([sys.executable, "-m", "mrjax", "sweep", path, "--out", part, "--quiet"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    cells = os.path.join(part, "cells")
    deadline = time.time() + 300
    while time.time() < deadline and not (os.path.isdir(cells) and any(f.endswith(".parquet") and not f.startswith(".")
                                                                       for f in os.listdir(cells))):
        time.sleep(0.2)
    proc.send_signal(signal.SIGKILL)  # killed mid-sweep: one or more cells done, maybe one half-written
    proc.wait()
    done = [f for f in os.listdir(cells) if not f.startswith(".")]
    assert 1 <= len(done) < 4
    (tmp_path / "part" / "cells" / ".tmp-deadbeef.parquet").write_bytes(b"half a file")  # a half-written cell
    broken = os.path.join(cells, done[0])
    read_table(broken).iloc[:3].to_parquet(broken)  # and a finished cell file that lost rows: redone
    assert main(["sweep", path, "--out", part, "--quiet"]) == 0
    assert not any(f.startswith(".tmp-") for f in os.listdir(cells))
    a = read_table(os.path.join(whole, "results.parquet"))
    b = read_table(os.path.join(part, "results.parquet"))
    pd.testing.assert_frame_equal(a, b, check_exact=True)


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_two_processes_with_two_devices_each_give_the_same_bits(tmp_path):
    """jax.distributed on this machine: two processes of two CPU devices each shard every cell's runs over
    four devices; the first process writes. The results equal a one-process sweep bit for bit."""
    path = _grid(tmp_path, "[grid]\npreference_weight = [0.5, 1.0]\n", relevance=False)
    # 8 runs in batches of 2 per device: the same per-device batch on one device and on four.
    text = open(path).read().replace("runs = 4", "runs = 8")
    open(path, "w").write(text)
    one = str(tmp_path / "one")
    assert main(["sweep", path, "--out", one, "--quiet"]) == 0
    two = str(tmp_path / "two")
    port = _free_port()
    procs = [subprocess.Popen([sys.executable, "-m", "mrjax", "sweep", path, "--out", two, "--quiet"],
                              env={**os.environ, "MRJAX_COORDINATOR": f"127.0.0.1:{port}", "MRJAX_NUM_PROCESSES": "2",
                                   "MRJAX_PROCESS_ID": str(i), "MRJAX_CPU_DEVICES": "2"},
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for i in range(2)]
    for p in procs:
        _, err = p.communicate(timeout=600)
        assert p.returncode == 0, err[-2000:]
    a = read_table(os.path.join(one, "results.parquet"))
    b = read_table(os.path.join(two, "results.parquet"))
    pd.testing.assert_frame_equal(a, b, check_exact=True)
    meta = json.load(open(os.path.join(two, "sweep.json")))
    assert meta["n_devices"] == 4 and meta["n_processes"] == 2


@pytest.mark.slow  # compile-heavy: kept out of the fast tier
def test_another_real_data_pool_of_the_same_shape_reuses_the_program():
    """Real-data pools are program arguments: a judge setting changes the preference labels, not the program."""
    import jax

    from mrjax.sim import StudyConfig, run_study

    rng = np.random.default_rng(0)
    N, d = 160, 12
    E = rng.normal(size=(N, d)).astype(np.float32)
    GL = rng.choice([-1.0, 0.0, 1.0], size=N).astype(np.float32)
    config = StudyConfig(n_runs=2, methods=("meta_r", "golden"), n_test=40, n_gold=20, n_preference=N - 60,
                         n_components=4, n_features_rff=8, batch_size=2, standardize="common")
    _study._compiled.cache_clear()
    labels = [np.where(rng.random(N) < p, 1.0, -1.0).astype(np.float32) for p in (0.3, 0.7)]
    results = [run_study(jax.random.key(0), config, pool=(E, GL, PL), progress=False) for PL in labels]
    assert _study._compiled.cache_info().currsize == 1
    batched, _, _ = _study._program(config, tuple(jax.devices()), None, True)
    assert batched._cache_size() == 1  # one program for both pools
    golden = [r.rmse[:, 1] for r in results]
    assert np.array_equal(golden[0], golden[1])  # gold-only ignores the preference labels
    assert not np.array_equal(results[0].rmse[:, 0], results[1].rmse[:, 0])  # the Meta-Router does not
