import atexit
import os
import shutil
import tempfile

# One on-disk compilation cache for the test session, empty at its start: the xdist workers and the CLI and
# notebook subprocesses inherit these variables, so a program one process compiled is loaded by the others
# rather than compiled again (a default fit compiles for seconds in each). XLA's CPU loader logs a feature
# mismatch at error level when it loads an entry compiled on this same machine; TF_CPP_MIN_LOG_LEVEL quiets it.
if "JAX_COMPILATION_CACHE_DIR" not in os.environ:
    _cache = tempfile.mkdtemp(prefix="mrjax-tests-jax-cache-")
    atexit.register(shutil.rmtree, _cache, ignore_errors=True)
    os.environ.update(JAX_COMPILATION_CACHE_DIR=_cache, JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS="0.5",
                      TF_CPP_MIN_LOG_LEVEL=os.environ.get("TF_CPP_MIN_LOG_LEVEL", "3"))


def _cpu_only() -> bool:
    """No accelerator plugin installed (CUDA, ROCm or TPU): JAX will compile for the CPU only."""
    import importlib.metadata
    import importlib.util

    return not importlib.metadata.entry_points(group="jax_plugins") and importlib.util.find_spec("libtpu") is None


# On a CPU-only install the session compiles with LLVM at optimisation level 0: XLA's own (HLO) optimisations
# all still run, so the programs are the same, and compilation, most of a whole run's time, takes about half
# as long. Level 0 forms no FMA instructions, so results can differ from level 3's in the last bits
# (docs/design.md); the few tests whose programs run long compile them with FULL_OPTIMIZATION. Subprocesses
# inherit it. A level the caller set is kept (XLA_FLAGS=--xla_backend_optimization_level=3 checks the default).
if _cpu_only() and "xla_backend_optimization_level" not in os.environ.get("XLA_FLAGS", ""):
    os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + " --xla_backend_optimization_level=0").strip()

# XLA's default optimisation, for ``jax.jit(…, compiler_options=FULL_OPTIMIZATION)`` on a test's long-running program.
FULL_OPTIMIZATION = {"xla_backend_optimization_level": 3}

import jax  # noqa: E402 (after the cache's and XLA's variables)

jax.config.update("jax_numpy_rank_promotion", "raise")


def pytest_configure(config):
    """Each xdist worker (and the processes it starts) runs on its own share of the cores, set before any test
    starts JAX's CPU client so that its threads inherit it: XLA's CPU runtime sizes its thread pool to the
    cores a process may use, and two processes whose pools span the same cores slow each other several-fold
    (measured in docs/design.md, "Tests and compilation")."""
    worker = getattr(config, "workerinput", None)
    if worker is None or not hasattr(os, "sched_setaffinity"):
        return
    cpus, n = sorted(os.sched_getaffinity(0)), int(worker["workercount"])
    if n <= len(cpus):
        # A worker that replaces a crashed one gets the next id (gw2 of 2): it takes the crashed one's share.
        os.sched_setaffinity(0, cpus[int(worker["workerid"].removeprefix("gw")) % n::n])


# Real data (RouteLLM's evaluations and the nine-model set): $MRJAX_DATA, by default ../shared/data
# beside this checkout. Tests that need it skip with the path in their reason (shown by -rs).
SHARED_DATA = os.environ.get("MRJAX_DATA") or os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data")


def labelled_frame(n=240, d=4, seed=0):
    """A small two-source table: features ``x0 …`` (indexed ``row0 …``), labels, and which rows are gold (the
    first quarter); preference labels are ``0.7 ψ + 0.3`` plus noise."""
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d))
    gold = np.zeros(n, bool)
    gold[: n // 4] = True
    psi = X[:, 0] - 0.5 * X[:, 1]
    label = np.where(gold, psi, 0.7 * psi + 0.3) + 0.1 * rng.normal(size=n)
    return pd.DataFrame(X, columns=[f"x{i}" for i in range(d)], index=[f"row{i}" for i in range(n)]), label, gold
