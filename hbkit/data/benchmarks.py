"""The pooled benchmarks and the parallel training pairs: the readers of XQuAD-R, MLQA-R and TyDi-QA, their
two shapes, answer clusters and the disjointness check. Where their files come from is resolved by
:func:`hbkit.data.releases.release_dir`.

Shapes
------
* :func:`parallel_pairs` -> ``datasets.Dataset`` with columns ``group, lang, query, passage, context,
  article``: one row per (parallel item, language). ``group`` is the id shared by the translations of one
  question, so a sampler can take the query of a group in one language and its passage in another.
* :class:`RetrievalBenchmark` -> queries (``id, lang, text, group``), candidates (``id, lang, text,
  context, doc``) and relevance (query id -> candidate ids), with language selection and seeded
  subsampling by group that keeps the parallel structure.

Where files come from (:mod:`hbkit.data.releases`; first hit wins): an explicit ``data_dir`` argument;
``$HBKIT_DATA_DIR``; the project's ``data/`` folder; else a download from the official release addresses,
verified by sha256 and stored under ``data/`` (:func:`hbkit.data.releases.download`). Nothing is dropped
silently: every reader returns counts of what it skipped and why (``RetrievalBenchmark.skipped``) and logs
them.
"""
from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

import numpy as np
import pandas as pd

from hbkit.core.digests import content_key
from hbkit.core.env import cache_dir
from hbkit.core.files import atomic_path, lock_for
from hbkit.core.groups import components, sample_groups
from hbkit.data.registry import (
    EVAL_ARTICLES,
    MLQA_LANGS,
    TRAIN_ARTICLES,
    TYDI_NAMES,
    TYDIQA_LANGS,
    XQUAD_R_LANGS,
    DataError,
    check_benchmark_names,
    check_languages,
)
from hbkit.data.releases import release_dir
from hbkit.data.sources import SOURCES
from hbkit.data.squad import read_squad, record_field, sentence_index, split_sentences

log = logging.getLogger(__name__)


# --------------------------------------------------------------------------------------------------
# retrieval benchmark
# --------------------------------------------------------------------------------------------------
@dataclass
class RetrievalBenchmark:
    """Queries, candidates and relevance of one retrieval benchmark.

    * ``queries``: DataFrame ``id, lang, text, group`` (``group`` is shared by translations).
    * ``candidates``: DataFrame ``id, lang, text, context, doc`` (``doc`` = source paragraph / passage).
    * ``relevance``: ``{query id: [candidate id, ...]}``; every query has at least one relevant candidate.
    * ``skipped``: counts of records left out and why (empty when nothing was skipped).
    """

    name: str
    queries: pd.DataFrame
    candidates: pd.DataFrame
    relevance: dict[str, list[str]]
    skipped: dict[str, int] = field(default_factory=dict)
    notes: dict = field(default_factory=dict)

    @property
    def languages(self) -> list[str]:
        return sorted(set(self.queries["lang"]) | set(self.candidates["lang"]))

    def __repr__(self) -> str:
        return (f"RetrievalBenchmark({self.name!r}: {len(self.queries)} queries, {len(self.candidates)} candidates, "
                f"languages={','.join(self.languages)})")

    def _restrict(self, queries: pd.DataFrame, candidates: pd.DataFrame, note: dict) -> "RetrievalBenchmark":
        keep = set(candidates["id"])
        rel = {q: [c for c in self.relevance[q] if c in keep] for q in queries["id"]}
        empty = [q for q, r in rel.items() if not r]
        queries = queries[~queries["id"].isin(empty)].reset_index(drop=True)
        rel = {q: r for q, r in rel.items() if r}
        skipped = dict(self.skipped)
        if empty:
            skipped["query without relevant candidate after selection"] = len(empty)
        return RetrievalBenchmark(self.name, queries, candidates.reset_index(drop=True), rel, skipped,
                                  {**self.notes, **note})

    def select_languages(self, languages: Iterable[str]) -> "RetrievalBenchmark":
        """Keep the queries and candidates in ``languages`` (relevance restricted accordingly)."""
        languages = list(languages)
        unknown = sorted(set(languages) - set(self.languages))
        if unknown:
            raise DataError(f"{self.name}: languages {unknown} are not in this benchmark ({', '.join(self.languages)})")
        q = self.queries[self.queries["lang"].isin(languages)]
        c = self.candidates[self.candidates["lang"].isin(languages)]
        return self._restrict(q, c, {"languages": languages})

    def subsample(self, n_groups: int, seed: int = 0, distractors: float | None = None) -> "RetrievalBenchmark":
        """Keep ``n_groups`` query groups (seeded; whole parallel groups, so every translation stays).

        Candidates kept: every candidate relevant to a kept query, plus a seeded share ``distractors`` of
        the others (default: the same share as the kept groups, so the pool shrinks proportionally).
        """
        n_all = self.queries["group"].nunique()
        if n_groups >= n_all:
            return self
        rng = np.random.default_rng(seed)
        kept_groups = sample_groups(self.queries["group"], n_groups, rng)   # the distractors are drawn next
        q = self.queries[self.queries["group"].isin(kept_groups)]
        needed = {c for qid in q["id"] for c in self.relevance[qid]}
        share = n_groups / n_all if distractors is None else distractors
        other = self.candidates[~self.candidates["id"].isin(needed)]
        docs = other["doc"].drop_duplicates().sort_values().to_numpy()
        kept_docs = set(rng.choice(docs, size=int(round(share * len(docs))), replace=False)) if len(docs) else set()
        c = self.candidates[self.candidates["id"].isin(needed) | self.candidates["doc"].isin(kept_docs)]
        return self._restrict(q, c, {"subsample": {"groups": n_groups, "of": n_all, "seed": seed,
                                                   "distractor_share": share}})

    def counts(self) -> pd.DataFrame:
        """Per-language counts of queries and candidates."""
        q = self.queries.groupby("lang").size().rename("queries")
        c = self.candidates.groupby("lang").size().rename("candidates")
        df = pd.concat([q, c], axis=1).fillna(0).astype(int)
        df.index.name = "lang"
        return df.reset_index().assign(dataset=self.name)[["dataset", "lang", "queries", "candidates"]]


def _frames(queries: list[dict], candidates: list[dict]):
    return (pd.DataFrame(queries, columns=["id", "lang", "text", "group"]),
            pd.DataFrame(candidates, columns=["id", "lang", "text", "context", "doc"]))


def _read_lareqa(name: str, folder: Path, languages: list[str], articles: set | None, parallel_docs: bool):
    """A LAReQA release folder (``<lang>.json``: SQuAD format plus ``sentence_breaks`` per paragraph): every
    sentence of every paragraph is a candidate, sliced from the context with ``sentence_breaks`` (as LAReQA's
    own evaluation does); a question's relevant candidates are the sentences holding its answer start, one in
    each language that has the question id."""
    queries, cands, answer_sent, skipped = [], [], {}, {}
    for lang in languages:
        path = folder / f"{lang}.json"
        paragraphs, questions = read_squad(path, skipped)
        spans = {}
        for (a, p), para in paragraphs.items():
            if articles is not None and a not in articles:
                continue
            ctx = para["context"]
            where = f"data[{a}].paragraphs[{p}]"
            breaks = record_field(para, "sentence_breaks", list, path, where)
            if not breaks:
                raise DataError(f"{path}: record {where} has an empty 'sentence_breaks' list, so its questions have "
                                "no candidate sentence; the file is corrupt or not a LAReQA release — re-download it")
            spans[(a, p)] = [(int(b), int(e)) for b, e in breaks]
            for s_, (b, e) in enumerate(spans[(a, p)]):
                if not 0 <= b < e <= len(ctx) + 1:
                    raise DataError(f"{path}: {where}.sentence_breaks[{s_}]={[b, e]} is outside the context")
                doc = f"{a}:{p}" if parallel_docs else f"{lang}:{a}:{p}"
                cands.append({"id": f"{lang}:{a}:{p}:{s_}", "lang": lang, "text": ctx[b:e].strip().lstrip("\ufeff"),
                              "context": ctx, "doc": doc})
        for q in questions:
            if articles is not None and q.article not in articles:
                continue
            s_ = sentence_index(spans[(q.article, q.paragraph)], q.answer_start)
            answer_sent.setdefault(q.qid, {})[lang] = f"{lang}:{q.article}:{q.paragraph}:{s_}"
            queries.append({"id": f"{lang}:{q.qid}", "lang": lang, "text": q.text, "group": q.qid})
    qdf, cdf = _frames(queries, cands)
    relevance = {r["id"]: list(answer_sent[r["group"]].values()) for r in queries}
    return RetrievalBenchmark(name, qdf, cdf, relevance, skipped, {"source": str(folder)})


def load_xquad_r(data_dir: str | os.PathLike | None = None, languages: Iterable[str] | None = None,
                 articles: Iterable[int] | None = None) -> RetrievalBenchmark:
    """XQuAD-R (LAReQA): every sentence of every paragraph of every language is a candidate (sliced from
    the context with ``sentence_breaks``); a question's relevant candidates are the sentences holding its
    answer start, one in each language (11 on the full set). ``articles`` restricts to article indices
    (see :data:`EVAL_ARTICLES`). Paragraphs are parallel, so a candidate's ``doc`` is ``article:paragraph``
    in every language."""
    languages = check_languages(languages, XQUAD_R_LANGS, "XQuAD-R")
    root = release_dir("xquad-r", data_dir, languages)
    return _read_lareqa("xquad-r", root / "xquad-r", languages, None if articles is None else set(articles), True)


def load_mlqa_r(data_dir: str | os.PathLike | None = None, languages: Iterable[str] | None = None) -> RetrievalBenchmark:
    """MLQA-R as LAReQA released it (``mlqa-r/<lang>.json``, google-research-datasets/lareqa @ 5405d2a,
    mlqa-dev-r/): 4,199 questions and 20,534 candidate sentences (ar 2,545, de 2,362, en 6,264, es 1,787,
    hi 2,426, vi 2,828, zh 2,322), read exactly as XQuAD-R. A question is relevant to its answer sentence in
    each language that has its id (2-4). The set the paper evaluates on; for the pysbd rebuild from MLQA dev
    see :func:`load_mlqa_r_rebuilt`."""
    languages = check_languages(languages, MLQA_LANGS, "MLQA-R")
    root = release_dir("mlqa-r", data_dir, languages)
    return _read_lareqa("mlqa-r", root / "mlqa-r", languages, None, False)


def load_mlqa_r_rebuilt(data_dir: str | os.PathLike | None = None,
                        languages: Iterable[str] | None = None) -> RetrievalBenchmark:
    """A FALLBACK, not LAReQA's MLQA-R: rebuilt from the same-language MLQA dev files (dev-context-X-question-X)
    with pysbd sentences. Its questions equal LAReQA's 4,199, but its candidate pools differ (pysbd: 20,693
    candidates; es +254, hi -181, zh +174), so its numbers are not comparable with the paper's or LAReQA's.
    Cached (one builder when several processes start at once)."""
    languages = check_languages(languages, MLQA_LANGS, "MLQA")
    root = release_dir("mlqa", data_dir, languages)
    files = [root / "mlqa" / "dev" / f"dev-context-{l}-question-{l}.json" for l in languages]
    cached = _cache_path("mlqa-r-rebuilt", files, languages)
    with lock_for(cached):
        if cached.is_file():
            try:
                return pd.read_pickle(cached)
            except Exception:  # noqa: BLE001 - a truncated or stale cache is rebuilt
                log.warning("benchmark cache %s is unreadable; rebuilding", cached)
        bench = _build_mlqa_r(root, files, languages)
        with atomic_path(cached) as tmp:
            pd.to_pickle(bench, tmp)
    return bench


def _build_mlqa_r(root: Path, files: list[Path], languages: list[str]) -> RetrievalBenchmark:
    queries, cands, answer_sent, skipped = [], [], {}, {}
    for lang, path in zip(languages, files):
        paragraphs, questions = read_squad(path, skipped)
        ctx_id, spans = {}, {}
        for key, para in paragraphs.items():
            ctx = para["context"]
            if ctx not in ctx_id:
                ctx_id[ctx] = len(ctx_id)
                spans[ctx] = split_sentences(ctx, lang)
                for s, (b, e) in enumerate(spans[ctx]):
                    cands.append({"id": f"{lang}:{ctx_id[ctx]}:{s}", "lang": lang, "text": ctx[b:e].strip(),
                                  "context": ctx, "doc": f"{lang}:{ctx_id[ctx]}"})
        for q in questions:
            ctx = paragraphs[(q.article, q.paragraph)]["context"]
            s = sentence_index(spans[ctx], q.answer_start)
            answer_sent.setdefault(q.qid, {})[lang] = f"{lang}:{ctx_id[ctx]}:{s}"
            queries.append({"id": f"{lang}:{q.qid}", "lang": lang, "text": q.text, "group": q.qid})
    qdf, cdf = _frames(queries, cands)
    relevance = {r["id"]: list(answer_sent[r["group"]].values()) for r in queries}
    return RetrievalBenchmark("mlqa-r-rebuilt", qdf, cdf, relevance, skipped,
                              {"source": str(root / "mlqa" / "dev"), "lareqa_candidates": 20534,
                               "sentence_splitter": "pysbd (vi with en rules; no split after a comma)"})


def _cache_path(name: str, files: list[Path], extra) -> Path:
    """Cache file of a derived benchmark, keyed by its source files' bytes and options (:func:`hbkit.core.digests.content_key`)."""
    key = content_key(list(files), _BUILD_VERSION, name, extra, [Path(f).name for f in files])
    return cache_dir() / "benchmarks" / f"{name}-{key}.pkl"


_BUILD_VERSION = 3  # bump when a builder's output changes


def load_tydiqa(data_dir: str | os.PathLike | None = None, languages: Iterable[str] | None = None) -> RetrievalBenchmark:
    """TyDi-QA GoldP dev: each question's gold passage is its one relevant candidate; candidates are the
    distinct passages of all languages. Not parallel: every query is its own group. Reads the per-language
    files (``<language>_tydiqa_dev.json``) or the official ``tydiqa-goldp-v1.1-dev.json`` (split by id)."""
    languages = check_languages(languages, TYDIQA_LANGS, "TyDi-QA GoldP")
    root = release_dir("tydiqa", data_dir, languages)
    folder = root / SOURCES["tydiqa"]["folder"]
    names = {v: k for k, v in TYDI_NAMES.items()}
    official = folder / "tydiqa-goldp-v1.1-dev.json"
    files = [official] if official.is_file() else [folder / f"{names[l]}_tydiqa_dev.json" for l in languages]
    queries, cands, relevance, skipped, passage_id = [], [], {}, {}, {}
    for path in files:
        paragraphs, questions = read_squad(path, skipped)
        for q in questions:
            prefix = q.qid.split("-", 1)[0]
            if prefix not in TYDI_NAMES:
                raise DataError(f"{path}: question id {q.qid!r} does not start with a TyDi language name "
                                f"({', '.join(TYDI_NAMES)})")
            lang = TYDI_NAMES[prefix]
            if lang not in languages:
                continue
            ctx = paragraphs[(q.article, q.paragraph)]["context"]
            if (lang, ctx) not in passage_id:
                passage_id[(lang, ctx)] = pid = f"{lang}:{len(passage_id)}"
                cands.append({"id": pid, "lang": lang, "text": ctx, "context": ctx, "doc": pid})
            relevance[f"{lang}:{q.qid}"] = [passage_id[(lang, ctx)]]
            queries.append({"id": f"{lang}:{q.qid}", "lang": lang, "text": q.text, "group": q.qid})
    qdf, cdf = _frames(queries, cands)
    empty = sorted(set(languages) - set(qdf["lang"]))
    if empty:
        raise DataError(f"{folder}: TyDi-QA GoldP has no question in {', '.join(empty)}; the copy is incomplete")
    if len(languages) == len(TYDIQA_LANGS) and len(qdf) + sum(skipped.values()) != 5077:
        raise DataError(f"{folder}: TyDi-QA GoldP dev should have 5,077 questions, found {len(qdf)}; "
                        "the copy is incomplete or not the v1.1 release")
    return RetrievalBenchmark("tydiqa", qdf, cdf, relevance, skipped, {"source": str(folder)})


BENCHMARKS = {"xquad-r": load_xquad_r, "mlqa-r": load_mlqa_r, "tydiqa": load_tydiqa,
              "mlqa-r-rebuilt": load_mlqa_r_rebuilt}


def load_benchmark(name: str, data_dir: str | os.PathLike | None = None, **kw) -> RetrievalBenchmark:
    """Load a retrieval benchmark by name, checked and ready to score.

    Args:
        name: ``xquad-r``, ``xquad-r-eval`` (its held-out articles, the default evaluation pool), ``mlqa-r``
            (LAReQA's release), ``tydiqa`` (GoldP dev as a pool) or ``mlqa-r-rebuilt`` (the pysbd fallback; not
            comparable with published numbers).
        data_dir: the data root (default: ``$HBKIT_DATA_DIR``, then the project's ``data/``, then a download).
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
def parallel_pairs(articles: Iterable[int] | None = TRAIN_ARTICLES, languages: Iterable[str] | None = None,
                   data_dir: str | os.PathLike | None = None):
    """XQuAD(-R) parallel training pairs as a ``datasets.Dataset``.

    One row per (group, language): ``group`` (the XQuAD question id, shared by its translations),
    ``lang``, ``query`` (the question), ``passage`` (the sentence holding the answer, sliced with
    ``sentence_breaks``), ``answer_key`` (the language-independent identity of the answer: groups whose
    relevance sets in XQuAD-R share a sentence in any language are joined, transitively — sentence indices
    can differ between languages, so ``article:paragraph:sentence`` alone is not enough), ``context`` (the paragraph),
    ``article`` and ``source``. Default: the 36 training articles (:data:`TRAIN_ARTICLES`); pass
    ``articles=None`` for all 48. Every group has a row in every language.

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
    rows = {"group": [], "lang": [], "query": [], "passage": [], "answer_key": [], "context": [], "article": []}
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
    """group -> answer identity: the connected components of the graph joining each group to its relevant
    candidates (in every language); named by the component's smallest group id."""
    groups = sorted(set(b.queries["group"]))
    gi = {g: i for i, g in enumerate(groups)}
    ci = {c: len(groups) + i for i, c in enumerate(b.candidates["id"])}
    edges = [(gi[g], ci[c]) for q, g in zip(b.queries["id"], b.queries["group"]) for c in b.relevance[q]]
    a, c = map(np.asarray, zip(*edges))
    label = components(a, c, len(groups) + len(ci))
    name: dict[int, str] = {}
    for g in groups:  # sorted: the first group seen names its component
        name.setdefault(label[gi[g]], g)
    return {g: f"xquad:{name[label[gi[g]]]}" for g in groups}


def answer_clusters(b: RetrievalBenchmark) -> pd.DataFrame:
    """The statistical unit of a benchmark: its query groups joined, transitively, when their relevant candidates
    share a source paragraph (``doc``) in any language. In XQuAD and MLQA several questions share a paragraph and
    often an answer sentence, so their results are not independent; the statistics resample and sign-flip whole
    clusters. Returns a DataFrame ``group, cluster`` (one row per group; a cluster is named by its smallest group
    id). Benchmarks without a ``doc`` column (or with one query per paragraph) give one cluster per group."""
    groups = sorted(set(b.queries["group"].astype(str)))
    if "doc" not in b.candidates.columns:
        return pd.DataFrame({"group": groups, "cluster": groups})
    gi = {g: i for i, g in enumerate(groups)}
    doc_of = dict(zip(b.candidates["id"], b.candidates["doc"].astype(str)))
    docs = {d: len(groups) + i for i, d in enumerate(sorted(set(doc_of.values())))}
    edges = [(gi[str(g)], docs[doc_of[c]]) for q, g in zip(b.queries["id"], b.queries["group"])
             for c in b.relevance[q] if c in doc_of]
    a, c = (np.asarray(x, dtype=np.int64) for x in zip(*edges)) if edges else (np.zeros(0, np.int64),) * 2
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
        None; raises :class:`DataError` naming the shared groups (a leak of evaluation questions into training).

    Examples:
        >>> check_disjoint(parallel_pairs()["group"], load_benchmark("xquad-r-eval"))     # doctest: +SKIP
    """
    shared = set(train_groups) & set(benchmark.queries["group"])
    if shared:
        raise DataError(f"{len(shared)} groups are both in training and in {benchmark.name} "
                        f"(e.g. {sorted(shared)[:3]}); use the article split TRAIN_ARTICLES / EVAL_ARTICLES")


def summary(data_dir: str | os.PathLike | None = None) -> pd.DataFrame:
    """Per-dataset, per-language counts: XQuAD-R, MLQA-R and TyDi-QA queries / candidates, and the
    XQuAD training pairs (train articles) and held-out queries (eval articles).

    Args:
        data_dir: the folder of the releases; None: the data rule of :func:`hbkit.core.env.default_data_roots`.

    Returns:
        One row per (dataset, lang): ``queries`` and ``candidates``.

    Examples:
        >>> hbkit.data_summary().pivot_table(index="lang", columns="dataset", values="queries")   # doctest: +SKIP
    """
    frames = [load_benchmark(n, data_dir).counts() for n in ("xquad-r", "mlqa-r", "tydiqa")]
    pairs = parallel_pairs(data_dir=data_dir).to_pandas()
    train = pairs.groupby("lang").size().rename("queries").reset_index().assign(dataset="xquad-train", candidates=0)
    frames.append(train[["dataset", "lang", "queries", "candidates"]])
    frames.append(load_benchmark("xquad-r-eval", data_dir).counts())
    return pd.concat(frames, ignore_index=True)
