"""The notebooks are kept without outputs and run from top to bottom (nbclient, small settings)."""
import os
import pathlib
import subprocess
import sys

import nbformat
import pytest

from conftest import SHARED_DATA

NOTEBOOKS = sorted((pathlib.Path(__file__).resolve().parents[1] / "notebooks").glob("*.ipynb"))
# Each kernel talks over Unix sockets in its own short-named directory: kernels started side by side over TCP pick
# free ports independently and can collide ("Address already in use"), which failed a CI run.
RUN = """
import os, sys, tempfile, nbformat
from jupyter_client.manager import KernelManager
from nbclient import NotebookClient
nb = nbformat.read(sys.argv[1], as_version=4)
with tempfile.TemporaryDirectory(prefix="nb") as sockets:
    km = KernelManager(kernel_name="python3", transport="ipc", ip=os.path.join(sockets, "k"))
    NotebookClient(nb, km=km, timeout=900, resources={"metadata": {"path": sys.argv[2]}}).execute()
"""


def test_three_notebooks_are_committed_without_outputs():
    assert [p.name for p in NOTEBOOKS] == ["01_quickstart_routellm_mmlu.ipynb", "02_paper_figure.ipynb",
                                           "03_uncertainty.ipynb"]
    for path in NOTEBOOKS:
        nb = nbformat.read(path, as_version=4)
        nbformat.validate(nb)
        for cell in nb.cells:
            if cell.cell_type == "code":
                assert cell.outputs == [] and cell.execution_count is None, f"{path.name}: outputs not stripped"


@pytest.mark.slow
def test_notebooks_run_top_to_bottom(tmp_path):
    """Each in its own kernel process, one after another on the cores of this test's xdist worker (conftest pins
    each worker to its own): kernels at once would only contend for them. A failing cell fails the test with its
    traceback."""
    if not os.path.isdir(os.path.join(SHARED_DATA, "routellm-evals")):
        pytest.skip(f"RouteLLM data not found under {SHARED_DATA} (set MRJAX_DATA)")
    env = {**os.environ, "MRJAX_QUICK": "1", "MRJAX_DATA": os.path.abspath(SHARED_DATA), "MPLBACKEND": "Agg"}
    failed = {}
    for path in NOTEBOOKS:
        proc = subprocess.run([sys.executable, "-c", RUN, str(path), str(tmp_path)], env=env, capture_output=True,
                              text=True, timeout=900)
        if proc.returncode != 0:
            failed[path.name] = proc.stderr[-3000:]
    assert not failed, "\n\n".join(f"{name}:\n{err}" for name, err in failed.items())
