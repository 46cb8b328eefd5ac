"""The one text-file opener of the release readers (mMARCO, SQuAD-format files, MIRACL, a user's
pairs).

Every reader goes through it, so each of them, for every file:

* reads UTF-8, with a byte-order mark at the start accepted and stripped (files saved by Windows
  tools carry one);
* names a byte that is not UTF-8 by file, line, column and byte, with the fix (:func:`not_utf8`),
  instead of calling the file corrupt;
* tells a last line cut short (no newline at the end and fewer fields than a record has: an
  interrupted download) from a malformed line elsewhere, and counts each apart from the records it
  skips;
* counts an id seen twice, keeping the first text (:func:`id_texts`), as the SQuAD reader does.

Problems with lines are counted in a ``Counter`` by reason (``"last line cut short"``, ``"line
without the expected tabs"``, ``"duplicate id"``): the readers report them as lines, never as
skipped records.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
from collections import Counter
from pathlib import Path
from typing import Iterable, Iterator

from hbkit.core.digests import open_hashed
from hbkit.data.registry import DataError

#: the reasons :func:`tsv_rows` and :func:`id_texts` count lines under
CUT_LAST_LINE = "last line cut short"
NO_TABS = "line without the expected tabs"
DUPLICATE_ID = "duplicate id"


def not_utf8(path: str | os.PathLike, what: str = "file") -> DataError:
    """The :class:`DataError` for a text file with bytes that are not UTF-8: it names the file, the
    first bad line and column and the byte, and the fix. (Called after a ``UnicodeDecodeError``;
    reads the file again in binary to find the place.)

    Examples:
        >>> raise not_utf8("queries.tsv", "mMARCO file")  # doctest: +SKIP
        DataError: queries.tsv: line 3, column 9: byte 0xe9 is not UTF-8; save the mMARCO file as
        UTF-8 ...
    """
    with open(path, "rb") as fh:
        for n, raw in enumerate(fh, 1):
            if n == 1 and raw.startswith(b"\xef\xbb\xbf"):
                raw = raw[3:]
            try:
                raw.decode("utf-8")
            except UnicodeDecodeError as e:
                return DataError(
                    f"{path}: line {n}, column {e.start + 1}: byte 0x{raw[e.start]:02x} is not "
                    f"UTF-8; save the {what} as UTF-8 (e.g. iconv -f latin1 -t utf-8)"
                )
    return DataError(f"{path}: not UTF-8 text; save the {what} as UTF-8")


@contextlib.contextmanager
def open_text(path: str | os.PathLike, what: str = "file", newline: str = ""):
    """The file opened for reading as UTF-8 with an optional byte-order mark (stripped), newlines
    kept as written (``newline="\\n"``: lines end at ``\\n`` only, so a stray ``\\r`` inside a text
    stays in it); an absent file and a non-UTF-8 byte (while the block reads) are :class:`DataError`
    naming it. Inside :func:`hbkit.core.digests.recording_reads` the bytes are hashed as they are
    read (a cache builder's check that it read what its key was made of)."""
    path = Path(path)
    try:
        fh = io.TextIOWrapper(open_hashed(path), encoding="utf-8-sig", newline=newline)
    except FileNotFoundError:
        raise DataError(f"{path}: {what} not found") from None
    except IsADirectoryError:
        raise DataError(f"{path}: is a folder, not the {what}") from None
    try:
        with fh:
            yield fh
    except UnicodeDecodeError:
        raise not_utf8(path, what) from None


def read_text(path: str | os.PathLike, what: str = "file") -> str:
    """The whole text of ``path`` (see :func:`open_text`)."""
    with open_text(path, what) as fh:
        return fh.read()


def read_json(path: str | os.PathLike, what: str = "JSON file"):
    """The JSON document in ``path`` (see :func:`open_text`). Invalid JSON is a :class:`DataError`
    naming the line and column, and saying whether the file ends early (truncated: re-download it)
    or is damaged inside."""
    text = read_text(path, what)
    if not text.strip():
        raise DataError(
            f"{path}: the {what} is empty ({Path(path).stat().st_size} bytes); re-download it"
        )
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        # a document cut short stops before its closing bracket, or inside a string
        end = text.rstrip()
        ends_early = e.msg != "Extra data" and (
            e.pos >= len(end) or not end.endswith(("}", "]")) or e.msg.startswith("Unterminated")
        )
        why = (
            "the file ends early: it is truncated, re-download it"
            if ends_early
            else "text follows the JSON document: the file is damaged there"
            if e.msg == "Extra data"
            else "the file is damaged there: re-download it"
        )
        raise DataError(
            f"{path}: line {e.lineno}, column {e.colno}: not valid JSON ({e.msg}); {why}"
        ) from None


def text_lines(path: str | os.PathLike, what: str = "file") -> Iterator[tuple[int, str]]:
    """``(line number, line)`` of a text file (from 1, the line's ``\\n``/``\\r\\n`` kept, so that a
    last line without one can be told apart); see :func:`open_text`."""
    with open_text(path, what, newline="\n") as fh:  # numbered as not_utf8 numbers them: by \n
        yield from enumerate(fh, 1)


def tsv_rows(
    path: str | os.PathLike,
    fields: int,
    problems: Counter,
    what: str = "file",
    progress: bool = False,
) -> Iterator[list[str]]:
    """The rows of a headerless tab-separated file as lists of ``fields`` strings (the last takes
    any further tabs). A last line without a newline is an interrupted download (the release's files
    end with one), even when it holds its tab: it is left out and counted in ``problems`` as
    :data:`CUT_LAST_LINE`; another line with fewer fields as :data:`NO_TABS`. Blank lines hold no
    record and are passed over. ``progress``: a bar over the lines (tqdm: the terminal and
    Jupyter)."""
    lines = text_lines(path, what)
    if progress:
        from tqdm.auto import tqdm

        lines = tqdm(lines, desc=f"{Path(path).name}", unit=" lines", mininterval=2, leave=False)
    for _, line in lines:
        if not line.endswith(
            "\n"
        ):  # only the last line can lack one: a download cut short, even after a tab
            if line.strip():
                problems[CUT_LAST_LINE] += 1
            continue
        parts = line.rstrip("\r\n").split("\t", fields - 1)
        if len(parts) == fields:
            yield parts
        elif line.strip():
            problems[NO_TABS] += 1


#: bytes read per block by :func:`tsv_columns`
BLOCK_BYTES = 64 << 20

_BOM = b"\xef\xbb\xbf"


def _blocks(path: Path, what: str, progress: bool) -> Iterator[bytes | tuple[str, bytes]]:
    """The file's bytes in blocks of whole lines (each ending with ``\\n``), a byte-order mark
    stripped, each block checked to be UTF-8; then ``("rest", bytes)``: what follows the last
    newline. The next block is read, hashed (:func:`hbkit.core.digests.open_hashed`) and checked in
    a second thread while the caller parses this one (file reads, sha256 and Arrow's UTF-8 check
    release the GIL)."""
    from concurrent.futures import ThreadPoolExecutor

    import numpy as np
    import pyarrow as pa

    if path.is_dir():
        raise DataError(f"{path}: is a folder, not the {what}")
    try:
        fh = open_hashed(path)
    except FileNotFoundError:
        raise DataError(f"{path}: {what} not found") from None
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(
            total=path.stat().st_size,
            desc=path.name,
            unit="B",
            unit_scale=True,
            mininterval=2,
            leave=False,
        )

    def job(rest: bytes, bom_pending: bool):
        chunk = fh.read(BLOCK_BYTES)
        if bar is not None:
            bar.update(len(chunk))
        data = rest + chunk if rest else chunk
        if bom_pending and (len(data) >= 3 or not chunk):
            data, bom_pending = (data[3:] if data.startswith(_BOM) else data), False
        if not chunk:
            return None, data, False
        end = data.rfind(b"\n") + 1
        if bom_pending or end == 0:
            return b"", data, bom_pending
        block = data[:end]
        try:  # a zero-copy one-value binary array cast to string: Arrow's UTF-8 check
            pa.Array.from_buffers(
                pa.large_binary(),
                1,
                [None, pa.py_buffer(np.array([0, end], np.int64)), pa.py_buffer(block)],
            ).cast(pa.large_string())
        except pa.ArrowInvalid:
            raise not_utf8(path, what) from None
        return block, data[end:], False

    with fh, ThreadPoolExecutor(1) as pool:
        fut = pool.submit(job, b"", True)
        while True:
            block, rest, bom = fut.result()
            if block is None:
                break
            fut = pool.submit(job, rest, bom)
            if block:
                yield block
    if bar is not None:
        bar.close()
    yield "rest", rest


def _line_bounds(block: bytes):
    """(numpy view of the block, line starts, line ends: the index of each ``\\n``)."""
    import numpy as np

    arr = np.frombuffer(block, np.uint8)
    ends = np.flatnonzero(arr == 10)
    starts = np.empty_like(ends)
    starts[0], starts[1:] = 0, ends[:-1] + 1
    return arr, starts, ends


def _no_tab_lines(block: bytes, starts, ends, bad) -> int:
    """How many of the lines ``bad`` (indices) are not blank: lines without the expected tabs."""
    return sum(1 for i in bad.tolist() if block[starts[i] : ends[i]].decode("utf-8").strip())


def tsv_columns(
    path: str | os.PathLike,
    fields: int,
    problems: Counter,
    what: str = "file",
    progress: bool = False,
    select=None,
) -> Iterator[list]:
    """The rows of a headerless tab-separated file as blocks of columns: per block of about
    :data:`BLOCK_BYTES`, a list of ``fields`` pyarrow string arrays. The same rows, line problems
    and errors as :func:`tsv_rows` (lines end at ``\\n`` only; a trailing ``\\r`` dropped; the last
    field takes any further tabs; a last line without a newline counted as :data:`CUT_LAST_LINE`, a
    line with fewer fields as :data:`NO_TABS`; blank lines passed over; a byte-order mark stripped;
    a non-UTF-8 byte named by line and column), found by vectorised numpy and Arrow kernels instead
    of a Python loop over the lines: the reader for files of millions of lines (mMARCO's
    collections). ``select`` (two fields only): a function of a block's first column (an Arrow
    string array) giving a boolean mask; only the rows it keeps are split further (the ids of a
    9M-line collection are matched before any text is cut out). The bytes go through
    :func:`hbkit.core.digests.open_hashed`, so a build hashes what it reads."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    if select is not None and fields != 2:
        raise ValueError("select applies to two-field files (id, text)")
    path = Path(path)
    for block in _blocks(path, what, progress):
        if isinstance(block, tuple):
            try:
                last = block[1].decode("utf-8")
            except UnicodeDecodeError:
                raise not_utf8(path, what) from None
            # only the last line can lack a newline: a download cut short, even after a tab
            if last.strip():
                problems[CUT_LAST_LINE] += 1
            return
        arr, starts, ends = _line_bounds(block)
        if select is None:
            offsets = np.empty(len(ends) + 1, np.int64)
            offsets[0], offsets[1:] = 0, ends + 1
            lines = pa.Array.from_buffers(
                pa.large_string(), len(ends), [None, pa.py_buffer(offsets), pa.py_buffer(block)]
            )
            lines = pc.utf8_rtrim(lines, characters="\r\n")
            parts = pc.split_pattern(lines, "\t", max_splits=fields - 1)
            whole = pc.equal(pc.list_value_length(parts), fields)
            if not pc.all(whole).as_py():
                bad = np.flatnonzero(~whole.to_numpy(zero_copy_only=False))
                n = _no_tab_lines(block, starts, ends, bad)
                if n:
                    problems[NO_TABS] += n
                parts = parts.filter(whole)
            yield [pc.list_element(parts, k) for k in range(fields)]
            continue
        tabs = np.flatnonzero(arr == 9)
        k = np.searchsorted(tabs, starts)
        tab = tabs[np.minimum(k, len(tabs) - 1)] if len(tabs) else np.full_like(starts, -1)
        has = (k < len(tabs)) & (tab < ends)
        if not has.all():
            n = _no_tab_lines(block, starts, ends, np.flatnonzero(~has))
            if n:
                problems[NO_TABS] += n
            starts, ends, tab = starts[has], ends[has], tab[has]
        lens = tab - starts  # each id's bytes, gathered into one buffer
        offsets = np.zeros(len(lens) + 1, np.int64)
        np.cumsum(lens, out=offsets[1:])
        idx = np.arange(offsets[-1], dtype=np.int64) + np.repeat(starts - offsets[:-1], lens)
        ids = pa.Array.from_buffers(
            pa.large_string(),
            len(lens),
            [None, pa.py_buffer(offsets), pa.py_buffer(arr[idx].tobytes())],
        )
        keep = np.asarray(select(ids).to_numpy(zero_copy_only=False), bool)
        rows = np.flatnonzero(keep)
        texts = [
            block[t + 1 : e].decode("utf-8").rstrip("\r\n")
            for t, e in zip(tab[rows].tolist(), ends[rows].tolist())
        ]
        yield [ids.filter(pa.array(keep)), pa.array(texts, pa.large_string())]


def id_texts(
    path: str | os.PathLike,
    wanted: Iterable[str] | None,
    problems: Counter,
    what: str = "file",
    progress: bool = False,
) -> dict[str, str]:
    """``{id: text}`` of an ``id<TAB>text`` file, for the ids in ``wanted`` (None: all), texts
    stripped. An id seen again is counted in ``problems`` as :data:`DUPLICATE_ID` and the first text
    kept (only ids in ``wanted`` are tracked, so a 9M-line collection costs the memory of what is
    kept). Read by :func:`tsv_columns`: the ids are cut out and matched in numpy and Arrow, and only
    the kept rows reach Python."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if wanted is None:
        select = lambda ids: pa.array([True] * len(ids))  # noqa: E731
    else:
        want = pa.array(sorted(set(wanted)), pa.large_string())
        select = lambda ids: pc.is_in(ids, value_set=want)  # noqa: E731
    out: dict[str, str] = {}
    for ids, texts in tsv_columns(path, 2, problems, what, progress, select=select):
        for i, text in zip(ids.to_pylist(), texts.to_pylist()):
            if i in out:
                problems[DUPLICATE_ID] += 1
                continue
            out[i] = text.strip()
    return out


def first_id(path: str | os.PathLike, what: str = "file") -> str | None:
    """The id (first field) of the first record of a tab-separated file, for messages (None when it
    has none)."""
    for row in tsv_rows(path, 2, Counter(), what):
        return row[0]
    return None
