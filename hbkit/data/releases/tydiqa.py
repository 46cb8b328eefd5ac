"""TyDi-QA GoldP dev as a retrieval pool: the per-language files or the official
``tydiqa-goldp-v1.1-dev.json``."""

from __future__ import annotations

import os
from typing import Iterable

from hbkit.data.fetch import release_dir
from hbkit.data.registry import TYDI_NAMES, TYDIQA_LANGS, DataError, check_languages
from hbkit.data.releases.squad import read_squad
from hbkit.data.retrieval_benchmark import RetrievalBenchmark, benchmark_frames
from hbkit.data.sources import SOURCES


def load_tydiqa(
    data_dir: str | os.PathLike | None = None, languages: Iterable[str] | None = None
) -> RetrievalBenchmark:
    """TyDi-QA GoldP dev: each question's gold passage is its one relevant candidate; candidates are
    the distinct passages of all languages. Not parallel: every query is its own group. Reads the
    per-language files (``<language>_tydiqa_dev.json``) or the official
    ``tydiqa-goldp-v1.1-dev.json`` (split by id)."""
    languages = check_languages(languages, TYDIQA_LANGS, "TyDi-QA GoldP")
    root = release_dir("tydiqa", data_dir, languages)
    folder = root / SOURCES["tydiqa"]["folder"]
    names = {v: k for k, v in TYDI_NAMES.items()}
    official = folder / "tydiqa-goldp-v1.1-dev.json"
    files = (
        [official]
        if official.is_file()
        else [folder / f"{names[l]}_tydiqa_dev.json" for l in languages]
    )
    queries, cands, relevance, skipped, passage_id = [], [], {}, {}, {}
    for path in files:
        paragraphs, questions = read_squad(path, skipped)
        for q in questions:
            prefix = q.qid.split("-", 1)[0]
            if prefix not in TYDI_NAMES:
                raise DataError(
                    f"{path}: question id {q.qid!r} does not start with a TyDi language name "
                    f"({', '.join(TYDI_NAMES)})"
                )
            lang = TYDI_NAMES[prefix]
            if lang not in languages:
                continue
            ctx = paragraphs[(q.article, q.paragraph)]["context"]
            if (lang, ctx) not in passage_id:
                passage_id[(lang, ctx)] = pid = f"{lang}:{len(passage_id)}"
                cands.append({"id": pid, "lang": lang, "text": ctx, "context": ctx, "doc": pid})
            relevance[f"{lang}:{q.qid}"] = [passage_id[(lang, ctx)]]
            queries.append({"id": f"{lang}:{q.qid}", "lang": lang, "text": q.text, "group": q.qid})
    qdf, cdf = benchmark_frames(queries, cands)
    empty = sorted(set(languages) - set(qdf["lang"]))
    if empty:
        raise DataError(
            f"{folder}: TyDi-QA GoldP has no question in {', '.join(empty)}; the copy is incomplete"
        )
    if len(languages) == len(TYDIQA_LANGS) and len(qdf) + sum(skipped.values()) != 5077:
        raise DataError(
            f"{folder}: TyDi-QA GoldP dev should have 5,077 questions, found {len(qdf)}; "
            "the copy is incomplete or not the v1.1 release"
        )
    return RetrievalBenchmark("tydiqa", qdf, cdf, relevance, skipped, {"source": str(folder)})
