"""Statistics of a comparison: seeds as an axis, paired effects with intervals and permutation
p-values, multiple-comparison control and the minimum detectable effect. The verdicts on the paper's
claims that these effects decide are in :mod:`hbkit.analysis.claims`.

Input: per-query results
------------------------
One DataFrame with columns ``model, strategy, alpha, seed, benchmark, setting, qlang, dlang,
query_id, group`` plus metric columns (``map``, ``rank_distance``, ...; NaN where undefined):
``EvalResult.per_query`` of every model with the model identity added. ``model`` is the display name
(``base``, ``xx``, ``xy``, ``hybrid``, ``hybrid-a0.25``); a trained model is one name evaluated with
several ``seed`` values. The **base model** is evaluated once: its ``seed`` is :data:`BASE_SEED`
(``-1``; NaN or any single value is read as -1), and it is a constant in every contrast (the same
base value is paired with each training seed). Every model and seed is scored on the same queries,
so rows pair by ``(benchmark, setting, qlang, dlang, query_id)``; a ``group`` is one parallel item
(all translations of a question), the unit of every resample and sign flip.

Macro value
-----------
For a model, seed s, benchmark, setting and metric, with cells c = (qlang, dlang), n_c the number of
queries of cell c with a value, and C the number of cells with n_c > 0::

    macro_s = (1/C) * sum_c (1/n_c) * sum_{q in c} v_{s,q}

(what ``EvalResult.macro()`` and :func:`hbkit.analysis.bootstrap.paired_bootstrap` compute). Over
seeds: ``mean = (1/S) sum_s macro_s``.

Units: answer clusters
----------------------
With a ``cluster`` column (``compare`` adds it from :func:`hbkit.data.benchmarks.answer_clusters`:
groups whose answers share a source paragraph in any language) every test, interval and sign flip
treats a cluster as one unit; without it, each ``group`` is its own unit.

The strategy-level test (what decides every verdict)
----------------------------------------------------
A contrast ``A - B`` pairs seeds by value (B = base: the constant). Its difference is linear in the
per-unit differences: ``diff = (1/S) sum_s sum_g u_{s,g}`` with ``u_{s,g} = sum_c (1/C)(1/n_c)
d_{s,c,g}`` and ``d_{s,c,g}`` the summed A-minus-B differences of unit g in cell c (cells and n_c
taken over the queries where both sides have a value). The matrix ``G * u`` (seeds x units) goes to
:func:`hbkit.analysis.crossed.crossed_test`: a crossed random-effects model (training seed random,
cluster random, strategy fixed) in its balanced closed form with Satterthwaite degrees of freedom.
It gives ``se``, ``df``, ``p``, the t interval ``low``/``high``, the minimum detectable effect
``mde`` (80% power at 5%, two-sided, from the same se and df) and the variance split (``s2_seed``,
``s2_cluster``, ``s2_resid``, ``seed_share``). Its level holds with 3 seeds: tested by simulation
(``tests/test_crossed.py``).

With one training seed no strategy-level test exists: ``p``, ``se``, ``low``, ``high`` and ``mde``
are NaN, and the verdicts say "too few seeds". Between two untrained models (``base+shift - base``:
both evaluated once) no seed exists to vary: the test is the paired t over clusters
(:func:`hbkit.analysis.crossed.clusters_test`), about these two models.

``p_models``: a sign-flip permutation p over units with the trained models held fixed (one random
sign per unit shared by all seeds; exact enumeration when the 2^units vectors number at most
``n_perm``). It answers "do these particular trained models differ on these questions", not "does
strategy A beat strategy B", and decides nothing.

Families: each effect row has a ``family``: ``claims`` (the strategy contrasts that the paper's
claims C1-C4 and A1 need, and hybrid against the free fixes of the base model on mAP for C6-C7),
``strategies`` (other contrasts between trained models), ``base`` (a trained model against the
untrained one) or ``fixes`` (a model with a training-free fix, ``hybrid+shift``, against the model
without it, and the other contrasts of a fix). The base model's fixes (``base+shift``,
``base+center``) are untrained too: evaluated once, constants in a contrast. ``p_adj``:
Benjamini-Hochberg within each family (``scipy.stats.false_discovery_control``). For
``rank_distance`` and ``lang_knn_purity`` lower is better (column ``better``).

Intervals of one model (:func:`aggregate`): the same model on the model's own per-unit values: a t
interval with Satterthwaite df over seeds and clusters; for a single seed (and the base model,
evaluated once) a t interval over clusters that describes that one model (column ``interval``).
"""

from __future__ import annotations

import logging
import math
import re
from typing import Sequence

import numpy as np
import pandas as pd
from scipy import stats as sps

from hbkit.analysis.blocks import (
    BASE_MODEL,
    BASE_SEED,
    LOWER_IS_BETTER,
    block_rng,
    complete_coded_seeds,
    finish_table,
    format_seeds,
    metric_blocks,
    normalise_per_query,
    trained_seeds,
)
from hbkit.analysis.crossed import clusters_test, crossed_test
from hbkit.core.vocab import (
    FIX_CONTRASTS,
    FIXES,
    STRATEGIES,
    STRATEGY_CONTRASTS,
    has_fix,
    untrained,
    with_fix,
)
from hbkit.data.registry import is_corpus_benchmark, non_parallel

log = logging.getLogger(__name__)


_PERM_CHUNK = 2000


# --------------------------------------------------------------------------------------------------
# public: aggregate over seeds, effects, alignment effects
# --------------------------------------------------------------------------------------------------
def _one_model_interval(
    d: np.ndarray, level: float = 0.05
) -> tuple[float, float, float, float, str]:
    """(low, high, se, df, kind) of the mean of ``d`` (S x G per-unit values, scaled so that the
    mean is the macro value): the crossed model over seeds and clusters for S >= 2; for one seed a t
    interval over clusters, which describes that one trained (or the base) model."""
    S, G = d.shape
    if S >= 2:
        r = crossed_test(d, level)
        return (
            float(r["low"]),
            float(r["high"]),
            float(r["se"]),
            float(r["df"]),
            "seeds and clusters",
        )
    if G < 2:
        return np.nan, np.nan, np.nan, np.nan, "one cluster"
    se = float(d[0].std(ddof=1) / np.sqrt(G))
    half = float(sps.t.ppf(1 - level / 2, G - 1)) * se
    m = float(d.mean())
    return m - half, m + half, se, float(G - 1), "clusters (one model)"


AGGREGATE_COLUMNS = [
    "model",
    "strategy",
    "alpha",
    "benchmark",
    "setting",
    "metric",
    "mean",
    "sd",
    "low",
    "high",
    "se",
    "df",
    "interval",
    "n_seeds",
    "seeds",
    "n_groups",
]


def aggregate(
    per_query: pd.DataFrame, metrics: Sequence[str] = ("map", "rank_distance"), level: float = 0.05
) -> pd.DataFrame:
    """Per (model, benchmark, setting, metric): the macro value over seeds with a (1 - level)
    interval.

    Columns :data:`AGGREGATE_COLUMNS`: ``mean = (1/S) sum_s macro_s`` (macro as in the module
    docstring), ``sd`` the standard deviation of ``macro_s`` over seeds (ddof=1; NaN for one seed,
    e.g. ``base``), ``low``/``high`` the t interval of the crossed model over seeds and units
    (``interval``: ``seeds and clusters``), or over units alone for one seed (``clusters (one
    model)``), with its ``se`` and ``df``; ``n_groups`` the units (clusters, or groups) with a
    value. Seeds are first restricted by :func:`hbkit.analysis.blocks.complete_seeds`; what it left
    out is in ``attrs["missing"]`` (and logged). A (benchmark, setting, metric) with no value (e.g.
    rank distance in ``mono``) has no row.

    Args:
        per_query: per-query results of a run (``model, seed, benchmark, setting, group, metric,
            value``, as :func:`hbkit.experiment.report.load_run` returns them under ``per_query``).
        metrics: the metrics to aggregate.
        level: one minus the intervals' coverage.

    Returns:
        One row per (model, benchmark, setting, metric), columns :data:`AGGREGATE_COLUMNS`.

    Examples:
        >>> agg = aggregate(per_query, metrics=("map",))       # doctest: +SKIP
        >>> agg[["model", "setting", "mean", "low", "high", "interval"]]   # doctest: +SKIP
    """
    if not 0 < level < 1:
        raise ValueError(f"level={level!r}: use a number between 0 and 1 (0.05 for 95% intervals)")
    pq, u = normalise_per_query(per_query, metrics)
    pq, missing = complete_coded_seeds(pq, u)
    meta = pq.drop_duplicates("model").set_index("model")[["strategy", "alpha"]]
    rows, notes = [], []
    for blk in metric_blocks(pq, u, metrics, common_mask=False):
        trained_seeds(blk)
        pt = blk.point()
        G = len(blk.groups)
        for model, rix in blk.index.items():
            if np.isnan(pt[rix]).any():
                notes.append(
                    f"{blk.benchmark}/{blk.setting}/{blk.metric}: {model} has no value"
                    + (" for some seeds" if not np.isnan(pt[rix]).all() else "")
                )
                continue
            low, high, se, df, kind = _one_model_interval(
                G * blk.contributions(model, centered=True), level
            )
            rows.append(
                {
                    "model": model,
                    "strategy": meta.at[model, "strategy"],
                    "alpha": meta.at[model, "alpha"],
                    "benchmark": blk.benchmark,
                    "setting": blk.setting,
                    "metric": blk.metric,
                    "mean": float(np.mean(pt[rix])),
                    "sd": float(np.std(pt[rix], ddof=1)) if len(rix) > 1 else np.nan,
                    "low": low,
                    "high": high,
                    "se": se,
                    "df": df,
                    "interval": kind,
                    "n_seeds": len(rix),
                    "seeds": format_seeds(blk.seeds[model]),
                    "n_groups": G,
                }
            )
    return finish_table(pd.DataFrame(rows, columns=AGGREGATE_COLUMNS), missing, notes)


def _parse_contrasts(contrasts, models: Sequence[str]) -> list[tuple[str, str]]:
    if contrasts is None:
        out = [
            c for c in (*STRATEGY_CONTRASTS, *FIX_CONTRASTS) if c[0] in models and c[1] in models
        ]
        order = {m: i for i, m in enumerate(("xx", "xy", "hybrid"))}
        plain = sorted((m for m in models if not has_fix(m)), key=lambda m: (order.get(m, 9), m))
        out += [(m, BASE_MODEL) for m in plain if m != BASE_MODEL and BASE_MODEL in models]
        # what a fix adds
        out += [(with_fix(m, f), m) for m in plain for f in FIXES if with_fix(m, f) in models]
        return out
    out = []
    for c in contrasts:
        if isinstance(c, str):
            parts = [p.strip() for p in re.split(r"\s+-\s+", c)]
        else:
            parts = list(c)
        if len(parts) != 2 or parts[0] == parts[1]:
            raise ValueError(
                f"contrast {c!r}: write it as 'a - b' or ('a', 'b') with two different models"
            )
        for m in parts:
            if m not in models:
                raise ValueError(
                    f"contrast {c!r}: no results for model {m!r} (models: {', '.join(models)})"
                )
        out.append((parts[0], parts[1]))
    return out


def _default_skipped(models: Sequence[str]) -> list[str]:
    notes = [
        f"contrast {a} - {b} not computed: no results for "
        f"{', '.join(m for m in (a, b) if m not in models)}"
        for a, b in STRATEGY_CONTRASTS
        if a not in models or b not in models
    ]
    if BASE_MODEL not in models:
        notes.append("contrasts against base not computed: no results for base")
    return notes


def _sign_p(
    T: np.ndarray, U: np.ndarray, rng: np.random.Generator, n_perm: int
) -> tuple[np.ndarray, str]:
    """Two-sided sign-flip p-values of statistics ``T`` (n,) with unit contributions ``U`` (units,
    n): exact over all 2^units sign vectors when they number at most ``n_perm``, else Monte
    Carlo."""
    units = U.shape[0]
    thr = np.abs(T) * (1 - 1e-9) - 1e-15
    if units <= 30 and 2**units <= n_perm:
        codes = np.arange(2**units, dtype=np.int64)[:, None]
        signs = 1.0 - 2.0 * ((codes >> np.arange(units)) & 1)
        return (np.abs(signs @ U) >= thr).mean(0), "exact"
    hits = np.zeros(len(T))
    total = U.sum(0)
    nbytes = (units + 7) // 8
    done = 0
    # sign_g = 1 - 2 bit_g, bits uniform: sum_g sign_g U_g = total - 2 bits @ U
    while done < n_perm:
        n = min(_PERM_CHUNK, n_perm - done)
        bits = np.unpackbits(
            np.frombuffer(rng.bytes(n * nbytes), dtype=np.uint8).reshape(n, nbytes),
            axis=1,
            count=units,
        )
        hits += (np.abs(total - 2.0 * (bits.astype(np.float64) @ U)) >= thr).sum(0)
        done += n
    return (1.0 + hits) / (1.0 + n_perm), "monte-carlo"


def _fdr(p: pd.Series) -> pd.Series:
    ok = p.notna().to_numpy()
    out = np.full(len(p), np.nan)
    if ok.any():
        out[ok] = sps.false_discovery_control(p.to_numpy()[ok], method="bh")
    return pd.Series(out, index=p.index)


EFFECT_COLUMNS = [
    "contrast",
    "a",
    "b",
    "family",
    "benchmark",
    "setting",
    "metric",
    "better",
    "a_value",
    "b_value",
    "diff",
    "low",
    "high",
    "se",
    "df",
    "t",
    "p",
    "p_adj",
    "mde",
    "seeds_agree",
    "s2_seed",
    "s2_cluster",
    "s2_resid",
    "seed_share",
    "p_models",
    "p_method",
    "n_seeds",
    "seeds",
    "n_groups",
]


#: (setting, metric) pairs that the claims test: C1-C3 (mAP per setting), C4 (multi rank distance,
#: TLR@10, MRC@10), A1 (alignment measures; on TyDi-QA, which is not parallel, multilingual acc@1)
CLAIM_MEASURES = {
    ("mono", "map"),
    ("cross", "map"),
    ("multi", "map"),
    ("multi", "rank_distance"),
    ("multi", "tlr@10"),
    ("multi", "mrc@10"),
    ("alignment", "cos_gap"),
    ("alignment", "translation_p@1"),
    ("alignment", "lang_knn_purity"),
}


def family(a: str, b: str, benchmark: str, setting: str, metric: str) -> str:
    """``claims`` for a contrast between two of :data:`STRATEGIES` on a (setting, metric) that a
    claim needs (:data:`CLAIM_MEASURES`, plus multilingual acc@1 on non-parallel pool benchmarks),
    and for hybrid against a fix of the base model (:data:`~hbkit.core.vocab.FIX_CONTRASTS`) on mAP;
    ``fixes`` for any other contrast with a fixed model (``hybrid+shift - hybrid``); ``base`` for a
    contrast with the untrained model; else ``strategies``. Benjamini-Hochberg runs within each
    family."""
    if (
        a,
        b,
    ) in FIX_CONTRASTS:  # C6/C7: hybrid against a free fix of the base model, on the settings' mAP
        return "claims" if metric == "map" and not is_corpus_benchmark(benchmark) else "fixes"
    if has_fix(a) or has_fix(b):
        return "fixes"
    if BASE_MODEL in (a, b):
        return "base"
    if a in STRATEGIES and b in STRATEGIES and not is_corpus_benchmark(benchmark):
        # TyDi-QA: no alignment measures in A1; multilingual acc@1 instead
        if non_parallel(benchmark):
            if (setting, metric) == ("multi", "acc@1") or (
                (setting, metric) in CLAIM_MEASURES and setting != "alignment"
            ):
                return "claims"
        elif (setting, metric) in CLAIM_MEASURES:
            return "claims"
    return "strategies"


def _adjust(df: pd.DataFrame) -> pd.DataFrame:
    """``family`` (if absent) and ``p_adj`` = Benjamini-Hochberg within each family."""
    if df.empty:
        return df
    if "family" not in df or df["family"].isna().any():
        df["family"] = [
            family(r.a, r.b, r.benchmark, r.setting, r.metric) for r in df.itertuples(index=False)
        ]
    df["p_adj"] = np.nan
    for _, idx in df.groupby("family").groups.items():
        df.loc[idx, "p_adj"] = _fdr(df.loc[idx, "p"]).to_numpy()
    return df


def _seeds_agree(per_seed: np.ndarray, diff: float) -> str:
    """``k/S``: the seeds whose own difference has the sign of the mean difference."""
    k = int((np.sign(per_seed) == np.sign(diff)).sum()) if diff != 0 else 0
    return f"{k}/{len(per_seed)}"


def effects(
    per_query: pd.DataFrame,
    contrasts: Sequence | None = None,
    metrics: Sequence[str] = ("map", "rank_distance"),
    n_perm: int = 10000,
    seed: int = 0,
    level: float = 0.05,
) -> pd.DataFrame:
    """Paired effects ``a - b`` per (contrast, benchmark, setting, metric), decided by the
    strategy-level test.

    ``contrasts``: ``["hybrid - xx", ("xy", "xx"), ...]``; default ``hybrid - xx``, ``hybrid - xy``,
    ``xy - xx`` (those whose models are present; the others are listed in ``attrs["notes"]``) and
    every other model ``- base``. Columns :data:`EFFECT_COLUMNS`:

    * ``diff`` (mean over paired seeds of the macro difference; base constant),
      ``a_value``/``b_value``;
    * from :func:`hbkit.analysis.crossed.crossed_test` on the seeds x units contributions: ``se``,
      ``df``, ``t``, ``p`` (strategy level), the t interval ``low``/``high`` at ``1 - level``,
      ``mde`` (80% power at ``level``), the variance split
      ``s2_seed``/``s2_cluster``/``s2_resid``/``seed_share``; NaN with one seed;
    * ``family`` (:func:`family`) and ``p_adj`` (Benjamini-Hochberg within the family);
    * ``seeds_agree``: ``k/S`` seeds whose own difference has the sign of ``diff``;
    * ``p_models``: the sign-flip p over units with the trained models fixed (``p_method``:
      ``exact`` or ``monte-carlo``; a statement about these trained models, which decides nothing);
    * ``better``: ``lower`` for rank distance and language k-NN purity (a negative diff favours
      ``a``).

    Queries count only where every model has a value. Seeds are restricted by
    :func:`hbkit.analysis.blocks.complete_seeds` (``attrs["missing"]``). Raises ``ValueError`` for a
    contrast naming a model without results.

    Examples:
        >>> eff = effects(per_query)                                        # doctest: +SKIP
        >>> cols = ["contrast", "setting", "diff", "low", "high", "p_adj", "mde"]  # doctest: +SKIP
        >>> eff[eff.family == "claims"][cols]  # doctest: +SKIP
    """
    if not isinstance(n_perm, (int, np.integer)) or n_perm < 1:
        raise ValueError(f"n_perm={n_perm!r}; use an integer >= 1 (10000 for reported p-values)")
    if not 0 < level < 1:
        raise ValueError(f"level={level!r}: use a number between 0 and 1 (e.g. 0.05)")
    pq, u = normalise_per_query(per_query, metrics)
    pq, missing = complete_coded_seeds(pq, u)
    models = [str(m) for m in pd.unique(pq["model"])]
    pairs = _parse_contrasts(contrasts, models)
    notes = _default_skipped(models) if contrasts is None else []
    rows = []
    for blk in metric_blocks(pq, u, metrics, common_mask=True):
        notes += blk.notes
        here = [(a, b) for a, b in pairs if a in blk.index and b in blk.index]
        for a, b in pairs:
            if (a, b) not in here:
                notes.append(
                    f"{blk.benchmark}/{blk.setting}/{blk.metric}: {a} - {b} not computed: "
                    f"no results for {', '.join(m for m in (a, b) if m not in blk.index)} there"
                )
        if not here:
            continue
        trained_seeds(blk)
        pt = blk.point()
        G = len(blk.groups)
        contribs = [blk.contributions(a, b) for a, b in here]  # each (S, G)
        T = np.array([c.sum(1).mean() for c in contribs])
        p_models, how = _sign_p(
            T, np.stack([c.mean(0) for c in contribs], 1), block_rng(seed, blk, 1), n_perm
        )
        for i, (a, b) in enumerate(here):
            ia, ib = blk.index[a], blk.index[b]
            # base+shift - base: no seed
            test = clusters_test if untrained(a) and untrained(b) else crossed_test
            r = {
                k: float(v)
                for k, v in test(G * blk.contributions(a, b, centered=True), level).items()
            }
            rows.append(
                {
                    "contrast": f"{a} - {b}",
                    "a": a,
                    "b": b,
                    "family": family(a, b, blk.benchmark, blk.setting, blk.metric),
                    "benchmark": blk.benchmark,
                    "setting": blk.setting,
                    "metric": blk.metric,
                    "better": "lower" if blk.metric in LOWER_IS_BETTER else "higher",
                    "a_value": float(np.mean(pt[ia])),
                    "b_value": float(np.mean(pt[ib])),
                    "diff": float(T[i]),
                    **{
                        k: r[k]
                        for k in (
                            "low",
                            "high",
                            "se",
                            "df",
                            "t",
                            "p",
                            "mde",
                            "s2_seed",
                            "s2_cluster",
                            "s2_resid",
                            "seed_share",
                        )
                    },
                    "p_adj": np.nan,
                    "seeds_agree": _seeds_agree(contribs[i].sum(1), float(T[i])),
                    "p_models": float(p_models[i]),
                    "p_method": how,
                    "n_seeds": max(len(ia), len(ib)),
                    "seeds": format_seeds(blk.seeds[a] if len(ia) >= len(ib) else blk.seeds[b]),
                    "n_groups": G,
                }
            )
    df = _adjust(pd.DataFrame(rows, columns=EFFECT_COLUMNS))
    return finish_table(df, missing, notes)


def alignment_as_per_query(align_items: pd.DataFrame) -> pd.DataFrame:
    """The per-item alignment frame (``model, strategy, alpha, seed, benchmark, metric, group,
    value``, one row per group and measure: :func:`hbkit.retrieval.alignment.alignment_per_group`
    with the model identity added) in the per-query shape: setting ``alignment``, one cell (``qlang
    = dlang = "all"``), ``query_id`` = ``group``, one column per measure. :func:`aggregate` and
    :func:`effects` take the result."""
    need = ["model", "seed", "benchmark", "metric", "group", "value"]
    absent = [c for c in need if c not in align_items.columns]
    if absent:
        raise ValueError(
            f"alignment items lack column(s) {', '.join(absent)}; they need {', '.join(need)} "
            "(alignment_per_group per model, seed and benchmark, with those columns added)"
        )
    a = align_items.copy()
    for c in ("strategy", "alpha"):
        if c not in a.columns:
            a[c] = np.nan
    a["seed"] = pd.to_numeric(a["seed"], errors="coerce").fillna(BASE_SEED)
    key = ["model", "seed", "benchmark", "metric", "group"]
    dup = a.duplicated(key)
    if dup.any():
        r = a[dup].iloc[0]
        raise ValueError(
            f"alignment items: {int(dup.sum())} duplicated row(s), e.g. model {r['model']} seed "
            f"{r['seed']} {r['benchmark']} {r['metric']} group {r['group']}; one value per group"
        )
    wide = (
        a.set_index(["model", "seed", "benchmark", "group", "metric"])["value"]
        .unstack("metric")
        .reset_index()
    )
    wide.columns.name = None
    meta = a.groupby("model")[["strategy", "alpha"]].first()
    wide = wide.merge(meta, left_on="model", right_index=True, how="left")
    if "cluster" in a.columns:
        wide = wide.merge(
            a[["benchmark", "group", "cluster"]].drop_duplicates(["benchmark", "group"]),
            on=["benchmark", "group"],
            how="left",
        )
    # a (model, seed, benchmark) lacking a group has no row: effects() then names it (not the same
    # items)
    return wide.assign(
        setting="alignment", qlang="all", dlang="all", query_id=wide["group"].astype(str)
    )


def alignment_effects(
    align_items: pd.DataFrame,
    contrasts: Sequence | None = None,
    n_perm: int = 10000,
    seed: int = 0,
    level: float = 0.05,
) -> pd.DataFrame:
    """:func:`effects` of the per-group alignment measures: one cell per benchmark and measure,
    groups (or the ``cluster`` column's clusters) as units, setting ``alignment``, metric the
    measure (``cos_gap`` and ``translation_p@1`` higher is better, ``lang_knn_purity`` lower). Same
    columns and attrs as :func:`effects`; BH over these rows only (join families with
    :func:`combine_effects`)."""
    wide = alignment_as_per_query(align_items)
    metrics = [m for m in dict.fromkeys(align_items["metric"])]
    return effects(wide, contrasts, metrics, n_perm, seed, level)


def combine_effects(*frames: pd.DataFrame) -> pd.DataFrame:
    """Concatenate effect tables (e.g. :func:`effects` and :func:`alignment_effects`) and recompute
    ``p_adj`` by Benjamini-Hochberg within each ``family`` over all their rows; ``attrs`` are
    merged."""
    df = (
        pd.concat([f for f in frames if len(f)], ignore_index=True)
        if any(len(f) for f in frames)
        else pd.DataFrame(columns=EFFECT_COLUMNS)
    )
    df = _adjust(df)
    df.attrs["missing"] = list(dict.fromkeys(x for f in frames for x in f.attrs.get("missing", [])))
    df.attrs["notes"] = list(dict.fromkeys(x for f in frames for x in f.attrs.get("notes", [])))
    return df


# --------------------------------------------------------------------------------------------------
# alignment against retrieval
# --------------------------------------------------------------------------------------------------
CORRELATION_COLUMNS = [
    "benchmark",
    "alignment_metric",
    "setting",
    "metric",
    "n",
    "spearman",
    "low",
    "high",
    "p",
]


def spearman_interval(
    x: np.ndarray, y: np.ndarray, level: float = 0.05
) -> tuple[float, float, float, float]:
    """Spearman's rho of ``x`` and ``y``, its ``1 - level`` interval (Fisher's z, Bonett and
    Wright's variance ``(1 + rho^2 / 2) / (n - 3)``) and the p of ``rho = 0`` (scipy). NaN for n < 4
    or a constant side."""
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    n = len(x)
    if n < 4 or len(np.unique(x)) < 2 or len(np.unique(y)) < 2:
        return (np.nan,) * 4
    res = sps.spearmanr(x, y)
    rho, p = float(res.statistic), float(res.pvalue)
    half = sps.norm.ppf(1 - level / 2) * np.sqrt((1 + rho**2 / 2) / (n - 3))
    # libm, not numpy's SIMD loops: the same last digit on every CPU
    zr = math.atanh(min(max(rho, -0.999999), 0.999999))
    return rho, math.tanh(zr - half), math.tanh(zr + half), p


def alignment_vs_retrieval(
    results: pd.DataFrame, alignment: pd.DataFrame, metric: str = "map", level: float = 0.05
) -> pd.DataFrame:
    """Does better alignment go with better retrieval? Across every model and seed of a run (one
    point each: the base model once, each trained model per seed), Spearman's correlation of each
    alignment measure (``alignment.csv``: ``model, seed, benchmark, metric, value``) with ``metric``
    per setting (``results.csv``'s macro rows), per benchmark, with a ``1 - level`` interval:
    Fisher's z with Bonett and Wright's (2000) variance ``(1 + r^2 / 2) / (n - 3)``, and the p of
    ``rho = 0`` from scipy's ``spearmanr``. The points share base models and data, so the interval
    treats them as a sample of training runs (coverage simulated in ``tests/test_stats.py``). Fewer
    than 4 points give NaN. Columns :data:`CORRELATION_COLUMNS`.

    Alignment is not retrieval (mOthello, arXiv 2404.12444, found alignment alone does not give
    transfer): the table says how far the two move together in this run, not that one causes the
    other.

    Args:
        results: a run's ``results.csv`` (macro rows per model, seed, benchmark, setting, metric).
        alignment: a run's ``alignment.csv``.
        metric: the retrieval metric to correlate with.
        level: one minus the intervals' coverage.

    Returns:
        One row per (benchmark, alignment measure, setting), columns :data:`CORRELATION_COLUMNS`
        (``spearman`` with ``low``/``high``, ``p`` and the ``n`` points).

    Examples:
        >>> run = load_run("results/cpu")  # doctest: +SKIP
        >>> alignment_vs_retrieval(run["results"], run["alignment"]).round(3)  # doctest: +SKIP
    """
    keys = ["model", "seed", "benchmark"]
    r = results[
        (results["metric"] == metric) & (results["qlang"] == "all") & (results["dlang"] == "all")
    ]
    r = r[r["setting"].isin(["mono", "cross", "multi"])]
    a = alignment[["model", "seed", "benchmark", "metric", "value"]].rename(
        columns={"metric": "alignment_metric", "value": "alignment_value"}
    )
    both = r[keys + ["setting", "value"]].merge(a, on=keys, how="inner")
    rows = []
    for (bench, am, setting), g in both.groupby(
        ["benchmark", "alignment_metric", "setting"], sort=True
    ):
        g = g.dropna(subset=["value", "alignment_value"])
        n = len(g)
        rho, low, high, p = spearman_interval(
            g["alignment_value"].to_numpy(), g["value"].to_numpy(), level
        )
        rows.append(
            {
                "benchmark": bench,
                "alignment_metric": am,
                "setting": setting,
                "metric": metric,
                "n": n,
                "spearman": rho,
                "low": low,
                "high": high,
                "p": p,
            }
        )
    return pd.DataFrame(rows, columns=CORRELATION_COLUMNS)
