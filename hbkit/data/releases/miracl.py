"""MIRACL (Zhang et al. 2022, arXiv 2210.09984) read from its release layout, and TyDi-QA GoldP
written in that layout so the offline end-to-end case runs through the same reader.

Release layout (``project-miracl/miracl`` README; hub datasets ``miracl/miracl`` and
``miracl/miracl-corpus``), under a root folder (``<data>/miracl/``)::

    miracl-v1.0-XX/topics/topics.miracl-v1.0-XX-{dev,train}.tsv   qid<TAB>query, one per line
    miracl-v1.0-XX/qrels/qrels.miracl-v1.0-XX-{dev,train}.tsv     TREC qrels: qid Q0 docid rel
    miracl-corpus-v1.0-XX/docs-0.jsonl.gz, docs-1.jsonl.gz, ...   {"docid", "title", "text"}

Corpus shards are read in numeric order (``docs-2`` before ``docs-10``). Docids follow ``X#Y``
(article X, passage Y). The text MIRACL's dense baselines encode is ``f"{title} {text}"`` (pyserini
``encode/_auto.py``, ``AutoDocumentEncoder.encode`` with titles and no separator token; MIRACL's
mDPR baselines run through pyserini): :func:`passage_text`.

Where files come from: an explicit ``data_dir`` (the folder holding ``miracl-v1.0-XX/``, or its
parent with a ``miracl/`` subfolder), else ``$HBKIT_DATA_DIR/miracl/``, else the hub (the release
files themselves, downloaded with huggingface_hub at pinned revisions into the same layout under the
cache), else a :class:`~hbkit.data.registry.DataError` naming the files to place. Nothing is dropped
silently: a malformed line (file and line number), a duplicate, an empty qrels file or a qrel naming
a document absent from the corpus is an error; a query without any relevant judgement is excluded,
counted in ``skipped`` and logged (as MIRACL's evaluation skips it). Reading a benchmark never
streams its corpus: duplicates and qrels naming absent documents are found by one pass over the
docids, :meth:`CorpusBenchmark.check` (over the corpus) or, in
:func:`hbkit.retrieval.corpus_eval.evaluate_corpus`, over the encoded shards' ``.ids`` files (no
second read of the text).
"""

from __future__ import annotations

import gzip
import hashlib
import itertools
import json
import logging
import os
import re
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Iterator

import numpy as np

from hbkit.core.env import cache_dir, data_roots, offline, shared_data_dir
from hbkit.data.fetch import fetch_hub_file, hub_revision
from hbkit.data.registry import DataError
from hbkit.data.sources import HUB_SOURCES
from hbkit.data.textfile import text_lines

log = logging.getLogger(__name__)


#: MIRACL's 18 languages; de and yo (the "surprise" languages) have no train split.
MIRACL_LANGS = [
    "ar",
    "bn",
    "de",
    "en",
    "es",
    "fa",
    "fi",
    "fr",
    "hi",
    "id",
    "ja",
    "ko",
    "ru",
    "sw",
    "te",
    "th",
    "yo",
    "zh",
]


NO_TRAIN = frozenset({"de", "yo"})


SPLITS = ("dev", "train")


def passage_text(title: str, text: str) -> str:
    """The text encoded for a passage: ``f"{title} {text}"`` as MIRACL's baselines (pyserini) do;
    the bare ``text`` when the title is empty (TyDi-as-MIRACL has no titles)."""
    return f"{title} {text}" if title else text


def topics_path(root: Path, lang: str, split: str) -> Path:
    return Path(root) / f"miracl-v1.0-{lang}" / "topics" / f"topics.miracl-v1.0-{lang}-{split}.tsv"


def qrels_path(root: Path, lang: str, split: str) -> Path:
    return Path(root) / f"miracl-v1.0-{lang}" / "qrels" / f"qrels.miracl-v1.0-{lang}-{split}.tsv"


def corpus_dir(root: Path, lang: str) -> Path:
    return Path(root) / f"miracl-corpus-v1.0-{lang}"


def _layout(root: Path | str, lang: str, split: str) -> str:
    return (
        f"{topics_path(root, lang, split)}, {qrels_path(root, lang, split)} and "
        f"{corpus_dir(root, lang)}/docs-0.jsonl.gz ... (layout: data/README.md, section MIRACL)"
    )


def corpus_files(folder: Path) -> list[Path]:
    """The ``docs-N.jsonl.gz`` shards of a corpus folder in numeric order."""
    files = [
        (int(m.group(1)), p)
        for p in Path(folder).glob("docs-*.jsonl.gz")
        if (m := re.fullmatch(r"docs-(\d+)\.jsonl\.gz", p.name))
    ]
    return [p for _, p in sorted(files)]


# --------------------------------------------------------------------------------------------------
# readers
# --------------------------------------------------------------------------------------------------
def read_topics(path: Path) -> dict[str, str]:
    """``{qid: query}`` from a ``qid<TAB>query`` file. A line without a tab, an empty qid or query,
    or a repeated qid raises :class:`DataError` naming the file and line."""
    topics: dict[str, str] = {}
    # a byte-order mark is allowed; a non-UTF-8 byte is named
    for n, line in text_lines(path, "topics file"):
        line = line.rstrip("\n").rstrip("\r")
        if not line.strip():
            continue
        qid, sep, query = line.partition("\t")
        if not sep or not qid.strip() or not query.strip():
            raise DataError(f"{path}:{n}: expected 'qid<TAB>query', got {line[:80]!r}")
        if qid in topics:
            raise DataError(f"{path}:{n}: query id {qid!r} appears twice")
        topics[qid] = query
    if not topics:
        raise DataError(f"{path}: no topics in the file")
    return topics


def read_qrels(path: Path) -> dict[str, dict[str, int]]:
    """``{qid: {docid: relevance}}`` from a TREC qrels file (``qid Q0 docid relevance``, whitespace
    separated). A line with another shape or a non-integer relevance, a repeated (qid, docid), or an
    empty file raises :class:`DataError` naming the file and line."""
    qrels: dict[str, dict[str, int]] = {}
    # a byte-order mark is allowed; a non-UTF-8 byte is named
    for n, line in text_lines(path, "qrels file"):
        parts = line.split()
        if not parts:
            continue
        if len(parts) != 4:
            raise DataError(
                f"{path}:{n}: expected 'qid Q0 docid relevance' (4 fields), got "
                f"{line.strip()[:80]!r}"
            )
        qid, _, docid, rel = parts
        try:
            r = int(rel)
        except ValueError:
            raise DataError(f"{path}:{n}: relevance {rel!r} is not an integer") from None
        judged = qrels.setdefault(qid, {})
        if docid in judged:
            raise DataError(f"{path}:{n}: ({qid}, {docid}) is judged twice")
        judged[docid] = r
    if not qrels:
        raise DataError(
            f"{path}: the qrels file is empty; it should hold 'qid Q0 docid relevance' lines"
        )
    return qrels


_SPACE = re.compile(r"\s")


def iter_corpus(files: Iterable[Path]) -> Iterator[tuple[str, str, str]]:
    """Stream ``(docid, title, text)`` over gzipped JSON-lines shards, in order, one line at a time
    (never the whole corpus in memory). A truncated or corrupt gzip, a line that is not JSON, or a
    record without a string ``docid``/``title``/``text``, a docid that is empty or holds whitespace
    (TREC files split on it), or bytes that are not UTF-8 raise :class:`DataError` naming the file
    and line."""
    for path in files:
        path = Path(path)
        n = 0
        try:
            with gzip.open(
                path, "rb"
            ) as fh:  # bytes, decoded per line: a bad byte is named by its line
                for n, raw in enumerate(fh, 1):
                    try:
                        line = raw.decode("utf-8")
                    except UnicodeDecodeError as e:
                        raise DataError(
                            f"{path}:{n}: column {e.start + 1}: byte 0x{raw[e.start]:02x} is not "
                            "UTF-8 (the gzip itself is intact); the shard was not written as "
                            "UTF-8: write or download it again"
                        ) from None
                    if not line.strip():
                        continue
                    try:
                        rec = json.loads(line)
                    except json.JSONDecodeError as e:
                        raise DataError(
                            f"{path}:{n}: not a JSON line ({e.msg}); expected "
                            '{"docid": ..., "title": ..., "text": ...}'
                        ) from None
                    if not isinstance(rec, dict) or not all(
                        isinstance(rec.get(k), str) for k in ("docid", "title", "text")
                    ):
                        raise DataError(
                            f"{path}:{n}: a corpus record needs string fields docid, title, text; "
                            "got keys "
                            f"{sorted(rec) if isinstance(rec, dict) else type(rec).__name__}"
                        )
                    if _SPACE.search(rec["docid"]) or not rec["docid"]:
                        raise DataError(
                            f"{path}:{n}: docid {rec['docid']!r} is empty or holds whitespace, "
                            "which the TREC qrels and run formats cannot hold (they split on it); "
                            f"rename it, e.g. {_SPACE.sub('_', rec['docid']) or 'doc' + str(n)!r}"
                        )
                    yield rec["docid"], rec["title"], rec["text"]
        except (EOFError, gzip.BadGzipFile, zlib.error) as e:
            raise DataError(
                f"{path}: corrupt or truncated gzip after line {n} ({type(e).__name__}: {e}); "
                "download the shard again"
            ) from None
        except FileNotFoundError:
            raise DataError(f"{path}: corpus shard not found") from None


def _docid_hash(d: str) -> int:
    return int.from_bytes(hashlib.blake2b(d.encode(), digest_size=8).digest(), "little")


def _first_repeat(docids: Iterable[str], suspects: set[int]) -> tuple[str, int, int] | None:
    """The first docid that occurs twice, with its two positions (1-based, in reading order), among
    those whose hash is in ``suspects``; None when the equal hashes were a collision of different
    strings."""
    seen: dict[str, int] = {}
    for n, d in enumerate(docids, 1):
        if _docid_hash(d) in suspects:
            if d in seen:
                return d, seen[d], n
            seen[d] = n
    return None


def check_docids(
    docids: Iterable[str],
    qrels: dict[str, dict[str, int]],
    source: str,
    unknown: str = "error",
    again=None,
) -> tuple[int, dict[str, dict[str, int]], int]:
    """One streaming pass over a corpus's docids: count them, refuse duplicates, and find qrels
    docids that are not in the corpus. Memory: 8 bytes per document (a 64-bit hash of each docid,
    sorted once; a hash collision is confirmed on the strings before it is reported), plus the
    qrels' docids.

    ``unknown="error"`` raises :class:`DataError` for a judged document absent from the corpus;
    ``"skip"`` drops those judgements and returns how many. ``again``: a callable that streams the
    docids once more, to name the first repeated docid and its two positions (and to tell a hash
    collision from a repeat). Returns ``(n_docs, qrels, n_unknown)``."""
    if unknown not in ("error", "skip"):
        raise ValueError(f"unknown={unknown!r}: use 'error' or 'skip'")
    judged = {d for j in qrels.values() for d in j}
    found: set[str] = set()
    hashes = []
    block = np.empty(1 << 16, dtype=np.uint64)
    fill = 0
    for d in docids:
        if d in judged:
            found.add(d)
        block[fill] = _docid_hash(d)
        fill += 1
        if fill == len(block):
            hashes.append(block.copy())
            fill = 0
    hashes.append(block[:fill].copy())
    h = np.concatenate(hashes)
    h.sort()
    dup = np.flatnonzero(h[1:] == h[:-1])
    first = (
        _first_repeat(again(), {int(x) for x in h[dup]}) if len(dup) and again is not None else None
    )
    if len(dup) and (again is None or first is not None):
        where = (
            f": docid {first[0]!r} is document {first[1]:,} and again document {first[2]:,}"
            if first
            else ""
        )
        raise DataError(
            f"{source}: duplicate docid(s) in the corpus ({len(dup)} repeated{where}; each docid "
            "must appear once). Remove the repeated passages or re-download the corpus"
        )
    missing = judged - found
    n_unknown = 0
    if missing:
        if unknown == "error":
            ex = sorted(missing)[:3]
            raise DataError(
                f"{source}: qrels name {len(missing)} docid(s) absent from the corpus (e.g. {ex}); "
                "the corpus is incomplete or from another release (`hbkit eval --unknown-docs "
                "skip`, or unknown_docs='skip' in Python, drops those judgements and counts them)"
            )
        n_unknown = sum(1 for j in qrels.values() for d in j if d in missing)
        qrels = {q: {d: r for d, r in j.items() if d not in missing} for q, j in qrels.items()}
    return int(len(h)), qrels, n_unknown


# --------------------------------------------------------------------------------------------------
# the benchmark object
# --------------------------------------------------------------------------------------------------
@dataclass
class CorpusBenchmark:
    """One language of a corpus-retrieval benchmark: ``topics`` (qid -> query, only queries with at
    least one relevant judgement), ``qrels`` (qid -> docid -> relevance, same queries) and a corpus
    streamed from ``files`` by :meth:`docs` / :meth:`passages`. ``skipped`` counts what was left out
    and why."""

    name: str
    lang: str
    topics: dict[str, str]
    qrels: dict[str, dict[str, int]]
    files: list[Path]
    skipped: dict[str, int] = field(default_factory=dict)
    notes: dict = field(default_factory=dict)

    def docs(self) -> Iterator[tuple[str, str, str]]:
        """Stream ``(docid, title, text)`` (see :func:`iter_corpus`)."""
        return iter_corpus(self.files)

    def passages(self) -> Iterator[tuple[str, str]]:
        """Stream ``(docid, passage_text(title, text))``: what the encoder sees."""
        return ((d, passage_text(t, x)) for d, t, x in self.docs())

    def check(self, unknown_docs: str = "error") -> int:
        """Stream the corpus once: refuse duplicate docids and qrels naming absent documents (or
        drop and count them with ``unknown_docs="skip"``). Returns the number of documents."""
        n, self.qrels, n_unknown = check_docids(
            (d for d, _, _ in self.docs()),
            self.qrels,
            f"{self.name} corpus {corpus_dir_of(self.files)}",
            unknown_docs,
            again=lambda: (d for d, _, _ in self.docs()),
        )
        if n_unknown:
            self.skipped["qrels docid absent from the corpus (judgement dropped)"] = n_unknown
            self._drop_unjudged()
        return n

    def _drop_unjudged(self) -> None:
        empty = [q for q, j in self.qrels.items() if not any(r >= 1 for r in j.values())]
        if empty:
            key = "query with no relevant document left after dropping unknown docids (excluded)"
            self.skipped[key] = self.skipped.get(key, 0) + len(empty)
            for q in empty:
                self.qrels.pop(q)
                self.topics.pop(q, None)

    def __repr__(self) -> str:
        return (
            f"CorpusBenchmark({self.name}: {len(self.topics)} queries, "
            f"{sum(len(j) for j in self.qrels.values())} judgements, {len(self.files)} corpus "
            "shards)"
        )


def corpus_dir_of(files: list[Path]) -> str:
    return str(Path(files[0]).parent) if files else "(no files)"


def _assemble(
    name: str,
    lang: str,
    topics: dict[str, str],
    qrels: dict[str, dict[str, int]],
    files: list[Path],
    tpath: Path,
    qpath: Path,
) -> CorpusBenchmark:
    unknown_q = [q for q in qrels if q not in topics]
    if unknown_q:
        raise DataError(
            f"{qpath}: {len(unknown_q)} qrels query id(s) are not in {tpath} (e.g. "
            f"{unknown_q[:3]}); topics and qrels must come from the same language and split"
        )
    skipped: dict[str, int] = {}
    no_judgement = [q for q in topics if q not in qrels]
    only_zero = [q for q, j in qrels.items() if not any(r >= 1 for r in j.values())]
    if no_judgement:
        skipped["query without any judgement (excluded)"] = len(no_judgement)
    if only_zero:
        skipped["query with only relevance-0 judgements (excluded)"] = len(only_zero)
    drop = set(no_judgement) | set(only_zero)
    topics = {q: t for q, t in topics.items() if q not in drop}
    qrels = {q: j for q, j in qrels.items() if q not in drop}
    if not topics:
        raise DataError(
            f"{qpath}: no query has a relevant judgement (relevance >= 1); nothing to evaluate"
        )
    for why, n in skipped.items():
        log.warning("%s: %d %s", name, n, why)
    return CorpusBenchmark(
        name, lang, topics, qrels, files, skipped, {"topics": str(tpath), "qrels": str(qpath)}
    )


def read_release(
    root: str | os.PathLike, lang: str, split: str = "dev", name: str | None = None
) -> CorpusBenchmark:
    """Read one language and split from a folder laid out like the MIRACL release (module
    docstring)."""
    root = Path(root)
    tpath, qpath, cdir = (
        topics_path(root, lang, split),
        qrels_path(root, lang, split),
        corpus_dir(root, lang),
    )
    missing = [p for p in (tpath, qpath) if not p.is_file()]
    files = corpus_files(cdir)
    if not files:
        missing.append(cdir / "docs-0.jsonl.gz")
    if missing:
        raise DataError(
            f"MIRACL {lang} {split}: missing {', '.join(map(str, missing))}. Place "
            f"{_layout(root, lang, split)}"
        )
    return _assemble(
        name or f"miracl-{lang}", lang, read_topics(tpath), read_qrels(qpath), files, tpath, qpath
    )


def _check_lang_split(lang: str, split: str) -> None:
    if lang not in MIRACL_LANGS:
        raise DataError(f"MIRACL has no language {lang!r}; use one of {', '.join(MIRACL_LANGS)}")
    if split not in SPLITS:
        raise DataError(f"MIRACL split {split!r}: use dev or train")
    if split == "train" and lang in NO_TRAIN:
        raise DataError(
            f"MIRACL {lang} has no train split (de and yo are dev-only); use split='dev'"
        )


def miracl_root(data_dir: str | os.PathLike | None = None) -> Path | None:
    """The MIRACL root folder: ``data_dir`` (or its ``miracl/`` subfolder when present), else
    ``$HBKIT_DATA_DIR/miracl``, else ``miracl/`` of ``../shared/data`` beside the checkout when it
    holds one (:func:`hbkit.core.env.shared_data_dir`); None otherwise. A given folder that does not
    exist is an error."""
    for origin, root in data_roots(data_dir)[:1]:
        return root / "miracl" if origin == "HBKIT_DATA_DIR" or (root / "miracl").is_dir() else root
    shared = shared_data_dir()
    return shared / "miracl" if shared is not None and (shared / "miracl").is_dir() else None


def load_miracl(
    lang: str,
    split: str = "dev",
    data_dir: str | os.PathLike | None = None,
    hub: bool | None = None,
) -> CorpusBenchmark:
    """MIRACL ``lang``/``split`` as a :class:`CorpusBenchmark`.

    Order: the release layout under :func:`miracl_root` (explicit ``data_dir``, else
    ``$HBKIT_DATA_DIR/miracl``); else, unless ``hub=False`` or ``HF_HUB_OFFLINE=1``, the release
    files of the hub repositories ``miracl/miracl`` (topics, qrels) and ``miracl/miracl-corpus``
    (passages) at pinned revisions (:func:`materialise_from_hub`), downloaded once into
    ``<cache>/miracl`` and read through the same reader; else one :class:`DataError` that says the
    hub is unreachable and names the files to place.
    """
    _check_lang_split(lang, split)
    root = miracl_root(data_dir)
    if root is not None and (topics_path(root, lang, split).is_file() or hub is False):
        return read_release(root, lang, split)

    cached = hub_cache_dir()
    if topics_path(cached, lang, split).is_file() and corpus_files(corpus_dir(cached, lang)):
        return read_release(cached, lang, split)
    where = root if root is not None else Path("$HBKIT_DATA_DIR") / "miracl"
    is_offline = offline()
    reason = "offline: HF_HUB_OFFLINE or HBKIT_OFFLINE is set" if is_offline else "hub=False"
    if hub is not False and not is_offline:
        try:
            materialise_from_hub(lang, split, cached)
            return read_release(cached, lang, split)
        except DataError:
            raise
        except Exception as e:  # noqa: BLE001 - any hub/network failure becomes the one message below
            reason = f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"
    raise DataError(
        f"MIRACL {lang} {split} not found locally and the hub is unreachable ({reason}). Place "
        f"{_layout(where, lang, split)} (or pass data_dir=)"
    )


def hub_cache_dir() -> Path:
    """Where MIRACL downloaded from the hub lives: ``<cache>/miracl/<revision>-<corpus revision>``
    (another revision, picked with the environment variables of
    :data:`hbkit.data.fetch.HUB_SOURCES`, gets its own folder: files of two revisions never mix)."""
    return (
        cache_dir()
        / "miracl"
        / f"{hub_revision('miracl')[:12]}-{hub_revision('miracl-corpus')[:12]}"
    )


def materialise_from_hub(lang: str, split: str, dest: Path) -> Path:
    """Download MIRACL ``lang``/``split`` from the hub into ``dest`` in the release layout, with
    huggingface_hub (``hf_hub_download``, honouring ``HF_ENDPOINT`` and ``HF_TOKEN``) at the pinned
    revisions of :data:`hbkit.data.fetch.HUB_SOURCES`: the corpus shards ``docs-0.jsonl.gz``,
    ``docs-1`` ... until the next is absent, then the qrels, then the topics (last: their presence
    marks the folder complete). Each file arrives whole (huggingface_hub writes ``.incomplete``
    files and renames them); a rerun after a kill fetches only what is missing. A file the revision
    lacks is a :class:`DataError` naming it and the variable that picks another revision."""
    dest = Path(dest)

    def fetch(source: str, name: str) -> bool:
        return fetch_hub_file(source, name, dest)

    def absent(source: str, name: str) -> DataError:
        src = HUB_SOURCES[source]
        return DataError(
            f"the hub's {src['repo']} at revision {hub_revision(source)} has no {name}; set "
            f"{src['env']}=main for its newest files"
        )

    for i in itertools.count():
        name = HUB_SOURCES["miracl-corpus"]["files"][0].format(lang=lang, i=i)
        if not fetch("miracl-corpus", name):
            if i == 0:
                raise absent("miracl-corpus", name)
            break
    for template in reversed(HUB_SOURCES["miracl"]["files"]):  # qrels, then topics
        name = template.format(lang=lang, split=split)
        if not fetch("miracl", name):
            raise absent("miracl", name)
    log.info(
        "MIRACL %s %s: %d corpus shards and its topics and qrels downloaded into %s",
        lang,
        split,
        len(corpus_files(corpus_dir(dest, lang))),
        dest,
    )
    return dest
