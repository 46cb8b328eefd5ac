"""File digests that cost a stat: the sha256 of a file remembered by its identity, and reads that
hash what they read.

The memo
--------
:func:`file_sha256` remembers each file's sha256 under its identity ``(device, inode, size,
mtime_ns, ctime_ns)``, as git's index does, in ``<hbkit cache>/digests/`` (one small JSON file per
identity, written atomically: two processes that hash one file at once write the same entry, and
neither can leave half of one). The first sight of a file reads it; later calls only stat it. Any
write to a file changes its ctime, and no user can set a ctime, so an edit that keeps the size and
puts the mtime back (``touch -r``, ``cp -p`` over the file) is a new identity and is hashed again.

Two rules keep the memo true:

* **racy files are not remembered**: a file whose ctime is less than :data:`RACY_S` seconds older
  than the moment its hashing began could still be written within the same clock tick without its
  ctime changing (file system clocks are coarse: 1-10 ms, and NFS adds skew), so its digest is
  computed but not stored (git's "racy git" rule); the next call, later, stores it;
* **a file that changes while it is hashed** (its identity differs after the read) is not remembered
  either.

Reads that hash what they read
------------------------------
Inside ``with recording_reads() as reads:``, every file opened through :func:`open_hashed` (the
release readers' one opener, :func:`hbkit.data.textfile.open_text`) is hashed as it is read; a file
read from its start to its end leaves ``reads[realpath] = sha256``. A cache builder compares these
digests, of the bytes it actually read, with the ones its cache key was made of
(:func:`hbkit.data.corpus_cache.cached_corpus`).
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import time
from contextvars import ContextVar
from pathlib import Path
from typing import Iterator

from hbkit.core.env import cache_dir
from hbkit.core.files import atomic_write_json, sha256_file

#: a file whose ctime is within this many seconds before its hashing began is not remembered (see
#: the module doc)
RACY_S = 2.0

#: the sub-folder of the hbkit cache that holds the memo
MEMO = "digests"


def identity(path: str | os.PathLike) -> tuple[int, int, int, int, int]:
    """``(st_dev, st_ino, st_size, st_mtime_ns, st_ctime_ns)`` of ``path`` (following links)."""
    st = os.stat(path)
    return st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns


def _memo_path(ident: tuple) -> Path:
    name = hashlib.blake2b(repr(ident).encode(), digest_size=16).hexdigest()
    return cache_dir() / MEMO / name[:2] / f"{name}.json"


def _recall(ident: tuple) -> str | None:
    try:
        rec = json.loads(_memo_path(ident).read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(rec, dict) or rec.get("identity") != list(ident):
        return None
    sha = rec.get("sha256")
    return sha if isinstance(sha, str) and len(sha) == 64 else None


def _remember(path: Path, ident: tuple, sha: str) -> None:
    try:
        atomic_write_json(
            _memo_path(ident), {"identity": list(ident), "sha256": sha, "path": str(path)}
        )
    except OSError:  # a read-only or full cache: the digest is still right, only not remembered
        pass


def racy(ident: tuple, began_ns: int) -> bool:
    """True when a file of identity ``ident`` could still change within its ctime's clock tick after
    ``began_ns``."""
    return ident[4] >= began_ns - int(RACY_S * 1e9)


def known(path: str | os.PathLike) -> str | None:
    """The remembered sha256 of ``path`` as it is now (a stat), or None: never seen, or changed
    since."""
    try:
        return _recall(identity(path))
    except OSError:
        return None


def remember(path: str | os.PathLike, ident: tuple, sha: str, began_ns: int) -> None:
    """Remember ``sha`` as the digest of ``path`` at identity ``ident``, a digest of bytes read from
    ``began_ns`` (``time.time_ns()``) on, unless the file is racy then or its identity has changed
    since."""
    path = Path(path)
    with contextlib.suppress(OSError):
        if identity(path) == tuple(ident) and not racy(tuple(ident), began_ns):
            _remember(path, tuple(ident), sha)


def file_sha256(path: str | os.PathLike) -> str:
    """The sha256 of ``path``'s bytes: remembered by the file's identity (a stat), read only at the
    first sight of that identity. See the module doc for why a same-size, same-mtime edit is still
    seen."""
    path = Path(path)
    ident = identity(path)
    sha = _recall(ident)
    if sha is not None:
        return sha
    began = time.time_ns()
    sha = sha256_file(path)
    remember(path, ident, sha, began)
    return sha


# --------------------------------------------------------------------------------------------------
# values derived from files, remembered by the files' identities
# --------------------------------------------------------------------------------------------------
#: the attribute :func:`hbkit.data.corpus_cache.load_cached` sets on a dataset it maps: ``{abspath:
#: identity}`` of its files, taken before and after the mapping (equal, or the attribute is not set)
MAPPED_AT_LOAD = "hbkit_mapped_at_load"


def carry_mapped(source, derived):
    """``derived`` (a ``select_columns``, ``filter`` or ``select`` of the dataset ``source``),
    carrying ``source``'s :data:`MAPPED_AT_LOAD`: its rows still come from the files mapped then,
    which is what a value remembered by those files' identities needs to know; a derived set with
    rows of its own (in memory) is not remembered anyway."""
    mapped = getattr(source, MAPPED_AT_LOAD, None)
    if mapped:
        setattr(derived, MAPPED_AT_LOAD, mapped)
    return derived


def _derived_path(kind: str, source: dict, idents: list) -> Path:
    key = hashlib.blake2b(
        json.dumps([kind, source, idents], sort_keys=True).encode(), digest_size=16
    ).hexdigest()
    return cache_dir() / MEMO / "derived" / kind / f"{key}.json"


def recall_derived(kind: str, source: dict, idents: list):
    """The value :func:`remember_derived` stored for ``source`` (a JSON-able description of what the
    value is made from) when its files had the identities ``idents`` (:func:`identity`, one per
    file), or None."""
    idents = [list(i) for i in idents]
    try:
        rec = json.loads(_derived_path(kind, source, idents).read_text())
    except (OSError, ValueError):
        return None
    if (
        not isinstance(rec, dict)
        or rec.get("identities") != idents
        or rec.get("source") != json.loads(json.dumps(source))
    ):
        return None
    return rec.get("value")


def remember_derived(kind: str, source: dict, idents: list, value, began_ns: int) -> None:
    """Remember ``value``, computed from files of identities ``idents`` by reading them from
    ``began_ns`` on, unless one of them is racy then (:func:`racy`): a later call, with the same
    identities, recalls it. The caller vouches that ``idents`` are those of the bytes it read (for
    instance, taken when it mapped the files)."""
    idents = [list(i) for i in idents]
    if any(racy(tuple(i), began_ns) for i in idents):
        return
    with contextlib.suppress(OSError):
        atomic_write_json(
            _derived_path(kind, source, idents),
            {"source": source, "identities": idents, "value": value},
        )


# --------------------------------------------------------------------------------------------------
# cache keys
# --------------------------------------------------------------------------------------------------
def content_key(files: list, *extra, length: int = 20) -> str:
    """The one rule for a cache key built from files: a sha256 over ``extra`` (builder version,
    options: anything JSON can write) and each file's sha256 of its bytes, in the given order; a
    missing file counts as absent. Not its path, size or mtime: a copy elsewhere shares the key, and
    a change with the same size and mtime (``cp -p``, ``touch -r``) gets a new one. Each file's
    sha256 comes from the memo (:func:`file_sha256`): a stat for a file seen before."""
    return key_of_digests(file_digests(files), *extra, length=length)


def file_digests(files: list) -> list[str]:
    """Each file's sha256 (:func:`file_sha256`, memoised), ``"absent"`` for a missing one."""
    return [file_sha256(f) if Path(f).is_file() else "absent" for f in files]


def key_of_digests(digests: list[str], *extra, length: int = 20) -> str:
    """:func:`content_key` from the files' digests (:func:`file_digests`) rather than the files."""
    h = hashlib.sha256(json.dumps(list(extra), sort_keys=True, default=str).encode())
    for d in digests:
        h.update(b"\0" + d.encode())
    return h.hexdigest()[:length]


# --------------------------------------------------------------------------------------------------
# reads that hash what they read
# --------------------------------------------------------------------------------------------------
_READS: ContextVar[dict | None] = ContextVar("hbkit_recorded_reads", default=None)


@contextlib.contextmanager
def recording_reads() -> Iterator[dict[str, str]]:
    """Record the sha256 of every file :func:`open_hashed` reads to its end within the block, by
    real path. A file read twice keeps its last digest; one read only in part leaves nothing."""
    reads: dict[str, str] = {}
    token = _READS.set(reads)
    try:
        yield reads
    finally:
        _READS.reset(token)


class _HashingRaw(io.RawIOBase):
    """A raw binary file that hashes every byte it reads, in order, and reports the digest at the
    end."""

    def __init__(self, path: Path, reads: dict):
        self._f = open(path, "rb", buffering=0)
        self._h = hashlib.sha256()
        self._reads = reads
        self._key = os.path.realpath(path)

    def readable(self) -> bool:
        return True

    def readinto(self, b) -> int:
        n = self._f.readinto(b)
        if n:
            self._h.update(memoryview(b)[:n])
        elif self._h is not None:  # the end: every byte was read, in order
            self._reads[self._key] = self._h.hexdigest()
            self._h = None
        return n

    def close(self) -> None:
        self._f.close()
        super().close()


def open_hashed(path: str | os.PathLike, buffer_size: int = 1 << 20):
    """``path`` opened for binary reading (a buffered file); inside :func:`recording_reads`, one
    that hashes what it reads. Outside, a plain ``open(path, "rb")``."""
    reads = _READS.get()
    if reads is None:
        return open(path, "rb", buffering=buffer_size)
    return io.BufferedReader(_HashingRaw(Path(path), reads), buffer_size=buffer_size)
