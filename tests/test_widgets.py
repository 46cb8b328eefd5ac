"""The dashboard: its figure function, and the widgets driven by setting values."""

import pandas as pd
import pytest

from hbkit.analysis.figures import dashboard_figure
from hbkit.app.widgets import Dashboard


@pytest.fixture()
def results():
    rows = []
    for model, base in (("base", 0.3), ("xx", 0.4), ("xy", 0.5), ("hybrid", 0.6)):
        for bench in ("xquad-r-eval", "mlqa-r"):
            for setting in ("mono", "cross", "multi"):
                rows.append((model, bench, setting, "all", "all", "map", base + (0.1 if bench == "mlqa-r" else 0)))
                rows.append((model, bench, setting, "all", "all", "recall@1", base / 2))
            rows.append((model, bench, "cross", "en", "de", "map", base - 0.05))
    return pd.DataFrame(rows, columns=["model", "benchmark", "setting", "qlang", "dlang", "metric", "value"])


def test_dashboard_figure_selects(results):
    fig = dashboard_figure(results, "mlqa-r", "map")
    assert {t.name for t in fig.data} == {"base", "xx", "xy", "hybrid"}
    hyb = next(t for t in fig.data if t.name == "hybrid")
    assert list(hyb.y) == pytest.approx([0.7, 0.7, 0.7])
    pair = dashboard_figure(results, "xquad-r-eval", "map", qlang="en", dlang="de", models=["xx"])
    assert [t.name for t in pair.data] == ["xx"] and list(pair.data[0].y) == pytest.approx([0.35])
    with pytest.raises(ValueError, match="no results"):
        dashboard_figure(results, "mlqa-r", "ndcg@10")


def test_the_legend_of_many_models_fits_the_figure(results):
    """One legend row per bar: with 16 models the figure grows so that the legend is not cut off (plotly's legend
    scrolls inside the plot's height, and the models below the fold were hidden)."""
    many = pd.concat([results.assign(model=f"run{i}") for i in range(16)], ignore_index=True)
    few, lots = dashboard_figure(results, "mlqa-r", "map"), dashboard_figure(many, "mlqa-r", "map")
    assert len(lots.data) == 16 and few.layout.height == 450
    assert lots.layout.height >= 140 + 21 * 16 > 450


def test_dashboard_widgets_update_figure(results):
    d = Dashboard(results)
    first = {t.name: tuple(t.y) for t in d.figure.data}
    assert d.benchmark.value == "mlqa-r" and first["hybrid"] == pytest.approx((0.7, 0.7, 0.7))
    d.benchmark.value = "xquad-r-eval"
    second = {t.name: tuple(t.y) for t in d.figure.data}
    assert first != second and second["hybrid"] == pytest.approx((0.6, 0.6, 0.6))
    d.metric.value = "recall@1"
    assert tuple(next(t for t in d.figure.data if t.name == "hybrid").y) == pytest.approx((0.3, 0.3, 0.3))
    d.models.value = ("xx",)
    assert [t.name for t in d.figure.data] == ["xx"]
    d.metric.value = "map"
    d.qlang.value, d.dlang.value = "en", "de"
    assert [t.name for t in d.figure.data] == ["xx"] and d.figure.data[0].y[0] == pytest.approx(0.35)


def test_model_alpha_names():
    from hbkit.analysis.figures import model_alpha

    assert [model_alpha(m) for m in ("xy", "hybrid", "xx", "hybrid-a0.25", "hybrid-a1", "base", "hybrid-ax")] == \
        [0.0, 0.5, 1.0, 0.25, 1.0, None, None]


def test_alpha_figure_orders_runs_by_alpha(results):
    from hbkit.analysis.figures import alpha_figure

    extra = results[results.model == "hybrid"].assign(model="hybrid-a0.25", value=lambda d: d.value + 0.05)
    r = pd.concat([results, extra], ignore_index=True)
    fig = alpha_figure(r, "mlqa-r", "map", alpha=0.25)
    assert [t.name for t in fig.data] == ["mono", "cross", "multi"]
    multi = fig.data[2]
    assert list(multi.x) == [0.0, 0.25, 0.5, 1.0] and list(multi.text) == ["xy", "hybrid-a0.25", "hybrid", "xx"]
    assert list(multi.y) == pytest.approx([0.6, 0.75, 0.7, 0.5])
    lines = [s for s in fig.layout.shapes]
    assert sum(s.x0 == 0.25 and s.x1 == 0.25 for s in lines) == 1  # the chosen α
    assert sorted(s.y0 for s in lines if s.y0 == s.y1) == pytest.approx([0.4, 0.4, 0.4])  # base, per setting
    lo, hi = fig.layout.yaxis.range
    assert lo < 0.4 and hi > 0.75  # the base lines stay in view
    with pytest.raises(ValueError, match="no trained model"):
        alpha_figure(results[results.model == "base"], "mlqa-r")


REF = """source,encoder,model,benchmark,setting,metric,value
# a comment line
paperX,XLM-R,hybrid,mlqa-r,multi,map,0.55
paperX,XLM-R,xx,mlqa-r,multi,map,0.45
paperX,XLM-R,hybrid,mlqa-r,multi,rank_distance,120
paperX,XLM-R,hybrid,xquad-r,mono,map,0.8
"""


def test_load_reference_and_beside(results, tmp_path):
    from hbkit.analysis.reference import beside, load_reference

    path = tmp_path / "ref.csv"
    path.write_text(REF)
    ref = load_reference(path)
    assert len(ref) == 4 and ref.value.dtype == float
    t = beside(results, ref, "FacebookAI/xlm-roberta-base")
    assert len(t) == 4  # a row our run cannot match is kept, with ours empty
    row = t[(t.model == "hybrid") & (t.metric == "map") & (t.benchmark == "mlqa-r")].iloc[0]
    assert (row.paper, row.ours, row["ours - paper"]) == pytest.approx((0.55, 0.7, 0.15))
    x = t[t.benchmark == "xquad-r"].iloc[0]   # our held-out xquad-r-eval stands beside the full XQuAD-R, unsubtracted
    assert pd.isna(x["ours - paper"]) and "ours on xquad-r-eval" in x.note
    # another encoder (ours mE5, the paper's XLM-R): the values stand side by side, never subtracted
    other = beside(results, ref, "intfloat/multilingual-e5-small")
    row = other[(other.model == "hybrid") & (other.metric == "map") & (other.benchmark == "mlqa-r")].iloc[0]
    assert row.ours == pytest.approx(0.7) and pd.isna(row["ours - paper"]) and "different encoder" in row.note
    assert beside(results, ref)["ours - paper"].isna().all()   # an unknown encoder is not assumed to be the paper's


@pytest.mark.parametrize("text, message", [
    ("source,model,benchmark,setting,metric,value\nx,xx,mlqa-r,multi,map,0.5\n", "missing column.*encoder"),
    ("source,encoder,model,benchmark,setting,metric,value\n", "no rows"),
    ("source,encoder,model,benchmark,setting,metric,value\np,E,mixed,mlqa-r,multi,map,0.5\n", "row 1: model 'mixed'"),
    ("source,encoder,model,benchmark,setting,metric,value\np,E,xx,mlqa-r,multi,map,0.5\np,E,xx,mlqa-r,both,map,0.5\n",
     "row 2: setting 'both'"),
    ("source,encoder,model,benchmark,setting,metric,value\np,E,xx,mlqa-r,multi,map,n/a\n", "row 1: value 'n/a'"),
    ("source,encoder,model,benchmark,setting,metric,value\np,E,xx,mlqa-r,multi,map,55.1\n", r"fractions \(0.551\)"),
    ("source,encoder,model,benchmark,setting,metric,value\np,E,xx,mlqa-r,multi,map,0.5\np,E,xx,mlqa-r,multi,map,0.6\n",
     "rows 1, 2 repeat"),
])
def test_load_reference_errors_name_the_row(tmp_path, text, message):
    from hbkit.analysis.reference import load_reference

    path = tmp_path / "ref.csv"
    path.write_text(text)
    with pytest.raises(ValueError, match=message) as e:
        load_reference(path)
    assert str(path) in str(e.value)
    with pytest.raises(FileNotFoundError, match="columns source, encoder"):
        load_reference(tmp_path / "missing.csv")


def test_dashboard_alpha_and_reference(results, tmp_path, monkeypatch):
    from hbkit.analysis import reference as R

    path = tmp_path / "ref.csv"
    path.write_text(REF)
    monkeypatch.setenv("HBKIT_REFERENCE", str(path))
    d = Dashboard(results, out=tmp_path / "run", reference=R.default_reference(), profile="ci")
    names = [t.name for t in d.figure.data]
    assert names == ["base", "xx", "xy", "hybrid", "XLM-R (paperX): hybrid", "XLM-R (paperX): xx"]  # ours first
    assert [t.marker.pattern.shape for t in d.figure.data][-2:] == ["/", "/"] and not d.figure.data[0].marker.pattern.shape
    ref_bar = next(t for t in d.figure.data if t.name == "XLM-R (paperX): hybrid")
    assert list(ref_bar.x) == ["multi"] and list(ref_bar.y) == pytest.approx([0.55])
    assert list(d.table.model) == ["hybrid", "xx"] and list(d.table.ours) == pytest.approx([0.7, 0.5])
    d.qlang.value, d.dlang.value = "en", "de"  # a language pair: the reference has none, ours only
    d.benchmark.value = "xquad-r-eval"
    d.qlang.value, d.dlang.value = "en", "de"
    assert not any(t.name.startswith("XLM-R") for t in d.figure.data)
    assert d.table.empty
    # α: the slider moves the marker on the α figure and names the extra run the button would train
    assert "hybrid α" not in d.run_button.description
    d.alpha.value = 0.25
    assert "hybrid α=0.25" in d.run_button.description
    assert any(s.x0 == 0.25 for s in d.alpha_fig.layout.shapes)
    calls = []

    def fake_compare(profile, out, progress, alphas, on_progress, cancel):
        calls.append((profile, str(out), alphas))
        more = results[results.model == "hybrid"].assign(model="hybrid-a0.25")
        return {"results": pd.concat([results, more], ignore_index=True), "out": out}

    monkeypatch.setattr("hbkit.app.widgets.compare", fake_compare)
    d.run_button.click()
    d.thread.join(30)
    assert calls == [("ci", str(tmp_path / "run"), [0.25])]
    assert "hybrid-a0.25" in d.models.options and "done" in d.message.value
    assert 0.25 in list(d.alpha_fig.data[0].x)


def test_dashboard_reports_a_failed_run(results, monkeypatch):
    def broken(*a, **k):
        raise ValueError("runs/x holds models of another set-up")

    monkeypatch.setattr("hbkit.app.widgets.compare", broken)
    d = Dashboard(results, profile="ci")
    d.run_button.click()
    d.thread.join(30)
    assert "run failed" in d.message.value and "another set-up" in d.message.value
    assert not d.run_button.disabled and d.cancel_button.disabled


def test_dashboard_trains_in_the_background_shows_progress_and_cancels(results, monkeypatch, tmp_path):
    """The button returns at once (the kernel stays free), the progress bar follows the job's models, Cancel
    stops it through the job's cancel event, and the buttons come back."""
    import threading

    from hbkit.train.trainer import RunCancelled
    started, seen = threading.Event(), {}

    def slow_compare(profile, out, progress, alphas, on_progress, cancel):
        seen.update(profile=profile, out=str(out))
        on_progress({"stage": "train", "model": "xx-s0", "i": 1, "n": 4, "eta_s": 600.0})
        started.set()
        if not cancel.wait(30):
            raise AssertionError("never cancelled")
        raise RunCancelled("cancelled at step 3; rerun to resume from the last checkpoint")

    monkeypatch.setattr("hbkit.app.widgets.compare", slow_compare)
    d = Dashboard(results, profile="cpu")
    d.run_button.click()
    assert d.thread.is_alive() and started.wait(30)          # the callback returned while the job runs
    assert d.run_button.disabled and not d.cancel_button.disabled
    assert (d.progress.value, d.progress.max) == (1, 4) and d.progress.layout.visibility == "visible"
    assert "train xx-s0 (model 2 of 4, about 10 min left)" in d.message.value
    assert seen["profile"] == "cpu" and seen["out"].endswith(f"runs{__import__('os').sep}cpu")  # the shared folder
    d.cancel_button.click()
    d.thread.join(30)
    assert not d.thread.is_alive() and "cancelled" in d.message.value
    assert not d.run_button.disabled and d.cancel_button.disabled and d.progress.layout.visibility == "hidden"


def test_dashboard_shows_the_papers_per_language_tables_beside_ours(tmp_path):
    """Per-language bars: the paper's XLM-R and LaBSE (shipped Tables 3-8, 12-13) beside ours, languages outside the
    run's training languages marked unseen; MIRACL's nDCG@10 / Recall@100 shown from the paper alone when the run
    has no MIRACL; the paper's per-language strategy differences beside ours."""
    import json

    from hbkit.analysis.paper_tables import paper_tables
    rows = []
    for seed in (0, 1):
        for model, base in (("xx", 0.40), ("xy", 0.42), ("hybrid", 0.45)):
            for lang in ("en", "de", "el"):
                rows.append((model, seed, "xquad-r-eval", "multi", lang, "all", "map", base + 0.01 * seed))
            rows.append((model, seed, "xquad-r-eval", "multi", "all", "all", "map", base))
    results = pd.DataFrame(rows, columns=["model", "seed", "benchmark", "setting", "qlang", "dlang", "metric", "value"])
    results["n"] = 10
    (tmp_path / "config.json").write_text(json.dumps({"model": "x", "train_languages": ["en", "de"]}))
    d = Dashboard(results, out=tmp_path)
    assert (d.lang_benchmark.value, d.lang_setting.value, d.lang_metric.value, d.lang_model.value) == \
        ("xquad-r", "multi", "map", "hybrid")
    bars = {t.name: dict(zip(t.x, t.y)) for t in d.language_fig.data}
    assert set(bars) == {"paper XLM-R", "paper LaBSE", "ours (mean over seeds)"}
    ours = bars["ours (mean over seeds)"]
    assert ours["en"] == pytest.approx(0.455) and ours["el (unseen)"] == pytest.approx(0.455)
    t = paper_tables()
    want = t[(t.benchmark == "xquad-r") & (t.setting == "multi") & (t.metric == "map") & (t.model == "hybrid")
             & (t.encoder == "XLM-R") & (t.lang == "de")].value.item()
    assert bars["paper XLM-R"]["de"] == pytest.approx(want)
    e = d.language_effects
    row = e[(e.lang == "en") & (e.contrast == "hybrid-xx")].iloc[0]
    assert row.ours == pytest.approx(0.05) and bool(row.unseen) is False
    assert bool(e[(e.lang == "el") & (e.contrast == "hybrid-xx")].unseen.iloc[0]) is True
    d.lang_benchmark.value = "miracl"
    assert d.lang_metric.options == ("ndcg@10", "recall@100")
    assert {t.name for t in d.language_fig.data} == {"paper XLM-R", "paper LaBSE"}   # ours: no MIRACL in this run
    d.lang_metric.value = "recall@100"
    assert "recall@100" in d.language_fig.layout.title.text and d.language_effects.empty


def test_the_free_fixes_are_models_of_the_dashboard(results):
    """base+shift and hybrid+center (hbkit.retrieval.posthoc) are models like the others: in the selector, in the bars
    in the shared model order (the strategies first), and left out of the α figure, which is about training."""
    from hbkit.analysis.figures import alpha_figure
    fixed = pd.concat([results.assign(model="base+shift", value=results.value + 0.01),
                       results[results.model == "hybrid"].assign(model="hybrid+center")], ignore_index=True)
    both = pd.concat([results, fixed], ignore_index=True)
    d = Dashboard(both)
    assert {"base+shift", "hybrid+center"} <= set(d.models.options)
    names = [t.name for t in d.figure.data]
    assert names[:4] == ["base", "xx", "xy", "hybrid"] and {"base+shift", "hybrid+center"} <= set(names)
    on_alpha = [m for t in alpha_figure(both, "mlqa-r").data if t.text is not None for m in t.text]
    assert set(on_alpha) == {"xx", "xy", "hybrid"}


def test_the_snapshot_draws_the_dashboard_as_it_stands(results, monkeypatch):
    """A reader of the HTML copy sees no live widget: snapshot() draws the current selection's figures as plain
    output, after one line naming the controls, and says which figure had nothing to draw."""
    import IPython.display

    shown = []
    monkeypatch.setattr(IPython.display, "display", lambda obj: shown.append(obj))
    d = Dashboard(results)
    d.benchmark.value, d.setting.value = "xquad-r-eval", "multi"
    shown.clear()           # what the controls drew into their Output widgets
    figs = d.snapshot()
    assert figs and figs[0] is d.figure and d.figure in shown
    assert {t.name for t in figs[0].data} == {"base", "xx", "xy", "hybrid"}
    assert tuple(next(t for t in figs[0].data if t.name == "hybrid").y) == pytest.approx((0.6,))
    line = shown[0].data
    assert "benchmark xquad-r-eval" in line and "setting multi" in line and "strategies base, xx, xy, hybrid" in line
    assert len(shown) == 1 + len(figs)
    d.models.value = ()          # nothing selected: the models figure is empty, and the line says so
    d.figure = type(d.figure)()
    shown.clear()
    assert d.figure not in d.snapshot() and "nothing to draw for: models" in shown[0].data
