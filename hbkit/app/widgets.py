"""The strategy dashboard: ipywidgets controls wired to figures, over saved results.

The figure logic is plain functions of a results table and the control values, in
:mod:`hbkit.analysis.figures` with the other figures (unit-tested):
:func:`hbkit.analysis.figures.dashboard_figure` (bars per model),
:func:`hbkit.analysis.figures.alpha_figure` (the metric against the hybrid share α) and
:func:`hbkit.analysis.reference.beside` (published numbers, e.g. the paper's Table 1, next to ours).
:class:`Dashboard` only wires widgets to them and can launch a small run.
"""

from __future__ import annotations

import html
import threading
from pathlib import Path

import pandas as pd

from hbkit.analysis.figures import alpha_figure, dashboard_figure, language_bars
from hbkit.analysis.paper_tables import per_language_effects, per_language_view
from hbkit.analysis.reference import beside
from hbkit.core.env import default_run_dir
from hbkit.core.vocab import SETTINGS, STRATEGY_ALPHA
from hbkit.experiment.compare import compare
from hbkit.experiment.profiles import profile as get_profile
from hbkit.experiment.run_files import RunFolder
from hbkit.train.trainer import RunCancelled


def seed_mean(results: pd.DataFrame) -> pd.DataFrame:
    """``results.csv`` rows (one per model, seed and cell) averaged over training seeds: one value
    per model and cell, ``n_seeds`` beside it (the base model, evaluated once, has 1)."""
    if "seed" not in results.columns:
        return results
    keys = ["model", "benchmark", "setting", "qlang", "dlang", "metric"]
    return (
        results.groupby(keys, sort=False, dropna=False)
        .agg(value=("value", "mean"), n=("n", "first"), n_seeds=("value", "size"))
        .reset_index()
    )


def load_results(folder: str | Path) -> pd.DataFrame:
    """``results.csv`` of a ``hbkit compare`` run folder, averaged over seeds (:func:`seed_mean`),
    with a clear error if the run is incomplete.

    Args:
        folder: a ``hbkit compare`` run folder.

    Returns:
        One row per (model, benchmark, setting, metric) with the mean ``value`` over seeds.

    Examples:
        >>> load_results("results/cpu").head()  # doctest: +SKIP
    """
    return seed_mean(RunFolder(folder).table("results"))


def run_encoder(folder: str | Path) -> str | None:
    """The base encoder a run folder was trained from (``config.json``'s ``model``), or None.

    Args:
        folder: a ``hbkit compare`` run folder.

    Returns:
        The base encoder's name or path, or None when the folder has no ``config.json``.

    Examples:
        >>> run_encoder("results/cpu")  # doctest: +SKIP
    """
    return RunFolder(folder).setting("model")


def load_aggregate(folder: str | Path) -> pd.DataFrame | None:
    """``aggregate.csv`` of a run folder (mean over seeds with intervals over seeds and query
    groups), or None.

    Args:
        folder: a ``hbkit compare`` run folder.

    Returns:
        The aggregate table (:func:`hbkit.analysis.stats.aggregate`'s columns), or None when the run
            has none yet.

    Examples:
        >>> load_aggregate("results/cpu").head()  # doctest: +SKIP
    """
    return RunFolder(folder).table("aggregate", optional=True)


class Dashboard:
    """ipywidgets dashboard over a results table: strategies (models), α, benchmark, setting, metric
    and language pair.

    ``Dashboard(results).widget`` is the container to display. Changing any control rebuilds
    ``self.figure`` (bars per model, :func:`dashboard_figure`) and ``self.alpha_fig`` (metric
    against α, :func:`alpha_figure`), shown through plotly's own renderer so they work in JupyterLab
    and Voilà alike. With a ``reference`` table (:func:`hbkit.analysis.reference.load_reference`,
    e.g. the paper's Table 1) its numbers are drawn beside ours and ``self.table`` holds
    :func:`beside` for the current benchmark and metric. ``run_button`` trains the strategies at
    ``profile`` (the notebook's) into ``out`` (default: the profile's shared run folder,
    ``runs/<profile>``), plus a hybrid run at the α slider's value when it is not 0, 0.5 or 1, in a
    background thread: the kernel stays free, ``self.progress`` shows the stage, the model i/n and
    the ETA, ``cancel_button`` stops it cleanly (a rerun resumes), and the figures are redrawn from
    the new results when it is done.

    Below, the paper's per-language numbers (Tables 3-8 for XQuAD-R and MLQA-R, 12-13 for MIRACL's
    nDCG@10 and Recall@100, shipped with hbkit): ``self.language_fig``
    (:func:`hbkit.analysis.figures.language_bars`) puts the paper's XLM-R and LaBSE beside ours per
    language for the chosen benchmark, setting, metric and strategy, the languages the run never
    trained on marked unseen; ``self.language_effects`` holds the paper's per-language differences
    between strategies beside ours (:func:`hbkit.analysis.paper_tables.per_language_effects`).
    """

    def __init__(
        self,
        results: pd.DataFrame,
        out: str | Path | None = None,
        profile: str = "auto",
        reference: pd.DataFrame | None = None,
        aggregate: pd.DataFrame | None = None,
        encoder: str | None = None,
    ):
        import ipywidgets as w
        import plotly.graph_objects as go

        raw, results = results, seed_mean(results)
        self.results, self.out, self.profile, self.reference = results, out, profile, reference
        self.aggregate = aggregate
        # our encoder: "ours - paper" is shown only against the same encoder (reference.beside)
        self.encoder = encoder or (run_encoder(out) if out else None)
        benches = sorted(results["benchmark"].unique())
        metrics = sorted(results["metric"].unique())
        self.benchmark = w.Dropdown(options=benches, value=benches[0], description="benchmark")
        self.metric = w.Dropdown(
            options=metrics, value="map" if "map" in metrics else metrics[0], description="metric"
        )
        self.setting = w.Dropdown(
            options=[("all", None)] + [(s, s) for s in SETTINGS], value=None, description="setting"
        )
        self.models = w.SelectMultiple(description="strategies")
        self.qlang = w.Dropdown(description="query lang")
        self.dlang = w.Dropdown(description="doc lang")
        self.alpha = w.FloatSlider(
            value=0.5, min=0.0, max=1.0, step=0.05, description="α", continuous_update=False
        )
        self.message = w.HTML()
        self.run_button = w.Button(layout=w.Layout(width="auto"))
        self.cancel_button = w.Button(
            description="cancel", disabled=True, layout=w.Layout(width="auto")
        )
        self.progress = w.IntProgress(
            value=0, min=0, max=1, description="", layout=w.Layout(visibility="hidden")
        )
        self.thread, self._cancel = None, threading.Event()
        self.figure, self.alpha_fig, self.table = go.Figure(), go.Figure(), pd.DataFrame()
        self.output, self.alpha_output, self.table_output = w.Output(), w.Output(), w.Output()
        self.train_languages = RunFolder(out).setting("train_languages") if out else None
        self.languages = self._language_view(raw)
        lb = sorted(self.languages["benchmark"].unique())
        self.lang_benchmark = w.Dropdown(
            options=lb, value="xquad-r" if "xquad-r" in lb else lb[0], description="paper table"
        )
        self.lang_metric, self.lang_setting = (
            w.Dropdown(description="metric"),
            w.Dropdown(description="setting"),
        )
        self.lang_model = w.Dropdown(
            options=["xx", "xy", "hybrid"], value="hybrid", description="strategy"
        )
        self.language_fig, self.language_effects = go.Figure(), pd.DataFrame()
        self.language_output = w.Output()
        self._lang_options()
        self._set_models()
        self._update_langs()
        self._label_button()
        for c in (
            self.benchmark,
            self.metric,
            self.setting,
            self.models,
            self.qlang,
            self.dlang,
            self.alpha,
        ):
            c.observe(self._on_change, names="value")
        for c in (self.lang_benchmark, self.lang_metric, self.lang_setting, self.lang_model):
            c.observe(self._on_lang_change, names="value")
        self.run_button.on_click(self._run)
        self.cancel_button.on_click(lambda _: self._cancel.set())
        self.redraw()
        self.redraw_languages()
        self.widget = w.VBox(
            [
                w.HBox([self.benchmark, self.metric, self.setting]),
                w.HBox(
                    [
                        self.models,
                        w.VBox([self.qlang, self.dlang]),
                        w.VBox(
                            [
                                self.alpha,
                                w.HBox([self.run_button, self.cancel_button]),
                                self.progress,
                            ]
                        ),
                    ]
                ),
                self.message,
                self.output,
                self.alpha_output,
                self.table_output,
                w.HTML("<b>The paper's per-language tables beside ours</b>"),
                w.HBox([self.lang_benchmark, self.lang_setting, self.lang_metric, self.lang_model]),
                self.language_output,
            ]
        )

    def _language_view(self, raw: pd.DataFrame) -> pd.DataFrame:
        """The paper's per-language rows beside ours (``raw``: per seed, before
        :func:`seed_mean`)."""
        if "seed" not in raw:
            raw = raw.assign(seed=0)
        return per_language_view(raw, train_languages=self.train_languages, paper_only=True)

    def _lang_options(self):
        """The metric and setting choices of the chosen paper table, set without a redraw per
        intermediate value."""
        v = self.languages[self.languages["benchmark"] == self.lang_benchmark.value]
        metrics, settings = (
            sorted(v["metric"].unique()),
            [s for s in SETTINGS if s in set(v["setting"])],
        )
        self._lang_quiet = True
        try:
            self.lang_metric.options = metrics
            self.lang_metric.value = "map" if "map" in metrics else metrics[0]
            self.lang_setting.options = settings
            self.lang_setting.value = "multi" if "multi" in settings else settings[0]
        finally:
            self._lang_quiet = False

    def _on_lang_change(self, change):
        if getattr(self, "_lang_quiet", False):
            return
        if change["owner"] is self.lang_benchmark:
            self._lang_options()
        self.redraw_languages()

    def redraw_languages(self) -> None:
        """Rebuild the per-language figure and the per-language effects from the paper-table
        controls."""
        from IPython.display import HTML, display

        b, st, m = self.lang_benchmark.value, self.lang_setting.value, self.lang_metric.value
        try:
            self.language_fig = language_bars(self.languages, b, st, m, self.lang_model.value)
        except ValueError as e:
            with self.language_output:
                self.language_output.clear_output(wait=True)
                display(HTML(f"<i>{html.escape(str(e))}</i>"))
            return
        eff = per_language_effects(self.languages.dropna(subset=["ours"]))
        self.language_effects = (
            eff[(eff["benchmark"] == b) & (eff["setting"] == st) & (eff["metric"] == m)]
            if len(eff)
            else eff
        )
        with self.language_output:
            self.language_output.clear_output(wait=True)
            display(self.language_fig)
            display(
                HTML("<b>Per-language differences between strategies: the paper's beside ours</b>")
            )
            display(
                self.language_effects.round(3)
                if len(self.language_effects)
                else HTML(
                    "<i>this run has no values for this table (the paper's bars are shown "
                    "alone)</i>"
                )
            )

    def _set_models(self):
        models = list(dict.fromkeys(self.results["model"]))
        self.models.options = models
        self.models.value = tuple(models)

    def _update_langs(self):
        r = self.results[self.results["benchmark"] == self.benchmark.value]
        self.qlang.options = ["all"] + sorted(set(r["qlang"]) - {"all"})
        self.dlang.options = ["all"] + sorted(set(r["dlang"]) - {"all"})
        self.qlang.value = self.dlang.value = "all"

    def _extra_alpha(self) -> float | None:
        """The slider's α when it needs a run of its own (not 0, 0.5 or 1, which xy, hybrid and xx
        are)."""
        return None if self.alpha.value in STRATEGY_ALPHA.values() else self.alpha.value

    def _label_button(self):
        a = self._extra_alpha()
        extra = "" if a is None else f" + hybrid α={a:g}"
        self.run_button.description = f"train xx, xy, hybrid{extra} ({self.profile} profile)"

    def _on_change(self, change):
        if change["owner"] is self.benchmark:
            self._update_langs()
        if change["owner"] is self.alpha:
            self._label_button()
        self.redraw()

    def redraw(self) -> None:
        """Rebuild the figures and the reference table from the current control values."""
        from IPython.display import HTML, display

        sel = dict(
            benchmark=self.benchmark.value,
            metric=self.metric.value,
            setting=self.setting.value,
            qlang=self.qlang.value,
            dlang=self.dlang.value,
        )
        notes = []
        figures = (
            (
                "figure",
                self.output,
                lambda: dashboard_figure(
                    self.results, models=list(self.models.value), reference=self.reference, **sel
                ),
            ),
            (
                "alpha_fig",
                self.alpha_output,
                lambda: alpha_figure(
                    self.results, alpha=self.alpha.value, intervals=self.aggregate, **sel
                ),
            ),
        )
        for attr, output, make in figures:
            try:
                fig = make()
            except ValueError as e:  # an empty selection: say so, keep the last figure
                notes.append(str(e))
                continue
            setattr(self, attr, fig)
            with output:
                output.clear_output(wait=True)
                display(fig)
        self.message.value = "".join(f"<i>{html.escape(n)}</i><br>" for n in notes)
        if self.reference is not None:
            t = beside(self.results, self.reference, self.encoder)
            self.table = t[(t["benchmark"] == sel["benchmark"]) & (t["metric"] == sel["metric"])]
            shown = self.table.round(3)
            why = ""
            # said once, not as a column of NaN
            if len(shown) and shown["ours - paper"].isna().all():
                shown = shown.drop(columns="ours - paper")
                why = (
                    " ours − paper only against the same encoder: the reference has none of "
                    f"{self.encoder}'s rows here (compare the effects instead)"
                )
            with self.table_output:
                self.table_output.clear_output(wait=True)
                display(
                    HTML(
                        f"<b>Published numbers beside ours ({sel['benchmark']}, "
                        f"{sel['metric']})</b><i>{html.escape(why)}</i>"
                    )
                )
                display(
                    shown.astype(object).where(shown.notna(), "n/a")
                    if not shown.empty
                    else HTML("<i>the reference has no rows here</i>")
                )

    def snapshot(self) -> list:
        """Draw the dashboard once as plain output, as it stands: one line naming the controls'
        values, then its figures (the models, the α curve, the paper's per-language bars). A
        notebook's HTML copy, and any reader who runs nothing, sees no live widget (their views need
        a kernel); this is the dashboard they see instead.

        Returns:
            The figures drawn, in that order (a figure with nothing to show, such as an empty
                selection, is left
            out and said in the line).

        Examples:
            >>> dash = Dashboard(load_results("runs/cpu"), out="runs/cpu")  # doctest: +SKIP
            >>> dash.benchmark.value = "mlqa-r"; figs = dash.snapshot()  # doctest: +SKIP
        """
        from IPython.display import HTML, display

        setting = self.setting.value or "all"
        figures = {
            "models": self.figure,
            "α curve": self.alpha_fig,
            "per-language bars": self.language_fig,
        }
        shown = [f for f in figures.values() if len(f.data)]
        empty = [name for name, f in figures.items() if not len(f.data)]
        line = (
            f"benchmark {self.benchmark.value} · metric {self.metric.value} · setting {setting} · "
            f"query lang {self.qlang.value} · doc lang {self.dlang.value} · strategies "
            f"{', '.join(self.models.value)}; paper table {self.lang_benchmark.value} "
            f"{self.lang_setting.value} {self.lang_metric.value} ({self.lang_model.value})"
        )
        if empty:
            line += f"; nothing to draw for: {', '.join(empty)}"
        display(HTML(f"<b>The dashboard as it stands</b>: {html.escape(line, quote=False)}"))
        for fig in shown:
            display(fig)
        return shown

    def _run(self, _=None):
        """Start the run in a background thread (the button's callback returns at once)."""
        if self.thread is not None and self.thread.is_alive():
            return
        a = self._extra_alpha()
        name = get_profile(self.profile)["profile"]
        out = Path(self.out) if self.out else default_run_dir(name)
        self._cancel.clear()
        self.run_button.disabled, self.cancel_button.disabled = True, False
        self.progress.layout.visibility = "visible"
        self.message.value = f"training and evaluating ({name} profile) into {out} ..."
        self.thread = threading.Thread(
            target=self._train, args=(name, out, [] if a is None else [a]), daemon=True
        )
        self.thread.start()

    def _on_progress(self, p: dict) -> None:
        self.progress.max, self.progress.value = max(1, p["n"]), min(p["i"], p["n"])
        eta = "" if p["eta_s"] is None else f", about {p['eta_s'] / 60:.0f} min left"
        self.progress.description = f"{p['i']}/{p['n']}"
        what = html.escape(f"{p['stage']} {p['model'] or ''}")
        self.message.value = f"{what} (model {min(p['i'] + 1, p['n'])} of {p['n']}{eta})"

    def _train(self, name: str, out: Path, alphas: list) -> None:
        try:
            res = compare(
                name,
                out,
                progress=False,
                alphas=alphas,
                on_progress=self._on_progress,
                cancel=self._cancel,
            )
        except RunCancelled as e:
            self.message.value = f"<b>cancelled</b>: {html.escape(str(e))}"
            return
        except Exception as e:  # noqa: BLE001 - shown in the page: a background thread has nowhere else to report
            self.message.value = f"<b>run failed</b>: {html.escape(repr(e))}"
            return
        finally:
            self.run_button.disabled, self.cancel_button.disabled = False, True
            self.progress.layout.visibility = "hidden"
        self.results, self.aggregate = seed_mean(res["results"]), res.get("aggregate")
        self.languages = self._language_view(res["results"])
        self._set_models()
        self._update_langs()
        self.redraw()
        self.redraw_languages()
        self.message.value = f"done: results of {res['out']}"
