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

from .config import offline
from .files import atomic_path, atomic_write_bytes, lock_for

log = logging.getLogger(__name__)

#: ISO 639-1 codes of every language the releases use (XQuAD, MLQA, TyDi-QA, MIRACL).
LANGUAGES = {
    "ar": "Arabic", "bn": "Bengali", "de": "German", "el": "Greek", "en": "English", "es": "Spanish",
    "fa": "Persian", "fi": "Finnish", "fr": "French", "hi": "Hindi", "id": "Indonesian", "ja": "Japanese",
    "ko": "Korean", "ro": "Romanian", "ru": "Russian", "sw": "Swahili", "te": "Telugu", "th": "Thai",
    "tr": "Turkish", "vi": "Vietnamese", "yo": "Yoruba", "zh": "Chinese",
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
_COMMIT_LAREQA_MLQA = "5405d2a77e83d5ccb47623a3f9e5604c3f103193"  # mlqa-dev-r/ was removed from the head later
#: Release addresses (used only when no local copy is found).
SOURCES = {
    "xquad": {"folder": "xquad", "files": [f"xquad.{l}.json" for l in XQUAD_LANGS],
              "url": f"https://raw.githubusercontent.com/google-deepmind/xquad/{_COMMIT_XQUAD}/{{file}}",
              "licence": "CC BY-SA 4.0"},
    "xquad-r": {"folder": "xquad-r", "files": [f"{l}.json" for l in XQUAD_R_LANGS],
                "url": f"https://raw.githubusercontent.com/google-research-datasets/lareqa/{_COMMIT_LAREQA}/xquad-r/{{file}}",
                "licence": "CC BY-SA 4.0"},
    "mlqa-r": {"folder": "mlqa-r", "files": [f"{l}.json" for l in MLQA_LANGS],
               "url": f"https://raw.githubusercontent.com/google-research-datasets/lareqa/{_COMMIT_LAREQA_MLQA}/mlqa-dev-r/{{file}}",
               "licence": "CC BY-NC 4.0"},
    "mlqa": {"folder": "mlqa/dev",
             "files": [f"dev-context-{c}-question-{q}.json" for c in MLQA_LANGS for q in MLQA_LANGS],
             "archive": "https://dl.fbaipublicfiles.com/MLQA/MLQA_V1.zip", "member": "MLQA_V1/dev/{file}",
             "licence": "CC BY-SA 3.0"},
    "tydiqa": {"folder": "tydiqa-goldp/dev", "files": ["tydiqa-goldp-v1.1-dev.json"],
               "url": "https://storage.googleapis.com/tydiqa/v1.1/{file}", "licence": "Apache 2.0"},
}
#: Releases hbkit fetches from the Hugging Face hub with huggingface_hub, at a pinned revision (a commit of the hub
#: repository, read from its commit pages; override with the environment variable in ``env``). The repositories
#: hold the release files themselves: ``miracl/miracl``'s loading script no longer runs under current ``datasets``,
#: so hbkit downloads the files (``hf_hub_download``) straight into the release layout.
HUB_SOURCES = {
    "miracl": {"repo": "miracl/miracl", "revision": "b8fd596db2f405cf6b5edfca2940000d770620c6",
               "env": "HBKIT_MIRACL_REVISION", "licence": "Apache 2.0",
               "files": ["miracl-v1.0-{lang}/topics/topics.miracl-v1.0-{lang}-{split}.tsv",
                         "miracl-v1.0-{lang}/qrels/qrels.miracl-v1.0-{lang}-{split}.tsv"]},
    "miracl-corpus": {"repo": "miracl/miracl-corpus", "revision": "262aa62d062e95c5487d7115094ffb2721830965",
                      "env": "HBKIT_MIRACL_CORPUS_REVISION", "licence": "Apache 2.0",
                      "files": ["miracl-corpus-v1.0-{lang}/docs-{i}.jsonl.gz"]},
}
PROJECT_DATA = Path(__file__).resolve().parent.parent / "data"


class DataError(ValueError):
    """A data file is missing, unreadable or malformed; the message names the file, the record and the fix."""


def not_utf8(path: str | os.PathLike, what: str = "file") -> DataError:
    """The :class:`DataError` for a text file with bytes that are not UTF-8: it names the file, the first bad
    line and column and the byte, and the fix. (Called after a ``UnicodeDecodeError``; reads the file again in
    binary to find the place.)"""
    with open(path, "rb") as fh:
        for n, raw in enumerate(fh, 1):
            try:
                raw.decode("utf-8")
            except UnicodeDecodeError as e:
                return DataError(f"{path}: line {n}, column {e.start + 1}: byte 0x{raw[e.start]:02x} is not UTF-8; "
                                 f"save the {what} as UTF-8 (e.g. iconv -f latin1 -t utf-8)")
    return DataError(f"{path}: not UTF-8 text; save the {what} as UTF-8")


# --------------------------------------------------------------------------------------------------
# where files come from
# --------------------------------------------------------------------------------------------------
def _files(name: str, languages: Iterable[str] | None = None) -> list[str]:
    """The files of release ``name`` that ``languages`` need (all files when None)."""
    files = SOURCES[name]["files"]
    if languages is None or name == "tydiqa":
        return files
    langs = set(languages)
    if name == "mlqa":  # the rebuilt MLQA-R reads the same-language files
        return [f"dev-context-{l}-question-{l}.json" for l in MLQA_LANGS if l in langs]
    return [f for f in files if f.split(".")[-2] in langs]


def _missing(root: Path, name: str, languages: Iterable[str] | None = None) -> list[Path]:
    """The files of ``name`` (for ``languages``) that ``root`` lacks; TyDi-QA accepts the per-language files
    (``<language>_tydiqa_dev.json``) or the official ``tydiqa-goldp-v1.1-dev.json``."""
    folder = root / SOURCES[name]["folder"]
    if name == "tydiqa":
        if (folder / "tydiqa-goldp-v1.1-dev.json").is_file():
            return []
        names = {v: k for k, v in _TYDI_NAMES.items()}
        want = [folder / f"{names[l]}_tydiqa_dev.json" for l in (languages or TYDIQA_LANGS)]
        return [f for f in want if not f.is_file()]
    return [folder / f for f in _files(name, languages) if not (folder / f).is_file()]


def missing_release_files(root: str | os.PathLike, name: str, languages: Iterable[str] | None = None) -> list[Path]:
    """The files of release ``name`` (for ``languages``) that the data folder ``root`` lacks (public form of the
    check :func:`release_dir` makes; ``hbkit doctor`` lists them)."""
    return _missing(Path(root), name, languages)


def release_checksums() -> dict[str, str]:
    """The pinned sha256 of every release file with a fixed checksum, by path under the data folder."""
    return dict(_manifest())


def release_dir(name: str, data_dir: str | os.PathLike | None = None, languages: Iterable[str] | None = None,
                download_missing: bool | None = None) -> Path:
    """Return the root folder that holds release ``name`` (``xquad``, ``xquad-r``, ``mlqa-r``, ``mlqa``,
    ``tydiqa``) for ``languages`` (default: all of them).

    Order: explicit ``data_dir``; ``$HBKIT_DATA_DIR``; the project's ``data/``; else download into
    ``data/`` (unless ``download_missing=False`` or ``HF_HUB_OFFLINE``/``HBKIT_OFFLINE`` is set). An explicit
    path or ``HBKIT_DATA_DIR`` that lacks a needed file is an error naming that file, never silently skipped.
    """
    if name not in SOURCES:
        raise DataError(f"unknown dataset {name!r}; known: {', '.join(SOURCES)}")
    for origin, root in (("argument data_dir", data_dir), ("HBKIT_DATA_DIR", os.environ.get("HBKIT_DATA_DIR"))):
        if root:
            root = Path(root).expanduser()
            missing = _missing(root, name, languages)
            if missing:
                raise DataError(
                    f"{origin}={root} lacks {missing[0]}{f' (and {len(missing) - 1} more)' if len(missing) > 1 else ''}"
                    f" of {name}. Point it at a folder laid out like data/README.md, or unset it to use ./data "
                    f"or a download (`hbkit data download {name}`).")
            return root
    if not _missing(PROJECT_DATA, name, languages):
        return PROJECT_DATA
    if download_missing is False or (download_missing is None and offline()):
        raise DataError(
            f"{name} not found: set HBKIT_DATA_DIR to a folder laid out like data/README.md "
            f"(e.g. HBKIT_DATA_DIR=../shared/data), or run `hbkit data download {name}` while online.")
    download(name, PROJECT_DATA)
    return PROJECT_DATA


@lru_cache(maxsize=1)
def _manifest() -> dict[str, str]:
    return json.loads((Path(__file__).with_name("sha256.json")).read_text())


def _fetch(url: str) -> bytes:
    import urllib.error

    try:
        with urllib.request.urlopen(url, timeout=120) as r:  # noqa: S310 - fixed release addresses
            return r.read()
    except (urllib.error.URLError, OSError) as e:
        raise DataError(f"cannot download {url} ({getattr(e, 'reason', e)}); check the network, or place the "
                        "files in a folder laid out like data/README.md and set HBKIT_DATA_DIR") from None


def _verify(rel: str, blob: bytes, origin: str) -> None:
    want = _manifest().get(rel)
    got = hashlib.sha256(blob).hexdigest()
    if want is not None and got != want:
        raise DataError(f"{origin}: sha256 {got} does not match the release ({want}); the download is "
                        f"corrupt or the upstream file changed. Delete it and retry, or use HBKIT_DATA_DIR.")


def download(name: str, dest: str | os.PathLike = PROJECT_DATA, sources: dict | None = None) -> Path:
    """Download release ``name`` from its official address into ``dest`` (laid out like data/README.md).

    Every file with a known checksum (all of XQuAD, XQuAD-R, MLQA-R and MLQA dev) is verified by sha256
    before it is written (atomically); TyDi-QA GoldP dev is checked by its question count (5,077) when read.
    Offline (``HF_HUB_OFFLINE=1`` / ``HBKIT_OFFLINE=1``) it refuses at once, saying where to place the files.
    """
    if name not in (sources or SOURCES):
        raise DataError(f"unknown dataset {name!r}; known: {', '.join(sources or SOURCES)}")
    src = (sources or SOURCES)[name]
    folder = Path(dest) / src["folder"]
    if offline():
        raise DataError(f"cannot download {name} while offline (HF_HUB_OFFLINE/HBKIT_OFFLINE is set): place "
                        f"{', '.join(src['files'][:2])}{' ...' if len(src['files']) > 2 else ''} in {folder} "
                        "(see data/README.md), or unset the variable")
    folder.mkdir(parents=True, exist_ok=True)
    if "archive" in src:
        log.info("downloading %s", src["archive"])
        with zipfile.ZipFile(io.BytesIO(_fetch(src["archive"]))) as z:
            for f in src["files"]:
                blob = z.read(src["member"].format(file=f))
                _verify(f"{src['folder']}/{f}", blob, f"{src['archive']}!{f}")
                atomic_write_bytes(folder / f, blob)
    else:
        for f in src["files"]:
            url = src["url"].format(file=f)
            log.info("downloading %s", url)
            blob = _fetch(url)
            _verify(f"{src['folder']}/{f}", blob, url)
            atomic_write_bytes(folder / f, blob)
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


def _check_languages(languages: Iterable[str] | str | None, available: list[str], dataset: str) -> list[str]:
    """The requested languages (default: all of ``available``; a string is one code or a comma-separated
    list); a :class:`DataError` names the first one the dataset does not have (and says when it is not an ISO
    639-1 code at all) or one given twice."""
    if isinstance(languages, str):
        languages = [l.strip() for l in languages.split(",") if l.strip()]
    languages = list(languages or available)
    twice = sorted({l for l in languages if languages.count(l) > 1})
    if twice:
        raise DataError(f"{dataset}: language {twice[0]!r} is given twice; list each language once")
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
            breaks = _field(para, "sentence_breaks", list, path, where)
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
            s_ = _sentence_index(spans[(q.article, q.paragraph)], q.answer_start)
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
    languages = _check_languages(languages, XQUAD_R_LANGS, "XQuAD-R")
    root = release_dir("xquad-r", data_dir, languages)
    return _read_lareqa("xquad-r", root / "xquad-r", languages, None if articles is None else set(articles), True)


def load_mlqa_r(data_dir: str | os.PathLike | None = None, languages: Iterable[str] | None = None) -> RetrievalBenchmark:
    """MLQA-R as LAReQA released it (``mlqa-r/<lang>.json``, google-research-datasets/lareqa @ 5405d2a,
    mlqa-dev-r/): 4,199 questions and 20,534 candidate sentences (ar 2,545, de 2,362, en 6,264, es 1,787,
    hi 2,426, vi 2,828, zh 2,322), read exactly as XQuAD-R. A question is relevant to its answer sentence in
    each language that has its id (2-4). The set the paper evaluates on; for the pysbd rebuild from MLQA dev
    see :func:`load_mlqa_r_rebuilt`."""
    languages = _check_languages(languages, MLQA_LANGS, "MLQA-R")
    root = release_dir("mlqa-r", data_dir, languages)
    return _read_lareqa("mlqa-r", root / "mlqa-r", languages, None, False)


@lru_cache(maxsize=32)
def _segmenter(lang: str):
    """pysbd's segmenter for ``lang``; languages pysbd has no rules for (vi, tr, th, id, fi, sw, te, ...) use its
    English rules, which split at Latin sentence punctuation (Thai writes none, so a Thai paragraph stays one
    sentence unless it holds such punctuation). Said once per language in the log."""
    import pysbd
    from pysbd.languages import LANGUAGE_CODES

    rules = lang if lang in LANGUAGE_CODES else "en"
    if rules != lang:
        log.info("pysbd has no sentence rules for %r: using its English rules", lang)
    return pysbd.Segmenter(language=rules, clean=False, char_span=True)


_CLAUSE_MARKS = ("\u060c", ",", "\u3001")  # Arabic comma, comma, ideographic comma: never end a sentence


def split_sentences(text: str, lang: str) -> list[tuple[int, int]]:
    """Character spans of the sentences of ``text`` (pysbd, language-specific rules; see :func:`_segmenter`)."""
    spans: list[tuple[int, int]] = []
    for s in _segmenter(lang).segment(text):
        if spans and text[spans[-1][0]:spans[-1][1]].rstrip().endswith(_CLAUSE_MARKS):
            spans[-1] = (spans[-1][0], s.end)  # pysbd's Arabic rules split at the Arabic comma: re-join
        else:
            spans.append((s.start, s.end))
    return [(b, e) for b, e in spans if text[b:e].strip()] or [(0, len(text))]


def load_mlqa_r_rebuilt(data_dir: str | os.PathLike | None = None,
                        languages: Iterable[str] | None = None) -> RetrievalBenchmark:
    """A FALLBACK, not LAReQA's MLQA-R: rebuilt from the same-language MLQA dev files (dev-context-X-question-X)
    with pysbd sentences. Its questions equal LAReQA's 4,199, but its candidate pools differ (pysbd: 20,693
    candidates; es +254, hi -181, zh +174), so its numbers are not comparable with the paper's or LAReQA's.
    Cached (one builder when several processes start at once)."""
    languages = _check_languages(languages, MLQA_LANGS, "MLQA")
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
            s = _sentence_index(spans[ctx], q.answer_start)
            answer_sent.setdefault(q.qid, {})[lang] = f"{lang}:{ctx_id[ctx]}:{s}"
            queries.append({"id": f"{lang}:{q.qid}", "lang": lang, "text": q.text, "group": q.qid})
    qdf, cdf = _frames(queries, cands)
    relevance = {r["id"]: list(answer_sent[r["group"]].values()) for r in queries}
    return RetrievalBenchmark("mlqa-r-rebuilt", qdf, cdf, relevance, skipped,
                              {"source": str(root / "mlqa" / "dev"), "lareqa_candidates": 20534,
                               "sentence_splitter": "pysbd (vi with en rules; no split after a comma)"})


def _cache_path(name: str, files: list[Path], extra) -> Path:
    """Cache file of a derived benchmark, keyed by its source files' bytes and options (:func:`hbkit.files.content_key`)."""
    from .config import cache_dir
    from .files import content_key

    key = content_key(list(files), _BUILD_VERSION, name, extra, [Path(f).name for f in files])
    return cache_dir() / "benchmarks" / f"{name}-{key}.pkl"


_BUILD_VERSION = 3  # bump when a builder's output changes


def load_tydiqa(data_dir: str | os.PathLike | None = None, languages: Iterable[str] | None = None) -> RetrievalBenchmark:
    """TyDi-QA GoldP dev: each question's gold passage is its one relevant candidate; candidates are the
    distinct passages of all languages. Not parallel: every query is its own group. Reads the per-language
    files (``<language>_tydiqa_dev.json``) or the official ``tydiqa-goldp-v1.1-dev.json`` (split by id)."""
    languages = _check_languages(languages, TYDIQA_LANGS, "TyDi-QA GoldP")
    root = release_dir("tydiqa", data_dir, languages)
    folder = root / SOURCES["tydiqa"]["folder"]
    names = {v: k for k, v in _TYDI_NAMES.items()}
    official = folder / "tydiqa-goldp-v1.1-dev.json"
    files = [official] if official.is_file() else [folder / f"{names[l]}_tydiqa_dev.json" for l in languages]
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
    empty = sorted(set(languages) - set(qdf["lang"]))
    if empty:
        raise DataError(f"{folder}: TyDi-QA GoldP has no question in {', '.join(empty)}; the copy is incomplete")
    if len(languages) == len(TYDIQA_LANGS) and len(qdf) + sum(skipped.values()) != 5077:
        raise DataError(f"{folder}: TyDi-QA GoldP dev should have 5,077 questions, found {len(qdf)}; "
                        "the copy is incomplete or not the v1.1 release")
    return RetrievalBenchmark("tydiqa", qdf, cdf, relevance, skipped, {"source": str(folder)})


BENCHMARKS = {"xquad-r": load_xquad_r, "mlqa-r": load_mlqa_r, "tydiqa": load_tydiqa,
              "mlqa-r-rebuilt": load_mlqa_r_rebuilt}
BENCHMARK_NAMES = ("xquad-r", "xquad-r-eval", "mlqa-r", "tydiqa", "mlqa-r-rebuilt")


CORPUS_FAMILIES = ("miracl", "tydiqa-corpus")


def check_benchmark_names(names: Iterable[str] | str) -> list[str]:
    """Validate benchmark names before any work: known, each once. A string is comma-separated; a corpus
    benchmark takes the language codes that follow it (``xquad-r,miracl:sw,te,yo,tydiqa`` is xquad-r,
    ``miracl:sw,te,yo`` and tydiqa)."""
    tokens = [n.strip() for n in names.split(",")] if isinstance(names, str) else [str(n) for n in names]
    out: list[str] = []
    for tok in (t for t in tokens if t):
        family = tok.partition(":")[0]
        if family in CORPUS_FAMILIES:
            out.append(tok)
        elif tok in BENCHMARK_NAMES:
            out.append(tok)
        elif out and out[-1].partition(":")[0] in CORPUS_FAMILIES and tok in LANGUAGES:
            out[-1] += ("," if ":" in out[-1] else ":") + tok
        else:
            raise DataError(f"unknown benchmark {tok!r}; known: {', '.join(BENCHMARK_NAMES)}, "
                            f"or {' / '.join(CORPUS_FAMILIES)}:LANG[,LANG...]")
    if not out:
        raise DataError("no benchmark given; use one or more of " + ", ".join(BENCHMARK_NAMES))
    twice = sorted({n for n in out if out.count(n) > 1})
    if twice:
        raise DataError(f"benchmark {twice[0]!r} is given twice; list each benchmark once")
    return out


def is_corpus_benchmark(name: str) -> bool:
    """Whether ``name`` is a corpus benchmark, searched with faiss: a spec (``miracl:sw,te``, ``tydiqa-corpus``) or
    the name of one of its languages in results (``miracl-sw``, ``tydiqa-corpus-te``). The one rule for it."""
    base = str(name).partition(":")[0]
    return base in CORPUS_FAMILIES or base.startswith(tuple(f + "-" for f in CORPUS_FAMILIES))


def load_benchmark(name: str, data_dir: str | os.PathLike | None = None, **kw) -> RetrievalBenchmark:
    """Load a benchmark by name: ``xquad-r``, ``xquad-r-eval`` (the held-out articles), ``mlqa-r`` (LAReQA's
    release), ``tydiqa``, or ``mlqa-r-rebuilt`` (the pysbd fallback; not comparable with published numbers)."""
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
    import scipy.sparse as sp
    from scipy.sparse.csgraph import connected_components

    groups = sorted(set(b.queries["group"]))
    gi = {g: i for i, g in enumerate(groups)}
    ci = {c: len(groups) + i for i, c in enumerate(b.candidates["id"])}
    edges = [(gi[g], ci[c]) for q, g in zip(b.queries["id"], b.queries["group"]) for c in b.relevance[q]]
    a, c = map(np.asarray, zip(*edges))
    n = len(groups) + len(ci)
    _, label = connected_components(sp.coo_matrix((np.ones(len(a)), (a, c)), shape=(n, n)), directed=False)
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
    import scipy.sparse as sp
    from scipy.sparse.csgraph import connected_components

    groups = sorted(set(b.queries["group"].astype(str)))
    if "doc" not in b.candidates.columns:
        return pd.DataFrame({"group": groups, "cluster": groups})
    gi = {g: i for i, g in enumerate(groups)}
    doc_of = dict(zip(b.candidates["id"], b.candidates["doc"].astype(str)))
    docs = {d: len(groups) + i for i, d in enumerate(sorted(set(doc_of.values())))}
    edges = [(gi[str(g)], docs[doc_of[c]]) for q, g in zip(b.queries["id"], b.queries["group"])
             for c in b.relevance[q] if c in doc_of]
    n = len(groups) + len(docs)
    a, c = (np.asarray(x, dtype=np.int64) for x in zip(*edges)) if edges else (np.zeros(0, np.int64),) * 2
    _, label = connected_components(sp.coo_matrix((np.ones(len(a)), (a, c)), shape=(n, n)), directed=False)
    name: dict[int, str] = {}
    for g in groups:  # sorted: the smallest group names its cluster
        name.setdefault(label[gi[g]], g)
    return pd.DataFrame({"group": groups, "cluster": [name[label[gi[g]]] for g in groups]})


def check_disjoint(train_groups: Iterable[str], benchmark: RetrievalBenchmark) -> None:
    """Raise :class:`DataError` if any training group is also a query group of ``benchmark``."""
    shared = set(train_groups) & set(benchmark.queries["group"])
    if shared:
        raise DataError(f"{len(shared)} groups are both in training and in {benchmark.name} "
                        f"(e.g. {sorted(shared)[:3]}); use the article split TRAIN_ARTICLES / EVAL_ARTICLES")


def summary(data_dir: str | os.PathLike | None = None) -> pd.DataFrame:
    """Per-dataset, per-language counts: XQuAD-R, MLQA-R and TyDi-QA queries / candidates, and the
    XQuAD training pairs (train articles) and held-out queries (eval articles)."""
    frames = [load_benchmark(n, data_dir).counts() for n in ("xquad-r", "mlqa-r", "tydiqa")]
    pairs = parallel_pairs(data_dir=data_dir).to_pandas()
    train = pairs.groupby("lang").size().rename("queries").reset_index().assign(dataset="xquad-train", candidates=0)
    frames.append(train[["dataset", "lang", "queries", "candidates"]])
    frames.append(load_benchmark("xquad-r-eval", data_dir).counts())
    return pd.concat(frames, ignore_index=True)
