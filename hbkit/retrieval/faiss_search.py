"""Exact or faiss top-k search over a shard folder (:mod:`hbkit.retrieval.shards`), and TREC run
files.

:func:`search` with ``index="flat"`` (default) is an exact inner-product search that *streams* the
shards: each block of at most ``block`` rows is converted to float32 and searched with
``faiss.knn``, and the per-block top-k are merged with ``faiss.ResultHeap``; peak memory is the
queries, one float32 block and the heap, whatever the corpus size (``benchmarks/bench_search.py``:
2M x 384). ``"ivf"`` (``IndexIVFFlat``) and ``"hnsw"`` (``IndexHNSWFlat``) build an index shard by
shard (the index holds the corpus as float32: 4 bytes x dim per passage) and report their recall@k
against the exact search on the same queries. :func:`write_trec_run` writes a run as a TREC file.
"""

from __future__ import annotations

import functools
import logging
import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np

from hbkit.core.files import atomic_write_text
from hbkit.retrieval.ir_metrics import trec_order
from hbkit.retrieval.shards import SearchError, iter_shards, load_manifest

log = logging.getLogger(__name__)


INDEXES = ("flat", "ivf", "hnsw")


# --------------------------------------------------------------------------------------------------
# search
# --------------------------------------------------------------------------------------------------
@functools.lru_cache(maxsize=1)
def _gpu_available(faiss) -> bool:
    """Whether faiss sees a GPU; the first call on a machine without one says why, once per
    process."""
    ok = hasattr(faiss, "StandardGpuResources") and faiss.get_num_gpus() > 0
    if not ok:
        log.info(
            "faiss search runs on the CPU: %s",
            "no GPU visible to faiss"
            if hasattr(faiss, "StandardGpuResources")
            else "this faiss build has no GPU support (faiss-cpu; install faiss-gpu on a GPU "
            "machine)",
        )
    return ok


@dataclass
class SearchResult:
    """Top-k per query: ``scores`` (n x k float32, descending), ``docids`` (n lists of k; fewer when
    the corpus is smaller), ``recall_vs_exact`` (approximate indexes: mean |top-k ∩ exact top-k| /
    k) and ``seconds`` per stage."""

    scores: np.ndarray
    docids: list[list[str]]
    index: str
    recall_vs_exact: float | None = None
    seconds: dict = field(default_factory=dict)

    def to_run(self, qids: Sequence[str]) -> dict[str, dict[str, float]]:
        """A run ``{qid: {docid: score}}`` (pytrec_eval's and ranx's input), each query's docids
        inserted in trec_eval order (score descending, ties by docid descending). For ranx on a run
        with tied scores use :func:`hbkit.retrieval.ir_metrics.untie` (ranx's own tie order is not
        defined)."""
        run = {}
        for q, s, d in zip(qids, self.scores, self.docids):
            pairs = sorted(
                zip(d, (float(x) for x in s[: len(d)])), key=lambda p: (p[1], p[0]), reverse=True
            )
            run[q] = dict(pairs)
        return run


def _exact_stream(shard_dir: Path, Q: np.ndarray, k: int, block: int, use_gpu: bool):
    import faiss

    nq = len(Q)
    heap = faiss.ResultHeap(nq, k, keep_max=True)
    all_ids: list[str] = []
    offset = 0
    res = faiss.StandardGpuResources() if use_gpu else None
    buf = None
    for ids, emb in iter_shards(shard_dir):
        for s in range(0, len(ids), block):
            X = _to_f32(emb[s : s + block], buf)
            buf = X if buf is None or len(X) > len(buf) else buf
            kk = min(k, len(X))  # the heap takes any number of columns
            if use_gpu:
                D, I = faiss.knn_gpu(res, Q, X, kk, metric=faiss.METRIC_INNER_PRODUCT)
            else:
                D, I = faiss.knn(Q, X, kk, metric=faiss.METRIC_INNER_PRODUCT)
            heap.add_result(
                np.ascontiguousarray(D, dtype=np.float32),
                np.ascontiguousarray(np.where(I >= 0, I + offset + s, -1), dtype=np.int64),
            )
        all_ids.extend(ids)
        offset += len(ids)
    heap.finalize()
    return heap.D, heap.I, all_ids


def _to_f32(chunk: np.ndarray, buf: np.ndarray | None) -> np.ndarray:
    """``chunk`` as float32 in a reused buffer (a fresh 100 MB array per block costs more in page
    faults than the conversion itself; torch's vectorised half->float copy is ~8x numpy's
    ``astype``)."""
    import warnings

    import torch

    n = len(chunk)
    if buf is None or len(buf) < n:
        buf = np.empty(chunk.shape, dtype=np.float32)
    out = buf[:n]
    # a read-only memory map: torch warns about writes, and we only read it
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        torch.from_numpy(out).copy_(torch.from_numpy(np.asarray(chunk)))
    return out


def _build_index(
    shard_dir: Path,
    kind: str,
    dim: int,
    n_docs: int,
    nlist: int | None,
    nprobe: int,
    hnsw_m: int,
    ef_search: int,
    use_gpu: bool,
    train_size: int,
):
    import faiss

    if kind == "hnsw":
        index = faiss.IndexHNSWFlat(dim, hnsw_m, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efSearch = ef_search
    else:
        nlist = nlist or max(1, min(int(4 * math.sqrt(n_docs)), n_docs // 39 or 1))
        quantizer = faiss.IndexFlatIP(dim)
        index = faiss.IndexIVFFlat(quantizer, dim, nlist, faiss.METRIC_INNER_PRODUCT)
        # train on an evenly spaced sample of the shards (at most train_size rows, read block by
        # block)
        step = max(1, n_docs // train_size)
        sample, seen = [], 0
        for _, emb in iter_shards(shard_dir):
            idx = np.arange((-seen) % step, len(emb), step)
            sample.append(np.asarray(emb[idx], dtype=np.float32))
            seen += len(emb)
        index.train(np.ascontiguousarray(np.concatenate(sample)[:train_size]))
        index.nprobe = nprobe
    ids_all: list[str] = []
    for ids, emb in iter_shards(shard_dir):
        for s in range(0, len(ids), 65536):
            index.add(np.ascontiguousarray(emb[s : s + 65536], dtype=np.float32))
        ids_all.extend(ids)
    if use_gpu and kind == "ivf":
        index = faiss.index_cpu_to_all_gpus(index)
    return index, ids_all


def search(
    shard_dir: str | os.PathLike,
    Q: np.ndarray,
    k: int = 100,
    index: str = "flat",
    block: int = 262_144,
    nlist: int | None = None,
    nprobe: int = 32,
    hnsw_m: int = 32,
    ef_search: int = 256,
    train_size: int = 200_000,
    measure_recall: bool = True,
    gpu: bool | None = None,
) -> SearchResult:
    """Top-``k`` documents by inner product for every row of ``Q`` (float32, normalised like the
    shards).

    * ``index="flat"`` (default): exact; streams the shards in blocks of ``block`` rows (float16 ->
      float32 per block), ``faiss.knn`` per block, merged with ``faiss.ResultHeap``. Peak memory
      ``~ 4 * dim * block + 12 * nq * k`` bytes plus the queries, independent of the corpus size.
    * ``"ivf"``: ``IndexIVFFlat`` (``nlist`` default ``4 sqrt(N)``, trained on ``train_size`` evenly
      spaced rows; ``nprobe`` lists searched). ``"hnsw"``: ``IndexHNSWFlat`` (``hnsw_m`` links,
      ``ef_search``). Both hold the corpus in memory as float32, added shard by shard. With
      ``measure_recall`` the exact search also runs and ``recall_vs_exact`` (mean overlap of the
      top-k docid sets / k) is returned and logged.
    * ``gpu``: faiss's GPU path when faiss-gpu is installed and a GPU is visible (default: when
      available); otherwise the CPU, said once in the log.
    Ties are ordered by docid descending afterwards (:meth:`SearchResult.to_run`), as trec_eval
    does.
    """
    import faiss

    if index not in INDEXES:
        raise SearchError(f"index={index!r}: use one of {', '.join(INDEXES)}")
    if k < 1:
        raise SearchError(f"k={k} must be >= 1")
    shard_dir = Path(shard_dir)
    m = load_manifest(shard_dir)
    Q = np.ascontiguousarray(Q, dtype=np.float32)
    if Q.ndim != 2 or Q.shape[1] != m["dim"]:
        raise SearchError(
            f"queries have shape {Q.shape}; the shards in {shard_dir} have dimension {m['dim']}"
        )
    use_gpu = _gpu_available(faiss) if gpu is not False else False
    k_eff = min(k, m["n_docs"])
    seconds = {}
    t = time.perf_counter()
    exact = None
    if index == "flat" or measure_recall:
        D, I, ids_all = _exact_stream(shard_dir, Q, k_eff, block, use_gpu)
        exact = (D, I)
        seconds["exact"] = time.perf_counter() - t
    recall = None
    if index != "flat":
        t = time.perf_counter()
        idx, ids_all = _build_index(
            shard_dir,
            index,
            m["dim"],
            m["n_docs"],
            nlist,
            nprobe,
            hnsw_m,
            ef_search,
            use_gpu,
            train_size,
        )
        seconds["build"] = time.perf_counter() - t
        t = time.perf_counter()
        D, I = idx.search(Q, k_eff)
        seconds["search"] = time.perf_counter() - t
        if exact is not None:
            recall = float(
                np.mean([len(set(a[a >= 0]) & set(b[b >= 0])) / k_eff for a, b in zip(I, exact[1])])
            )
            log.info(
                "%s search on %s: recall@%d against exact search %.4f over %d queries",
                index,
                shard_dir.name,
                k_eff,
                recall,
                len(Q),
            )
    docids = [[ids_all[j] for j in row if j >= 0] for row in I]
    return SearchResult(np.asarray(D, dtype=np.float32), docids, index, recall, seconds)


def write_trec_run(
    path: str | os.PathLike, run: dict[str, dict[str, float]], tag: str = "hbkit"
) -> Path:
    """Write ``run`` (``{qid: {docid: score}}``) as a TREC run file ``qid Q0 docid rank score tag``,
    atomically; ranks follow trec_eval's order (score descending, ties by docid descending), scores
    are written with 9 significant digits (``%.9g`` round-trips float32)."""
    if any(c.isspace() for c in tag) or not tag:
        raise SearchError(f"run tag {tag!r} must be non-empty without whitespace")
    lines = []
    for q, scores in run.items():
        for r, d in enumerate(trec_order(scores), 1):
            lines.append(f"{q} Q0 {d} {r} {scores[d]:.9g} {tag}\n")
    return atomic_write_text(path, "".join(lines))
