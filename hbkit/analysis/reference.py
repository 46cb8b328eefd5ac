"""Published numbers beside ours: the reference table (the paper's Table 1 ships with hbkit),
checked on load, and the views that put it next to a run's results.

The shipped table, ``hbkit/analysis/published/arxiv-2408.10536-table1.csv``: arXiv 2408.10536 Table
1 (XLM-R and LaBSE fine-tuned with X-X-mono, X-Y and hybrid batches) and the mBERT X-X / X-Y
baselines of LAReQA (Roy et al. 2020) that it quotes. Those encoders, their training data and the
full XQuAD-R differ from a hbkit run (another encoder, the held-out ``xquad-r-eval`` articles,
subsampled pools), so absolute values are not comparable; the differences between strategies are
(:func:`paper_effects`, :func:`effects_view`). The paper's per-language tables are
:mod:`hbkit.analysis.paper_tables`.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np
import pandas as pd

from hbkit.core.vocab import SETTINGS, STRATEGY_CONTRASTS
from hbkit.retrieval.alignment import GROUP_METRICS
from hbkit.retrieval.ir_metrics import METRICS as IR_METRICS
from hbkit.retrieval.ranking import MULTI_ONLY, RANK_METRICS

#: columns of a reference table (see :func:`load_reference`)
REFERENCE_COLUMNS = ("source", "encoder", "model", "benchmark", "setting", "metric", "value")


#: benchmark names a reference row may carry: ``xquad-r`` (the full benchmark), hbkit's
#: ``xquad-r-eval``, ``mlqa-r``, ``tydiqa`` and ``miracl-<language>``
BENCHMARK_PATTERN = r"xquad-r|xquad-r-eval|mlqa-r|tydiqa|miracl-[a-z]{2,3}"


#: metrics that are not fractions in [0, 1] (every other metric must be one)
NOT_FRACTIONS = ("rank_distance", "cos_gap", "cos_parallel", "cos_nonparallel", "align", "uniform")


#: every metric name hbkit computes (the per-query kernel, corpus metrics, alignment): a reference
#: row must use one
KNOWN_METRICS = tuple(
    dict.fromkeys(
        RANK_METRICS + MULTI_ONLY + IR_METRICS + GROUP_METRICS + NOT_FRACTIONS + ("recall@100",)
    )
)


#: our benchmark that stands in for a reference benchmark we do not run, when effects are compared
STAND_IN = {"xquad-r": "xquad-r-eval"}


#: other spellings of the reference's encoder names (compared lower-case, letters and digits only)
ENCODER_ALIASES = {
    "xlmr": ("xlmrobertabase", "xlmrobertalarge"),
    "labse": (),
    "mbert": ("bertbasemultilingualcased", "bertbasemultilingualuncased"),
}


_MODEL = re.compile(r"base|xx|xy|hybrid|hybrid-a\d+(?:\.\d+)?")


def published_file(name: str) -> Path:
    """A file of the published numbers shipped with hbkit (``hbkit/analysis/published/``, with its
    README)."""
    return Path(__file__).with_name("published") / name


def shipped_reference_path() -> Path:
    """Path of the shipped table (package data)."""
    return published_file("arxiv-2408.10536-table1.csv")


def load_reference(path: str | Path) -> pd.DataFrame:
    """Published numbers to show beside ours, e.g. the paper's Table 1, from a CSV typed from the
    source.

    Columns (:data:`REFERENCE_COLUMNS`): ``source`` (citation, e.g. ``arXiv 2408.10536 Table 1``),
    ``encoder`` (e.g. ``XLM-R``), ``model`` (``base``, ``xx``, ``xy``, ``hybrid`` or
    ``hybrid-a<α>``: the strategy, named as hbkit names its models), ``benchmark`` (``xquad-r`` for
    the full XQuAD-R, or a hbkit benchmark: ``xquad-r-eval``, ``mlqa-r``, ``tydiqa``,
    ``miracl-<lang>``), ``setting`` (``mono``/``cross``/``multi``), ``metric`` (``map``,
    ``rank_distance``, ...; hbkit's names) and ``value`` (a fraction, not a percentage, for every
    metric but those in :data:`NOT_FRACTIONS`; rank distance >= 0). Lines starting with ``#`` are
    comments. Every row is checked; an error names the file, the line and the fix. hbkit ships the
    paper's Table 1 (:func:`default_reference`)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(
            f"reference table {path} not found (a CSV with columns {', '.join(REFERENCE_COLUMNS)})"
        )
    try:
        ref = pd.read_csv(path, comment="#", dtype=str, keep_default_na=False)
    except (pd.errors.EmptyDataError, pd.errors.ParserError, UnicodeDecodeError) as e:
        raise ValueError(
            f"{path}: not a readable CSV ({type(e).__name__}: {str(e).splitlines()[0][:120]}); "
            f"write a header {','.join(REFERENCE_COLUMNS)} and one row per published number"
        ) from None
    missing = [c for c in REFERENCE_COLUMNS if c not in ref.columns]
    if missing:
        raise ValueError(
            f"{path}: missing column(s) {', '.join(missing)}; the header must be "
            f"{','.join(REFERENCE_COLUMNS)}"
        )
    if ref.empty:
        raise ValueError(f"{path}: no rows; add one row per published number")
    for i, row in ref.iterrows():
        where = f"{path}, data row {i + 1}"
        if not _MODEL.fullmatch(str(row["model"])):
            raise ValueError(
                f"{where}: model {row['model']!r} is not base, xx, xy, hybrid or hybrid-a<alpha>"
            )
        if row["setting"] not in SETTINGS:
            raise ValueError(
                f"{where}: setting {row['setting']!r} is not one of {', '.join(SETTINGS)}"
            )
        if row["metric"] not in KNOWN_METRICS:
            near = [m for m in KNOWN_METRICS if m.lower() == str(row["metric"]).lower()]
            hint = f" (did you mean {near[0]!r}?)" if near else ""
            raise ValueError(
                f"{where}: metric {row['metric']!r} is not one hbkit computes{hint}; use hbkit's "
                f"names: {', '.join(KNOWN_METRICS)}"
            )
        if not re.fullmatch(BENCHMARK_PATTERN, str(row["benchmark"])):
            raise ValueError(
                f"{where}: benchmark {row['benchmark']!r} is not one hbkit knows (xquad-r for the "
                "full XQuAD-R, xquad-r-eval, mlqa-r, tydiqa, miracl-<lang>)"
            )
        try:
            value = float(row["value"])
            if value != value or value in (float("inf"), float("-inf")):
                raise ValueError
        except (TypeError, ValueError):
            raise ValueError(f"{where}: value {row['value']!r} is not a number") from None
        if row["metric"] not in NOT_FRACTIONS and not 0 <= value <= 1:
            raise ValueError(
                f"{where}: {row['metric']} = {value} is outside [0, 1]; write percentages as "
                f"fractions ({value / 100:g})"
            )
        if row["metric"] == "rank_distance" and value < 0:
            raise ValueError(
                f"{where}: rank_distance = {value} is negative; it is a count of ranks (>= 0)"
            )
    ref["value"] = ref["value"].astype(float)
    dup = ref.duplicated(
        ["source", "encoder", "model", "benchmark", "setting", "metric"], keep=False
    )
    if dup.any():
        raise ValueError(
            f"{path}: data rows {', '.join(str(i + 1) for i in ref.index[dup])} repeat the same "
            "source/encoder/model/benchmark/setting/metric; keep one"
        )
    return ref[list(REFERENCE_COLUMNS)]


def default_reference() -> pd.DataFrame:
    """The reference table named by ``$HBKIT_REFERENCE`` when set (see :func:`load_reference`), else
    the shipped table (the paper's Table 1 and the LAReQA mBERT baselines).

    Returns:
        The published numbers: ``source, encoder, model, benchmark, setting, metric, value``.

    Examples:
        >>> ref = default_reference()  # doctest: +SKIP
        >>> ref.encoder.unique()  # doctest: +SKIP
    """
    path = os.environ.get("HBKIT_REFERENCE")
    return load_reference(path if path else shipped_reference_path())


def beside(
    results: pd.DataFrame, reference: pd.DataFrame, our_encoder: str | None = None
) -> pd.DataFrame:
    """Every reference row with our macro value for the same model, benchmark, setting and metric
    next to it: columns ``source, encoder, benchmark, setting, metric, model, paper, ours, ours -
    paper, note``. A reference row our run has no value for is kept, with ``ours`` empty (nothing is
    dropped). ``ours - paper`` follows :func:`absolute_view`'s rule: only where the reference's
    encoder is ours (``our_encoder``, the run's model name) and the benchmark the same; elsewhere it
    is empty and ``note`` says why (compare effects instead)."""
    v = absolute_view(results, reference, our_encoder)
    return v[
        [
            "source",
            "encoder",
            "benchmark",
            "setting",
            "metric",
            "model",
            "paper",
            "ours",
            "ours - paper",
            "note",
        ]
    ]


def reference_benchmarks_check(ref: pd.DataFrame, benchmarks_run) -> str:
    """A message naming the reference rows whose benchmark this run does not have (``""`` when every
    reference benchmark was run). Nothing is dropped: those rows stay in every view, with ours
    empty; a benchmark with a stand-in (:data:`STAND_IN`: our ``xquad-r-eval`` for the full
    ``xquad-r``) says so."""
    run = set(benchmarks_run)
    parts = []
    for bench, n in ref["benchmark"].value_counts(sort=False).items():
        if bench in run:
            continue
        if STAND_IN.get(bench) in run:
            parts.append(
                f"{bench} ({n} rows): our {STAND_IN[bench]} (a held-out subset) stands in for it "
                "in effects_view; its absolute values are not comparable"
            )
        else:
            parts.append(f"{bench} ({n} rows): kept with ours empty")
    if not parts:
        return ""
    return (
        "the reference has rows for benchmark(s) this run does not have (run: "
        f"{', '.join(sorted(run)) or 'none'}): " + "; ".join(parts)
    )


def _norm(name: str) -> str:
    return re.sub(r"[^a-z0-9]", "", str(name).split("/")[-1].lower())


def encoder_matches(reference_encoder: str, our_encoder: str | None) -> bool:
    """Whether our encoder (a model name or path, e.g. ``sentence-transformers/LaBSE``) is the
    reference's (``LaBSE``): compared lower-case on letters and digits, with
    :data:`ENCODER_ALIASES`."""
    if not our_encoder:
        return False
    r, o = _norm(reference_encoder), _norm(our_encoder)
    return r == o or o in ENCODER_ALIASES.get(r, ())


def _macro_values(results_macro: pd.DataFrame) -> pd.DataFrame:
    r = results_macro
    if "qlang" in r.columns:
        r = r[(r["qlang"] == "all") & (r["dlang"] == "all")]
    col = "mean" if "mean" in r.columns else "value"
    if col not in r.columns:
        raise ValueError(
            "our results need a 'mean' (stats.aggregate) or 'value' (results.csv) column"
        )
    return r[["model", "benchmark", "setting", "metric", col]].rename(columns={col: "ours"})


def absolute_view(
    results_macro: pd.DataFrame, ref: pd.DataFrame, our_encoder: str | None
) -> pd.DataFrame:
    """Every reference row with its published value as it is and our macro value beside it.

    ``results_macro``: :func:`hbkit.analysis.stats.aggregate` (column ``mean``) or ``results.csv``
    (``value``, macro rows ``qlang = dlang = all``). Our value is taken from the same benchmark,
    else from its stand-in (``ours_benchmark`` says which). ``ours - paper`` is computed only where
    the encoder matches ours (:func:`encoder_matches`) and the benchmark is the same; elsewhere it
    is NaN and ``note`` says why. Columns ``source, encoder, model, benchmark, setting, metric,
    paper, ours_benchmark, ours, ours - paper, note``; nothing is dropped."""
    ours = _macro_values(results_macro)
    rows = []
    for r in ref.itertuples(index=False):
        bench = r.benchmark
        sel = ours[
            (ours["model"] == r.model)
            & (ours["benchmark"] == bench)
            & (ours["setting"] == r.setting)
            & (ours["metric"] == r.metric)
        ]
        if sel.empty and r.benchmark in STAND_IN:
            bench = STAND_IN[r.benchmark]
            sel = ours[
                (ours["model"] == r.model)
                & (ours["benchmark"] == bench)
                & (ours["setting"] == r.setting)
                & (ours["metric"] == r.metric)
            ]
        value = float(sel["ours"].iloc[0]) if len(sel) else np.nan
        notes = []
        if sel.empty:
            notes.append("no value of ours")
            bench = None
        if not encoder_matches(r.encoder, our_encoder):
            notes.append(
                f"different encoder (paper: {r.encoder}; ours: {our_encoder or 'unknown'}): "
                "compare effects (effects_view), not values"
            )
        if bench is not None and bench != r.benchmark:
            notes.append(f"ours on {bench}, the paper on the full {r.benchmark}")
        diff = value - r.value if not notes else np.nan
        rows.append(
            {
                "source": r.source,
                "encoder": r.encoder,
                "model": r.model,
                "benchmark": r.benchmark,
                "setting": r.setting,
                "metric": r.metric,
                "paper": r.value,
                "ours_benchmark": bench,
                "ours": value,
                "ours - paper": diff,
                "note": "; ".join(notes),
            }
        )
    return pd.DataFrame(
        rows,
        columns=[
            "source",
            "encoder",
            "model",
            "benchmark",
            "setting",
            "metric",
            "paper",
            "ours_benchmark",
            "ours",
            "ours - paper",
            "note",
        ],
    )


def paper_effects(ref: pd.DataFrame) -> pd.DataFrame:
    """The reference's differences between strategies: per (source, encoder, benchmark, setting,
    metric), ``hybrid - xx``, ``hybrid - xy`` and ``xy - xx`` where both numbers are published (the
    mBERT baselines have xx and xy only). Columns ``source, encoder, contrast, a, b, benchmark,
    setting, metric, a_value, b_value, paper_diff``; ``paper_diff`` is rounded to 6 decimals (the
    table's 3 decimals make 0.648 - 0.648 exactly 0)."""
    rows = []
    keys = ["source", "encoder", "benchmark", "setting", "metric"]
    for key, sub in ref.groupby(keys, sort=False):
        vals = dict(zip(sub["model"], sub["value"]))
        for a, b in STRATEGY_CONTRASTS:
            if a in vals and b in vals:
                rows.append(
                    {
                        **dict(zip(keys, key)),
                        "contrast": f"{a} - {b}",
                        "a": a,
                        "b": b,
                        "a_value": vals[a],
                        "b_value": vals[b],
                        "paper_diff": round(vals[a] - vals[b], 6),
                    }
                )
    cols = [
        "source",
        "encoder",
        "contrast",
        "a",
        "b",
        "benchmark",
        "setting",
        "metric",
        "a_value",
        "b_value",
        "paper_diff",
    ]
    return pd.DataFrame(rows, columns=cols)


def effects_view(our_effects: pd.DataFrame, ref: pd.DataFrame) -> pd.DataFrame:
    """Each of the paper's effects (:func:`paper_effects`) beside ours
    (:func:`hbkit.analysis.stats.effects`) with its 95% interval.

    Our effect is taken from the same benchmark, else from its stand-in (our ``xquad-r-eval``,
    held-out XQuAD-R articles, for the paper's full ``xquad-r``; column ``matched_as`` says which),
    the same contrast (flipped if we computed ``b - a``), setting and metric. ``same_sign``: our
    diff has the paper's sign; ``paper_inside_our_interval``: ``low <= paper_diff <= high``. Both
    are NA (``note`` says why) when we have no such effect, when the paper's difference is 0 (no
    sign to share), and — for ``paper_inside_our_interval`` — for rank distance, which grows with
    the pool size (the paper ranks the full benchmarks): compare its sign only. Nothing is dropped.

    Args:
        our_effects: a run's effects table (:func:`hbkit.analysis.stats.effects`,
            ``load_run(out)["effects"]``).
        ref: the published numbers (:func:`default_reference`).

    Returns:
        One row per published effect: ``paper_diff`` beside our ``diff``, ``low``, ``high``,
            ``same_sign``,
        ``paper_inside_our_interval``, ``matched_as`` and ``note``.

    Examples:
        >>> effects_view(load_run("results/cpu")["effects"], default_reference())  # doctest: +SKIP
    """
    pe = paper_effects(ref)
    rows = []
    for r in pe.itertuples(index=False):
        ob = r.benchmark
        hit = None
        for bench in (r.benchmark, STAND_IN.get(r.benchmark)):
            if bench is None:
                continue
            sel = our_effects[
                (our_effects["benchmark"] == bench)
                & (our_effects["setting"] == r.setting)
                & (our_effects["metric"] == r.metric)
            ]
            for x, y, sign in ((r.a, r.b, 1.0), (r.b, r.a, -1.0)):
                m = sel[(sel["a"] == x) & (sel["b"] == y)]
                if len(m):
                    e = m.iloc[0]
                    lo, hi = sorted((sign * e["low"], sign * e["high"]))
                    hit = {
                        "diff": sign * e["diff"],
                        "low": lo,
                        "high": hi,
                        "p_adj": e.get("p_adj", np.nan),
                    }
                    ob = bench
                    break
            if hit:
                break
        notes = []
        same = inside = pd.NA
        if hit is None:
            notes.append("no effect of ours for this contrast, benchmark, setting and metric")
            matched = "none"
            hit = {"diff": np.nan, "low": np.nan, "high": np.nan, "p_adj": np.nan}
        else:
            matched = (
                f"our {ob} for the paper's {r.benchmark}" if ob != r.benchmark else "same benchmark"
            )
            if r.paper_diff == 0:
                notes.append("the paper shows no difference: no sign to compare")
            else:
                same = bool(np.sign(hit["diff"]) == np.sign(r.paper_diff))
            if r.metric == "rank_distance":
                notes.append("rank distance grows with the pool size: compare signs only")
            else:
                inside = bool(hit["low"] <= r.paper_diff <= hit["high"])
        rows.append(
            {
                "source": r.source,
                "encoder": r.encoder,
                "contrast": r.contrast,
                "benchmark": r.benchmark,
                "our_benchmark": ob if matched != "none" else None,
                "matched_as": matched,
                "setting": r.setting,
                "metric": r.metric,
                "paper_diff": r.paper_diff,
                "diff": hit["diff"],
                "low": hit["low"],
                "high": hit["high"],
                "p_adj": hit["p_adj"],
                "same_sign": same,
                "paper_inside_our_interval": inside,
                "note": "; ".join(notes),
            }
        )
    out = pd.DataFrame(
        rows,
        columns=[
            "source",
            "encoder",
            "contrast",
            "benchmark",
            "our_benchmark",
            "matched_as",
            "setting",
            "metric",
            "paper_diff",
            "diff",
            "low",
            "high",
            "p_adj",
            "same_sign",
            "paper_inside_our_interval",
            "note",
        ],
    )
    for c in ("same_sign", "paper_inside_our_interval"):
        out[c] = out[c].astype("boolean")
    return out
