"""Training-free fixes of language bias: an embedding transform estimated from training passages,
applied at evaluation time, beside the trained strategies.

* ``shift`` — SHIFT (arXiv 2606.18801, ``yjoonjang/SHIFT`` ``langvec.compute_language_vectors`` and
  ``apply.apply_language_shift``): for each language l other than the source, the relative language
  vector ``V_l = (1/N_l) sum_g (f(d_{g,l}) - f(d_{g,src}))`` over the N_l training groups g that
  have a passage in l and in the source language; each *candidate* embedding in l becomes ``z -
  V_l`` (alpha = 1, the authors' default); source-language candidates and queries are unchanged.
* ``center`` — language-wise centering (Libovický et al. 2020; SHIFT's ``baselines/centering.py``):
  each language's mean passage embedding ``mu_l`` over the training passages in l is subtracted from
  every candidate *and* every query in l (a query by its own language). Subtracting from candidates
  alone would move every candidate of a monolingual pool by one vector and change no ranking, which
  is why both sides are centered.

Both are estimated from the **training pairs' passages only** (:func:`estimate`), never from a
benchmark's pool, so the evaluation stays zero-shot. Scores stay inner products of unit vectors (the
transformed rows are normalised again), which is SHIFT's cosine scoring. A language with no
statistic (no training passage, or for ``shift`` no parallel passage in the source language) is left
unchanged, and :class:`FixStats` counts it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from hbkit.core.groups import sample_groups
from hbkit.core.vocab import FIXES

#: the language SHIFT shifts towards when the training passages have it (else the most frequent one)
SOURCE_LANGUAGE = "en"


@dataclass
class FixStats:
    """The per-language vectors of one fix for one model, and what they were estimated from.

    ``vectors[l]``: the vector subtracted from embeddings in language l; ``n[l]``: the training
    passages (``center``) or parallel passage pairs (``shift``) behind it; ``source``: SHIFT's
    source language (None for ``center``); ``uncovered``: the languages of the training passages
    without a vector (left unchanged)."""

    fix: str
    vectors: dict[str, np.ndarray]
    n: dict[str, int]
    source: str | None = None
    uncovered: list[str] = field(default_factory=list)

    def summary(self) -> dict:
        """A JSON-ready description (no vectors): the fix, its source language and the counts per
        language."""
        return {
            "fix": self.fix,
            "source": self.source,
            "n": {k: int(v) for k, v in sorted(self.n.items())},
            "uncovered": sorted(self.uncovered),
        }


def training_passages(pairs, max_groups: int | None = None, seed: int = 0) -> pd.DataFrame:
    """The distinct ``(group, lang, passage)`` rows of a training-pairs dataset (columns ``group``,
    ``lang``, ``passage``), from at most ``max_groups`` groups drawn with ``seed`` (all when None):
    the data every fix is estimated from."""
    group = np.asarray(pairs["group"]).astype(str)
    uniq = np.unique(group)
    if max_groups is not None and len(uniq) > max_groups:
        uniq = np.array(sorted(sample_groups(uniq, max_groups, seed)))
    rows = np.flatnonzero(np.isin(group, uniq))
    # or a datasets.Dataset
    sub = pairs.iloc[rows] if isinstance(pairs, pd.DataFrame) else pairs.select(rows)
    df = pd.DataFrame({c: np.asarray(sub[c]).astype(str) for c in ("group", "lang", "passage")})
    return df.drop_duplicates(["group", "lang"]).reset_index(drop=True)


def estimate(fix: str, P: np.ndarray, langs, groups) -> FixStats:
    """The statistics of ``fix`` from the embeddings ``P`` (n x d) of training passages with their
    ``langs`` and ``groups`` (rows of :func:`training_passages`).

    Examples:
        >>> st = estimate("shift", P, passages["lang"], passages["group"])          # doctest: +SKIP
        >>> qlang, clang = bench.queries["lang"], bench.candidates["lang"]  # doctest: +SKIP
        >>> Q2, C2 = transform(st, Q, qlang, C, clang)  # doctest: +SKIP
    """
    if fix not in FIXES:
        raise ValueError(f"fix {fix!r}: use one of {', '.join(FIXES)}")
    P = np.asarray(P, dtype=np.float64)
    langs, groups = np.asarray(langs).astype(str), np.asarray(groups).astype(str)
    if P.ndim != 2 or len(P) != len(langs) or len(langs) != len(groups):
        raise ValueError(
            f"estimate({fix!r}): P must be (n, d) with one lang and group per row; got P "
            f"{P.shape}, {len(langs)} langs, {len(groups)} groups"
        )
    present = sorted(set(langs))
    if fix == "center":
        vec = {l: P[langs == l].mean(0) for l in present}
        return FixStats(fix, vec, {l: int((langs == l).sum()) for l in present})
    src = (
        SOURCE_LANGUAGE
        if SOURCE_LANGUAGE in present
        else (pd.Series(langs).value_counts().sort_index().idxmax() if present else None)
    )
    src_row = {g: i for i, (g, l) in enumerate(zip(groups, langs)) if l == src}
    vec, n = {}, {}
    for l in present:
        if l == src:
            continue
        pairs = [
            (i, src_row[g])
            for i, (g, x) in enumerate(zip(groups, langs))
            if x == l and g in src_row
        ]
        if pairs:
            a, b = np.array(pairs).T
            vec[l], n[l] = (P[a] - P[b]).mean(0), len(pairs)
    return FixStats(fix, vec, n, src, [l for l in present if l != src and l not in vec])


def _apply(X: np.ndarray, langs, vectors: dict[str, np.ndarray]) -> np.ndarray:
    """Each row minus its language's vector (rows of other languages unchanged), normalised to unit
    length."""
    X = np.asarray(X, dtype=np.float32)
    langs = np.asarray(langs).astype(str)
    out = X.astype(np.float64, copy=True)
    for l, v in vectors.items():
        out[langs == l] -= v
    norm = np.linalg.norm(out, axis=1, keepdims=True)
    return (out / np.where(norm > 0, norm, 1.0)).astype(np.float32)


def transform(
    stats: FixStats, Q: np.ndarray, q_lang, C: np.ndarray, c_lang
) -> tuple[np.ndarray, np.ndarray]:
    """``(Q', C')``: query and candidate embeddings after the fix (module docstring): SHIFT moves
    candidates only, centering both. Rows stay aligned with their inputs and have unit length."""
    Qf = (
        _apply(Q, q_lang, stats.vectors)
        if stats.fix == "center"
        else np.asarray(Q, dtype=np.float32)
    )
    return Qf, _apply(C, c_lang, stats.vectors)
