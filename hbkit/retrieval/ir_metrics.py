"""MIRACL's official metrics (nDCG@10, Recall@100) and MRR@10 as functions of ``(qrels, run)``, with
trec_eval's semantics, so the numbers equal ``trec_eval -m ndcg_cut.10 -m recall.100`` (MIRACL
evaluates with trec_eval through pyserini) and ``pytrec_eval``.

Inputs
------
* ``qrels``: ``{qid: {docid: relevance}}`` with integer relevance (MIRACL: 0 or 1; graded values
  work). A document is *relevant* when its relevance is >= 1 (trec_eval's default ``-l 1``).
* ``run``: ``{qid: {docid: score}}`` (what :mod:`hbkit.retrieval.shards` returns; a ranx ``Run``
  takes the same dict).

Ranking (trec_eval's ``form_res_rels.c``, ``comp_sim_docno``): a query's retrieved documents are
sorted by score descending, **ties broken by docid descending** (``strcmp`` on the bytes, i.e.
reverse lexicographic order of the UTF-8 docids, which is Python's ``str`` order). The ranks in a
TREC run file are ignored, as trec_eval ignores them. :func:`trec_order` is that sort. (ranx keeps
the run's insertion order among ties; ranx has no defined tie rule (its numba sort is not stable),
so with tied scores pass ranx :func:`untie`'s run, which keeps trec_eval's order with strictly
decreasing scores; without ties any order works.)

Definitions, per query with ranked list ``d_1, d_2, ...`` and ``rel(d)`` (0 when unjudged or
negative):

* ``ndcg@k`` = DCG@k / IDCG@k, ``DCG@k = sum_{i=1..k} rel(d_i) / log2(i + 1)`` (linear gains: the
  relevance value itself, trec_eval's ``ndcg_cut``), ``IDCG@k`` the same sum over the judged
  relevance values sorted descending (every judged document, retrieved or not). 0 when IDCG is 0.
* ``recall@k`` = ``|{i <= k: rel(d_i) >= 1}| / |{d judged: rel(d) >= 1}|`` (trec_eval ``recall.k``).
* ``mrr@k`` = ``1 / min{i <= k: rel(d_i) >= 1}``, 0 if no relevant document is in the top k
  (trec_eval's ``recip_rank`` on the run cut at k).

Queries: a query of ``qrels`` that is absent from ``run`` scores 0 on every metric (``trec_eval
-c``). A query of ``qrels`` with no relevant document (only relevance-0 judgements) is excluded and
counted (trec_eval would score it 0 and average it in; MIRACL-style evaluation drops it, see
:func:`relevant_queries`). Queries of ``run`` absent from ``qrels`` are ignored, as trec_eval does.
Averages (:func:`mean_metrics`) are macro over the evaluated queries; per language, then macro over
languages in :mod:`hbkit.retrieval.shards`.
"""

from __future__ import annotations

import logging
import math
from typing import Iterable, Mapping

log = logging.getLogger(__name__)


#: The metrics :func:`evaluate_run` computes by default (MIRACL's two official ones plus MRR@10).
METRICS = ("ndcg@10", "recall@100", "mrr@10")


class MetricError(ValueError):
    """A metric name or a qrels/run value is not usable; the message names it and the fix."""


def _parse(metric: str) -> tuple[str, int]:
    name, _, k = metric.partition("@")
    if name not in ("ndcg", "recall", "mrr") or not k.isdigit() or int(k) < 1:
        raise MetricError(
            f"unknown metric {metric!r}; use ndcg@K, recall@K or mrr@K with K >= 1 (e.g. ndcg@10)"
        )
    return name, int(k)


def trec_order(scores: Mapping[str, float]) -> list[str]:
    """Docids of one query in trec_eval's order: score descending, ties by docid descending."""
    return [d for d, _ in sorted(scores.items(), key=lambda kv: (kv[1], kv[0]), reverse=True)]


def untie(run: Mapping[str, Mapping[str, float]]) -> dict[str, dict[str, float]]:
    """The same ranking as trec_eval would read from ``run``, as strictly decreasing scores (``n -
    rank``): a run that tools with another (or no defined) tie rule, such as ranx, rank
    identically."""
    out = {}
    for q, scores in run.items():
        order = trec_order(scores)
        out[q] = {d: float(len(order) - r) for r, d in enumerate(order)}
    return out


def relevant_queries(qrels: Mapping[str, Mapping[str, int]]) -> tuple[list[str], list[str]]:
    """``(evaluated, excluded)``: the qids with at least one judgement >= 1, and those with none."""
    keep, drop = [], []
    for q, judged in qrels.items():
        (keep if any(r >= 1 for r in judged.values()) else drop).append(q)
    return keep, drop


def query_metrics(
    judged: Mapping[str, int], scores: Mapping[str, float], metrics: Iterable[str] = METRICS
) -> dict[str, float]:
    """The metrics of one query (definitions in the module docstring)."""
    parsed = [(m, *_parse(m)) for m in metrics]
    ranked = trec_order(scores)
    rels = [max(int(judged.get(d, 0)), 0) for d in ranked]
    ideal = sorted((r for r in judged.values() if r > 0), reverse=True)
    n_rel = len(ideal)
    out = {}
    for m, name, k in parsed:
        top = rels[:k]
        if name == "ndcg":
            idcg = sum(g / math.log2(i + 2) for i, g in enumerate(ideal[:k]))
            dcg = sum(g / math.log2(i + 2) for i, g in enumerate(top) if g)
            out[m] = dcg / idcg if idcg > 0 else 0.0
        elif name == "recall":
            out[m] = sum(1 for g in top if g >= 1) / n_rel if n_rel else 0.0
        else:
            first = next((i for i, g in enumerate(top) if g >= 1), None)
            out[m] = 1.0 / (first + 1) if first is not None else 0.0
    return out


def evaluate_run(
    qrels: Mapping[str, Mapping[str, int]],
    run: Mapping[str, Mapping[str, float]],
    metrics: Iterable[str] = METRICS,
) -> tuple[dict[str, dict[str, float]], dict[str, int]]:
    """Per-query metrics of ``run`` against ``qrels``: ``({qid: {metric: value}}, skipped)``.

    Evaluated queries: those of ``qrels`` with at least one relevant judgement, in ``qrels`` order;
    a query missing from ``run`` scores 0. ``skipped`` counts what was left out and why (queries
    with only relevance-0 judgements; run queries absent from qrels), and is logged.
    """
    metrics = list(metrics)
    for m in metrics:
        _parse(m)
    if not qrels:
        raise MetricError("qrels is empty: nothing to evaluate (check the qrels file)")
    keep, drop = relevant_queries(qrels)
    per_query = {}
    for q in keep:
        per_query[q] = query_metrics(qrels[q], run.get(q, {}), metrics)
    skipped = {}
    if drop:
        skipped["query with only relevance-0 judgements (excluded)"] = len(drop)
    extra = sum(1 for q in run if q not in qrels)
    if extra:
        skipped["run query absent from qrels (ignored)"] = extra
    missing = sum(1 for q in keep if q not in run)
    if missing:
        skipped["judged query absent from run (scored 0)"] = missing
    for why, n in skipped.items():
        log.info("ir_metrics: %d %s", n, why)
    return per_query, skipped


def mean_metrics(per_query: Mapping[str, Mapping[str, float]]) -> dict[str, float]:
    """Macro average over queries of every metric in ``per_query``."""
    if not per_query:
        return {}
    names = next(iter(per_query.values())).keys()
    return {m: sum(v[m] for v in per_query.values()) / len(per_query) for m in names}


def to_pytrec_eval_names(metrics: Iterable[str]) -> dict[str, str]:
    """hbkit metric name -> pytrec_eval measure key (``ndcg@10 -> ndcg_cut_10``, ``recall@100 ->
    recall_100``; ``mrr@k -> recip_rank`` on a run cut at k), for cross-checks."""
    out = {}
    for m in metrics:
        name, k = _parse(m)
        out[m] = {"ndcg": f"ndcg_cut_{k}", "recall": f"recall_{k}", "mrr": "recip_rank"}[name]
    return out
