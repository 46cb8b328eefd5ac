"""Figures from result tables (plotly). Viz reads results and embeddings, never models."""

from __future__ import annotations

import html
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from hbkit.core.files import atomic_write_text, read_jsonl
from hbkit.core.vocab import SETTINGS, STRATEGY_ALPHA, STRATEGY_ORDER


def results_table_figure(table: pd.DataFrame, title: str = "Macro mAP (95% interval)"):
    """A plotly table of the paper-shaped table (one row per model, one column per
    benchmark/setting)."""
    import plotly.graph_objects as go

    fig = go.Figure(
        go.Table(
            header=dict(values=list(table.columns)),
            cells=dict(values=[table[c].tolist() for c in table.columns]),
        )
    )
    fig.update_layout(title=title, height=120 + 30 * len(table))
    return fig


def pair_heatmap(results: pd.DataFrame, model: str, benchmark: str, metric: str = "map"):
    """Cross- and mono-lingual ``metric`` per (query language, candidate language) of one model."""
    import plotly.express as px

    r = results[
        (results["model"] == model)
        & (results["benchmark"] == benchmark)
        & (results["metric"] == metric)
        & results["setting"].isin(["mono", "cross"])
        & (results["qlang"] != "all")
    ]
    m = r.pivot_table(index="qlang", columns="dlang", values="value")
    fig = px.imshow(
        m,
        text_auto=".2f",
        color_continuous_scale="Viridis",
        zmin=0,
        zmax=1,
        aspect="auto",
        labels=dict(x="candidate language", y="query language", color=metric),
    )
    fig.update_layout(title=f"{benchmark}: {metric} per language pair — {model}")
    return fig


def metric_bars(results: pd.DataFrame, metric: str = "map", title: str | None = None):
    """Grouped bars: macro ``metric`` per benchmark and setting, one bar per model."""
    import plotly.express as px

    r = results[(results["metric"] == metric) & (results["qlang"] == "all")].copy()
    r["where"] = r["benchmark"] + " / " + r["setting"]
    fig = px.bar(
        r,
        x="where",
        y="value",
        color="model",
        barmode="group",
        category_orders={"model": STRATEGY_ORDER},
    )
    fig.update_layout(title=title or f"macro {metric}", yaxis_title=metric, xaxis_title="")
    return fig


def alignment_bars(
    align: pd.DataFrame, metrics: Sequence[str] = ("cos_gap", "translation_p@1", "lang_knn_purity")
):
    """Macro alignment measures per benchmark, one bar per model."""
    import plotly.express as px

    a = align[(align["qlang"] == "all") & align["metric"].isin(metrics)]
    fig = px.bar(
        a,
        x="benchmark",
        y="value",
        color="model",
        facet_col="metric",
        barmode="group",
        category_orders={"model": STRATEGY_ORDER},
    )
    fig.update_yaxes(matches=None, showticklabels=True)
    fig.update_layout(
        title="Representation alignment (higher cos_gap / P@1, lower purity = better aligned)"
    )
    return fig


def model_alpha(model: str) -> float | None:
    """The hybrid share α a model was trained with: ``xy`` 0, ``hybrid`` 0.5, ``xx`` 1,
    ``hybrid-a<α>`` α (the names ``hbkit compare`` gives); ``None`` for ``base`` and any other
    name."""
    import re

    if model in STRATEGY_ALPHA:
        return STRATEGY_ALPHA[model]
    m = re.fullmatch(r"hybrid-a(\d+(?:\.\d+)?)", str(model))
    return float(m.group(1)) if m else None


def alpha_curve(
    agg: pd.DataFrame,
    metric: str = "map",
    benchmarks: Sequence[str] | None = None,
    settings: Sequence[str] = ("mono", "cross", "multi"),
    alpha: float | None = None,
):
    """``metric`` against α (X-Y = 0, hybrid = 0.5, X-X-mono = 1, and any ``hybrid-a<α>`` run) from
    ``stats.aggregate`` output: the mean over seeds with its interval (over seeds and query groups)
    as error bars, one line per setting, one panel per benchmark; the base model as a dotted line;
    ``alpha`` (a slider's value) as a vertical line."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    a = agg[agg["metric"] == metric].copy()
    a["alpha"] = a["model"].map(model_alpha)
    benchmarks = list(benchmarks or dict.fromkeys(a["benchmark"]))
    fig = make_subplots(rows=1, cols=len(benchmarks), subplot_titles=benchmarks)
    colours = {"mono": "#1f77b4", "cross": "#ff7f0e", "multi": "#2ca02c"}
    for c, bench in enumerate(benchmarks, start=1):
        for setting in settings:
            s = a[(a.benchmark == bench) & (a.setting == setting)]
            line = s[s.alpha.notna()].sort_values("alpha")
            if line.empty:
                continue
            fig.add_trace(
                go.Scatter(
                    x=line.alpha,
                    y=line["mean"],
                    mode="lines+markers",
                    name=f"{setting}",
                    legendgroup=setting,
                    showlegend=c == 1,
                    line=dict(color=colours[setting]),
                    error_y=dict(
                        type="data",
                        symmetric=False,
                        array=line["high"] - line["mean"],
                        arrayminus=line["mean"] - line["low"],
                    ),
                    hovertext=line["model"] + " (seeds " + line["seeds"].astype(str) + ")",
                ),
                row=1,
                col=c,
            )
            base = s[s.model == "base"]
            if not base.empty:
                fig.add_hline(
                    y=float(base["mean"].iloc[0]),
                    line=dict(dash="dot", color=colours[setting]),
                    row=1,
                    col=c,
                )
        if alpha is not None:
            fig.add_vline(x=alpha, line=dict(dash="dash", color="grey"), row=1, col=c)
    fig.update_xaxes(title="α (share of X-X-mono batches)", range=[-0.05, 1.05])
    fig.update_layout(title=f"{metric} against α (dotted: base model)", yaxis_title=metric)
    return fig


def umap_coords(E: np.ndarray, seed: int = 0, n_neighbors: int = 15) -> np.ndarray:
    """2-d UMAP (cosine) of embeddings; seeded, so the same input gives the same picture."""
    import warnings

    # umap's import notes that ParametricUMAP needs TensorFlow: nothing to act on
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Tensorflow not installed")
        import umap

    n_neighbors = max(2, min(n_neighbors, len(E) - 1))
    # n_jobs=1 said, not implied: a seeded UMAP runs on one thread anyway, and umap warns when it
    # has to override it
    return umap.UMAP(
        n_neighbors=n_neighbors, min_dist=0.1, metric="cosine", random_state=seed, n_jobs=1
    ).fit_transform(E)


def umap_scatter(coords: pd.DataFrame, title: str = "Language clusters (UMAP)"):
    """Scatter of UMAP coordinates (columns ``x, y, lang, text, model``), coloured by language, one
    panel per model; hover shows the text."""
    import plotly.express as px

    fig = px.scatter(
        coords,
        x="x",
        y="y",
        color="lang",
        facet_col="model" if coords["model"].nunique() > 1 else None,
        hover_data={"text": True, "x": False, "y": False},
        opacity=0.7,
        category_orders={"model": STRATEGY_ORDER},
    )
    fig.update_traces(marker=dict(size=5))
    fig.update_xaxes(matches=None, showticklabels=False, title="")
    fig.update_yaxes(matches=None, showticklabels=False, title="")
    fig.update_layout(title=title)
    return fig


def write_report(path: str | Path, title: str, sections: list[tuple]) -> Path:
    """A self-contained HTML report: each section is ``(heading, plotly figure | DataFrame | str)``,
    or for a table ``(heading, DataFrame, csv_name, shown)``. A table sits collapsed (``<details>``)
    with a link to its CSV file beside the report unless ``shown``; plotly's JavaScript is embedded
    once, so the file opens offline, and the same sections give a byte-identical file."""
    parts = [
        f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>",
        "<style>body{font-family:sans-serif;max-width:1200px;margin:auto}table{border-collapse:collapse}"
        "td,th{border:1px solid #ccc;padding:3px 6px}details{margin:.6em "
        "0}summary{cursor:pointer}</style>"
        "</head><body>",
        f"<h1>{html.escape(title)}</h1>",
    ]
    first, n_fig = True, 0
    for heading, obj, *more in sections:
        csv, shown = (more + [None, False])[:2]
        if isinstance(obj, pd.DataFrame):
            link = f"; <a href='{html.escape(csv)}'>{html.escape(csv)}</a>" if csv else ""
            # no NaN for a reader
            table = obj.to_html(index=False, float_format=lambda v: f"{v:.4f}", na_rep="n/a")
            if shown:
                parts.append(
                    f"<h2>{html.escape(heading)}</h2>{table}"
                    + (f"<p>{link[2:]}</p>" if csv else "")
                )
            else:
                parts.append(
                    f"<details><summary><b>{html.escape(heading)}</b> ({len(obj)} "
                    f"rows{link})</summary>{table}</details>"
                )
            continue
        parts.append(f"<h2>{html.escape(heading)}</h2>")
        if isinstance(obj, str):
            parts.append(f"<p>{obj}</p>")
        else:
            n_fig += 1  # fixed element ids: the same sections give a byte-identical file
            parts.append(
                obj.to_html(
                    full_html=False, include_plotlyjs=True if first else False, div_id=f"fig{n_fig}"
                )
            )
            first = False
    parts.append("</body></html>")
    return atomic_write_text(path, "\n".join(parts))


def counts_bar(summary: pd.DataFrame):
    """Queries and candidates per language for every dataset of
    ``hbkit.data.benchmarks.summary()``."""
    import plotly.express as px

    long = summary.melt(
        id_vars=["dataset", "lang"], value_vars=["queries", "candidates"], var_name="kind"
    )
    fig = px.bar(
        long, x="lang", y="value", color="kind", barmode="group", facet_row="dataset", height=900
    )
    fig.update_yaxes(matches=None)
    fig.update_layout(title="Per-language counts")
    return fig


def loss_curves(run_dir: str | Path):
    """Training loss per step of every model under ``run_dir/models/*/train_log.jsonl``."""
    import plotly.express as px

    rows = []
    for f in sorted(Path(run_dir).glob("models/*/train_log.jsonl")):
        rows += [dict(r, model=f.parent.name) for r in read_jsonl(f) if "loss" in r]
    df = pd.DataFrame(rows)
    fig = px.line(
        df,
        x="step",
        y="loss",
        color="model",
        hover_data=["batch", "lang"],
        category_orders={"model": STRATEGY_ORDER},
    )
    fig.update_layout(title="Training loss (hover: batch type and language)")
    return fig


def alignment_heatmap(
    align: pd.DataFrame, model: str, benchmark: str, metric: str = "translation_p@1"
):
    """An alignment measure per ordered language pair of one model."""
    import plotly.express as px

    a = align[
        (align["model"] == model)
        & (align["benchmark"] == benchmark)
        & (align["metric"] == metric)
        & (align["qlang"] != "all")
    ]
    m = a.pivot_table(index="qlang", columns="dlang", values="value")
    fig = px.imshow(
        m,
        text_auto=".2f",
        color_continuous_scale="Viridis",
        aspect="auto",
        labels=dict(x="target language", y="source language", color=metric),
    )
    fig.update_layout(title=f"{benchmark}: {metric} — {model}")
    return fig


#: the colour of each verdict in the report's matrix (anything else, e.g. "too few seeds", is grey)
VERDICT_COLOURS = {
    "supported": "#2e7d32",
    "contradicted": "#c62828",
    "inconclusive": "#bdbdbd",
    "not applicable": "#f5f5f5",
}


def _no_verdict_reason(cell: pd.DataFrame, claim: str, benchmark: str) -> str:
    """Why ``claim`` has no verdict on ``benchmark``: the reason its ``all`` row gives ("not
    applicable: tydiqa (no cross map)"), else that the run did not test it there."""
    import re

    if (claim, "all") in cell.index:
        evidence = str(cell.loc[(claim, "all")]["evidence"])
        if "not applicable: " in evidence:
            for item in evidence.split("not applicable: ", 1)[1].split("; "):
                m = re.fullmatch(r"(\S+) \((.*)\)", item.strip())
                if m and m.group(1) == benchmark:
                    return f"{claim} on {benchmark}: not applicable ({m.group(2)})"
    return f"{claim} on {benchmark}: not applicable (this run has no verdict for it there)"


def verdict_matrix(verdicts: pd.DataFrame):
    """The verdicts at a glance: claims (rows) × benchmarks (columns, ``all`` last), each cell
    coloured by its verdict (:data:`VERDICT_COLOURS`) and labelled with it; hovering shows the
    claim's statement and evidence. A claim with no verdict on a benchmark (C2 on TyDi-QA, which has
    no cross-lingual setting) reads "n/a", with the reason on hover."""
    import plotly.graph_objects as go  # heavy: plotly

    claims = list(dict.fromkeys(verdicts["claim"]))
    benches = sorted(set(verdicts["benchmark"]) - {"all"}) + (
        ["all"] if "all" in set(verdicts["benchmark"]) else []
    )
    kinds = list(VERDICT_COLOURS) + sorted(set(verdicts["verdict"]) - set(VERDICT_COLOURS))
    code = {k: i for i, k in enumerate(kinds)}
    cell = verdicts.set_index(["claim", "benchmark"])
    z, text, hover = [], [], []
    for c in claims:
        row = [cell.loc[(c, b)] if (c, b) in cell.index else None for b in benches]
        z.append([code[r["verdict"] if r is not None else "not applicable"] for r in row])
        text.append([r["verdict"] if r is not None else "n/a" for r in row])
        hover.append(
            [
                html.escape(f"{r['statement']} | {r['evidence']}")[:400]
                if r is not None
                else html.escape(_no_verdict_reason(cell, c, b))
                for r, b in zip(row, benches)
            ]
        )
    n = max(1, len(kinds) - 1)
    scale = [[i / n, VERDICT_COLOURS.get(k, "#9e9e9e")] for i, k in enumerate(kinds)]
    if len(kinds) == 1:
        scale = [[0, scale[0][1]], [1, scale[0][1]]]
    fig = go.Figure(
        go.Heatmap(
            z=z,
            x=benches,
            y=claims,
            text=text,
            texttemplate="%{text}",
            customdata=hover,
            hovertemplate="%{y} on %{x}: %{customdata}<extra></extra>",
            colorscale=scale,
            zmin=0,
            zmax=n,
            showscale=False,
            xgap=2,
            ygap=2,
        )
    )
    fig.update_layout(
        title="Verdicts on the paper's claims",
        yaxis=dict(autorange="reversed"),
        height=120 + 45 * len(claims),
        margin=dict(l=60, r=20, t=50, b=40),
    )
    return fig


def effect_forest(effects: pd.DataFrame, paper: pd.DataFrame | None = None, metric: str = "map"):
    """The strategy effects with their 95% intervals, one row per (contrast, benchmark, setting), as
    a forest plot; ``paper`` (:func:`hbkit.analysis.reference.effects_view`) adds the paper's
    effects as markers, one symbol per encoder, on the rows where it has one."""
    import plotly.graph_objects as go  # heavy: plotly

    e = (
        effects[(effects["family"] == "claims") & (effects["metric"] == metric)]
        if "family" in effects
        else effects
    )
    e = e[e["metric"] == metric].sort_values(["contrast", "benchmark", "setting"])
    label = (
        e["contrast"].astype(str)
        + " · "
        + e["benchmark"].astype(str)
        + " · "
        + e["setting"].astype(str)
    )
    fig = go.Figure(
        go.Scatter(
            x=e["diff"],
            y=label,
            mode="markers",
            name="ours (95% interval)",
            error_x=dict(
                type="data",
                symmetric=False,
                array=e["high"] - e["diff"],
                arrayminus=e["diff"] - e["low"],
            ),
            marker=dict(color="#1f77b4", size=8),
        )
    )
    if paper is not None and not paper.empty and not e.empty:  # (one strategy: no contrast to mark)
        p = paper[(paper["metric"] == metric) & paper["paper_diff"].notna()]
        p = p.assign(
            label=p["contrast"].astype(str)
            + " · "
            + p["our_benchmark"].astype(str)
            + " · "
            + p["setting"].astype(str)
        )
        p = p[p["label"].isin(set(label))]
        for (enc, sub), symbol in zip(
            p.groupby("encoder"), ("diamond", "x", "triangle-up", "square", "star")
        ):
            fig.add_trace(
                go.Scatter(
                    x=sub["paper_diff"],
                    y=sub["label"],
                    mode="markers",
                    name=f"paper: {enc}",
                    marker=dict(symbol=symbol, size=9),
                )
            )
    fig.add_vline(x=0, line_dash="dot", line_color="grey")
    fig.update_layout(
        title=f"Strategy effects on {metric} (difference of means; the paper's as markers)",
        xaxis_title=f"{metric} difference",
        height=160 + 22 * len(e),
        margin=dict(l=260, r=20, t=50, b=40),
        yaxis=dict(autorange="reversed", type="category"),
    )
    return fig


def language_bars(
    view: pd.DataFrame, benchmark: str, setting: str, metric: str, model: str = "hybrid"
):
    """Per-language bars of one strategy: the paper's encoders (arXiv 2408.10536 Tables 3-8, 12-13)
    and ours where the run has the language (:func:`hbkit.analysis.paper_tables.per_language_view`
    with ``paper_only=True``); a language the run never trained on is marked "(unseen)", as the
    paper marks el and vi. Raises ``ValueError`` for a selection with no row."""
    import plotly.graph_objects as go  # heavy: plotly

    v = view[
        (view["benchmark"] == benchmark)
        & (view["setting"] == setting)
        & (view["metric"] == metric)
        & (view["model"] == model)
    ].sort_values("lang")
    if v.empty:
        raise ValueError(f"no per-language values for {model} on {benchmark} {setting} {metric}")
    unseen = v["unseen"].astype(bool) if "unseen" in v else pd.Series(False, index=v.index)
    labels = [f"{l} (unseen)" if u else l for l, u in zip(v["lang"], unseen)]
    fig = go.Figure()
    for col, color in (("paper XLM-R", "#9467bd"), ("paper LaBSE", "#8c564b"), ("ours", "#1f77b4")):
        if col in v and v[col].notna().any():
            fig.add_trace(
                go.Bar(
                    x=labels,
                    y=v[col],
                    name=col.replace("ours", "ours (mean over seeds)"),
                    marker_color=color,
                )
            )
    fig.update_layout(
        barmode="group",
        title=f"{metric} per language: {model} on {benchmark} ({setting}); the paper's "
        "encoders beside ours",
        xaxis_title="query language",
        yaxis_title=metric,
        height=380,
        margin=dict(l=50, r=20, t=50, b=40),
    )
    return fig


def alignment_vs_retrieval_figure(
    results: pd.DataFrame, alignment: pd.DataFrame, metric: str = "map"
):
    """One point per model and seed: an alignment measure (rows) against ``metric`` per setting
    (columns), every benchmark a symbol; the correlations are
    :func:`hbkit.analysis.stats.alignment_vs_retrieval`'s table."""
    import plotly.express as px

    r = results[
        (results["metric"] == metric)
        & (results["qlang"] == "all")
        & results["setting"].isin(["mono", "cross", "multi"])
    ]
    a = alignment.rename(columns={"metric": "alignment_metric", "value": "alignment_value"})
    both = r.merge(
        a[["model", "seed", "benchmark", "alignment_metric", "alignment_value"]],
        on=["model", "seed", "benchmark"],
    )
    fig = px.scatter(
        both,
        x="alignment_value",
        y="value",
        color="model",
        symbol="benchmark",
        facet_col="setting",
        facet_row="alignment_metric",
        category_orders={"model": STRATEGY_ORDER, "setting": ["mono", "cross", "multi"]},
        hover_data=["seed"],
    )
    fig.update_xaxes(matches=None, title="")
    fig.update_yaxes(title=metric)
    fig.update_layout(
        title=f"Alignment against {metric}, one point per model and seed (Spearman's rho with 95% "
        "intervals: the table beside it)",
        height=260 * max(1, both["alignment_metric"].nunique()),
    )
    return fig


# --------------------------------------------------------------------------------------------------
# the dashboard's figures: plain functions of a results table and the control values
# --------------------------------------------------------------------------------------------------
def _select(
    results: pd.DataFrame, benchmark: str, metric: str, setting: str | None, qlang: str, dlang: str
):
    r = results[(results["benchmark"] == benchmark) & (results["metric"] == metric)]
    if setting:
        r = r[r["setting"] == setting]
    if qlang != "all" or dlang != "all":
        return r[(r["qlang"] == qlang) & ((r["dlang"] == dlang) | (dlang == "all"))]
    return r[r["qlang"] == "all"]


def dashboard_figure(
    results: pd.DataFrame,
    benchmark: str,
    metric: str = "map",
    setting: str | None = None,
    models: list[str] | None = None,
    qlang: str = "all",
    dlang: str = "all",
    reference: pd.DataFrame | None = None,
):
    """Bars of ``metric`` per model for one benchmark: all settings (``setting=None``) or one; for
    one language pair when ``qlang``/``dlang`` are not ``all``. With a ``reference`` table
    (:func:`hbkit.analysis.reference.load_reference`), its numbers for the same
    benchmark/metric/setting are drawn beside ours as hatched bars named ``<encoder> (<source>):
    <model>`` (macro values only: a reference has no language pairs). Raises ``ValueError`` when our
    selection is empty."""
    import plotly.express as px

    r = _select(results, benchmark, metric, setting, qlang, dlang)
    if models:
        r = r[r["model"].isin(models)]
    if r.empty:
        raise ValueError(
            f"no results for benchmark={benchmark}, metric={metric}, setting={setting}, "
            f"pair={qlang}->{dlang}, models={models}"
        )
    r = r.assign(source="ours")
    if reference is not None and qlang == "all" and dlang == "all":
        ref = _select(
            reference.assign(qlang="all", dlang="all"), benchmark, metric, setting, "all", "all"
        )
        if models:
            ref = ref[ref["model"].isin(models)]
        ref = ref.assign(
            source=ref["encoder"] + " (" + ref["source"] + ")",
            model=ref["encoder"] + " (" + ref["source"] + "): " + ref["model"],
        )
        r = pd.concat([r, ref[r.columns.intersection(ref.columns)]], ignore_index=True)
    published = set(r.loc[r["source"] != "ours", "model"])
    order = list(STRATEGY_ORDER)  # then other runs of ours, then the published bars
    order += sorted(set(r["model"]) - set(order) - published) + sorted(published)
    fig = px.bar(
        r,
        x="setting",
        y="value",
        color="model",
        barmode="group",
        text_auto=".3f",
        category_orders={"setting": list(SETTINGS), "model": order},
    )
    fig.for_each_trace(
        lambda t: t.update(marker_pattern_shape="/") if t.name in published else None
    )
    pair = "" if qlang == "all" else f" ({qlang} -> {dlang})"
    # tall enough for one legend row per bar (16 models and their fixes would otherwise scroll, cut
    # off)
    fig.update_layout(
        title=f"{benchmark}: {metric}{pair}",
        yaxis_title=metric,
        height=max(450, 140 + 21 * len(fig.data)),
    )
    return fig


def alpha_figure(
    results: pd.DataFrame,
    benchmark: str,
    metric: str = "map",
    setting: str | None = None,
    qlang: str = "all",
    dlang: str = "all",
    alpha: float | None = None,
    intervals: pd.DataFrame | None = None,
):
    """``metric`` against the hybrid share α, one line per setting: every trained model whose α is
    known (:func:`model_alpha`: xy at 0, hybrid at 0.5, xx at 1, ``hybrid-a<α>`` runs in between),
    the base model as a dotted line per setting, and ``alpha`` (the value the run button would
    train) as a vertical line. With ``intervals`` (``aggregate.csv``: intervals over seeds and query
    groups) the macro values get error bars. Raises ``ValueError`` when no trained model has a value
    for the selection."""
    import plotly.graph_objects as go
    from plotly.colors import qualitative

    r = _select(results, benchmark, metric, setting, qlang, dlang)
    r = r.assign(alpha=r["model"].map(model_alpha))
    trained = r.dropna(subset=["alpha"]).sort_values("alpha")
    if trained.empty:
        raise ValueError(
            f"no trained model has {metric} for benchmark={benchmark}, setting={setting}, "
            f"pair={qlang}->{dlang}"
        )
    fig = go.Figure()
    for i, s in enumerate(x for x in SETTINGS if x in set(trained["setting"])):
        colour = qualitative.Plotly[i]
        t = trained[trained["setting"] == s]
        err = None
        if intervals is not None and qlang == "all" and dlang == "all":
            iv = intervals[
                (intervals["benchmark"] == benchmark)
                & (intervals["metric"] == metric)
                & (intervals["setting"] == s)
            ].set_index("model")
            if set(t["model"]) <= set(iv.index):
                hi, lo = iv.loc[t["model"], "high"].to_numpy(), iv.loc[t["model"], "low"].to_numpy()
                err = dict(
                    type="data",
                    symmetric=False,
                    array=hi - t["value"].to_numpy(),
                    arrayminus=t["value"].to_numpy() - lo,
                )
        fig.add_scatter(
            x=t["alpha"],
            y=t["value"],
            mode="lines+markers",
            name=s,
            line_color=colour,
            error_y=err,
            text=t["model"],
            hovertemplate="%{text}: α=%{x:g}, " + metric + "=%{y:.3f}<extra></extra>",
        )
        b = r[(r["model"] == "base") & (r["setting"] == s)]
        if not b.empty:
            fig.add_hline(
                y=float(b["value"].iloc[0]),
                line_dash="dot",
                line_color=colour,
                annotation_text=f"base {s}",
                annotation_position="top left",
            )
    ys = pd.concat([trained["value"], r.loc[r["model"] == "base", "value"]])
    pad = 0.05 * (ys.max() - ys.min()) or 0.01
    fig.update_yaxes(range=[ys.min() - pad, ys.max() + pad])  # the base lines stay in view
    if alpha is not None:
        fig.add_vline(
            x=alpha, line_dash="dash", line_color="grey", annotation_text=f"α = {alpha:g}"
        )
    pair = "" if qlang == "all" else f" ({qlang} -> {dlang})"
    fig.update_layout(
        title=f"{benchmark}: {metric}{pair} against α (0 = X-Y only, 1 = X-X-mono only)",
        xaxis=dict(title="α (share of X-X-mono batches)", range=[-0.05, 1.05]),
        yaxis_title=metric,
    )
    return fig
