"""What every subcommand shares: its error types, the argument parser's promise, and run metadata."""
from __future__ import annotations

import argparse
import os
import subprocess
import sys

import numpy as np


class UsageError(Exception):
    """A mistake in the command line, its settings or its input files: one line, exit status 2, nothing written."""


class Failed(Exception):
    """The command ran but its results cannot be reported: one line, exit status 1, nothing written."""


class Parser(argparse.ArgumentParser):
    """argparse with the command's promise: a usage mistake is one line on stderr and exit status 2."""

    def error(self, message):
        self.exit(2, f"mrjax: error: {message} (see {self.prog} --help)\n")


def num(x):
    """A float for JSON (None for NaN or infinite)."""
    x = float(x)
    return x if np.isfinite(x) else None


def run_meta() -> dict:
    """Versions, commit (when run from a checkout), device and command line: recorded in every results file."""
    import jax

    from mrjax._persist import versions

    commit = None
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    if os.path.isdir(os.path.join(root, ".git")):
        try:
            commit = subprocess.run(["git", "-C", root, "rev-parse", "HEAD"], capture_output=True, text=True,
                                    timeout=10).stdout.strip() or None
        except (OSError, subprocess.SubprocessError):
            commit = None
    return {"versions": versions(), "commit": commit, "device": str(jax.devices()[0]), "n_devices": jax.device_count(),
            "n_processes": jax.process_count(),
            "argv": sys.argv[1:]}


def distributed() -> None:
    """Join a multi-controller run when the environment asks for one (before JAX starts its backends).

    ``MRJAX_COORDINATOR=host:port`` with ``MRJAX_NUM_PROCESSES`` and ``MRJAX_PROCESS_ID`` (any launcher), or
    ``MRJAX_DISTRIBUTED=auto`` (JAX's own detection: SLURM, Open MPI, Cloud TPU). ``MRJAX_CPU_DEVICES=k`` splits
    each process's CPU into k devices (to try a multi-device layout on one machine).
    """
    import jax

    cpu = os.environ.get("MRJAX_CPU_DEVICES")
    if cpu:
        jax.config.update("jax_num_cpu_devices", int(cpu))
    coordinator = os.environ.get("MRJAX_COORDINATOR")
    try:
        if coordinator:
            jax.distributed.initialize(coordinator_address=coordinator,
                                       num_processes=int(os.environ["MRJAX_NUM_PROCESSES"]),
                                       process_id=int(os.environ["MRJAX_PROCESS_ID"]))
        elif os.environ.get("MRJAX_DISTRIBUTED") == "auto":
            jax.distributed.initialize()
    except KeyError as err:
        raise UsageError(f"MRJAX_COORDINATOR needs {err.args[0]} too") from None
    except ValueError as err:
        raise UsageError(f"MRJAX_NUM_PROCESSES and MRJAX_PROCESS_ID must be integers ({err})") from None


def writer() -> bool:
    """Whether this process writes results (one process of a multi-controller run: the first)."""
    import jax

    return jax.process_index() == 0
