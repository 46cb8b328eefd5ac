"""SQuAD translate-train (XTREME's machine translations of SQuAD v1.1 train): locate or download the
release, and build it as (group, lang, query, passage, answer_key) pairs."""

from __future__ import annotations

import logging
import os
import warnings
from collections import Counter
from pathlib import Path
from typing import Iterable

import pandas as pd

from hbkit.core.env import data_roots, default_data_roots, looked_in, offline
from hbkit.data.corpus_cache import (
    cached_corpus,
    load_cached,
    save_parts,
    single_language_counts,
    write_part,
)
from hbkit.data.fetch import PROJECT_DATA, fetch_file
from hbkit.data.registry import PASSAGES, DataError, check_languages
from hbkit.data.releases.squad import sentence_index, split_sentences, squad_questions
from hbkit.data.sources import SQUAD_TT_MANIFEST, SQUAD_URL, TT_URL

log = logging.getLogger(__name__)


#: above this share of a translated file's questions equal to English, the build warns that it may
#: be English
UNTRANSLATED_SHARE = 0.2


#: Languages of XTREME's SQuAD translate-train release (English is the original SQuAD v1.1 train
#: file).
TRANSLATE_TRAIN_LANGS = ["ar", "de", "el", "en", "es", "hi", "ru", "th", "tr", "vi", "zh"]


SQUAD_TRAIN_FILE = "train-v1.1.json"


TRANSLATE_DIR = "translate-train"


def translate_file(lang: str) -> str:
    """File name of one language of the release: ``train-v1.1.json`` (en) or
    ``squad.translate.train.en-XX.json``."""
    return SQUAD_TRAIN_FILE if lang == "en" else f"squad.translate.train.en-{lang}.json"


SQUAD_TRAIN_QUESTIONS = 87599


_PARALLEL_BYTES = 64 << 20


# --------------------------------------------------------------------------------------------------
# SQuAD translate-train
# --------------------------------------------------------------------------------------------------
def _squad_dir(data_dir: str | os.PathLike | None, download_missing: bool | None = None) -> Path:
    """The folder holding the SQuAD translate-train files: ``data_dir`` (or its
    ``squad-translate-train/``), else ``$HBKIT_DATA_DIR/squad-translate-train``, else
    ``squad-translate-train/`` of ``../shared/data`` or ``data/``
    (:func:`hbkit.core.env.default_data_roots`), else a download into ``data/``."""

    def holds(d: Path) -> bool:
        return (d / SQUAD_TRAIN_FILE).is_file()

    for origin, root in data_roots(data_dir)[:1]:
        for cand in ((root,) if origin.startswith("argument") else ()) + (
            root / "squad-translate-train",
        ):
            if holds(cand):
                return cand
        raise DataError(
            f"{origin}={root} does not hold SQuAD translate-train (expected "
            f"{root}/squad-translate-train/{SQUAD_TRAIN_FILE} and "
            f".../{TRANSLATE_DIR}/squad.translate.train.en-XX.json, see data/README.md); point it "
            "at that folder, or download the release with "
            "hbkit.data.corpora.download_squad_translate_train"
        )
    for root in default_data_roots(PROJECT_DATA):
        if holds(root / "squad-translate-train"):
            return root / "squad-translate-train"
    default = PROJECT_DATA / "squad-translate-train"
    if download_missing is False or (download_missing is None and offline()):
        raise DataError(
            "SQuAD translate-train not found in squad-translate-train/ of "
            f"{looked_in(PROJECT_DATA)}: pass data_dir=FOLDER (laid out as in data/README.md) or "
            "run download_squad_translate_train() while online"
        )
    return download_squad_translate_train(default)


def squad_translate_train_files(
    data_dir: str | os.PathLike | None = None, languages: Iterable[str] | None = None
) -> dict[str, Path]:
    """``{lang: path}`` of the release files for ``languages`` (default: all 11), English always
    included.

    Layout (XTREME's: SQuAD in ``squad/``, translations in the bucket folder
    ``SQuAD/translate-train/``)::

        FOLDER/train-v1.1.json
        FOLDER/translate-train/squad.translate.train.en-XX.json   (or directly in FOLDER/)

    A missing file is a :class:`DataError` naming the expected path.
    """
    langs = check_corpus_languages(languages, TRANSLATE_TRAIN_LANGS, "squad-translate-train")
    folder = _squad_dir(data_dir)
    out = {}
    for lang in sorted(set(langs) | {"en"}):
        f = translate_file(lang)
        for cand in (folder / TRANSLATE_DIR / f, folder / f):
            if cand.is_file():
                out[lang] = cand
                break
        else:
            raise DataError(
                f"{folder / TRANSLATE_DIR / f} not found (nor {folder / f}); download it from "
                f"{TT_URL.format(file=f)} or leave {lang!r} out of languages"
            )
    return out


def check_corpus_languages(languages, available: list[str], what: str) -> list[str]:
    """The data layer's language check (a string is a comma list; unknown or repeated codes are
    errors), and an explicitly empty list is refused rather than read as 'all'."""
    if languages is not None and not isinstance(languages, str) and not list(languages):
        raise DataError(f"{what}: languages is empty; pass at least one of {', '.join(available)}")
    return check_languages(languages, available, what)


def download_squad_translate_train(
    dest: str | os.PathLike = PROJECT_DATA / "squad-translate-train",
    languages: Iterable[str] | None = None,
) -> Path:
    """Download SQuAD v1.1 train and XTREME's translations into ``dest`` (the layout of
    :func:`squad_translate_train_files`), each verified by size and sha256
    (:data:`SQUAD_TT_MANIFEST`) while streaming, and written atomically. Existing files with the
    right size are kept."""
    dest = Path(dest)
    if offline():
        raise DataError(
            "cannot download SQuAD translate-train while offline (HF_HUB_OFFLINE/HBKIT_OFFLINE is "
            f"set): unset it, or place the release files in {dest}"
        )
    for lang in sorted(
        set(check_corpus_languages(languages, TRANSLATE_TRAIN_LANGS, "squad-translate-train"))
        | {"en"}
    ):
        f = translate_file(lang)
        path = dest / f if lang == "en" else dest / TRANSLATE_DIR / f
        size, sha = SQUAD_TT_MANIFEST[lang]
        if path.is_file() and path.stat().st_size == size:
            continue
        url = SQUAD_URL if lang == "en" else TT_URL.format(file=f)
        log.info("downloading %s", url)
        fetch_file(url, path, size, sha)
    return dest


def answer_passage(ctx: str, start: int, lang: str, passage: str, memo: dict) -> tuple[str, int]:
    """``(passage text, sentence index)``: the pysbd sentence holding ``start``
    (``split_sentences``, as for MLQA-R), or the whole paragraph (index -1). Spans are memoised per
    distinct context."""
    if passage == "paragraph":
        return ctx.strip(), -1
    spans = memo.get(ctx)
    if spans is None:
        spans = memo[ctx] = split_sentences(ctx, lang)
    s = sentence_index(spans, start)
    b, e = spans[s]
    return ctx[b:e].strip(), s


def _english_keys(path: Path, passage: str) -> tuple[dict[str, tuple[str, str]], Counter, dict]:
    """English SQuAD: ``{qid: (answer_key, title)}``, skip counts, and the English rows
    (columns)."""
    skipped: Counter = Counter()
    keys, memo = {}, {}
    cols = {
        c: []
        for c in ("group", "lang", "query", "passage", "answer_key", "source", "context", "article")
    }
    for r in squad_questions(path, skipped, strict=False):
        qid, title, p, ctx, question = r.qid, r.title, r.paragraph, r.context, r.text
        text, s = answer_passage(ctx, r.answer_start, "en", passage, memo)
        key = f"{title}:{p}" if passage == "paragraph" else f"{title}:{p}:{s}"
        keys[qid] = (key, title, question)
        for c, v in zip(
            cols, (qid, "en", question, text, key, "squad-translate-train", ctx, title)
        ):
            cols[c].append(v)
    return keys, skipped, cols


def _translated_part(lang: str, path: Path, keys: dict, passage: str, out: Path) -> dict:
    """Rows of one translated file, written to ``out``; returns its stats (records, rows, skips by
    reason). A group is the SQuAD question id: XTREME's translated files keep SQuAD's ids unchanged
    (ids are a subset of SQuAD train's, unique per file), and the answer key is the English one."""
    skipped: Counter = Counter()
    memo: dict = {}
    same = 0
    cols = {
        c: []
        for c in ("group", "lang", "query", "passage", "answer_key", "source", "context", "article")
    }
    for r in squad_questions(path, skipped, strict=False):
        qid, ctx, question, start = r.qid, r.context, r.text, r.answer_start
        if qid not in keys:
            skipped["id not in English SQuAD train (or skipped there)"] += 1
            continue
        text, _ = answer_passage(ctx, start, lang, passage, memo)
        if not text:
            skipped["empty answer sentence"] += 1
            continue
        key, title, en_question = keys[qid]
        same += question == en_question
        for c, v in zip(
            cols, (qid, lang, question, text, key, "squad-translate-train", ctx, title)
        ):
            cols[c].append(v)
    write_part(out, cols)
    return {
        "lang": lang,
        "file": str(path),
        "rows": len(cols["group"]),
        "skipped": dict(skipped),
        "identical": same,
    }


def _part_worker(args) -> dict:
    return _translated_part(*args)


def stats_frame(parts: list[dict], single: dict[str, int]) -> pd.DataFrame:
    """A corpus's ``stats.csv``: per language ``rows``, ``skipped`` (records left out) with one
    ``skipped: <reason>`` column each, ``lines: <reason>`` (lines of its files passed over, which
    are not records), the rows in single-language groups and the file; then the ``all`` row of
    sums."""
    reasons = sorted({r for p in parts for r in p["skipped"]})
    line_reasons = sorted({r for p in parts for r in p.get("lines", {})})
    rows = []
    for p in sorted(parts, key=lambda p: p["lang"]):
        rows.append(
            {
                "lang": p["lang"],
                "rows": p["rows"],
                "skipped": sum(p["skipped"].values()),
                **{f"skipped: {r}": p["skipped"].get(r, 0) for r in reasons},
                **{f"lines: {r}": p.get("lines", {}).get(r, 0) for r in line_reasons},
                "rows in single-language groups": single.get(p["lang"], 0),
                "questions identical to English": p.get("identical", 0),
                "file": p.get("file", ""),
            }
        )
    df = pd.DataFrame(rows)
    total = df.drop(columns=["lang", "file"]).sum().to_dict()
    return pd.concat([df, pd.DataFrame([{"lang": "all", **total, "file": ""}])], ignore_index=True)


def _build_squad(
    tmp: Path, files: dict[str, Path], languages: list[str], passage: str, num_proc: int
) -> pd.DataFrame:
    keys, en_skipped, en_cols = _english_keys(files["en"], passage)
    parts_dir = tmp / "_parts"
    parts, stats = [], []
    if "en" in languages:
        parts.append(write_part(parts_dir / "en.arrow", en_cols))
    stats.append(
        {
            "lang": "en",
            "file": str(files["en"]),
            "rows": len(en_cols["group"]) if "en" in languages else 0,
            "skipped": dict(en_skipped),
        }
    )
    del en_cols
    jobs = [
        (l, files[l], keys, passage, parts_dir / f"{l}.arrow")
        for l in sorted(languages)
        if l != "en"
    ]
    if num_proc > 1 and len(jobs) > 1:
        import multiprocessing as mp
        from concurrent.futures import ProcessPoolExecutor

        with ProcessPoolExecutor(
            min(num_proc, len(jobs)), mp_context=mp.get_context("spawn")
        ) as ex:
            results = list(ex.map(_part_worker, jobs))
    else:
        results = [_part_worker(j) for j in jobs]
    stats += results
    parts += [j[4] for j in jobs]
    parts = sorted(parts, key=lambda p: p.stem)  # rows sorted by (lang, group)
    save_parts(tmp, parts)
    single = single_language_counts(tmp / "dataset")
    df = stats_frame(stats, single)
    for p in stats:
        if p["skipped"]:
            log.warning(
                "squad-translate-train %s: skipped %s",
                p["lang"],
                ", ".join(f"{n} ({r})" for r, n in sorted(p["skipped"].items())),
            )
        if (
            p["lang"] != "en"
            and p["rows"]
            and p.get("identical", 0) / p["rows"] > UNTRANSLATED_SHARE
        ):
            warnings.warn(
                f"squad-translate-train {p['lang']}: {p['identical']} of {p['rows']} questions "
                f"({p['identical'] / p['rows']:.0%}) are the English ones word for word; "
                f"{p['file']} may hold the English text, not a translation: check the file, or "
                "leave the language out",
                UserWarning,
                stacklevel=2,
            )
    if "en" in languages and len(keys) + sum(en_skipped.values()) != SQUAD_TRAIN_QUESTIONS:
        log.warning(
            "%s holds %d questions, SQuAD v1.1 train has %d: not the official release file",
            files["en"],
            len(keys) + sum(en_skipped.values()),
            SQUAD_TRAIN_QUESTIONS,
        )
    return df


def squad_translate_train(
    data_dir: str | os.PathLike | None = None,
    languages: Iterable[str] | None = None,
    passage: str = "sentence",
    rebuild: bool = False,
    num_proc: int | None = None,
):
    """SQuAD v1.1 train + XTREME translate-train as parallel pairs: ``(Dataset, cache folder)``.

    * Files: :func:`squad_translate_train_files` (``train-v1.1.json`` and
      ``translate-train/squad.translate.train.en-XX.json``; release addresses and pinned sha256 in
      :data:`SQUAD_TT_MANIFEST`). XTREME's repository (google-research/xtreme) does not download
      these itself; its README points to the ``xtreme_translations`` bucket, path
      ``SQuAD/translate-train/``.
    * Group: the SQuAD question id, which the translated files keep unchanged (their ids are a
      subset of SQuAD train's and unique per file); query: the question; passage: the pysbd sentence
      of the context holding ``answer_start`` (``hbkit.data.releases.squad.split_sentences``, the
      MLQA-R construction), or the whole paragraph with ``passage="paragraph"``.
    * ``answer_key``: ``"<SQuAD title>:<paragraph index>:<English sentence index>"`` of the English
      answer (``"<title>:<paragraph>"`` with ``passage="paragraph"``) in every language, so
      questions answered by the same English sentence share it in every language.
    * Skipped and counted per language and reason (stats table, log, ``stats.csv`` beside the
      cache): broken translated offsets (``answer_start`` outside the context, or the answer text
      not at it), empty questions, duplicate ids, and translations whose id has no usable English
      record. Groups left in one language are kept and counted (``rows in single-language groups``).
    * ``num_proc`` processes split the translated files (default: ``min(languages, CPUs, 4)`` when
      they exceed 64 MB together, else 1: a worker costs seconds to start); sentence splitting
      (about 10 ms per paragraph, memoised per distinct context) dominates the build.
    """
    if passage not in PASSAGES:
        raise DataError(f"passage={passage!r}: use one of {', '.join(PASSAGES)}")
    langs = check_corpus_languages(languages, TRANSLATE_TRAIN_LANGS, "squad-translate-train")
    files = squad_translate_train_files(data_dir, langs)
    big = sum(f.stat().st_size for l, f in files.items() if l != "en") > _PARALLEL_BYTES
    n = (
        num_proc
        if num_proc is not None
        else (min(len(langs), os.cpu_count() or 1, 4) if big else 1)
    )
    if n < 1:
        raise DataError(f"num_proc={num_proc}: must be >= 1")
    options = {"languages": sorted(langs), "passage": passage}
    folder = cached_corpus(
        "squad-translate-train",
        list(files.values()),
        options,
        lambda tmp: _build_squad(tmp, files, langs, passage, n),
        rebuild,
    )
    return load_cached(folder), folder
