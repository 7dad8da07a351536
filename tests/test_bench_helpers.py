"""The benchmarks' helpers: the docs' provenance line (benchmarks/_meta.py, report.py) and the reproducibility
of the random-forest peer they compare against (benchmarks/_rf.py)."""
import pathlib
import sys

import jax
import numpy as np
import pytest

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "benchmarks"))
from _meta import command  # noqa: E402
from report import _meta_line  # noqa: E402

from mrjax.data import paper_like  # noqa: E402

META = {"mrjax": "0.1.0", "jax": "0.9.2", "device_kind": "cpu", "n_devices": 1, "cpu_count": 2,
        "commit": "0123456789abcdef", "date": "2026-12-04T00:00:00+00:00"}


def test_command_reruns_from_the_repository_root_with_quoted_options():
    argv = ["/somewhere/else/benchmarks/bench_sizes.py", "--sizes", "10000", "--methods", "meta_r,golden",
            "--out", "results/a b.json"]
    assert command(argv) == ("python benchmarks/bench_sizes.py --sizes 10000 --methods meta_r,golden "
                             "--out 'results/a b.json'")


def test_meta_line_names_the_command_when_recorded():
    line = _meta_line({**META, "command": "python benchmarks/bench_sizes.py --runs 200"})
    assert line.endswith("; run as `python benchmarks/bench_sizes.py --runs 200`")
    assert "run as" not in _meta_line(META)   # JSON written before the command was recorded


def test_random_forest_peer_gives_the_same_quality_twice():
    # Its threaded tree sums used to round by thread timing, and the R and DR pseudo-outcomes' trimming of
    # in-sample propensities at exactly 0.05 from 0 or 1 turned that rounding into different rows.
    pytest.importorskip("sklearn")
    from _rf import rf_quality

    sim = paper_like(jax.random.key(0), n_gold=100, n_preference=1400, n_test=200)
    args = [np.asarray(a, np.float64) for a in (sim.data.features, sim.data.is_gold, sim.data.label,
                                                 sim.test_features)]
    for method in ("meta_r", "meta_dr"):
        first, second = rf_quality(method, *args), rf_quality(method, *args)
        assert np.array_equal(first, second), method
