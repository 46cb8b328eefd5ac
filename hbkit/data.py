"""The data layer: one reader per release, one place that resolves where files come from, two shapes.

Shapes
------
* :func:`parallel_pairs` -> ``datasets.Dataset`` with columns ``group, lang, query, passage, context,
  article``: one row per (parallel item, language). ``group`` is the id shared by the translations of one
  question, so a sampler can take the query of a group in one language and its passage in another.
* :class:`RetrievalBenchmark` -> queries (``id, lang, text, group``), candidates (``id, lang, text,
  context, doc``) and relevance (query id -> candidate ids), with language selection and seeded
  subsampling by group that keeps the parallel structure.

Where files come from (first hit wins): an explicit ``data_dir`` argument; ``$HBKIT_DATA_DIR``; the
project's ``data/`` folder; else a download from the official release addresses, verified by sha256 and
stored under ``data/`` (see :func:`download`). Nothing is dropped silently: every reader returns counts
of what it skipped and why (``RetrievalBenchmark.skipped``) and logs them.
"""
from __future__ import annotations

import hashlib
import io
import json
import logging
import os
import urllib.request
import zipfile
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Iterable

import numpy as np
import pandas as pd

log = logging.getLogger(__name__)

#: ISO 639-1 codes of every language the four releases use.
LANGUAGES = {
    "ar": "Arabic", "bn": "Bengali", "de": "German", "el": "Greek", "en": "English", "es": "Spanish",
    "fi": "Finnish", "hi": "Hindi", "id": "Indonesian", "ko": "Korean", "ro": "Romanian", "ru": "Russian",
    "sw": "Swahili", "te": "Telugu", "th": "Thai", "tr": "Turkish", "vi": "Vietnamese", "zh": "Chinese",
}
XQUAD_LANGS = ["ar", "de", "el", "en", "es", "hi", "ro", "ru", "th", "tr", "vi", "zh"]
XQUAD_R_LANGS = ["ar", "de", "el", "en", "es", "hi", "ru", "th", "tr", "vi", "zh"]
MLQA_LANGS = ["ar", "de", "en", "es", "hi", "vi", "zh"]
TYDIQA_LANGS = ["ar", "bn", "en", "fi", "id", "ko", "ru", "sw", "te"]
_TYDI_NAMES = {"arabic": "ar", "bengali": "bn", "english": "en", "finnish": "fi", "indonesian": "id",
               "korean": "ko", "russian": "ru", "swahili": "sw", "telugu": "te"}

#: Fixed, documented XQuAD article split: every 4th article (index 3, 7, ..., 47) is held out for
#: evaluation (12 articles), the other 36 are for training. Articles are whole Wikipedia pages, so no
#: paragraph, question or translation crosses the split.
EVAL_ARTICLES = tuple(range(3, 48, 4))
TRAIN_ARTICLES = tuple(i for i in range(48) if i not in EVAL_ARTICLES)

_COMMIT_XQUAD = "7d30520c717524000f0d9d2f9c10a069acd9d285"
_COMMIT_LAREQA = "9bc8c7fb6dd8d01d72a05a93c2cb96882b0d299c"
#: Release addresses (used only when no local copy is found).
SOURCES = {
    "xquad": {"folder": "xquad", "files": [f"xquad.{l}.json" for l in XQUAD_LANGS],
              "url": f"https://raw.githubusercontent.com/google-deepmind/xquad/{_COMMIT_XQUAD}/{{file}}",
              "licence": "CC BY-SA 4.0"},
    "xquad-r": {"folder": "xquad-r", "files": [f"{l}.json" for l in XQUAD_R_LANGS],
                "url": f"https://raw.githubusercontent.com/google-research-datasets/lareqa/{_COMMIT_LAREQA}/xquad-r/{{file}}",
                "licence": "CC BY-SA 4.0"},
    "mlqa": {"folder": "mlqa/dev",
             "files": [f"dev-context-{c}-question-{q}.json" for c in MLQA_LANGS for q in MLQA_LANGS],
             "archive": "https://dl.fbaipublicfiles.com/MLQA/MLQA_V1.zip", "member": "MLQA_V1/dev/{file}",
             "licence": "CC BY-SA 3.0"},
    "tydiqa": {"folder": "tydiqa-goldp/dev", "files": ["tydiqa-goldp-v1.1-dev.json"],
               "url": "https://storage.googleapis.com/tydiqa/v1.1/{file}", "licence": "Apache 2.0"},
}
PROJECT_DATA = Path(__file__).resolve().parent.parent / "data"


class DataError(ValueError):
    """A data file is missing, unreadable or malformed; the message names the file, the record and the fix."""


# --------------------------------------------------------------------------------------------------
# where files come from
# --------------------------------------------------------------------------------------------------
def _has(root: Path, name: str) -> bool:
    folder = root / SOURCES[name]["folder"]
    if name == "tydiqa":
        return folder.is_dir() and any(folder.glob("*.json"))
    return all((folder / f).is_file() for f in SOURCES[name]["files"])


def data_dir(name: str, data_dir: str | os.PathLike | None = None, download_missing: bool | None = None) -> Path:
    """Return the folder that holds release ``name`` (``xquad``, ``xquad-r``, ``mlqa``, ``tydiqa``).

    Order: explicit ``data_dir``; ``$HBKIT_DATA_DIR``; the project's ``data/``; else download into
    ``data/`` (unless ``download_missing=False`` or ``HF_HUB_OFFLINE``/``HBKIT_OFFLINE`` is set). An explicit
    path or ``HBKIT_DATA_DIR`` that lacks the files is an error, never silently skipped over.
    """
    if name not in SOURCES:
        raise DataError(f"unknown dataset {name!r}; known: {', '.join(SOURCES)}")
    for origin, root in (("argument data_dir", data_dir), ("HBKIT_DATA_DIR", os.environ.get("HBKIT_DATA_DIR"))):
        if root:
            root = Path(root).expanduser()
            if not _has(root, name):
                raise DataError(
                    f"{origin}={root} does not hold {name} (expected {root / SOURCES[name]['folder']}/"
                    f"{SOURCES[name]['files'][0]} ...). Point it at a folder laid out like data/README.md, "
                    f"or unset it to use ./data or a download (`hbkit data download {name}`).")
            return root
    if _has(PROJECT_DATA, name):
        return PROJECT_DATA
    offline = os.environ.get("HF_HUB_OFFLINE") == "1" or os.environ.get("HBKIT_OFFLINE") == "1"
    if download_missing is False or (download_missing is None and offline):
        raise DataError(
            f"{name} not found: set HBKIT_DATA_DIR to a folder laid out like data/README.md "
            f"(e.g. HBKIT_DATA_DIR=../shared/data), or run `hbkit data download {name}` while online.")
    download(name, PROJECT_DATA)
    return PROJECT_DATA


@lru_cache(maxsize=1)
def _manifest() -> dict[str, str]:
    return json.loads((Path(__file__).with_name("sha256.json")).read_text())


def _fetch(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=120) as r:  # noqa: S310 - fixed release addresses
        return r.read()


def _verify(rel: str, blob: bytes, origin: str) -> None:
    want = _manifest().get(rel)
    got = hashlib.sha256(blob).hexdigest()
    if want is not None and got != want:
        raise DataError(f"{origin}: sha256 {got} does not match the release ({want}); the download is "
                        f"corrupt or the upstream file changed. Delete it and retry, or use HBKIT_DATA_DIR.")


def download(name: str, dest: str | os.PathLike = PROJECT_DATA, sources: dict | None = None) -> Path:
    """Download release ``name`` from its official address into ``dest`` (laid out like data/README.md).

    Every file with a known checksum (all of XQuAD, XQuAD-R and MLQA dev) is verified by sha256 before it
    is written; TyDi-QA GoldP dev is checked by its question count (5,077) when read.
    """
    src = (sources or SOURCES)[name]
    folder = Path(dest) / src["folder"]
    folder.mkdir(parents=True, exist_ok=True)
    if "archive" in src:
        log.info("downloading %s", src["archive"])
        with zipfile.ZipFile(io.BytesIO(_fetch(src["archive"]))) as z:
            for f in src["files"]:
                blob = z.read(src["member"].format(file=f))
                _verify(f"{src['folder']}/{f}", blob, f"{src['archive']}!{f}")
                (folder / f).write_bytes(blob)
    else:
        for f in src["files"]:
            url = src["url"].format(file=f)
            log.info("downloading %s", url)
            blob = _fetch(url)
            _verify(f"{src['folder']}/{f}", blob, url)
            (folder / f).write_bytes(blob)
    return Path(dest)


# --------------------------------------------------------------------------------------------------
# validated SQuAD-format reading
# --------------------------------------------------------------------------------------------------
def _load_json(path: Path) -> dict:
    try:
        with open(path, encoding="utf-8") as fh:
            obj = json.load(fh)
    except FileNotFoundError:
        raise DataError(f"{path}: file not found; check HBKIT_DATA_DIR or run `hbkit data download`") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise DataError(f"{path}: not valid JSON ({e}); the file is truncated or corrupt — re-download it") from None
    if not isinstance(obj, dict) or not isinstance(obj.get("data"), list):
        raise DataError(f"{path}: expected a SQuAD-format object with a 'data' list at the top level")
    return obj


def _field(rec: dict, key: str, typ, path: Path, where: str):
    if not isinstance(rec, dict) or key not in rec:
        raise DataError(f"{path}: record {where} has no field {key!r}; the file is not in SQuAD format")
    val = rec[key]
    if not isinstance(val, typ):
        raise DataError(f"{path}: record {where} field {key!r} is {type(val).__name__}, expected {typ.__name__}")
    return val


def _check_languages(languages: Iterable[str] | None, available: list[str], dataset: str) -> list[str]:
    """The requested languages (default: all of ``available``); a :class:`DataError` names the first one the
    dataset does not have, and says when it is not an ISO 639-1 code at all."""
    languages = list(languages or available)
    for lang in languages:
        if lang not in available:
            hint = "" if lang in LANGUAGES else f" ({lang!r} is not an ISO 639-1 code hbkit knows)"
            raise DataError(f"{dataset} has no language {lang!r}{hint}; it has {', '.join(available)}")
    return languages


@dataclass
class _Question:
    qid: str
    text: str
    answer_start: int
    article: int
    paragraph: int


def read_squad(path: str | os.PathLike, skipped: dict[str, int] | None = None):
    """Read one SQuAD-format file and validate it.

    Returns ``(paragraphs, questions)``: ``paragraphs[(article, paragraph)] = paragraph dict`` and a list of
    :class:`_Question`. Raises :class:`DataError` naming the file and record for malformed JSON, a missing
    field or an answer offset outside its context. Questions with empty text are skipped and counted in
    ``skipped['empty question']``.
    """
    path = Path(path)
    obj = _load_json(path)
    paragraphs, questions = {}, []
    for a, art in enumerate(obj["data"]):
        for p, para in enumerate(_field(art, "paragraphs", list, path, f"data[{a}]")):
            where = f"data[{a}].paragraphs[{p}]"
            ctx = _field(para, "context", str, path, where)
            paragraphs[(a, p)] = para
            for q, qa in enumerate(_field(para, "qas", list, path, where)):
                w = f"{where}.qas[{q}]"
                qid = str(_field(qa, "id", (str, int), path, w))
                w = f"{w} (id={qid})"
                text = _field(qa, "question", str, path, w).strip()
                answers = _field(qa, "answers", list, path, w)
                if not answers:
                    raise DataError(f"{path}: record {w} has an empty 'answers' list")
                start = _field(answers[0], "answer_start", int, path, f"{w}.answers[0]")
                if not 0 <= start < len(ctx):
                    raise DataError(f"{path}: record {w} answer_start={start} is outside its context "
                                    f"(length {len(ctx)}); the file is corrupt")
                if not text:
                    if skipped is not None:
                        skipped["empty question"] = skipped.get("empty question", 0) + 1
                    log.warning("%s: %s has an empty question; skipped", path, w)
                    continue
                questions.append(_Question(qid, text, start, a, p))
    return paragraphs, questions


def _sentence_index(spans: list[tuple[int, int]], start: int) -> int:
    """Index of the sentence holding character ``start``: the first span whose end is past it."""
    for i, (b, e) in enumerate(spans):
        if start < e:
            return i
    return len(spans) - 1


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
        groups = self.queries["group"].drop_duplicates().sort_values().to_numpy()
        if n_groups >= len(groups):
            return self
        rng = np.random.default_rng(seed)
        kept_groups = set(rng.choice(groups, size=n_groups, replace=False))
        q = self.queries[self.queries["group"].isin(kept_groups)]
        needed = {c for qid in q["id"] for c in self.relevance[qid]}
        share = n_groups / len(groups) if distractors is None else distractors
        other = self.candidates[~self.candidates["id"].isin(needed)]
        docs = other["doc"].drop_duplicates().sort_values().to_numpy()
        kept_docs = set(rng.choice(docs, size=int(round(share * len(docs))), replace=False)) if len(docs) else set()
        c = self.candidates[self.candidates["id"].isin(needed) | self.candidates["doc"].isin(kept_docs)]
        return self._restrict(q, c, {"subsample": {"groups": n_groups, "of": len(groups), "seed": seed,
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


def load_xquad_r(data_dir_: str | os.PathLike | None = None, languages: Iterable[str] | None = None,
                 articles: Iterable[int] | None = None) -> RetrievalBenchmark:
    """XQuAD-R (LAReQA): every sentence of every paragraph of every language is a candidate (sliced from
    the context with ``sentence_breaks``); a question's relevant candidates are the sentences holding its
    answer start, one in each language (11 on the full set). ``articles`` restricts to article indices
    (see :data:`EVAL_ARTICLES`)."""
    languages = _check_languages(languages, XQUAD_R_LANGS, "XQuAD-R")
    root = data_dir("xquad-r", data_dir_)
    arts = None if articles is None else set(articles)
    queries, cands, answer_sent, skipped = [], [], {}, {}
    for lang in languages:
        path = root / "xquad-r" / f"{lang}.json"
        paragraphs, questions = read_squad(path, skipped)
        spans = {}
        for (a, p), para in paragraphs.items():
            if arts is not None and a not in arts:
                continue
            ctx = para["context"]
            breaks = _field(para, "sentence_breaks", list, path, f"data[{a}].paragraphs[{p}]")
            spans[(a, p)] = [(int(b), int(e)) for b, e in breaks]
            for s, (b, e) in enumerate(spans[(a, p)]):
                if not 0 <= b < e <= len(ctx) + 1:
                    raise DataError(f"{path}: data[{a}].paragraphs[{p}].sentence_breaks[{s}]={[b, e]} is outside the context")
                cands.append({"id": f"{lang}:{a}:{p}:{s}", "lang": lang, "text": ctx[b:e].strip().lstrip("\ufeff"),
                              "context": ctx, "doc": f"{a}:{p}"})
        for q in questions:
            if arts is not None and q.article not in arts:
                continue
            s = _sentence_index(spans[(q.article, q.paragraph)], q.answer_start)
            answer_sent.setdefault(q.qid, {})[lang] = f"{lang}:{q.article}:{q.paragraph}:{s}"
            queries.append({"id": f"{lang}:{q.qid}", "lang": lang, "text": q.text, "group": q.qid})
    qdf, cdf = _frames(queries, cands)
    relevance = {r["id"]: list(answer_sent[r["group"]].values()) for r in queries}
    return RetrievalBenchmark("xquad-r", qdf, cdf, relevance, skipped, {"source": str(root / "xquad-r")})


@lru_cache(maxsize=8)
def _segmenter(lang: str):
    import pysbd
    # pysbd has no Vietnamese rules; Vietnamese uses Latin script and Latin sentence punctuation.
    return pysbd.Segmenter(language=lang if lang != "vi" else "en", clean=False, char_span=True)


_CLAUSE_MARKS = ("\u060c", ",", "\u3001")  # Arabic comma, comma, ideographic comma: never end a sentence


def split_sentences(text: str, lang: str) -> list[tuple[int, int]]:
    """Character spans of the sentences of ``text`` (pysbd, language-specific rules; vi uses en rules)."""
    spans: list[tuple[int, int]] = []
    for s in _segmenter(lang).segment(text):
        if spans and text[spans[-1][0]:spans[-1][1]].rstrip().endswith(_CLAUSE_MARKS):
            spans[-1] = (spans[-1][0], s.end)  # pysbd's Arabic rules split at the Arabic comma: re-join
        else:
            spans.append((s.start, s.end))
    return [(b, e) for b, e in spans if text[b:e].strip()] or [(0, len(text))]


def load_mlqa_r(data_dir_: str | os.PathLike | None = None, languages: Iterable[str] | None = None) -> RetrievalBenchmark:
    """MLQA-R built the LAReQA way from the same-language MLQA dev files (dev-context-X-question-X): every
    sentence (pysbd) of every distinct context of every language is a candidate; a question's relevant
    candidates are the sentences holding its answer start in each language that has the question id (2-4)."""
    languages = _check_languages(languages, MLQA_LANGS, "MLQA")
    root = data_dir("mlqa", data_dir_)
    files = [root / "mlqa" / "dev" / f"dev-context-{l}-question-{l}.json" for l in languages]
    cached = _cache_path("mlqa-r", files, languages)
    if cached.is_file():
        try:
            return pd.read_pickle(cached)
        except Exception:  # noqa: BLE001 - a stale or broken cache is rebuilt
            log.warning("benchmark cache %s is unreadable; rebuilding", cached)
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
            s = _sentence_index(spans[ctx], q.answer_start)
            answer_sent.setdefault(q.qid, {})[lang] = f"{lang}:{ctx_id[ctx]}:{s}"
            queries.append({"id": f"{lang}:{q.qid}", "lang": lang, "text": q.text, "group": q.qid})
    qdf, cdf = _frames(queries, cands)
    relevance = {r["id"]: list(answer_sent[r["group"]].values()) for r in queries}
    bench = RetrievalBenchmark("mlqa-r", qdf, cdf, relevance, skipped,
                               {"source": str(root / "mlqa" / "dev"), "lareqa_candidates": 20534,
                                "sentence_splitter": "pysbd (vi with en rules; no split after a comma)"})
    cached.parent.mkdir(parents=True, exist_ok=True)
    pd.to_pickle(bench, cached)
    return bench


def _cache_path(name: str, files: list[Path], extra) -> Path:
    """Cache file of a derived benchmark, keyed by its source files (path, size, mtime) and options."""
    from .config import cache_dir

    key = hashlib.sha256(json.dumps([_BUILD_VERSION, [str(f.resolve()) for f in files], extra,
                                     [(f.stat().st_size, f.stat().st_mtime_ns) for f in files if f.is_file()]]
                                    ).encode()).hexdigest()[:20]
    return cache_dir() / "benchmarks" / f"{name}-{key}.pkl"


_BUILD_VERSION = 1  # bump when a builder's output changes


def load_tydiqa(data_dir_: str | os.PathLike | None = None, languages: Iterable[str] | None = None) -> RetrievalBenchmark:
    """TyDi-QA GoldP dev: each question's gold passage is its one relevant candidate; candidates are the
    distinct passages of all languages. Not parallel: every query is its own group. Reads the per-language
    files (``<language>_tydiqa_dev.json``) or the official ``tydiqa-goldp-v1.1-dev.json`` (split by id)."""
    languages = _check_languages(languages, TYDIQA_LANGS, "TyDi-QA GoldP")
    root = data_dir("tydiqa", data_dir_)
    folder = root / SOURCES["tydiqa"]["folder"]
    files = sorted(folder.glob("*_tydiqa_dev.json")) or [folder / "tydiqa-goldp-v1.1-dev.json"]
    queries, cands, relevance, skipped, passage_id = [], [], {}, {}, {}
    for path in files:
        paragraphs, questions = read_squad(path, skipped)
        for q in questions:
            prefix = q.qid.split("-", 1)[0]
            if prefix not in _TYDI_NAMES:
                raise DataError(f"{path}: question id {q.qid!r} does not start with a TyDi language name "
                                f"({', '.join(_TYDI_NAMES)})")
            lang = _TYDI_NAMES[prefix]
            if lang not in languages:
                continue
            ctx = paragraphs[(q.article, q.paragraph)]["context"]
            if (lang, ctx) not in passage_id:
                passage_id[(lang, ctx)] = pid = f"{lang}:{len(passage_id)}"
                cands.append({"id": pid, "lang": lang, "text": ctx, "context": ctx, "doc": pid})
            relevance[f"{lang}:{q.qid}"] = [passage_id[(lang, ctx)]]
            queries.append({"id": f"{lang}:{q.qid}", "lang": lang, "text": q.text, "group": q.qid})
    qdf, cdf = _frames(queries, cands)
    if len(languages) == len(TYDIQA_LANGS) and len(qdf) + sum(skipped.values()) != 5077:
        raise DataError(f"{folder}: TyDi-QA GoldP dev should have 5,077 questions, found {len(qdf)}; "
                        "the copy is incomplete or not the v1.1 release")
    return RetrievalBenchmark("tydiqa", qdf, cdf, relevance, skipped, {"source": str(folder)})


BENCHMARKS = {"xquad-r": load_xquad_r, "mlqa-r": load_mlqa_r, "tydiqa": load_tydiqa}


def load_benchmark(name: str, data_dir_: str | os.PathLike | None = None, **kw) -> RetrievalBenchmark:
    """Load a benchmark by name: ``xquad-r``, ``xquad-r-eval`` (the held-out articles), ``mlqa-r``, ``tydiqa``."""
    if name == "xquad-r-eval":
        b = load_xquad_r(data_dir_, articles=EVAL_ARTICLES, **kw)
        b.name = "xquad-r-eval"
        return b
    if name not in BENCHMARKS:
        raise DataError(f"unknown benchmark {name!r}; known: xquad-r, xquad-r-eval, mlqa-r, tydiqa")
    return BENCHMARKS[name](data_dir_, **kw)


# --------------------------------------------------------------------------------------------------
# parallel training pairs
# --------------------------------------------------------------------------------------------------
def parallel_pairs(articles: Iterable[int] | None = TRAIN_ARTICLES, languages: Iterable[str] | None = None,
                   data_dir_: str | os.PathLike | None = None):
    """XQuAD(-R) parallel training pairs as a ``datasets.Dataset``.

    One row per (group, language): ``group`` (the XQuAD question id, shared by its translations),
    ``lang``, ``query`` (the question), ``passage`` (the sentence holding the answer, sliced with
    ``sentence_breaks``), ``context`` (the paragraph) and ``article``. Default: the 36 training articles
    (:data:`TRAIN_ARTICLES`); pass ``articles=None`` for all 48. Every group has a row in every language.
    """
    import datasets

    b = load_xquad_r(data_dir_, languages, articles)
    cand = b.candidates.set_index("id")
    rows = {"group": [], "lang": [], "query": [], "passage": [], "context": [], "article": []}
    for q in b.queries.itertuples(index=False):
        cid = next(c for c in b.relevance[q.id] if c.startswith(q.lang + ":"))
        rows["group"].append(q.group)
        rows["lang"].append(q.lang)
        rows["query"].append(q.text)
        rows["passage"].append(cand.at[cid, "text"])
        rows["context"].append(cand.at[cid, "context"])
        rows["article"].append(int(cid.split(":")[1]))
    return datasets.Dataset.from_dict(rows)


def check_disjoint(train_groups: Iterable[str], benchmark: RetrievalBenchmark) -> None:
    """Raise :class:`DataError` if any training group is also a query group of ``benchmark``."""
    shared = set(train_groups) & set(benchmark.queries["group"])
    if shared:
        raise DataError(f"{len(shared)} groups are both in training and in {benchmark.name} "
                        f"(e.g. {sorted(shared)[:3]}); use the article split TRAIN_ARTICLES / EVAL_ARTICLES")


def summary(data_dir_: str | os.PathLike | None = None) -> pd.DataFrame:
    """Per-dataset, per-language counts: XQuAD-R, MLQA-R and TyDi-QA queries / candidates, and the
    XQuAD training pairs (train articles) and held-out queries (eval articles)."""
    frames = [load_benchmark(n, data_dir_).counts() for n in ("xquad-r", "mlqa-r", "tydiqa")]
    pairs = parallel_pairs(data_dir_=data_dir_).to_pandas()
    train = pairs.groupby("lang").size().rename("queries").reset_index().assign(dataset="xquad-train", candidates=0)
    frames.append(train[["dataset", "lang", "queries", "candidates"]])
    frames.append(load_benchmark("xquad-r-eval", data_dir_).counts())
    return pd.concat(frames, ignore_index=True)
