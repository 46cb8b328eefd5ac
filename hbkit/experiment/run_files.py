"""Readers for a run folder's files: each table and JSON checked, a damaged file named with its fix."""
from __future__ import annotations

import hashlib
import io
import json
from pathlib import Path

import pandas as pd

from hbkit.core.files import atomic_write_json

#: the columns a run folder's tables must have, and those of them no row may leave empty
RUN_TABLES = {
    "results": (["model", "strategy", "alpha", "seed", "benchmark", "setting", "qlang", "dlang", "metric", "value", "n"],
                ["model", "benchmark", "metric"]),
    "aggregate": (["model", "benchmark", "setting", "metric", "mean", "low", "high"], ["model", "benchmark", "metric", "mean"]),
    "effects": (["contrast", "a", "b", "family", "benchmark", "setting", "metric", "diff", "p"],
                ["contrast", "benchmark", "metric", "diff"]),
    "alignment": (["model", "seed", "benchmark", "metric", "value"], ["model", "benchmark", "metric"]),
    "umap": (["x", "y", "lang", "model"], ["x", "y", "model"]),
    "overlap": (["benchmark", "field"], ["benchmark"]),
}


def _damaged(path: Path, why: str) -> ValueError:
    return ValueError(f"{path} is damaged ({why}); run `hbkit compare --out {path.parent}` with the same options "
                      "again: it recomputes the tables from the per-query results it keeps, without training")


#: the record of what ``compare`` wrote: each table's row count and sha256 (a table cut at a line boundary reads as a
#: valid CSV; only the record tells it is short)
TABLES_RECORD = "tables.json"


def record_tables(out: Path, names: list[str]) -> None:
    """Write :data:`TABLES_RECORD`: the row count and sha256 of each table ``names`` as it was just written."""
    rec = {}
    for n in names:
        blob = (Path(out) / n).read_bytes()
        rec[n] = {"rows": max(blob.count(b"\n") - 1, 0), "sha256": hashlib.sha256(blob).hexdigest()}
    atomic_write_json(Path(out) / TABLES_RECORD, rec)


def _check_record(path: Path, blob: bytes) -> None:
    rec_path = path.parent / TABLES_RECORD
    if not rec_path.is_file():   # a folder written before the record existed
        return
    try:
        want = json.loads(rec_path.read_text(encoding="utf-8")).get(path.name)
    except (ValueError, UnicodeDecodeError, AttributeError):
        raise _damaged(rec_path, "not a JSON record of the tables") from None
    if not want or hashlib.sha256(blob).hexdigest() == want.get("sha256"):
        return
    rows = max(blob.count(b"\n") - 1, 0)
    raise _damaged(path, f"{rows} rows where compare wrote {want.get('rows')}" if rows != want.get("rows") else
                   "its bytes differ from what compare wrote (sha256)")


def read_run_csv(path: str | Path) -> pd.DataFrame:
    """A table of a run folder, checked: hbkit writes each one whole (ending in a newline) with its columns, so
    a file cut short (also at a line boundary: its row count and sha256 are in :data:`TABLES_RECORD`), unparsable,
    without a required column or with an empty key cell is a ``ValueError`` naming the file and the way to
    recompute it, never a table rendered from part of the rows."""
    path = Path(path)
    blob = path.read_bytes()
    if blob and not blob.endswith(b"\n"):
        raise _damaged(path, "its last line is cut short")
    try:
        df = pd.read_csv(io.BytesIO(blob))   # the bytes already read, not the file a second time
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as e:
        raise _damaged(path, f"not a readable CSV: {str(e).splitlines()[0][:100]}") from None
    cols, keys = RUN_TABLES.get(path.stem, ([], []))
    if miss := [c for c in cols if c not in df.columns]:
        raise _damaged(path, f"missing column(s) {', '.join(miss)}")
    for c in keys:
        if df[c].isna().any():
            raise _damaged(path, f"row {int(df[c].isna().to_numpy().argmax()) + 2} has no {c}")
    _check_record(path, blob)
    return df


def read_run_json(path: str | Path, kind: type = dict):
    """A JSON file of a run folder (``config.json``, ``missing.json``), checked like :func:`read_run_csv`."""
    path = Path(path)
    fix = ("it records the run's options: run `hbkit compare` with them into a new --out" if path.name == "config.json"
           else f"run `hbkit compare --out {path.parent}` with the same options again: it rewrites it without training")
    try:
        obj = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as e:
        raise ValueError(f"{path} is damaged (not JSON: {str(e)[:80]}); {fix}") from None
    if not isinstance(obj, kind):
        raise ValueError(f"{path} is damaged (a JSON {type(obj).__name__}, expected a {kind.__name__}); {fix}")
    return obj
