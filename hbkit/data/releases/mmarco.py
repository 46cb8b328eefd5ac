"""mMARCO (Bonifacio et al., 2021): MS MARCO passage ranking machine-translated into 13 languages,
as parallel training pairs: one group per MS MARCO training query, its translations joined by query
id, the positive passage's translations joined by passage id.

The release is the hub dataset ``unicamp-dl/mmarco`` (:data:`hbkit.data.sources.HUB_SOURCES`
``["mmarco"]``; its files as its loading script and ``ir_datasets`` read them: UTF-8, tab-separated,
no header, ids shared by every language). Layout under a data folder, the hub repository's own::

    mmarco/data/triples.train.ids.small.tsv
        qid, positive pid, negative pid (39,780,811 rows)
    mmarco/data/google/queries/train/<language>_queries.train.tsv
        qid, text (808,731 rows)
    mmarco/data/google/collections/<language>_collection.tsv
        pid, text (8,841,823 rows)

``<language>`` is mMARCO's name (``english``, ``arabic``, ``chinese``, ...;
:data:`hbkit.data.sources.MMARCO_LANGS`). The files of one language come in their own order
(German's queries start at another id than Arabic's), so everything is joined by id, never by line.

The build streams each file once and keeps only what the subsample needs: the queries of the
training triples (each with its first positive passage), a seeded sample of ``queries`` of them
(seed 0: the same for every model), and per language those queries' and passages' texts, through
:mod:`hbkit.data.textfile` (a byte-order mark stripped, a non-UTF-8 byte named by line and column).
Queries a language lacks (a query id or passage id absent from its files, an empty text) are skipped
and counted per language and reason (``stats.csv``'s ``skipped``). Lines of the files passed over (a
cut last line, a line without a tab, an id seen twice, whose first text is kept) are counted apart,
as lines (``lines: ...`` columns), since they cost no query unless a query is counted too. An empty
file, or a language none of whose sampled queries is found (ids with spaces, another release's
file), is an error naming the file.
"""

from __future__ import annotations

import logging
import os
from collections import Counter
from pathlib import Path
from typing import Iterable

import numpy as np
import pandas as pd

from hbkit.core.env import offline
from hbkit.data.corpus_cache import cached_corpus, load_cached, save_table
from hbkit.data.fetch import PROJECT_DATA, fetch_hub_file, hub_revision, locate_folder
from hbkit.data.registry import DataError
from hbkit.data.releases.translate_train import check_corpus_languages, stats_frame
from hbkit.data.sources import HUB_SOURCES, MMARCO_LANGS
from hbkit.data.textfile import first_id, id_texts, tsv_columns

log = logging.getLogger(__name__)


#: MS MARCO training queries kept when the spec names no size (``mmarco`` = ``mmarco:100000``)
DEFAULT_QUERIES = 100_000


#: bumped when the builder writes other rows from the same files
BUILDER_VERSION = 2  # 2: a byte-order mark stripped, a duplicated id's first text kept


FOLDER = "mmarco"


TRIPLES, QUERIES, COLLECTION = HUB_SOURCES["mmarco"]["files"]


def mmarco_files(root: Path, languages: Iterable[str]) -> dict[str, Path]:
    """``{"triples": path, "queries-<lang>": path, "collection-<lang>": path, ...}`` under ``root``
    (the folder that holds the hub repository's ``data/``)."""
    out = {"triples": root / TRIPLES}
    for l in languages:
        out[f"queries-{l}"] = root / QUERIES.format(name=MMARCO_LANGS[l])
        out[f"collection-{l}"] = root / COLLECTION.format(name=MMARCO_LANGS[l])
    return out


def mmarco_dir(
    data_dir: str | os.PathLike | None = None,
    languages: Iterable[str] | None = None,
    download_missing: bool | None = None,
) -> Path:
    """The folder holding mMARCO's files for ``languages``: ``data_dir`` itself or its ``mmarco/``,
    else ``$HBKIT_DATA_DIR/mmarco``, else the project's ``data/mmarco``, else a download from the
    hub (unless offline). A folder a user named that lacks a file is an error naming it."""
    langs = check_corpus_languages(languages, sorted(MMARCO_LANGS), "mmarco")
    files = [p.relative_to(".").as_posix() for p in mmarco_files(Path("."), langs).values()]
    return locate_folder(
        FOLDER,
        files,
        data_dir,
        "mMARCO",
        f"hbkit data download mmarco --data-dir {{root}} --languages {','.join(langs)}",
        lambda dest: download_mmarco(dest, langs),
        download_missing,
    )


def download_mmarco(
    dest: str | os.PathLike = PROJECT_DATA / FOLDER, languages: Iterable[str] | None = None
) -> Path:
    """Download mMARCO's training triples and the train queries and collection of ``languages`` from
    the hub (:func:`hbkit.data.fetch.fetch_hub_file`, at the pinned revision;
    ``HBKIT_MMARCO_REVISION`` picks another) into ``dest``, in the hub repository's layout. A file
    already there with its registry size is kept. Note the sizes: a collection is 2.7-7.6 GB per
    language."""
    dest = Path(dest)
    if offline():
        raise DataError(
            "cannot download mMARCO while offline (HF_HUB_OFFLINE/HBKIT_OFFLINE is set): unset "
            f"it, or place the release files in {dest}"
        )
    langs = check_corpus_languages(languages, sorted(MMARCO_LANGS), "mmarco")
    sizes = HUB_SOURCES["mmarco"].get("sizes", {})
    for key, path in mmarco_files(dest, langs).items():
        rel = path.relative_to(dest).as_posix()
        if path.is_file() and (rel not in sizes or path.stat().st_size == sizes[rel]):
            continue
        log.info("downloading %s from %s", rel, HUB_SOURCES["mmarco"]["repo"])
        if not fetch_hub_file("mmarco", rel, dest):
            raise DataError(
                f"the hub's {HUB_SOURCES['mmarco']['repo']} at revision {hub_revision('mmarco')} "
                f"has no {rel}; set {HUB_SOURCES['mmarco']['env']}=main for its newest files"
            )
        if rel in sizes and path.stat().st_size != sizes[rel]:
            got = path.stat().st_size
            path.unlink()
            raise DataError(
                f"{rel}: got {got:,} bytes, the release has {sizes[rel]:,}; the download is "
                "corrupt or the upstream file changed; retry, or place the files yourself and set "
                "HBKIT_DATA_DIR"
            )
    return dest


def _sample_queries(path: Path, queries: int) -> tuple[dict[str, str], int]:
    """``{qid: first positive pid}`` of a seeded sample of ``queries`` training queries (seed 0),
    and how many the triples hold. Lines that are not triples are counted and said in the log. The
    39.8M lines are read in blocks of Arrow columns (:func:`hbkit.data.textfile.tsv_columns`); each
    block's new query ids, with the positive of their first line, are added to the ids seen, all in
    Arrow."""
    import pyarrow as pa
    import pyarrow.compute as pc

    problems: Counter = Counter()
    seen_q, seen_p = pa.array([], pa.large_string()), pa.array([], pa.large_string())
    for qid, pos, _ in tsv_columns(path, 3, problems, "mMARCO triples file", progress=True):
        # its dictionary: the block's ids in the order they first appear
        enc = pc.dictionary_encode(qid)
        _, first_line = np.unique(enc.indices.to_numpy(), return_index=True)
        new = pc.invert(pc.is_in(enc.dictionary, value_set=seen_q))
        seen_q = pa.concat_arrays([seen_q, enc.dictionary.filter(new)])
        seen_p = pa.concat_arrays([seen_p, pos.take(pa.array(first_line)).filter(new)])
    first = dict(zip(seen_q.to_pylist(), seen_p.to_pylist()))
    if not first:
        raise DataError(
            f"{path}: no training triple (qid, positive pid, negative pid) read "
            f"({path.stat().st_size} bytes); is it the mMARCO file? Re-download it"
        )
    if problems:
        log.warning("%s: %d lines skipped (%s)", path, sum(problems.values()), dict(problems))
    qids = sorted(first)
    if queries < len(qids):
        qids = sorted(np.random.default_rng(0).choice(qids, size=queries, replace=False).tolist())
    return {q: first[q] for q in qids}, len(first)


def _texts(path: Path, wanted: set[str], lines: Counter, what: str) -> dict[str, str]:
    """``{id: text}`` of the ``wanted`` ids of one language's file; an empty file is an error naming
    it, and the file's line problems (a cut last line, a line without a tab, an id seen twice) are
    added to ``lines``."""
    if path.stat().st_size == 0:
        raise DataError(
            f"{path}: the mMARCO {what} file is empty (0 bytes); re-download it "
            f"(hbkit data download mmarco) or leave its language out"
        )
    problems: Counter = Counter()
    out = id_texts(path, wanted, problems, f"mMARCO {what} file", progress=True)
    for reason, n in problems.items():
        lines[f"{what}: {reason}"] += n
    if not out and wanted:
        found = first_id(path, f"mMARCO {what} file")
        hint = (
            f"; its ids carry spaces ({found!r}), the release's are bare numbers: remove them"
            if found is not None and found != found.strip()
            else f"; its first id is {found!r}, the triples' are like {min(wanted)!r}: is it the "
            "file of this release?"
        )
        raise DataError(
            f"{path}: none of the {len(wanted):,} {what} ids the sample needs is in the file{hint}"
        )
    return out


def _build(tmp: Path, files: dict[str, Path], langs: list[str], queries: int) -> pd.DataFrame:
    """The rows, as Arrow tables (one per language, sorted by group; the languages in order), saved
    without a pandas frame between."""
    import pyarrow as pa
    import pyarrow.compute as pc

    chosen, total = _sample_queries(files["triples"], queries)
    log.info("mMARCO: %d of %d training queries kept", len(chosen), total)
    pids = set(chosen.values())
    tables, stats = [], []
    for l in sorted(langs):
        skipped: Counter = Counter()  # queries left out, by reason
        # lines of the files passed over, by file and reason (not queries)
        lines: Counter = Counter()
        qtext = _texts(files[f"queries-{l}"], set(chosen), lines, "queries")
        ptext = _texts(files[f"collection-{l}"], pids, lines, "collection")
        cols: dict[str, list] = {"group": [], "query": [], "passage": [], "answer_key": []}
        for qid, pid in chosen.items():
            q, p = qtext.get(qid), ptext.get(pid)
            if q is None or p is None:
                skipped["query id absent" if q is None else "passage id absent"] += 1
            elif not q or not p:
                skipped["empty text"] += 1
            else:
                cols["group"].append(f"mmarco/{qid}")
                cols["query"].append(q)
                cols["passage"].append(p)
                cols["answer_key"].append(f"mmarco:{pid}")
        del qtext, ptext
        n = len(cols["group"])
        if not n:
            raise DataError(
                f"mMARCO {l}: no usable query ({dict(skipped)}) in {files[f'queries-{l}']} and "
                f"{files[f'collection-{l}']}; re-download them or leave {l!r} out of the languages"
            )
        t = pa.table(
            {
                "group": pa.array(cols.pop("group"), pa.string()),
                "lang": pa.array([l] * n, pa.string()),
                **{
                    k: pa.array(cols.pop(k), pa.string())
                    for k in ("query", "passage", "answer_key")
                },
                "source": pa.array(["mmarco"] * n, pa.string()),
            }
        )
        tables.append(t.sort_by([("group", "ascending")]))
        stats.append(
            {
                "lang": l,
                "rows": n,
                "skipped": dict(skipped),
                "lines": dict(lines),
                "file": str(files[f"queries-{l}"]),
            }
        )
        if skipped:
            log.warning(
                "mMARCO %s: %d queries skipped (%s)", l, sum(skipped.values()), dict(skipped)
            )
        if lines:
            log.warning(
                "mMARCO %s: lines passed over in its files (%s); no query was lost to them unless "
                "counted above",
                l,
                dict(lines),
            )
    table = pa.concat_tables(tables)
    del tables
    save_table(tmp, table)
    counts = pc.value_counts(table.column("group"))  # groups in one language only, per language
    values, n = counts.field("values"), counts.field("counts")
    single = pc.is_in(table.column("group"), value_set=values.filter(pc.equal(n, 1)))
    per_lang = pc.value_counts(table.column("lang").filter(single)).to_pylist()
    return stats_frame(stats, {c["values"]: c["counts"] for c in per_lang})


def parse_size(spec: str) -> int:
    """The query count of an ``mmarco[:N]`` spec (``N`` may use ``_`` or ``k``/``m``: ``200k``)."""
    name, _, size = spec.partition(":")
    if not size:
        return DEFAULT_QUERIES
    mult = {"k": 1000, "m": 1000_000}.get(size[-1].lower(), 1)
    try:
        n = int(size.rstrip("kKmM").replace("_", "")) * mult
    except ValueError:
        n = 0
    if n < 2:
        raise DataError(
            f"corpus {spec!r}: the size after 'mmarco:' must be a number of queries >= 2, e.g. "
            "mmarco:200000"
        )
    return n


def mmarco_pairs(
    data_dir: str | os.PathLike | None = None,
    languages: Iterable[str] | None = None,
    queries: int = DEFAULT_QUERIES,
    rebuild: bool = False,
):
    """mMARCO as parallel training pairs (a ``datasets.Dataset`` in the training-pairs contract),
    cached.

    * group ``mmarco/<qid>`` (one MS MARCO training query and its translations); lang; query;
      passage: the query's first positive passage in the training triples, in the same language;
    * ``answer_key`` ``mmarco:<pid>``: translations of one passage share it, so no batch holds a
      translation of a positive as a negative (queries with the same positive passage share it too);
    * ``queries``: how many training queries are kept (a seeded sample, seed 0), stated in the
      corpus spec (``mmarco:200000``); the paper used all 39.8M triples, far more than a 30,000-step
      run reads.
    """
    langs = check_corpus_languages(languages, sorted(MMARCO_LANGS), "mmarco")
    root = mmarco_dir(data_dir, langs)
    files = mmarco_files(root, langs)
    options = {"languages": sorted(langs), "queries": int(queries), "version": BUILDER_VERSION}
    folder = cached_corpus(
        "mmarco",
        list(files.values()),
        options,
        lambda tmp: _build(tmp, files, sorted(langs), int(queries)),
        rebuild,
    )
    return load_cached(folder)
