"""Zero-shot separation: normalised-text overlap between training pairs and benchmarks."""

from __future__ import annotations

import sys
import unicodedata
import warnings
from functools import lru_cache
from typing import Iterator

import numpy as np
import pandas as pd

from hbkit.data.registry import DataError
from hbkit.data.retrieval_benchmark import RetrievalBenchmark


class ZeroShotError(DataError):
    """Training questions also occur in an evaluation benchmark: the evaluation would not be
    zero-shot."""


# --------------------------------------------------------------------------------------------------
# zero-shot separation
# --------------------------------------------------------------------------------------------------
@lru_cache(maxsize=1)
def _punct_table() -> dict[int, None]:
    return {
        i: None for i in range(sys.maxunicode + 1) if unicodedata.category(chr(i)).startswith("P")
    }


def normalize_text(text: str) -> str:
    """``NFKC``, casefold, every Unicode punctuation character (category P*) removed, whitespace
    collapsed to single spaces and stripped: the form in which two texts count as a normalised
    overlap."""
    return " ".join(
        unicodedata.normalize("NFKC", text).casefold().translate(_punct_table()).split()
    )


def _hashes(texts) -> np.ndarray:
    return pd.util.hash_array(np.asarray(texts, dtype=object), categorize=False)


def _column_chunks(train, column: str, chunk: int = 200_000) -> Iterator[list[str]]:
    """The texts of one column in chunks; only that column is read from the memory map."""
    col = train.select_columns([column])
    for s in range(0, len(col), chunk):
        yield col[s : s + chunk][column]


def overlap_counts(
    train, benchmarks: dict[str, RetrievalBenchmark], examples: int = 3
) -> pd.DataFrame:
    """Overlap between a training corpus and each benchmark, exact and after :func:`normalize_text`.

    One row per (benchmark, field, match): ``field`` is ``query`` (training queries vs the
    benchmark's queries) or ``passage`` (training passages vs its candidates); ``match`` is
    ``exact`` or ``normalised``. ``bench_items`` = the benchmark's distinct texts, ``bench_matched``
    = how many of them occur in training, ``train_rows_matched`` = training rows whose text is one
    of them, ``examples`` = up to ``examples`` matched benchmark texts. ``known_in_domain`` is true
    for ``xquad-train`` (by the ``source`` column) against ``xquad-r`` / ``xquad-r-eval``: same
    articles' domain, not a zero-shot evaluation. Memory: the training texts are hashed (64-bit) in
    chunks; only the benchmarks' texts are kept.
    """
    if not isinstance(benchmarks, dict) or not all(
        isinstance(b, RetrievalBenchmark) for b in benchmarks.values()
    ):
        raise DataError(
            "benchmarks must be a dict {name: RetrievalBenchmark} "
            "(hbkit.data.benchmarks.load_benchmark)"
        )
    for c in ("query", "passage"):
        if c not in train.column_names:
            raise DataError(
                f"the training corpus has no column {c!r} (columns: {train.column_names})"
            )
    sources = set(train.unique("source")) if "source" in train.column_names else set()
    bench_sets = {}
    for bname, b in benchmarks.items():
        for field, texts in (("query", b.queries["text"]), ("passage", b.candidates["text"])):
            uniq = pd.unique(texts.astype(str))
            norm = np.array([normalize_text(t) for t in uniq], dtype=object)
            bench_sets[(bname, field)] = (uniq, _hashes(uniq), norm, _hashes(norm))
    hit = {
        k: (np.zeros(len(v[0]), bool), np.zeros(len(v[0]), bool), [0], [0])
        for k, v in bench_sets.items()
    }
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
        for match, mask, n, shown in (
            ("exact", ex, n_ex[0], uniq),
            ("normalised", nm, n_nm[0], uniq),
        ):
            rows.append(
                {
                    "benchmark": bname,
                    "field": field,
                    "match": match,
                    "bench_items": len(uniq),
                    "bench_matched": int(mask.sum()),
                    "train_rows_matched": n,
                    "examples": list(shown[mask][:examples]),
                    "known_in_domain": in_domain,
                }
            )
    return pd.DataFrame(rows)


def check_zero_shot(counts: pd.DataFrame, force: bool = False) -> None:
    """Raise :class:`ZeroShotError` when a benchmark's QUESTIONS occur in training (exact or
    normalised), naming the benchmark, the count and examples; with ``force=True`` warn instead. A
    benchmark labelled ``known_in_domain`` without question overlap only warns that it is in-domain,
    not zero-shot. Passage overlaps (the same Wikipedia sentences) are reported by
    :func:`overlap_counts` but never refused."""
    bad = counts[(counts["field"] == "query") & (counts["bench_matched"] > 0)]
    keys = ["corpus", "benchmark"] if "corpus" in counts.columns else ["benchmark"]
    for key, g in bad.groupby(keys, sort=True):
        bname = key[-1] if isinstance(key, tuple) else key
        part = f" (from the part {key[0]!r} of the training mix)" if len(keys) == 2 else ""
        by = g.set_index("match")
        n_ex = int(by["bench_matched"].get("exact", 0))
        n_nm = int(by["bench_matched"].get("normalised", 0))
        r = g.sort_values("bench_matched", ascending=False).iloc[0]
        msg = (
            f"{bname}: {n_ex} of its {r['bench_items']} questions occur in the training "
            f"corpus{part} verbatim and {n_nm} after normalisation (e.g. {r['examples']}): the "
            "evaluation is not zero-shot. Train on a corpus disjoint from it (xquad-train pairs "
            "with xquad-r-eval), or accept the overlap with allow_overlap=True / --allow-overlap "
            "(hbkit compare)"
        )
        if not force:
            raise ZeroShotError(msg)
        warnings.warn(msg, stacklevel=2)
    for bname in sorted(
        set(counts.loc[counts["known_in_domain"], "benchmark"]) - set(bad["benchmark"])
    ):
        warnings.warn(
            f"{bname}: the training corpus is from the same release (xquad-train); no question "
            "overlaps, but the evaluation is in-domain, not zero-shot",
            stacklevel=2,
        )
