"""Sharded, resumable encoding of corpora too large for memory, and the reading of the shard folder.

Shard folder (:func:`encode_corpus`)::

    manifest.json      model fingerprint, passage prompt, dtype, shard size, every shard's record
    shard-00000.npy    (count, dim) embeddings, float16 (or float32), L2-normalised
    shard-00000.ids    the shard's docids, one per line (UTF-8)
    shard-00000.json   the shard's record: count, first/last docid, sha256 of texts, ids and .npy

Shard ``i`` holds documents ``[i * shard_size, (i + 1) * shard_size)`` of the stream. Every file is
written atomically (:func:`hbkit.core.files.atomic_path`) by the one process that owns it: shard
``i`` by rank ``i % world_size``, ``manifest.json`` by rank 0 only. :func:`load_manifest`,
:func:`iter_shards` and :func:`iter_docids` read a finished folder.

The search over a shard folder is :func:`hbkit.retrieval.faiss_search.search` (exact and streaming,
or faiss IVF / HNSW), its TREC run files :func:`hbkit.retrieval.faiss_search.write_trec_run`, and
the one call for MIRACL-style benchmarks :func:`hbkit.retrieval.corpus_eval.evaluate_corpus`.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from pathlib import Path
from typing import Callable, Iterable, Iterator, Sequence

import filelock
import numpy as np

from hbkit.core.env import world
from hbkit.core.files import (
    atomic_path,
    atomic_write_json,
    atomic_write_text,
    lock_for,
    sha256_file,
)
from hbkit.data.releases.miracl import passage_text
from hbkit.encoders.encode import embed_texts
from hbkit.encoders.load import fingerprint as model_fingerprint

log = logging.getLogger(__name__)


MANIFEST = "manifest.json"


_FORMAT = 1


DTYPES = ("float16", "float32")


class SearchError(ValueError):
    """A shard folder, index option or argument is unusable; the message names it and the fix."""


class ManifestMismatch(SearchError):
    """The shard folder was written by another model or with other settings."""


# --------------------------------------------------------------------------------------------------
# distributed helpers
# --------------------------------------------------------------------------------------------------
def _sha256_file(path: Path) -> str:
    return sha256_file(path)


def _shard_name(i: int) -> str:
    return f"shard-{i:05d}"


# --------------------------------------------------------------------------------------------------
# encoding
# --------------------------------------------------------------------------------------------------
def _as_pairs(docs: Iterable) -> Iterator[tuple[str, str]]:
    for n, d in enumerate(docs):
        if len(d) == 3:
            docid, text = d[0], passage_text(d[1], d[2])
        elif len(d) == 2:
            docid, text = d
        else:
            raise SearchError(
                f"document {n}: expected (docid, text) or (docid, title, text), got {len(d)} fields"
            )
        if not isinstance(docid, str) or not docid or "\n" in docid or "\r" in docid:
            raise SearchError(
                f"document {n}: docid {docid!r} must be a non-empty string without line breaks"
            )
        yield docid, text


def _chunks(pairs: Iterator[tuple[str, str]], size: int) -> Iterator[tuple[list[str], list[str]]]:
    ids, texts = [], []
    for d, t in pairs:
        ids.append(d)
        texts.append(t)
        if len(ids) == size:
            yield ids, texts
            ids, texts = [], []
    if ids:
        yield ids, texts


def _texts_sha(ids: Sequence[str], texts: Sequence[str]) -> str:
    h = hashlib.sha256()
    for d, t in zip(ids, texts):
        h.update(d.encode("utf-8") + b"\t" + t.encode("utf-8") + b"\n")
    return h.hexdigest()


def _shard_valid(out: Path, rec: dict | None, texts_sha: str | None = None) -> bool:
    """A shard is reusable when its record exists, matches the stream's texts (when given), and its
    .npy and .ids files have the recorded sha256 (and the .npy loads with the recorded shape)."""
    if not rec:
        return False
    name = _shard_name(rec["index"])
    try:
        if texts_sha is not None and rec["texts_sha256"] != texts_sha:
            return False
        if (
            _sha256_file(out / f"{name}.ids") != rec["ids_sha256"]
            or _sha256_file(out / f"{name}.npy") != rec["npy_sha256"]
        ):
            return False
        arr = np.load(out / f"{name}.npy", mmap_mode="r")
        return arr.shape[0] == rec["count"] and str(arr.dtype) == rec["dtype"]
    except (OSError, ValueError, KeyError):
        return False


def _read_json(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def _header(
    fp: str, prompt: str | None, prompt_name: str | None, dtype: str, shard_size: int
) -> dict:
    return {
        "format": _FORMAT,
        "fingerprint": fp,
        "prompt_name": prompt_name,
        "prompt": prompt,
        "dtype": dtype,
        "shard_size": shard_size,
    }


def _check_header(out: Path, found: dict, want: dict, force: bool) -> None:
    diff = [k for k in want if found.get(k) != want[k]]
    if not diff:
        return
    if "fingerprint" in diff:
        msg = (
            f"{out} holds embeddings of another model (fingerprint {found.get('fingerprint')}); "
            f"this model is {want['fingerprint']}. Use another folder, or force=True (--force) to "
            "delete them and re-encode"
        )
    else:
        msg = (
            f"{out} was encoded with other settings ("
            + ", ".join(f"{k}: {found.get(k)!r} there, {want[k]!r} now" for k in diff)
            + "). Use another folder, or force=True (--force) to delete them and re-encode"
        )
    raise ManifestMismatch(msg)


def encode_corpus(
    encoder,
    docs_iter_factory: Callable[[], Iterable],
    out_dir: str | os.PathLike,
    shard_size: int = 100_000,
    dtype: str = "float16",
    batch_size: int = 64,
    progress: bool = True,
    prompt_name: str | None = "passage",
    force: bool = False,
    on_shard: Callable[[dict], None] | None = None,
    wait_timeout: float | None = None,
    fingerprint: str | None = None,
    rank: int | None = None,
    world_size: int | None = None,
) -> dict:
    """Encode a streamed corpus into embedding shards under ``out_dir``; return the complete
    manifest.

    ``docs_iter_factory()`` yields ``(docid, text)`` or ``(docid, title, text)`` (joined with
    :func:`hbkit.data.releases.miracl.passage_text`) in a fixed order; it is called once per run and
    consumed one shard at a time, so memory holds one shard's texts and embeddings, never the
    corpus.

    Guarantees:

    * **Resume.** A shard whose record, texts hash, .ids and .npy sha256 all match is kept; any
      other (missing, truncated, corrupt, or whose texts changed) is encoded again. Re-running after
      a kill gives files byte-identical to an uninterrupted run (same model, same batch size, same
      threads).
    * **Model.** ``manifest.json`` (written at the start) records the model fingerprint
      (:func:`hbkit.encoders.load.fingerprint`), prompt, dtype and shard size; a folder holding
      another model's or other settings' shards raises :class:`ManifestMismatch` naming both, unless
      ``force=True``, which deletes them first.
    * **Several processes.** Under torchrun / accelerate (``RANK``/``WORLD_SIZE``, or an initialised
      torch.distributed), rank r encodes the shards ``i`` with ``i % world_size == r``; every rank
      reads the stream (skipping the others' texts without encoding them). Rank 0 then waits for
      every shard record (``wait_timeout`` seconds, None = no limit) and writes the manifest; the
      other ranks wait for that manifest (``rank``/``world_size`` override the detection). One file,
      one writer: shard files by their rank, the manifest by rank 0, and a lock per (folder, rank)
      refuses a second process in the same role.
    * ``on_shard(record)`` is called after each shard this process wrote (progress hooks, tests).
    """
    if dtype not in DTYPES:
        raise SearchError(f"dtype={dtype!r}: use float16 or float32")
    if shard_size < 1 or batch_size < 1:
        raise SearchError(f"shard_size={shard_size} and batch_size={batch_size} must be >= 1")
    if fingerprint is None:
        fingerprint = model_fingerprint(encoder)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    prompts = getattr(encoder, "prompts", None) or {}
    pname = prompt_name if prompt_name in prompts else None
    want = _header(fingerprint, prompts.get(pname) if pname else None, pname, dtype, shard_size)
    rank, size = world() if rank is None and world_size is None else (rank or 0, world_size or 1)
    if not 0 <= rank < size:
        raise SearchError(f"rank={rank} must be in [0, world_size={size})")
    lock = lock_for(out / f".rank{rank}-of-{size}")
    try:
        lock.acquire(timeout=0)
    except filelock.Timeout:
        raise SearchError(
            f"{out}: another process is already encoding rank {rank} of {size} here; wait for "
            "it or use another folder"
        ) from None
    try:
        _open_folder(out, want, rank, force, wait_timeout)
        n_total, n_shards = _encode_my_shards(
            encoder,
            docs_iter_factory,
            out,
            want,
            rank,
            size,
            shard_size,
            pname,
            batch_size,
            dtype,
            progress,
            on_shard,
        )
        return _rendezvous(out, want, rank, n_total, n_shards, wait_timeout)
    finally:
        lock.release()


def _open_folder(out: Path, want: dict, rank: int, force: bool, wait_timeout: float | None) -> None:
    """Check what ``out`` holds against this run's header (model, prompt, dtype, shard size):
    another model's shards are a :class:`ManifestMismatch`, or with ``force`` deleted by rank 0
    while the others wait; rank 0 then starts an incomplete manifest."""
    fingerprint = want["fingerprint"]
    found = _read_json(out / MANIFEST)
    # no manifest yet: a shard record of an earlier run may still say who wrote it
    if found is None:
        first = _read_json(out / f"{_shard_name(0)}.json")
        found = first.get("header") if first else None
    if found is not None:
        try:
            _check_header(out, {k: found.get(k) for k in want}, want, force)
        except ManifestMismatch:
            if not force:
                raise
            if rank == 0:
                log.warning("force: deleting the shards of %s", out)
                for p in out.glob("shard-*"):
                    p.unlink()
                (out / MANIFEST).unlink(missing_ok=True)
            else:
                _wait(
                    lambda: (
                        _read_json(out / MANIFEST) is None
                        or _read_json(out / MANIFEST).get("fingerprint") == fingerprint
                    ),
                    wait_timeout,
                    f"rank 0 to clear {out}",
                )
    if rank == 0 and (found is None or found.get("fingerprint") != fingerprint or force):
        atomic_write_json(out / MANIFEST, {**want, "complete": False, "shards": []})


def _encode_my_shards(
    encoder,
    docs_iter_factory,
    out: Path,
    want: dict,
    rank: int,
    size: int,
    shard_size: int,
    pname: str | None,
    batch_size: int,
    dtype: str,
    progress: bool,
    on_shard,
) -> tuple[int, int]:
    """Read the whole stream, one shard at a time, and encode this rank's shards that are not
    already valid there. Returns (passages in the stream, shards in the stream)."""
    from tqdm.auto import tqdm

    n_total, written, reused = 0, 0, 0
    t0 = time.perf_counter()
    bar = tqdm(
        desc=f"encode {out.name}" + (f" [rank {rank}/{size}]" if size > 1 else ""),
        unit="passages",
        disable=not progress,
        position=rank if size > 1 else None,
        leave=False,
        dynamic_ncols=True,
    )
    n_shards = 0
    for i, (ids, texts) in enumerate(_chunks(_as_pairs(docs_iter_factory()), shard_size)):
        n_shards = i + 1
        n_total += len(ids)
        if i % size != rank:
            continue
        tsha = _texts_sha(ids, texts)
        rec_path = out / f"{_shard_name(i)}.json"
        old = _read_json(rec_path)
        if old is not None and old.get("header") == want and _shard_valid(out, old, tsha):
            reused += 1
            bar.update(len(ids))
            continue
        if old is not None:
            log.warning(
                "%s: shard %d is missing, truncated, corrupt or stale; encoding it again", out, i
            )
        rec = _encode_shard(encoder, out, i, ids, texts, tsha, pname, batch_size, dtype, want)
        written += 1
        bar.update(len(ids))
        if on_shard is not None:
            on_shard(rec)
    bar.close()
    log.info(
        "%s rank %d/%d: %d shards encoded, %d reused, %d passages in the stream, %.1f s",
        out,
        rank,
        size,
        written,
        reused,
        n_total,
        time.perf_counter() - t0,
    )
    if n_total == 0:
        raise SearchError(f"{out}: the corpus stream is empty; nothing to encode")
    return n_total, n_shards


def _rendezvous(
    out: Path, want: dict, rank: int, n_total: int, n_shards: int, wait_timeout: float | None
) -> dict:
    """Rank 0 waits for every shard's record and writes the complete manifest; the other ranks wait
    for it."""
    if rank == 0:
        records = _wait_records(out, list(range(n_shards)), want, wait_timeout)
        manifest = {
            **want,
            "complete": True,
            "n_docs": n_total,
            "dim": records[0]["dim"],
            "shards": records,
        }
        atomic_write_json(out / MANIFEST, manifest)
        return manifest
    _wait(
        lambda: (
            (_read_json(out / MANIFEST) or {}).get("complete")
            and len(_read_json(out / MANIFEST)["shards"]) == n_shards
        ),
        wait_timeout,
        f"rank 0's manifest in {out}",
    )
    return _read_json(out / MANIFEST)


def _encode_shard(
    encoder,
    out: Path,
    i: int,
    ids: list[str],
    texts: list[str],
    tsha: str,
    pname: str | None,
    batch_size: int,
    dtype: str,
    header: dict,
) -> dict:
    emb = np.ascontiguousarray(embed_texts(encoder, texts, pname, batch_size).astype(dtype))
    name = _shard_name(i)
    with atomic_path(out / f"{name}.npy") as tmp:
        np.save(tmp, emb)
    atomic_write_text(out / f"{name}.ids", "".join(d + "\n" for d in ids))
    rec = {
        "index": i,
        "count": len(ids),
        "dim": int(emb.shape[1]),
        "dtype": dtype,
        "first": ids[0],
        "last": ids[-1],
        "texts_sha256": tsha,
        "ids_sha256": _sha256_file(out / f"{name}.ids"),
        "npy_sha256": _sha256_file(out / f"{name}.npy"),
        "header": header,
    }
    atomic_write_json(out / f"{name}.json", rec)  # last: the record vouches for the two files above
    return rec


def _wait(cond: Callable[[], bool], timeout: float | None, what: str, poll: float = 0.5) -> None:
    t0 = time.monotonic()
    last = t0
    while not cond():
        if timeout is not None and time.monotonic() - t0 > timeout:
            raise SearchError(f"timed out after {timeout:.0f} s waiting for {what}")
        if time.monotonic() - last > 60:
            log.info("still waiting for %s", what)
            last = time.monotonic()
        time.sleep(poll)


def _wait_records(out: Path, expected: list[int], want: dict, timeout: float | None) -> list[dict]:
    def ready():
        return all(
            (r := _read_json(out / f"{_shard_name(i)}.json")) is not None
            and r.get("header") == want
            for i in expected
        )

    _wait(ready, timeout, f"the shards of the other ranks in {out}")
    recs = []
    for i in expected:
        rec = _read_json(out / f"{_shard_name(i)}.json")
        if not _shard_valid(out, rec):
            raise SearchError(
                f"{out}: shard {i} does not match its record after encoding; run again to "
                "re-encode it"
            )
        recs.append({k: v for k, v in rec.items() if k != "header"})
    return recs


def load_manifest(shard_dir: str | os.PathLike) -> dict:
    """The complete manifest of a shard folder; :class:`SearchError` when absent or incomplete."""
    m = _read_json(Path(shard_dir) / MANIFEST)
    if not m or not m.get("complete"):
        raise SearchError(
            f"{shard_dir}: no complete {MANIFEST}; run encode_corpus on it first (it resumes)"
        )
    return m


def iter_shards(shard_dir: str | os.PathLike) -> Iterator[tuple[list[str], np.ndarray]]:
    """``(docids, embeddings)`` per shard, in order; embeddings memory-mapped in their stored
    dtype."""
    shard_dir = Path(shard_dir)
    for rec in load_manifest(shard_dir)["shards"]:
        name = _shard_name(rec["index"])
        ids = (shard_dir / f"{name}.ids").read_text(encoding="utf-8").splitlines()
        emb = np.load(shard_dir / f"{name}.npy", mmap_mode="r")
        if len(ids) != rec["count"] or emb.shape[0] != rec["count"]:
            raise SearchError(
                f"{shard_dir}/{name}: {len(ids)} ids and {emb.shape[0]} rows, record says "
                f"{rec['count']}; run encode_corpus again to repair it"
            )
        yield ids, emb


def iter_docids(shard_dir: str | os.PathLike) -> Iterator[str]:
    """Every docid of a shard folder, in corpus order (from the .ids files, not the corpus)."""
    for rec in load_manifest(shard_dir)["shards"]:
        with open(Path(shard_dir) / f"{_shard_name(rec['index'])}.ids", encoding="utf-8") as fh:
            for line in fh:
                yield line.rstrip("\n")
