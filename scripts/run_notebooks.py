"""Execute the notebook series with papermill and render each to HTML: ``make notebooks``.

The executed copies and their HTML go to ``<run folder>/notebooks/`` (default: the profile's shared run folder,
``runs/<profile>``), beside the run they describe, so a reader can open them without running anything.

    python scripts/run_notebooks.py --profile cpu [--seeds 0,1,2] [--only 01,03]
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parents[1] / "notebooks"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--profile", default="auto", help="ci | cpu | lareqa | paper | gpu | auto (default)")
    ap.add_argument("--run", default=None, help="run folder (default: runs/<profile>)")
    ap.add_argument("--seeds", default=None, help="training seeds, comma-separated (default: the profile's)")
    ap.add_argument("--only", default=None, help="notebook numbers to run, e.g. 01,03 (default: all six)")
    a = ap.parse_args(argv)
    import nbformat
    import papermill as pm
    from nbconvert import HTMLExporter

    from hbkit.core.env import default_run_dir
    from hbkit.core.files import atomic_write_text
    from hbkit.experiment.profiles import profile

    from hbkit.core.files import check_folder

    try:   # every argument is checked before the first notebook starts, each refusal in one line
        seeds = [int(s) for s in a.seeds.split(",")] if a.seeds is not None else None
    except ValueError:
        ap.error(f"--seeds {a.seeds!r}: give comma-separated whole numbers, e.g. 0,1,2")
    try:
        cfg = profile(a.profile, seeds=seeds)
        run = check_folder(a.run, "--run") if a.run is not None else default_run_dir(cfg["profile"])
    except ValueError as e:
        ap.error(str(e))
    out = run / "notebooks"
    out.mkdir(parents=True, exist_ok=True)
    books = sorted(HERE.glob("[0-9][0-9]_*.ipynb"))
    if a.only:
        wanted = set(a.only.split(","))
        books = [b for b in books if b.name[:2] in wanted]
        if not books:
            ap.error(f"--only {a.only}: no notebook has that number; they are {', '.join(b.name[:2] for b in sorted(HERE.glob('[0-9][0-9]_*.ipynb')))}")
    params = {"PROFILE": cfg["profile"], "RUN": str(run.resolve()), "SEEDS": cfg["seeds"]}
    # the kernels draw each plotly figure twice: as plotly's JSON (JupyterLab) and as HTML, with plotly's
    # JavaScript embedded once per notebook, so that the HTML copies show every figure, offline too
    os.environ.setdefault("PLOTLY_RENDERER", "plotly_mimetype+notebook")
    for book in books:
        t = time.perf_counter()
        executed = out / book.name
        pm.execute_notebook(str(book), str(executed), parameters=params, cwd=str(HERE), progress_bar=False)
        body, _ = HTMLExporter().from_notebook_node(nbformat.read(executed, as_version=4))
        atomic_write_text(executed.with_suffix(".html"), body)
        print(f"{book.name}: {time.perf_counter() - t:.0f} s -> {executed} (+ .html)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
