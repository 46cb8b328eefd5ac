"""The pooled benchmarks by name and the parallel training pairs: :func:`load_benchmark` (XQuAD-R
and its held-out articles, MLQA-R, TyDi-QA GoldP, each read by its release's reader in
:mod:`hbkit.data.releases`), :func:`parallel_pairs`, answer clusters and the disjointness check.

Shapes
------
* :func:`parallel_pairs` -> ``datasets.Dataset`` with columns ``group, lang, query, passage,
  context, article``: one row per (parallel item, language). ``group`` is the id shared by the
  translations of one question, so a sampler can take the query of a group in one language and its
  passage in another.
* :class:`~hbkit.data.retrieval_benchmark.RetrievalBenchmark` -> queries (``id, lang, text,
  group``), candidates (``id, lang, text, context, doc``) and relevance (query id -> candidate ids),
  with language selection and seeded subsampling by group that keeps the parallel structure.

Where files come from (:mod:`hbkit.data.fetch`; first hit wins): an explicit ``data_dir`` argument;
``$HBKIT_DATA_DIR``; the project's ``data/`` folder; else a download from the official release
addresses, verified by sha256 and stored under ``data/`` (:func:`hbkit.data.fetch.download`).
Nothing is dropped silently: every reader returns counts of what it skipped and why
(``RetrievalBenchmark.skipped``) and logs them.
"""

from __future__ import annotations

import logging
import os
from typing import Iterable

import numpy as np
import pandas as pd

from hbkit.core.groups import components
from hbkit.data.registry import EVAL_ARTICLES, TRAIN_ARTICLES, DataError, check_benchmark_names
from hbkit.data.releases.lareqa import load_mlqa_r, load_xquad_r
from hbkit.data.releases.mlqa import load_mlqa_r_rebuilt
from hbkit.data.releases.tydiqa import load_tydiqa
from hbkit.data.retrieval_benchmark import RetrievalBenchmark

log = logging.getLogger(__name__)


BENCHMARKS = {
    "xquad-r": load_xquad_r,
    "mlqa-r": load_mlqa_r,
    "tydiqa": load_tydiqa,
    "mlqa-r-rebuilt": load_mlqa_r_rebuilt,
}


def load_benchmark(
    name: str, data_dir: str | os.PathLike | None = None, **kw
) -> RetrievalBenchmark:
    """Load a retrieval benchmark by name, checked and ready to score.

    Args:
        name: ``xquad-r``, ``xquad-r-eval`` (its held-out articles, the default evaluation pool),
            ``mlqa-r`` (LAReQA's release), ``tydiqa`` (GoldP dev as a pool) or ``mlqa-r-rebuilt``
            (the pysbd fallback; not comparable with published numbers).
        data_dir: the data root (default: ``$HBKIT_DATA_DIR``, then the project's ``data/``, then a
            download).
        **kw: ``languages=[...]`` to keep some languages only.

    Returns:
        A :class:`RetrievalBenchmark` (queries, candidates, relevance).

    Raises:
        DataError: an unknown name, or a release file that is absent, damaged or not the release.

    Examples:
        >>> b = load_benchmark("xquad-r-eval", languages=["de", "en"])
        >>> b.subsample(50, seed=0)
    """
    check_benchmark_names([name])
    if name == "xquad-r-eval":
        b = load_xquad_r(data_dir, articles=EVAL_ARTICLES, **kw)
        b.name = "xquad-r-eval"
        return b
    return BENCHMARKS[name](data_dir, **kw)


# --------------------------------------------------------------------------------------------------
# parallel training pairs
# --------------------------------------------------------------------------------------------------
def parallel_pairs(
    articles: Iterable[int] | None = TRAIN_ARTICLES,
    languages: Iterable[str] | None = None,
    data_dir: str | os.PathLike | None = None,
):
    """XQuAD(-R) parallel training pairs as a ``datasets.Dataset``.

    One row per (group, language): ``group`` (the XQuAD question id, shared by its translations),
    ``lang``, ``query`` (the question), ``passage`` (the sentence holding the answer, sliced with
    ``sentence_breaks``), ``answer_key`` (the language-independent identity of the answer: groups
    whose relevance sets in XQuAD-R share a sentence in any language are joined, transitively —
    sentence indices can differ between languages, so ``article:paragraph:sentence`` alone is not
    enough), ``context`` (the paragraph), ``article`` and ``source``. Default: the 36 training
    articles (:data:`TRAIN_ARTICLES`); pass ``articles=None`` for all 48. Every group has a row in
    every language.

    Args:
        articles: the XQuAD article indices to take (default: the training articles; None: all 48).
        languages: the languages (default: all of XQuAD-R's 11).
        data_dir: the data folder (:func:`hbkit.core.env.default_data_roots` when None).

    Returns:
        A ``datasets.Dataset``, one row per (group, language), in the pairs contract of
        :mod:`hbkit.data.pairs`.

    Examples:
        >>> pairs = parallel_pairs(languages=["de", "en", "zh"])
        >>> pairs.column_names[:4]
        ['group', 'lang', 'query', 'passage']
    """
    import datasets

    b = load_xquad_r(data_dir, languages, articles)
    cand = b.candidates.set_index("id")
    answer = _answer_components(b)
    rows = {
        "group": [],
        "lang": [],
        "query": [],
        "passage": [],
        "answer_key": [],
        "context": [],
        "article": [],
    }
    for q in b.queries.itertuples(index=False):
        cid = next(c for c in b.relevance[q.id] if c.startswith(q.lang + ":"))
        rows["group"].append(q.group)
        rows["lang"].append(q.lang)
        rows["query"].append(q.text)
        rows["passage"].append(cand.at[cid, "text"])
        rows["answer_key"].append(answer[q.group])
        rows["context"].append(cand.at[cid, "context"])
        rows["article"].append(int(cid.split(":")[1]))
    rows["source"] = ["xquad-train"] * len(rows["group"])
    return datasets.Dataset.from_dict(rows)


def _answer_components(b: RetrievalBenchmark) -> dict[str, str]:
    """group -> answer identity: the connected components of the graph joining each group to its
    relevant candidates (in every language); named by the component's smallest group id."""
    groups = sorted(set(b.queries["group"]))
    gi = {g: i for i, g in enumerate(groups)}
    ci = {c: len(groups) + i for i, c in enumerate(b.candidates["id"])}
    edges = [
        (gi[g], ci[c]) for q, g in zip(b.queries["id"], b.queries["group"]) for c in b.relevance[q]
    ]
    a, c = map(np.asarray, zip(*edges))
    label = components(a, c, len(groups) + len(ci))
    name: dict[int, str] = {}
    for g in groups:  # sorted: the first group seen names its component
        name.setdefault(label[gi[g]], g)
    return {g: f"xquad:{name[label[gi[g]]]}" for g in groups}


def answer_clusters(b: RetrievalBenchmark) -> pd.DataFrame:
    """The statistical unit of a benchmark: its query groups joined, transitively, when their
    relevant candidates share a source paragraph (``doc``) in any language. In XQuAD and MLQA
    several questions share a paragraph and often an answer sentence, so their results are not
    independent; the statistics resample and sign-flip whole clusters. Returns a DataFrame ``group,
    cluster`` (one row per group; a cluster is named by its smallest group id). Benchmarks without a
    ``doc`` column (or with one query per paragraph) give one cluster per group."""
    groups = sorted(set(b.queries["group"].astype(str)))
    if "doc" not in b.candidates.columns:
        return pd.DataFrame({"group": groups, "cluster": groups})
    gi = {g: i for i, g in enumerate(groups)}
    doc_of = dict(zip(b.candidates["id"], b.candidates["doc"].astype(str)))
    docs = {d: len(groups) + i for i, d in enumerate(sorted(set(doc_of.values())))}
    edges = [
        (gi[str(g)], docs[doc_of[c]])
        for q, g in zip(b.queries["id"], b.queries["group"])
        for c in b.relevance[q]
        if c in doc_of
    ]
    a, c = (
        (np.asarray(x, dtype=np.int64) for x in zip(*edges))
        if edges
        else (np.zeros(0, np.int64),) * 2
    )
    label = components(a, c, len(groups) + len(docs))
    name: dict[int, str] = {}
    for g in groups:  # sorted: the smallest group names its cluster
        name.setdefault(label[gi[g]], g)
    return pd.DataFrame({"group": groups, "cluster": [name[label[gi[g]]] for g in groups]})


def check_disjoint(train_groups: Iterable[str], benchmark: RetrievalBenchmark) -> None:
    """Raise :class:`DataError` if any training group is also a query group of ``benchmark``.

    Args:
        train_groups: the group ids of the training pairs (``pairs["group"]``).
        benchmark: the benchmark the model will be evaluated on.

    Returns:
        None; raises :class:`DataError` naming the shared groups (a leak of evaluation questions
            into training).

    Examples:
        >>> bench = load_benchmark("xquad-r-eval")  # doctest: +SKIP
        >>> check_disjoint(parallel_pairs()["group"], bench)  # doctest: +SKIP
    """
    shared = set(train_groups) & set(benchmark.queries["group"])
    if shared:
        raise DataError(
            f"{len(shared)} groups are both in training and in {benchmark.name} "
            f"(e.g. {sorted(shared)[:3]}); use the article split TRAIN_ARTICLES / EVAL_ARTICLES"
        )


def summary(data_dir: str | os.PathLike | None = None) -> pd.DataFrame:
    """Per-dataset, per-language counts: XQuAD-R, MLQA-R and TyDi-QA queries / candidates, and the
    XQuAD training pairs (train articles) and held-out queries (eval articles).

    Args:
        data_dir: the folder of the releases; None: the data rule of
            :func:`hbkit.core.env.default_data_roots`.

    Returns:
        One row per (dataset, lang): ``queries`` and ``candidates``.

    Examples:
        >>> s = hbkit.data_summary()  # doctest: +SKIP
        >>> s.pivot_table(index="lang", columns="dataset", values="queries")  # doctest: +SKIP
    """
    frames = [load_benchmark(n, data_dir).counts() for n in ("xquad-r", "mlqa-r", "tydiqa")]
    pairs = parallel_pairs(data_dir=data_dir).to_pandas()
    train = (
        pairs.groupby("lang")
        .size()
        .rename("queries")
        .reset_index()
        .assign(dataset="xquad-train", candidates=0)
    )
    frames.append(train[["dataset", "lang", "queries", "candidates"]])
    frames.append(load_benchmark("xquad-r-eval", data_dir).counts())
    return pd.concat(frames, ignore_index=True)
