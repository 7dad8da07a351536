"""Tables on disk: CSV, Parquet and JSON Lines in and out, and the choice of feature columns.

The format follows the file's extension. Reading errors name the file and the format; writing goes
to a temporary file beside the target, moved into place when complete.
"""
from __future__ import annotations

import os
import tempfile
from typing import Sequence

FORMATS = {".csv": "csv", ".tsv": "tsv", ".parquet": "parquet", ".pq": "parquet", ".jsonl": "jsonl",
           ".ndjson": "jsonl", ".json": "jsonl"}


def table_format(path: str) -> str:
    """``csv``, ``tsv``, ``parquet`` or ``jsonl`` from the extension (``ValueError`` naming the others)."""
    ext = os.path.splitext(path)[1].lower()
    if ext not in FORMATS:
        raise ValueError(f"{path}: unknown table format {ext or '(no extension)'!r}; use one of {sorted(FORMATS)}")
    return FORMATS[ext]


def _parquet_engine(path: str) -> None:
    import importlib.util

    if importlib.util.find_spec("pyarrow") is None:
        raise ValueError(f"{path}: Parquet needs pyarrow (pip install pyarrow), or use CSV or JSON Lines")


def read_table(path: str):
    """A pandas DataFrame from a CSV, TSV, Parquet or JSON Lines file."""
    import pandas as pd

    kind = table_format(path)
    if not os.path.isfile(path):
        raise ValueError(f"{path}: no such file")
    if kind == "parquet":
        _parquet_engine(path)
    try:
        if kind in ("csv", "tsv"):
            frame = pd.read_csv(path, sep="," if kind == "csv" else "\t")
        elif kind == "parquet":
            frame = pd.read_parquet(path)
        else:
            frame = pd.read_json(path, lines=True)
    except (OSError, ValueError, UnicodeDecodeError, pd.errors.ParserError) as err:
        raise ValueError(f"{path}: cannot read it as {kind.upper()} ({str(err).splitlines()[0] if str(err) else err!r})") \
            from None
    if len(frame) == 0:
        raise ValueError(f"{path}: the table has no rows")
    return frame


def write_table(frame, path: str) -> None:
    """Write ``frame`` (without its index) to ``path`` in the format of its extension, whole or not at all."""
    kind = table_format(path)
    if kind == "parquet":
        _parquet_engine(path)
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".mrjax-", suffix=os.path.splitext(path)[1], dir=folder)
    os.close(fd)
    try:
        if kind in ("csv", "tsv"):
            frame.to_csv(tmp, index=False, sep="," if kind == "csv" else "\t")
        elif kind == "parquet":
            frame.to_parquet(tmp, index=False)
        else:
            frame.to_json(tmp, orient="records", lines=True)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; results are for colleagues too
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def feature_columns(frame, columns: Sequence[str] | None = None, prefix: str | None = None) -> list[str]:
    """The feature columns: the ``columns`` named, or every column whose name starts with ``prefix``."""
    if (columns is None) == (prefix is None):
        raise ValueError("name the feature columns or give their prefix (exactly one)")
    if prefix is not None:
        found = [str(c) for c in frame.columns if str(c).startswith(prefix)]
        if not found:
            raise ValueError(f"no column starts with {prefix!r}; the table has {list(frame.columns)[:20]}")
        return found
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ValueError(f"feature columns not in the table: {missing[:10]}; it has {list(frame.columns)[:20]}")
    return list(columns)
