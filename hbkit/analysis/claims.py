"""Verdicts on the paper's claims from strategy-level effects, and the power plan for them."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats as sps

from hbkit.analysis.crossed import (
    MIN_SEEDS,
    expected_se_df,
    power_of,
    seed_variance_upper,
    seeds_needed,
)
from hbkit.core.vocab import SETTINGS
from hbkit.data.registry import is_corpus_benchmark, non_parallel

# --------------------------------------------------------------------------------------------------
# verdicts on the paper's claims
# --------------------------------------------------------------------------------------------------
#: claim -> (statement, setting, metric, [(a, b, claimed sign of a - b[, metric[, setting]])]); a
#: comparison's own metric overrides the claim's (C4 is decided on several bias measures, each with
#: its own comparisons), and its own setting the claim's (C6 and C7, whose claim setting is None,
#: compare in every setting a benchmark has)
DIRECTIONAL_CLAIMS = {
    "C1": (
        "X-X-mono (xx) is the best trained strategy in the monolingual setting (mAP)",
        "mono",
        "map",
        [("xx", "xy", +1), ("xx", "hybrid", +1)],
    ),
    "C2": (
        "X-Y (xy) is the best trained strategy in the cross-lingual setting (mAP)",
        "cross",
        "map",
        [("xy", "xx", +1), ("xy", "hybrid", +1)],
    ),
    "C3": (
        "hybrid is the best trained strategy in the multilingual setting (mAP)",
        "multi",
        "map",
        [("hybrid", "xx", +1), ("hybrid", "xy", +1)],
    ),
    "C4": (
        "hybrid reduces language bias compared with X-X-mono and X-Y (multi): a lower maximum "
        "rank distance, and a higher TLR@10 (relevant passages in other languages in the top 10) "
        "and MRC@10 (rank correlation of parallel queries)",
        "multi",
        "rank_distance",
        [
            ("hybrid", "xx", -1),
            ("hybrid", "xy", -1),
            ("hybrid", "xx", +1, "tlr@10"),
            ("hybrid", "xy", +1, "tlr@10"),
            ("hybrid", "xx", +1, "mrc@10"),
            ("hybrid", "xy", +1, "mrc@10"),
        ],
    ),
    # the free fixes (hbkit.retrieval.posthoc), estimated from the training passages: does training
    # with hybrid batches beat a transform of the untrained model's embeddings? (setting None: each
    # comparison names its own; a benchmark without a setting, TyDi-QA's cross, leaves that
    # comparison out)
    "C6": (
        "hybrid beats SHIFT on the base model, a training-free fix (mAP, every setting)",
        None,
        "map",
        [("hybrid", "base+shift", +1, "map", s) for s in SETTINGS],
    ),
    "C7": (
        "hybrid beats language-wise centering of the base model, a training-free fix (mAP, every "
        "setting)",
        None,
        "map",
        [("hybrid", "base+center", +1, "map", s) for s in SETTINGS],
    ),
}


C5_STATEMENT = "hybrid is within delta mAP of the best trained strategy in every setting"


A1_STATEMENT = (
    "hybrid improves alignment over xx and xy: higher cos_gap and translation_p@1, lower "
    "lang_knn_purity (parallel benchmarks); higher multilingual acc@1 (k-NN question-to-passage "
    "accuracy) on TyDi-QA"
)


#: (metric, claimed sign) of A1 on parallel benchmarks; non-parallel ones use multi acc@1
A1_MEASURES = (("cos_gap", +1), ("translation_p@1", +1), ("lang_knn_purity", -1))


VERDICT_COLUMNS = [
    "claim",
    "benchmark",
    "verdict",
    "statement",
    "evidence",
    "diffs",
    "p_adj",
    "mde",
]


TOO_FEW = "too few seeds"


def _too_few_txt(n: float) -> str:
    """Why no strategy verdict is given with ``n`` training seeds per strategy (fewer than
    :data:`MIN_SEEDS`)."""
    if not np.isfinite(n) or n < 2:
        return (
            "one training seed per strategy: these numbers describe these trained models only, and "
            "no test about strategies exists without seed-to-seed variation. Train at least 3 "
            "seeds (--seeds 0,1,2); the power plan (power.csv) then says how many a verdict needs"
        )
    return (
        f"{int(n)} training seeds per strategy: the strategy-level test rejects a true null up to "
        "13% of the time at 5% with 2 seeds when seeds vary (simulated), so a verdict needs at "
        f"least {MIN_SEEDS} (--seeds 0,1,2); the power plan (power.csv) says how many"
    )


def _few_seeds(comps) -> float | None:
    """The seeds per strategy when every comparison has fewer than :data:`MIN_SEEDS`, else None."""
    n = [c.get("n_seeds", np.nan) for c in comps]
    n = [x if np.isfinite(x) else 1 for x in n]
    return max(n) if comps and max(n) < MIN_SEEDS else None


def _index(eff: pd.DataFrame) -> dict:
    """(benchmark, setting, metric, a, b) -> effect row as a dict, for the lookups of
    :func:`verdicts`."""
    return {
        (r["benchmark"], r["setting"], r["metric"], r["a"], r["b"]): r
        for r in eff.to_dict("records")
    }


def _lookup(idx: dict, bench: str, setting: str, metric: str, a: str, b: str) -> dict | None:
    """The effect ``a - b`` (flipped from ``b - a`` when only that one was computed), or None."""
    for x, y, sign in ((a, b, 1.0), (b, a, -1.0)):
        r = idx.get((bench, setting, metric, x, y))
        if r is not None:
            lo, hi = sign * r["low"], sign * r["high"]
            return {
                "name": f"{a} - {b}",
                "setting": setting,
                "metric": metric,
                "diff": sign * r["diff"],
                "low": min(lo, hi),
                "high": max(lo, hi),
                "p_adj": r["p_adj"],
                "mde": r["mde"],
                "se": r.get("se", np.nan),
                "df": r.get("df", np.nan),
                "n_seeds": r.get("n_seeds", np.nan),
                "seeds_agree": r.get("seeds_agree", ""),
            }
    return None


def _txt(c: dict, with_p: bool = True) -> str:
    if not np.isfinite(c["low"]):
        return f"{c['name']} = {c['diff']:+.3f} (one seed: no interval over seeds)"
    s = f"{c['name']} = {c['diff']:+.3f} [{c['low']:+.3f}, {c['high']:+.3f}]"
    if not with_p:
        return s
    agree = (
        f", seeds agree in sign: {c['seeds_agree'].replace('/', ' of ')}"
        if c.get("seeds_agree")
        else ""
    )
    return s + f", p_adj = {c['p_adj']:.3g} (df {c['df']:.1f}){agree}"


def _weak_txt(c: dict, want: str) -> str:
    """Why a comparison is not significant, with the smallest effect this run detects."""
    if c["se"] == 0:
        return (
            f"{_txt(c)}: no variation between seeds or clusters (every unit differs by the same "
            "amount); nothing to test"
        )
    return (
        f"{_txt(c)}: not significant (needs {want}; this run detects effects of about "
        f"{c['mde']:.3g} or more with 80% power)"
    )


def _directional(
    comps: list[tuple[dict | None, int, str]], level: float
) -> tuple[str, str, str, float, float]:
    """comps: (effect or None, claimed sign, description of what it is) -> verdict, evidence, diffs,
    p, mde. Significant: ``p_adj < level`` of the strategy-level test (the family of the claims)."""
    have = [(c, s) for c, s, _ in comps if c is not None]
    miss = [d for c, _, d in comps if c is None]
    diffs = "; ".join(_txt(c, False) for c, _ in have)
    # the deciding p of supported and inconclusive
    p = max((c["p_adj"] for c, _ in have), default=np.nan)
    mde = max((c["mde"] for c, _ in have), default=np.nan)
    few = _few_seeds([c for c, _ in have])
    if few is not None:
        return TOO_FEW, _too_few_txt(few), diffs, p, mde
    sig = [bool(np.isfinite(c["p_adj"]) and c["p_adj"] < level) for c, _ in have]
    wrong = [(c, s) for (c, s), k in zip(have, sig) if k and np.sign(c["diff"]) == -s]
    right = [(c, s) for (c, s), k in zip(have, sig) if k and np.sign(c["diff"]) == s]
    weak = [(c, s) for (c, s), k in zip(have, sig) if not k or np.sign(c["diff"]) == 0]
    want = lambda s: "> 0" if s > 0 else "< 0"  # noqa: E731
    if wrong:
        ev = "; ".join(
            f"{_txt(c)}: significant against the claim (it needs {want(s)})" for c, s in wrong
        )
        ev += "".join(f"; {_txt(c)}: significant as claimed" for c, _ in right)
        return (
            "contradicted",
            ev,
            diffs,
            min(c["p_adj"] for c, _ in wrong),
            mde,
        )  # the p that decides it
    if miss:
        return "inconclusive", "missing: " + "; ".join(miss), diffs, p, mde
    if not weak:
        return (
            "supported",
            (
                f"all {len(right)} comparisons significant in the claimed direction "
                "(strategy-level "
                f"test, p_adj < {level:g}): " + "; ".join(_txt(c) for c, _ in right)
            ),
            diffs,
            p,
            mde,
        )
    ev = "; ".join(
        [_weak_txt(c, want(s)) for c, s in weak]
        + [f"{_txt(c)}: significant as claimed" for c, _ in right]
    )
    return "inconclusive", ev, diffs, p, mde


def _by_verdict(per_bench: list[dict]) -> str:
    """Every benchmark under its verdict, contradicted first: ``contradicted on a; supported on
    b; ...``."""
    order = ("contradicted", "supported", "inconclusive", TOO_FEW)
    return "; ".join(
        f"{v} on " + ", ".join(r["benchmark"] for r in per_bench if r["verdict"] == v)
        for v in order
        if any(r["verdict"] == v for r in per_bench)
    )


def _combine(
    claim: str,
    statement: str,
    per_bench: list[dict],
    not_applicable: list[str],
    verdict: str | None = None,
    ev: str | None = None,
    p: float | None = None,
) -> dict:
    """The ``all`` row of a claim: supported only if supported on every benchmark, contradicted if
    contradicted on any (``p_adj``: the smallest deciding p of those), else inconclusive; the
    evidence names every benchmark under its verdict, and the comparisons significant as claimed
    where the claim is contradicted. ``verdict``, ``ev`` and ``p`` override that rule (C5 decides
    its ``all`` row over the pooled comparisons)."""
    v = [r["verdict"] for r in per_bench]
    deciding = [
        r["p_adj"] for r in per_bench if r["verdict"] == "contradicted" and pd.notna(r["p_adj"])
    ]
    if verdict is not None:
        pass
    elif not per_bench:
        verdict, ev = "inconclusive", "no benchmark has the effects this claim needs"
    elif all(x == TOO_FEW for x in v):
        verdict, ev = TOO_FEW, per_bench[0]["evidence"]
    elif "contradicted" in v:
        verdict, ev = "contradicted", _by_verdict(per_bench)
        backing = [
            f"{r['benchmark']}: "
            + "; ".join(
                x.strip().removesuffix(": significant as claimed")
                for x in r["evidence"].split("; ")
                if x.endswith("as claimed")
            )
            for r in per_bench
            if "significant as claimed" in r["evidence"]
        ]
        if backing:
            ev += "; significant as claimed on " + "; ".join(backing)
    elif all(x == "supported" for x in v):
        verdict, ev = (
            "supported",
            "supported on every benchmark: " + ", ".join(r["benchmark"] for r in per_bench),
        )
    else:
        verdict, ev = "inconclusive", _by_verdict(per_bench)
    if not_applicable:
        ev += "; not applicable: " + "; ".join(not_applicable)
    if p is None:
        p = (
            min(deciding)
            if verdict == "contradicted" and deciding
            else max((r["p_adj"] for r in per_bench if pd.notna(r["p_adj"])), default=np.nan)
        )
    return {
        "claim": claim,
        "benchmark": "all",
        "verdict": verdict,
        "statement": statement,
        "evidence": ev,
        "diffs": "",
        "p_adj": p,
        "mde": max((r["mde"] for r in per_bench if pd.notna(r["mde"])), default=np.nan),
    }


def _p_over(c: dict, delta: float) -> float:
    """One-sided p of ``diff > delta`` for an effect row (t with its df; se = 0: 0 when above, else
    1)."""
    if c["se"] == 0:
        return 0.0 if c["diff"] > delta else 1.0
    return float(sps.t.sf((c["diff"] - delta) / c["se"], c["df"]))


def _over_delta(comps: list[dict], level: float) -> tuple[list[dict], float]:
    """The comparisons above delta after Bonferroni over ``comps`` (each with ``p_over``), and the
    smallest adjusted p (NaN when there are none)."""
    k = len(comps)
    ps = [c["p_over"] for c in comps if np.isfinite(c["p_over"])]
    if not ps:
        return [], np.nan
    return [c for c in comps if np.isfinite(c["p_over"]) and c["p_over"] * k < level], min(
        1.0, min(ps) * k
    )


def _missing_desc(models: set, bench: str, setting: str, metric: str, a: str, b: str) -> str:
    absent = [m for m in (a, b) if m not in models]
    why = f"no results for {', '.join(absent)}" if absent else "not in the effects table"
    return f"{a} - {b} on {bench} {setting} {metric} ({why})"


def verdicts(effects_df: pd.DataFrame, delta: float = 0.01, level: float = 0.05) -> pd.DataFrame:
    """Verdicts on the paper's claims from an effects table (:func:`hbkit.analysis.stats.effects`,
    or :func:`hbkit.analysis.stats.combine_effects` of retrieval and alignment effects).

    Claims (:data:`DIRECTIONAL_CLAIMS`, C5, A1): C1 xx best in mono (``xx - xy > 0`` and ``xx -
    hybrid > 0``), C2 xy best in cross, C3 hybrid best in multi, C4 hybrid less language-biased than
    xx and xy (multi: rank distance lower, TLR@10 and MRC@10 higher), C6 and C7 hybrid above a free
    fix of the base model (``hybrid - base+shift > 0``, ``hybrid - base+center > 0``, mAP in each
    setting the benchmark has); an effect computed the other way round (``hybrid - xx`` for ``xx -
    hybrid``) is flipped. A comparison is significant when the strategy-level test (module
    docstring) gives ``p_adj < level`` within the ``claims`` family. A directional claim is
    ``supported`` when every needed comparison is significant in the claimed direction,
    ``contradicted`` when any is significant in the opposite one, else ``inconclusive``; with fewer
    than :data:`hbkit.analysis.crossed.MIN_SEEDS` (3) training seeds per strategy it is ``too few
    seeds`` (with one no strategy-level test exists; with two it rejects a true null up to 13% of
    the time). ``p_adj`` is the deciding one: the smallest of the comparisons against the claim when
    contradicted, else the largest. C5, equivalence within ``delta``: for every setting and each
    other strategy (xx, xy), ``other - hybrid`` has a 95% upper bound ``< delta`` -> supported;
    contradicted when a one-sided test of ``other - hybrid > delta`` rejects after Bonferroni over
    the benchmark's comparisons (over every benchmark's for the ``all`` row), so that gaps all just
    inside ``delta`` are called contradicted at most ``level`` of the time (``p_adj``: that adjusted
    p; NaN otherwise). A1: ``hybrid - xx`` and ``hybrid - xy`` improve every alignment measure
    (:data:`A1_MEASURES`, setting ``alignment``) on parallel benchmarks and the multilingual
    ``acc@1`` on TyDi-QA (not parallel), with the directional rule; corpus benchmarks (MIRACL,
    tydiqa-corpus) are not applicable to A1 and have no mAP for C1-C5.

    One row per (claim, benchmark) and an ``all`` row per claim: supported only if supported on
    every benchmark, contradicted if contradicted on any (C5: over the pooled comparisons), else
    inconclusive; its evidence names every benchmark under its verdict; benchmarks without the
    claim's setting (TyDi-QA has no cross setting) are named as not applicable there. Missing
    strategies or effects give ``inconclusive`` with the evidence naming what is missing. Columns
    :data:`VERDICT_COLUMNS`: ``evidence`` (the deciding numbers in a sentence), ``diffs`` (the
    effects with 95% intervals), ``p_adj`` and ``mde`` (the largest over the comparisons). Raises
    ``ValueError`` for ``delta < 0`` or ``level`` outside (0, 1).
    """
    if not isinstance(delta, (int, float, np.floating)) or not np.isfinite(delta) or delta < 0:
        raise ValueError(
            f"delta={delta!r}: the equivalence margin of claim C5 must be a number >= 0 "
            "(in mAP, e.g. 0.01)"
        )
    if not 0 < level < 1:
        raise ValueError(
            f"level={level!r}: the significance level must be between 0 and 1 (e.g. 0.05)"
        )
    need = ["a", "b", "benchmark", "setting", "metric", "diff", "low", "high", "p_adj", "mde"]
    absent = [c for c in need if c not in effects_df.columns]
    if absent:
        raise ValueError(
            f"effects table lacks column(s) {', '.join(absent)}: pass the output of stats.effects"
        )
    ctx = _Effects.of(effects_df)
    rows = (
        _directional_verdicts(ctx, level)
        + _c5_verdicts(ctx, level, delta)
        + _a1_verdicts(ctx, level)
    )
    return pd.DataFrame(rows, columns=VERDICT_COLUMNS)


@dataclass
class _Effects:
    """What every verdict algorithm reads of an effects table: its comparisons indexed
    (:func:`_index`), the (benchmark, setting, metric) cells present, the models and the benchmarks
    in order."""

    idx: dict
    have: set
    models: set
    benches: list

    @classmethod
    def of(cls, eff: pd.DataFrame) -> "_Effects":
        idx = _index(eff)
        return cls(
            idx,
            {(b, st, m) for b, st, m, _, _ in idx},
            {m for *_, a, b in idx for m in (a, b)},
            list(dict.fromkeys(eff["benchmark"])),
        )


def _directional_verdicts(ctx: _Effects, level: float) -> list[dict]:
    """C1-C4, C6, C7: the directional claims, one row per benchmark and an ``all`` row each."""
    idx, have, models, benches = ctx.idx, ctx.have, ctx.models, ctx.benches
    rows: list[dict] = []
    for claim, (statement, setting, metric, needs) in DIRECTIONAL_CLAIMS.items():
        per, na = [], []
        spec = [
            (a, b, s, own[0] if own else metric, own[1] if len(own) > 1 else setting)
            for a, b, s, *own in needs
        ]
        for bench in benches:
            # a claim of one setting needs all its comparisons; one of every setting, those the
            # benchmark has
            here = [x for x in spec if setting is not None or (bench, x[4], x[3]) in have]
            if (setting is not None and (bench, setting, metric) not in have) or not here:
                na.append(f"{bench} (no {setting or ''} {metric})".replace("  ", " "))
                continue
            comps = [
                (_lookup(idx, bench, st, m, a, b), s, _missing_desc(models, bench, st, m, a, b))
                for a, b, s, m, st in here
            ]
            # several measures or settings: name each comparison's
            if any(len(n) > 3 for n in needs):
                for (c, _, _), (a, b, _, m, st) in zip(comps, here):
                    if c is not None:
                        c["name"] = f"{a} - {b} ({st if setting is None else m})"
            v, ev, diffs, p, mde = _directional(comps, level)
            per.append(
                {
                    "claim": claim,
                    "benchmark": bench,
                    "verdict": v,
                    "statement": statement,
                    "evidence": ev,
                    "diffs": diffs,
                    "p_adj": p,
                    "mde": mde,
                }
            )
        rows += per + [_combine(claim, statement, per, na)]
    return rows


def _c5_verdicts(ctx: _Effects, level: float, delta: float) -> list[dict]:
    """C5, equivalence within ``delta``: supported from the intervals, contradicted by one-sided
    tests adjusted over the comparisons."""
    idx, have, models, benches = ctx.idx, ctx.have, ctx.models, ctx.benches
    rows: list[dict] = []
    # C5: equivalence within delta: supported from the intervals, contradicted by one-sided tests
    # adjusted over the comparisons (Bonferroni), so that gaps all just inside delta are called
    # contradicted at most `level` of the time
    per, na, pooled = [], [], []
    statement = C5_STATEMENT.replace("delta", f"delta = {delta:g}")
    for bench in benches:
        settings = [s for s in SETTINGS if (bench, s, "map") in have]
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
        few = _few_seeds(comps)
        if comps and not miss and few is not None:
            per.append(
                {
                    "claim": "C5",
                    "benchmark": bench,
                    "verdict": TOO_FEW,
                    "statement": statement,
                    "evidence": _too_few_txt(few),
                    "diffs": diffs,
                    "p_adj": np.nan,
                    "mde": mde,
                }
            )
            continue
        for c in comps:
            c["p_over"] = _p_over(c, delta)
        pooled += [dict(c, name=f"{bench}: {c['name']}") for c in comps]
        over, p_c5 = _over_delta(comps, level)
        worst = max(comps, key=lambda c: c["high"]) if comps else None
        if over:
            v = "contradicted"
            ev = "; ".join(
                f"{_txt(c, False)}: above delta = {delta:g} (one-sided p {c['p_over']:.3g}, "
                f"x{len(comps)} comparisons: {min(1.0, c['p_over'] * len(comps)):.3g})"
                for c in over
            )
        elif miss:
            v, ev = "inconclusive", "missing: " + "; ".join(miss)
        elif worst["high"] < delta:
            v = "supported"
            ev = (
                f"every upper bound is below delta = {delta:g}; the largest: {_txt(worst, False)} "
                f"({len(comps)} comparisons, unadjusted 95% intervals)"
            )
        else:
            v = "inconclusive"
            ev = "; ".join(
                f"{_txt(c, False)}: upper bound not below delta = {delta:g}"
                for c in comps
                if c["high"] >= delta
            )
        per.append(
            {
                "claim": "C5",
                "benchmark": bench,
                "verdict": v,
                "statement": statement,
                "evidence": ev,
                "diffs": diffs,
                "p_adj": p_c5 if v == "contradicted" else np.nan,
                "mde": mde,
            }
        )
    over, p_all = _over_delta(pooled, level)
    # over every benchmark's comparisons at once: the union of per-benchmark calls would inflate it
    if over:
        all_row = _combine(
            "C5",
            statement,
            per,
            na,
            "contradicted",
            (
                f"above delta = {delta:g} with the {len(pooled)} comparisons of every benchmark "
                "adjusted together: "
                + "; ".join(f"{_txt(c, False)} (one-sided p {c['p_over']:.3g})" for c in over)
                + "; per benchmark: "
                + _by_verdict(per)
            ),
            p_all,
        )
    elif any(r["verdict"] == "contradicted" for r in per):
        all_row = _combine(
            "C5",
            statement,
            per,
            na,
            "inconclusive",
            (
                f"not above delta = {delta:g} once the {len(pooled)} comparisons of every "
                "benchmark are adjusted "
                f"together (smallest adjusted one-sided p {p_all:.3g}); per benchmark: "
                + _by_verdict(per)
            ),
            np.nan,
        )
    else:
        all_row = _combine("C5", statement, per, na, p=np.nan)
    rows += per + [all_row]
    return rows


def _a1_verdicts(ctx: _Effects, level: float) -> list[dict]:
    """A1: hybrid improves alignment (TyDi-QA: the multilingual acc@1)."""
    idx, have, models, benches = ctx.idx, ctx.have, ctx.models, ctx.benches
    rows: list[dict] = []
    # A1: alignment
    per, na = [], []
    for bench in benches:
        if is_corpus_benchmark(bench):
            na.append(f"{bench} (a corpus benchmark: no parallel queries, no alignment measures)")
            continue
        if non_parallel(bench):
            measures, hint = (
                [("multi", "acc@1", +1)],
                "run stats.effects with metrics including 'acc@1'",
            )
        else:
            measures = [("alignment", m, s) for m, s in A1_MEASURES]
            hint = "run stats.alignment_effects and stats.combine_effects"
        wanted = {(st, m) for st, m, _ in measures}
        present = {(st, m) for b, st, m in have if b == bench} & wanted
        if not present:
            what = ", ".join(f"{m}" for _, m, _ in measures)
            per.append(
                {
                    "claim": "A1",
                    "benchmark": bench,
                    "verdict": "inconclusive",
                    "statement": A1_STATEMENT,
                    "evidence": f"missing: no effects of {what} on {bench} ({hint})",
                    "diffs": "",
                    "p_adj": np.nan,
                    "mde": np.nan,
                }
            )
            continue
        comps = []
        for setting, metric, s in measures:
            for other in ("xx", "xy"):
                c = _lookup(idx, bench, setting, metric, "hybrid", other)
                if c is not None:
                    c["name"] = f"hybrid - {other} ({metric})"
                comps.append((c, s, _missing_desc(models, bench, setting, metric, "hybrid", other)))
        v, ev, diffs, p, mde = _directional(comps, level)
        per.append(
            {
                "claim": "A1",
                "benchmark": bench,
                "verdict": v,
                "statement": A1_STATEMENT,
                "evidence": ev,
                "diffs": diffs,
                "p_adj": p,
                "mde": mde,
            }
        )
    rows += per + [_combine("A1", A1_STATEMENT, per, na)]
    return rows


# --------------------------------------------------------------------------------------------------
# power planning: how many training seeds a verdict needs
# --------------------------------------------------------------------------------------------------
POWER_COLUMNS = [
    "contrast",
    "benchmark",
    "setting",
    "metric",
    "n_seeds",
    "n_groups",
    "diff",
    "se",
    "df",
    "mde",
    "seed_share",
    "s2_seed_upper",
    "target",
    "power_at_target",
    "seeds_for_target",
    "seeds_for_target_upper",
    "paper_encoder",
    "paper_diff",
    "seeds_for_paper",
    "seeds_for_paper_upper",
    "note",
]


def nearest_paper_encoder(model: str | None) -> str:
    """The paper's encoder closest to ours: LaBSE for LaBSE, else XLM-R (multilingual-e5 and the
    tiny test encoder share XLM-R's tokenizer and architecture family)."""
    return "LaBSE" if "labse" in str(model or "").lower() else "XLM-R"


def _seeds_txt(
    n: int | None, comps: tuple, G: int, effect: float, level: float, power: float
) -> str | int:
    """The seeds needed, or why none suffice: with infinitely many seeds the se falls to the cluster
    part alone, sqrt(s2_cluster / G), which more questions (clusters) shrink and more seeds do
    not."""
    if n is not None:
        return n
    floor = np.sqrt(comps[1] / G) if G > 0 else np.nan
    if not np.isfinite(floor) or power_of(effect, floor, G - 1, level) < power:
        return "no number of seeds at these clusters (more questions needed)"
    return "more than 200"


def power_plan(
    effects_df: pd.DataFrame,
    paper: pd.DataFrame | None = None,
    model: str | None = None,
    target: float = 0.01,
    level: float = 0.05,
    power: float = 0.8,
) -> pd.DataFrame:
    """For each claim-relevant strategy contrast (family ``claims``): this run's power for a
    difference of ``target`` (0.01 mAP), the training seeds that would detect ``target`` with
    ``power`` at this run's clusters, and the seeds that would detect the paper's own effect for the
    nearest encoder (:func:`nearest_paper_encoder`; ``paper``:
    :func:`hbkit.analysis.reference.effects_view`, columns ``encoder, contrast, benchmark,
    our_benchmark, setting, metric, paper_diff``). From the variance components of the
    strategy-level test, at the expected mean squares (:func:`hbkit.analysis.crossed.seeds_needed`,
    from 3 seeds). Each count comes as a range: at the estimated seed variance
    (``seeds_for_target``, ``seeds_for_paper``) and at its upper 95% bound ``s2_seed_upper``
    (``*_upper``; :func:`hbkit.analysis.crossed.seed_variance_upper`), the count to plan with when
    the run must not come out underpowered. Rows with one seed have no seed variance to plan with:
    ``note`` says so.

    Examples:
        >>> view = reference.effects_view(effects, ref)  # doctest: +SKIP
        >>> model = "intfloat/multilingual-e5-small"  # doctest: +SKIP
        >>> plan = power_plan(effects, view, model=model)  # doctest: +SKIP
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
    claims = (
        effects_df[effects_df.get("family", pd.Series(dtype=str)) == "claims"]
        if len(effects_df)
        else effects_df
    )
    for r in claims.itertuples(index=False):
        S, G = int(r.n_seeds), int(r.n_groups)
        comps = (r.s2_seed, r.s2_cluster, r.s2_resid)
        pd_ = pe.get((r.benchmark, r.setting, r.metric, r.a, r.b), np.nan)
        row = {
            "contrast": r.contrast,
            "benchmark": r.benchmark,
            "setting": r.setting,
            "metric": r.metric,
            "n_seeds": S,
            "n_groups": G,
            "diff": r.diff,
            "se": r.se,
            "df": r.df,
            "mde": r.mde,
            "seed_share": r.seed_share,
            "s2_seed_upper": np.nan,
            "target": target if r.metric != "rank_distance" else np.nan,
            "power_at_target": np.nan,
            "seeds_for_target": "",
            "seeds_for_target_upper": "",
            "paper_encoder": enc,
            "paper_diff": pd_,
            "seeds_for_paper": "",
            "seeds_for_paper_upper": "",
            "note": "",
        }
        if not np.isfinite(comps).all():
            row["note"] = (
                "one seed: no seed-to-seed variance measured, so no plan; train 3 or more seeds"
            )
            rows.append(row)
            continue
        upper = (seed_variance_upper(r.s2_seed, r.s2_resid, S, G), *comps[1:])
        row["s2_seed_upper"] = upper[0]
        need = lambda c, effect: _seeds_txt(
            seeds_needed(*c, G=G, effect=effect, level=level, power=power),  # noqa: E731
            c,
            G,
            effect,
            level,
            power,
        )
        if r.metric != "rank_distance":  # rank distance is in ranks, not mAP: no common target
            se, df = expected_se_df(*comps, S=S, G=G)
            row["power_at_target"] = float(power_of(target, se, df, level))
            row["seeds_for_target"], row["seeds_for_target_upper"] = (
                need(comps, target),
                need(upper, target),
            )
        if np.isfinite(pd_):
            row["seeds_for_paper"], row["seeds_for_paper_upper"] = (
                ("the paper shows no difference",) * 2
                if pd_ == 0
                else (need(comps, abs(pd_)), need(upper, abs(pd_)))
            )
        rows.append(row)
    return pd.DataFrame(rows, columns=POWER_COLUMNS)
