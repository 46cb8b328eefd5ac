"""The notebooks follow Jupyter's conventions: every one has a papermill ``parameters`` cell, and the series
runs through papermill with other parameters (here notebook 1 with the ci profile, one seed, a run folder of
its own), as `make notebooks` does, and renders to HTML."""
import json
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
BOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))


@pytest.mark.parametrize("book", BOOKS, ids=[b.name[:2] for b in BOOKS])
def test_every_notebook_has_a_parameters_cell_before_its_setup(book):
    nb = nbformat.read(book, as_version=4)
    tagged = [i for i, c in enumerate(nb.cells) if "parameters" in c.metadata.get("tags", [])]
    assert len(tagged) == 1, f"{book.name}: one cell tagged 'parameters', found {len(tagged)}"
    src = nb.cells[tagged[0]].source
    for name in ("PROFILE", "RUN", "SEEDS", "ALPHAS"):
        assert f"\n{name} = " in "\n" + src, f"{book.name}: the parameters cell sets {name}"
    assert any("profile(PROFILE, seeds=SEEDS, alphas=ALPHAS)" in c.source for c in nb.cells[tagged[0] + 1:])


def _make_notebooks(run: Path, only: str, name: str):
    """``make notebooks`` for one notebook (ci profile, seed 0) into ``run``: (the executed notebook's path, the
    notebook, the script's stderr)."""
    r = subprocess.run([sys.executable, str(ROOT / "scripts" / "run_notebooks.py"), "--profile", "ci", "--seeds", "0",
                        "--run", str(run), "--only", only], capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, r.stderr[-3000:]
    executed = run / "notebooks" / name
    return executed, nbformat.read(executed, as_version=4), r.stderr


def test_quickstart_runs_through_papermill_with_parameters(tmp_path):
    run = tmp_path / "my-run"
    executed, nb, _ = _make_notebooks(run, "01", "01_quickstart.ipynb")
    injected = [c for c in nb.cells if "injected-parameters" in c.metadata.get("tags", [])]
    assert len(injected) == 1 and "PROFILE = \"ci\"" in injected[0].source and "SEEDS = [0]" in injected[0].source
    text = json.dumps([c.get("outputs", []) for c in nb.cells])
    assert f"models to train or evaluate in {run.resolve()}" in text   # the status cell used the parameter
    assert "profile ci \\u00b7 model hbkit/tiny" in text or "profile ci · model hbkit/tiny" in text   # the setup cell says it
    html = executed.with_suffix(".html").read_text()
    assert html.lstrip().lower().startswith("<!doctype html") and "Quick start" in html


def test_a_bad_parameter_is_refused_before_any_notebook_runs(tmp_path):
    r = subprocess.run([sys.executable, str(ROOT / "scripts" / "run_notebooks.py"), "--profile", "nope",
                        "--run", str(tmp_path / "x")], capture_output=True, text=True, timeout=300)
    assert r.returncode != 0 and "nope" in r.stderr and not (tmp_path / "x").exists()


def test_the_html_copies_hold_every_figure(tmp_path):
    """Notebook 2 draws plotly figures: its HTML copy holds each one (a plotly div per figure output) and
    plotly's JavaScript once, so a reader who runs nothing sees them, offline too."""
    executed, nb, stderr = _make_notebooks(tmp_path / "run", "02", "02_data.ipynb")
    figures = [o for c in nb.cells for o in c.get("outputs", []) if "application/vnd.plotly.v1+json" in o.get("data", {})]
    assert figures, "notebook 2 drew no plotly figure"
    html = executed.with_suffix(".html").read_text()
    assert html.count('class="plotly-graph-div"') == len(figures)
    assert html.count("plotly.js v") == 1 and "not able to be represented" not in stderr


def test_the_dashboards_html_copy_holds_its_figures(tmp_path):
    """Notebook 6's figures live in widgets, which an HTML copy cannot run: its snapshot cell draws them as plain
    figures, so the copy made over the committed 8-seed results (a copy without the rankings) holds the models,
    the α curve and the per-language bars, each as a plotly div. Under papermill's own client this notebook hung
    in 5 of 9 runs on loaded cores (jupyter/nbclient#312); run_notebooks' client re-polls (the tests below)."""
    import shutil

    run = tmp_path / "cpu"
    shutil.copytree(ROOT / "results" / "cpu", run, ignore=shutil.ignore_patterns("rankings", "report.html"))
    executed, nb, stderr = _make_notebooks(run, "06", "06_dashboard.ipynb")
    figures = [o for c in nb.cells for o in c.get("outputs", []) if "application/vnd.plotly.v1+json" in o.get("data", {})]
    snap = next(c for c in nb.cells if "dash.snapshot()" in c.source)
    assert sum("application/vnd.plotly.v1+json" in o.get("data", {}) for o in snap.outputs) == 3
    html = executed.with_suffix(".html").read_text()
    assert html.count('class="plotly-graph-div"') == len(figures) >= 3
    assert "The dashboard as it stands" in html and "not able to be represented" not in stderr


def _run_notebooks_module():
    import importlib.util

    spec = importlib.util.spec_from_file_location("run_notebooks_under_test", ROOT / "scripts" / "run_notebooks.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_a_wait_without_a_timeout_becomes_finite_polls():
    """nbclient's ``get_msg(timeout=None)`` is what hung: the wrapper polls with REPOLL_S instead, polls again
    after each empty poll, returns the first message, and leaves a wait with a timeout as it was."""
    import asyncio
    from queue import Empty

    mod = _run_notebooks_module()
    asked = []

    async def get_msg(timeout=None):
        asked.append(timeout)
        if len(asked) < 3:
            raise Empty
        return {"msg_type": "execute_reply", "header": {}}

    get = mod._repolling(get_msg, "shell")
    assert asyncio.run(get())["msg_type"] == "execute_reply"
    assert asked == [mod.REPOLL_S] * 3
    asked.clear()
    asked.extend([None, None])   # the next call answers at once
    assert asyncio.run(get(timeout=7))["msg_type"] == "execute_reply" and asked[-1] == 7


def test_papermills_client_waits_through_the_repolling_channels(tmp_path):
    """The engine run_notebooks registers is the one papermill runs, and its client's shell and IOPub waits go
    through the wrapper: papermill opens the client's synchronous door (``start_new_kernel_client``), which
    nbclient binds to its own coroutine, so an override of the coroutine alone would change nothing."""
    import papermill as pm

    mod = _run_notebooks_module()
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("x = 1 + 1\nx")])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    src = tmp_path / "tiny.ipynb"
    nbformat.write(nb, src)
    pm.execute_notebook(str(src), str(tmp_path / "out.ipynb"), engine_name=mod._engine(), progress_bar=False)
    assert mod.POLLS["shell"] > 0 and mod.POLLS["iopub"] > 0
    out = nbformat.read(tmp_path / "out.ipynb", as_version=4)
    assert out.cells[0].outputs[0]["data"]["text/plain"] == "2"
