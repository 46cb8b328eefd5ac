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


def test_the_dashboard_notebook_ends_with_its_snapshot():
    """Notebook 6's figures live in widgets, which an HTML copy cannot run: its last code cell draws them once as
    plain figures (``Dashboard.snapshot``, tested in test_widgets), and plain plotly figures render into the HTML
    copy (the test above). Not run through papermill here: notebook 6 under papermill hung once in ``make docs``
    and once in CI (900 s, both processes idle), an open defect; nbval runs it in ``make test``."""
    nb = nbformat.read(ROOT / "notebooks" / "06_dashboard.ipynb", as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert code[-1].source.strip() == "_ = dash.snapshot()"
