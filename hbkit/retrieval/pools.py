"""Evaluation of a pooled benchmark: retrieval metrics in the monolingual / cross-lingual /
multilingual settings (LAReQA, arXiv 2408.10536), language bias, the stored multilingual rankings,
and the per-group alignment run (:func:`evaluate_alignment`). The alignment measures themselves are
in :mod:`hbkit.retrieval.alignment`, the ranking kernel in :mod:`hbkit.retrieval.ranking`; intervals
and tests over these results are in :mod:`hbkit.analysis.stats`.

Definitions (per query; a "pool" is the candidate set searched, "relevant" its relevant candidates):

* ``map`` — average precision over the *whole* ranked pool: ``AP = 1/|rel| * sum_{r in rel} P(r)``
  where ``P(r) = |{r' in rel: s(r') >= s(r)}| / |{c in pool: s(c) >= s(r)}|``. With ties this equals
  ``sklearn.metrics.average_precision_score`` (all tied items share one threshold). Macro-averaged.

Ties — one rule for every metric: the rank of a candidate c is ``rank(c) = |{c' in pool: s(c') >=
s(c)}|``, so candidates with equal scores share the LOWEST rank of their tie group (the rule of
sklearn's ``average_precision_score``, whose thresholds put tied items together, and of LAReQA's
mAP). The metrics depend only on the scores, never on the order of the candidates in the pool, and
identical candidate texts (identical scores) are never ordered arbitrarily.

* ``recall@k`` — ``|{r in rel: rank(r) <= k}| / |rel|``; ``acc@k`` — 1 if some relevant has ``rank
  <= k``.
* ``mrr@10`` — ``1 / min_r rank(r)`` if that rank is at most 10, else 0.
* ``ndcg@10`` — binary gains, ``sum_{r in rel, rank(r) <= 10} 1 / log2(rank(r) + 1)`` over the ideal
  ``sum_{i=1}^{min(|rel|, 10)} 1 / log2(i + 1)``.
* ``rank_distance`` — maximum rank distance (Huang et al. 2023): in the multilingual pool, rank of
  the lowest-ranked relevant minus rank of the highest-ranked one; only for queries with at least
  two relevant candidates. Lower = less language bias.
* ``top10_same_lang`` — share of the candidates with ``rank <= 10`` that are in the query's language
  (NaN when more than 10 candidates tie at the top).
* ``tlr@10``, ``mrc@10``, ``peer@20`` — the field's newer language-bias measures (multi only;
  definitions and their authors' code in :mod:`hbkit.retrieval.bias`): target-languages recall, mean
  rank correlation of parallel queries, and PEER.

Settings: ``mono`` (queries in X, pool = candidates in X; averaged over X), ``cross`` (queries in X,
pool in Y != X; averaged over pairs), ``multi`` (queries in X, pool = all languages; averaged over
X). A query with no relevant candidate in a pool is not scored in that cell (``n`` counts the scored
queries).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from hbkit.core.vocab import SETTINGS
from hbkit.data.retrieval_benchmark import RetrievalBenchmark
from hbkit.encoders.encode import encode
from hbkit.encoders.load import fingerprint
from hbkit.retrieval.alignment import alignment
from hbkit.retrieval.bias import BIAS_METRICS, bias_measures
from hbkit.retrieval.ranking import MULTI_ONLY, RANK_METRICS, rank_metrics


# --------------------------------------------------------------------------------------------------
# retrieval evaluation of one benchmark
# --------------------------------------------------------------------------------------------------
@dataclass
class EvalResult:
    """``table``: tidy DataFrame ``benchmark, setting, qlang, dlang, metric, value, n`` (per cell,
    and the macro-average with ``qlang = dlang = "all"``); ``per_query``: one row per (cell, query)
    with every metric as a column — the input of :mod:`hbkit.analysis.stats`."""

    table: pd.DataFrame
    per_query: pd.DataFrame
    alignment: pd.DataFrame | None = (
        None  # alignment() of the scored queries, when the caller computed it
    )

    def macro(self) -> pd.DataFrame:
        t = self.table
        return t[(t.qlang == "all") & (t.dlang == "all")].reset_index(drop=True)

    def to_json(self, path) -> None:
        Path(path).write_text(json.dumps({"table": self.table.to_dict(orient="records")}, indent=1))

    @staticmethod
    def concat(results: Iterable["EvalResult"]) -> "EvalResult":
        results = list(results)
        return EvalResult(
            pd.concat([r.table for r in results], ignore_index=True),
            pd.concat([r.per_query for r in results], ignore_index=True),
        )


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


def evaluate_embeddings(
    benchmark: RetrievalBenchmark,
    Q: np.ndarray,
    C: np.ndarray,
    settings: Sequence[str] = SETTINGS,
    progress: bool = True,
) -> EvalResult:
    """Score precomputed embeddings (rows aligned with ``benchmark.queries`` / ``.candidates``). A
    cell whose pool holds no relevant candidate for any of its queries yields no row (TyDi-QA, not
    parallel, has no ``cross`` cells)."""
    qdf, cdf = benchmark.queries, benchmark.candidates
    cidx = {c: i for i, c in enumerate(cdf["id"])}
    c_lang = cdf["lang"].to_numpy()
    rel_all = [np.array([cidx[c] for c in benchmark.relevance[q]]) for q in qdf["id"]]
    q_by_lang = qdf.groupby("lang").indices
    c_by_lang = {l: np.asarray(v) for l, v in cdf.groupby("lang").indices.items()}
    rows, per_query = [], []
    cells = list(_cells(benchmark, settings))
    bias = (
        bias_measures(
            Q,
            C,
            rel_all,
            qdf["lang"].to_numpy(),
            c_lang,
            qdf["group"].to_numpy(),
            cdf["id"].to_numpy(),
        )
        if "multi" in settings
        else {}
    )  # over the multilingual pool (every candidate), all queries at once
    for setting, x, y in tqdm(
        cells, desc=f"score {benchmark.name}", disable=not progress, leave=False
    ):
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
        res = rank_metrics(
            Q[qi],
            C[pool],
            rel,
            q_lang=qdf["lang"].to_numpy()[qi] if y == "all" else None,
            c_lang=c_lang[pool] if y == "all" else None,
        )
        if setting == "multi":
            res = {**res, **{m: bias[m][qi] for m in BIAS_METRICS}}
        names = list(RANK_METRICS) + (
            [m for m in (*MULTI_ONLY, *BIAS_METRICS) if m in res] if setting == "multi" else []
        )
        pq = pd.DataFrame(
            {
                "benchmark": benchmark.name,
                "setting": setting,
                "qlang": x,
                "dlang": y,
                "query_id": qdf["id"].to_numpy()[qi],
                "group": qdf["group"].to_numpy()[qi],
                **{m: res[m] for m in names},
            }
        )
        per_query.append(pq)
        for m in names:
            v = res[m][~np.isnan(res[m])]
            if len(v):
                rows.append(
                    {
                        "benchmark": benchmark.name,
                        "setting": setting,
                        "qlang": x,
                        "dlang": y,
                        "metric": m,
                        "value": float(v.mean()),
                        "n": int(len(v)),
                    }
                )
    table = pd.DataFrame(
        rows, columns=["benchmark", "setting", "qlang", "dlang", "metric", "value", "n"]
    )
    macro = (
        table.groupby(["benchmark", "setting", "metric"], sort=False)
        .agg(value=("value", "mean"), n=("n", "sum"))
        .reset_index()
        .assign(qlang="all", dlang="all")
    )
    table = pd.concat([table, macro[table.columns]], ignore_index=True)
    return EvalResult(
        table, pd.concat(per_query, ignore_index=True) if per_query else pd.DataFrame()
    )


RANKING_COLUMNS = ["query_id", "position", "candidate_id", "clang", "score", "relevant"]


def multilingual_rankings(
    benchmark: RetrievalBenchmark, Q: np.ndarray, C: np.ndarray, k: int = 20, chunk: int = 512
) -> pd.DataFrame:
    """What a ranking-based measure added later needs, per query of the multilingual pool (every
    candidate): its top ``k`` candidates and every relevant candidate, each with its ``position``
    (1-based, by score, ties in pool order, as :mod:`hbkit.retrieval.bias` breaks them), ``score``
    (float32 inner product), language and whether it is relevant. Columns :data:`RANKING_COLUMNS`;
    the query's language and group are in the per-query results. TLR@j and PEER@j for any j up to
    ``k``, and any measure of a query's own top ``k`` and relevant candidates, are computable from
    it without the embeddings (``tests/test_bias.py`` recomputes TLR@10 and PEER@20); MRC@j is not
    (it scores a query on its translations' top candidates too)."""
    qdf, cdf = benchmark.queries, benchmark.candidates
    cidx = {c: i for i, c in enumerate(cdf["id"])}
    cids, clang = cdf["id"].to_numpy(), cdf["lang"].to_numpy()
    Q, C = np.asarray(Q, dtype=np.float32), np.asarray(C, dtype=np.float32)
    k = min(int(k), len(cdf))
    qids = qdf["id"].to_numpy()
    rows = {c: [] for c in ("q", "position", "c", "score", "relevant")}
    for s in range(0, len(Q), chunk):
        S = Q[s : s + chunk] @ C.T
        order = np.argsort(-S, axis=1, kind="stable")
        pos = np.empty(S.shape[1], dtype=np.int64)
        for i in range(len(S)):
            rel = np.array([cidx[c] for c in benchmark.relevance[qids[s + i]]], dtype=np.int64)
            pos[order[i]] = np.arange(1, S.shape[1] + 1)
            keep = np.union1d(order[i, :k], rel)
            keep = keep[np.argsort(pos[keep], kind="stable")]
            for name, v in (
                ("q", np.full(len(keep), s + i)),
                ("position", pos[keep]),
                ("c", keep),
                ("score", S[i, keep]),
                ("relevant", np.isin(keep, rel)),
            ):
                rows[name].append(v)
    if not rows["q"]:
        return pd.DataFrame(columns=RANKING_COLUMNS)
    cols = {n: np.concatenate(v) for n, v in rows.items()}
    return pd.DataFrame(
        {
            "query_id": qids[cols["q"]],
            "position": cols["position"].astype(np.int32),
            "candidate_id": cids[cols["c"]],
            "clang": clang[cols["c"]],
            "score": cols["score"].astype(np.float32),
            "relevant": cols["relevant"],
        }
    )


def evaluate(
    encoder,
    benchmark: RetrievalBenchmark,
    settings: Sequence[str] = SETTINGS,
    batch_size: int = 64,
    cache: bool = True,
    save_dir: str | Path | None = None,
    progress: bool = True,
    with_context: bool = False,
    devices: Sequence[str] | None = None,
) -> EvalResult:
    """Encode a benchmark once and score it in every setting with the full-pool kernel.

    Queries are encoded with the encoder's ``query`` prompt and candidates with ``passage`` (cached
    on disk by model fingerprint, prompt and texts).

    Args:
        encoder: a ``SentenceTransformer`` (:func:`hbkit.encoders.load.load_encoder`).
        benchmark: a :class:`~hbkit.data.retrieval_benchmark.RetrievalBenchmark`.
        settings: any of ``mono``, ``cross``, ``multi`` (LAReQA's three pools).
        save_dir: also write what was scored (embeddings .npy, ids and languages, relevance JSON) so
            the result can be re-checked with other tools.
        devices: encode on several devices at once (one process per device).

    Returns:
        An :class:`EvalResult`: ``.per_query`` (one row per query, setting and language pair),
            ``.macro()``.

    Examples:
        >>> encoder = load_encoder("intfloat/multilingual-e5-small")
        >>> res = evaluate(encoder, load_benchmark("xquad-r-eval"))
        >>> res.macro().query("metric == 'map'")
    """
    fp = fingerprint(encoder) if cache else None
    Q = encode(
        encoder,
        benchmark.queries["text"].tolist(),
        "query",
        batch_size,
        cache,
        fp,
        progress,
        devices=devices,
    )
    ctexts = benchmark.candidates["text"].tolist()
    if with_context:
        ctexts = [f"{t} {c}" for t, c in zip(ctexts, benchmark.candidates["context"])]
    C = encode(encoder, ctexts, "passage", batch_size, cache, fp, progress, devices=devices)
    result = evaluate_embeddings(benchmark, Q, C, settings, progress)
    if save_dir is not None:
        save_scored(benchmark, Q, C, save_dir)
    return result


def save_scored(benchmark: RetrievalBenchmark, Q: np.ndarray, C: np.ndarray, folder) -> Path:
    """Write the embeddings, ids/languages and relevance sets of one benchmark under
    ``folder/<name>/``."""
    out = Path(folder) / benchmark.name
    out.mkdir(parents=True, exist_ok=True)
    np.save(out / "queries.npy", Q)
    np.save(out / "candidates.npy", C)
    benchmark.queries[["id", "lang", "group"]].to_csv(out / "queries.csv", index=False)
    benchmark.candidates[["id", "lang", "doc"]].to_csv(out / "candidates.csv", index=False)
    (out / "relevance.json").write_text(json.dumps(benchmark.relevance))
    return out


# --------------------------------------------------------------------------------------------------
# alignment (the measures live in hbkit.retrieval.alignment)
# --------------------------------------------------------------------------------------------------
def evaluate_alignment(
    encoder,
    benchmark: RetrievalBenchmark,
    cache: bool = True,
    max_groups: int | None = None,
    seed: int = 0,
    progress: bool = False,
) -> pd.DataFrame:
    """Alignment of a benchmark's parallel queries (:func:`~hbkit.retrieval.alignment.alignment`):
    XQuAD-R is 11-way parallel, MLQA 2-4-way.

    Args:
        encoder: a ``SentenceTransformer``.
        benchmark: a :class:`~hbkit.data.retrieval_benchmark.RetrievalBenchmark` whose queries share
            groups across languages.
        max_groups: score a seeded sample of this many groups (``seed``).

    Returns:
        A DataFrame with one row per (qlang, metric): ``cos_gap``, ``translation_p@1``,
            ``lang_knn_purity``, ...

    Examples:
        >>> al = evaluate_alignment(encoder, load_benchmark("xquad-r-eval"))
        >>> al[al.qlang == "all"]
    """
    q = benchmark.queries
    if max_groups is not None:
        groups = q["group"].drop_duplicates().sort_values()
        keep = set(groups.sample(n=min(max_groups, len(groups)), random_state=seed))
        q = q[q["group"].isin(keep)]
    E = encode(encoder, q["text"].tolist(), "query", cache=cache, progress=progress)
    return alignment(E, q["lang"].to_numpy(), q["group"].to_numpy(), benchmark.name)
