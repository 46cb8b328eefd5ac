"""The strategy dashboard: ipywidgets controls wired to the figures of :mod:`hbkit.viz`, over saved results.

The figure logic lives in :func:`dashboard_figure` (plain function of a results table and the control values,
unit-tested); :class:`Dashboard` only wires widgets to it and can launch a small run.
"""
from __future__ import annotations

from pathlib import Path

import pandas as pd

#: Macro mAP of the paper's Table 1 is not reproduced here: its numbers come from mMARCO-scale training that
#: a 2-core profile cannot match. The dashboard shows the shape of the comparison (which strategy wins where).
SETTINGS = ("mono", "cross", "multi")


def load_results(folder: str | Path) -> pd.DataFrame:
    """``results.csv`` of a ``hbkit compare`` run folder, with a clear error if the run is incomplete."""
    path = Path(folder) / "results.csv"
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: run `hbkit compare --out {folder}` first")
    return pd.read_csv(path)


def dashboard_figure(results: pd.DataFrame, benchmark: str, metric: str = "map", setting: str | None = None,
                     models: list[str] | None = None, qlang: str = "all", dlang: str = "all"):
    """Bars of ``metric`` per model for one benchmark: all settings (``setting=None``) or one; for one
    language pair when ``qlang``/``dlang`` are not ``all``. Raises ``ValueError`` when the selection is empty."""
    import plotly.express as px

    r = results[(results["benchmark"] == benchmark) & (results["metric"] == metric)]
    if setting:
        r = r[r["setting"] == setting]
    if qlang != "all" or dlang != "all":
        r = r[(r["qlang"] == qlang) & ((r["dlang"] == dlang) | (dlang == "all"))]
    else:
        r = r[r["qlang"] == "all"]
    if models:
        r = r[r["model"].isin(models)]
    if r.empty:
        raise ValueError(f"no results for benchmark={benchmark}, metric={metric}, setting={setting}, "
                         f"pair={qlang}->{dlang}, models={models}")
    fig = px.bar(r, x="setting", y="value", color="model", barmode="group", text_auto=".3f",
                 category_orders={"setting": list(SETTINGS), "model": ["base", "xx", "xy", "hybrid"]})
    pair = "" if qlang == "all" else f" ({qlang} -> {dlang})"
    fig.update_layout(title=f"{benchmark}: {metric}{pair}", yaxis_title=metric)
    return fig


class Dashboard:
    """ipywidgets dashboard over a results table: benchmark, metric, setting, models, language pair.

    ``Dashboard(results).widget`` is the container to display; changing any control rebuilds
    ``self.figure`` (a plotly ``Figure``) and shows it in ``self.output`` (rendered by plotly's own
    notebook renderer, so it works in JupyterLab and Voilà alike). ``run_button`` launches ``hbkit.compare`` with the ``ci``
    profile (or ``profile``) into ``out`` and reloads the results.
    """

    def __init__(self, results: pd.DataFrame, out: str | Path | None = None, profile: str = "ci"):
        import ipywidgets as w
        import plotly.graph_objects as go

        self.results, self.out, self.profile = results, out, profile
        benches = sorted(results["benchmark"].unique())
        metrics = sorted(results["metric"].unique())
        self.benchmark = w.Dropdown(options=benches, value=benches[0], description="benchmark")
        self.metric = w.Dropdown(options=metrics, value="map" if "map" in metrics else metrics[0], description="metric")
        self.setting = w.Dropdown(options=[("all", None)] + [(s, s) for s in SETTINGS], value=None, description="setting")
        models = list(dict.fromkeys(results["model"]))
        self.models = w.SelectMultiple(options=models, value=tuple(models), description="models")
        self.qlang = w.Dropdown(description="query lang")
        self.dlang = w.Dropdown(description="doc lang")
        self.message = w.HTML()
        self.run_button = w.Button(description=f"run ({profile} profile)")
        self.figure = go.Figure()
        self.output = w.Output()
        self._update_langs()
        for c in (self.benchmark, self.metric, self.setting, self.models, self.qlang, self.dlang):
            c.observe(self._on_change, names="value")
        self.run_button.on_click(self._run)
        self.redraw()
        self.widget = w.VBox([w.HBox([self.benchmark, self.metric, self.setting]),
                              w.HBox([self.models, w.VBox([self.qlang, self.dlang]), self.run_button]),
                              self.message, self.output])

    def _update_langs(self):
        r = self.results[self.results["benchmark"] == self.benchmark.value]
        self.qlang.options = ["all"] + sorted(set(r["qlang"]) - {"all"})
        self.dlang.options = ["all"] + sorted(set(r["dlang"]) - {"all"})
        self.qlang.value = self.dlang.value = "all"

    def _on_change(self, change):
        if change["owner"] is self.benchmark:
            self._update_langs()
        self.redraw()

    def redraw(self) -> None:
        try:
            fig = dashboard_figure(self.results, self.benchmark.value, self.metric.value, self.setting.value,
                                   list(self.models.value), self.qlang.value, self.dlang.value)
        except ValueError as e:
            self.message.value = f"<i>{e}</i>"
            return
        self.message.value = ""
        self.figure = fig
        from IPython.display import display

        with self.output:
            self.output.clear_output(wait=True)
            display(fig)

    def _run(self, _=None):
        from .compare import compare

        self.message.value = f"running the {self.profile} profile ..."
        res = compare(self.profile, self.out or f"runs/dashboard-{self.profile}", progress=False)
        self.results = res["results"]
        self._update_langs()
        self.redraw()
        self.message.value = f"done: {res['out']}"
