"""The one text-file opener of the release readers (mMARCO, SQuAD-format files, MIRACL, a user's pairs).

Every reader goes through it, so each of them, for every file:

* reads UTF-8, with a byte-order mark at the start accepted and stripped (files saved by Windows tools carry one);
* names a byte that is not UTF-8 by file, line, column and byte, with the fix (:func:`not_utf8`), instead of
  calling the file corrupt;
* tells a last line cut short (no newline at the end and fewer fields than a record has: an interrupted download)
  from a malformed line elsewhere, and counts each apart from the records it skips;
* counts an id seen twice, keeping the first text (:func:`id_texts`), as the SQuAD reader does.

Problems with lines are counted in a ``Counter`` by reason (``"last line cut short"``, ``"line without the expected
tabs"``, ``"duplicate id"``): the readers report them as lines, never as skipped records.
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
    """The :class:`DataError` for a text file with bytes that are not UTF-8: it names the file, the first bad
    line and column and the byte, and the fix. (Called after a ``UnicodeDecodeError``; reads the file again in
    binary to find the place.)

    Example:
        >>> raise not_utf8("queries.tsv", "mMARCO file")  # doctest: +SKIP
        DataError: queries.tsv: line 3, column 9: byte 0xe9 is not UTF-8; save the mMARCO file as UTF-8 ...
    """
    with open(path, "rb") as fh:
        for n, raw in enumerate(fh, 1):
            if n == 1 and raw.startswith(b"\xef\xbb\xbf"):
                raw = raw[3:]
            try:
                raw.decode("utf-8")
            except UnicodeDecodeError as e:
                return DataError(f"{path}: line {n}, column {e.start + 1}: byte 0x{raw[e.start]:02x} is not UTF-8; "
                                 f"save the {what} as UTF-8 (e.g. iconv -f latin1 -t utf-8)")
    return DataError(f"{path}: not UTF-8 text; save the {what} as UTF-8")


@contextlib.contextmanager
def open_text(path: str | os.PathLike, what: str = "file", newline: str = ""):
    """The file opened for reading as UTF-8 with an optional byte-order mark (stripped), newlines kept as
    written (``newline="\\n"``: lines end at ``\\n`` only, so a stray ``\\r`` inside a text stays in it); an
    absent file and a non-UTF-8 byte (while the block reads) are :class:`DataError` naming it. Inside
    :func:`hbkit.core.digests.recording_reads` the bytes are hashed as they are read (a cache builder's check that
    it read what its key was made of)."""
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
    """The JSON document in ``path`` (see :func:`open_text`). Invalid JSON is a :class:`DataError` naming the line
    and column, and saying whether the file ends early (truncated: re-download it) or is damaged inside."""
    text = read_text(path, what)
    if not text.strip():
        raise DataError(f"{path}: the {what} is empty ({Path(path).stat().st_size} bytes); re-download it")
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        end = text.rstrip()   # a document cut short stops before its closing bracket, or inside a string
        ends_early = e.msg != "Extra data" and (e.pos >= len(end) or not end.endswith(("}", "]"))
                                                or e.msg.startswith("Unterminated"))
        why = ("the file ends early: it is truncated, re-download it" if ends_early else
               "text follows the JSON document: the file is damaged there" if e.msg == "Extra data" else
               "the file is damaged there: re-download it")
        raise DataError(f"{path}: line {e.lineno}, column {e.colno}: not valid JSON ({e.msg}); {why}") from None


def text_lines(path: str | os.PathLike, what: str = "file") -> Iterator[tuple[int, str]]:
    """``(line number, line)`` of a text file (from 1, the line's ``\\n``/``\\r\\n`` kept, so that a last line
    without one can be told apart); see :func:`open_text`."""
    with open_text(path, what, newline="\n") as fh:   # numbered as not_utf8 numbers them: by \n
        yield from enumerate(fh, 1)


def tsv_rows(path: str | os.PathLike, fields: int, problems: Counter, what: str = "file",
             progress: bool = False) -> Iterator[list[str]]:
    """The rows of a headerless tab-separated file as lists of ``fields`` strings (the last takes any further
    tabs). A last line without a newline is an interrupted download (the release's files end with one), even
    when it holds its tab: it is left out and counted in ``problems`` as :data:`CUT_LAST_LINE`; another line with
    fewer fields as :data:`NO_TABS`. Blank lines hold no record and are
    passed over. ``progress``: a bar over the lines (tqdm: the terminal and Jupyter)."""
    lines = text_lines(path, what)
    if progress:
        from tqdm.auto import tqdm
        lines = tqdm(lines, desc=f"{Path(path).name}", unit=" lines", mininterval=2, leave=False)
    for _, line in lines:
        if not line.endswith("\n"):   # only the last line can lack one: a download cut short, even after a tab
            if line.strip():
                problems[CUT_LAST_LINE] += 1
            continue
        parts = line.rstrip("\r\n").split("\t", fields - 1)
        if len(parts) == fields:
            yield parts
        elif line.strip():
            problems[NO_TABS] += 1


def id_texts(path: str | os.PathLike, wanted: Iterable[str] | None, problems: Counter, what: str = "file",
             progress: bool = False) -> dict[str, str]:
    """``{id: text}`` of an ``id<TAB>text`` file, for the ids in ``wanted`` (None: all), texts stripped. An id
    seen again is counted in ``problems`` as :data:`DUPLICATE_ID` and the first text kept (only ids in
    ``wanted`` are tracked, so a 9M-line collection costs the memory of what is kept)."""
    wanted = None if wanted is None else set(wanted)
    out: dict[str, str] = {}
    for i, text in tsv_rows(path, 2, problems, what, progress):
        if wanted is not None and i not in wanted:
            continue
        if i in out:
            problems[DUPLICATE_ID] += 1
            continue
        out[i] = text.strip()
    return out


def first_id(path: str | os.PathLike, what: str = "file") -> str | None:
    """The id (first field) of the first record of a tab-separated file, for messages (None when it has none)."""
    for row in tsv_rows(path, 2, Counter(), what):
        return row[0]
    return None
