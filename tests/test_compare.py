"""The main job end to end on the ci profile (tiny encoder)."""
import json

import pandas as pd
import pytest

from hbkit.compare import compare


@pytest.fixture(scope="module")
def ci_run(data_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("compare")
    return compare("ci", out, data_dir=data_dir, progress=False)


def test_outputs_exist_and_are_consistent(ci_run):
    out = ci_run["out"]
    for f in ("results.csv", "results.json", "table.md", "table.csv", "significance.csv", "report.html",
              "timings.json", "alignment.csv", "umap.csv"):
        assert (out / f).is_file(), f
    r = pd.read_csv(out / "results.csv")
    assert set(r.model) == {"base", "xx", "xy", "hybrid"}
    assert set(r.benchmark) == {"xquad-r-eval", "mlqa-r", "tydiqa"}
    macro = r[(r.qlang == "all") & (r.metric == "map")]
    assert len(macro) == 4 * (3 + 3 + 2)  # models x (settings per benchmark; tydiqa has no cross)
    assert r[r.metric != "rank_distance"].value.between(0, 1).all()
    assert (r[r.metric == "rank_distance"].value >= 0).all()
    sig = pd.read_csv(out / "significance.csv")
    assert set(sig.vs) == {"xx", "xy", "base"} and sig.low.le(sig.high).all()
    table = pd.read_csv(out / "table.csv")
    assert list(table.model) == ["base", "xx", "xy", "hybrid"]
    cfg = json.loads((out / "results.json").read_text())["config"]
    assert cfg["profile"] == "ci"


def test_report_embeds_figures(ci_run):
    html = (ci_run["out"] / "report.html").read_text()
    assert html.startswith("<!doctype html>") and html.count("plotly-graph-div") >= 5
    assert "Plotly.newPlot" in html and 'src="https://cdn.plot.ly' not in html and len(html) > 3_000_000  # plotly.js inlined


def test_rerun_reuses_models(ci_run, data_dir):
    out = ci_run["out"]
    before = {p: p.stat().st_mtime_ns for p in out.glob("models/*/model/hbkit_training.json")}
    again = compare("ci", out, data_dir=data_dir, progress=False)
    after = {p: p.stat().st_mtime_ns for p in out.glob("models/*/model/hbkit_training.json")}
    assert before == after and again["timings"]["train"] == 0 and again["timings"]["reused_results"] == 12
    pd.testing.assert_frame_equal(again["table"], ci_run["table"])


def test_rerun_with_another_setup_is_refused(ci_run, data_dir):
    with pytest.raises(ValueError, match=r"steps: 4 -> 5.*--force"):
        compare("ci", ci_run["out"], data_dir=data_dir, progress=False, steps=5)


def test_extra_alpha_trains_only_the_new_run(ci_run, data_dir):
    from hbkit.widgets import alpha_figure

    out = ci_run["out"]
    again = compare("ci", out, data_dir=data_dir, progress=False, alphas=[0.25])
    assert again["timings"]["train"] > 0 and again["timings"]["reused_results"] == 12
    r = again["results"]
    assert set(r.model) == {"base", "xx", "xy", "hybrid", "hybrid-a0.25"}
    log = json.loads((out / "models" / "hybrid-a0.25" / "model" / "hbkit_training.json").read_text())
    assert log["config"]["strategy"] == "hybrid" and log["config"]["alpha"] == 0.25
    fig = alpha_figure(r, "mlqa-r", setting="multi", alpha=0.25)
    (line,) = fig.data
    assert list(line.x) == [0.0, 0.25, 0.5, 1.0] and list(line.text) == ["xy", "hybrid-a0.25", "hybrid", "xx"]
