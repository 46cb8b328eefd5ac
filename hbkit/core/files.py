"""Safe files: atomic writes, one-builder caches, and run-folder locks.

Guarantees
----------
* :func:`atomic_path` / :func:`atomic_write_text` / :func:`atomic_write_bytes`: a reader sees the
  old file or the complete new one, never a partial one. The data go to
  ``.<name>.<pid>.<random>.tmp`` beside the target (a per-process name, so two processes never share
  a temporary file), then ``os.replace`` renames it. An exception removes the temporary file.
* :func:`build_once`: when N processes (or notebooks) ask for the same cache entry at once, exactly
  one builds it while the others wait on a file lock and then read it. The build goes to a temporary
  folder that is renamed into place only when complete, so a build killed half-way leaves nothing
  that ``is_complete`` accepts; the next caller rebuilds.
* :class:`RunLock`: one process at a time in a run folder's shared files; a second one waits
  (``wait`` seconds) or gets :class:`FolderInUse` naming the PID and host that hold it. The lock is
  an OS lock (``filelock``), so it is released when its process dies, whatever the cause.
* :func:`remove_stale_tmp`: temporary files of processes that no longer run (a kill between a write
  and its rename) are removed by the next :class:`RunLock` on their folder, the next
  :func:`build_once` of their target, and the next ``train`` in their folder; a live process's are
  never touched.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shutil
import socket
import time
import uuid
from pathlib import Path
from typing import Callable, Iterable, Iterator

from filelock import FileLock, Timeout


class FolderInUse(RuntimeError):
    """Another live process holds the run folder's lock."""


#: tmp_name's pattern: ``.<name>.<pid>@<host>.<8 hex>.tmp`` (+ the target's suffix for atomic_path);
#: ``host`` is 8 hex of the host name's hash (names written before it existed have none: this
#: host's)
_TMP = re.compile(
    r"^\.(?P<name>.+)\.(?P<pid>\d+)(?:@(?P<host>[0-9a-f]{8}))?\.[0-9a-f]{8}\.tmp(\..*)?$"
)
#: this host, as tmp_name writes it
HOST = hashlib.blake2b(socket.gethostname().encode(), digest_size=4).hexdigest()
#: a temporary file another host wrote is taken for stale only after this long (its PID means
#: nothing here)
OTHER_HOST_STALE_S = 2 * 24 * 3600


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except (ProcessLookupError, OverflowError, ValueError):  # no such process, or no possible PID
        return False
    except (PermissionError, OSError):
        return True  # it exists (another user's), or the answer is unknown: keep its files
    return True


def remove_stale_tmp(
    folder: str | os.PathLike, recursive: bool = True, prefix: str = "", only_dead: bool = True
) -> int:
    """Remove the temporary files and folders (:func:`tmp_name`'s names, starting with ``prefix``)
    that processes which no longer run left in ``folder`` (and below, with ``recursive``): what a
    kill between a write and its rename leaves. A live process's temporary files are kept, unless
    ``only_dead=False`` (for a caller holding the lock every writer of these names takes: every
    other one is then stale). This process's own are always kept. A name records its PID and host:
    one written on another host (a run folder shared by the nodes of a cluster) is removed only once
    it is :data:`OTHER_HOST_STALE_S` old. Returns how many were removed, and logs it."""
    import logging

    folder = Path(folder)
    if not folder.is_dir():
        return 0
    removed = []
    walk = (
        os.walk(folder)
        if recursive
        else [
            (
                str(folder),
                [d.name for d in folder.iterdir() if d.is_dir()],
                [f.name for f in folder.iterdir() if not f.is_dir()],
            )
        ]
    )
    for root, dirs, files in walk:
        for name in list(dirs) + list(files):
            m = _TMP.match(name)
            if not m or not name.startswith("." + prefix):
                continue
            p = Path(root, name)
            if (
                m["host"] or HOST
            ) != HOST:  # another node of a shared folder: its PIDs are not ours to test
                with contextlib.suppress(OSError):
                    if only_dead and time.time() - p.lstat().st_mtime < OTHER_HOST_STALE_S:
                        continue
            elif int(m["pid"]) == os.getpid() or (only_dead and _pid_alive(int(m["pid"]))):
                continue
            with contextlib.suppress(OSError):
                shutil.rmtree(p) if p.is_dir() and not p.is_symlink() else p.unlink()
                removed.append(p)
            if name in dirs:
                dirs.remove(name)
    if removed:
        logging.getLogger(__name__).info(
            "removed %d temporary file(s) of processes that no longer run from %s (e.g. %s)",
            len(removed),
            folder,
            removed[0].name,
        )
    return len(removed)


def tmp_name(path: str | os.PathLike) -> Path:
    """A temporary path beside ``path``, unique to this process and call."""
    path = Path(path)
    return path.with_name(f".{path.name}.{os.getpid()}@{HOST}.{uuid.uuid4().hex[:8]}.tmp")


def existing_ancestor(path: str | os.PathLike) -> Path:
    """``path`` itself when it exists, else its nearest parent that does (``.`` or ``/`` at the
    last): where a folder would be created, whose disk and permissions count."""
    p = Path(path)
    while not p.exists() and p != p.parent:
        p = p.parent
    return p


class DiskFull(OSError):
    """The disk filled up while hbkit wrote: the message names the folder, what was being written
    and the free space left there."""


def _is_disk_full(e: BaseException | None) -> bool:
    """Whether ``e`` or an exception it came from is ENOSPC, as an ``OSError`` or in another
    library's words (safetensors: "I/O error: No space left on device (os error 28)")."""
    import errno

    seen = set()
    while e is not None and id(e) not in seen:
        seen.add(id(e))
        if (
            isinstance(e, OSError)
            and e.errno == errno.ENOSPC
            or "No space left on device" in str(e)
        ):
            return True
        e = e.__cause__ or e.__context__
    return False


def human_bytes(n: float) -> str:
    """``1536`` -> ``'1.5 KB'`` (powers of 1024, one decimal)."""
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if n < 1024 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TB"


@contextlib.contextmanager
def disk_guard(folder: str | os.PathLike, what: str) -> Iterator[None]:
    """Turn a full disk inside the block into one :class:`DiskFull` that names ``folder``, ``what``
    was being written and the space still free there, whatever library raised it; other errors pass
    unchanged.

    Examples:
        >>> with disk_guard("runs/cpu/models/xx-s0", "the trained model"):   # doctest: +SKIP
        ...     model.save(...)
    """
    try:
        yield
    except DiskFull:
        raise
    except Exception as e:
        if not _is_disk_full(e):
            raise
        free = shutil.disk_usage(existing_ancestor(folder)).free
        raise DiskFull(
            f"no space left on the device while writing {what} in {folder} ({human_bytes(free)} "
            "free there): free some space, or use a folder on a larger disk (a rerun resumes)"
        ) from e


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path to write; on success it replaces ``path`` atomically, on error it is
    removed.

    ``with atomic_path(p) as tmp: df.to_parquet(tmp)``. The temporary name keeps the target's suffix
    (``.<name>.<pid>.<id>.tmp<suffix>``) for writers that pick a format from it (``np.save``)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = tmp_name(path)
    tmp = tmp.with_name(tmp.name + path.suffix)
    try:
        with disk_guard(path.parent, path.name):
            yield tmp
            os.replace(tmp, path)
    finally:
        if tmp.exists():
            if tmp.is_dir():
                shutil.rmtree(tmp, ignore_errors=True)
            else:
                tmp.unlink(missing_ok=True)


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(path)


def atomic_write_bytes(path: str | os.PathLike, blob: bytes) -> Path:
    with atomic_path(path) as tmp:
        tmp.write_bytes(blob)
    return Path(path)


def atomic_write_json(path: str | os.PathLike, obj, **kw) -> Path:
    return atomic_write_text(path, json.dumps(obj, **{"indent": 1, "default": str, **kw}))


def sha256_file(path: str | os.PathLike) -> str:
    """The sha256 of a file, read in 4 MiB chunks."""
    import hashlib

    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 22), b""):
            h.update(chunk)
    return h.hexdigest()


def write_checksums(
    folder: str | os.PathLike,
    record: str,
    info: dict | None = None,
    files: Iterable[str | os.PathLike] | None = None,
) -> Path:
    """Write ``folder/record``: ``info`` plus ``files``, the sha256 of every file that makes the
    folder whole (default: every file under it), keyed by its path relative to ``folder`` (``../``
    for a file beside it). :func:`checksums_match` is the matching check; build_once uses the pair
    as its ``done`` test.

    Examples:
        >>> write_checksums(  # doctest: +SKIP
        ...     model_dir, "hbkit_provenance.json", {"model": "intfloat/multilingual-e5-small"}
        ... )
    """
    folder = Path(folder)
    files = (
        sorted(p for p in folder.rglob("*") if p.is_file())
        if files is None
        else [Path(f) for f in files]
    )
    sums = {os.path.relpath(f, folder): sha256_file(f) for f in files}
    return atomic_write_json(folder / record, {**(info or {}), "files": sums})


def checksums_match(folder: str | os.PathLike, record: str) -> bool:
    """Whether ``folder`` is whole: its ``record`` (:func:`write_checksums`) lists at least one file
    and every listed file has its recorded sha256. A missing, damaged or outdated record, or a
    truncated, emptied or missing file, answers False (never raises), so the folder is built
    again."""
    folder = Path(folder)
    try:
        sums = json.loads((folder / record).read_text())["files"]
        return bool(sums) and all(
            sha256_file(folder / rel) == digest for rel, digest in sums.items()
        )
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return False


def lock_for(path: str | os.PathLike) -> FileLock:
    """The file lock guarding ``path`` (``<path>.lock`` beside it)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    return FileLock(str(path.with_name(path.name + ".lock")))


def build_once(
    target: str | os.PathLike,
    build: Callable[[Path], None],
    is_complete: Callable[[Path], bool],
    timeout: float = -1,
) -> Path:
    """Return ``target`` (a file or folder), building it with ``build(tmp)`` if
    ``is_complete(target)`` is false.

    Safe when many processes call it at once on an empty cache: one takes ``<target>.lock`` and
    builds into a per-process temporary path, which is renamed onto ``target`` only after ``build``
    returned and ``is_complete(tmp)`` holds; the others block on the lock (``timeout`` seconds, -1 =
    no limit) and find the finished target. A stale or half-written target (``is_complete`` false)
    is replaced."""
    target = Path(target)
    if is_complete(target):
        return target
    with lock_for(target).acquire(timeout=timeout):
        if is_complete(target):  # another process built it while we waited
            return target
        # a killed builder's half build: every builder of this target holds this lock, so any other
        # is stale
        remove_stale_tmp(target.parent, recursive=False, prefix=target.name + ".", only_dead=False)
        tmp = tmp_name(target)
        try:
            with disk_guard(target.parent, f"the cache entry {target.name}"):
                build(tmp)
            if not is_complete(tmp):
                raise RuntimeError(f"building {target} did not produce a complete result in {tmp}")
            if target.is_dir():
                shutil.rmtree(target)
            elif target.exists():
                target.unlink()
            os.replace(tmp, target)
        finally:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True) if tmp.is_dir() else tmp.unlink(
                    missing_ok=True
                )
    return target


def check_folder(path: str | os.PathLike, option: str = "--out") -> Path:
    """A folder argument checked before any work (``option`` names it in the message): not empty,
    not a file, not under a file, and writable where it would be created. Returns it as a ``Path``;
    nothing is created.

    Examples:
        >>> check_folder("runs/cpu")
        PosixPath('runs/cpu')
    """
    if path is None or not str(path).strip():
        raise ValueError(
            f"{option} is empty: name a folder (it is created if absent), or leave the option out"
        )
    p = Path(path).expanduser()
    if p.exists() and not p.is_dir():
        raise ValueError(
            f"{option} {p} is a file, not a folder: name a folder (it is created if absent)"
        )
    anc = existing_ancestor(p)
    if not anc.is_dir():
        raise ValueError(
            f"{option} {p}: {anc} is a file, so no folder can be made below it; name another folder"
        )
    if not os.access(anc, os.W_OK | os.X_OK):
        raise ValueError(
            f"{option} {p}: {anc} is not writable by this user; name a folder you can write to"
        )
    return p


class RunLock:
    """Exclusive use of a run folder: ``with RunLock(out): ...`` (``RunLock(out, wait=60)``: wait up
    to a minute).

    Writes ``<out>/.lock`` (an OS file lock) and ``<out>/.lock.owner`` (PID and host, for the
    message). A second process entering the same folder waits up to ``wait`` seconds, saying who
    holds it, then gets :class:`FolderInUse` naming the holder (at once with ``wait=0``). When the
    block ends with an error (a refused run), the lock file it made and a folder it made that holds
    nothing else are removed again: a refusal leaves the disk as it was."""

    def __init__(self, folder: str | os.PathLike, wait: float = 0):
        self.folder = check_folder(folder, "the run folder")
        self._lock = FileLock(str(self.folder / ".lock"))
        self._created: list[Path] = []  # the folders __enter__ makes, innermost first
        # seconds to wait for a holder (grid processes hold it for seconds); 0: refuse at once
        self.wait = wait

    def __enter__(self) -> "RunLock":
        anc = existing_ancestor(self.folder)
        self._created = [
            d for d in (self.folder, *self.folder.parents) if d != anc and anc in d.parents
        ]
        self.folder.mkdir(parents=True, exist_ok=True)
        self._lock_made = not (self.folder / ".lock").exists()
        try:
            self._lock.acquire(timeout=0)
        except Timeout:
            if not self.wait:
                raise FolderInUse(
                    f"{self.folder} is in use by {self.owner()}; wait for it to finish, or use "
                    "another --out"
                ) from None
            import logging

            logging.getLogger(__name__).info(
                "%s: waiting up to %.0f s for %s (writing the folder's shared files)",
                self.folder,
                self.wait,
                self.owner(),
            )
            try:
                self._lock.acquire(timeout=self.wait)
            except Timeout:
                raise FolderInUse(
                    f"{self.folder} is still in use by {self.owner()} after {self.wait:.0f} s; "
                    "wait for it to finish, or use another --out"
                ) from None
        atomic_write_json(
            self.folder / ".lock.owner", {"pid": os.getpid(), "host": socket.gethostname()}
        )
        try:
            remove_stale_tmp(self.folder)  # what killed runs left half-written in this folder
        except Exception:  # noqa: BLE001 - tidying never blocks the run, and never keeps the lock
            import logging

            logging.getLogger(__name__).warning(
                "could not remove stale temporary files in %s", self.folder, exc_info=True
            )
        return self

    def owner(self) -> str:
        """Who holds the lock, as its ``.lock.owner`` says (``PID 123 on host``)."""
        with contextlib.suppress(OSError, ValueError, KeyError, TypeError):
            info = json.loads((self.folder / ".lock.owner").read_text())
            return f"PID {info['pid']} on {info['host']}"
        return "another process"

    def __exit__(self, exc_type, *exc) -> None:
        with contextlib.suppress(OSError):
            (self.folder / ".lock.owner").unlink()
        if exc_type is not None:  # refused or failed: what the lock itself made goes again
            with contextlib.suppress(OSError):
                if self._lock_made:
                    (self.folder / ".lock").unlink()  # still held: no one else takes it meanwhile
                if self._created and not any(self.folder.iterdir()):
                    for d in self._created:
                        d.rmdir()
        self._lock.release()


def read_jsonl(path: str | os.PathLike) -> list[dict]:
    """The records of a JSON-lines log. A last line cut short (a kill mid-write) is left out with a
    warning naming the file; a damaged line elsewhere is a ``ValueError`` naming the file and the
    line."""
    import logging

    path = Path(path)
    lines = [
        l for l in path.read_text(encoding="utf-8", errors="replace").splitlines() if l.strip()
    ]
    out = []
    for i, line in enumerate(lines, 1):
        try:
            out.append(json.loads(line))
        except ValueError:
            if i == len(lines):
                logging.getLogger(__name__).warning(
                    "%s: its last line (%d) is cut short, as by a kill mid-write; left out", path, i
                )
                break
            raise ValueError(
                f"{path}: line {i} is not JSON ({line[:60]!r}); the file is damaged: delete it (or "
                "its run folder) to start that part afresh"
            ) from None
    return out
