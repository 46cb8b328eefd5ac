"""Representation alignment of parallel texts: how close translations are in embedding space.

:func:`alignment` gives the measures per ordered language pair and their macro average (one number
per model and benchmark); :func:`alignment_per_group` gives them per parallel item (group), the unit
that :func:`hbkit.analysis.stats.alignment_effects` resamples and sign-flips;
:func:`language_knn_purity` measures language clustering. All take L2-normalised embeddings ``E``
(one row per text) with the text's language and group (translations share a group).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd
import torch

#: the per-group measures of :func:`alignment_per_group` (``lang_knn_purity``: lower is better)
GROUP_METRICS = ("cos_gap", "translation_p@1", "lang_knn_purity")


def _pair_terms(E: np.ndarray, langs: np.ndarray, gidx: np.ndarray):
    """The one computation behind :func:`alignment` and :func:`alignment_per_group`, in float64: for
    each ordered language pair (X, Y), the texts of X whose group has a text in Y, as ``(x, y, rows,
    par, other, hit)``: ``rows`` their indices in ``E``, ``par`` the cosine to their translation in
    Y, ``other`` the mean cosine to the texts of Y that are not their translation (NaN when Y holds
    no other text), ``hit`` whether the translation is the nearest text of Y (``argmax``: on exact
    ties the first text of Y in input order wins)."""
    by_lang = {l: np.flatnonzero(langs == l) for l in sorted(set(langs))}
    for x, ix in by_lang.items():
        for y, iy in by_lang.items():
            if x == y:
                continue
            pos = {g: j for j, g in enumerate(gidx[iy])}
            a = np.array([i for i, g in enumerate(gidx[ix]) if g in pos], dtype=int)
            if not len(a):
                continue
            b = np.array([pos[g] for g in gidx[ix][a]], dtype=int)
            S = E[ix[a]].astype(np.float64) @ E[iy].T.astype(np.float64)  # (pairs, |Y|)
            par = S[np.arange(len(a)), b]
            other = (S.sum(1) - par) / (len(iy) - 1) if len(iy) > 1 else np.full(len(a), np.nan)
            yield x, y, ix[a], par, other, (S.argmax(1) == b).astype(float)


def alignment(
    E: np.ndarray,
    langs: Sequence[str],
    groups: Sequence[str],
    name: str = "",
    uniform_sample: int = 4000,
    seed: int = 0,
) -> pd.DataFrame:
    """Alignment measures of normalised embeddings ``E`` of parallel texts (``groups`` shared by
    translations).

    Per ordered language pair (X, Y), over the texts of X with a translation in Y: ``cos_parallel``
    (mean cosine to the translation), ``cos_nonparallel`` (mean over those texts of their mean
    cosine to the other texts of Y), ``cos_gap`` (their difference), ``align`` (Wang & Isola:
    E||f(x)-f(y)||² over parallel pairs), ``translation_p@1`` (is the translation the nearest
    neighbour among all texts in Y). The same per-text terms as :func:`alignment_per_group`
    (:func:`_pair_terms`), so the report and the verdicts read one computation: with every group in
    every language the macro over groups there equals the ``all`` row here. Overall: ``uniform``
    (log E exp(-2||f(x)-f(y)||²) over a seeded sample of pairs) and ``lang_knn_purity`` /
    ``lang_knn_expected`` (k=10). Tidy rows ``benchmark, qlang, dlang, metric, value, n`` (macro
    over pairs as ``all``/``all``).
    """
    E = np.asarray(E, dtype=np.float32)
    langs = np.asarray(langs).astype(str)
    _, gidx = np.unique(np.asarray(groups).astype(str), return_inverse=True)
    rows = []
    for x, y, _, par, other, hit in _pair_terms(E, langs, gidx):
        vals = [
            ("cos_parallel", par.mean()),
            ("cos_nonparallel", other.mean()),
            ("cos_gap", (par - other).mean()),
            ("align", np.mean(2 - 2 * par)),
            ("translation_p@1", hit.mean()),
        ]
        for m, v in vals:
            if np.isfinite(v):  # Y holding one text only: no non-parallel cosine, no gap
                rows.append(
                    {
                        "benchmark": name,
                        "qlang": x,
                        "dlang": y,
                        "metric": m,
                        "value": float(v),
                        "n": len(par),
                    }
                )
    df = pd.DataFrame(rows, columns=["benchmark", "qlang", "dlang", "metric", "value", "n"])
    if len(df):
        macro = (
            df.groupby(["benchmark", "metric"], sort=False)
            .agg(value=("value", "mean"), n=("n", "sum"))
            .reset_index()
        )
        df = pd.concat([df, macro.assign(qlang="all", dlang="all")[df.columns]], ignore_index=True)
    rng = np.random.default_rng(seed)
    i = rng.integers(0, len(E), uniform_sample)
    j = rng.integers(0, len(E), uniform_sample)
    keep = i != j
    d2 = ((E[i[keep]] - E[j[keep]]) ** 2).sum(1)
    extra = [("uniform", float(np.log(np.mean(np.exp(-2 * d2)))), int(keep.sum()))]
    pur, exp = language_knn_purity(E, langs)
    extra += [("lang_knn_purity", pur, len(E)), ("lang_knn_expected", exp, len(E))]
    df = pd.concat(
        [
            df,
            pd.DataFrame(
                [
                    {
                        "benchmark": name,
                        "qlang": "all",
                        "dlang": "all",
                        "metric": m,
                        "value": v,
                        "n": n,
                    }
                    for m, v, n in extra
                ]
            ),
        ],
        ignore_index=True,
    )
    return df


def _same_lang_share(
    E: np.ndarray, langs: np.ndarray, k: int = 10, chunk: int = 1024
) -> np.ndarray:
    """Per text: the share of its ``k`` nearest neighbours by inner product (itself excluded, ``k``
    capped at ``N - 1``) whose language is its own."""
    codes = {l: i for i, l in enumerate(sorted(set(langs)))}
    lc = torch.tensor([codes[l] for l in langs])
    Et = torch.from_numpy(np.ascontiguousarray(E, dtype=np.float32))
    k = min(k, len(E) - 1)
    same = []
    for s in range(0, len(E), chunk):
        S = Et[s : s + chunk] @ Et.T
        S[torch.arange(S.shape[0]), torch.arange(s, s + S.shape[0])] = -torch.inf
        top = S.topk(k, dim=1).indices
        same.append((lc[top] == lc[s : s + chunk].unsqueeze(1)).float().mean(1))
    return torch.cat(same).numpy()


def language_knn_purity(
    E: np.ndarray, langs: Sequence[str], k: int = 10, chunk: int = 1024
) -> tuple[float, float]:
    """Share of each text's k nearest neighbours (itself excluded) in its own language, and the
    share expected if languages were mixed at random (``(n_lang - 1) / (N - 1)`` averaged over
    texts). Lower purity = less language clustering."""
    langs = np.asarray(langs)
    counts = pd.Series(langs).value_counts()
    expected = float(np.mean([(counts[l] - 1) / (len(E) - 1) for l in langs]))
    return float(torch.from_numpy(_same_lang_share(E, langs, k, chunk)).mean()), expected


def alignment_per_group(
    E: np.ndarray, langs: Sequence[str], groups: Sequence[str], k: int = 10
) -> pd.DataFrame:
    """The alignment measures of :data:`GROUP_METRICS` per parallel item: a tidy frame ``group,
    metric, value``.

    For a group g with texts ``x_g`` in languages L_g (one text per language; ``S = E E^T``, cosines
    since ``E`` is normalised), over its ordered pairs (X, Y), X != Y both in L_g:

    * ``cos_gap`` = mean over pairs of ``S[x_gX, x_gY] - mean_{y in Y, group(y) != g} S[x_gX, y]``:
      the cosine of the translation minus the mean cosine to the texts of language Y that are not
      its translation (a pair whose language Y holds no other text is left out);
    * ``translation_p@1`` = share of pairs whose translation ``x_gY`` is the nearest text of
      language Y to ``x_gX`` (``argmax``, as :func:`alignment`: on exact ties the first text of Y in
      input order wins);
    * ``lang_knn_purity`` = mean over the group's texts of the share of their ``k`` nearest
      neighbours among all texts (itself excluded) in the same language; lower = less language
      clustering.

    Both come from the per-text terms :func:`alignment` reads too (:func:`_pair_terms`): the macro
    over groups of ``cos_gap`` and ``translation_p@1`` equals its ``all`` row when every group has
    the same languages. A measure undefined for a group (one language only: no pair) yields no row;
    ``attrs["undefined"]`` counts those (metric -> groups). Raises ``ValueError`` for mismatched
    lengths or a group holding two texts in one language.
    """
    E = np.asarray(E, dtype=np.float32)
    langs = np.asarray(langs).astype(str)
    groups = np.asarray(groups).astype(str)
    if E.ndim != 2 or not len(E) == len(langs) == len(groups):
        raise ValueError(
            f"alignment_per_group: E ({E.shape}), langs ({len(langs)}) and groups ({len(groups)}) "
            "must have one row per text"
        )
    if k < 1:
        raise ValueError(f"alignment_per_group: k={k}; use k >= 1")
    if len(E) < 2:
        raise ValueError("alignment_per_group: needs at least two texts")
    dup = pd.DataFrame({"g": groups, "l": langs}).duplicated()
    if dup.any():
        i = int(np.flatnonzero(dup)[0])
        raise ValueError(
            f"alignment_per_group: group {groups[i]!r} has two texts in language {langs[i]!r}; "
            "a group holds one text per language (deduplicate first)"
        )
    uniq, gidx = np.unique(groups, return_inverse=True)
    G = len(uniq)
    gap_sum, gap_n = np.zeros(G), np.zeros(G)
    hit_sum, hit_n = np.zeros(G), np.zeros(G)
    for _, _, rows, par, other, hit in _pair_terms(E, langs, gidx):
        g = gidx[rows]
        np.add.at(hit_sum, g, hit)
        np.add.at(hit_n, g, 1.0)
        if np.isfinite(other).all():
            np.add.at(gap_sum, g, par - other)
            np.add.at(gap_n, g, 1.0)
    pur = _same_lang_share(E, langs, k).astype(np.float64)
    pur_g = np.bincount(gidx, weights=pur, minlength=G) / np.bincount(gidx, minlength=G)
    parts = []
    undefined = {}
    for metric, s, n in (("cos_gap", gap_sum, gap_n), ("translation_p@1", hit_sum, hit_n)):
        ok = n > 0
        undefined[metric] = int((~ok).sum())
        parts.append(pd.DataFrame({"group": uniq[ok], "metric": metric, "value": s[ok] / n[ok]}))
    parts.append(pd.DataFrame({"group": uniq, "metric": "lang_knn_purity", "value": pur_g}))
    undefined["lang_knn_purity"] = 0
    out = pd.concat(parts, ignore_index=True)
    out.attrs["undefined"] = undefined
    return out
