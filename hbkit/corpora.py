"""Training corpora: every source gives the same Arrow-backed ``datasets.Dataset``, cached and memory-mapped.

The contract
------------
Columns ``group, lang, query, passage, answer_key`` (all strings) plus provenance (``source``, and where
meaningful ``context`` and ``article``). ``group`` is shared by the translations of one question and each
``(group, lang)`` is exactly one row. ``answer_key`` is the language-independent identity of the answer
passage: two rows share it exactly when their passages are the same answer, possibly in different languages,
so a sampler can keep a translation of a positive out of the negatives of its batch. Rows are sorted by
``(lang, group)``.

Sources (:func:`load_training_corpus`)
--------------------------------------
* ``xquad-train``: the 36 XQuAD training articles (:data:`hbkit.data.TRAIN_ARTICLES`) from
  :func:`hbkit.data.parallel_pairs`; ``answer_key = "<article>:<paragraph>:<sentence>"`` with the sentence
  index of the *English* answer sentence (XQuAD-R ``sentence_breaks``), so the key means the same in every
  language; ``passage="paragraph"`` gives ``"<article>:<paragraph>"``.
* ``squad-translate-train``: SQuAD v1.1 train (English) plus XTREME's machine translations of it
  (``squad.translate.train.en-XX.json``, XX in ar de el es hi ru th tr vi zh). See :func:`squad_translate_train`.
* a user's own pairs: a JSONL, CSV or Parquet file, or a ``datasets.Dataset``; see :func:`read_pairs`.

Every built corpus is cached under ``<hbkit cache>/corpora/<name>-<key>/`` (``key`` = sha256 of the input
files' resolved paths, sizes and mtimes, the options and the builder version) with ``dataset/``
(``Dataset.save_to_disk``), ``stats.csv`` / ``stats.json`` (per-language rows and skip counts) and a
``COMPLETE`` marker written last. :func:`hbkit.files.build_once` guarantees that N processes starting at once
build it once, and that a build killed half-way leaves nothing that counts as a finished cache.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import shutil
import sys
import unicodedata
import urllib.request
import warnings
from collections import Counter
from functools import lru_cache
from pathlib import Path
from typing import Iterable, Iterator

import numpy as np
import pandas as pd

from .config import offline
from .data import (LANGUAGES, PROJECT_DATA, TRAIN_ARTICLES, DataError, RetrievalBenchmark, not_utf8, _sentence_index,
                   load_xquad_r, parallel_pairs, split_sentences)
from .files import atomic_path, atomic_write_json, build_once, content_key

log = logging.getLogger(__name__)

REQUIRED = ("group", "lang", "query", "passage")
COLUMNS = ("group", "lang", "query", "passage", "answer_key")
CORPORA = ("xquad-train", "squad-translate-train")
PASSAGES = ("sentence", "paragraph")
_BUILD_VERSION = 2  # bump when a builder's output changes: it is part of every cache key
#: above this share of a translated file's questions equal to English, the build warns that it may be English
UNTRANSLATED_SHARE = 0.2

#: Languages of XTREME's SQuAD translate-train release (English is the original SQuAD v1.1 train file).
TRANSLATE_TRAIN_LANGS = ["ar", "de", "el", "en", "es", "hi", "ru", "th", "tr", "vi", "zh"]
SQUAD_TRAIN_FILE = "train-v1.1.json"
TRANSLATE_DIR = "translate-train"
_SQUAD_URL = "https://rajpurkar.github.io/SQuAD-explorer/dataset/train-v1.1.json"
_TT_URL = "https://storage.googleapis.com/xtreme_translations/SQuAD/translate-train/{file}"


def translate_file(lang: str) -> str:
    """File name of one language of the release: ``train-v1.1.json`` (en) or ``squad.translate.train.en-XX.json``."""
    return SQUAD_TRAIN_FILE if lang == "en" else f"squad.translate.train.en-{lang}.json"


#: Size (bytes) and sha256 of every release file, as pinned by TensorFlow Datasets
#: (tensorflow/datasets @ 24211da0508a86f0a9efd82c69bab9d25cda0a20, tensorflow_datasets/url_checksums/xquad.txt;
#: SQuAD train also in url_checksums/squad.txt). The German size is also asserted by an independent user of the
#: release (93,188,862 bytes). SQuAD v1.1 train holds 87,599 questions.
SQUAD_TT_MANIFEST: dict[str, tuple[int, str]] = {
    "en": (30288272, "3527663986b8295af4f7fcdff1ba1ff3f72d07d61a20f487cb238a6ef92fd955"),
    "ar": (311935799, "d2d01110aa646b547eec88b14b3930dc027c9d149c4962376a1551e251ec3f9b"),
    "de": (93188862, "3c125cb2a31e8ad167c4590ece8fdfd16018a5bbf9475dbfac034c1816a4ab02"),
    "el": (368851294, "9d648f92883a88b27bb0d9ab502a0512bf5ffe7f8ce00bc205b19d66029dab04"),
    "es": (101758698, "cb8f68b8e4cff696209a5ec249a5dc9e2a75a5c7f9dbbfa8a8be1dcf1f91c81a"),
    "hi": (348849738, "fdfd8c59359943c6a55022403e7dfa047e7ee1dea734086a3c73c1adbb44d254"),
    "ru": (379620057, "075818cce7ca8d6efe2c783b125d91bd79add93ddfe8c2b0f45fb610d7552f48"),
    "th": (341480847, "3ae03fd7a9d51a6f45e74a70b8d6168eb365114fcf5de21f34f212197e085eab"),
    "tr": (111351195, "7c618d3f5e0c19d878686a9874b15a10d6f842ae9451e12d8d7d51531bfe79e6"),
    "vi": (160940115, "ad6d3ba17b8e672e7066708ce5795f0f933f3ce18b7442ee11d6e3072f44f60b"),
    "zh": (128888478, "411e4023e4f3627ccb4873edfb77b36e97470b4226a076e6a632544c92353d24"),
}
SQUAD_TRAIN_QUESTIONS = 87599
_PARALLEL_BYTES = 64 << 20

#: Counter of builds done by this process, per corpus name (tests and benchmarks read it).
BUILDS: Counter = Counter()


class ZeroShotError(DataError):
    """Training questions also occur in an evaluation benchmark: the evaluation would not be zero-shot."""


# --------------------------------------------------------------------------------------------------
# the cache
# --------------------------------------------------------------------------------------------------
def _cache_root() -> Path:
    from .config import cache_dir

    return cache_dir() / "corpora"


def _key(name: str, files: Iterable[Path], options: dict) -> str:
    """:func:`hbkit.files.content_key` of the builder version, the name, the options and the input files' bytes
    (in a fixed order: their names sorted)."""
    files = sorted((Path(f) for f in files), key=lambda f: (f.name, str(f)))
    return content_key(files, _BUILD_VERSION, name, options, [f.name for f in files])


def _complete(folder: Path) -> bool:
    """Complete: ``COMPLETE`` lists every file of ``dataset/`` with its size, and each is there with that size
    (a file truncated or emptied after the build fails this, and the entry is built again)."""
    try:
        sizes = json.loads((folder / "COMPLETE").read_text())["sizes"]
        return bool(sizes) and (folder / "dataset" / "state.json").is_file() and \
            all((folder / rel).stat().st_size == n for rel, n in sizes.items())
    except (OSError, ValueError, KeyError, TypeError):
        return False


def _cached(name: str, files: list[Path], options: dict, build, rebuild: bool) -> Path:
    """Build (once, under a file lock) or reuse the cache folder of a corpus; return it."""
    target = _cache_root() / f"{name}-{_key(name, files, options)}"
    if rebuild and _complete(target):
        (target / "COMPLETE").unlink(missing_ok=True)  # is_complete is now false: build_once replaces it

    def run(tmp: Path) -> None:
        tmp.mkdir(parents=True)
        stats = build(tmp)
        BUILDS[name] += 1
        stats.to_csv(tmp / "stats.csv", index=False)
        atomic_write_json(tmp / "stats.json", {"name": name, "options": options, "files": [str(f) for f in files],
                                               "builder_pid": os.getpid(), "stats": stats.to_dict(orient="records")})
        atomic_write_json(tmp / "COMPLETE", {"sizes": {str(p.relative_to(tmp)): p.stat().st_size
                                                      for p in sorted((tmp / "dataset").rglob("*")) if p.is_file()}})

    folder = build_once(target, run, _complete)
    try:
        _load(folder)
    except Exception as e:  # noqa: BLE001 - a cached file truncated or emptied after the build: build again
        log.warning("corpus cache %s is damaged (%s: %s); building it again", folder, type(e).__name__, str(e)[:80])
        (folder / "COMPLETE").unlink(missing_ok=True)
        folder = build_once(target, run, _complete)
    return folder


def _load(folder: Path):
    import datasets

    return datasets.load_from_disk(str(folder / "dataset"))


def corpus_stats(dataset) -> pd.DataFrame:
    """The per-language stats table saved beside a cached corpus (rows, groups, skip counts by reason)."""
    files = getattr(dataset, "cache_files", None) or []
    if not files:
        raise DataError("this dataset was not loaded from the corpus cache (no cache files); build it with "
                        "load_training_corpus or build_corpus to get its stats")
    folder = Path(files[0]["filename"]).parent.parent
    if not (folder / "stats.csv").is_file():
        raise DataError(f"{folder}: no stats.csv beside the dataset; it is not a corpus cache folder")
    return pd.read_csv(folder / "stats.csv")


def _save_parts(tmp: Path, parts: list[Path]) -> None:
    """Concatenate per-language Arrow stream files (memory-mapped) into ``tmp/dataset`` and delete them."""
    import datasets

    dsets = [datasets.Dataset.from_file(str(p)) for p in parts]
    ds = datasets.concatenate_datasets(dsets) if len(dsets) > 1 else dsets[0]
    ds.save_to_disk(str(tmp / "dataset"), max_shard_size="500MB")
    del ds, dsets
    shutil.rmtree(tmp / "_parts", ignore_errors=True)


def _write_part(path: Path, cols: dict[str, list]) -> Path:
    """Write one language's rows, sorted by group, as an Arrow stream file (the format ``Dataset.from_file`` maps)."""
    import pyarrow as pa

    table = pa.Table.from_pydict({k: pa.array(v, type=pa.string()) for k, v in cols.items()})
    table = table.sort_by([("group", "ascending")])
    path.parent.mkdir(parents=True, exist_ok=True)
    with pa.OSFile(str(path), "wb") as sink, pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table, max_chunksize=50_000)
    return path


def _single_language_counts(folder: Path) -> dict[str, int]:
    """Per language: rows whose group has a row in no other language (kept, but useless for X-Y batches)."""
    import datasets
    import pyarrow.compute as pc

    t = datasets.load_from_disk(str(folder)).select_columns(["group", "lang"]).with_format("arrow")[:]
    g = pc.dictionary_encode(t["group"]).combine_chunks().indices.to_numpy()
    counts = np.bincount(g)
    single = counts[g] == 1
    langs = t["lang"].to_numpy(zero_copy_only=False)
    return dict(Counter(langs[single].tolist()))


# --------------------------------------------------------------------------------------------------
# SQuAD translate-train
# --------------------------------------------------------------------------------------------------
def _squad_dir(data_dir: str | os.PathLike | None, download_missing: bool | None = None) -> Path:
    """The folder holding the SQuAD translate-train files: ``data_dir`` (or its ``squad-translate-train/``),
    else ``$HBKIT_DATA_DIR/squad-translate-train``, else ``data/squad-translate-train``, else a download."""
    def holds(d: Path) -> bool:
        return (d / SQUAD_TRAIN_FILE).is_file()

    for origin, root in (("argument data_dir", data_dir), ("HBKIT_DATA_DIR", os.environ.get("HBKIT_DATA_DIR"))):
        if root:
            root = Path(root).expanduser()
            for cand in ((root,) if origin.startswith("argument") else ()) + (root / "squad-translate-train",):
                if holds(cand):
                    return cand
            raise DataError(
                f"{origin}={root} does not hold SQuAD translate-train (expected {root}/squad-translate-train/"
                f"{SQUAD_TRAIN_FILE} and .../{TRANSLATE_DIR}/squad.translate.train.en-XX.json, see data/README.md); "
                "point it at that folder, or download the release with hbkit.corpora.download_squad_translate_train")
    default = PROJECT_DATA / "squad-translate-train"
    if holds(default):
        return default
    if download_missing is False or (download_missing is None and offline()):
        raise DataError(f"SQuAD translate-train not found in {default}: pass data_dir=FOLDER (laid out as in "
                        "data/README.md) or run download_squad_translate_train() while online")
    return download_squad_translate_train(default)


def squad_translate_train_files(data_dir: str | os.PathLike | None = None,
                                languages: Iterable[str] | None = None) -> dict[str, Path]:
    """``{lang: path}`` of the release files for ``languages`` (default: all 11), English always included.

    Layout (XTREME's: SQuAD in ``squad/``, translations in the bucket folder ``SQuAD/translate-train/``)::

        FOLDER/train-v1.1.json
        FOLDER/translate-train/squad.translate.train.en-XX.json   (or directly in FOLDER/)

    A missing file is a :class:`DataError` naming the expected path.
    """
    langs = _check_langs(languages, TRANSLATE_TRAIN_LANGS, "squad-translate-train")
    folder = _squad_dir(data_dir)
    out = {}
    for lang in sorted(set(langs) | {"en"}):
        f = translate_file(lang)
        for cand in (folder / TRANSLATE_DIR / f, folder / f):
            if cand.is_file():
                out[lang] = cand
                break
        else:
            raise DataError(f"{folder / TRANSLATE_DIR / f} not found (nor {folder / f}); download it from "
                            f"{_TT_URL.format(file=f)} or leave {lang!r} out of languages")
    return out


def _check_langs(languages, available: list[str], what: str) -> list[str]:
    """The data layer's language check (a string is a comma list; unknown or repeated codes are errors), and
    an explicitly empty list is refused rather than read as 'all'."""
    from .data import _check_languages

    if languages is not None and not isinstance(languages, str) and not list(languages):
        raise DataError(f"{what}: languages is empty; pass at least one of {', '.join(available)}")
    return _check_languages(languages, available, what)


def download_squad_translate_train(dest: str | os.PathLike = PROJECT_DATA / "squad-translate-train",
                                   languages: Iterable[str] | None = None) -> Path:
    """Download SQuAD v1.1 train and XTREME's translations into ``dest`` (the layout of
    :func:`squad_translate_train_files`), each verified by size and sha256 (:data:`SQUAD_TT_MANIFEST`)
    while streaming, and written atomically. Existing files with the right size are kept."""
    dest = Path(dest)
    for lang in sorted(set(_check_langs(languages, TRANSLATE_TRAIN_LANGS, "squad-translate-train")) | {"en"}):
        f = translate_file(lang)
        path = dest / f if lang == "en" else dest / TRANSLATE_DIR / f
        size, sha = SQUAD_TT_MANIFEST[lang]
        if path.is_file() and path.stat().st_size == size:
            continue
        url = _SQUAD_URL if lang == "en" else _TT_URL.format(file=f)
        log.info("downloading %s", url)
        h, n = hashlib.sha256(), 0
        with atomic_path(path) as tmp, urllib.request.urlopen(url, timeout=300) as r, open(tmp, "wb") as out:  # noqa: S310
            while chunk := r.read(1 << 20):
                h.update(chunk)
                n += len(chunk)
                out.write(chunk)
            out.flush()
            if n != size or h.hexdigest() != sha:
                raise DataError(f"{url}: got {n} bytes, sha256 {h.hexdigest()}; the release has {size} bytes, "
                                f"sha256 {sha}. The download is corrupt or the upstream file changed; retry")
    return dest


def _squad_records(path: Path, skipped: Counter) -> Iterator[tuple]:
    """Yield ``(qid, title, paragraph index, context, question, answer_start)`` of each usable question.

    Raises :class:`DataError` for a file that is not SQuAD-format JSON (truncated, wrong structure). Skips and
    counts, by reason: an empty question, no answer, ``answer_start`` outside the context, the answer text not
    at ``answer_start`` (``context[start:start+len(text)] != text``), and an id seen before in the file."""
    try:
        with open(path, encoding="utf-8") as fh:
            obj = json.load(fh)
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise DataError(f"{path}: not valid JSON ({e}); the file is truncated or corrupt, download it again") from None
    if not isinstance(obj, dict) or not isinstance(obj.get("data"), list):
        raise DataError(f"{path}: expected a SQuAD-format object with a 'data' list at the top level")
    seen: set[str] = set()
    for a, art in enumerate(obj["data"]):
        paras = art.get("paragraphs") if isinstance(art, dict) else None
        if not isinstance(paras, list):
            raise DataError(f"{path}: data[{a}] has no 'paragraphs' list; the file is not in SQuAD format")
        title = str(art.get("title", a))
        for p, para in enumerate(paras):
            ctx = para.get("context") if isinstance(para, dict) else None
            qas = para.get("qas") if isinstance(para, dict) else None
            if not isinstance(ctx, str) or not isinstance(qas, list):
                raise DataError(f"{path}: data[{a}].paragraphs[{p}] lacks a string 'context' or a 'qas' list")
            for q, qa in enumerate(qas):
                if not isinstance(qa, dict) or not isinstance(qa.get("id"), (str, int)):
                    raise DataError(f"{path}: data[{a}].paragraphs[{p}].qas[{q}] has no 'id'; not SQuAD format")
                qid = str(qa["id"])
                question = qa.get("question")
                answers = qa.get("answers")
                if qid in seen:
                    skipped["duplicate id"] += 1
                    continue
                seen.add(qid)
                if not isinstance(question, str) or not question.strip():
                    skipped["empty question"] += 1
                    continue
                if not isinstance(answers, list) or not answers or not isinstance(answers[0], dict):
                    skipped["no answer"] += 1
                    continue
                start, text = answers[0].get("answer_start"), answers[0].get("text")
                if not isinstance(start, int) or isinstance(start, bool) or not isinstance(text, str) or not text:
                    skipped["no answer"] += 1
                    continue
                if not 0 <= start < len(ctx):
                    skipped["answer_start outside context"] += 1
                    continue
                if ctx[start:start + len(text)] != text:
                    skipped["answer text not at answer_start"] += 1
                    continue
                yield qid, title, p, ctx, question.strip(), start


def _answer_passage(ctx: str, start: int, lang: str, passage: str, memo: dict) -> tuple[str, int]:
    """``(passage text, sentence index)``: the pysbd sentence holding ``start`` (``split_sentences``, as for
    MLQA-R), or the whole paragraph (index -1). Spans are memoised per distinct context."""
    if passage == "paragraph":
        return ctx.strip(), -1
    spans = memo.get(ctx)
    if spans is None:
        spans = memo[ctx] = split_sentences(ctx, lang)
    s = _sentence_index(spans, start)
    b, e = spans[s]
    return ctx[b:e].strip(), s


def _english_keys(path: Path, passage: str) -> tuple[dict[str, tuple[str, str]], Counter, dict]:
    """English SQuAD: ``{qid: (answer_key, title)}``, skip counts, and the English rows (columns)."""
    skipped: Counter = Counter()
    keys, memo = {}, {}
    cols = {c: [] for c in ("group", "lang", "query", "passage", "answer_key", "source", "context", "article")}
    for qid, title, p, ctx, question, start in _squad_records(path, skipped):
        text, s = _answer_passage(ctx, start, "en", passage, memo)
        key = f"{title}:{p}" if passage == "paragraph" else f"{title}:{p}:{s}"
        keys[qid] = (key, title, question)
        for c, v in zip(cols, (qid, "en", question, text, key, "squad-translate-train", ctx, title)):
            cols[c].append(v)
    return keys, skipped, cols


def _translated_part(lang: str, path: Path, keys: dict, passage: str, out: Path) -> dict:
    """Rows of one translated file, written to ``out``; returns its stats (records, rows, skips by reason).
    A group is the SQuAD question id: XTREME's translated files keep SQuAD's ids unchanged (ids are a subset
    of SQuAD train's, unique per file), and the answer key is the English one."""
    skipped: Counter = Counter()
    memo: dict = {}
    same = 0
    cols = {c: [] for c in ("group", "lang", "query", "passage", "answer_key", "source", "context", "article")}
    for qid, _title, _p, ctx, question, start in _squad_records(path, skipped):
        if qid not in keys:
            skipped["id not in English SQuAD train (or skipped there)"] += 1
            continue
        text, _ = _answer_passage(ctx, start, lang, passage, memo)
        if not text:
            skipped["empty answer sentence"] += 1
            continue
        key, title, en_question = keys[qid]
        same += question == en_question
        for c, v in zip(cols, (qid, lang, question, text, key, "squad-translate-train", ctx, title)):
            cols[c].append(v)
    _write_part(out, cols)
    return {"lang": lang, "file": str(path), "rows": len(cols["group"]), "skipped": dict(skipped),
            "identical": same}


def _part_worker(args) -> dict:
    return _translated_part(*args)


def _stats_frame(parts: list[dict], single: dict[str, int]) -> pd.DataFrame:
    reasons = sorted({r for p in parts for r in p["skipped"]})
    rows = []
    for p in sorted(parts, key=lambda p: p["lang"]):
        rows.append({"lang": p["lang"], "rows": p["rows"],
                     "skipped": sum(p["skipped"].values()),
                     **{f"skipped: {r}": p["skipped"].get(r, 0) for r in reasons},
                     "rows in single-language groups": single.get(p["lang"], 0),
                     "questions identical to English": p.get("identical", 0), "file": p.get("file", "")})
    df = pd.DataFrame(rows)
    total = df.drop(columns=["lang", "file"]).sum().to_dict()
    return pd.concat([df, pd.DataFrame([{"lang": "all", **total, "file": ""}])], ignore_index=True)


def _build_squad(tmp: Path, files: dict[str, Path], languages: list[str], passage: str, num_proc: int) -> pd.DataFrame:
    keys, en_skipped, en_cols = _english_keys(files["en"], passage)
    parts_dir = tmp / "_parts"
    parts, stats = [], []
    if "en" in languages:
        parts.append(_write_part(parts_dir / "en.arrow", en_cols))
    stats.append({"lang": "en", "file": str(files["en"]), "rows": len(en_cols["group"]) if "en" in languages else 0,
                  "skipped": dict(en_skipped)})
    del en_cols
    jobs = [(l, files[l], keys, passage, parts_dir / f"{l}.arrow") for l in sorted(languages) if l != "en"]
    if num_proc > 1 and len(jobs) > 1:
        import multiprocessing as mp
        from concurrent.futures import ProcessPoolExecutor

        with ProcessPoolExecutor(min(num_proc, len(jobs)), mp_context=mp.get_context("spawn")) as ex:
            results = list(ex.map(_part_worker, jobs))
    else:
        results = [_part_worker(j) for j in jobs]
    stats += results
    parts += [j[4] for j in jobs]
    parts = sorted(parts, key=lambda p: p.stem)  # rows sorted by (lang, group)
    _save_parts(tmp, parts)
    single = _single_language_counts(tmp / "dataset")
    df = _stats_frame(stats, single)
    for p in stats:
        if p["skipped"]:
            log.warning("squad-translate-train %s: skipped %s", p["lang"],
                        ", ".join(f"{n} ({r})" for r, n in sorted(p["skipped"].items())))
        if p["lang"] != "en" and p["rows"] and p.get("identical", 0) / p["rows"] > UNTRANSLATED_SHARE:
            warnings.warn(f"squad-translate-train {p['lang']}: {p['identical']} of {p['rows']} questions "
                          f"({p['identical'] / p['rows']:.0%}) are the English ones word for word; {p['file']} may "
                          "hold the English text, not a translation: check the file, or leave the language out",
                          UserWarning, stacklevel=2)
    if "en" in languages and len(keys) + sum(en_skipped.values()) != SQUAD_TRAIN_QUESTIONS:
        log.warning("%s holds %d questions, SQuAD v1.1 train has %d: not the official release file",
                    files["en"], len(keys) + sum(en_skipped.values()), SQUAD_TRAIN_QUESTIONS)
    return df


def squad_translate_train(data_dir: str | os.PathLike | None = None, languages: Iterable[str] | None = None,
                          passage: str = "sentence", rebuild: bool = False, num_proc: int | None = None):
    """SQuAD v1.1 train + XTREME translate-train as parallel pairs: ``(Dataset, cache folder)``.

    * Files: :func:`squad_translate_train_files` (``train-v1.1.json`` and
      ``translate-train/squad.translate.train.en-XX.json``; release addresses and pinned sha256 in
      :data:`SQUAD_TT_MANIFEST`). XTREME's repository (google-research/xtreme) does not download these itself;
      its README points to the ``xtreme_translations`` bucket, path ``SQuAD/translate-train/``.
    * Group: the SQuAD question id, which the translated files keep unchanged (their ids are a subset of SQuAD
      train's and unique per file); query: the question; passage: the pysbd sentence of the context holding
      ``answer_start`` (``hbkit.data.split_sentences``, the MLQA-R construction), or the whole paragraph with
      ``passage="paragraph"``.
    * ``answer_key``: ``"<SQuAD title>:<paragraph index>:<English sentence index>"`` of the English answer
      (``"<title>:<paragraph>"`` with ``passage="paragraph"``) in every language, so questions answered by
      the same English sentence share it in every language.
    * Skipped and counted per language and reason (stats table, log, ``stats.csv`` beside the cache): broken
      translated offsets (``answer_start`` outside the context, or the answer text not at it), empty questions,
      duplicate ids, and translations whose id has no usable English record. Groups left in one language
      are kept and counted (``rows in single-language groups``).
    * ``num_proc`` processes split the translated files (default: ``min(languages, CPUs, 4)`` when they
      exceed 64 MB together, else 1: a worker costs seconds to start); sentence splitting (about 10 ms per
      paragraph, memoised per distinct context) dominates the build.
    """
    if passage not in PASSAGES:
        raise DataError(f"passage={passage!r}: use one of {', '.join(PASSAGES)}")
    langs = _check_langs(languages, TRANSLATE_TRAIN_LANGS, "squad-translate-train")
    files = squad_translate_train_files(data_dir, langs)
    big = sum(f.stat().st_size for l, f in files.items() if l != "en") > _PARALLEL_BYTES
    n = num_proc if num_proc is not None else (min(len(langs), os.cpu_count() or 1, 4) if big else 1)
    if n < 1:
        raise DataError(f"num_proc={num_proc}: must be >= 1")
    options = {"languages": sorted(langs), "passage": passage}
    folder = _cached("squad-translate-train", list(files.values()), options,
                     lambda tmp: _build_squad(tmp, files, langs, passage, n), rebuild)
    return _load(folder), folder


# --------------------------------------------------------------------------------------------------
# XQuAD training articles
# --------------------------------------------------------------------------------------------------
def xquad_train(data_dir: str | os.PathLike | None = None, languages: Iterable[str] | None = None,
                passage: str = "sentence", rebuild: bool = False):
    """The 36 XQuAD training articles (``hbkit.data.parallel_pairs``) with ``answer_key`` and ``source``:
    ``(Dataset, cache folder)``. ``answer_key``: parallel_pairs' answer identity (groups whose XQuAD-R answer
    sentences coincide in any language share it; sentence indices differ between languages, so the English
    index alone would miss some); ``"<article>:<paragraph>"`` with ``passage="paragraph"``, where the passage
    is the paragraph."""
    from .data import XQUAD_R_LANGS, release_dir as _root

    if passage not in PASSAGES:
        raise DataError(f"passage={passage!r}: use one of {', '.join(PASSAGES)}")
    langs = _check_langs(languages, XQUAD_R_LANGS, "xquad-train")
    root = _root("xquad-r", data_dir)
    files = [root / "xquad-r" / f"{l}.json" for l in sorted(set(langs) | {"en"})]

    def build(tmp: Path) -> pd.DataFrame:
        pairs = parallel_pairs(TRAIN_ARTICLES, langs, root).to_pandas()
        en = load_xquad_r(root, ["en"], TRAIN_ARTICLES)
        key = {}
        for q in en.queries.itertuples(index=False):
            _, a, p, s = en.relevance[q.id][0].split(":")
            key[q.group] = f"{a}:{p}" if passage == "paragraph" else f"{a}:{p}:{s}"
        if passage == "paragraph":
            pairs["passage"] = pairs["context"].str.strip()
            pairs["answer_key"] = pairs["group"].map(key)
        pairs["article"] = pairs["article"].astype(str)
        pairs["source"] = "xquad-train"
        pairs = pairs[["group", "lang", "query", "passage", "answer_key", "source", "context", "article"]]
        pairs = pairs.sort_values(["lang", "group"], kind="stable").reset_index(drop=True)
        _save_frame(tmp, pairs)
        counts = pairs.groupby("lang").size()
        return _stats_frame([{"lang": l, "rows": int(n), "skipped": {}, "file": str(root / "xquad-r" / f"{l}.json")}
                             for l, n in counts.items()], {})

    folder = _cached("xquad-train", files, {"languages": sorted(langs), "passage": passage}, build, rebuild)
    return _load(folder), folder


def _save_frame(tmp: Path, df: pd.DataFrame) -> None:
    import datasets

    datasets.Dataset.from_pandas(df, preserve_index=False).save_to_disk(str(tmp / "dataset"))


# --------------------------------------------------------------------------------------------------
# a user's own pairs
# --------------------------------------------------------------------------------------------------
_ISO = re.compile(r"^[a-z]{2}$")


def _fail(origin: str, where: str, msg: str, more: int = 0) -> DataError:
    tail = f" ({more} more rows have problems)" if more else ""
    return DataError(f"{origin}: {where}: {msg}{tail}")


def _read_jsonl(path: Path) -> tuple[dict[str, list], list[int]]:
    try:
        return _read_jsonl_text(path)
    except UnicodeDecodeError:
        raise not_utf8(path, "pairs file") from None


def _read_jsonl_text(path: Path) -> tuple[dict[str, list], list[int]]:
    cols: dict[str, list] = {}
    lines: list[int] = []
    with open(path, encoding="utf-8-sig") as fh:   # a byte-order mark at the start is allowed
        for n, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
            except json.JSONDecodeError as e:
                raise _fail(str(path), f"line {n}", f"malformed JSON ({e.msg} at column {e.colno}); each line "
                            "must be one JSON object like {\"group\": ..., \"lang\": ..., \"query\": ..., "
                            "\"passage\": ...}") from None
            if not isinstance(rec, dict):
                raise _fail(str(path), f"line {n}", f"expected a JSON object, got {type(rec).__name__}")
            i = len(lines)
            for k, v in rec.items():
                if k not in cols:
                    cols[k] = [None] * i
                cols[k].append(v)
            for k in cols:
                if len(cols[k]) == i:
                    cols[k].append(None)
            lines.append(n)
    return cols, lines


def _read_csv(path: Path) -> tuple[dict[str, list], list[int]]:
    import csv

    old = csv.field_size_limit(2**31 - 1)   # a long passage is data, not an error (the default limit is 128 KiB)
    try:
        return _read_csv_text(path)
    except UnicodeDecodeError:
        raise not_utf8(path, "pairs file") from None
    finally:
        csv.field_size_limit(old)


def _read_csv_text(path: Path) -> tuple[dict[str, list], list[int]]:
    import csv

    with open(path, encoding="utf-8-sig", newline="") as fh:   # a byte-order mark at the start is allowed
        reader = csv.reader(fh)
        try:
            header = next(reader)
        except StopIteration:
            raise DataError(f"{path}: empty CSV file; the first line must be the header "
                            "group,lang,query,passage[,answer_key]") from None
        except csv.Error as e:
            raise _fail(str(path), "line 1", f"not readable as CSV ({e})") from None
        if len(set(header)) != len(header):
            raise _fail(str(path), "line 1", f"duplicate column names in the header {header}")
        cols = {h: [] for h in header}
        lines = []
        start = reader.line_num + 1
        rows = iter(reader)
        while True:
            try:
                row = next(rows)
            except StopIteration:
                break
            except csv.Error as e:
                raise _fail(str(path), f"line {start}", f"not readable as CSV ({e}); check its quotes") from None
            if not row or (len(row) == 1 and not row[0].strip()):
                start = reader.line_num + 1
                continue
            if len(row) != len(header):
                raise _fail(str(path), f"line {start}", f"{len(row)} fields, the header has {len(header)}; quote "
                            "fields that contain commas or newlines")
            for h, v in zip(header, row):
                cols[h].append(v)
            lines.append(start)
            start = reader.line_num + 1
    return cols, lines


def _table_from_columns(cols: dict[str, list], origin: str, lines: list[int] | None):
    """A pyarrow Table of the columns; a :class:`DataError` names the first row whose value is not a string."""
    import pyarrow as pa

    arrays = {}
    for k, v in cols.items():
        for i, x in enumerate(v):
            if x is not None and not isinstance(x, str):
                where = f"line {lines[i]}" if lines else f"row {i + 1}"
                if k in REQUIRED or k == "answer_key":
                    raise _fail(origin, where, f"column {k!r} is {type(x).__name__} {x!r}, expected a string; "
                                "quote it in the file")
                v = [None if y is None else (y if isinstance(y, str) else json.dumps(y)) for y in v]
                break
        arrays[k] = pa.array(v, type=pa.string())
    return pa.table(arrays) if arrays else pa.table({})


def _validate_table(table, origin: str, lines: list[int] | None = None):
    """Check a table against the contract and return it completed (``answer_key``, ``source``) and sorted.

    A row whose ``answer_key`` is null or blank gets its ``group`` (the default: its passage is its own answer).
    Errors (:class:`DataError`, one line, naming ``origin``, the row and the fix): a missing required column,
    a non-string column, a missing or empty (blank) query / passage / group / lang, a language that is not a
    two-letter lower-case ISO 639-1 code, and a duplicate ``(group, lang)``. A well-formed code that hbkit's
    releases do not use (e.g. ``fr``) only warns: it can be trained on, but no benchmark evaluates it."""
    import pyarrow as pa
    import pyarrow.compute as pc

    def where(i: int) -> str:
        return f"line {lines[i]}" if lines else f"row {i + 1}"

    missing = [c for c in REQUIRED if c not in table.column_names]
    if missing:
        raise DataError(f"{origin}: missing column(s) {missing} (has {table.column_names}); the pairs need "
                        f"{', '.join(REQUIRED)} and optionally answer_key")
    if table.num_rows == 0:
        raise DataError(f"{origin}: no rows; a training corpus needs at least one (group, lang, query, passage)")
    for c in table.column_names:
        t = table.schema.field(c).type
        if c in REQUIRED or c == "answer_key":
            if not (pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_null(t)):
                raise DataError(f"{origin}: column {c!r} has type {t}, expected strings; convert it "
                                f"(e.g. df[{c!r}] = df[{c!r}].astype(str))")
    table = table.cast(pa.schema([pa.field(f.name, pa.string()) if (pa.types.is_large_string(f.type) or
                                                                    pa.types.is_null(f.type)) else f
                                  for f in table.schema]))
    if "answer_key" not in table.column_names:
        table = table.append_column("answer_key", table["group"])
    else:  # a row without a key (null or blank) gets the default: its group
        ak = table["answer_key"]
        blank = pc.or_kleene(pc.is_null(ak), pc.equal(pc.utf8_trim_whitespace(ak.fill_null("")), "")).fill_null(True)
        table = table.set_column(table.column_names.index("answer_key"), "answer_key",
                                 pc.if_else(blank, table["group"], ak))
    if "source" not in table.column_names:
        table = table.append_column("source", pa.array([origin] * table.num_rows, type=pa.string()))
    for c in REQUIRED:
        col = table[c]
        bad = pc.or_kleene(pc.is_null(col), pc.equal(pc.utf8_trim_whitespace(col.fill_null("")), ""))
        idx = np.flatnonzero(bad.to_numpy(zero_copy_only=False)) if bad.null_count == 0 else \
            np.flatnonzero(bad.fill_null(True).to_numpy(zero_copy_only=False))
        if len(idx):
            raise _fail(origin, where(int(idx[0])), f"{c!r} is empty; every row needs a non-empty {c}", len(idx) - 1)
    langs = table["lang"].to_numpy(zero_copy_only=False)
    codes, inv = np.unique(langs, return_inverse=True)
    for j, code in enumerate(codes):
        if not _ISO.match(code):
            i = int(np.flatnonzero(inv == j)[0])
            hint = f"; did you mean {code.lower()[:2]!r}?" if code.lower()[:2] in LANGUAGES else ""
            raise _fail(origin, where(i), f"lang {code!r} is not a two-letter lower-case ISO 639-1 code (as "
                        f"{', '.join(sorted(LANGUAGES))}){hint}")
        if code not in LANGUAGES:
            warnings.warn(f"{origin}: lang {code!r} is not a language of the evaluation benchmarks "
                          f"({', '.join(sorted(LANGUAGES))}); it is trained on but never evaluated", stacklevel=3)
    key = pd.MultiIndex.from_arrays([table["group"].to_numpy(zero_copy_only=False), langs])
    dup = key.duplicated(keep=False)
    if dup.any():
        first = np.flatnonzero(dup)
        g, l = key[first[0]]
        other = [int(i) for i in first if key[i] == (g, l)]
        raise _fail(origin, where(other[1]), f"duplicate (group, lang) = ({g!r}, {l!r}), also at "
                    f"{where(other[0])}; each question has one row per language")
    return table.sort_by([("lang", "ascending"), ("group", "ascending")])


def read_pairs(path: str | os.PathLike):
    """Read and validate a user's parallel pairs from ``.jsonl``/``.json`` (one object per line), ``.csv``
    (with a header) or ``.parquet``; returns a ``datasets.Dataset`` following the contract.

    Columns ``group, lang, query, passage`` are required; ``answer_key`` is optional and defaults to
    ``group``, meaning "each group's passage is its own answer" (no two groups share an answer). Extra
    columns are kept. Errors name the file and the 1-based line (JSONL, CSV) or row (Parquet); see
    :func:`validate_pairs` for the checks."""
    import datasets
    import pyarrow.parquet as pq

    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: file not found; pass a .jsonl, .csv or .parquet file of parallel pairs")
    suffix = path.suffix.lower()
    if suffix in (".jsonl", ".json", ".ndjson"):
        cols, lines = _read_jsonl(path)
        table = _table_from_columns(cols, str(path), lines)
    elif suffix == ".csv":
        cols, lines = _read_csv(path)
        table = _table_from_columns(cols, str(path), lines)
    elif suffix == ".parquet":
        try:
            table = pq.read_table(path)
        except Exception as e:  # noqa: BLE001 - pyarrow raises several types for a corrupt file
            raise DataError(f"{path}: not a readable Parquet file ({e}); write it with df.to_parquet") from None
        lines = None
    else:
        raise DataError(f"{path}: unknown pairs format {suffix!r}; use .jsonl, .csv or .parquet")
    return datasets.Dataset(_validate_table(table, str(path), lines))


def validate_pairs(dataset, origin: str = "dataset"):
    """Validate a ``datasets.Dataset`` (or pandas DataFrame) of parallel pairs against the contract and return
    it as a contract Dataset (``answer_key`` defaulting to ``group``, ``source`` to ``origin``, rows sorted by
    ``(lang, group)``). Errors name ``origin`` and the 1-based row."""
    import datasets
    import pyarrow as pa

    if isinstance(dataset, pd.DataFrame):
        table = pa.Table.from_pandas(dataset, preserve_index=False)
    elif isinstance(dataset, datasets.Dataset):
        table = dataset.with_format("arrow")[:]
    else:
        raise DataError(f"{origin}: expected a datasets.Dataset or pandas DataFrame, got {type(dataset).__name__}")
    return datasets.Dataset(_validate_table(table, origin))


def _user_corpus(path: Path, rebuild: bool):
    """A user's file, validated once and cached (keyed by its path, size and mtime)."""
    def build(tmp: Path) -> pd.DataFrame:
        ds = read_pairs(path)
        ds.save_to_disk(str(tmp / "dataset"))
        counts = Counter(ds["lang"])
        return _stats_frame([{"lang": l, "rows": n, "skipped": {}, "file": str(path)} for l, n in counts.items()], {})

    name = re.sub(r"[^A-Za-z0-9_.-]", "_", path.stem)[:40] or "pairs"
    folder = _cached(f"user-{name}", [path], {}, build, rebuild)
    return _load(folder), folder


# --------------------------------------------------------------------------------------------------
# one entry point
# --------------------------------------------------------------------------------------------------
def load_training_corpus(name_or_path, data_dir: str | os.PathLike | None = None,
                         languages: Iterable[str] | None = None, passage: str = "sentence",
                         rebuild: bool = False, num_proc: int | None = None):
    """The training corpus ``name_or_path`` as a memory-mapped ``datasets.Dataset`` following the contract.

    ``name_or_path``: ``"xquad-train"``, ``"squad-translate-train"``, a path to a ``.jsonl``/``.csv``/
    ``.parquet`` file of pairs, or a ``datasets.Dataset``/DataFrame (validated, not cached). ``languages``
    restricts a named corpus (default: all of its languages); for files it keeps only those languages.
    ``rebuild=True`` rebuilds the cache even when it is complete.
    """
    import datasets

    if passage not in PASSAGES:
        raise DataError(f"passage={passage!r}: use one of {', '.join(PASSAGES)}")
    if isinstance(name_or_path, (datasets.Dataset, pd.DataFrame)):
        ds = validate_pairs(name_or_path)
    elif name_or_path == "xquad-train":
        ds, _ = xquad_train(data_dir, languages, passage, rebuild)
        return ds
    elif name_or_path == "squad-translate-train":
        ds, _ = squad_translate_train(data_dir, languages, passage, rebuild, num_proc)
        return ds
    else:
        path = Path(str(name_or_path)).expanduser()
        if not path.suffix:
            raise DataError(f"unknown training corpus {name_or_path!r}; use one of {', '.join(CORPORA)} or a "
                            ".jsonl/.csv/.parquet file of pairs")
        if passage != "sentence":
            raise DataError("passage='paragraph' applies to the named corpora only; a file's passages are used as given")
        ds, _ = _user_corpus(path, rebuild)
    if languages is not None:
        keep = set(languages)
        missing = keep - set(ds.unique("lang"))
        if missing:
            raise DataError(f"{name_or_path}: no rows in languages {sorted(missing)}; it has {sorted(ds.unique('lang'))}")
        ds = ds.filter(lambda l: l in keep, input_columns="lang", keep_in_memory=True)
    return ds


def build_corpus(name: str, src_dir: str | os.PathLike | None = None, languages: Iterable[str] | None = None,
                 passage: str = "sentence", rebuild: bool = False, num_proc: int | None = None):
    """Build (or reuse) a named corpus's cache; return ``(cache folder, stats DataFrame)``.

    The stats table has one row per language plus ``all``: ``rows``, ``skipped`` and one ``skipped: <reason>``
    column per skip reason, ``rows in single-language groups`` and the source ``file``; it is what
    ``hbkit data build NAME --dir FOLDER`` prints."""
    if name == "squad-translate-train":
        _, folder = squad_translate_train(src_dir, languages, passage, rebuild, num_proc)
    elif name == "xquad-train":
        _, folder = xquad_train(src_dir, languages, passage, rebuild)
    else:
        raise DataError(f"unknown corpus {name!r}; build one of {', '.join(CORPORA)}")
    return folder, pd.read_csv(folder / "stats.csv")


# --------------------------------------------------------------------------------------------------
# zero-shot separation
# --------------------------------------------------------------------------------------------------
@lru_cache(maxsize=1)
def _punct_table() -> dict[int, None]:
    return {i: None for i in range(sys.maxunicode + 1) if unicodedata.category(chr(i)).startswith("P")}


def normalize_text(text: str) -> str:
    """``NFKC``, casefold, every Unicode punctuation character (category P*) removed, whitespace collapsed to
    single spaces and stripped: the form in which two texts count as a normalised overlap."""
    return " ".join(unicodedata.normalize("NFKC", text).casefold().translate(_punct_table()).split())


def _hashes(texts) -> np.ndarray:
    return pd.util.hash_array(np.asarray(texts, dtype=object), categorize=False)


def _column_chunks(train, column: str, chunk: int = 200_000) -> Iterator[list[str]]:
    """The texts of one column in chunks; only that column is read from the memory map."""
    col = train.select_columns([column])
    for s in range(0, len(col), chunk):
        yield col[s:s + chunk][column]


def overlap_counts(train, benchmarks: dict[str, RetrievalBenchmark], examples: int = 3) -> pd.DataFrame:
    """Overlap between a training corpus and each benchmark, exact and after :func:`normalize_text`.

    One row per (benchmark, field, match): ``field`` is ``query`` (training queries vs the benchmark's
    queries) or ``passage`` (training passages vs its candidates); ``match`` is ``exact`` or ``normalised``.
    ``bench_items`` = the benchmark's distinct texts, ``bench_matched`` = how many of them occur in training,
    ``train_rows_matched`` = training rows whose text is one of them, ``examples`` = up to ``examples``
    matched benchmark texts. ``known_in_domain`` is true for ``xquad-train`` (by the ``source`` column)
    against ``xquad-r`` / ``xquad-r-eval``: same articles' domain, not a zero-shot evaluation.
    Memory: the training texts are hashed (64-bit) in chunks; only the benchmarks' texts are kept.
    """
    if not isinstance(benchmarks, dict) or not all(isinstance(b, RetrievalBenchmark) for b in benchmarks.values()):
        raise DataError("benchmarks must be a dict {name: RetrievalBenchmark} (hbkit.data.load_benchmark)")
    for c in ("query", "passage"):
        if c not in train.column_names:
            raise DataError(f"the training corpus has no column {c!r} (columns: {train.column_names})")
    sources = set(train.unique("source")) if "source" in train.column_names else set()
    bench_sets = {}
    for bname, b in benchmarks.items():
        for field, texts in (("query", b.queries["text"]), ("passage", b.candidates["text"])):
            uniq = pd.unique(texts.astype(str))
            norm = np.array([normalize_text(t) for t in uniq], dtype=object)
            bench_sets[(bname, field)] = (uniq, _hashes(uniq), norm, _hashes(norm))
    hit = {k: (np.zeros(len(v[0]), bool), np.zeros(len(v[0]), bool), [0], [0]) for k, v in bench_sets.items()}
    for field in ("query", "passage"):
        for texts in _column_chunks(train, field):
            h_exact = _hashes(texts)
            h_norm = _hashes([normalize_text(t) for t in texts])
            for (bname, f), (uniq, bh, norm, bnh) in bench_sets.items():
                if f != field:
                    continue
                ex, nm, n_ex, n_nm = hit[(bname, f)]
                ex |= np.isin(bh, h_exact)
                nm |= np.isin(bnh, h_norm)
                n_ex[0] += int(np.isin(h_exact, bh).sum())
                n_nm[0] += int(np.isin(h_norm, bnh).sum())
    rows = []
    for (bname, field), (uniq, _, norm, _) in bench_sets.items():
        ex, nm, n_ex, n_nm = hit[(bname, field)]
        in_domain = "xquad-train" in sources and bname in ("xquad-r", "xquad-r-eval")
        for match, mask, n, shown in (("exact", ex, n_ex[0], uniq), ("normalised", nm, n_nm[0], uniq)):
            rows.append({"benchmark": bname, "field": field, "match": match, "bench_items": len(uniq),
                         "bench_matched": int(mask.sum()), "train_rows_matched": n,
                         "examples": list(shown[mask][:examples]), "known_in_domain": in_domain})
    return pd.DataFrame(rows)


def check_zero_shot(counts: pd.DataFrame, force: bool = False) -> None:
    """Raise :class:`ZeroShotError` when a benchmark's QUESTIONS occur in training (exact or normalised), naming
    the benchmark, the count and examples; with ``force=True`` warn instead. A benchmark labelled
    ``known_in_domain`` without question overlap only warns that it is in-domain, not zero-shot. Passage
    overlaps (the same Wikipedia sentences) are reported by :func:`overlap_counts` but never refused."""
    bad = counts[(counts["field"] == "query") & (counts["bench_matched"] > 0)]
    for bname, g in bad.groupby("benchmark", sort=True):
        by = g.set_index("match")
        n_ex = int(by["bench_matched"].get("exact", 0))
        n_nm = int(by["bench_matched"].get("normalised", 0))
        r = g.sort_values("bench_matched", ascending=False).iloc[0]
        msg = (f"{bname}: {n_ex} of its {r['bench_items']} questions occur in the training corpus verbatim and "
               f"{n_nm} after normalisation (e.g. {r['examples']}): the evaluation is not zero-shot. Train on a "
               f"corpus disjoint from it (xquad-train pairs with xquad-r-eval), or accept the overlap with "
               f"allow_overlap=True / --allow-overlap (hbkit compare)")
        if not force:
            raise ZeroShotError(msg)
        warnings.warn(msg, stacklevel=2)
    for bname in sorted(set(counts.loc[counts["known_in_domain"], "benchmark"]) - set(bad["benchmark"])):
        warnings.warn(f"{bname}: the training corpus is from the same release (xquad-train); no question overlaps, "
                      "but the evaluation is in-domain, not zero-shot", stacklevel=2)
