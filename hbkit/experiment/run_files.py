"""The one reader of a run folder's files (:class:`RunFolder`): each table and JSON checked, a
damaged file named with its fix. Stages, the report, the dashboard and the notebooks all read
through it."""

from __future__ import annotations

import hashlib
import io
import json
import logging
from pathlib import Path

import numpy as np
import pandas as pd

from hbkit.core.files import atomic_path, atomic_write_json

log = logging.getLogger(__name__)

#: the columns a run folder's tables must have, and those of them no row may leave empty
RUN_TABLES = {
    "results": (
        [
            "model",
            "strategy",
            "alpha",
            "seed",
            "benchmark",
            "setting",
            "qlang",
            "dlang",
            "metric",
            "value",
            "n",
        ],
        ["model", "benchmark", "metric"],
    ),
    "aggregate": (
        ["model", "benchmark", "setting", "metric", "mean", "low", "high"],
        ["model", "benchmark", "metric", "mean"],
    ),
    "effects": (
        ["contrast", "a", "b", "family", "benchmark", "setting", "metric", "diff", "p"],
        ["contrast", "benchmark", "metric", "diff"],
    ),
    "alignment": (
        ["model", "seed", "benchmark", "metric", "value"],
        ["model", "benchmark", "metric"],
    ),
    "umap": (["x", "y", "lang", "model"], ["x", "y", "model"]),
    "overlap": (["benchmark", "field"], ["benchmark"]),
}


def _damaged(path: Path, why: str) -> ValueError:
    return ValueError(
        f"{path} is damaged ({why}); run `hbkit compare --out {path.parent}` with the same options "
        "again: it recomputes the tables from the per-query results it keeps, without training"
    )


#: the record of what ``compare`` wrote: each table's row count and sha256 (a table cut at a line
#: boundary reads as a valid CSV; only the record tells it is short)
TABLES_RECORD = "tables.json"


def record_tables(out: Path, names: list[str]) -> None:
    """Write :data:`TABLES_RECORD`: the row count and sha256 of each table ``names`` as it was just
    written."""
    rec = {}
    for n in names:
        blob = (Path(out) / n).read_bytes()
        rec[n] = {"rows": max(blob.count(b"\n") - 1, 0), "sha256": hashlib.sha256(blob).hexdigest()}
    atomic_write_json(Path(out) / TABLES_RECORD, rec)


def _check_record(path: Path, blob: bytes) -> None:
    rec_path = path.parent / TABLES_RECORD
    if not rec_path.is_file():  # a folder written before the record existed
        return
    try:
        want = json.loads(rec_path.read_text(encoding="utf-8")).get(path.name)
    except (ValueError, UnicodeDecodeError, AttributeError):
        raise _damaged(rec_path, "not a JSON record of the tables") from None
    if not want or hashlib.sha256(blob).hexdigest() == want.get("sha256"):
        return
    rows = max(blob.count(b"\n") - 1, 0)
    raise _damaged(
        path,
        f"{rows} rows where compare wrote {want.get('rows')}"
        if rows != want.get("rows")
        else "its bytes differ from what compare wrote (sha256)",
    )


def read_run_csv(path: str | Path, dtype=None) -> pd.DataFrame:
    """A table of a run folder, checked: hbkit writes each one whole (ending in a newline) with its
    columns, so a file cut short (also at a line boundary: its row count and sha256 are in
    :data:`TABLES_RECORD`), unparsable, without a required column or with an empty key cell is a
    ``ValueError`` naming the file and the way to recompute it, never a table rendered from part of
    the rows. ``dtype`` goes to ``pandas.read_csv``."""
    path = Path(path)
    blob = path.read_bytes()
    if blob and not blob.endswith(b"\n"):
        raise _damaged(path, "its last line is cut short")
    try:
        # the bytes already read, not the file a second time
        df = pd.read_csv(io.BytesIO(blob), dtype=dtype)
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
    """A JSON file of a run folder (``config.json``, ``missing.json``), checked like
    :func:`read_run_csv`."""
    path = Path(path)
    fix = (
        "it records the run's options: run `hbkit compare` with them into a new --out"
        if path.name == "config.json"
        else f"run `hbkit compare --out {path.parent}` with the same options again: it rewrites "
        "it without training"
    )
    try:
        obj = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as e:
        raise ValueError(f"{path} is damaged (not JSON: {str(e)[:80]}); {fix}") from None
    if not isinstance(obj, kind):
        raise ValueError(
            f"{path} is damaged (a JSON {type(obj).__name__}, expected a {kind.__name__}); {fix}"
        )
    return obj


def read_result(path: Path) -> pd.DataFrame | None:
    """A saved per-query or per-group result (Parquet), or None when it is missing or damaged (then
    named in the log, and recomputed)."""
    if not path.is_file():
        return None
    try:
        return pd.read_parquet(path)
    except Exception as e:  # noqa: BLE001 - truncated, empty or foreign files are all recomputed
        log.warning("%s is damaged (%s: %s); recomputing it", path, type(e).__name__, str(e)[:120])
        return None


def read_array(path: Path) -> np.ndarray | None:
    """A saved array, or None when it is missing or damaged (a 0-byte or truncated file is named in
    the log, and recomputed)."""
    if not path.is_file():
        return None
    try:
        return np.load(path)
    except (OSError, ValueError, EOFError) as e:
        log.warning("%s is damaged (%s: %s); recomputing it", path, type(e).__name__, str(e)[:120])
        return None


def write_result(df: pd.DataFrame, path: Path) -> None:
    """Write a result as Parquet, atomically."""
    with atomic_path(path) as tmp:
        df.to_parquet(tmp, index=False)


class RunFolder:
    """A ``hbkit compare`` run folder, read through one door: every table by :func:`read_run_csv`
    and every JSON file by :func:`read_run_json`, so that a damaged file is named with its fix
    wherever it is read.

    Args:
        path: the run folder.

    Examples:
        >>> run = RunFolder("results/cpu")  # doctest: +SKIP
        >>> run.table("aggregate").head(); run.setting("model")  # doctest: +SKIP
    """

    def __init__(self, path: str | Path):
        self.path = Path(path)

    def __repr__(self) -> str:
        return f"RunFolder({str(self.path)!r})"

    def has(self, name: str) -> bool:
        """Whether the folder holds the table ``name`` (``results``: ``results.csv``)."""
        return (self.path / f"{name}.csv").is_file()

    def table(self, name: str, dtype=None, optional: bool = False) -> pd.DataFrame | None:
        """The table ``name.csv``, checked; with ``optional`` None where the folder has none, else a
        ``FileNotFoundError`` that says to run compare first."""
        path = self.path / f"{name}.csv"
        if not path.is_file():
            if optional:
                return None
            raise FileNotFoundError(
                f"{path} not found: run `hbkit compare --out {self.path}` first"
            )
        return read_run_csv(path, dtype=dtype)

    def json(self, name: str, kind: type = dict, optional: bool = False):
        """The JSON file ``name`` (``config.json``, ``missing.json``, ``fixes/<run>.json``),
        checked; with ``optional`` None where the folder has none."""
        path = self.path / name
        if optional and not path.is_file():
            return None
        return read_run_json(path, kind)

    @property
    def config(self) -> dict | None:
        """``config.json``: the options the folder was made with, or None before the first run."""
        return self.json("config.json", optional=True)

    def setting(self, key: str):
        """One option of ``config.json`` (``model``, ``train_languages``, ...), or None where it has
        none."""
        return (self.config or {}).get(key)

    def per_query(self, kind: str = "per_query") -> pd.DataFrame:
        """Every saved per-query (``kind="per_query"``) or per-group alignment (``"alignment"``)
        file, concatenated; a damaged file is an error naming it (run ``compare`` again to recompute
        it)."""
        frames = []
        for f in sorted((self.path / kind).glob("*.parquet")):
            if f.name.startswith(
                "."
            ):  # a temporary file of an interrupted write (hbkit.core.files.tmp_name)
                continue
            try:
                frames.append(pd.read_parquet(f))
            except Exception as e:  # noqa: BLE001
                raise ValueError(
                    f"{f} is damaged ({type(e).__name__}); run `hbkit compare` on {self.path} "
                    "again to recompute it"
                ) from None
        if not frames:
            raise FileNotFoundError(
                f"{self.path / kind} holds no results: run `hbkit compare --out {self.path}` first"
            )
        return pd.concat(frames, ignore_index=True)

    def with_clusters(self, frame: pd.DataFrame) -> pd.DataFrame:
        """``frame`` with the ``cluster`` of each (benchmark, group) from ``clusters.csv``; a group
        without one (corpus benchmarks, or a folder written before clusters existed) is its own
        cluster."""
        cl = self.table("clusters", dtype=str, optional=True)
        if cl is None:
            return frame.assign(cluster=frame["group"].astype(str))
        merged = frame.assign(group=frame["group"].astype(str)).merge(
            cl, on=["benchmark", "group"], how="left"
        )
        return merged.assign(cluster=merged["cluster"].fillna(merged["group"]))
