"""The dashboard: its figure function, and the widgets driven by setting values."""
import pandas as pd
import pytest

from hbkit.widgets import Dashboard, dashboard_figure


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
