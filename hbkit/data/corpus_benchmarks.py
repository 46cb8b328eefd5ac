"""Corpus benchmarks by name: MIRACL (a release folder, or its files from the hub) and TyDi-QA GoldP
dev built as a MIRACL-style corpus."""

from __future__ import annotations

import gzip
import hashlib
import itertools
import json
import os
from pathlib import Path
from typing import Iterable

import pandas as pd

from hbkit.core.env import cache_dir
from hbkit.core.files import (
    atomic_path,
    atomic_write_text,
    build_once,
    checksums_match,
    write_checksums,
)
from hbkit.data.registry import TYDIQA_LANGS, DataError
from hbkit.data.releases.miracl import (
    MIRACL_LANGS,
    CorpusBenchmark,
    corpus_dir,
    corpus_files,
    load_miracl,
    qrels_path,
    read_release,
    topics_path,
)
from hbkit.data.releases.tydiqa import load_tydiqa


def _write_gz_shards(
    docs: Iterable[tuple[str, str, str]], folder: Path, per_file: int = 500_000
) -> list[Path]:
    """Write ``docs`` as ``docs-N.jsonl.gz`` (``per_file`` passages each, streamed; each file
    written atomically; gzip mtime 0, so the bytes depend on the content only)."""
    folder = Path(folder)
    it = iter(docs)
    written: list[Path] = []
    while True:
        chunk = itertools.islice(it, per_file)
        first = next(chunk, None)
        if first is None and written:
            return written
        path = folder / f"docs-{len(written)}.jsonl.gz"
        with atomic_path(path) as tmp:
            with (
                open(tmp, "wb") as raw,
                gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0) as gz,
            ):
                for docid, title, text in itertools.chain([first] if first else [], chunk):
                    rec = {"docid": docid, "title": title, "text": text}
                    gz.write((json.dumps(rec, ensure_ascii=False) + "\n").encode("utf-8"))
        written.append(path)
        if first is None:
            return written


# --------------------------------------------------------------------------------------------------
# TyDi-QA GoldP as a MIRACL-style release
# --------------------------------------------------------------------------------------------------
def tydi_as_miracl(
    data_dir: str | os.PathLike | None,
    out_dir: str | os.PathLike,
    languages: Iterable[str] | None = None,
) -> Path:
    """Write TyDi-QA GoldP dev (:func:`hbkit.data.releases.tydiqa.load_tydiqa`) as a MIRACL-style
    release under ``out_dir``: per language, topics (the questions; qid = the TyDi id), qrels
    (relevance 1 for each question's gold passage; no negatives), and
    ``miracl-corpus-v1.0-XX/docs-0.jsonl.gz`` holding the language's distinct passages (docid
    ``tydi-XX-N#0``, N counting the language's passages in file order, so ids do not depend on which
    other languages are written; empty title; question whitespace runs collapsed to one space so a
    query stays one TSV field). Read it back with ``read_release(out_dir, lang,
    name=f"tydiqa-corpus-{lang}")``; returns ``out_dir``. Byte-identical output for the same input
    (gzip mtime 0)."""
    langs = list(languages) if languages is not None else list(TYDIQA_LANGS)
    bad = [l for l in langs if l not in TYDIQA_LANGS]
    if bad:
        raise DataError(f"TyDi-QA GoldP has no language(s) {bad}; use {', '.join(TYDIQA_LANGS)}")
    bench = load_tydiqa(data_dir, langs)
    out = Path(out_dir)
    cands = bench.candidates
    for lang in langs:
        c = cands[cands["lang"] == lang]
        docid = {
            cid: f"tydi-{lang}-{n}#0" for n, cid in enumerate(c["id"])
        }  # n: order within the language
        q = bench.queries[bench.queries["lang"] == lang]
        topics = "".join(f"{g}\t{' '.join(t.split())}\n" for g, t in zip(q["group"], q["text"]))
        qrels = "".join(
            f"{g} Q0 {docid[bench.relevance[qid][0]]} 1\n" for g, qid in zip(q["group"], q["id"])
        )
        _write_gz_shards(
            ((docid[cid], "", t) for cid, t in zip(c["id"], c["text"])),
            corpus_dir(out, lang),
            per_file=10**9,
        )
        atomic_write_text(qrels_path(out, lang, "dev"), qrels)
        atomic_write_text(topics_path(out, lang, "dev"), topics)
    return out


def load_corpus_benchmarks(
    spec: str,
    data_dir: str | os.PathLike | None = None,
    split: str = "dev",
    work_dir: str | os.PathLike | None = None,
) -> list[CorpusBenchmark]:
    """Parse ``miracl:sw,te,yo`` / ``tydiqa-corpus:sw,te`` (``tydiqa-corpus`` alone: all 9
    languages) into benchmarks. ``tydiqa-corpus`` is written by :func:`tydi_as_miracl` under
    ``work_dir`` (default ``<cache>/tydiqa-corpus``) on first use."""
    family, languages = parse_spec(spec)
    if family == "miracl":
        return [load_miracl(l, split, data_dir) for l in languages]
    if family == "tydiqa-corpus":
        base = Path(work_dir) if work_dir else cache_dir() / "tydiqa-corpus"
        tydi = load_tydiqa(data_dir, languages)  # read once for every language's cache key
        out = []
        for l in languages:
            # keyed by the content it is built from (and the builder's version): another data
            # folder, or the same folder with other questions, gets its own entry; a stale one is
            # never read
            root = base / f"{l}-{tydi_key(tydi, l)}"
            build_once(
                root / f"miracl-v1.0-{l}",
                lambda tmp, l=l: _tydi_one(data_dir, tmp, l),
                _tydi_complete,
            )
            out.append(read_release(root, l, "dev", name=f"tydiqa-corpus-{l}"))
        return out


def parse_spec(spec: str) -> tuple[str, list[str]]:
    """``(family, languages)`` of ``miracl:sw,te,yo`` / ``tydiqa-corpus:sw,te`` (``tydiqa-corpus``
    alone: all 9 languages); a :class:`DataError` names what is wrong and the fix."""
    family, _, langs = spec.partition(":")
    languages = [l.strip() for l in langs.split(",") if l.strip()]
    if family == "miracl":
        if not languages:
            raise DataError(
                "miracl needs languages: e.g. miracl:sw,te,yo (one of "
                + ", ".join(MIRACL_LANGS)
                + ")"
            )
        return family, languages
    if family == "tydiqa-corpus":
        languages = languages or list(TYDIQA_LANGS)
        bad = [l for l in languages if l not in TYDIQA_LANGS]
        if bad:
            raise DataError(
                f"TyDi-QA GoldP has no language(s) {bad}; use {', '.join(TYDIQA_LANGS)}"
            )
        return family, languages
    raise DataError(
        f"unknown corpus benchmark {spec!r}; use miracl:LANG[,LANG...] or tydiqa-corpus[:LANG,...]"
    )


def corpus_benchmark_names(spec: str) -> list[str]:
    """The benchmark names :func:`load_corpus_benchmarks` gives ``spec`` (``miracl-sw``,
    ``tydiqa-corpus-te``), without reading or building anything."""
    family, languages = parse_spec(spec)
    return [f"{family}-{l}" for l in languages]


#: bumped when tydi_as_miracl writes other bytes for the same input
TYDI_BUILDER_VERSION = 1


def tydi_key(tydi, lang: str) -> str:
    """A hash of what :func:`tydi_as_miracl` builds ``lang`` from: its questions, passages and
    relevance in ``tydi`` (:func:`hbkit.data.releases.tydiqa.load_tydiqa`), and
    :data:`TYDI_BUILDER_VERSION`."""
    q = tydi.queries[tydi.queries["lang"] == lang]
    c = tydi.candidates[tydi.candidates["lang"] == lang]
    h = hashlib.blake2b(digest_size=10)
    h.update(f"v{TYDI_BUILDER_VERSION}".encode())
    for df in (q[["id", "group", "text"]], c[["id", "text"]]):
        h.update(pd.util.hash_pandas_object(df, index=False).to_numpy().tobytes())
    h.update(json.dumps({qid: tydi.relevance[qid] for qid in q["id"]}, sort_keys=True).encode())
    return h.hexdigest()


TYDI_RECORD = "hbkit_build.json"


def _tydi_complete(folder: Path) -> bool:
    """A built ``miracl-v1.0-XX`` folder is complete when its record lists every file it was built
    with (its topics and qrels, and the corpus shards beside it) with the right sha256
    (:func:`checksums_match`)."""
    return checksums_match(folder, TYDI_RECORD)


def _tydi_one(data_dir, tmp: Path, lang: str) -> None:
    """build_once's builder: TyDi ``lang`` into ``tmp`` (the ``miracl-v1.0-XX`` folder) + its
    corpus."""
    # tmp_name's pattern: a killed build's stage is swept by build_once
    stage = tmp.with_name(tmp.name + ".stage")
    tydi_as_miracl(data_dir, stage, [lang])
    import shutil

    final_corpus = corpus_dir(tmp.parent, lang)
    if final_corpus.exists():
        shutil.rmtree(final_corpus)
    os.replace(corpus_dir(stage, lang), final_corpus)
    os.replace(stage / f"miracl-v1.0-{lang}", tmp)
    shutil.rmtree(stage, ignore_errors=True)

    own = sorted(p for p in tmp.rglob("*") if p.is_file())
    write_checksums(
        tmp, TYDI_RECORD, {"builder": TYDI_BUILDER_VERSION}, own + corpus_files(final_corpus)
    )
