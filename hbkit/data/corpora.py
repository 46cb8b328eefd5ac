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
* ``xquad-train``: the 36 XQuAD training articles (:data:`hbkit.data.registry.TRAIN_ARTICLES`) from
  :func:`hbkit.data.benchmarks.parallel_pairs`; ``answer_key = "<article>:<paragraph>:<sentence>"`` with the sentence
  index of the *English* answer sentence (XQuAD-R ``sentence_breaks``), so the key means the same in every
  language; ``passage="paragraph"`` gives ``"<article>:<paragraph>"``.
* ``squad-translate-train``: SQuAD v1.1 train (English) plus XTREME's machine translations of it
  (``squad.translate.train.en-XX.json``, XX in ar de el es hi ru th tr vi zh). See :func:`squad_translate_train`.
* a user's own pairs: a JSONL, CSV or Parquet file, or a ``datasets.Dataset``; see :func:`read_pairs`.

Every built corpus is cached under ``<hbkit cache>/corpora/<name>-<key>/`` (``key`` = sha256 of the input
files' resolved paths, sizes and mtimes, the options and the builder version) with ``dataset/``
(``Dataset.save_to_disk``), ``stats.csv`` / ``stats.json`` (per-language rows and skip counts) and a
``COMPLETE`` marker written last. :func:`hbkit.core.files.build_once` guarantees that N processes starting at once
build it once, and that a build killed half-way leaves nothing that counts as a finished cache.
"""
from __future__ import annotations

import logging
import os
import re
from collections import Counter
from pathlib import Path
from typing import Iterable

import pandas as pd

from hbkit.data.benchmarks import load_xquad_r, parallel_pairs
from hbkit.data.corpus_cache import cached_corpus, load_cached, save_frame
from hbkit.data.pairs import read_pairs, validate_pairs
from hbkit.data.registry import PASSAGES, TRAIN_ARTICLES, XQUAD_R_LANGS, DataError
from hbkit.data.releases import release_dir as _root
from hbkit.data.translate_train import check_corpus_languages, squad_translate_train, stats_frame

log = logging.getLogger(__name__)


CORPORA = ("xquad-train", "squad-translate-train")


# --------------------------------------------------------------------------------------------------
# XQuAD training articles
# --------------------------------------------------------------------------------------------------
def xquad_train(data_dir: str | os.PathLike | None = None, languages: Iterable[str] | None = None,
                passage: str = "sentence", rebuild: bool = False):
    """The 36 XQuAD training articles (``hbkit.data.benchmarks.parallel_pairs``) with ``answer_key`` and ``source``:
    ``(Dataset, cache folder)``. ``answer_key``: parallel_pairs' answer identity (groups whose XQuAD-R answer
    sentences coincide in any language share it; sentence indices differ between languages, so the English
    index alone would miss some); ``"<article>:<paragraph>"`` with ``passage="paragraph"``, where the passage
    is the paragraph."""
    if passage not in PASSAGES:
        raise DataError(f"passage={passage!r}: use one of {', '.join(PASSAGES)}")
    langs = check_corpus_languages(languages, XQUAD_R_LANGS, "xquad-train")
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
        save_frame(tmp, pairs)
        counts = pairs.groupby("lang").size()
        return stats_frame([{"lang": l, "rows": int(n), "skipped": {}, "file": str(root / "xquad-r" / f"{l}.json")}
                             for l, n in counts.items()], {})

    folder = cached_corpus("xquad-train", files, {"languages": sorted(langs), "passage": passage}, build, rebuild)
    return load_cached(folder), folder


def _user_corpus(path: Path, rebuild: bool):
    """A user's file, validated once and cached (keyed by its path, size and mtime)."""
    def build(tmp: Path) -> pd.DataFrame:
        ds = read_pairs(path)
        ds.save_to_disk(str(tmp / "dataset"))
        counts = Counter(ds["lang"])
        return stats_frame([{"lang": l, "rows": n, "skipped": {}, "file": str(path)} for l, n in counts.items()], {})

    name = re.sub(r"[^A-Za-z0-9_.-]", "_", path.stem)[:40] or "pairs"
    folder = cached_corpus(f"user-{name}", [path], {}, build, rebuild)
    return load_cached(folder), folder


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


def training_pairs(corpus: str, data_dir: str | os.PathLike | None = None, languages: Iterable[str] | None = None):
    """The training pairs of a run: ``xquad-train`` as :func:`hbkit.data.benchmarks.parallel_pairs` (the
    pairs every earlier run was trained and fingerprinted on), any other corpus name or pairs file through
    :func:`load_training_corpus`. ``hbkit train`` and ``hbkit compare`` both read their pairs here."""
    if corpus == "xquad-train":
        return parallel_pairs(languages=languages, data_dir=data_dir)
    return load_training_corpus(corpus, data_dir, languages=languages)


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
