"""Language bias in a pooled multilingual ranking, per query, as the field measures it since
LAReQA's rank distance.

Each measure takes the scores of queries over one multilingual pool (inner products, higher first),
the relevant candidates of each query and the candidates' languages. Each is checked against its
authors' code on small cases (``tests/data/bias_reference_vectors.json``, ``tests/test_bias.py``;
the commits read are named there).

* ``tlr@k`` — Target-Languages Recall (SHIFT, arXiv 2606.18801; ``yjoonjang/SHIFT``
  ``compute_tlr_at_k``): the share of a query's relevant candidates *not* in its language that rank
  in the top ``k``; NaN for a query whose relevant candidates are all in its language. Higher = less
  bias towards the query's language.
* ``mrc@k`` — Mean Rank Correlation (Yang et al., MRL 2024; as ``yjoonjang/MIMO`` ``compute_mrc``
  computes it): for a query in language a, the mean over its parallel queries in the other languages
  b (same group) of Spearman's correlation between the two score vectors over the union of their
  top-``k`` candidates. NaN for a query without a parallel query. In [-1, 1] (MIMO reports 100x);
  higher = the ranking depends less on the query's language.
* ``peer@k`` — PEER, the probability of equal expected rank (Yang et al., SIGIR 2024;
  ``hltcoe/peer_measure``): the p-value of a Kruskal-Wallis-type test of whether a query's relevant
  candidates get different ranks by language, binary relevance. Higher = fairer. As the authors'
  code computes it: ranks are positions in the top ``k`` (ties broken by candidate id), a relevant
  candidate outside it gets the shared rank ``(2N + U + 1) / 2`` (N relevant, U of them outside),
  and ``H = (N - 1) SS_between / SS_total`` of those values is referred to chi-square with
  (languages - 1) df; 1 when none is retrieved or only one language has relevant candidates. **On
  LAReQA's pools it is degenerate**: with one relevant candidate per language ``SS_between =
  SS_total``, so ``H = N - 1`` and the p-value is one constant (0.368 for 3 languages, 0.44 for 11)
  whenever any is retrieved. It is computed, and reported, but decides nothing there
  (:data:`DECIDING`).

MLAIRE's LPR and Lang-nDCG (arXiv 2605.07249) are not here: no code of theirs is public and the
paper's formulas could not be read here; a reconstruction would not be the measure.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
from scipy import stats as sps

#: the per-query bias measures of :func:`bias_measures`, with the direction that means less bias
BIAS_METRICS = {"tlr@10": "higher", "mrc@10": "higher", "peer@20": "higher"}

#: the measures that can decide a claim on pools with one relevant candidate per language (PEER
#: cannot there)
DECIDING = ("tlr@10", "mrc@10")


def _ranks(s: np.ndarray, idx: np.ndarray) -> np.ndarray:
    """hbkit's tie rule (:mod:`hbkit.retrieval.ranking`): ``rank(c) = |{c': s(c') >= s(c)}|``."""
    return (s[None, :] >= s[idx][:, None]).sum(1)


def tlr_at_k(
    S: np.ndarray,
    relevant: Sequence[np.ndarray],
    q_lang: np.ndarray,
    c_lang: np.ndarray,
    k: int = 10,
) -> np.ndarray:
    """Per query (row of ``S``): the share of its relevant candidates in another language than
    ``q_lang[i]`` with rank <= ``k``; NaN when it has none in another language."""
    out = np.full(len(S), np.nan)
    for i, rel in enumerate(relevant):
        target = np.asarray([r for r in rel if c_lang[r] != q_lang[i]], dtype=int)
        if len(target):
            out[i] = float((_ranks(S[i], target) <= k).mean())
    return out


def _top(s: np.ndarray, k: int) -> np.ndarray:
    """The ``k`` best candidates by score (a stable order: on exact ties the first in the pool)."""
    return np.argsort(-s, kind="stable")[:k]


def mrc_at_k(S: np.ndarray, groups: np.ndarray, q_lang: np.ndarray, k: int = 10) -> np.ndarray:
    """Per query: the mean over its parallel queries (same group, another language) of Spearman's
    correlation of the two score rows over the union of their top-``k`` candidates (pairs with a
    constant side are left out, as in MIMO); NaN for a query with no parallel query."""
    out = np.full(len(S), np.nan)
    groups, q_lang = np.asarray(groups), np.asarray(q_lang)
    for g in np.unique(groups):
        rows = np.flatnonzero(groups == g)
        if len(rows) < 2:
            continue
        top = {i: set(_top(S[i], k).tolist()) for i in rows}
        for a in rows:
            corr = []
            for b in rows:
                if b == a or q_lang[b] == q_lang[a]:
                    continue
                union = sorted(top[a] | top[b])
                if len(union) < 2 or np.ptp(S[a, union]) == 0 or np.ptp(S[b, union]) == 0:
                    # a constant side: Spearman's rho is undefined (MIMO leaves the pair out)
                    continue
                r = sps.spearmanr(S[a, union], S[b, union]).statistic
                if np.isfinite(r):
                    corr.append(r)
            if corr:
                out[a] = float(np.mean(corr))
    return out


def peer_from_positions(values: dict[str, list[float]]) -> float:
    """PEER of one query from its relevant candidates' positions: the authors' per-level test
    (``peer_measure.kruskal``) on ``{language: [1-based position in the top k, or NaN when outside
    it]}`` (what :func:`peer_at_k` computes from scores, and what stored rankings give:
    :func:`hbkit.retrieval.pools.multilingual_rankings`)."""
    samples = [v for v in values.values()]
    flat = np.array([x for v in samples for x in v], dtype=float)
    if not len(flat) or np.isnan(flat).all():
        return 1.0
    n_unret = [int(np.isnan(np.asarray(v, dtype=float)).sum()) for v in samples]
    unret_rank = (2 * len(flat) + sum(n_unret) + 1) / 2
    samples = [
        np.asarray([x for x in v if not np.isnan(x)] + [unret_rank] * u, dtype=float)
        for v, u in zip(samples, n_unret)
    ]
    samples = [s for s in samples if len(s)]
    if len(samples) < 2:
        return 1.0
    alldata = np.concatenate(samples)
    n = np.array([len(s) for s in samples], dtype=float)
    r_bar = alldata.mean()
    ssg = (np.array([s.mean() for s in samples]) - r_bar) ** 2 @ n
    ssa = ((alldata - r_bar) ** 2).sum()
    if ssa == 0:
        return float("nan")
    return float(sps.chi2.sf((n.sum() - 1) * ssg / ssa, len(samples) - 1))


def peer_at_k(
    S: np.ndarray,
    relevant: Sequence[np.ndarray],
    c_lang: np.ndarray,
    k: int = 20,
    c_ids: Sequence[str] | None = None,
) -> np.ndarray:
    """Per query: PEER@``k`` with binary relevance, as ``hltcoe/peer_measure`` computes it (module
    docstring). ``c_ids`` break score ties as the authors' code does (by id); default: the pool's
    order."""
    keys = np.asarray(c_ids) if c_ids is not None else np.arange(S.shape[1])
    out = np.full(len(S), np.nan)
    for i, rel in enumerate(relevant):
        order = np.lexsort((keys, -S[i]))[:k]
        pos = {int(c): p + 1 for p, c in enumerate(order)}
        values: dict[str, list[float]] = {}
        for r in rel:
            values.setdefault(str(c_lang[r]), []).append(float(pos.get(int(r), np.nan)))
        out[i] = peer_from_positions(values)
    return out


def bias_measures(
    Q: np.ndarray,
    C: np.ndarray,
    relevant: Sequence[np.ndarray],
    q_lang: np.ndarray,
    c_lang: np.ndarray,
    groups: np.ndarray,
    c_ids: Sequence[str] | None = None,
    chunk: int = 512,
) -> dict[str, np.ndarray]:
    """:data:`BIAS_METRICS` per query of ``Q`` (n x d) over the pool ``C`` (m x d): scores are inner
    products, computed ``chunk`` queries at a time for TLR and PEER and one group at a time for MRC,
    so no (n x m) matrix is held. ``relevant[i]``: pool indices relevant to query i; ``groups``:
    parallel queries share one."""
    Q = np.asarray(Q, dtype=np.float32)
    C = np.asarray(C, dtype=np.float32)
    q_lang, c_lang, groups = np.asarray(q_lang), np.asarray(c_lang), np.asarray(groups)
    out = {
        "tlr@10": np.full(len(Q), np.nan),
        "peer@20": np.full(len(Q), np.nan),
        "mrc@10": np.full(len(Q), np.nan),
    }
    for s in range(0, len(Q), chunk):
        S = Q[s : s + chunk] @ C.T
        rel = relevant[s : s + chunk]
        out["tlr@10"][s : s + chunk] = tlr_at_k(S, rel, q_lang[s : s + chunk], c_lang, 10)
        out["peer@20"][s : s + chunk] = peer_at_k(S, rel, c_lang, 20, c_ids)
    for g in np.unique(groups):
        rows = np.flatnonzero(groups == g)
        if len(rows) > 1:
            out["mrc@10"][rows] = mrc_at_k(Q[rows] @ C.T, groups[rows], q_lang[rows], 10)
    return out
