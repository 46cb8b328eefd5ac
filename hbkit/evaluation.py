"""Evaluation: retrieval metrics in the monolingual / cross-lingual / multilingual settings (LAReQA,
arXiv 2408.10536) and language bias. Alignment measures live in :mod:`hbkit.alignment`, intervals and
tests in :mod:`hbkit.stats` (both re-exported here for old imports); the ranking kernel in :mod:`hbkit.ranking`.

Definitions (per query; a "pool" is the candidate set searched, "relevant" its relevant candidates):

* ``map`` — average precision over the *whole* ranked pool: ``AP = 1/|rel| * sum_{r in rel} P(r)`` where
  ``P(r) = |{r' in rel: s(r') >= s(r)}| / |{c in pool: s(c) >= s(r)}|``. With ties this equals
  ``sklearn.metrics.average_precision_score`` (all tied items share one threshold). Macro-averaged.

Ties — one rule for every metric: the rank of a candidate c is ``rank(c) = |{c' in pool: s(c') >= s(c)}|``,
so candidates with equal scores share the LOWEST rank of their tie group (the rule of sklearn's
``average_precision_score``, whose thresholds put tied items together, and of LAReQA's mAP). The metrics
depend only on the scores, never on the order of the candidates in the pool, and identical candidate texts
(identical scores) are never ordered arbitrarily.

* ``recall@k`` — ``|{r in rel: rank(r) <= k}| / |rel|``; ``acc@k`` — 1 if some relevant has ``rank <= k``.
* ``mrr@10`` — ``1 / min_r rank(r)`` if that rank is at most 10, else 0.
* ``ndcg@10`` — binary gains, ``sum_{r in rel, rank(r) <= 10} 1 / log2(rank(r) + 1)`` over the ideal
  ``sum_{i=1}^{min(|rel|, 10)} 1 / log2(i + 1)``.
* ``rank_distance`` — maximum rank distance (Huang et al. 2023): in the multilingual pool, rank of the
  lowest-ranked relevant minus rank of the highest-ranked one; only for queries with at least two relevant
  candidates. Lower = less language bias.
* ``top10_same_lang`` — share of the candidates with ``rank <= 10`` that are in the query's language (NaN
  when more than 10 candidates tie at the top).

Settings: ``mono`` (queries in X, pool = candidates in X; averaged over X), ``cross`` (queries in X, pool
in Y != X; averaged over pairs), ``multi`` (queries in X, pool = all languages; averaged over X). A query
with no relevant candidate in a pool is not scored in that cell (``n`` counts the scored queries).
"""
from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np
import pandas as pd
import torch
from tqdm.auto import tqdm

from .config import cache_dir
from .alignment import alignment, language_knn_purity  # noqa: F401  (moved; re-exported for old imports)
from .files import atomic_path
from .data import RetrievalBenchmark
from .ranking import MULTI_ONLY, RANK_METRICS, rank_metrics  # noqa: F401  (the kernel; re-exported)
from .stats import paired_bootstrap  # noqa: F401  (moved; re-exported for old imports)

log = logging.getLogger(__name__)

SETTINGS = ("mono", "cross", "multi")


# --------------------------------------------------------------------------------------------------
# encoding (cached on disk, keyed by model fingerprint + prompt + text hash)
# --------------------------------------------------------------------------------------------------
def encode(model, texts: Sequence[str], prompt_name: str | None = None, batch_size: int = 64,
           cache: bool = True, fp: str | None = None, progress: bool = False,
           devices: Sequence[str] | None = None) -> np.ndarray:
    """L2-normalised float32 embeddings of ``texts`` with the model's prompt ``prompt_name`` (if it has one).

    ``devices`` (e.g. ``["cuda:0", "cuda:1"]``) encodes shards in parallel processes, one per device, with
    sentence-transformers' multi-process pool, and merges them in input order; default: every GPU when
    there are several, else the model's device.

    With ``cache=True`` the array is stored under ``<cache>/embeddings/<model fingerprint>/`` and reused when
    the same model (same weights) encodes the same texts with the same prompt again.
    """
    from .models import fingerprint

    prompts = getattr(model, "prompts", None) or {}
    prompt_name = prompt_name if prompt_name in prompts else None
    path = None
    if cache:
        fp = fp or fingerprint(model)
        h = hashlib.sha256(json.dumps([prompt_name, prompts.get(prompt_name), list(texts)]).encode()).hexdigest()[:32]
        path = cache_dir() / "embeddings" / fp / f"{h}.npy"
        if path.is_file():
            try:
                arr = np.load(path)
                if arr.shape[0] == len(texts):
                    return arr
                log.warning("embedding cache %s holds %d rows for %d texts; re-encoding", path, arr.shape[0], len(texts))
            except Exception as e:  # noqa: BLE001 - truncated, empty or foreign files are all re-encoded
                log.warning("embedding cache %s is unreadable (%s: %s); re-encoding", path, type(e).__name__, e)
    if devices is None and torch.cuda.device_count() > 1:
        devices = [f"cuda:{i}" for i in range(torch.cuda.device_count())]
    kw = {"device": list(devices)} if devices and len(devices) > 1 else {}
    emb = model.encode(list(texts), prompt_name=prompt_name, batch_size=batch_size, convert_to_numpy=True,
                       normalize_embeddings=True, show_progress_bar=progress, **kw)
    emb = np.asarray(emb, dtype=np.float32)
    if path is not None:  # a per-process temporary file, then an atomic rename: concurrent writers never collide
        with atomic_path(path) as tmp:
            np.save(tmp, emb)
    return emb


# --------------------------------------------------------------------------------------------------
# retrieval evaluation of one benchmark
# --------------------------------------------------------------------------------------------------
@dataclass
class EvalResult:
    """``table``: tidy DataFrame ``benchmark, setting, qlang, dlang, metric, value, n`` (per cell, and the
    macro-average with ``qlang = dlang = "all"``); ``per_query``: one row per (cell, query) with every
    metric as a column — the input of :mod:`hbkit.stats`."""

    table: pd.DataFrame
    per_query: pd.DataFrame
    alignment: pd.DataFrame | None = None  # alignment() of the scored queries, when the caller computed it

    def macro(self) -> pd.DataFrame:
        t = self.table
        return t[(t.qlang == "all") & (t.dlang == "all")].reset_index(drop=True)

    def to_json(self, path) -> None:
        Path(path).write_text(json.dumps({"table": self.table.to_dict(orient="records")}, indent=1))

    @staticmethod
    def concat(results: Iterable["EvalResult"]) -> "EvalResult":
        results = list(results)
        return EvalResult(pd.concat([r.table for r in results], ignore_index=True),
                          pd.concat([r.per_query for r in results], ignore_index=True))


def _cells(benchmark: RetrievalBenchmark, settings: Sequence[str]):
    langs_q = sorted(set(benchmark.queries["lang"]))
    langs_c = sorted(set(benchmark.candidates["lang"]))
    for setting in settings:
        if setting == "mono":
            yield from (("mono", x, x) for x in langs_q if x in langs_c)
        elif setting == "cross":
            yield from (("cross", x, y) for x in langs_q for y in langs_c if x != y)
        elif setting == "multi":
            yield from (("multi", x, "all") for x in langs_q)
        else:
            raise ValueError(f"unknown setting {setting!r}; use {', '.join(SETTINGS)}")


def evaluate_embeddings(benchmark: RetrievalBenchmark, Q: np.ndarray, C: np.ndarray,
                        settings: Sequence[str] = SETTINGS, progress: bool = True) -> EvalResult:
    """Score precomputed embeddings (rows aligned with ``benchmark.queries`` / ``.candidates``). A cell whose
    pool holds no relevant candidate for any of its queries yields no row (TyDi-QA, not parallel, has no
    ``cross`` cells)."""
    qdf, cdf = benchmark.queries, benchmark.candidates
    cidx = {c: i for i, c in enumerate(cdf["id"])}
    c_lang = cdf["lang"].to_numpy()
    rel_all = [np.array([cidx[c] for c in benchmark.relevance[q]]) for q in qdf["id"]]
    q_by_lang = qdf.groupby("lang").indices
    c_by_lang = {l: np.asarray(v) for l, v in cdf.groupby("lang").indices.items()}
    rows, per_query = [], []
    cells = list(_cells(benchmark, settings))
    for setting, x, y in tqdm(cells, desc=f"score {benchmark.name}", disable=not progress, leave=False):
        qi = np.asarray(q_by_lang[x])
        pool = np.arange(len(cdf)) if y == "all" else c_by_lang[y]
        local = np.full(len(cdf), -1)
        local[pool] = np.arange(len(pool))
        rel = [local[r][local[r] >= 0] for r in (rel_all[i] for i in qi)]
        has = np.array([len(r) > 0 for r in rel])
        if not has.any():
            continue
        qi = qi[has]
        rel = [r for r, h in zip(rel, has) if h]
        res = rank_metrics(Q[qi], C[pool], rel, q_lang=qdf["lang"].to_numpy()[qi] if y == "all" else None,
                           c_lang=c_lang[pool] if y == "all" else None)
        names = list(RANK_METRICS) + ([m for m in MULTI_ONLY if m in res] if setting == "multi" else [])
        pq = pd.DataFrame({"benchmark": benchmark.name, "setting": setting, "qlang": x, "dlang": y,
                           "query_id": qdf["id"].to_numpy()[qi], "group": qdf["group"].to_numpy()[qi],
                           **{m: res[m] for m in names}})
        per_query.append(pq)
        for m in names:
            v = res[m][~np.isnan(res[m])]
            if len(v):
                rows.append({"benchmark": benchmark.name, "setting": setting, "qlang": x, "dlang": y,
                             "metric": m, "value": float(v.mean()), "n": int(len(v))})
    table = pd.DataFrame(rows, columns=["benchmark", "setting", "qlang", "dlang", "metric", "value", "n"])
    macro = (table.groupby(["benchmark", "setting", "metric"], sort=False)
             .agg(value=("value", "mean"), n=("n", "sum")).reset_index().assign(qlang="all", dlang="all"))
    table = pd.concat([table, macro[table.columns]], ignore_index=True)
    return EvalResult(table, pd.concat(per_query, ignore_index=True) if per_query else pd.DataFrame())


def evaluate(encoder, benchmark: RetrievalBenchmark, settings: Sequence[str] = SETTINGS, batch_size: int = 64,
             cache: bool = True, save_dir: str | Path | None = None, progress: bool = True,
             with_context: bool = False, devices: Sequence[str] | None = None) -> EvalResult:
    """Encode a benchmark once (queries with the ``query`` prompt, candidates with ``passage``) and score it
    in every setting. ``save_dir`` also writes what was scored (embeddings .npy, ids/languages, relevance
    JSON) so the result can be re-checked with other tools."""
    from .models import fingerprint

    fp = fingerprint(encoder) if cache else None
    Q = encode(encoder, benchmark.queries["text"].tolist(), "query", batch_size, cache, fp, progress, devices=devices)
    ctexts = benchmark.candidates["text"].tolist()
    if with_context:
        ctexts = [f"{t} {c}" for t, c in zip(ctexts, benchmark.candidates["context"])]
    C = encode(encoder, ctexts, "passage", batch_size, cache, fp, progress, devices=devices)
    result = evaluate_embeddings(benchmark, Q, C, settings, progress)
    if save_dir is not None:
        save_scored(benchmark, Q, C, save_dir)
    return result


def save_scored(benchmark: RetrievalBenchmark, Q: np.ndarray, C: np.ndarray, folder) -> Path:
    """Write the embeddings, ids/languages and relevance sets of one benchmark under ``folder/<name>/``."""
    out = Path(folder) / benchmark.name
    out.mkdir(parents=True, exist_ok=True)
    np.save(out / "queries.npy", Q)
    np.save(out / "candidates.npy", C)
    benchmark.queries[["id", "lang", "group"]].to_csv(out / "queries.csv", index=False)
    benchmark.candidates[["id", "lang", "doc"]].to_csv(out / "candidates.csv", index=False)
    (out / "relevance.json").write_text(json.dumps(benchmark.relevance))
    return out


# --------------------------------------------------------------------------------------------------
# alignment (the measures live in hbkit.alignment)
# --------------------------------------------------------------------------------------------------
def evaluate_alignment(encoder, benchmark: RetrievalBenchmark, cache: bool = True, max_groups: int | None = None,
                       seed: int = 0, progress: bool = False) -> pd.DataFrame:
    """:func:`alignment` of a benchmark's parallel queries (XQuAD-R: 11-way, MLQA: 2-4-way)."""
    q = benchmark.queries
    if max_groups is not None:
        groups = q["group"].drop_duplicates().sort_values()
        keep = set(groups.sample(n=min(max_groups, len(groups)), random_state=seed))
        q = q[q["group"].isin(keep)]
    E = encode(encoder, q["text"].tolist(), "query", cache=cache, progress=progress)
    return alignment(E, q["lang"].to_numpy(), q["group"].to_numpy(), benchmark.name)
