"""The paper's per-language tables beside ours: arXiv 2408.10536 Tables 3-8 and 12-13 (and its data
statistics, Tables 9-11), shipped as ``hbkit/analysis/published/arxiv-2408.10536-tables.csv``,
checked on load, and the views that put a run's per-language values next to them. The paper's Table
1 and the LAReQA baselines, the macro values, are :mod:`hbkit.analysis.reference`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from hbkit.analysis.reference import STAND_IN, published_file
from hbkit.core.vocab import SETTINGS, STRATEGY_CONTRASTS

#: the paper's results tables as extracted with their source
#: (``hbkit/analysis/published/README.md``: how, and which cells are garbled or inferred), and its
#: data statistics (Tables 9-11)
PAPER_TABLES = "arxiv-2408.10536-tables.csv"


PAPER_DATA_STATS = "arxiv-2408.10536-data-stats.csv"


PAPER_TABLE_COLUMNS = (
    "source",
    "table",
    "encoder",
    "model",
    "benchmark",
    "setting",
    "lang",
    "metric",
    "value",
    "note",
)


#: the paper's metrics hbkit computes under the same name (its R@1 / R@10 columns are shown, not
#: matched: the printed headers of those blocks are garbled, see the README)
PAPER_MATCHED_METRICS = ("map", "rank_distance", "ndcg@10", "recall@100")


#: the languages the paper never trains on and reports as unseen
PAPER_UNSEEN = ("el", "vi")


def paper_tables(path: str | Path | None = None) -> pd.DataFrame:
    """The paper's results tables (Tables 1-8, 12, 13) as one tidy frame, one printed value per row;
    by default the shipped ``hbkit/analysis/published/arxiv-2408.10536-tables.csv``. Every row is
    checked (encoder, model, benchmark, setting, language, metric, a number); an error names the
    file and the row."""
    path = Path(path) if path else published_file(PAPER_TABLES)
    try:
        t = pd.read_csv(path, dtype={"lang": str, "note": str}, keep_default_na=False)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError, OSError) as e:
        raise ValueError(
            f"{path}: not a readable CSV ({type(e).__name__}); the header must be "
            f"{','.join(PAPER_TABLE_COLUMNS)}"
        ) from None
    if missing := [c for c in PAPER_TABLE_COLUMNS if c not in t.columns]:
        raise ValueError(f"{path}: missing column(s) {', '.join(missing)}")
    checks = {
        "encoder": {"XLM-R", "LaBSE"},
        "model": {"xx", "xy", "hybrid"},
        "benchmark": {"xquad-r", "mlqa-r", "miracl"},
        "setting": set(SETTINGS),
        "metric": set(PAPER_MATCHED_METRICS) | {"r@1", "r@10"},
    }
    for col, allowed in checks.items():
        bad = t.index[~t[col].isin(allowed)]
        if len(bad):
            raise ValueError(
                f"{path}, data row {bad[0] + 1}: {col} {t.loc[bad[0], col]!r} is not one of "
                f"{', '.join(sorted(allowed))}"
            )
    bad = t.index[~t["lang"].str.fullmatch(r"[a-z]{2}|mean|median")]
    if len(bad):
        raise ValueError(
            f"{path}, data row {bad[0] + 1}: lang {t.loc[bad[0], 'lang']!r} is not an ISO 639-1 "
            "code, mean or median"
        )
    t["value"] = pd.to_numeric(t["value"], errors="coerce")
    if t["value"].isna().any():
        raise ValueError(
            f"{path}, data row {int(t['value'].isna().to_numpy().argmax()) + 1}: value is not a "
            "number"
        )
    return t


def our_per_language(results: pd.DataFrame) -> pd.DataFrame:
    """Our per-language values in the paper's shape, mean over training seeds: ``benchmark``
    (``xquad-r`` for our ``xquad-r-eval``, ``miracl`` for ``miracl-XX``), ``setting``, ``lang`` (the
    query language), ``metric``, ``model``, ``ours``, ``n_seeds``. Mono: the query language's own
    cell; cross: the mean over the other passage languages; multi: the query language against the
    whole pool; MIRACL: each language's corpus."""
    r = results[
        results["model"].isin(["xx", "xy", "hybrid"])
        & results["metric"].isin(PAPER_MATCHED_METRICS)
    ].copy()
    if r.empty:
        return pd.DataFrame(
            columns=["benchmark", "setting", "lang", "metric", "model", "ours", "n_seeds"]
        )
    miracl = r["benchmark"].str.fullmatch(r"miracl-[a-z]{2,3}")
    r.loc[miracl, "qlang"] = r.loc[miracl, "benchmark"].str.split("-").str[1]
    r.loc[miracl, "dlang"] = r.loc[miracl, "qlang"]
    r.loc[miracl, "benchmark"] = "miracl"
    r["benchmark"] = r["benchmark"].replace({v: k for k, v in STAND_IN.items()})
    keep = (
        r["benchmark"].isin(["xquad-r", "mlqa-r", "miracl"])
        & (r["qlang"] != "all")
        & (
            ((r["setting"] == "mono") & (r["dlang"] == r["qlang"]))
            | ((r["setting"] == "cross") & (r["dlang"] != "all") & (r["dlang"] != r["qlang"]))
            | ((r["setting"] == "multi") & (r["dlang"] == "all"))
        )
    )
    r = r[keep].rename(columns={"qlang": "lang"})
    per_seed = r.groupby(
        ["benchmark", "setting", "lang", "metric", "model", "seed"], as_index=False
    )["value"].mean()
    return per_seed.groupby(
        ["benchmark", "setting", "lang", "metric", "model"], as_index=False
    ).agg(ours=("value", "mean"), n_seeds=("seed", "nunique"))


def per_language_view(
    results: pd.DataFrame,
    tables: pd.DataFrame | None = None,
    train_languages: list[str] | None = None,
    paper_only: bool = False,
) -> pd.DataFrame:
    """The paper's per-language values (Tables 3-8, 12-13) beside ours, for every (benchmark,
    setting, language, metric, strategy) that both have: ``ours`` (mean over seeds), ``paper
    XLM-R``, ``paper LaBSE`` and ``unseen`` (a language outside our run's ``train_languages``: el
    and vi under the paper's nine; none when the run trained on every language). Absolute values
    differ by encoder, training data and (for XQuAD-R) our held-out articles; compare the
    differences between strategies (:func:`per_language_effects`). ``paper_only=True`` keeps the
    paper's rows our run has no value for (``ours`` empty): MIRACL's Tables 12-13 in a run without
    MIRACL, say, for the per-language bars (:func:`hbkit.analysis.figures.language_bars`)."""
    tables = paper_tables() if tables is None else tables
    paper = tables[
        ~tables["lang"].isin(["mean", "median"]) & tables["metric"].isin(PAPER_MATCHED_METRICS)
    ]
    paper = (
        paper.pivot_table(
            index=["benchmark", "setting", "lang", "metric", "model"],
            columns="encoder",
            values="value",
            aggfunc="first",
        )
        .add_prefix("paper ")
        .reset_index()
    )
    paper.columns.name = None
    view = our_per_language(results).merge(
        paper,
        on=["benchmark", "setting", "lang", "metric", "model"],
        how="right" if paper_only else "inner",
    )
    view["unseen"] = ~view["lang"].isin(train_languages) if train_languages else False
    order = {"xx": 0, "xy": 1, "hybrid": 2}
    return (
        view.sort_values(["benchmark", "metric", "setting", "lang"], kind="stable")
        .sort_values(
            ["benchmark", "metric", "setting", "lang", "model"],
            key=lambda s: s.map(order) if s.name == "model" else s,
            kind="stable",
        )
        .reset_index(drop=True)
    )


def per_language_effects(view: pd.DataFrame) -> pd.DataFrame:
    """Per language, the paper's differences between strategies (:data:`STRATEGY_CONTRASTS`) beside
    ours: ``ours`` (difference of the seed means; no interval per language) and, per encoder,
    ``paper <encoder>`` and ``agree <encoder>`` (same sign; for rank distance lower is better, which
    the sign comparison does not need). ``unseen`` as in the view."""
    keys = ["benchmark", "setting", "lang", "metric"]
    encoders = [c for c in view.columns if c.startswith("paper ")]
    wide = view.pivot_table(
        index=keys, columns="model", values=["ours", *encoders], aggfunc="first"
    )
    rows = []
    for a, b in STRATEGY_CONTRASTS:
        if ("ours", a) not in wide.columns or ("ours", b) not in wide.columns:
            continue
        d = pd.DataFrame(index=wide.index)
        d["contrast"] = f"{a}-{b}"
        d["ours"] = wide[("ours", a)] - wide[("ours", b)]
        for enc in encoders:
            d[enc] = wide[(enc, a)] - wide[(enc, b)]
            d[f"agree {enc.split(' ', 1)[1]}"] = np.sign(d[enc]) == np.sign(d["ours"])
        rows.append(d.reset_index())
    if not rows:
        return pd.DataFrame(columns=[*keys, "contrast", "ours"])
    out = pd.concat(rows, ignore_index=True).dropna(subset=["ours"])
    out = out.merge(
        view[["benchmark", "setting", "lang", "metric", "unseen"]].drop_duplicates(),
        how="left",
        on=keys,
    )
    return out[
        [
            *keys,
            "contrast",
            "ours",
            *[c for c in out.columns if c.startswith(("paper ", "agree "))],
            "unseen",
        ]
    ]
