"""The README's quick start runs as written (an end-to-end test: slow tier)."""
import pathlib

import numpy as np
import pytest

README = pathlib.Path(__file__).resolve().parents[1] / "README.md"


def _quick_start() -> str:
    text = README.read_text()
    section = text.split("## Quick start", 1)[1]
    return section.split("```python", 1)[1].split("```", 1)[0]


def test_readme_opens_with_the_two_commands():
    lines = README.read_text().splitlines()
    block = lines[lines.index("```bash") + 1: lines.index("```bash") + 3]
    assert "mrjax study" in block[0] and "python -m pytest" in block[1]
    ci = (README.parent / ".ci" / "run").read_text()
    assert block[1].split("#")[0].strip() in ci  # CI calls the very test command the README gives
    assert len(lines) <= 130, f"the README is the product page (about 120 lines), it has {len(lines)}"


@pytest.mark.slow
def test_quick_start_runs_as_written(capsys):
    namespace: dict = {}
    exec(compile(_quick_start(), str(README), "exec"), namespace)
    assert abs(namespace["to_primary"].mean() - 0.3) <= 1 / 500 + 1e-12  # the calibrated share, within one query
    usage, psi = namespace["usage"], namespace["psi"]
    weights = np.linspace(-1, 2, 10_000).astype(np.float32)
    np.testing.assert_allclose(usage, (psi[None, :] > weights[:, None]).mean(axis=1), rtol=0, atol=1e-6)
    assert np.all(namespace["lower"] <= namespace["upper"])
    assert "routed 30% of queries" in capsys.readouterr().out
