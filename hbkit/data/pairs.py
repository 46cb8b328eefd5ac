"""The pairs contract: a user's own (group, lang, query, passage[, answer_key]) files, validated."""

from __future__ import annotations

import json
import os
import re
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from hbkit.data.registry import LANGUAGES, DataError
from hbkit.data.textfile import open_text, text_lines

REQUIRED = ("group", "lang", "query", "passage")


COLUMNS = ("group", "lang", "query", "passage", "answer_key")


# --------------------------------------------------------------------------------------------------
# a user's own pairs
# --------------------------------------------------------------------------------------------------
_ISO = re.compile(r"^[a-z]{2}$")


def _fail(origin: str, where: str, msg: str, more: int = 0) -> DataError:
    tail = f" ({more} more rows have problems)" if more else ""
    return DataError(f"{origin}: {where}: {msg}{tail}")


def _read_jsonl(path: Path) -> tuple[dict[str, list], list[int]]:
    cols: dict[str, list] = {}
    lines: list[int] = []
    # a byte-order mark is allowed; a non-UTF-8 byte is named
    for n, line in text_lines(path, "pairs file"):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except json.JSONDecodeError as e:
            raise _fail(
                str(path),
                f"line {n}",
                f"malformed JSON ({e.msg} at column {e.colno}); each line "
                "must be one JSON object like {\"group\": ..., \"lang\": ..., \"query\": ..., "
                "\"passage\": ...}",
            ) from None
        if not isinstance(rec, dict):
            raise _fail(str(path), f"line {n}", f"expected a JSON object, got {type(rec).__name__}")
        i = len(lines)
        for k, v in rec.items():
            if k not in cols:
                cols[k] = [None] * i
            cols[k].append(v)
        for k in cols:
            if len(cols[k]) == i:
                cols[k].append(None)
        lines.append(n)
    return cols, lines


def _read_csv(path: Path) -> tuple[dict[str, list], list[int]]:
    import csv

    # a long passage is data, not an error (the default limit is 128 KiB)
    old = csv.field_size_limit(2**31 - 1)
    try:
        return _read_csv_text(path)
    finally:
        csv.field_size_limit(old)


def _read_csv_text(path: Path) -> tuple[dict[str, list], list[int]]:
    import csv

    with open_text(
        path, "pairs file"
    ) as fh:  # a byte-order mark is allowed; a non-UTF-8 byte is named
        reader = csv.reader(fh)
        try:
            header = next(reader)
        except StopIteration:
            raise DataError(
                f"{path}: empty CSV file; the first line must be the header "
                "group,lang,query,passage[,answer_key]"
            ) from None
        except csv.Error as e:
            raise _fail(str(path), "line 1", f"not readable as CSV ({e})") from None
        if len(set(header)) != len(header):
            raise _fail(str(path), "line 1", f"duplicate column names in the header {header}")
        cols = {h: [] for h in header}
        lines = []
        start = reader.line_num + 1
        rows = iter(reader)
        while True:
            try:
                row = next(rows)
            except StopIteration:
                break
            except csv.Error as e:
                raise _fail(
                    str(path), f"line {start}", f"not readable as CSV ({e}); check its quotes"
                ) from None
            if not row or (len(row) == 1 and not row[0].strip()):
                start = reader.line_num + 1
                continue
            if len(row) != len(header):
                raise _fail(
                    str(path),
                    f"line {start}",
                    f"{len(row)} fields, the header has {len(header)}; quote "
                    "fields that contain commas or newlines",
                )
            for h, v in zip(header, row):
                cols[h].append(v)
            lines.append(start)
            start = reader.line_num + 1
    return cols, lines


def _table_from_columns(cols: dict[str, list], origin: str, lines: list[int] | None):
    """A pyarrow Table of the columns; a :class:`DataError` names the first row whose value is not a
    string."""
    import pyarrow as pa

    arrays = {}
    for k, v in cols.items():
        for i, x in enumerate(v):
            if x is not None and not isinstance(x, str):
                where = f"line {lines[i]}" if lines else f"row {i + 1}"
                if k in REQUIRED or k == "answer_key":
                    raise _fail(
                        origin,
                        where,
                        f"column {k!r} is {type(x).__name__} {x!r}, expected a string; "
                        "quote it in the file",
                    )
                v = [None if y is None else (y if isinstance(y, str) else json.dumps(y)) for y in v]
                break
        arrays[k] = pa.array(v, type=pa.string())
    return pa.table(arrays) if arrays else pa.table({})


def _validate_table(table, origin: str, lines: list[int] | None = None):
    """Check a table against the contract and return it completed (``answer_key``, ``source``) and
    sorted.

    A row whose ``answer_key`` is null or blank gets its ``group`` (the default: its passage is its
    own answer). Errors (:class:`DataError`, one line, naming ``origin``, the row and the fix): a
    missing required column, a non-string column, a missing or empty (blank) query / passage / group
    / lang, a language that is not a two-letter lower-case ISO 639-1 code, and a duplicate ``(group,
    lang)``. A well-formed code that hbkit's releases do not use (e.g. ``fr``) only warns: it can be
    trained on, but no benchmark evaluates it."""
    import pyarrow as pa
    import pyarrow.compute as pc

    def where(i: int) -> str:
        return f"line {lines[i]}" if lines else f"row {i + 1}"

    missing = [c for c in REQUIRED if c not in table.column_names]
    if missing:
        raise DataError(
            f"{origin}: missing column(s) {missing} (has {table.column_names}); the pairs need "
            f"{', '.join(REQUIRED)} and optionally answer_key"
        )
    if table.num_rows == 0:
        raise DataError(
            f"{origin}: no rows; a training corpus needs at least one (group, lang, query, passage)"
        )
    for c in table.column_names:
        t = table.schema.field(c).type
        if c in REQUIRED or c == "answer_key":
            if not (pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_null(t)):
                raise DataError(
                    f"{origin}: column {c!r} has type {t}, expected strings; convert it "
                    f"(e.g. df[{c!r}] = df[{c!r}].astype(str))"
                )
    table = table.cast(
        pa.schema(
            [
                pa.field(f.name, pa.string())
                if (pa.types.is_large_string(f.type) or pa.types.is_null(f.type))
                else f
                for f in table.schema
            ]
        )
    )
    if "answer_key" not in table.column_names:
        table = table.append_column("answer_key", table["group"])
    else:  # a row without a key (null or blank) gets the default: its group
        ak = table["answer_key"]
        blank = pc.or_kleene(
            pc.is_null(ak), pc.equal(pc.utf8_trim_whitespace(ak.fill_null("")), "")
        ).fill_null(True)
        table = table.set_column(
            table.column_names.index("answer_key"),
            "answer_key",
            pc.if_else(blank, table["group"], ak),
        )
    if "source" not in table.column_names:
        table = table.append_column("source", pa.array([origin] * table.num_rows, type=pa.string()))
    for c in REQUIRED:
        col = table[c]
        bad = pc.or_kleene(
            pc.is_null(col), pc.equal(pc.utf8_trim_whitespace(col.fill_null("")), "")
        )
        idx = (
            np.flatnonzero(bad.to_numpy(zero_copy_only=False))
            if bad.null_count == 0
            else np.flatnonzero(bad.fill_null(True).to_numpy(zero_copy_only=False))
        )
        if len(idx):
            raise _fail(
                origin,
                where(int(idx[0])),
                f"{c!r} is empty; every row needs a non-empty {c}",
                len(idx) - 1,
            )
    langs = table["lang"].to_numpy(zero_copy_only=False)
    codes, inv = np.unique(langs, return_inverse=True)
    for j, code in enumerate(codes):
        if not _ISO.match(code):
            i = int(np.flatnonzero(inv == j)[0])
            hint = f"; did you mean {code.lower()[:2]!r}?" if code.lower()[:2] in LANGUAGES else ""
            raise _fail(
                origin,
                where(i),
                f"lang {code!r} is not a two-letter lower-case ISO 639-1 code (as "
                f"{', '.join(sorted(LANGUAGES))}){hint}",
            )
        if code not in LANGUAGES:
            warnings.warn(
                f"{origin}: lang {code!r} is not a language of the evaluation benchmarks "
                f"({', '.join(sorted(LANGUAGES))}); it is trained on but never evaluated",
                stacklevel=3,
            )
    key = pd.MultiIndex.from_arrays([table["group"].to_numpy(zero_copy_only=False), langs])
    dup = key.duplicated(keep=False)
    if dup.any():
        first = np.flatnonzero(dup)
        g, l = key[first[0]]
        other = [int(i) for i in first if key[i] == (g, l)]
        raise _fail(
            origin,
            where(other[1]),
            f"duplicate (group, lang) = ({g!r}, {l!r}), also at "
            f"{where(other[0])}; each question has one row per language",
        )
    return table.sort_by([("lang", "ascending"), ("group", "ascending")])


def read_pairs(path: str | os.PathLike):
    """Read and validate a user's parallel pairs from ``.jsonl``/``.json`` (one object per line),
    ``.csv`` (with a header) or ``.parquet``; returns a ``datasets.Dataset`` following the contract.

    Columns ``group, lang, query, passage`` are required; ``answer_key`` is optional and defaults to
    ``group``, meaning "each group's passage is its own answer" (no two groups share an answer).
    Extra columns are kept. Errors name the file and the 1-based line (JSONL, CSV) or row (Parquet);
    see :func:`validate_pairs` for the checks."""
    import datasets
    import pyarrow.parquet as pq

    path = Path(path)
    if not path.is_file():
        raise DataError(
            f"{path}: file not found; pass a .jsonl, .csv or .parquet file of parallel pairs"
        )
    suffix = path.suffix.lower()
    if suffix in (".jsonl", ".json", ".ndjson"):
        cols, lines = _read_jsonl(path)
        table = _table_from_columns(cols, str(path), lines)
    elif suffix == ".csv":
        cols, lines = _read_csv(path)
        table = _table_from_columns(cols, str(path), lines)
    elif suffix == ".parquet":
        try:
            table = pq.read_table(path)
        except Exception as e:  # noqa: BLE001 - pyarrow raises several types for a corrupt file
            raise DataError(
                f"{path}: not a readable Parquet file ({e}); write it with df.to_parquet"
            ) from None
        lines = None
    else:
        raise DataError(f"{path}: unknown pairs format {suffix!r}; use .jsonl, .csv or .parquet")
    return datasets.Dataset(_validate_table(table, str(path), lines))


def validate_pairs(dataset, origin: str = "dataset"):
    """Validate a ``datasets.Dataset`` (or pandas DataFrame) of parallel pairs against the contract
    and return it as a contract Dataset (``answer_key`` defaulting to ``group``, ``source`` to
    ``origin``, rows sorted by ``(lang, group)``). Errors name ``origin`` and the 1-based row."""
    import datasets
    import pyarrow as pa

    if isinstance(dataset, pd.DataFrame):
        table = pa.Table.from_pandas(dataset, preserve_index=False)
    elif isinstance(dataset, datasets.Dataset):
        table = dataset.with_format("arrow")[:]
    else:
        raise DataError(
            f"{origin}: expected a datasets.Dataset or pandas DataFrame, got "
            f"{type(dataset).__name__}"
        )
    return datasets.Dataset(_validate_table(table, origin))
