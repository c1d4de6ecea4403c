"""Writing results: atomic Parquet and JSON files and the companions of an output table.

Beside an output ``X.parquet`` go ``X.views.parquet`` (per-view results), ``X.summary.json``
(dataset-level figures) and ``X.skipped.parquet`` (``path``, ``reason``) (docs/architecture.md).
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

from biasprobe import __version__
from biasprobe.core.errors import InputError

__all__ = [
    "atomic_write_bytes",
    "companion",
    "read_table",
    "save_npy",
    "to_jsonable",
    "write_json",
    "write_table",
]


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    """Write to a temporary file in the same folder, then ``os.replace`` it into place."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600 files; results are for sharing
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def companion(path: str | Path, kind: str) -> Path:
    """``X.parquet`` -> ``X.<kind>.parquet`` (or ``X.summary.json`` for kind 'summary')."""
    path = Path(path)
    stem = path.name.removesuffix(".parquet")
    suffix = ".json" if kind == "summary" else ".parquet"
    return path.with_name(f"{stem}.{kind}{suffix}")


def save_npy(array: np.ndarray, path: str | Path) -> Path:
    """Write a numpy array as ``.npy``, atomically (dtype and layout kept)."""
    import io

    buffer = io.BytesIO()
    np.save(buffer, np.ascontiguousarray(array))
    atomic_write_bytes(path, buffer.getvalue())
    return Path(path)


def write_table(frame: pd.DataFrame, path: str | Path) -> Path:
    """Write a DataFrame as Parquet, atomically, recording the biasprobe version."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.Table.from_pandas(frame, preserve_index=False)
    table = table.replace_schema_metadata({**(table.schema.metadata or {}), b"biasprobe_version": __version__.encode()})
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink)
    atomic_write_bytes(path, sink.getvalue().to_pybytes())
    return Path(path)


def read_table(path: str | Path) -> pd.DataFrame:
    """Read a Parquet table, with a clear error when it is missing or not Parquet."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"table not found: {path}")
    try:
        return pd.read_parquet(path)
    except Exception as exc:  # pyarrow raises several types
        raise InputError(f"cannot read Parquet table {path}: {str(exc).splitlines()[0]}") from exc


def to_jsonable(value: object) -> object:
    """Numpy scalars and arrays, NaN (as null), paths and tuples into plain JSON values."""
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return [to_jsonable(v) for v in value.tolist()]
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (np.floating, float)):
        return None if math.isnan(float(value)) else float(value)
    if isinstance(value, np.bool_):
        return bool(value)
    if isinstance(value, Path):
        return str(value)
    return value


def write_json(obj: object, path: str | Path) -> Path:
    """Write JSON atomically (NaN becomes null)."""
    text = json.dumps(to_jsonable(obj), indent=2, allow_nan=False)
    atomic_write_bytes(path, (text + "\n").encode())
    return Path(path)
