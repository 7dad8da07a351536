"""Results folders written once or not at all (the command line's only file output).

A results folder is checked before any work (a folder, writable, not kept by accident), filled as a
fresh hidden sibling, and swapped in by renames: at every moment the destination holds either the
complete old results or the complete new ones, never a mix. Temporary folders are removed on every
exit path Python sees (errors, Ctrl-C, SIGTERM); the ones a SIGKILL leaves behind are recognised by
the dead process id in their name and removed by the next run in that parent folder.
"""
from __future__ import annotations

import contextlib
import os
import shutil
import signal
import tempfile

PREFIX = ".mrjax-tmp-"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _clean_orphans(parent: str) -> None:
    for name in os.listdir(parent):
        if name.startswith(PREFIX):
            pid = name[len(PREFIX):].split("-", 1)[0]
            if pid.isdigit() and not _alive(int(pid)):
                shutil.rmtree(os.path.join(parent, name), ignore_errors=True)


def check_destination(out: str, overwrite: bool) -> None:
    """Raise ``ValueError`` naming the problem unless ``out`` can take new results."""
    path = os.path.abspath(out)
    if os.path.exists(path) and not os.path.isdir(path):
        raise ValueError(f"--out {out}: exists and is not a folder")
    if os.path.isdir(path) and not overwrite:
        raise ValueError(f"--out {out}: the folder exists; choose another or pass --overwrite to replace it")
    parent = os.path.dirname(path)
    try:
        os.makedirs(parent, exist_ok=True)
        probe = tempfile.mkdtemp(prefix=f"{PREFIX}{os.getpid()}-", dir=parent)
        os.rmdir(probe)
    except OSError as err:
        raise ValueError(f"--out {out}: cannot write in {parent} ({err.strerror or err})") from None
    _clean_orphans(parent)


@contextlib.contextmanager
def results_folder(out: str):
    """Yield a fresh temporary folder; on success it replaces ``out`` (which may exist) whole.

    On any exception (and on SIGTERM, turned into one) the temporary folder is removed and ``out``
    is left as it was.
    """
    path = os.path.abspath(out)
    parent = os.path.dirname(path)
    tmp = tempfile.mkdtemp(prefix=f"{PREFIX}{os.getpid()}-", dir=parent)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o777 & ~umask)  # mkdtemp makes 0700; results are for colleagues too

    def _term(signum, frame):
        raise SystemExit(128 + signum)

    previous = signal.signal(signal.SIGTERM, _term) if _main_thread() else None
    old = None
    try:
        yield tmp
        if os.path.isdir(path):
            old = tempfile.mkdtemp(prefix=f"{PREFIX}{os.getpid()}-old-", dir=parent)
            os.rmdir(old)
            os.rename(path, old)
        try:
            os.rename(tmp, path)
        except BaseException:
            if old is not None:
                os.rename(old, path)
                old = None
            raise
    finally:
        if os.path.isdir(tmp):
            shutil.rmtree(tmp, ignore_errors=True)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


def _main_thread() -> bool:
    import threading

    return threading.current_thread() is threading.main_thread()
