"""The training-corpus cache: each corpus is built once per content key (builder version, name,
options, the input files' bytes) under a file lock, as a datasets folder with its stats; a damaged
entry is built again. The key costs a stat per input seen before (:mod:`hbkit.core.digests`), and a
build is stored under it only if the bytes it read are the key's (:func:`cached_corpus`)."""

from __future__ import annotations

import glob
import hashlib
import json
import logging
import os
import shutil
import time
from collections import Counter
from pathlib import Path
from typing import Iterable

import numpy as np
import pandas as pd
from filelock import Timeout

from hbkit.core.digests import (
    MAPPED_AT_LOAD,
    file_digests,
    identity,
    key_of_digests,
    known,
    racy,
    recording_reads,
    remember,
)
from hbkit.core.env import cache_dir
from hbkit.core.files import (
    atomic_write_json,
    build_once,
    disk_guard,
    lock_for,
    remove_stale_tmp,
    tmp_name,
)
from hbkit.data.registry import DataError

log = logging.getLogger(__name__)


_BUILD_VERSION = 2  # bump when a builder's output changes: it is part of every cache key


#: Counter of builds done by this process, per corpus name (tests and benchmarks read it).
BUILDS: Counter = Counter()


# --------------------------------------------------------------------------------------------------
# the cache
# --------------------------------------------------------------------------------------------------
def _cache_root() -> Path:
    return cache_dir() / "corpora"


def cache_key(name: str, files: Iterable[Path], options: dict) -> str:
    """:func:`hbkit.core.digests.content_key` of the builder version, the name, the options and the
    input files' bytes (in a fixed order: their names sorted)."""
    return _key(name, files, options)[0]


def _key(name: str, files: Iterable[Path], options: dict) -> tuple[str, dict[Path, str]]:
    """The cache key and the digests it was made of, by file
    (:func:`hbkit.core.digests.file_digests`)."""
    files = sorted((Path(f) for f in files), key=lambda f: (f.name, str(f)))
    digests = file_digests(files)
    return key_of_digests(digests, _BUILD_VERSION, name, options, [f.name for f in files]), dict(
        zip(files, digests)
    )


#: how many times a build starts again when its input files change under it before it gives up
BUILD_TRIES = 3


class InputsChanged(DataError):
    """An input file's bytes changed between the cache key and the end of the build (or while it
    waited on the lock)."""

    def __init__(self, path: Path, when: str):
        self.path, self.when = path, when
        super().__init__(f"{path} changed {when}")


def _changed(files: dict[Path, str], reads: dict[str, str]) -> Path | None:
    """The first input whose bytes differ from its digest in the key: by the digest of what the
    builder read, for a file it read through :func:`hbkit.core.digests.open_hashed`, else by the
    file's digest now (a stat when its identity is unchanged)."""
    for f, want in files.items():
        got = reads.get(os.path.realpath(f))
        if got is None:
            got = file_digests([f])[0]
        if got != want:
            return f
    return None


def _complete(folder: Path) -> bool:
    """Complete: ``COMPLETE`` lists every file of ``dataset/`` with its size, and each is there with
    that size (a file truncated or emptied after the build fails this, and the entry is built
    again)."""
    try:
        sizes = json.loads((folder / "COMPLETE").read_text())["sizes"]
        return (
            bool(sizes)
            and (folder / "dataset" / "state.json").is_file()
            and all((folder / rel).stat().st_size == n for rel, n in sizes.items())
        )
    except (OSError, ValueError, KeyError, TypeError):
        return False


def cached_corpus(name: str, files: list[Path], options: dict, build, rebuild: bool) -> Path:
    """Build (once, under a file lock) or reuse the cache folder of a corpus; return it.

    The key is made of the input files' digests (a stat each for files seen before; inputs never
    seen are read once, by the build itself: :func:`_first_sight`). A build stores its result under
    that key only if the bytes it read are the key's: it checks the inputs once it holds the lock
    (an edit while it waited) and after building, by the digests of what it read (an edit during the
    build); an input that changed starts it again under the new key, :data:`BUILD_TRIES` times, then
    is a :class:`InputsChanged`."""
    for attempt in range(1, BUILD_TRIES + 1):
        try:
            if not rebuild:
                folder = _first_sight(name, files, options, build)
                if folder is not None:
                    return folder
            return _cached_once(name, files, options, build, rebuild)
        except InputsChanged as e:
            if attempt == BUILD_TRIES:
                raise DataError(
                    f"corpus {name}: {e.path} changed {e.when}, {BUILD_TRIES} times in a row; "
                    "wait until "
                    "it is written completely (a download or copy still running?) and run again"
                ) from None
            log.warning(
                "corpus %s: %s changed %s; building again from its new bytes", name, e.path, e.when
            )
    raise AssertionError("unreachable")


def _cached_once(name: str, files: list[Path], options: dict, build, rebuild: bool) -> Path:
    key, digests = _key(name, files, options)
    target = _cache_root() / f"{name}-{key}"
    if rebuild and _complete(target):
        # is_complete is now false: build_once replaces it
        (target / "COMPLETE").unlink(missing_ok=True)

    def run(tmp: Path) -> None:
        if _key(name, files, options)[0] != key:  # edited while this process waited on the lock
            raise InputsChanged(
                _changed(digests, {}) or Path(files[0]), "while the build waited on the lock"
            )
        tmp.mkdir(parents=True)
        with recording_reads() as reads:
            stats = build(tmp)
        moved = _changed(digests, reads)
        if moved is not None:  # what was read is not what the key was made of: not stored under it
            raise InputsChanged(moved, "while the corpus was being built")
        _finish(tmp, name, options, digests, stats)

    folder = build_once(target, run, _complete)
    try:
        load_cached(folder)
    except Exception as e:  # noqa: BLE001 - a cached file truncated or emptied after the build: build again
        log.warning(
            "corpus cache %s is damaged (%s: %s); building it again",
            folder,
            type(e).__name__,
            str(e)[:80],
        )
        (folder / "COMPLETE").unlink(missing_ok=True)
        folder = build_once(target, run, _complete)
    return folder


def _finish(
    tmp: Path, name: str, options: dict, digests: dict[Path, str], stats: pd.DataFrame
) -> None:
    """Write a built entry's stats and, last, its ``COMPLETE`` record."""
    BUILDS[name] += 1
    stats.to_csv(tmp / "stats.csv", index=False)
    atomic_write_json(
        tmp / "stats.json",
        {
            "name": name,
            "options": options,
            "files": [str(f) for f in digests],
            "sha256": {str(f): d for f, d in digests.items()},
            "builder_pid": os.getpid(),
            "stats": stats.to_dict(orient="records"),
        },
    )
    atomic_write_json(
        tmp / "COMPLETE",
        {
            "sizes": {
                str(p.relative_to(tmp)): p.stat().st_size
                for p in sorted((tmp / "dataset").rglob("*"))
                if p.is_file()
            }
        },
    )


def _first_sight(name: str, files: list[Path], options: dict, build) -> Path | None:
    """Inputs of which some were never seen (no digest remembered): one pass over their bytes
    instead of two.

    The build runs first, hashing what it reads (:func:`hbkit.core.digests.recording_reads`), and
    its result is stored under the key of those digests (an input it did not read to its end through
    the hasher is hashed after it). The digests are remembered, so the next load costs a stat.
    Processes that see the same files (by identity) for the first time at once build once: they
    share a lock, and one that finds it held waits for it and returns None, for :func:`_cached_once`
    (a stat, then the entry the first one stored). Returns None at once when every input is
    remembered. When one was written within :data:`hbkit.core.digests.RACY_S` (its digest cannot be
    remembered yet) the hash-first path runs under the same lock and leaves a ``.hashed`` mark, so
    that a process seeing these files later, once they are no longer racy, hashes them and finds
    that entry instead of building it a second time."""
    files = sorted((Path(f) for f in files), key=lambda f: (f.name, str(f)))
    if all(known(f) is not None for f in files if f.is_file()):
        return None
    ident = {f: identity(f) if f.is_file() else None for f in files}
    tag = hashlib.blake2b(
        json.dumps(
            [_BUILD_VERSION, name, options, [(str(f), ident[f]) for f in files]],
            sort_keys=True,
            default=str,
        ).encode(),
        digest_size=10,
    ).hexdigest()
    lock_path = _cache_root() / f".first-sight-{name}-{tag}"
    lock = lock_for(lock_path)
    try:
        lock.acquire(timeout=0)
    except Timeout:
        # another process is reading these files for the first time: its entry will be there
        log.warning(
            "corpus %s: another process is building it from these files; waiting for it (lock %s)",
            name,
            lock_path.name,
        )
        with lock.acquire():
            return None
    try:
        if all(known(f) is not None for f in files if f.is_file()):
            return None
        done = lock_path.with_name(lock_path.name + ".hashed")
        if done.exists() or any(i is not None and racy(i, time.time_ns()) for i in ident.values()):
            # written just now (a digest that cannot be remembered), or built so before from these
            # very files: hash first, under this lock, so that a process seeing them later finds the
            # entry, not a second build
            folder = _cached_once(name, files, options, build, False)
            atomic_write_json(done, {"entry": folder.name})
            return folder
        remove_stale_tmp(_cache_root(), recursive=False, prefix=f"{name}-first-sight.")
        tmp = tmp_name(_cache_root() / f"{name}-first-sight")
        try:
            began = time.time_ns()
            with disk_guard(_cache_root(), f"the cache entry {name}"):
                tmp.mkdir(parents=True)
                with recording_reads() as reads:
                    stats = build(tmp)
            read_whole = {f: reads.get(os.path.realpath(f)) for f in files}
            moved = next(
                (
                    f
                    for f in files
                    if read_whole[f] is None and (identity(f) if f.is_file() else None) != ident[f]
                ),
                None,
            )
            # a file not hashed as it was read changed: its digest now may not be what was read
            if moved is not None:
                raise InputsChanged(moved, "while the corpus was being built")
            digests = {
                f: d if d is not None else file_digests([f])[0] for f, d in read_whole.items()
            }
            for f, d in read_whole.items():
                if d is not None:
                    remember(f, ident[f], d, began)
            key = key_of_digests(
                list(digests.values()), _BUILD_VERSION, name, options, [f.name for f in files]
            )
            _finish(tmp, name, options, digests, stats)
            return build_once(
                _cache_root() / f"{name}-{key}", lambda t: os.replace(tmp, t), _complete
            )
        finally:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)
    finally:
        lock.release()


def load_cached(folder: Path):
    """The dataset of a corpus-cache entry, memory-mapped. It carries the identities its files had
    when they were mapped (:data:`hbkit.core.digests.MAPPED_AT_LOAD`, taken before and after; left
    unset if a file changed in between), which let :func:`hbkit.train.run_folder.pairs_fingerprint`
    remember its hash instead of reading every row again."""
    import datasets

    def idents() -> dict:
        return {
            os.path.abspath(f): identity(f)
            for f in sorted(glob.glob(os.path.join(str(folder / "dataset"), "*.arrow")))
        }

    before = idents()
    ds = datasets.load_from_disk(str(folder / "dataset"))
    if before and idents() == before:
        setattr(ds, MAPPED_AT_LOAD, before)
    return ds


def corpus_stats(dataset) -> pd.DataFrame:
    """The per-language stats table saved beside a cached corpus (rows, groups, skip counts by
    reason)."""
    files = getattr(dataset, "cache_files", None) or []
    if not files:
        raise DataError(
            "this dataset was not loaded from the corpus cache (no cache files); build it with "
            "load_training_corpus or build_corpus to get its stats"
        )
    folder = Path(files[0]["filename"]).parent.parent
    if not (folder / "stats.csv").is_file():
        raise DataError(
            f"{folder}: no stats.csv beside the dataset; it is not a corpus cache folder"
        )
    return pd.read_csv(folder / "stats.csv")


def save_parts(tmp: Path, parts: list[Path]) -> None:
    """Concatenate per-language Arrow stream files (memory-mapped) into ``tmp/dataset`` and delete
    them."""
    import datasets

    dsets = [datasets.Dataset.from_file(str(p)) for p in parts]
    ds = datasets.concatenate_datasets(dsets) if len(dsets) > 1 else dsets[0]
    ds.save_to_disk(str(tmp / "dataset"), max_shard_size="500MB")
    del ds, dsets
    shutil.rmtree(tmp / "_parts", ignore_errors=True)


def write_part(path: Path, cols: dict[str, list]) -> Path:
    """Write one language's rows, sorted by group, as an Arrow stream file (the format
    ``Dataset.from_file`` maps)."""
    import pyarrow as pa

    table = pa.Table.from_pydict({k: pa.array(v, type=pa.string()) for k, v in cols.items()})
    table = table.sort_by([("group", "ascending")])
    path.parent.mkdir(parents=True, exist_ok=True)
    with pa.OSFile(str(path), "wb") as sink, pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table, max_chunksize=50_000)
    return path


def single_language_counts(folder: Path) -> dict[str, int]:
    """Per language: rows whose group has a row in no other language (kept, but useless for X-Y
    batches)."""
    import datasets
    import pyarrow.compute as pc

    t = (
        datasets.load_from_disk(str(folder))
        .select_columns(["group", "lang"])
        .with_format("arrow")[:]
    )
    g = pc.dictionary_encode(t["group"]).combine_chunks().indices.to_numpy()
    counts = np.bincount(g)
    single = counts[g] == 1
    langs = t["lang"].to_numpy(zero_copy_only=False)
    return dict(Counter(langs[single].tolist()))


def save_table(tmp: Path, table) -> None:
    """Save an Arrow table as ``tmp/dataset`` (``datasets`` format) without hashing its contents for
    a fingerprint (``Dataset.from_pandas`` pickles the whole frame to make one: seconds per GB)."""
    import uuid

    import datasets

    datasets.Dataset(table, fingerprint=uuid.uuid4().hex).save_to_disk(
        str(tmp / "dataset"), max_shard_size="500MB"
    )


def save_frame(tmp: Path, df: pd.DataFrame) -> None:
    import datasets

    datasets.Dataset.from_pandas(df, preserve_index=False).save_to_disk(str(tmp / "dataset"))
