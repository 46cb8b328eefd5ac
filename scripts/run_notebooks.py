"""Execute the notebook series with papermill and render each to HTML: ``make notebooks``.

The executed copies and their HTML go to ``<run folder>/notebooks/`` (default: the profile's shared run folder,
``runs/<profile>``), beside the run they describe, so a reader can open them without running anything.

    python scripts/run_notebooks.py --profile cpu [--seeds 0,1,2] [--only 01,03]
"""
from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

HERE = Path(__file__).resolve().parents[1] / "notebooks"
log = logging.getLogger("hbkit.run_notebooks")

#: seconds between polls of a kernel channel while nbclient waits without a timeout
REPOLL_S = 1.0
#: polls made by :func:`_repolling` in this process (the test checks that papermill's client goes through it)
POLLS = {"shell": 0, "iopub": 0}


def _repolling(get_msg, name):
    """``get_msg`` of a kernel channel that, asked to wait for ever, polls every REPOLL_S seconds instead.

    nbclient waits for a cell's reply and its output with ``get_msg(timeout=None)``, one ``await socket.poll(None)``
    on pyzmq's asyncio socket. Notebook 6 (ipywidgets) hung there in 5 of 9 runs on 2 loaded cores, both processes
    idle: the wait never woke though the kernel had replied (jupyter/nbclient#312; PR #311 there polls with a
    timeout too). With finite polls it finished 16 runs of 16, and no message was ever late, so what hangs is the
    wait without a timeout, not a lost message. A message a timed-out poll should have seen is logged."""
    from queue import Empty

    async def get(timeout=None):
        if timeout is not None:
            return await get_msg(timeout=timeout)
        gave_up = None   # when the last poll that timed out gave up
        while True:
            POLLS[name] = POLLS.get(name, 0) + 1
            try:
                msg = await get_msg(timeout=REPOLL_S)
            except Empty:
                gave_up = datetime.now(timezone.utc)
                continue
            sent = msg.get("header", {}).get("date")
            if gave_up is not None and isinstance(sent, datetime) and sent < gave_up - timedelta(seconds=0.05):
                log.info("%s channel: a poll missed a %s sent %.2f s before it gave up; the next poll found it",
                         name, msg.get("msg_type"), (gave_up - sent).total_seconds())
            return msg
    return get


def _engine() -> str:
    """Register papermill's nbclient engine with a client whose channels re-poll (:func:`_repolling`) as
    ``hbkit``, and return that name."""
    from nbclient.util import run_sync
    from papermill.clientwrap import PapermillNotebookClient
    from papermill.engines import NBClientEngine, papermill_engines
    from papermill.log import logger
    from papermill.utils import merge_kwargs, remove_args

    class Client(PapermillNotebookClient):
        async def async_start_new_kernel_client(self):
            kc = await super().async_start_new_kernel_client()
            kc.shell_channel.get_msg = _repolling(kc.shell_channel.get_msg, "shell")
            kc.iopub_channel.get_msg = _repolling(kc.iopub_channel.get_msg, "iopub")
            return kc

        # the sync door papermill opens: nbclient binds it to its own coroutine, so it is bound again here
        start_new_kernel_client = run_sync(async_start_new_kernel_client)

    class Engine(NBClientEngine):
        @classmethod
        def execute_managed_notebook(cls, nb_man, kernel_name, log_output=False, stdout_file=None,
                                     stderr_file=None, start_timeout=60, execution_timeout=None, **kwargs):
            # papermill's own (NBClientEngine.execute_managed_notebook), with the client above
            kwargs = remove_args(["input_path"], **kwargs)
            safe = remove_args(["timeout", "startup_timeout"], **kwargs)
            final = merge_kwargs(safe, timeout=execution_timeout or kwargs.get("timeout"),
                                 startup_timeout=start_timeout, kernel_name=kernel_name, log=logger,
                                 log_output=log_output, stdout_file=stdout_file, stderr_file=stderr_file)
            return Client(nb_man, **final).execute()

    papermill_engines.register("hbkit", Engine)
    return "hbkit"


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
    from hbkit.core.files import atomic_write_text, check_folder
    from hbkit.experiment.profiles import profile

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
    engine = _engine()
    for book in books:
        t = time.perf_counter()
        executed = out / book.name
        pm.execute_notebook(str(book), str(executed), parameters=params, cwd=str(HERE), progress_bar=False,
                            engine_name=engine)
        body, _ = HTMLExporter().from_notebook_node(nbformat.read(executed, as_version=4))
        atomic_write_text(executed.with_suffix(".html"), body)
        print(f"{book.name}: {time.perf_counter() - t:.0f} s -> {executed} (+ .html)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
