"""Training corpora: every source gives the same Arrow-backed ``datasets.Dataset``, cached and
memory-mapped.

The contract
------------
Columns ``group, lang, query, passage, answer_key`` (all strings) plus provenance (``source``, and
where meaningful ``context`` and ``article``). ``group`` is shared by the translations of one
question and each ``(group, lang)`` is exactly one row. ``answer_key`` is the language-independent
identity of the answer passage: two rows share it exactly when their passages are the same answer,
possibly in different languages, so a sampler can keep a translation of a positive out of the
negatives of its batch. Rows are sorted by ``(lang, group)``.

Sources (:func:`load_training_corpus`)
--------------------------------------
* ``xquad-train``: the 36 XQuAD training articles (:data:`hbkit.data.registry.TRAIN_ARTICLES`) from
  :func:`hbkit.data.benchmarks.parallel_pairs`; ``answer_key = "<article>:<paragraph>:<sentence>"``
  with the sentence index of the *English* answer sentence (XQuAD-R ``sentence_breaks``), so the key
  means the same in every language; ``passage="paragraph"`` gives ``"<article>:<paragraph>"``.
* ``squad-translate-train``: SQuAD v1.1 train (English) plus XTREME's machine translations of it
  (``squad.translate.train.en-XX.json``, XX in ar de el es hi ru th tr vi zh). See
  :func:`squad_translate_train`.
* ``mmarco`` / ``mmarco:N``: mMARCO's training queries (N of them, default 100,000) and their
  positive passages in every language asked for; see
  :func:`hbkit.data.releases.mmarco.mmarco_pairs`.
* a user's own pairs: a JSONL, CSV or Parquet file, or a ``datasets.Dataset``; see
  :func:`read_pairs`.
* a **mix**: names and files joined by ``+``
  (``mmarco:200000+squad-translate-train+my_pairs.jsonl``). Each part is read in the requested
  languages it has; the rows get a ``corpus`` column naming their part, and their ``group`` and
  ``answer_key`` are prefixed with it (so parts never share a group). hbkit's samplers then draw one
  corpus per batch, in proportion to its rows
  (:class:`hbkit.train.sampling.MultiCorpusBatchSampler`). The mix is a cache entry of its own
  (``mix-<key>``), memory-mapped like the others, so processes share its pages.

Every built corpus is cached under ``<hbkit cache>/corpora/<name>-<key>/`` (``key`` = the content
key of the input files' bytes, the options and the builder version; a stat per file seen before,
:mod:`hbkit.core.digests`) with ``dataset/`` (``Dataset.save_to_disk``), ``stats.csv`` /
``stats.json`` (per-language rows and skip counts) and a ``COMPLETE`` marker written last.
:func:`hbkit.core.files.build_once` guarantees that N processes starting at once build it once, and
that a build killed half-way leaves nothing that counts as a finished cache.
"""

from __future__ import annotations

import logging
import os
import re
from collections import Counter
from pathlib import Path
from typing import Iterable

import pandas as pd

from hbkit.core.digests import carry_mapped
from hbkit.core.vocab import CORPUS_COLUMN
from hbkit.data.benchmarks import parallel_pairs
from hbkit.data.corpus_cache import cached_corpus, load_cached, save_frame
from hbkit.data.fetch import release_dir as _root
from hbkit.data.pairs import read_pairs, validate_pairs
from hbkit.data.registry import PASSAGES, TRAIN_ARTICLES, XQUAD_R_LANGS, DataError
from hbkit.data.releases.lareqa import load_xquad_r
from hbkit.data.releases.mmarco import mmarco_pairs, parse_size
from hbkit.data.releases.squadshifts import squadshifts_pairs
from hbkit.data.releases.translate_train import (
    TRANSLATE_TRAIN_LANGS,
    check_corpus_languages,
    squad_translate_train,
    stats_frame,
)
from hbkit.data.sources import MMARCO_LANGS

log = logging.getLogger(__name__)


CORPORA = ("xquad-train", "squad-translate-train", "mmarco")


#: the file suffixes a part of a spec may have (:func:`hbkit.data.pairs.read_pairs` reads these)
PAIRS_SUFFIXES = (".jsonl", ".json", ".ndjson", ".csv", ".parquet")


def corpus_parts(spec: str) -> list[str]:
    """The parts of a corpus spec, the one parser of mixes:
    ``"mmarco:200000+squad-translate-train"`` -> ``["mmarco:200000", "squad-translate-train"]``.

    ``+`` joins a mix, except inside the name of a file that exists (``my+pairs.parquet`` is one
    part, and so is ``a+b.jsonl+mmarco``'s ``a+b.jsonl`` when that file is there). Each part is a
    corpus name (:data:`CORPORA`, ``mmarco:N``) or a ``.jsonl``/``.csv``/``.parquet`` file; a part
    that is neither, an empty part, and two parts that would carry one name in the ``corpus`` column
    (``mmarco:5+mmarco:6``, or two files with one stem) are a :class:`DataError`, raised before
    anything is read.

    Examples:
        >>> corpus_parts("mmarco:200000+squad-translate-train")
        ['mmarco:200000', 'squad-translate-train']
    """
    spec = str(spec)
    tokens, parts, i = spec.split("+"), [], 0
    while i < len(tokens):
        j = next(
            (
                j
                for j in range(len(tokens), i + 1, -1)
                if Path("+".join(tokens[i:j]).strip()).expanduser().is_file()
            ),
            i + 1,
        )
        parts.append("+".join(tokens[i:j]).strip())
        i = j
    if any(not p for p in parts):
        raise DataError(
            f"corpus {spec!r}: an empty part; join corpora with '+', e.g. "
            "mmarco+squad-translate-train"
        )
    for p in parts:
        name, colon, _ = p.partition(":")
        if name in CORPORA and colon and name != "mmarco":
            raise DataError(
                f"corpus {spec!r}: {p!r}: only mmarco takes a size (mmarco:200000); write {name!r}"
            )
        if name not in CORPORA and Path(p).suffix.lower() not in PAIRS_SUFFIXES:
            mix = (
                f" ('+' joins a mix, so {spec!r} was read as the parts {parts}; a file whose name "
                "holds '+' is read whole when it exists: check its path)"
                if len(parts) > 1
                else ""
            )
            raise DataError(
                f"unknown training corpus {p!r}{mix}; use one of {', '.join(CORPORA)}, mmarco:N, a "
                ".jsonl/.csv/.parquet file of pairs, or a mix joined by '+' "
                "(mmarco+squad-translate-train)"
            )
    names: dict[str, str] = {}
    for p in parts:
        if p.partition(":")[0] == "mmarco":
            parse_size(p)  # mmarco:N names a size
        name = part_name(p)
        if name in names:
            fix = (
                "give each corpus once (one size for mmarco)"
                if p.partition(":")[0] in CORPORA
                else "rename one of the files"
            )
            raise DataError(
                f"corpus {spec!r}: the parts {names[name]!r} and {p!r} would both be named "
                f"{name!r} in the mix; {fix}"
            )
        names[name] = p
    return parts


def part_name(part: str) -> str:
    """The name a part of a mix carries in the ``corpus`` column: the corpus name, or a file's
    stem."""
    name = part.partition(":")[0]
    return (
        name
        if name in CORPORA
        else re.sub(r"[^A-Za-z0-9_.-]", "_", Path(part).stem)[:40] or "pairs"
    )


def corpus_languages(part: str) -> list[str] | None:
    """The languages a named corpus has (None for a file: known only once read)."""
    name = part.partition(":")[0]
    return {
        "xquad-train": XQUAD_R_LANGS,
        "squad-translate-train": TRANSLATE_TRAIN_LANGS,
        "mmarco": sorted(MMARCO_LANGS),
    }.get(name)


# --------------------------------------------------------------------------------------------------
# XQuAD training articles
# --------------------------------------------------------------------------------------------------
def xquad_train(
    data_dir: str | os.PathLike | None = None,
    languages: Iterable[str] | None = None,
    passage: str = "sentence",
    rebuild: bool = False,
):
    """The 36 XQuAD training articles (``hbkit.data.benchmarks.parallel_pairs``) with ``answer_key``
    and ``source``: ``(Dataset, cache folder)``. ``answer_key``: parallel_pairs' answer identity
    (groups whose XQuAD-R answer sentences coincide in any language share it; sentence indices
    differ between languages, so the English index alone would miss some);
    ``"<article>:<paragraph>"`` with ``passage="paragraph"``, where the passage is the paragraph."""
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
        pairs = pairs[
            ["group", "lang", "query", "passage", "answer_key", "source", "context", "article"]
        ]
        pairs = pairs.sort_values(["lang", "group"], kind="stable").reset_index(drop=True)
        save_frame(tmp, pairs)
        counts = pairs.groupby("lang").size()
        return stats_frame(
            [
                {
                    "lang": l,
                    "rows": int(n),
                    "skipped": {},
                    "file": str(root / "xquad-r" / f"{l}.json"),
                }
                for l, n in counts.items()
            ],
            {},
        )

    folder = cached_corpus(
        "xquad-train", files, {"languages": sorted(langs), "passage": passage}, build, rebuild
    )
    return load_cached(folder), folder


def _user_corpus(path: Path, rebuild: bool):
    """A user's file, validated once and cached (keyed by its bytes)."""

    def build(tmp: Path) -> pd.DataFrame:
        ds = read_pairs(path)
        ds.save_to_disk(str(tmp / "dataset"))
        counts = Counter(ds["lang"])
        return stats_frame(
            [{"lang": l, "rows": n, "skipped": {}, "file": str(path)} for l, n in counts.items()],
            {},
        )

    name = re.sub(r"[^A-Za-z0-9_.-]", "_", path.stem)[:40] or "pairs"
    folder = cached_corpus(f"user-{name}", [path], {}, build, rebuild)
    return load_cached(folder), folder


# --------------------------------------------------------------------------------------------------
# one entry point
# --------------------------------------------------------------------------------------------------
def load_training_corpus(
    name_or_path,
    data_dir: str | os.PathLike | None = None,
    languages: Iterable[str] | None = None,
    passage: str = "sentence",
    rebuild: bool = False,
    num_proc: int | None = None,
):
    """The training corpus ``name_or_path`` as a memory-mapped ``datasets.Dataset`` following the
    contract.

    ``name_or_path``: ``"xquad-train"``, ``"squad-translate-train"``, ``"mmarco[:N]"``, a path to a
    ``.jsonl``/``.csv``/``.parquet`` file of pairs, a mix of these joined by ``+``, or a
    ``datasets.Dataset``/DataFrame (validated, not cached). ``languages`` restricts a named corpus
    (default: all of its languages); for files it keeps only those languages. ``rebuild=True``
    rebuilds the cache even when it is complete.
    """
    import datasets

    if passage not in PASSAGES:
        raise DataError(f"passage={passage!r}: use one of {', '.join(PASSAGES)}")
    if (
        isinstance(name_or_path, str)
        and "+" in name_or_path
        and len(corpus_parts(name_or_path)) > 1
    ):
        return _mix(name_or_path, data_dir, languages, passage, rebuild, num_proc)
    if isinstance(name_or_path, str) and name_or_path.partition(":")[0] == "mmarco":
        return mmarco_pairs(data_dir, languages, parse_size(name_or_path), rebuild)
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
            raise DataError(
                f"unknown training corpus {name_or_path!r}; use one of {', '.join(CORPORA)}, a "
                ".jsonl/.csv/.parquet file of pairs, or a mix joined by '+' "
                "(mmarco+squad-translate-train)"
            )
        if passage != "sentence":
            raise DataError(
                "passage='paragraph' applies to the named corpora only; a file's passages are "
                "used as given"
            )
        ds, _ = _user_corpus(path, rebuild)
    if languages is not None:
        keep = set(languages)
        missing = keep - set(ds.unique("lang"))
        if missing:
            raise DataError(
                f"{name_or_path}: no rows in languages {sorted(missing)}; it has "
                f"{sorted(ds.unique('lang'))}"
            )
        ds = carry_mapped(
            ds, ds.filter(lambda l: l in keep, input_columns="lang", keep_in_memory=True)
        )
    return ds


#: bumped when a mix's rows change for the same parts
MIX_VERSION = 1


def _entry(ds, part: str) -> str:
    """The corpus-cache entry a part was loaded from (its folder's name carries the part's content
    key)."""
    files = getattr(ds, "cache_files", None) or []
    if not files:
        raise DataError(
            f"mix part {part!r} was not loaded from the corpus cache; load it with "
            "load_training_corpus"
        )
    return Path(files[0]["filename"]).parent.parent.name


def _mix(spec: str, data_dir, languages, passage: str, rebuild: bool, num_proc):
    """A mix of corpora (see the module docstring): each part in the requested languages it has.

    The mix is itself a cache entry (``<cache>/corpora/mix-<key>/``, key = the parts' entries, which
    carry their content keys, the languages kept and the passage unit), written once as Arrow and
    memory-mapped: the ranks of a torchrun job and the runs of a grid share its pages instead of
    each holding a copy."""
    import pyarrow.compute as pc

    parts, loaded = corpus_parts(spec), []
    wanted = list(languages) if languages is not None else None
    covered: set[str] = set()
    for part in parts:
        has = corpus_languages(part)
        langs = wanted if wanted is None or has is None else [l for l in wanted if l in has]
        if langs is not None and not langs:
            raise DataError(
                f"corpus {spec!r}: part {part!r} has none of the languages {wanted} (it has "
                f"{', '.join(has)}); leave it out of the mix"
            )
        keep = None
        if has is None and wanted is not None:  # a file: keep the languages it has
            ds, keep = (
                load_training_corpus(part, data_dir, None, passage, rebuild, num_proc),
                sorted(set(wanted)),
            )
        else:
            ds = load_training_corpus(part, data_dir, langs, passage, rebuild, num_proc)
        lang = ds.data.column("lang")
        present = set(pc.unique(lang).to_pylist()) & (
            set(keep) if keep else set(pc.unique(lang).to_pylist())
        )
        if not present:
            raise DataError(f"corpus {spec!r}: part {part!r} has no rows in the languages {wanted}")
        covered |= present
        loaded.append((part, part_name(part), ds, keep))
    if wanted is not None and set(wanted) - covered:
        raise DataError(
            f"corpus {spec!r}: no part has rows in {sorted(set(wanted) - covered)}; add a corpus "
            "that has them"
        )
    options = {
        "parts": [[name, _entry(ds, part), keep] for part, name, ds, keep in loaded],
        "passage": passage,
        "version": MIX_VERSION,
    }

    def build(tmp: Path) -> pd.DataFrame:
        import datasets

        out, stats = [], []
        for i, (part, name, ds, keep) in enumerate(loaded):
            ds = ds.select_columns(
                [
                    c
                    for c in ("group", "lang", "query", "passage", "answer_key")
                    if c in ds.column_names
                ]
            )

            def prefix(batch, name=name, keep=set(keep or ())):
                rows = [j for j, l in enumerate(batch["lang"]) if not keep or l in keep]
                return {
                    **{
                        c: [batch[c][j] for j in rows]
                        for c in batch
                        if c not in ("group", "answer_key")
                    },
                    "group": [
                        g if g.startswith(name + "/") else f"{name}/{g}"
                        for g in (batch["group"][j] for j in rows)
                    ],
                    "answer_key": [f"{name}/{batch['answer_key'][j]}" for j in rows],
                    CORPUS_COLUMN: [name] * len(rows),
                }

            features = datasets.Features(
                {c: datasets.Value("string") for c in [*ds.column_names, CORPUS_COLUMN]}
            )
            (tmp / "_parts").mkdir(parents=True, exist_ok=True)
            ds = ds.map(
                prefix,
                batched=True,
                batch_size=10_000,
                features=features,
                desc=f"mix: {name}",
                cache_file_name=str(tmp / "_parts" / f"{i}.arrow"),
            )
            out.append(ds.select_columns(list(features)))
            counts = pc.value_counts(ds.data.column("lang")).to_pylist()
            stats += [
                {
                    "corpus": name,
                    "lang": c["values"],
                    "rows": c["counts"],
                    "entry": options["parts"][i][1],
                }
                for c in sorted(counts, key=lambda c: c["values"])
            ]
        mixed = datasets.concatenate_datasets(out)
        mixed.save_to_disk(str(tmp / "dataset"), max_shard_size="500MB")
        del mixed, out
        import shutil

        shutil.rmtree(tmp / "_parts", ignore_errors=True)
        return pd.DataFrame(stats)

    folder = cached_corpus("mix", [], options, build, rebuild)
    return load_cached(folder)


#: validation corpora a profile's ``val_corpus`` may name (besides ``held-out`` groups and a pairs
#: file)
VAL_CORPORA = ("held-out", "squadshifts")


def validation_pairs(val_corpus: str, data_dir: str | os.PathLike | None = None):
    """The validation pairs of a run: None for ``held-out`` (groups of the training pairs, split off
    by the trainer), SQuADShifts' English pairs for ``squadshifts`` (the paper's early-stopping set,
    :func:`hbkit.data.releases.squadshifts.squadshifts_pairs`), or a pairs file."""
    if val_corpus == "held-out":
        return None
    if val_corpus == "squadshifts":
        return squadshifts_pairs(data_dir)
    if not Path(str(val_corpus)).suffix:
        raise DataError(
            f"val_corpus={val_corpus!r}: use one of {', '.join(VAL_CORPORA)} or a "
            ".jsonl/.csv/.parquet file of pairs"
        )
    return load_training_corpus(val_corpus, data_dir)


def training_pairs(
    corpus: str, data_dir: str | os.PathLike | None = None, languages: Iterable[str] | None = None
):
    """The training pairs of a run: ``xquad-train`` as :func:`hbkit.data.benchmarks.parallel_pairs`
    (the pairs every earlier run was trained and fingerprinted on), any other corpus name or pairs
    file through :func:`load_training_corpus`. ``hbkit train`` and ``hbkit compare`` both read their
    pairs here."""
    if corpus == "xquad-train":
        return parallel_pairs(languages=languages, data_dir=data_dir)
    return load_training_corpus(corpus, data_dir, languages=languages)


def build_corpus(
    name: str,
    src_dir: str | os.PathLike | None = None,
    languages: Iterable[str] | None = None,
    passage: str = "sentence",
    rebuild: bool = False,
    num_proc: int | None = None,
):
    """Build (or reuse) a named corpus's cache; return ``(cache folder, stats DataFrame)``.

    The stats table has one row per language plus ``all``: ``rows``, ``skipped`` and one ``skipped:
    <reason>`` column per skip reason, ``rows in single-language groups`` and the source ``file``;
    it is what ``hbkit data build NAME --dir FOLDER`` prints."""
    if name == "squad-translate-train":
        _, folder = squad_translate_train(src_dir, languages, passage, rebuild, num_proc)
    elif name == "xquad-train":
        _, folder = xquad_train(src_dir, languages, passage, rebuild)
    else:
        raise DataError(
            f"unknown corpus {name!r}; `hbkit data build` builds squad-translate-train or "
            "xquad-train (mmarco is built when a run first reads it)"
        )
    return folder, pd.read_csv(folder / "stats.csv")
