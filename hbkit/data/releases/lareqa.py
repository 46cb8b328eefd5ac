"""LAReQA's release (google-research-datasets/lareqa): XQuAD-R and MLQA-R, ``<lang>.json`` in SQuAD
format plus ``sentence_breaks`` per paragraph, read as LAReQA's own evaluation reads them."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable

from hbkit.data.fetch import release_dir
from hbkit.data.registry import MLQA_LANGS, XQUAD_R_LANGS, DataError, check_languages
from hbkit.data.releases.squad import read_squad, record_field, sentence_index
from hbkit.data.retrieval_benchmark import RetrievalBenchmark, benchmark_frames


def read_lareqa(
    name: str, folder: Path, languages: list[str], articles: set | None, parallel_docs: bool
):
    """A LAReQA release folder (``<lang>.json``: SQuAD format plus ``sentence_breaks`` per
    paragraph): every sentence of every paragraph is a candidate, sliced from the context with
    ``sentence_breaks`` (as LAReQA's own evaluation does); a question's relevant candidates are the
    sentences holding its answer start, one in each language that has the question id."""
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
                raise DataError(
                    f"{path}: record {where} has an empty 'sentence_breaks' list, so its questions "
                    "have no candidate sentence; the file is corrupt or not a LAReQA release — "
                    "re-download it"
                )
            spans[(a, p)] = [(int(b), int(e)) for b, e in breaks]
            for s_, (b, e) in enumerate(spans[(a, p)]):
                if not 0 <= b < e <= len(ctx) + 1:
                    raise DataError(
                        f"{path}: {where}.sentence_breaks[{s_}]={[b, e]} is outside the context"
                    )
                doc = f"{a}:{p}" if parallel_docs else f"{lang}:{a}:{p}"
                cands.append(
                    {
                        "id": f"{lang}:{a}:{p}:{s_}",
                        "lang": lang,
                        "text": ctx[b:e].strip().lstrip("\ufeff"),
                        "context": ctx,
                        "doc": doc,
                    }
                )
        for q in questions:
            if articles is not None and q.article not in articles:
                continue
            s_ = sentence_index(spans[(q.article, q.paragraph)], q.answer_start)
            answer_sent.setdefault(q.qid, {})[lang] = f"{lang}:{q.article}:{q.paragraph}:{s_}"
            queries.append({"id": f"{lang}:{q.qid}", "lang": lang, "text": q.text, "group": q.qid})
    qdf, cdf = benchmark_frames(queries, cands)
    relevance = {r["id"]: list(answer_sent[r["group"]].values()) for r in queries}
    return RetrievalBenchmark(name, qdf, cdf, relevance, skipped, {"source": str(folder)})


def load_xquad_r(
    data_dir: str | os.PathLike | None = None,
    languages: Iterable[str] | None = None,
    articles: Iterable[int] | None = None,
) -> RetrievalBenchmark:
    """XQuAD-R (LAReQA): every sentence of every paragraph of every language is a candidate (sliced
    from the context with ``sentence_breaks``); a question's relevant candidates are the sentences
    holding its answer start, one in each language (11 on the full set). ``articles`` restricts to
    article indices (see :data:`hbkit.data.registry.EVAL_ARTICLES`). Paragraphs are parallel, so a
    candidate's ``doc`` is ``article:paragraph`` in every language."""
    languages = check_languages(languages, XQUAD_R_LANGS, "XQuAD-R")
    root = release_dir("xquad-r", data_dir, languages)
    return read_lareqa(
        "xquad-r", root / "xquad-r", languages, None if articles is None else set(articles), True
    )


def load_mlqa_r(
    data_dir: str | os.PathLike | None = None, languages: Iterable[str] | None = None
) -> RetrievalBenchmark:
    """MLQA-R as LAReQA released it (``mlqa-r/<lang>.json``, google-research-datasets/lareqa @
    5405d2a, mlqa-dev-r/): 4,199 questions and 20,534 candidate sentences (ar 2,545, de 2,362, en
    6,264, es 1,787, hi 2,426, vi 2,828, zh 2,322), read exactly as XQuAD-R. A question is relevant
    to its answer sentence in each language that has its id (2-4). The set the paper evaluates on;
    for the pysbd rebuild from MLQA dev see :func:`hbkit.data.releases.mlqa.load_mlqa_r_rebuilt`."""
    languages = check_languages(languages, MLQA_LANGS, "MLQA-R")
    root = release_dir("mlqa-r", data_dir, languages)
    return read_lareqa("mlqa-r", root / "mlqa-r", languages, None, False)
