"""SQuADShifts (Miller et al., ICML 2020), the paper's early-stopping set: locate or download the
release, and build its English questions as (group, lang, query, passage, answer_key) pairs.

The release (modestyachts/squadshifts-website, ``datasets/``;
:data:`hbkit.data.sources.SQUADSHIFTS`) is four SQuAD v1.1-format test sets, one per domain:
``new_wiki_v1.0.json``, ``nyt_v1.0.json``, ``reddit_v1.0.json`` and ``amazon_reviews_v1.0.json``
(7,938 / 10,065 / 9,803 / 9,885 questions). Two differences from SQuAD: the version is ``"1.0"`` and
each article carries a ``split`` key naming its domain. Contexts keep their leading and trailing
whitespace here (the offsets count it; stripping, as the hub's loading script does, shifts them).

Layout, under a data folder (``data_dir``, ``$HBKIT_DATA_DIR`` or the project's ``data/``)::

    squadshifts/new_wiki_v1.0.json  nyt_v1.0.json  reddit_v1.0.json  amazon_reviews_v1.0.json

The arXiv 2408.10536 paper (§3.1, A.1) keeps the checkpoint with the lowest validation loss on
SQuADShifts; the ``paper`` profile does the same with ``val_corpus: squadshifts``.
"""

from __future__ import annotations

import logging
import os
from collections import Counter
from pathlib import Path
from typing import Iterable

import pandas as pd

from hbkit.core.env import offline
from hbkit.data.corpus_cache import cached_corpus, load_cached, save_frame
from hbkit.data.fetch import PROJECT_DATA, fetch_file, locate_folder
from hbkit.data.registry import DataError
from hbkit.data.releases.squad import squad_questions
from hbkit.data.releases.translate_train import answer_passage
from hbkit.data.sources import SQUADSHIFTS

log = logging.getLogger(__name__)


DOMAINS = tuple(SQUADSHIFTS["files"])


#: bumped when the builder writes other rows from the same files (2: groups carry their domain)
BUILDER_VERSION = 2


def check_domains(domains: Iterable[str] | str | None) -> list[str]:
    """The requested domains (default: all four; a string is a comma list), each known and given
    once."""
    if isinstance(domains, str):
        domains = [d.strip() for d in domains.split(",") if d.strip()]
    domains = list(domains or DOMAINS)
    for d in domains:
        if d not in DOMAINS:
            raise DataError(f"squadshifts has no domain {d!r}; it has {', '.join(DOMAINS)}")
    if len(set(domains)) != len(domains):
        raise DataError(f"squadshifts: a domain is given twice in {domains}; list each once")
    return domains


def squadshifts_dir(
    data_dir: str | os.PathLike | None = None,
    domains: Iterable[str] | None = None,
    download_missing: bool | None = None,
) -> Path:
    """The folder holding the SQuADShifts files of ``domains``: ``data_dir`` itself or its
    ``squadshifts/``, else ``$HBKIT_DATA_DIR/squadshifts``, else the project's ``data/squadshifts``,
    else a download (unless offline). A folder a user named that lacks a file is an error naming
    it."""
    domains = check_domains(domains)
    return locate_folder(
        SQUADSHIFTS["folder"],
        [SQUADSHIFTS["files"][d][0] for d in domains],
        data_dir,
        "SQuADShifts",
        "hbkit data download squadshifts --data-dir {root}",
        lambda dest: download_squadshifts(dest, domains),
        download_missing,
    )


def download_squadshifts(
    dest: str | os.PathLike = PROJECT_DATA / SQUADSHIFTS["folder"],
    domains: Iterable[str] | None = None,
) -> Path:
    """Download the SQuADShifts files of ``domains`` into ``dest`` from the authors' repository at
    its pinned commit, each verified by size and sha256 while streaming and written atomically
    (:func:`hbkit.data.fetch.fetch_file`). A file already there with the right size is kept."""
    dest = Path(dest)
    if offline():
        raise DataError(
            "cannot download SQuADShifts while offline (HF_HUB_OFFLINE/HBKIT_OFFLINE is set): "
            f"unset it, or place the release files in {dest}"
        )
    for d in check_domains(domains):
        name, size, sha, _ = SQUADSHIFTS["files"][d]
        if (dest / name).is_file() and (dest / name).stat().st_size == size:
            continue
        url = SQUADSHIFTS["url"].format(file=name)
        log.info("downloading %s", url)
        fetch_file(url, dest / name, size, sha)
    return dest


def _build(tmp: Path, files: dict[str, Path]) -> pd.DataFrame:
    cols = {
        c: []
        for c in ("group", "lang", "query", "passage", "answer_key", "source", "context", "article")
    }
    stats = []
    for domain, path in files.items():
        skipped: Counter = Counter()
        memo: dict[str, list] = {}
        n = 0
        for q in squad_questions(path, skipped, strict=False):
            passage, s = answer_passage(q.context, q.answer_start, "en", "sentence", memo)
            if not passage:
                skipped["empty answer sentence"] += 1
                continue
            for c, v in zip(
                cols,
                (
                    f"squadshifts/{domain}/{q.qid}",
                    "en",
                    q.text,
                    passage,
                    f"{domain}:{q.title}:{q.paragraph}:{s}",
                    "squadshifts",
                    q.context,
                    f"{domain}:{q.title}",
                ),
            ):
                cols[c].append(v)
            n += 1
        stats.append(
            {
                "domain": domain,
                "rows": n,
                "skipped": sum(skipped.values()),
                **{f"skipped: {k}": v for k, v in skipped.items()},
                "file": str(path),
            }
        )
        if skipped:
            log.warning(
                "squadshifts %s: %d questions skipped (%s)",
                domain,
                sum(skipped.values()),
                dict(skipped),
            )
    df = pd.DataFrame(cols).sort_values("group", kind="stable").reset_index(drop=True)
    save_frame(tmp, df)
    out = pd.DataFrame(stats).fillna(0)
    total = {
        "domain": "all",
        **{c: out[c].sum() for c in out.columns if c not in ("domain", "file")},
        "file": "",
    }
    return pd.concat([out, pd.DataFrame([total])], ignore_index=True)


def squadshifts_pairs(
    data_dir: str | os.PathLike | None = None,
    domains: Iterable[str] | None = None,
    rebuild: bool = False,
):
    """SQuADShifts' questions as English pairs (a ``datasets.Dataset`` in the training-pairs
    contract), cached.

    * group ``squadshifts/<domain>/<question id>``; lang ``en``; query: the question; passage: the
      sentence of the context that holds the first answer's ``answer_start``
      (:func:`hbkit.data.releases.squad.split_sentences`, as for SQuAD translate-train and MLQA-R);
    * ``answer_key`` ``"<domain>:<title>:<paragraph>:<sentence>"``, shared by questions answered by
      one sentence (so an X-X-mono validation batch never holds one's positive as another's
      negative);
    * questions the lenient SQuAD reader skips (no answer, offsets off, duplicate ids) are counted
      per domain and reason in the cache's ``stats.csv`` and the log.
    """
    domains = check_domains(domains)
    folder = squadshifts_dir(data_dir, domains)
    files = {d: folder / SQUADSHIFTS["files"][d][0] for d in domains}
    cache = cached_corpus(
        "squadshifts",
        list(files.values()),
        {"domains": domains, "version": BUILDER_VERSION},
        lambda tmp: _build(tmp, files),
        rebuild,
    )
    return load_cached(cache)
