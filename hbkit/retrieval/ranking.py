"""The full-pool ranking kernel: every per-query metric of :mod:`hbkit.retrieval.pools` from one
score matrix, computed chunk by chunk so that no full (queries x pool) matrix is ever held.

Tie rule (one for every metric): ``rank(c) = |{c' in pool: s(c') >= s(c)}|`` — tied candidates share
the LOWEST rank of their group, as in ``sklearn.metrics.average_precision_score``. For query i with
relevant scores sorted ascending ``t_1 <= ... <= t_R`` the kernel needs only

    ranks_j = |{c: s(c) >= t_j}|
    above_j = |{r in rel: s(r) >= t_j}| = R - (first index of t_j) ,

from which ``AP = 1/R * sum_j above_j / ranks_j``, ``rank_distance = ranks_1 - ranks_R`` (R >= 2),
and recall@k, acc@k, MRR@10 and nDCG@10 follow from the ``ranks_j <= k``.

Two implementations of these formulas, checked against each other and against sklearn/ranx in the
tests:

* CPU — a BLAS product per chunk (numpy), then one fused numba pass per query row, parallel over
  rows: gather and sort the R relevant scores, one vectorised compare-and-count per distinct
  threshold, the metrics, and (for ``top10_same_lang``) the k-th best score and the language share
  above it. Its cost is the matrix product plus O(R * pool) compares per query;
  ``benchmarks/bench_search.py --lareqa-only`` reports it as a multiple of a bare matmul of the same
  shape.
* CUDA — the same formulas as batched torch operations on the GPU (``device="cuda"``, the default
  when CUDA is present).
"""

from __future__ import annotations

from functools import lru_cache
from typing import Sequence

import numpy as np

RANK_METRICS = ("map", "recall@1", "recall@10", "acc@1", "acc@5", "acc@10", "mrr@10", "ndcg@10")


MULTI_ONLY = ("rank_distance", "top10_same_lang")
# the kernel's output columns, in the order of RANK_METRICS + MULTI_ONLY (numba reads these as
# constants)
(
    COL_MAP,
    COL_R1,
    COL_R10,
    COL_ACC1,
    COL_ACC5,
    COL_ACC10,
    COL_MRR10,
    COL_NDCG10,
    COL_RANK_DIST,
    COL_SAME_LANG,
) = range(10)


_COLS = RANK_METRICS + MULTI_ONLY  # column order of the numba kernel's output


_F32_EXACT = 2**24  # pools smaller than this are counted in float32 (exact), larger ones in int64


def rank_metrics(
    Q: np.ndarray,
    C: np.ndarray,
    relevant: Sequence[Sequence[int]],
    k: int = 10,
    chunk: int | None = None,
    q_lang: np.ndarray | None = None,
    c_lang: np.ndarray | None = None,
    device: str | None = None,
    metrics: Sequence[str] | None = None,
) -> dict[str, np.ndarray]:
    """Per-query metrics of queries ``Q`` (n x d) against pool ``C`` (m x d), scored by inner
    product.

    ``relevant[i]`` holds the pool indices relevant to query i (at least one). Returns arrays of
    length n for every name in :data:`RANK_METRICS` plus ``rank_distance`` (NaN for fewer than 2
    relevant) and, when ``q_lang``/``c_lang`` are given, ``top10_same_lang`` (share of the
    candidates with rank <= ``k`` in the query's language; NaN when more than ``k`` tie at the top)
    — all with the module's tie rule. ``metrics`` restricts the output (and the work:
    ``top10_same_lang`` is the only costly extra). Works in chunks of ``chunk`` queries (default: as
    many as fit 64 MB of scores, 64 to 4,096): memory is O(chunk x m) floats. Runs on ``device``
    (default: CUDA when present, else CPU; ``"torch-cpu"`` runs the GPU path's torch implementation
    on CPU, for cross-checks); exact inner-product search, since full-ranking AP needs every score
    anyway. Identical candidate vectors are scored once (:func:`unique_rows`), so they tie exactly
    whatever the BLAS.
    """
    n, m = len(Q), len(C)
    if n == 0 or len(relevant) != n:
        raise ValueError(
            f"rank_metrics: {n} queries but {len(relevant)} relevance lists; give one per query"
        )
    nrel = np.fromiter(map(len, relevant), dtype=np.int64, count=n)
    if nrel.min() < 1:
        raise ValueError(
            "rank_metrics: every query needs at least one relevant candidate; drop the others first"
        )
    flat = np.concatenate([np.asarray(r, dtype=np.int64).ravel() for r in relevant])
    if flat.min() < 0 or flat.max() >= m:
        raise ValueError(f"rank_metrics: relevant indices must lie in [0, {m}), the pool's rows")
    rel = np.full((n, int(nrel.max())), -1, dtype=np.int64)
    starts = np.cumsum(nrel) - nrel
    rel[np.repeat(np.arange(n), nrel), np.arange(len(flat)) - np.repeat(starts, nrel)] = flat
    for name, X in (("Q", Q), ("C", C)):
        if not np.isfinite(X).all():
            raise ValueError(
                f"rank_metrics: {name} holds NaN or infinite values; check the encoder's output"
            )
    same = (
        q_lang is not None
        and c_lang is not None
        and (metrics is None or "top10_same_lang" in metrics)
    )
    kk = min(k, m)
    if same:
        codes = {l: i for i, l in enumerate(sorted(set(c_lang) | set(q_lang)))}
        ql = np.array([codes[l] for l in q_lang], dtype=np.int64)
        cl = np.array([codes[l] for l in c_lang], dtype=np.int64)
    else:
        ql = cl = np.zeros(0, dtype=np.int64)
    Q = np.ascontiguousarray(Q, dtype=np.float32)
    C = np.ascontiguousarray(C, dtype=np.float32)
    U, inv, counts = unique_rows(C)
    chunk = chunk or int(np.clip(2**24 // max(len(U), 1), 64, 4096))  # 2**24 float32 scores = 64 MB
    import torch

    dev = device or ("cuda" if torch.cuda.is_available() else "cpu")
    if str(dev).startswith("cuda") or device == "torch-cpu":
        out = _rank_metrics_torch(
            Q, U, inv, rel, nrel, ql, cl, same, kk, chunk, "cpu" if device == "torch-cpu" else dev
        )
    else:
        lang_cnt = np.zeros((len(U), max(len(codes), 1) if same else 1), dtype=np.int64)
        if same:
            np.add.at(lang_cnt, (inv, cl), 1)
        out = _rank_metrics_cpu(
            Q, U, counts, len(U) < m, inv[rel.clip(min=0)], nrel, ql, lang_cnt, same, kk, chunk
        )
    if not same:
        out.pop("top10_same_lang", None)
    return out if metrics is None else {name: out[name] for name in metrics}


def unique_rows(C: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``U, inv, counts`` with ``C == U[inv]`` (bitwise) and ``counts[u] = |{c: inv[c] == u}|``.

    Identical candidates must get identical scores (the tie rule), but a BLAS product does not
    promise it: OpenBLAS computes edge tiles with another kernel, so two equal columns of ``Q @
    C.T`` can differ in the last bit. Scoring each distinct vector once makes the promise hold for
    any BLAS (and saves the duplicates' flops)."""
    flat = np.ascontiguousarray(C).view(np.dtype((np.void, C.dtype.itemsize * C.shape[1]))).ravel()
    _, first, inv, counts = np.unique(
        flat, return_index=True, return_inverse=True, return_counts=True
    )
    if len(first) == len(C):  # no duplicates: keep the pool as it is
        return C, np.arange(len(C)), np.ones(len(C), dtype=np.int64)
    return C[first], inv.ravel(), counts


def _rank_metrics_cpu(
    Q, U, w, dup, rel, nrel, ql, lang_cnt, same, kk, chunk
) -> dict[str, np.ndarray]:
    n = len(Q)
    res = np.empty((n, len(_COLS)), dtype=np.float64)
    kernel = _numba_kernel()
    Ut = U.T  # a transposed view: BLAS reads it without a copy
    # one score buffer, reused: no page faults per chunk
    buf = np.empty((min(chunk, n), len(U)), dtype=np.float32)
    for s in range(0, n, chunk):
        # (c, distinct candidates) float32
        S = np.matmul(Q[s : s + chunk], Ut, out=buf[: min(chunk, n - s)])
        kernel(
            S,
            rel[s : s + chunk],
            nrel[s : s + chunk],
            w,
            dup,
            ql[s : s + chunk],
            lang_cnt,
            same,
            kk,
            _F32_EXACT,
            res[s : s + chunk],
        )  # without languages ql is empty, and so is its slice
    return {name: res[:, j].copy() for j, name in enumerate(_COLS)}


@lru_cache(maxsize=1)
def _numba_kernel():
    import numba

    # |{x: row[x] >= th}| (weighted by multiplicity when dup), branch-free so that LLVM
    # vectorises it. Counting in float32 is exact below 2**24 and lets the sum be reassociated
    # (8 lanes instead of int64's 4).
    @numba.njit(fastmath={"reassoc"}, cache=True)
    def count_f32(row, wf, dup, th):
        n = np.float32(0)
        if dup:
            for x in range(row.shape[0]):
                n += wf[x] if row[x] >= th else np.float32(0)
        else:
            for x in range(row.shape[0]):
                n += np.float32(1) if row[x] >= th else np.float32(0)
        return n

    @numba.njit(cache=True)
    def count_i64(row, w, dup, th):
        n = 0
        for x in range(row.shape[0]):
            n += (w[x] if dup else 1) if row[x] >= th else 0
        return n

    @numba.njit(parallel=True, cache=True)
    def kernel(S, rel, nrel, w, dup, ql, lang_cnt, same, kk, f32_limit, out):
        """One query row per iteration: S holds the scores of the distinct candidates, ``w`` their
        multiplicities (used only when ``dup``), ``rel`` the distinct-candidate index of each
        relevant."""
        c, m = S.shape
        small = w.sum() < f32_limit  # pool size below 2**24: float32 counts are exact
        wf = w.astype(np.float32)
        ideal = np.zeros(11)
        for i in range(1, 11):
            ideal[i] = ideal[i - 1] + 1.0 / np.log2(i + 1.0)
        for i in numba.prange(c):
            row = S[i]
            R = nrel[i]
            t = np.empty(R, dtype=np.float32)
            for j in range(R):
                t[j] = row[rel[i, j]]
            t.sort()  # ascending: t[0] is the lowest-scored relevant
            ranks = np.empty(R, dtype=np.int64)
            for j in range(R):
                if j > 0 and t[j] == t[j - 1]:
                    ranks[j] = ranks[j - 1]
                    continue
                if small:
                    ranks[j] = np.int64(count_f32(row, wf, dup, t[j]))
                else:
                    ranks[j] = count_i64(row, w, dup, t[j])
            ap = 0.0
            first = 0
            r1 = r5 = r10 = 0
            gain = 0.0
            for j in range(R):
                if t[j] != t[first]:
                    first = j  # the first relevant tied with t[j]: R - first relevant score >= t[j]
                rk = ranks[j]
                ap += (R - first) / rk
                r1 += rk <= 1
                r5 += rk <= 5
                if rk <= 10:
                    r10 += 1
                    gain += 1.0 / np.log2(rk + 1.0)
            best = ranks[R - 1]
            out[i, COL_MAP] = ap / R
            out[i, COL_R1] = r1 / R
            out[i, COL_R10] = r10 / R
            out[i, COL_ACC1] = 1.0 if r1 > 0 else 0.0
            out[i, COL_ACC5] = 1.0 if r5 > 0 else 0.0
            out[i, COL_ACC10] = 1.0 if r10 > 0 else 0.0
            out[i, COL_MRR10] = 1.0 / best if best <= 10 else 0.0
            out[i, COL_NDCG10] = gain / ideal[min(R, 10)]
            out[i, COL_RANK_DIST] = float(ranks[0] - best) if R >= 2 else np.nan
            out[i, COL_SAME_LANG] = np.nan
            if same:
                # one pass keeps the kk best candidate scores (ascending, with their distinct-vector
                # index) and ``eq``, the number of candidates outside the buffer scoring exactly
                # top[0]; every candidate outside it scores <= top[0], so |{c: s(c) >= kth}| = kk +
                # eq
                top = np.full(kk, -np.inf, dtype=np.float32)
                idx = np.full(kk, -1, dtype=np.int64)
                eq = 0
                lo = top[0]  # kept in a register: the scan is a compare per candidate
                for x in range(m):
                    v = row[x]
                    if v < lo:
                        continue
                    for cp in range(w[x]):  # a distinct vector counts once per candidate
                        if v <= top[0]:
                            if v == top[0]:
                                eq += w[x] - cp
                            break
                        old = top[0]
                        p = 0
                        while p + 1 < kk and top[p + 1] < v:
                            top[p] = top[p + 1]
                            idx[p] = idx[p + 1]
                            p += 1
                        top[p] = v
                        idx[p] = x
                        # the evicted one ties the new kth, or none does
                        eq = eq + 1 if top[0] == old else 0
                    lo = top[0]
                kth = top[0]
                # more than kk candidates tie into the top: keep only those above the tie
                strict = eq > 0
                n_sel = 0
                own = 0
                for p in range(kk):
                    u = idx[p]
                    if u < 0 or (strict and top[p] <= kth):
                        continue
                    seen = False
                    # copies of one vector sit in several slots: count the vector once
                    for q in range(p):
                        seen = seen or idx[q] == u
                    if not seen:
                        n_sel += w[u]
                        own += lang_cnt[u, ql[i]]
                out[i, COL_SAME_LANG] = own / n_sel if n_sel > 0 else np.nan

    return kernel


def _rank_metrics_torch(
    Q, U, inv, rel, nrel, ql, cl, same, kk, chunk, dev
) -> dict[str, np.ndarray]:
    import torch

    n = len(Q)
    Ut = torch.from_numpy(U).to(dev).T.contiguous()
    invt = torch.from_numpy(inv).to(dev)
    Qt = torch.from_numpy(Q).to(dev)
    relt = torch.from_numpy(rel).to(dev)
    out = {name: np.zeros(n, dtype=np.float64) for name in RANK_METRICS}
    out["rank_distance"] = np.full(n, np.nan)
    out["top10_same_lang"] = np.full(n, np.nan)
    if same:
        clt, qlt = torch.from_numpy(cl).to(dev), torch.from_numpy(ql).to(dev)
    ideal_disc = 1.0 / torch.log2(torch.arange(2, 12, dtype=torch.float64, device=dev))
    for s in range(0, n, chunk):
        # (c, m) float32, equal for equal candidates
        S = (Qt[s : s + chunk] @ Ut).index_select(1, invt)
        r = relt[s : s + chunk]
        mask = r >= 0
        rs = S.gather(1, r.clamp(min=0))  # (c, R) scores of the relevant
        rs = torch.where(mask, rs, torch.full_like(rs, float("inf")))
        srt, _ = rs.sort(1)  # relevant scores ascending, padding (+inf) last
        ranks = torch.stack([(S >= srt[:, j : j + 1]).sum(1) for j in range(srt.shape[1])], 1)
        valid = torch.isfinite(srt)
        # relevant scoring >= srt[:, j]: all relevant from the first one tied with it onwards
        above = valid.sum(1, keepdim=True) - torch.searchsorted(
            srt.contiguous(), srt.contiguous(), right=False
        )
        nr = valid.sum(1).to(torch.float64)
        prec = torch.where(
            valid, above.to(torch.float64) / ranks.clamp(min=1).to(torch.float64), 0.0
        )
        out["map"][s : s + chunk] = (prec.sum(1) / nr).cpu().numpy()
        lowest = ranks[:, 0]  # rank of the lowest-scored relevant
        highest = ranks.gather(1, (valid.sum(1, keepdim=True) - 1).clamp(min=0)).squeeze(1)
        dist = (lowest - highest).to(torch.float64)
        out["rank_distance"][s : s + chunk] = torch.where(nr >= 2, dist, torch.nan).cpu().numpy()
        inside = lambda k_: (valid & (ranks <= k_)).to(torch.float64)  # noqa: E731
        out["recall@1"][s : s + chunk] = (inside(1).sum(1) / nr).cpu().numpy()
        out["recall@10"][s : s + chunk] = (inside(10).sum(1) / nr).cpu().numpy()
        for a in (1, 5, 10):
            out[f"acc@{a}"][s : s + chunk] = (inside(a).sum(1) > 0).to(torch.float64).cpu().numpy()
        out["mrr@10"][s : s + chunk] = (
            torch.where(highest <= 10, 1.0 / highest.clamp(min=1).to(torch.float64), 0.0)
            .cpu()
            .numpy()
        )
        gain = torch.where(
            valid & (ranks <= 10), 1.0 / torch.log2(ranks.to(torch.float64) + 1), 0.0
        )
        ideal = torch.cumsum(ideal_disc, 0)[(nr.clamp(max=10) - 1).long()]
        out["ndcg@10"][s : s + chunk] = (gain.sum(1) / ideal).cpu().numpy()
        if same:
            t = S.topk(kk, dim=1).values[:, -1:]  # k-th highest score
            ge = S >= t
            sel = torch.where(ge.sum(1, keepdim=True) <= kk, ge, S > t)  # candidates with rank <= k
            own = sel & (clt.unsqueeze(0) == qlt[s : s + chunk].unsqueeze(1))
            n_sel = sel.sum(1).to(torch.float64)
            out["top10_same_lang"][s : s + chunk] = (
                torch.where(n_sel > 0, own.sum(1).to(torch.float64) / n_sel.clamp(min=1), torch.nan)
                .cpu()
                .numpy()
            )
    return out
