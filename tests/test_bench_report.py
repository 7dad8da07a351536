"""The benchmark docs' provenance line (benchmarks/_meta.py, benchmarks/report.py): the command a section came from."""
import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "benchmarks"))
from _meta import command  # noqa: E402
from report import _meta_line  # noqa: E402

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
