"""The one call for a corpus benchmark: encode its passages, search, score with trec_eval's
metrics."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Sequence

import pandas as pd

from hbkit.core.env import world
from hbkit.data.corpus_benchmarks import load_corpus_benchmarks
from hbkit.data.releases.miracl import CorpusBenchmark
from hbkit.encoders.encode import encode
from hbkit.encoders.load import fingerprint
from hbkit.retrieval.faiss_search import INDEXES, search, write_trec_run
from hbkit.retrieval.ir_metrics import METRICS, evaluate_run
from hbkit.retrieval.shards import SearchError, encode_corpus

log = logging.getLogger(__name__)


# --------------------------------------------------------------------------------------------------
# the one call
# --------------------------------------------------------------------------------------------------
TABLE_COLUMNS = ["benchmark", "setting", "qlang", "dlang", "metric", "value", "n"]


def evaluate_corpus(
    encoder,
    bench,
    work_dir: str | os.PathLike,
    k: int = 100,
    index: str = "flat",
    dtype: str = "float16",
    progress: bool = True,
    shard_size: int = 100_000,
    batch_size: int = 64,
    data_dir: str | os.PathLike | None = None,
    unknown_docs: str = "error",
    metrics: Sequence[str] | None = None,
    force: bool = False,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Encode, index, search and score corpus benchmarks; return ``(table, per_query)``.

    ``bench``: a :class:`hbkit.data.releases.miracl.CorpusBenchmark`, a list of them, or a spec
    string (``"miracl:sw,te,yo"``, ``"tydiqa-corpus:sw,te"``;
    :func:`hbkit.data.corpus_benchmarks.load_corpus_benchmarks`). Per benchmark: the corpus is
    encoded with :func:`encode_corpus` into ``work_dir/<model fingerprint>/<benchmark>/``
    (resumable; several processes under torchrun share the shards); docids are checked first, while
    reading and before encoding (duplicates, whitespace, qrels naming absent documents:
    ``unknown_docs``); the queries are encoded with :func:`hbkit.encoders.encode.encode` (``query``
    prompt, cached); :func:`hbkit.retrieval.faiss_search.search` takes the top ``k``; the run is
    written to ``<that folder>/run.<index>.trec``; metrics are
    :func:`hbkit.retrieval.ir_metrics.evaluate_run` (nDCG@10, Recall@100, MRR@10 by default).

    ``table``: tidy rows ``benchmark, setting, qlang, dlang, metric, value, n`` (benchmark
    ``miracl-XX`` or ``tydiqa-corpus-XX``, setting ``mono``, qlang = dlang = XX, n = evaluated
    queries) plus, with several languages, a macro row per metric with benchmark ``miracl`` /
    ``tydiqa-corpus``, qlang = dlang = ``all``, the unweighted mean over languages and n their total
    (hbkit.retrieval.pools's convention). ``per_query``: ``benchmark, setting, qlang, dlang,
    query_id, group`` (= query_id) and one column per metric. ``table.attrs`` holds ``skipped`` (per
    benchmark: what was excluded and why), ``recall_vs_exact`` (approximate indexes) and ``runs``
    (run file paths). Under torchrun every rank encodes its shards and only rank 0 searches and
    scores; the other ranks return empty frames.
    """
    metrics = list(metrics or METRICS)
    if isinstance(bench, str):
        benches = load_corpus_benchmarks(bench, data_dir)
    elif isinstance(bench, CorpusBenchmark):
        benches = [bench]
    else:
        benches = list(bench)
    if not benches or not all(isinstance(b, CorpusBenchmark) for b in benches):
        raise SearchError(
            "bench must be a spec string, a CorpusBenchmark or a non-empty list of them"
        )
    if index not in INDEXES:
        raise SearchError(f"index={index!r}: use one of {', '.join(INDEXES)}")
    fp = fingerprint(encoder)
    rank, _ = world()
    rows, pq, attrs = [], [], {"skipped": {}, "recall_vs_exact": {}, "runs": {}}
    for b in benches:
        folder = Path(work_dir) / fp / b.name
        # docids are checked while reading, before an hour of encoding: duplicates, whitespace,
        # qrels naming documents the corpus lacks (refused, or with unknown_docs="skip" dropped and
        # counted)
        n_docs = b.check(unknown_docs)
        encode_corpus(
            encoder,
            b.passages,
            folder,
            shard_size=shard_size,
            dtype=dtype,
            batch_size=batch_size,
            progress=progress,
            force=force,
            fingerprint=fp,
        )
        if rank != 0:
            continue
        qids = list(b.topics)
        Q = encode(
            encoder,
            [b.topics[q] for q in qids],
            "query",
            batch_size=batch_size,
            fp=fp,
            progress=progress,
        )
        res = search(folder, Q, k=k, index=index)
        run = res.to_run(qids)
        attrs["runs"][b.name] = str(
            write_trec_run(folder / f"run.{index}.trec", run, tag=f"hbkit-{index}")
        )
        per_query, skipped = evaluate_run(b.qrels, run, metrics)
        attrs["skipped"][b.name] = {**b.skipped, **skipped}
        if res.recall_vs_exact is not None:
            attrs["recall_vs_exact"][b.name] = res.recall_vs_exact
        frame = pd.DataFrame(
            {
                "benchmark": b.name,
                "setting": "mono",
                "qlang": b.lang,
                "dlang": b.lang,
                "query_id": list(per_query),
                "group": list(per_query),
                **{m: [v[m] for v in per_query.values()] for m in metrics},
            }
        )
        pq.append(frame)
        for m in metrics:
            rows.append(
                {
                    "benchmark": b.name,
                    "setting": "mono",
                    "qlang": b.lang,
                    "dlang": b.lang,
                    "metric": m,
                    "value": float(frame[m].mean()),
                    "n": len(frame),
                }
            )
        log.info(
            "%s: %d docs, %d queries: %s",
            b.name,
            n_docs,
            len(frame),
            ", ".join(f"{m} {frame[m].mean():.4f}" for m in metrics),
        )
    table = pd.DataFrame(rows, columns=TABLE_COLUMNS)
    if len(benches) > 1 and len(table):
        fam = table["benchmark"].str.rsplit("-", n=1).str[0]
        macro = (
            table.assign(benchmark=fam)
            .groupby(["benchmark", "setting", "metric"], sort=False)
            .agg(value=("value", "mean"), n=("n", "sum"))
            .reset_index()
            .assign(qlang="all", dlang="all")
        )
        table = pd.concat([table, macro[TABLE_COLUMNS]], ignore_index=True)
    table.attrs.update(attrs)
    per_query_df = (
        pd.concat(pq, ignore_index=True)
        if pq
        else pd.DataFrame(
            columns=["benchmark", "setting", "qlang", "dlang", "query_id", "group", *metrics]
        )
    )
    return table, per_query_df
