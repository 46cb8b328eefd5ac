"""The seed bookkeeping and the core of the strategy-level statistics: per-query rows checked and
coded, seeds completed, and per (benchmark, setting, metric) block the cell x group sums of every
(model, seed)."""

from __future__ import annotations

import logging
import warnings
import zlib
from typing import Iterable, Sequence

import numpy as np
import pandas as pd

from hbkit.core.vocab import SETTINGS, untrained

log = logging.getLogger(__name__)


BASE_MODEL = "base"


#: the ``seed`` of the base model (evaluated once, untrained)
BASE_SEED = -1


ID_COLUMNS = ("model", "seed", "benchmark", "setting", "qlang", "dlang", "query_id", "group")


#: metrics where a smaller value is better
LOWER_IS_BETTER = ("rank_distance", "lang_knn_purity")


SETTING_ORDER = (*SETTINGS, "alignment")


# --------------------------------------------------------------------------------------------------
# input checks and the seed bookkeeping
# --------------------------------------------------------------------------------------------------
_CODE_COLUMNS = ("model", "benchmark", "setting", "qlang", "dlang", "query_id", "group")


def normalise_per_query(
    per_query: pd.DataFrame, metrics: Sequence[str] | None = None
) -> tuple[pd.DataFrame, dict]:
    """Checked copy: required columns, the base seed set to :data:`BASE_SEED`, trained seeds as
    integers, no duplicated query row. Adds integer codes ``_<column>`` (sorted order) of the
    identity columns, which the internals use instead of the strings; returns it with the code ->
    value arrays."""
    if not isinstance(per_query, pd.DataFrame):
        raise ValueError(f"per-query results must be a DataFrame, not {type(per_query).__name__}")
    missing = [c for c in ID_COLUMNS if c not in per_query.columns]
    if missing:
        raise ValueError(
            f"per-query results lack column(s) {', '.join(missing)}; they need "
            f"{', '.join(ID_COLUMNS)} "
            "plus metric columns (EvalResult.per_query with model and seed added)"
        )
    if metrics is not None:
        absent = [m for m in metrics if m not in per_query.columns]
        if absent:
            raise ValueError(
                f"metric column(s) {', '.join(absent)} not in the per-query results (columns: "
                f"{', '.join(map(str, per_query.columns))}); pass metrics=... with those present"
            )
    if per_query.empty:
        raise ValueError("per-query results are empty: nothing to aggregate")
    keep = list(ID_COLUMNS) + [
        c for c in ("strategy", "alpha", "cluster") if c in per_query.columns
    ]
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
            raise ValueError(
                f"{r['benchmark']}: group {r['group']} has no cluster; give every row a cluster "
                "(hbkit.data.benchmarks.answer_clusters) or drop the column to use groups as units"
            )
        per = pq.groupby(["benchmark", "group"])["cluster"].nunique()
        if (per > 1).any():
            b, g = per[per > 1].index[0]
            raise ValueError(
                f"{b}: group {g} is in {int(per.max())} clusters; a group belongs to one cluster"
            )
    codes, uniq = pd.factorize(pq[unit].astype(str), sort=True)
    pq["_unit"] = codes
    uniques["unit"] = np.asarray(uniq, dtype=object)
    names = pq["model"].astype(str).to_numpy()
    is_base = np.isin(names, [m for m in uniques["model"] if untrained(m)])
    seed = pd.to_numeric(pq["seed"], errors="coerce").to_numpy(dtype=float, copy=True)
    for m in uniques["model"]:
        if untrained(m):
            base_seeds = np.unique(seed[(names == m) & ~np.isnan(seed)])
            if len(base_seeds) > 1:
                raise ValueError(
                    f"the untrained model {m!r} appears with seeds {base_seeds.tolist()}: it is "
                    f"evaluated once; give its rows seed {BASE_SEED} (or NaN)"
                )
    bad = ~is_base & (np.isnan(seed) | (seed != np.round(seed)))
    if bad.any():
        r = pq[bad].iloc[0]
        raise ValueError(
            f"model {r['model']!r} has seed {r['seed']!r}: a trained model needs an integer seed "
            f"(only {BASE_MODEL!r} and its fixes, such as 'base+shift', are seedless)"
        )
    seed[is_base] = BASE_SEED
    seed = seed.astype(np.int64)
    if (~is_base & (seed < 0)).any():
        raise ValueError(
            f"model {pq['model'][~is_base & (seed < 0)].iloc[0]!r} has a negative seed; trained "
            f"seeds are >= 0 ({BASE_SEED} marks the base model)"
        )
    pq["seed"] = seed
    pq["model"] = uniques["model"][pq["_model"].to_numpy()]
    pq["_seed"] = np.unique(seed, return_inverse=True)[1]
    key = _row_key(
        pq, ["_model", "_seed", "_benchmark", "_setting", "_qlang", "_dlang", "_query_id"]
    )
    srt = np.sort(key)
    dup_keys = srt[1:][srt[1:] == srt[:-1]]
    if len(dup_keys):
        r = pq[key == dup_keys[0]].iloc[0]
        raise ValueError(
            f"{len(dup_keys)} duplicated per-query row(s), e.g. model {r['model']} seed "
            f"{r['seed']} "
            f"{r['benchmark']}/{r['setting']} {r['qlang']}->{r['dlang']} query {r['query_id']}: "
            "each (model, seed, benchmark, setting, qlang, dlang, query_id) must appear once"
        )
    return pq, uniques


def _row_key(pq: pd.DataFrame, cols: Sequence[str]) -> np.ndarray:
    """One int64 per row identifying its combination of the (non-negative integer) code columns."""
    return _combine_arrays([pq[c].to_numpy(dtype=np.int64) for c in cols])


def _combine_arrays(arrays: Sequence[np.ndarray]) -> np.ndarray:
    key = np.zeros(len(arrays[0]), dtype=np.int64)
    for a in arrays:
        size = int(a.max()) + 1 if len(a) else 1
        if (
            int(key.max()) + 1 if len(key) else 1
        ) * size >= 2**62:  # renumber before it could overflow
            key = np.unique(key, return_inverse=True)[1].astype(np.int64)
        key = key * size + a
    return key


def _public(pq: pd.DataFrame) -> pd.DataFrame:
    return pq.drop(columns=[c for c in pq.columns if c.startswith("_")])


def format_seeds(seeds: Iterable[int]) -> str:
    return ",".join(str(int(s)) for s in sorted(seeds))


def complete_seeds(per_query: pd.DataFrame) -> tuple[pd.DataFrame, list[str]]:
    """Keep only the seeds present for every trained model; say what was left out.

    A run folder may hold different seed sets per strategy (a run stopped half-way, a seed added for
    one strategy). A seed is kept when every trained model (every model but ``base`` and its fixes)
    has it on every benchmark that model has any result for; the rows of the other seeds are left
    out for all models, and each (model, seed, benchmark) that was missing gets a line such as
    ``"hybrid seed 2 missing: aggregated over seeds 0,1"`` (``" on tydiqa"`` when only some
    benchmarks lack it). The base model's rows are kept (seed :data:`BASE_SEED`). Returns ``(frame,
    missing)``; ``missing`` is empty when nothing was left out. Raises ``ValueError`` when no seed
    is common to all trained models.
    """
    pq, missing = complete_coded_seeds(*normalise_per_query(per_query))
    return _public(pq), missing


def complete_coded_seeds(pq: pd.DataFrame, u: dict) -> tuple[pd.DataFrame, list[str]]:
    trained = ~np.isin(pq["model"].to_numpy(), [m for m in u["model"] if untrained(m)])
    if not trained.any():
        return pq, []
    combos = pd.DataFrame(
        {
            "m": pq["_model"].to_numpy()[trained],
            "b": pq["_benchmark"].to_numpy()[trained],
            "s": pq["seed"].to_numpy()[trained],
        }
    ).drop_duplicates()
    have: dict[tuple[str, str], set] = {}
    for m, b, s in zip(u["model"][combos["m"]], u["benchmark"][combos["b"]], combos["s"]):
        have.setdefault((m, b), set()).add(int(s))
    bench_of: dict[str, list[str]] = {}
    for m, b in sorted(have):
        bench_of.setdefault(m, []).append(b)
    all_seeds = set(int(s) for s in combos["s"])
    keep = {
        s for s in all_seeds if all(s in have[(m, b)] for m, bs in bench_of.items() for b in bs)
    }
    if not keep:
        per_model = "; ".join(
            f"{m}: {format_seeds(set().union(*(have[(m, b)] for b in bs)))}"
            for m, bs in bench_of.items()
        )
        raise ValueError(
            f"no seed is present for every trained model and benchmark ({per_model}); "
            "train and evaluate at least one common seed"
        )
    missing = []
    for s in sorted(all_seeds - keep):
        for m, bs in bench_of.items():
            lacking = [b for b in bs if s not in have[(m, b)]]
            if not lacking:
                continue
            where = "" if len(lacking) == len(bs) else " on " + ", ".join(lacking)
            others = sorted(x for x, xbs in bench_of.items() if any(s in have[(x, b)] for b in xbs))
            left = f" (seed {s} of {', '.join(others)} left out)" if others else ""
            missing.append(
                f"{m} seed {s} missing{where}: aggregated over seeds {format_seeds(keep)}{left}"
            )
    if not missing:
        return pq, []
    return pq[~trained | np.isin(pq["seed"].to_numpy(), sorted(keep))], missing


# --------------------------------------------------------------------------------------------------
# the core: per (benchmark, setting, metric) block, the cell x group sums of every (model, seed)
# --------------------------------------------------------------------------------------------------
class Block:
    """One (benchmark, setting, metric): ``V``/``M`` of shape (models x seeds, cells, groups)
    holding the sums and counts of the values of each group in each cell; ``index[model]`` = rows of
    that model (seed order as ``seeds[model]``)."""

    def __init__(self, benchmark, setting, metric, V, M, index, seeds, groups, notes):
        self.benchmark, self.setting, self.metric = benchmark, setting, metric
        self.V, self.M, self.index, self.seeds, self.groups, self.notes = (
            V,
            M,
            index,
            seeds,
            groups,
            notes,
        )

    def point(self) -> np.ndarray:
        """macro value of each (model, seed) row."""
        n = self.M.sum(2)
        with np.errstate(invalid="ignore", divide="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # a row without any value: NaN
            return np.nanmean(np.where(n > 0, self.V.sum(2) / n, np.nan), axis=1)

    def contributions(self, a: str, b: str | None = None, centered: bool = False) -> np.ndarray:
        """u[s, g]: unit g's contribution to the macro difference ``a - b`` in seed s (sums over g
        to that seed's difference); ``b=None``: to ``a``'s own macro value. Shape (S, G).
        ``centered``: the linearised contributions (value minus its cell's mean, weighted, plus
        macro/G), whose spread over units is the sampling variation of the macro value; the
        strategy-level test and the intervals use these, the sign-flip test the raw ones."""
        ia = self.index[a]
        if b is None:
            D = self.V[ia]
        else:
            ib = self.index[b]
            if len(ib) == 1:
                ib = np.repeat(ib, len(ia))
            D = self.V[ia] - self.V[ib]  # (S, C, G)
        n = self.M[ia].sum(2)  # (S, C), common mask: same for b
        C_eff = (n > 0).sum(1, keepdims=True)
        with np.errstate(invalid="ignore", divide="ignore"):
            wc = np.where(n > 0, 1.0 / (n * C_eff), 0.0)
        if not centered:
            return np.einsum("sc,scg->sg", wc, D)
        # linearised (influence) contributions: each value minus its cell's mean, so unequal cell
        # sizes and unequal cluster sizes do not masquerade as variation; plus macro/G, so that they
        # still sum to the macro value
        with np.errstate(invalid="ignore", divide="ignore"):
            cell_mean = np.where(n > 0, D.sum(2) / n, 0.0)  # (S, C)
        Dc = D - cell_mean[:, :, None] * self.M[ia]
        macro = np.einsum("sc,sc->s", wc * n, cell_mean)  # (S,)
        return np.einsum("sc,scg->sg", wc, Dc) + macro[:, None] / D.shape[2]


def metric_blocks(pq: pd.DataFrame, u: dict, metrics: Sequence[str], common_mask: bool):
    """Yield a :class:`Block` per (benchmark, setting, metric) with at least one value, benchmarks
    in order of appearance, settings as :data:`SETTING_ORDER`. With ``common_mask`` a query counts
    only where every (model, seed) has a value (so contrasts are exactly paired); else each row
    keeps its own values."""
    col = {c: pq["_" + c].to_numpy() for c in (*_CODE_COLUMNS, "unit")}
    seed_all = pq["seed"].to_numpy()
    bench_rank = {b: i for i, b in enumerate(pd.unique(pq["benchmark"]))}
    set_rank = {s: i for i, s in enumerate(SETTING_ORDER)}
    bkey = col["benchmark"] * len(u["setting"]) + col["setting"]
    order = np.argsort(bkey, kind="stable")
    starts = np.flatnonzero(np.r_[True, np.diff(bkey[order]) != 0])
    spans = [(order[a:b]) for a, b in zip(starts, np.r_[starts[1:], len(order)])]
    spans.sort(
        key=lambda rows: (
            bench_rank[u["benchmark"][col["benchmark"][rows[0]]]],
            set_rank.get(u["setting"][col["setting"][rows[0]]], 99),
            u["setting"][col["setting"][rows[0]]],
        )
    )
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
            raise ValueError(
                f"{bench}/{setting}: query {pq['query_id'].iloc[i]} "
                f"({pq['qlang'].iloc[i]}->{pq['dlang'].iloc[i]}) has different groups (or "
                "clusters) in different models; every model must be scored on the same queries"
            )
        width = int(seed_all.max()) + 2  # seed - BASE_SEED in [0, width)
        ms_u, ms_id = np.unique(
            col["model"][rows] * width + (seed_all[rows] - BASE_SEED), return_inverse=True
        )
        ms_keys = [(str(u["model"][k // width]), int(k % width) + BASE_SEED) for k in ms_u]
        counts = np.bincount(ms_id, minlength=len(ms_keys))
        if (counts != n_slots).any():
            i = int(np.flatnonzero(counts != n_slots)[0])
            raise ValueError(
                f"{bench}/{setting}: model {ms_keys[i][0]} seed {ms_keys[i][1]} has {counts[i]} of "
                f"the {n_slots} queries the other models have; every model and seed must be scored "
                "on the same queries (re-evaluate it)"
            )
        cell = np.unique(
            _combine_arrays([col["qlang"][rows], col["dlang"][rows]]), return_inverse=True
        )[1]
        C = int(cell.max()) + 1
        guniq, gcode = np.unique(g_all, return_inverse=True)  # sorted codes = sorted group names
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
                partial = int(
                    (bad_slot & (np.bincount(slot, weights=ok, minlength=n_slots) > 0)).sum()
                )
                if partial:
                    notes.append(
                        f"{bench}/{setting}/{metric}: {partial} querie(s) with a value for some "
                        "models only were left out so that contrasts stay paired"
                    )
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
            yield Block(
                bench,
                setting,
                metric,
                V,
                M,
                index,
                seeds,
                u["unit"][guniq[used]].astype(str),
                notes,
            )


def block_rng(seed: int, block: Block, stream: int) -> np.random.Generator:
    key = zlib.crc32(f"{block.benchmark}\x1f{block.setting}\x1f{block.metric}".encode())
    return np.random.default_rng([int(seed), key, stream])


def trained_seeds(block: Block) -> int:
    n = {len(v) for m, v in block.seeds.items() if not untrained(m)}
    if len(n) > 1:
        detail = ", ".join(
            f"{m}: {format_seeds(v)}" for m, v in block.seeds.items() if not untrained(m)
        )
        raise ValueError(
            f"{block.benchmark}/{block.setting}: the trained models have different seeds "
            f"({detail}); "
            "a seed evaluated on part of a benchmark only: re-evaluate it or drop its rows"
        )
    return n.pop() if n else 1


def finish_table(df: pd.DataFrame, missing: list[str], notes: list[str]) -> pd.DataFrame:
    df.attrs["missing"] = list(missing)
    df.attrs["notes"] = list(notes)
    for line in missing + notes:
        log.warning(line)
    return df
