"""Statistics of a comparison: seeds as an axis, paired effects with intervals and permutation p-values,
multiple-comparison control, the minimum detectable effect, and verdicts on the paper's claims.

Input: per-query results
------------------------
One DataFrame with columns ``model, strategy, alpha, seed, benchmark, setting, qlang, dlang, query_id, group``
plus metric columns (``map``, ``rank_distance``, ...; NaN where undefined): ``EvalResult.per_query`` of every
model with the model identity added. ``model`` is the display name (``base``, ``xx``, ``xy``, ``hybrid``,
``hybrid-a0.25``); a trained model is one name evaluated with several ``seed`` values. The **base model** is
evaluated once: its ``seed`` is :data:`BASE_SEED` (``-1``; NaN or any single value is read as -1), and it
is a constant in every contrast (the same base value is paired with each training seed). Every model and
seed is scored on the same queries, so rows pair by ``(benchmark, setting, qlang, dlang, query_id)``; a
``group`` is one parallel item (all translations of a question), the unit of every resample and sign flip.

Macro value
-----------
For a model, seed s, benchmark, setting and metric, with cells c = (qlang, dlang), n_c the number of
queries of cell c with a value, and C the number of cells with n_c > 0::

    macro_s = (1/C) * sum_c (1/n_c) * sum_{q in c} v_{s,q}

(what ``EvalResult.macro()`` and :func:`paired_bootstrap` compute). Over seeds: ``mean = (1/S) sum_s macro_s``.

Units: answer clusters
----------------------
With a ``cluster`` column (``compare`` adds it from :func:`hbkit.data.answer_clusters`: groups whose answers
share a source paragraph in any language) every test, interval and sign flip treats a cluster as one unit;
without it, each ``group`` is its own unit.

The strategy-level test (what decides every verdict)
----------------------------------------------------
A contrast ``A - B`` pairs seeds by value (B = base: the constant). Its difference is linear in the per-unit
differences: ``diff = (1/S) sum_s sum_g u_{s,g}`` with ``u_{s,g} = sum_c (1/C)(1/n_c) d_{s,c,g}`` and
``d_{s,c,g}`` the summed A-minus-B differences of unit g in cell c (cells and n_c taken over the queries
where both sides have a value). The matrix ``G * u`` (seeds x units) goes to
:func:`hbkit.crossed.crossed_test`: a crossed random-effects model (training seed random, cluster random,
strategy fixed) in its balanced closed form with Satterthwaite degrees of freedom. It gives ``se``, ``df``,
``p``, the t interval ``low``/``high``, the minimum detectable effect ``mde`` (80% power at 5%, two-sided,
from the same se and df) and the variance split (``s2_seed``, ``s2_cluster``, ``s2_resid``,
``seed_share``). Its level holds with 3 seeds: tested by simulation (``tests/test_crossed.py``).

With one training seed no strategy-level test exists: ``p``, ``se``, ``low``, ``high`` and ``mde`` are NaN,
and the verdicts say "too few seeds".

``p_models``: a sign-flip permutation p over units with the trained models held fixed (one random sign per
unit shared by all seeds; exact enumeration when the 2^units vectors number at most ``n_perm``). It answers
"do these particular trained models differ on these questions", not "does strategy A beat strategy B", and
decides nothing.

Families: each effect row has a ``family``: ``claims`` (the strategy contrasts that the paper's claims C1-C4
and A1 need), ``strategies`` (other contrasts between trained models) or ``base`` (a trained model against the
untrained one). ``p_adj``: Benjamini-Hochberg within each family (``scipy.stats.false_discovery_control``).
For ``rank_distance`` and ``lang_knn_purity`` lower is better (column ``better``).

Intervals of one model (:func:`aggregate`): the same model on the model's own per-unit values: a t interval
with Satterthwaite df over seeds and clusters; for a single seed (and the base model, evaluated once) a t
interval over clusters that describes that one model (column ``interval``).
"""
from __future__ import annotations

import logging
import re
import warnings
import zlib
from typing import Iterable, Sequence

import numpy as np
import pandas as pd
from scipy import stats as sps

from .crossed import crossed_test, expected_se_df, power_of, seeds_needed
from .data import is_corpus_benchmark

log = logging.getLogger(__name__)

BASE_MODEL = "base"
#: the ``seed`` of the base model (evaluated once, untrained)
BASE_SEED = -1
ID_COLUMNS = ("model", "seed", "benchmark", "setting", "qlang", "dlang", "query_id", "group")
#: metrics where a smaller value is better
LOWER_IS_BETTER = ("rank_distance", "lang_knn_purity")
#: the contrasts between strategies that :func:`effects` computes by default (plus every model - base)
STRATEGY_CONTRASTS = (("hybrid", "xx"), ("hybrid", "xy"), ("xy", "xx"))
SETTING_ORDER = ("mono", "cross", "multi", "alignment")
_PERM_CHUNK = 2000


# --------------------------------------------------------------------------------------------------
# one encoder pair, one seed: the paired bootstrap over groups (moved from evaluation.py)
# --------------------------------------------------------------------------------------------------
def _cell_matrix(pq: pd.DataFrame, metric: str, groups: np.ndarray):
    gi = {g: i for i, g in enumerate(groups)}
    cells = list(pq.groupby(["qlang", "dlang"], sort=True).indices.items())
    V = np.zeros((len(cells), len(groups)))
    M = np.zeros((len(cells), len(groups)))
    for c, (_, idx) in enumerate(cells):
        sub = pq.iloc[idx]
        vals = sub[metric].to_numpy(dtype=float)
        ok = ~np.isnan(vals)
        cols = np.array([gi[g] for g in sub["group"].to_numpy()[ok]], dtype=int)
        np.add.at(V[c], cols, vals[ok])
        np.add.at(M[c], cols, 1.0)
    return V, M


def paired_bootstrap(a: pd.DataFrame, b: pd.DataFrame | None, metric: str = "map", setting: str = "multi",
                     benchmark: str | None = None, n_boot: int = 1000, seed: int = 0) -> dict:
    """Paired bootstrap over query groups of the macro-averaged ``metric`` in ``setting``.

    ``a``/``b`` are ``EvalResult.per_query`` frames of two encoders on the same benchmark (``b=None``:
    an interval for ``a`` alone). Groups (parallel items) are resampled with replacement, so all
    translations of a question move together; each resample recomputes every cell mean and their macro
    average. Returns ``{"a", "b", "diff", "low", "high", "p"}`` with a 95% percentile interval of
    ``a - b`` and a two-sided bootstrap p-value. One seed only: :func:`effects` is the seed-aware version
    with a permutation p-value.
    """
    def pick(df):
        df = df[(df["setting"] == setting)]
        return df[df["benchmark"] == benchmark] if benchmark else df
    a = pick(a)
    if b is not None:
        b = pick(b)
        key = ["qlang", "dlang", "query_id"]
        merged = a[key + ["group", metric]].merge(b[key + [metric]], on=key, suffixes=("_a", "_b"))
        if len(merged) != len(a) or len(merged) != len(b):
            raise ValueError("paired_bootstrap: the two results do not cover the same queries")
    else:
        merged = a[["qlang", "dlang", "query_id", "group", metric]].rename(columns={metric: f"{metric}_a"})
    if merged.empty:
        raise ValueError(f"paired_bootstrap: no per-query values for setting={setting!r} metric={metric!r}")
    groups = np.array(sorted(merged["group"].unique()))
    Va, M = _cell_matrix(merged, f"{metric}_a", groups)
    point = lambda V: float(np.mean(V.sum(1) / M.sum(1)))  # noqa: E731
    W = np.random.default_rng(seed).multinomial(len(groups), np.full(len(groups), 1 / len(groups)), size=n_boot)
    den = W @ M.T                                                        # (n_boot, cells)

    def boot(V):
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.nanmean((W @ V.T) / den, axis=1)
    res = {"a": point(Va), "n_groups": len(groups), "metric": metric, "setting": setting}
    ba = boot(Va)
    if b is None:
        res.update(low=float(np.percentile(ba, 2.5)), high=float(np.percentile(ba, 97.5)))
        return res
    Vb, _ = _cell_matrix(merged, f"{metric}_b", groups)
    d = ba - boot(Vb)
    res.update(b=point(Vb), diff=res["a"] - point(Vb), low=float(np.percentile(d, 2.5)),
               high=float(np.percentile(d, 97.5)),
               p=float(min(1.0, 2 * min((d <= 0).mean(), (d >= 0).mean()))))
    return res


def intervals(per_query: dict[str, pd.DataFrame], benchmark: str, metrics=("map",), settings=("mono", "cross", "multi"),
              n_boot: int = 1000, seed: int = 0) -> pd.DataFrame:
    """Macro value and 95% bootstrap interval (over query groups) per model, metric and setting, for one seed
    (``per_query``: model name -> ``EvalResult.per_query``). :func:`aggregate` is the version over seeds."""
    rows = []
    for model, pq in per_query.items():
        for metric in metrics:
            for setting in settings:
                sub = pq[(pq.benchmark == benchmark) & (pq.setting == setting)]
                if sub.empty or metric not in sub:
                    continue
                r = paired_bootstrap(sub, None, metric, setting, benchmark, n_boot=n_boot, seed=seed)
                rows.append({"model": model, "benchmark": benchmark, "setting": setting, "metric": metric,
                             "value": r["a"], "low": r["low"], "high": r["high"]})
    return pd.DataFrame(rows)


# --------------------------------------------------------------------------------------------------
# input checks and the seed bookkeeping
# --------------------------------------------------------------------------------------------------
_CODE_COLUMNS = ("model", "benchmark", "setting", "qlang", "dlang", "query_id", "group")


def _normalise(per_query: pd.DataFrame, metrics: Sequence[str] | None = None) -> tuple[pd.DataFrame, dict]:
    """Checked copy: required columns, the base seed set to :data:`BASE_SEED`, trained seeds as integers,
    no duplicated query row. Adds integer codes ``_<column>`` (sorted order) of the identity columns,
    which the internals use instead of the strings; returns it with the code -> value arrays."""
    if not isinstance(per_query, pd.DataFrame):
        raise ValueError(f"per-query results must be a DataFrame, not {type(per_query).__name__}")
    missing = [c for c in ID_COLUMNS if c not in per_query.columns]
    if missing:
        raise ValueError(f"per-query results lack column(s) {', '.join(missing)}; they need {', '.join(ID_COLUMNS)} "
                         "plus metric columns (EvalResult.per_query with model and seed added)")
    if metrics is not None:
        absent = [m for m in metrics if m not in per_query.columns]
        if absent:
            raise ValueError(f"metric column(s) {', '.join(absent)} not in the per-query results (columns: "
                             f"{', '.join(map(str, per_query.columns))}); pass metrics=... with those present")
    if per_query.empty:
        raise ValueError("per-query results are empty: nothing to aggregate")
    keep = list(ID_COLUMNS) + [c for c in ("strategy", "alpha", "cluster") if c in per_query.columns]
    keep += [c for c in (metrics if metrics is not None else per_query.columns) if c not in keep]
    pq = per_query[keep].copy()
    for col in ("strategy", "alpha"):
        if col not in pq.columns:
            pq[col] = np.nan
    uniques = {}
    for col in _CODE_COLUMNS:
        codes, uniq = pd.factorize(pq[col].astype(str), sort=True)
        pq["_" + col] = codes
        uniques[col] = np.asarray(uniq, dtype=object)
    unit = "cluster" if "cluster" in pq.columns else "group"
    if unit == "cluster":
        if pq["cluster"].isna().any():
            r = pq[pq["cluster"].isna()].iloc[0]
            raise ValueError(f"{r['benchmark']}: group {r['group']} has no cluster; give every row a cluster "
                             "(hbkit.data.answer_clusters) or drop the column to use groups as units")
        per = pq.groupby(["benchmark", "group"])["cluster"].nunique()
        if (per > 1).any():
            b, g = per[per > 1].index[0]
            raise ValueError(f"{b}: group {g} is in {int(per.max())} clusters; a group belongs to one cluster")
    codes, uniq = pd.factorize(pq[unit].astype(str), sort=True)
    pq["_unit"] = codes
    uniques["unit"] = np.asarray(uniq, dtype=object)
    is_base = pq["model"].astype(str).to_numpy() == BASE_MODEL
    seed = pd.to_numeric(pq["seed"], errors="coerce").to_numpy(dtype=float, copy=True)
    base_seeds = np.unique(seed[is_base & ~np.isnan(seed)])
    if len(base_seeds) > 1:
        raise ValueError(f"the base model appears with seeds {base_seeds.tolist()}: it is evaluated once; "
                         f"give its rows seed {BASE_SEED} (or NaN)")
    bad = ~is_base & (np.isnan(seed) | (seed != np.round(seed)))
    if bad.any():
        r = pq[bad].iloc[0]
        raise ValueError(f"model {r['model']!r} has seed {r['seed']!r}: a trained model needs an integer seed "
                         f"(only {BASE_MODEL!r} is seedless)")
    seed[is_base] = BASE_SEED
    seed = seed.astype(np.int64)
    if (~is_base & (seed < 0)).any():
        raise ValueError(f"model {pq['model'][~is_base & (seed < 0)].iloc[0]!r} has a negative seed; trained seeds "
                         f"are >= 0 ({BASE_SEED} marks the base model)")
    pq["seed"] = seed
    pq["model"] = uniques["model"][pq["_model"].to_numpy()]
    pq["_seed"] = np.unique(seed, return_inverse=True)[1]
    key = _row_key(pq, ["_model", "_seed", "_benchmark", "_setting", "_qlang", "_dlang", "_query_id"])
    srt = np.sort(key)
    dup_keys = srt[1:][srt[1:] == srt[:-1]]
    if len(dup_keys):
        r = pq[key == dup_keys[0]].iloc[0]
        raise ValueError(f"{len(dup_keys)} duplicated per-query row(s), e.g. model {r['model']} seed {r['seed']} "
                         f"{r['benchmark']}/{r['setting']} {r['qlang']}->{r['dlang']} query {r['query_id']}: "
                         "each (model, seed, benchmark, setting, qlang, dlang, query_id) must appear once")
    return pq, uniques


def _row_key(pq: pd.DataFrame, cols: Sequence[str]) -> np.ndarray:
    """One int64 per row identifying its combination of the (non-negative integer) code columns."""
    return _combine_arrays([pq[c].to_numpy(dtype=np.int64) for c in cols])


def _combine_arrays(arrays: Sequence[np.ndarray]) -> np.ndarray:
    key = np.zeros(len(arrays[0]), dtype=np.int64)
    for a in arrays:
        size = int(a.max()) + 1 if len(a) else 1
        if (int(key.max()) + 1 if len(key) else 1) * size >= 2 ** 62:   # renumber before it could overflow
            key = np.unique(key, return_inverse=True)[1].astype(np.int64)
        key = key * size + a
    return key


def _public(pq: pd.DataFrame) -> pd.DataFrame:
    return pq.drop(columns=[c for c in pq.columns if c.startswith("_")])


def _fmt_seeds(seeds: Iterable[int]) -> str:
    return ",".join(str(int(s)) for s in sorted(seeds))


def complete_seeds(per_query: pd.DataFrame) -> tuple[pd.DataFrame, list[str]]:
    """Keep only the seeds present for every trained model; say what was left out.

    A run folder may hold different seed sets per strategy (a run stopped half-way, a seed added for one
    strategy). A seed is kept when every trained model (every model but ``base``) has it on every
    benchmark that model has any result for; the rows of the other seeds are left out for all models, and
    each (model, seed, benchmark) that was missing gets a line such as ``"hybrid seed 2 missing:
    aggregated over seeds 0,1"`` (``" on tydiqa"`` when only some benchmarks lack it). The base model's
    rows are kept (seed :data:`BASE_SEED`). Returns ``(frame, missing)``; ``missing`` is empty when
    nothing was left out. Raises ``ValueError`` when no seed is common to all trained models.
    """
    pq, missing = _complete_seeds(*_normalise(per_query))
    return _public(pq), missing


def _complete_seeds(pq: pd.DataFrame, u: dict) -> tuple[pd.DataFrame, list[str]]:
    trained = pq["model"].to_numpy() != BASE_MODEL
    if not trained.any():
        return pq, []
    combos = pd.DataFrame({"m": pq["_model"].to_numpy()[trained], "b": pq["_benchmark"].to_numpy()[trained],
                           "s": pq["seed"].to_numpy()[trained]}).drop_duplicates()
    have: dict[tuple[str, str], set] = {}
    for m, b, s in zip(u["model"][combos["m"]], u["benchmark"][combos["b"]], combos["s"]):
        have.setdefault((m, b), set()).add(int(s))
    bench_of: dict[str, list[str]] = {}
    for m, b in sorted(have):
        bench_of.setdefault(m, []).append(b)
    all_seeds = set(int(s) for s in combos["s"])
    keep = {s for s in all_seeds if all(s in have[(m, b)] for m, bs in bench_of.items() for b in bs)}
    if not keep:
        per_model = "; ".join(f"{m}: {_fmt_seeds(set().union(*(have[(m, b)] for b in bs)))}" for m, bs in bench_of.items())
        raise ValueError(f"no seed is present for every trained model and benchmark ({per_model}); "
                         "train and evaluate at least one common seed")
    missing = []
    for s in sorted(all_seeds - keep):
        for m, bs in bench_of.items():
            lacking = [b for b in bs if s not in have[(m, b)]]
            if not lacking:
                continue
            where = "" if len(lacking) == len(bs) else " on " + ", ".join(lacking)
            others = sorted(x for x, xbs in bench_of.items() if any(s in have[(x, b)] for b in xbs))
            left = f" (seed {s} of {', '.join(others)} left out)" if others else ""
            missing.append(f"{m} seed {s} missing{where}: aggregated over seeds {_fmt_seeds(keep)}{left}")
    if not missing:
        return pq, []
    return pq[~trained | np.isin(pq["seed"].to_numpy(), sorted(keep))], missing


# --------------------------------------------------------------------------------------------------
# the core: per (benchmark, setting, metric) block, the cell x group sums of every (model, seed)
# --------------------------------------------------------------------------------------------------
class _Block:
    """One (benchmark, setting, metric): ``V``/``M`` of shape (models x seeds, cells, groups) holding the
    sums and counts of the values of each group in each cell; ``index[model]`` = rows of that model (seed
    order as ``seeds[model]``)."""

    def __init__(self, benchmark, setting, metric, V, M, index, seeds, groups, notes):
        self.benchmark, self.setting, self.metric = benchmark, setting, metric
        self.V, self.M, self.index, self.seeds, self.groups, self.notes = V, M, index, seeds, groups, notes

    def point(self) -> np.ndarray:
        """macro value of each (model, seed) row."""
        n = self.M.sum(2)
        with np.errstate(invalid="ignore", divide="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)                  # a row without any value: NaN
            return np.nanmean(np.where(n > 0, self.V.sum(2) / n, np.nan), axis=1)

    def contributions(self, a: str, b: str | None = None, centered: bool = False) -> np.ndarray:
        """u[s, g]: unit g's contribution to the macro difference ``a - b`` in seed s (sums over g to that
        seed's difference); ``b=None``: to ``a``'s own macro value. Shape (S, G). ``centered``: the linearised
        contributions (value minus its cell's mean, weighted, plus macro/G), whose spread over units is the
        sampling variation of the macro value; the strategy-level test and the intervals use these, the
        sign-flip test the raw ones."""
        ia = self.index[a]
        if b is None:
            D = self.V[ia]
        else:
            ib = self.index[b]
            if len(ib) == 1:
                ib = np.repeat(ib, len(ia))
            D = self.V[ia] - self.V[ib]                               # (S, C, G)
        n = self.M[ia].sum(2)                                        # (S, C), common mask: same for b
        C_eff = (n > 0).sum(1, keepdims=True)
        with np.errstate(invalid="ignore", divide="ignore"):
            wc = np.where(n > 0, 1.0 / (n * C_eff), 0.0)
        if not centered:
            return np.einsum("sc,scg->sg", wc, D)
        # linearised (influence) contributions: each value minus its cell's mean, so unequal cell sizes and unequal
        # cluster sizes do not masquerade as variation; plus macro/G, so that they still sum to the macro value
        with np.errstate(invalid="ignore", divide="ignore"):
            cell_mean = np.where(n > 0, D.sum(2) / n, 0.0)               # (S, C)
        Dc = D - cell_mean[:, :, None] * self.M[ia]
        macro = np.einsum("sc,sc->s", wc * n, cell_mean)              # (S,)
        return np.einsum("sc,scg->sg", wc, Dc) + macro[:, None] / D.shape[2]


def _blocks(pq: pd.DataFrame, u: dict, metrics: Sequence[str], common_mask: bool):
    """Yield a :class:`_Block` per (benchmark, setting, metric) with at least one value, benchmarks in order
    of appearance, settings as :data:`SETTING_ORDER`. With ``common_mask`` a query counts only where every
    (model, seed) has a value (so contrasts are exactly paired); else each row keeps its own values."""
    col = {c: pq["_" + c].to_numpy() for c in (*_CODE_COLUMNS, "unit")}
    seed_all = pq["seed"].to_numpy()
    bench_rank = {b: i for i, b in enumerate(pd.unique(pq["benchmark"]))}
    set_rank = {s: i for i, s in enumerate(SETTING_ORDER)}
    bkey = col["benchmark"] * len(u["setting"]) + col["setting"]
    order = np.argsort(bkey, kind="stable")
    starts = np.flatnonzero(np.r_[True, np.diff(bkey[order]) != 0])
    spans = [(order[a:b]) for a, b in zip(starts, np.r_[starts[1:], len(order)])]
    spans.sort(key=lambda rows: (bench_rank[u["benchmark"][col["benchmark"][rows[0]]]],
                                 set_rank.get(u["setting"][col["setting"][rows[0]]], 99),
                                 u["setting"][col["setting"][rows[0]]]))
    values = {m: pq[m].to_numpy(dtype=float) for m in metrics}
    for rows in spans:
        bench = str(u["benchmark"][col["benchmark"][rows[0]]])
        setting = str(u["setting"][col["setting"][rows[0]]])
        slot_key = _combine_arrays([col["qlang"][rows], col["dlang"][rows], col["query_id"][rows]])
        slot_u, slot = np.unique(slot_key, return_inverse=True)
        n_slots = len(slot_u)
        g_all = col["unit"][rows]
        if len(np.unique(_combine_arrays([slot, g_all]))) != n_slots:
            g_per_slot = pd.Series(g_all).groupby(slot).nunique()
            i = rows[np.flatnonzero(slot == int(g_per_slot.idxmax()))[0]]
            raise ValueError(f"{bench}/{setting}: query {pq['query_id'].iloc[i]} ({pq['qlang'].iloc[i]}->"
                             f"{pq['dlang'].iloc[i]}) has different groups (or clusters) in different models; every "
                             "model must be scored on the same queries")
        width = int(seed_all.max()) + 2                            # seed - BASE_SEED in [0, width)
        ms_u, ms_id = np.unique(col["model"][rows] * width + (seed_all[rows] - BASE_SEED), return_inverse=True)
        ms_keys = [(str(u["model"][k // width]), int(k % width) + BASE_SEED) for k in ms_u]
        counts = np.bincount(ms_id, minlength=len(ms_keys))
        if (counts != n_slots).any():
            i = int(np.flatnonzero(counts != n_slots)[0])
            raise ValueError(f"{bench}/{setting}: model {ms_keys[i][0]} seed {ms_keys[i][1]} has {counts[i]} of the "
                             f"{n_slots} queries the other models have; every model and seed must be scored on the "
                             "same queries (re-evaluate it)")
        cell = np.unique(_combine_arrays([col["qlang"][rows], col["dlang"][rows]]), return_inverse=True)[1]
        C = int(cell.max()) + 1
        guniq, gcode = np.unique(g_all, return_inverse=True)       # sorted codes = sorted group names
        index: dict[str, list[int]] = {}
        seeds: dict[str, list[int]] = {}
        for i, (m, s) in enumerate(ms_keys):
            index.setdefault(m, []).append(i)
            seeds.setdefault(m, []).append(s)
        index = {m: np.asarray(v) for m, v in index.items()}
        R = len(ms_keys)
        for metric in metrics:
            vals = values[metric][rows]
            ok = ~np.isnan(vals)
            if not ok.any():
                continue
            notes = []
            if common_mask:
                bad_slot = np.bincount(slot, weights=~ok, minlength=n_slots) > 0
                partial = int((bad_slot & (np.bincount(slot, weights=ok, minlength=n_slots) > 0)).sum())
                if partial:
                    notes.append(f"{bench}/{setting}/{metric}: {partial} querie(s) with a value for some models "
                                 "only were left out so that contrasts stay paired")
                ok &= ~bad_slot[slot]
                if not ok.any():
                    continue
            used = np.unique(gcode[ok])
            gmap = np.full(len(guniq), -1)
            gmap[used] = np.arange(len(used))
            G = len(used)
            flat = (ms_id * C + cell) * G + gmap[gcode]
            V = np.bincount(flat[ok], weights=vals[ok], minlength=R * C * G).reshape(R, C, G)
            M = np.bincount(flat[ok], minlength=R * C * G).astype(float).reshape(R, C, G)
            yield _Block(bench, setting, metric, V, M, index, seeds, u["unit"][guniq[used]].astype(str), notes)


def _rng(seed: int, block: _Block, stream: int) -> np.random.Generator:
    key = zlib.crc32(f"{block.benchmark}\x1f{block.setting}\x1f{block.metric}".encode())
    return np.random.default_rng([int(seed), key, stream])


def _trained_seeds(block: _Block) -> int:
    n = {len(v) for m, v in block.seeds.items() if m != BASE_MODEL}
    if len(n) > 1:
        detail = ", ".join(f"{m}: {_fmt_seeds(v)}" for m, v in block.seeds.items() if m != BASE_MODEL)
        raise ValueError(f"{block.benchmark}/{block.setting}: the trained models have different seeds ({detail}); "
                         "a seed evaluated on part of a benchmark only: re-evaluate it or drop its rows")
    return n.pop() if n else 1


def _finish(df: pd.DataFrame, missing: list[str], notes: list[str]) -> pd.DataFrame:
    df.attrs["missing"] = list(missing)
    df.attrs["notes"] = list(notes)
    for line in missing + notes:
        log.warning(line)
    return df


# --------------------------------------------------------------------------------------------------
# public: aggregate over seeds, effects, alignment effects
# --------------------------------------------------------------------------------------------------
def _one_model_interval(d: np.ndarray, level: float = 0.05) -> tuple[float, float, float, float, str]:
    """(low, high, se, df, kind) of the mean of ``d`` (S x G per-unit values, scaled so that the mean is the
    macro value): the crossed model over seeds and clusters for S >= 2; for one seed a t interval over
    clusters, which describes that one trained (or the base) model."""
    S, G = d.shape
    if S >= 2:
        r = crossed_test(d, level)
        return float(r["low"]), float(r["high"]), float(r["se"]), float(r["df"]), "seeds and clusters"
    if G < 2:
        return np.nan, np.nan, np.nan, np.nan, "one cluster"
    se = float(d[0].std(ddof=1) / np.sqrt(G))
    half = float(sps.t.ppf(1 - level / 2, G - 1)) * se
    m = float(d.mean())
    return m - half, m + half, se, float(G - 1), "clusters (one model)"


AGGREGATE_COLUMNS = ["model", "strategy", "alpha", "benchmark", "setting", "metric", "mean", "sd", "low", "high",
                     "se", "df", "interval", "n_seeds", "seeds", "n_groups"]


def aggregate(per_query: pd.DataFrame, metrics: Sequence[str] = ("map", "rank_distance"),
              level: float = 0.05) -> pd.DataFrame:
    """Per (model, benchmark, setting, metric): the macro value over seeds with a (1 - level) interval.

    Columns :data:`AGGREGATE_COLUMNS`: ``mean = (1/S) sum_s macro_s`` (macro as in the module docstring), ``sd``
    the standard deviation of ``macro_s`` over seeds (ddof=1; NaN for one seed, e.g. ``base``),
    ``low``/``high`` the t interval of the crossed model over seeds and units (``interval``: ``seeds and
    clusters``), or over units alone for one seed (``clusters (one model)``), with its ``se`` and ``df``;
    ``n_groups`` the units (clusters, or groups) with a value. Seeds are first restricted by
    :func:`complete_seeds`; what it left out is in ``attrs["missing"]`` (and logged). A (benchmark, setting,
    metric) with no value (e.g. rank distance in ``mono``) has no row.

    Example:
        >>> agg = aggregate(per_query, metrics=("map",))       # doctest: +SKIP
        >>> agg[["model", "setting", "mean", "low", "high", "interval"]]   # doctest: +SKIP
    """
    if not 0 < level < 1:
        raise ValueError(f"level={level!r}: use a number between 0 and 1 (0.05 for 95% intervals)")
    pq, u = _normalise(per_query, metrics)
    pq, missing = _complete_seeds(pq, u)
    meta = pq.drop_duplicates("model").set_index("model")[["strategy", "alpha"]]
    rows, notes = [], []
    for blk in _blocks(pq, u, metrics, common_mask=False):
        _trained_seeds(blk)
        pt = blk.point()
        G = len(blk.groups)
        for model, rix in blk.index.items():
            if np.isnan(pt[rix]).any():
                notes.append(f"{blk.benchmark}/{blk.setting}/{blk.metric}: {model} has no value"
                             + (" for some seeds" if not np.isnan(pt[rix]).all() else ""))
                continue
            low, high, se, df, kind = _one_model_interval(G * blk.contributions(model, centered=True), level)
            rows.append({"model": model, "strategy": meta.at[model, "strategy"],
                         "alpha": meta.at[model, "alpha"], "benchmark": blk.benchmark,
                         "setting": blk.setting, "metric": blk.metric, "mean": float(np.mean(pt[rix])),
                         "sd": float(np.std(pt[rix], ddof=1)) if len(rix) > 1 else np.nan,
                         "low": low, "high": high, "se": se, "df": df, "interval": kind,
                         "n_seeds": len(rix), "seeds": _fmt_seeds(blk.seeds[model]), "n_groups": G})
    return _finish(pd.DataFrame(rows, columns=AGGREGATE_COLUMNS), missing, notes)


def _parse_contrasts(contrasts, models: Sequence[str]) -> list[tuple[str, str]]:
    if contrasts is None:
        out = [c for c in STRATEGY_CONTRASTS if c[0] in models and c[1] in models]
        order = {m: i for i, m in enumerate(("xx", "xy", "hybrid"))}
        trained = sorted((m for m in models if m != BASE_MODEL), key=lambda m: (order.get(m, 9), m))
        out += [(m, BASE_MODEL) for m in trained if BASE_MODEL in models]
        return out
    out = []
    for c in contrasts:
        if isinstance(c, str):
            parts = [p.strip() for p in re.split(r"\s+-\s+", c)]
        else:
            parts = list(c)
        if len(parts) != 2 or parts[0] == parts[1]:
            raise ValueError(f"contrast {c!r}: write it as 'a - b' or ('a', 'b') with two different models")
        for m in parts:
            if m not in models:
                raise ValueError(f"contrast {c!r}: no results for model {m!r} (models: {', '.join(models)})")
        out.append((parts[0], parts[1]))
    return out


def _default_skipped(models: Sequence[str]) -> list[str]:
    notes = [f"contrast {a} - {b} not computed: no results for {', '.join(m for m in (a, b) if m not in models)}"
             for a, b in STRATEGY_CONTRASTS if a not in models or b not in models]
    if BASE_MODEL not in models:
        notes.append("contrasts against base not computed: no results for base")
    return notes


def _sign_p(T: np.ndarray, U: np.ndarray, rng: np.random.Generator, n_perm: int) -> tuple[np.ndarray, str]:
    """Two-sided sign-flip p-values of statistics ``T`` (n,) with unit contributions ``U`` (units, n):
    exact over all 2^units sign vectors when they number at most ``n_perm``, else Monte Carlo."""
    units = U.shape[0]
    thr = np.abs(T) * (1 - 1e-9) - 1e-15
    if units <= 30 and 2 ** units <= n_perm:
        codes = np.arange(2 ** units, dtype=np.int64)[:, None]
        signs = 1.0 - 2.0 * ((codes >> np.arange(units)) & 1)
        return (np.abs(signs @ U) >= thr).mean(0), "exact"
    hits = np.zeros(len(T))
    total = U.sum(0)
    nbytes = (units + 7) // 8
    done = 0
    while done < n_perm:                     # sign_g = 1 - 2 bit_g, bits uniform: sum_g sign_g U_g = total - 2 bits @ U
        n = min(_PERM_CHUNK, n_perm - done)
        bits = np.unpackbits(np.frombuffer(rng.bytes(n * nbytes), dtype=np.uint8).reshape(n, nbytes), axis=1,
                             count=units)
        hits += (np.abs(total - 2.0 * (bits.astype(np.float64) @ U)) >= thr).sum(0)
        done += n
    return (1.0 + hits) / (1.0 + n_perm), "monte-carlo"


def _fdr(p: pd.Series) -> pd.Series:
    ok = p.notna().to_numpy()
    out = np.full(len(p), np.nan)
    if ok.any():
        out[ok] = sps.false_discovery_control(p.to_numpy()[ok], method="bh")
    return pd.Series(out, index=p.index)


EFFECT_COLUMNS = ["contrast", "a", "b", "family", "benchmark", "setting", "metric", "better", "a_value", "b_value",
                  "diff", "low", "high", "se", "df", "t", "p", "p_adj", "mde", "seeds_agree", "s2_seed", "s2_cluster",
                  "s2_resid", "seed_share", "p_models", "p_method", "n_seeds", "seeds", "n_groups"]
STRATEGIES = ("xx", "xy", "hybrid")
#: (setting, metric) pairs that the claims test: C1-C3 (mAP per setting), C4 (multi rank distance), A1
#: (alignment measures; on TyDi-QA, which is not parallel, multilingual acc@1)
CLAIM_MEASURES = {("mono", "map"), ("cross", "map"), ("multi", "map"), ("multi", "rank_distance"),
                  ("alignment", "cos_gap"), ("alignment", "translation_p@1"), ("alignment", "lang_knn_purity")}


def family(a: str, b: str, benchmark: str, setting: str, metric: str) -> str:
    """``claims`` for a contrast between two of :data:`STRATEGIES` on a (setting, metric) that a claim needs
    (:data:`CLAIM_MEASURES`, plus multilingual acc@1 on non-parallel pool benchmarks); ``base`` for a contrast
    with the untrained model; else ``strategies``. Benjamini-Hochberg runs within each family."""
    if BASE_MODEL in (a, b):
        return "base"
    if a in STRATEGIES and b in STRATEGIES and not is_corpus_benchmark(benchmark):
        if _non_parallel(benchmark):   # TyDi-QA: no alignment measures in A1; multilingual acc@1 instead
            if (setting, metric) == ("multi", "acc@1") or ((setting, metric) in CLAIM_MEASURES and setting != "alignment"):
                return "claims"
        elif (setting, metric) in CLAIM_MEASURES:
            return "claims"
    return "strategies"


def _adjust(df: pd.DataFrame) -> pd.DataFrame:
    """``family`` (if absent) and ``p_adj`` = Benjamini-Hochberg within each family."""
    if df.empty:
        return df
    if "family" not in df or df["family"].isna().any():
        df["family"] = [family(r.a, r.b, r.benchmark, r.setting, r.metric) for r in df.itertuples(index=False)]
    df["p_adj"] = np.nan
    for _, idx in df.groupby("family").groups.items():
        df.loc[idx, "p_adj"] = _fdr(df.loc[idx, "p"]).to_numpy()
    return df


def _seeds_agree(per_seed: np.ndarray, diff: float) -> str:
    """``k/S``: the seeds whose own difference has the sign of the mean difference."""
    k = int((np.sign(per_seed) == np.sign(diff)).sum()) if diff != 0 else 0
    return f"{k}/{len(per_seed)}"


def effects(per_query: pd.DataFrame, contrasts: Sequence | None = None, metrics: Sequence[str] = ("map", "rank_distance"),
            n_perm: int = 10000, seed: int = 0, level: float = 0.05) -> pd.DataFrame:
    """Paired effects ``a - b`` per (contrast, benchmark, setting, metric), decided by the strategy-level test.

    ``contrasts``: ``["hybrid - xx", ("xy", "xx"), ...]``; default ``hybrid - xx``, ``hybrid - xy``,
    ``xy - xx`` (those whose models are present; the others are listed in ``attrs["notes"]``) and every
    other model ``- base``. Columns :data:`EFFECT_COLUMNS`:

    * ``diff`` (mean over paired seeds of the macro difference; base constant), ``a_value``/``b_value``;
    * from :func:`hbkit.crossed.crossed_test` on the seeds x units contributions: ``se``, ``df``, ``t``,
      ``p`` (strategy level), the t interval ``low``/``high`` at ``1 - level``, ``mde`` (80% power at
      ``level``), the variance split ``s2_seed``/``s2_cluster``/``s2_resid``/``seed_share``; NaN with one seed;
    * ``family`` (:func:`family`) and ``p_adj`` (Benjamini-Hochberg within the family);
    * ``seeds_agree``: ``k/S`` seeds whose own difference has the sign of ``diff``;
    * ``p_models``: the sign-flip p over units with the trained models fixed (``p_method``: ``exact`` or
      ``monte-carlo``; a statement about these trained models, which decides nothing);
    * ``better``: ``lower`` for rank distance and language k-NN purity (a negative diff favours ``a``).

    Queries count only where every model has a value. Seeds are restricted by :func:`complete_seeds`
    (``attrs["missing"]``). Raises ``ValueError`` for a contrast naming a model without results.

    Example:
        >>> eff = effects(per_query)                                        # doctest: +SKIP
        >>> eff[eff.family == "claims"][["contrast", "setting", "diff", "low", "high", "p_adj", "mde"]]  # doctest: +SKIP
    """
    if not isinstance(n_perm, (int, np.integer)) or n_perm < 1:
        raise ValueError(f"n_perm={n_perm!r}; use an integer >= 1 (10000 for reported p-values)")
    if not 0 < level < 1:
        raise ValueError(f"level={level!r}: use a number between 0 and 1 (e.g. 0.05)")
    pq, u = _normalise(per_query, metrics)
    pq, missing = _complete_seeds(pq, u)
    models = [str(m) for m in pd.unique(pq["model"])]
    pairs = _parse_contrasts(contrasts, models)
    notes = _default_skipped(models) if contrasts is None else []
    rows = []
    for blk in _blocks(pq, u, metrics, common_mask=True):
        notes += blk.notes
        here = [(a, b) for a, b in pairs if a in blk.index and b in blk.index]
        for a, b in pairs:
            if (a, b) not in here:
                notes.append(f"{blk.benchmark}/{blk.setting}/{blk.metric}: {a} - {b} not computed: "
                             f"no results for {', '.join(m for m in (a, b) if m not in blk.index)} there")
        if not here:
            continue
        _trained_seeds(blk)
        pt = blk.point()
        G = len(blk.groups)
        contribs = [blk.contributions(a, b) for a, b in here]                 # each (S, G)
        T = np.array([c.sum(1).mean() for c in contribs])
        p_models, how = _sign_p(T, np.stack([c.mean(0) for c in contribs], 1), _rng(seed, blk, 1), n_perm)
        for i, (a, b) in enumerate(here):
            ia, ib = blk.index[a], blk.index[b]
            r = {k: float(v) for k, v in crossed_test(G * blk.contributions(a, b, centered=True), level).items()}
            rows.append({"contrast": f"{a} - {b}", "a": a, "b": b,
                         "family": family(a, b, blk.benchmark, blk.setting, blk.metric),
                         "benchmark": blk.benchmark, "setting": blk.setting, "metric": blk.metric,
                         "better": "lower" if blk.metric in LOWER_IS_BETTER else "higher",
                         "a_value": float(np.mean(pt[ia])), "b_value": float(np.mean(pt[ib])), "diff": float(T[i]),
                         **{k: r[k] for k in ("low", "high", "se", "df", "t", "p", "mde", "s2_seed", "s2_cluster",
                                              "s2_resid", "seed_share")},
                         "p_adj": np.nan, "seeds_agree": _seeds_agree(contribs[i].sum(1), float(T[i])),
                         "p_models": float(p_models[i]), "p_method": how, "n_seeds": max(len(ia), len(ib)),
                         "seeds": _fmt_seeds(blk.seeds[a] if len(ia) >= len(ib) else blk.seeds[b]), "n_groups": G})
    df = _adjust(pd.DataFrame(rows, columns=EFFECT_COLUMNS))
    return _finish(df, missing, notes)


def alignment_as_per_query(align_items: pd.DataFrame) -> pd.DataFrame:
    """The per-item alignment frame (``model, strategy, alpha, seed, benchmark, metric, group, value``, one
    row per group and measure: :func:`hbkit.alignment.alignment_per_group` with the model identity added)
    in the per-query shape: setting ``alignment``, one cell (``qlang = dlang = "all"``), ``query_id`` =
    ``group``, one column per measure. :func:`aggregate` and :func:`effects` take the result."""
    need = ["model", "seed", "benchmark", "metric", "group", "value"]
    absent = [c for c in need if c not in align_items.columns]
    if absent:
        raise ValueError(f"alignment items lack column(s) {', '.join(absent)}; they need {', '.join(need)} "
                         "(alignment_per_group per model, seed and benchmark, with those columns added)")
    a = align_items.copy()
    for c in ("strategy", "alpha"):
        if c not in a.columns:
            a[c] = np.nan
    a["seed"] = pd.to_numeric(a["seed"], errors="coerce").fillna(BASE_SEED)
    key = ["model", "seed", "benchmark", "metric", "group"]
    dup = a.duplicated(key)
    if dup.any():
        r = a[dup].iloc[0]
        raise ValueError(f"alignment items: {int(dup.sum())} duplicated row(s), e.g. model {r['model']} seed "
                         f"{r['seed']} {r['benchmark']} {r['metric']} group {r['group']}; one value per group")
    wide = a.set_index(["model", "seed", "benchmark", "group", "metric"])["value"].unstack("metric").reset_index()
    wide.columns.name = None
    meta = a.groupby("model")[["strategy", "alpha"]].first()
    wide = wide.merge(meta, left_on="model", right_index=True, how="left")
    if "cluster" in a.columns:
        wide = wide.merge(a[["benchmark", "group", "cluster"]].drop_duplicates(["benchmark", "group"]),
                          on=["benchmark", "group"], how="left")
    # a (model, seed, benchmark) lacking a group has no row: effects() then names it (not the same items)
    return wide.assign(setting="alignment", qlang="all", dlang="all", query_id=wide["group"].astype(str))


def alignment_effects(align_items: pd.DataFrame, contrasts: Sequence | None = None, n_perm: int = 10000,
                      seed: int = 0, level: float = 0.05) -> pd.DataFrame:
    """:func:`effects` of the per-group alignment measures: one cell per benchmark and measure, groups (or the
    ``cluster`` column's clusters) as units, setting ``alignment``, metric the measure (``cos_gap`` and
    ``translation_p@1`` higher is better, ``lang_knn_purity`` lower). Same columns and attrs as :func:`effects`;
    BH over these rows only (join families with :func:`combine_effects`)."""
    wide = alignment_as_per_query(align_items)
    metrics = [m for m in dict.fromkeys(align_items["metric"])]
    return effects(wide, contrasts, metrics, n_perm, seed, level)


def combine_effects(*frames: pd.DataFrame) -> pd.DataFrame:
    """Concatenate effect tables (e.g. :func:`effects` and :func:`alignment_effects`) and recompute ``p_adj`` by
    Benjamini-Hochberg within each ``family`` over all their rows; ``attrs`` are merged."""
    df = pd.concat([f for f in frames if len(f)], ignore_index=True) if any(len(f) for f in frames) \
        else pd.DataFrame(columns=EFFECT_COLUMNS)
    df = _adjust(df)
    df.attrs["missing"] = list(dict.fromkeys(x for f in frames for x in f.attrs.get("missing", [])))
    df.attrs["notes"] = list(dict.fromkeys(x for f in frames for x in f.attrs.get("notes", [])))
    return df


# --------------------------------------------------------------------------------------------------
# verdicts on the paper's claims
# --------------------------------------------------------------------------------------------------
#: claim -> (statement, setting, metric, [(a, b, claimed sign of a - b)])
DIRECTIONAL_CLAIMS = {
    "C1": ("X-X-mono (xx) is the best trained strategy in the monolingual setting (mAP)", "mono", "map",
           [("xx", "xy", +1), ("xx", "hybrid", +1)]),
    "C2": ("X-Y (xy) is the best trained strategy in the cross-lingual setting (mAP)", "cross", "map",
           [("xy", "xx", +1), ("xy", "hybrid", +1)]),
    "C3": ("hybrid is the best trained strategy in the multilingual setting (mAP)", "multi", "map",
           [("hybrid", "xx", +1), ("hybrid", "xy", +1)]),
    "C4": ("hybrid has the lowest maximum rank distance, i.e. the least language bias (multi; lower is better)",
           "multi", "rank_distance", [("hybrid", "xx", -1), ("hybrid", "xy", -1)]),
}
C5_STATEMENT = "hybrid is within delta mAP of the best trained strategy in every setting"
A1_STATEMENT = ("hybrid improves alignment over xx and xy: higher cos_gap and translation_p@1, lower lang_knn_purity "
                "(parallel benchmarks); higher multilingual acc@1 (k-NN question-to-passage accuracy) on TyDi-QA")
#: (metric, claimed sign) of A1 on parallel benchmarks; non-parallel ones use multi acc@1
A1_MEASURES = (("cos_gap", +1), ("translation_p@1", +1), ("lang_knn_purity", -1))
VERDICT_COLUMNS = ["claim", "benchmark", "verdict", "statement", "evidence", "diffs", "p_adj", "mde"]


def _non_parallel(benchmark: str) -> bool:
    """A pool benchmark whose queries have no translations (TyDi-QA): A1 is measured by multilingual acc@1."""
    return benchmark == "tydiqa"


TOO_FEW = "too few seeds"


def _index(eff: pd.DataFrame) -> dict:
    """(benchmark, setting, metric, a, b) -> effect row as a dict, for the lookups of :func:`verdicts`."""
    return {(r["benchmark"], r["setting"], r["metric"], r["a"], r["b"]): r for r in eff.to_dict("records")}


def _lookup(idx: dict, bench: str, setting: str, metric: str, a: str, b: str) -> dict | None:
    """The effect ``a - b`` (flipped from ``b - a`` when only that one was computed), or None."""
    for x, y, sign in ((a, b, 1.0), (b, a, -1.0)):
        r = idx.get((bench, setting, metric, x, y))
        if r is not None:
            lo, hi = sign * r["low"], sign * r["high"]
            return {"name": f"{a} - {b}", "setting": setting, "metric": metric, "diff": sign * r["diff"],
                    "low": min(lo, hi), "high": max(lo, hi), "p_adj": r["p_adj"], "mde": r["mde"],
                    "se": r.get("se", np.nan), "df": r.get("df", np.nan), "n_seeds": r.get("n_seeds", np.nan),
                    "seeds_agree": r.get("seeds_agree", "")}
    return None


def _txt(c: dict, with_p: bool = True) -> str:
    if not np.isfinite(c["low"]):
        return f"{c['name']} = {c['diff']:+.3f} (one seed: no interval over seeds)"
    s = f"{c['name']} = {c['diff']:+.3f} [{c['low']:+.3f}, {c['high']:+.3f}]"
    if not with_p:
        return s
    agree = f", seeds agree in sign: {c['seeds_agree'].replace('/', ' of ')}" if c.get("seeds_agree") else ""
    return s + f", p_adj = {c['p_adj']:.3g} (df {c['df']:.1f}){agree}"


def _weak_txt(c: dict, want: str) -> str:
    """Why a comparison is not significant, with the smallest effect this run detects."""
    if c["se"] == 0:
        return (f"{_txt(c)}: no variation between seeds or clusters (every unit differs by the same amount); "
                "nothing to test")
    return (f"{_txt(c)}: not significant (needs {want}; this run detects effects of about {c['mde']:.3g} or more "
            "with 80% power)")


def _directional(comps: list[tuple[dict | None, int, str]], level: float) -> tuple[str, str, str, float, float]:
    """comps: (effect or None, claimed sign, description of what it is) -> verdict, evidence, diffs, p, mde.
    Significant: ``p_adj < level`` of the strategy-level test (the family of the claims)."""
    have = [(c, s) for c, s, _ in comps if c is not None]
    miss = [d for c, _, d in comps if c is None]
    diffs = "; ".join(_txt(c, False) for c, _ in have)
    p = max((c["p_adj"] for c, _ in have), default=np.nan)
    mde = max((c["mde"] for c, _ in have), default=np.nan)
    if have and all(not np.isfinite(c["p_adj"]) and c.get("n_seeds", 2) < 2 for c, _ in have):
        return TOO_FEW, ("one training seed per strategy: these numbers describe these trained models only, and "
                         "no test about strategies exists without seed-to-seed variation. Train at least 3 seeds "
                         "(--seeds 0,1,2); the power plan (power.csv) then says how many a verdict needs"), diffs, p, mde
    sig = [bool(np.isfinite(c["p_adj"]) and c["p_adj"] < level) for c, _ in have]
    wrong = [(c, s) for (c, s), k in zip(have, sig) if k and np.sign(c["diff"]) == -s]
    right = [(c, s) for (c, s), k in zip(have, sig) if k and np.sign(c["diff"]) == s]
    weak = [(c, s) for (c, s), k in zip(have, sig) if not k or np.sign(c["diff"]) == 0]
    want = lambda s: "> 0" if s > 0 else "< 0"  # noqa: E731
    if wrong:
        ev = "; ".join(f"{_txt(c)}: significant against the claim (it needs {want(s)})" for c, s in wrong)
        return "contradicted", ev, diffs, p, mde
    if miss:
        return "inconclusive", "missing: " + "; ".join(miss), diffs, p, mde
    if not weak:
        return "supported", (f"all {len(right)} comparisons significant in the claimed direction (strategy-level "
                             f"test, p_adj < {level:g}): " + "; ".join(_txt(c) for c, _ in right)), diffs, p, mde
    ev = "; ".join([_weak_txt(c, want(s)) for c, s in weak] + [f"{_txt(c)}: significant as claimed" for c, _ in right])
    return "inconclusive", ev, diffs, p, mde


def _combine(claim: str, statement: str, per_bench: list[dict], not_applicable: list[str]) -> dict:
    v = [r["verdict"] for r in per_bench]
    if not per_bench:
        verdict, ev = "inconclusive", "no benchmark has the effects this claim needs"
    elif all(x == TOO_FEW for x in v):
        verdict, ev = TOO_FEW, per_bench[0]["evidence"]
    elif "contradicted" in v:
        verdict = "contradicted"
        ev = "contradicted on " + ", ".join(r["benchmark"] for r in per_bench if r["verdict"] == "contradicted")
    elif all(x == "supported" for x in v):
        verdict, ev = "supported", "supported on every benchmark: " + ", ".join(r["benchmark"] for r in per_bench)
    else:
        verdict = "inconclusive"
        ev = "; ".join(f"{r['verdict']} on {r['benchmark']}" for r in per_bench)
    if not_applicable:
        ev += "; not applicable: " + "; ".join(not_applicable)
    return {"claim": claim, "benchmark": "all", "verdict": verdict, "statement": statement, "evidence": ev,
            "diffs": "", "p_adj": max((r["p_adj"] for r in per_bench if pd.notna(r["p_adj"])), default=np.nan),
            "mde": max((r["mde"] for r in per_bench if pd.notna(r["mde"])), default=np.nan)}


def _missing_desc(models: set, bench: str, setting: str, metric: str, a: str, b: str) -> str:
    absent = [m for m in (a, b) if m not in models]
    why = f"no results for {', '.join(absent)}" if absent else "not in the effects table"
    return f"{a} - {b} on {bench} {setting} {metric} ({why})"


def verdicts(effects_df: pd.DataFrame, delta: float = 0.01, level: float = 0.05) -> pd.DataFrame:
    """Verdicts on the paper's claims from an effects table (:func:`effects`, or :func:`combine_effects`
    of retrieval and alignment effects).

    Claims (:data:`DIRECTIONAL_CLAIMS`, C5, A1): C1 xx best in mono (``xx - xy > 0`` and ``xx - hybrid >
    0``), C2 xy best in cross, C3 hybrid best in multi, C4 hybrid lowest rank distance (``hybrid - xx < 0``,
    ``hybrid - xy < 0``); an effect computed the other way round (``hybrid - xx`` for ``xx - hybrid``) is
    flipped. A comparison is significant when the strategy-level test (module docstring) gives ``p_adj <
    level`` within the ``claims`` family. A directional claim is ``supported`` when every needed comparison is
    significant in the claimed direction, ``contradicted`` when any is significant in the opposite one, else
    ``inconclusive``; with one training seed it is ``too few seeds`` (no strategy-level test exists). C5: for every setting and each other strategy
    (xx, xy), ``other - hybrid`` has a 95% upper bound ``< delta`` -> supported; a lower bound ``> delta``
    anywhere -> contradicted (intervals, not p-values: ``p_adj`` is NaN there). A1: ``hybrid - xx`` and
    ``hybrid - xy`` improve every alignment measure (:data:`A1_MEASURES`, setting ``alignment``) on parallel
    benchmarks and the multilingual ``acc@1`` on TyDi-QA (not parallel), with the directional rule; corpus
    benchmarks (MIRACL, tydiqa-corpus) are not applicable to A1 and have no mAP for C1-C5.

    One row per (claim, benchmark) and an ``all`` row per claim: supported only if supported on every
    benchmark, contradicted if contradicted on any, else inconclusive; benchmarks without the claim's
    setting (TyDi-QA has no cross setting) are named as not applicable there. Missing strategies or
    effects give ``inconclusive`` with the evidence naming what is missing. Columns
    :data:`VERDICT_COLUMNS`: ``evidence`` (the deciding numbers in a sentence), ``diffs`` (the effects with
    95% intervals), ``p_adj`` and ``mde`` (the largest over the comparisons). Raises ``ValueError`` for
    ``delta < 0`` or ``level`` outside (0, 1).
    """
    if not isinstance(delta, (int, float, np.floating)) or not np.isfinite(delta) or delta < 0:
        raise ValueError(f"delta={delta!r}: the equivalence margin of claim C5 must be a number >= 0 "
                         "(in mAP, e.g. 0.01)")
    if not 0 < level < 1:
        raise ValueError(f"level={level!r}: the significance level must be between 0 and 1 (e.g. 0.05)")
    need = ["a", "b", "benchmark", "setting", "metric", "diff", "low", "high", "p_adj", "mde"]
    absent = [c for c in need if c not in effects_df.columns]
    if absent:
        raise ValueError(f"effects table lacks column(s) {', '.join(absent)}: pass the output of stats.effects")
    eff = effects_df
    idx = _index(eff)
    have = {(b, st, m) for b, st, m, _, _ in idx}
    models = {m for *_, a, b in idx for m in (a, b)}
    benches = list(dict.fromkeys(eff["benchmark"]))
    out = []

    for claim, (statement, setting, metric, needs) in DIRECTIONAL_CLAIMS.items():
        per, na = [], []
        for bench in benches:
            if (bench, setting, metric) not in have:
                na.append(f"{bench} (no {setting} {metric})")
                continue
            comps = [(_lookup(idx, bench, setting, metric, a, b), s, _missing_desc(models, bench, setting, metric, a, b))
                     for a, b, s in needs]
            v, ev, diffs, p, mde = _directional(comps, level)
            per.append({"claim": claim, "benchmark": bench, "verdict": v, "statement": statement, "evidence": ev,
                        "diffs": diffs, "p_adj": p, "mde": mde})
        out += per + [_combine(claim, statement, per, na)]

    # C5: equivalence within delta, from the intervals
    per, na = [], []
    statement = C5_STATEMENT.replace("delta", f"delta = {delta:g}")
    for bench in benches:
        settings = [s for s in SETTING_ORDER[:3] if (bench, s, "map") in have]
        if not settings:
            na.append(f"{bench} (no map)")
            continue
        comps, miss = [], []
        for s in settings:
            for other in ("xx", "xy"):
                c = _lookup(idx, bench, s, "map", other, "hybrid")
                if c is None:
                    miss.append(_missing_desc(models, bench, s, "map", "hybrid", other))
                else:
                    c["name"] = f"{other} - hybrid ({s})"
                    comps.append(c)
        diffs = "; ".join(_txt(c, False) for c in comps)
        mde = max((c["mde"] for c in comps), default=np.nan)
        if comps and not miss and all(not np.isfinite(c["high"]) for c in comps):
            per.append({"claim": "C5", "benchmark": bench, "verdict": TOO_FEW, "statement": statement,
                        "evidence": "one training seed per strategy: no interval over seeds, so no equivalence "
                                    "statement about strategies; train at least 3 seeds", "diffs": diffs,
                        "p_adj": np.nan, "mde": mde})
            continue
        over = [c for c in comps if c["low"] > delta]
        worst = max(comps, key=lambda c: c["high"]) if comps else None
        if over:
            v = "contradicted"
            ev = "; ".join(f"{_txt(c, False)}: lower bound above delta = {delta:g}" for c in over)
        elif miss:
            v, ev = "inconclusive", "missing: " + "; ".join(miss)
        elif worst["high"] < delta:
            v = "supported"
            ev = (f"every upper bound is below delta = {delta:g}; the largest: {_txt(worst, False)} "
                  f"({len(comps)} comparisons, unadjusted 95% intervals)")
        else:
            v = "inconclusive"
            ev = "; ".join(f"{_txt(c, False)}: upper bound not below delta = {delta:g}"
                           for c in comps if c["high"] >= delta)
        per.append({"claim": "C5", "benchmark": bench, "verdict": v, "statement": statement, "evidence": ev,
                    "diffs": diffs, "p_adj": np.nan, "mde": mde})
    out += per + [_combine("C5", statement, per, na)]

    # A1: alignment
    per, na = [], []
    for bench in benches:
        if is_corpus_benchmark(bench):
            na.append(f"{bench} (a corpus benchmark: no parallel queries, no alignment measures)")
            continue
        if _non_parallel(bench):
            measures, hint = [("multi", "acc@1", +1)], "run stats.effects with metrics including 'acc@1'"
        else:
            measures = [("alignment", m, s) for m, s in A1_MEASURES]
            hint = "run stats.alignment_effects and stats.combine_effects"
        wanted = {(st, m) for st, m, _ in measures}
        present = {(st, m) for b, st, m in have if b == bench} & wanted
        if not present:
            what = ", ".join(f"{m}" for _, m, _ in measures)
            per.append({"claim": "A1", "benchmark": bench, "verdict": "inconclusive", "statement": A1_STATEMENT,
                        "evidence": f"missing: no effects of {what} on {bench} ({hint})", "diffs": "",
                        "p_adj": np.nan, "mde": np.nan})
            continue
        comps = []
        for setting, metric, s in measures:
            for other in ("xx", "xy"):
                c = _lookup(idx, bench, setting, metric, "hybrid", other)
                if c is not None:
                    c["name"] = f"hybrid - {other} ({metric})"
                comps.append((c, s, _missing_desc(models, bench, setting, metric, "hybrid", other)))
        v, ev, diffs, p, mde = _directional(comps, level)
        per.append({"claim": "A1", "benchmark": bench, "verdict": v, "statement": A1_STATEMENT, "evidence": ev,
                    "diffs": diffs, "p_adj": p, "mde": mde})
    out += per + [_combine("A1", A1_STATEMENT, per, na)]
    return pd.DataFrame(out, columns=VERDICT_COLUMNS)


# --------------------------------------------------------------------------------------------------
# power planning: how many training seeds a verdict needs
# --------------------------------------------------------------------------------------------------
POWER_COLUMNS = ["contrast", "benchmark", "setting", "metric", "n_seeds", "n_groups", "diff", "se", "df", "mde",
                 "seed_share", "target", "power_at_target", "seeds_for_target", "paper_encoder", "paper_diff",
                 "seeds_for_paper", "note"]


def nearest_paper_encoder(model: str | None) -> str:
    """The paper's encoder closest to ours: LaBSE for LaBSE, else XLM-R (multilingual-e5 and the tiny test encoder
    share XLM-R's tokenizer and architecture family)."""
    return "LaBSE" if "labse" in str(model or "").lower() else "XLM-R"


def _seeds_txt(n: int | None, comps: tuple, G: int, effect: float, level: float, power: float) -> str | int:
    """The seeds needed, or why none suffice: with infinitely many seeds the se falls to the cluster part alone,
    sqrt(s2_cluster / G), which more questions (clusters) shrink and more seeds do not."""
    if n is not None:
        return n
    floor = np.sqrt(comps[1] / G) if G > 0 else np.nan
    if not np.isfinite(floor) or power_of(effect, floor, G - 1, level) < power:
        return "no number of seeds at these clusters (more questions needed)"
    return "more than 200"


def power_plan(effects_df: pd.DataFrame, paper: pd.DataFrame | None = None, model: str | None = None,
               target: float = 0.01, level: float = 0.05, power: float = 0.8) -> pd.DataFrame:
    """For each claim-relevant strategy contrast (family ``claims``): this run's power for a difference of
    ``target`` (0.01 mAP), the training seeds that would detect ``target`` with ``power`` at this run's clusters,
    and the seeds that would detect the paper's own effect for the nearest encoder (:func:`nearest_paper_encoder`;
    ``paper``: :func:`hbkit.reference.effects_view`, columns ``encoder, contrast, benchmark, our_benchmark,
    setting, metric, paper_diff``). From the variance components of the strategy-level test, at the expected
    mean squares (:func:`hbkit.crossed.seeds_needed`). Rows with one seed have no seed variance to plan with:
    ``note`` says so.

    Example:
        >>> plan = power_plan(effects, reference.effects_view(effects, ref), model="intfloat/multilingual-e5-small")  # doctest: +SKIP
    """
    enc = nearest_paper_encoder(model)
    pe = {}
    if paper is not None and len(paper):
        for r in paper[paper["encoder"] == enc].itertuples(index=False):
            bench = r.our_benchmark if isinstance(r.our_benchmark, str) else r.benchmark
            a, b = r.contrast.split(" - ")
            pe[(bench, r.setting, r.metric, a, b)] = r.paper_diff
            pe[(bench, r.setting, r.metric, b, a)] = -r.paper_diff
    rows = []
    claims = effects_df[effects_df.get("family", pd.Series(dtype=str)) == "claims"] if len(effects_df) else effects_df
    for r in claims.itertuples(index=False):
        S, G = int(r.n_seeds), int(r.n_groups)
        comps = (r.s2_seed, r.s2_cluster, r.s2_resid)
        pd_ = pe.get((r.benchmark, r.setting, r.metric, r.a, r.b), np.nan)
        row = {"contrast": r.contrast, "benchmark": r.benchmark, "setting": r.setting, "metric": r.metric,
               "n_seeds": S, "n_groups": G, "diff": r.diff, "se": r.se, "df": r.df, "mde": r.mde,
               "seed_share": r.seed_share, "target": target if r.metric != "rank_distance" else np.nan,
               "power_at_target": np.nan, "seeds_for_target": "", "paper_encoder": enc, "paper_diff": pd_,
               "seeds_for_paper": "", "note": ""}
        if not np.isfinite(comps).all():
            row["note"] = "one seed: no seed-to-seed variance measured, so no plan; train 3 or more seeds"
            rows.append(row)
            continue
        if r.metric != "rank_distance":   # rank distance is in ranks, not mAP: no common target
            se, df = expected_se_df(*comps, S=S, G=G)
            row["power_at_target"] = float(power_of(target, se, df, level))
            row["seeds_for_target"] = _seeds_txt(seeds_needed(*comps, G=G, effect=target, level=level, power=power),
                                                 comps, G, target, level, power)
        if np.isfinite(pd_):
            row["seeds_for_paper"] = ("the paper shows no difference" if pd_ == 0 else
                                      _seeds_txt(seeds_needed(*comps, G=G, effect=abs(pd_), level=level,
                                                              power=power), comps, G, abs(pd_), level, power))
        rows.append(row)
    return pd.DataFrame(rows, columns=POWER_COLUMNS)
