"""What every benchmark JSON records about the run: versions, commit, device, date, and the command."""
from __future__ import annotations

import datetime
import os
import platform
import shlex
import subprocess
import sys


def run_meta() -> dict:
    import jax

    import mrjax

    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    try:
        commit = subprocess.run(["git", "-C", root, "rev-parse", "HEAD"], capture_output=True, text=True,
                                check=True).stdout.strip()
        dirty = bool(subprocess.run(["git", "-C", root, "status", "--porcelain", "--untracked-files=no"],
                                    capture_output=True, text=True).stdout.strip())
    except (OSError, subprocess.CalledProcessError):
        commit, dirty = "unknown", False
    return {
        "mrjax": mrjax.__version__, "jax": jax.__version__, "python": platform.python_version(),
        "commit": commit + ("+dirty" if dirty else ""), "device": str(jax.devices()[0]),
        "device_kind": jax.devices()[0].device_kind, "n_devices": jax.device_count(),
        "cpu_count": os.cpu_count(), "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "command": command(sys.argv),
    }


def command(argv: list[str]) -> str:
    """The command line that reruns this benchmark from the repository root (a tagged file's section in the
    docs says which options made it)."""
    script = os.path.join("benchmarks", os.path.basename(argv[0])) if argv else "?"
    return shlex.join(["python", script, *argv[1:]])


def write_result(path: str, result: dict, indent: int = 2) -> None:
    """Write a benchmark's JSON whole or not at all (a temporary file, then a rename)."""
    import json

    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path + ".tmp", "w") as f:
        json.dump(result, f, indent=indent)
    os.replace(path + ".tmp", path)
