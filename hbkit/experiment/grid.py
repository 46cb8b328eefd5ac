"""Many processes filling one run folder: a lock per planned model, shards for job arrays, one
worker per device.

The plan of a run folder (:func:`hbkit.experiment.plan.plan`) is a grid of independent models until
the statistics. Any number of ``hbkit compare`` processes (on one machine or on the nodes of a
cluster that share the folder) fill it together:

* **A lock per model.** ``locks/<model>.lock`` is an OS file lock (``filelock``), taken without
  waiting by the process that trains and evaluates that model; ``locks/<model>.owner.json`` says who
  (PID, host, device, since). A process skips a model another holds and takes the next one. The OS
  releases the lock of a process that dies, whatever the cause, so the next process that finds the
  model unfinished takes it over and its training resumes from the last checkpoint
  (:func:`hbkit.train.trainer.train`); a live process's model is never taken.
* **A short lock for the shared files.** ``config.json``, ``overlap.csv``, ``clusters.csv`` and the
  aggregated tables are written under the folder's :class:`hbkit.core.files.RunLock`, held for
  seconds; the identity check (same set-up, same data) runs under it in every process before it
  takes a model.
* **Shards** (``--shard i/N``): model ``k`` of the plan belongs to shard ``k % N``, the same in
  every task of a job array (``--shard $SLURM_ARRAY_TASK_ID/$SLURM_ARRAY_TASK_COUNT``).
* **Devices** (``--devices cuda:0,cuda:1``): one worker process per device (``CUDA_VISIBLE_DEVICES``
  set to that one card; ``cpu`` hides every card), each taking models from the plan; its output goes
  to ``logs/worker-<k>.log``.

A model's results depend only on (strategy, α, seed) and the set-up, never on the process that made
them, so a grid filled by N processes is byte-identical to one process's run
(``tests/test_grid.py``).
"""

from __future__ import annotations

import contextlib
import datetime
import json
import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
from filelock import FileLock, Timeout

from hbkit.core.files import atomic_write_json

#: the folder of the per-model locks inside a run folder
LOCKS = "locks"


class GridError(ValueError):
    """A grid option that cannot work (``--shard``, ``--devices``), or a worker that failed."""


def parse_shard(shard) -> tuple[int, int] | None:
    """``"i/N"`` (or ``(i, N)``) as ``(i, N)`` with ``0 <= i < N``; None for no shard.

    Examples:
        >>> parse_shard("3/8")
        (3, 8)
    """
    if shard is None:
        return None
    if isinstance(shard, (tuple, list)) and len(shard) == 2:
        text = f"{shard[0]}/{shard[1]}"
    else:
        text = str(shard).strip()
    m = re.fullmatch(r"(\d+)\s*/\s*(\d+)", text)
    if not m:
        raise GridError(
            f"--shard {shard!r}: write it as i/N (shard i of N, i from 0 to N-1), e.g. --shard "
            "$SLURM_ARRAY_TASK_ID/$SLURM_ARRAY_TASK_COUNT for an array started with --array=0-(N-1)"
        )
    i, n = int(m.group(1)), int(m.group(2))
    if n < 1 or not 0 <= i < n:
        raise GridError(
            f"--shard {text}: i must be in 0..N-1 and N at least 1 (an array of N tasks numbered "
            f"from 0: --array=0-{max(n - 1, 0)})"
        )
    return i, n


def shard_runs(runs: list, shard: tuple[int, int] | None) -> list:
    """The runs of ``shard`` ``(i, N)``: model ``k`` of the plan when ``k % N == i`` (all runs for
    None)."""
    if shard is None:
        return list(runs)
    i, n = shard
    return [r for k, r in enumerate(runs) if k % n == i]


def check_options(devices, shard, force: bool) -> tuple[list[str] | None, tuple[int, int] | None]:
    """The grid options of a ``compare``, checked before any work: ``(devices, shard)`` parsed
    (:func:`parse_devices`, :func:`parse_shard`; devices None when none were given). ``force`` with
    a shard is refused: every task of an array would wipe what the others made."""
    shard = parse_shard(shard)
    if force and shard is not None:
        raise GridError(
            "--force with --shard would let every task of the array wipe the models the others "
            "made: clear the folder once (hbkit compare --force without --shard, or rm -r), then "
            "start the array"
        )
    return parse_devices(devices), shard


def visible_gpus() -> int:
    """How many CUDA devices this process sees (0 without torch's CUDA)."""
    import torch  # heavy: torch

    return torch.cuda.device_count() if torch.cuda.is_available() else 0


def parse_devices(devices) -> list[str] | None:
    """``"cuda:0,cuda:1"`` / ``"cpu,cpu"`` / a list as a checked list of devices (``cuda`` means
    ``cuda:0``); None or empty for none given. A CUDA index this process cannot see is refused."""
    if devices is None:
        return None
    items = (
        [d.strip() for d in devices.split(",")]
        if isinstance(devices, str)
        else [str(d).strip() for d in devices]
    )
    if not items or any(not d for d in items):
        raise GridError(
            f"--devices {devices!r}: give one device per worker, comma-separated (cuda:0,cuda:1 or "
            "cpu,cpu), with no empty item"
        )
    out = []
    for d in items:
        d = "cuda:0" if d == "cuda" else d
        if d != "cpu" and not re.fullmatch(r"cuda:\d+", d):
            raise GridError(
                f"--devices: {d!r} is not a device: use cpu or cuda:N (N from 0, as torch numbers "
                "the visible cards)"
            )
        out.append(d)
    cuda = sorted({int(d.split(":")[1]) for d in out if d != "cpu"})
    if cuda:
        n = visible_gpus()
        if cuda[-1] >= n:
            env = os.environ.get("CUDA_VISIBLE_DEVICES")
            raise GridError(
                f"--devices: cuda:{cuda[-1]} is not visible here ({n} CUDA device(s) seen"
                f"{'' if env is None else '; CUDA_VISIBLE_DEVICES=' + env})"
            )
    return out


def default_devices() -> list[str] | None:
    """The devices ``compare`` uses when none are given: one worker per visible GPU when there are
    two or more and the process is not one rank of torchrun (then each model is trained by DDP over
    the ranks); otherwise None, one process (CPU or the one GPU)."""
    if int(os.environ.get("WORLD_SIZE", 1)) > 1:
        return None
    n = visible_gpus()
    return [f"cuda:{i}" for i in range(n)] if n > 1 else None


def device_env(device: str, env: dict | None = None) -> dict:
    """The environment of a worker on ``device``: ``CUDA_VISIBLE_DEVICES`` names that one card
    (mapped through the parent's own ``CUDA_VISIBLE_DEVICES``), or none for ``cpu``; no torchrun
    variables."""
    env = dict(os.environ if env is None else env)
    for k in ("RANK", "LOCAL_RANK", "WORLD_SIZE", "LOCAL_WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT"):
        env.pop(k, None)
    if device == "cpu":
        env["CUDA_VISIBLE_DEVICES"] = ""
    else:
        i = int(device.split(":")[1])
        parent = [c.strip() for c in env.get("CUDA_VISIBLE_DEVICES", "").split(",") if c.strip()]
        env["CUDA_VISIBLE_DEVICES"] = (
            parent[i] if "CUDA_VISIBLE_DEVICES" in env and i < len(parent) else str(i)
        )
    env["HBKIT_DEVICE"] = device
    return env


class ModelLock:
    """The lock of one planned model in a run folder, taken without waiting:

    >>> with ModelLock(out, "hybrid-s0") as lock:
    ...     if lock.held: ...   # train and evaluate it

    ``held`` is False when another live process holds it (:meth:`holder` says who)."""

    def __init__(self, out: str | os.PathLike, run_id: str, device: str | None = None):
        self.dir = Path(out) / LOCKS
        self.run_id, self.device = run_id, device
        self._lock = FileLock(str(self.dir / f"{run_id}.lock"))
        self.held = False

    @property
    def owner_path(self) -> Path:
        return self.dir / f"{self.run_id}.owner.json"

    def acquire(self) -> bool:
        self.dir.mkdir(parents=True, exist_ok=True)
        try:
            self._lock.acquire(timeout=0)
        except Timeout:
            return False
        self.held = True
        atomic_write_json(
            self.owner_path,
            {
                "pid": os.getpid(),
                "host": socket.gethostname(),
                "device": self.device or os.environ.get("HBKIT_DEVICE"),
                "since": datetime.datetime.now().isoformat(timespec="seconds"),
            },
        )
        return True

    def release(self) -> None:
        if self.held:
            with contextlib.suppress(OSError):
                self.owner_path.unlink()
            self._lock.release()
            self.held = False

    def __enter__(self) -> "ModelLock":
        self.acquire()
        return self

    def __exit__(self, *exc) -> None:
        self.release()


def holder(out: str | os.PathLike, run_id: str) -> dict | None:
    """Who holds the model ``run_id`` of ``out`` now: its owner record (``pid``, ``host``,
    ``device``, ``since``), or None when no live process does. A record left by a process that died
    (its OS lock is free) is reported as ``{"dead": True, ...}`` so that a status can say the model
    was interrupted."""
    path = Path(out) / LOCKS / f"{run_id}.lock"
    if not path.exists():
        return None
    lock = FileLock(str(path))
    try:
        lock.acquire(timeout=0)
    except Timeout:
        info = {"pid": "?", "host": "?"}
        with contextlib.suppress(OSError, ValueError):
            info = json.loads((Path(out) / LOCKS / f"{run_id}.owner.json").read_text())
        return info
    lock.release()
    with contextlib.suppress(OSError, ValueError):
        info = json.loads((Path(out) / LOCKS / f"{run_id}.owner.json").read_text())
        return {**info, "dead": True}
    return None


def any_held(out: str | os.PathLike, run_ids) -> dict[str, dict]:
    """The models of ``run_ids`` that a live process holds now, with their owners."""
    found = {}
    for rid in run_ids:
        h = holder(out, rid)
        if h is not None and not h.get("dead"):
            found[rid] = h
    return found


def who(info: dict) -> str:
    """``PID 123 on node7 (cuda:1) since 2026-12-02T10:00:00``."""
    dev = f" ({info['device']})" if info.get("device") else ""
    since = f" since {info['since']}" if info.get("since") else ""
    return f"PID {info.get('pid', '?')} on {info.get('host', '?')}{dev}{since}"


def grid_status(out: str | os.PathLike, runs: list, done) -> pd.DataFrame:
    """One row per planned model: ``model`` (its id), ``done`` (``done(run)``: every result is in
    the folder), ``held_by`` (who trains it now, or empty) and ``state`` (``done``, ``running``,
    ``interrupted``: its last holder died, the next compare resumes it, or ``to do``)."""
    rows = []
    for r in runs:
        ok = bool(done(r))
        h = None if ok else holder(out, r.id)
        state = (
            "done"
            if ok
            else "to do"
            if h is None
            else "interrupted"
            if h.get("dead")
            else "running"
        )
        rows.append(
            {
                "model": r.id,
                "done": ok,
                "held_by": who(h) if h and not h.get("dead") else "",
                "state": state,
            }
        )
    return pd.DataFrame(rows, columns=["model", "done", "held_by", "state"])


def describe_missing(status: pd.DataFrame, out) -> str:
    """What a partial grid lacks, one line per model not done, and what to run."""
    todo = status[~status["done"]]
    lines = [f"{out}: {len(todo)} of {len(status)} planned models are not done yet:"]
    for _, row in todo.iterrows():
        what = {
            "running": f"running, held by {row.held_by}",
            "interrupted": "interrupted (its process died): the next `hbkit compare` here resumes "
            "it",
            "to do": "not started",
        }[row.state]
        lines.append(f"  {row.model}: {what}")
    lines.append(
        "The tables and verdicts are written once every model is in: rerun the same `hbkit "
        "compare` (with "
        "its --shard, if any) for the models not started; the last process to finish aggregates."
    )
    return "\n".join(lines)


def run_workers(out: Path, spec: dict, devices: list[str], poll=None, cancel=None) -> list[dict]:
    """Start one ``compare`` worker per device (``python -m hbkit.experiment.compare``, the job as
    JSON: :func:`hbkit.experiment.compare.fill`), each taking models of the plan until none is left,
    and wait for all. ``poll()`` is called every second while they run (a progress bar); ``cancel``
    (a ``threading.Event``) interrupts them (SIGINT: each stops at its step, and a rerun resumes).
    Returns each worker's timings; a worker that failed raises :class:`GridError` naming its log."""
    logs = Path(out) / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    procs = []
    try:
        for k, dev in enumerate(devices):
            job = {
                **spec,
                "worker": k,
                "device": dev,
                "timings_file": str(logs / f"worker-{k}.timings.json"),
            }
            log_path = logs / f"worker-{k}.log"
            with open(log_path, "w", encoding="utf-8") as fh:
                procs.append(
                    (
                        subprocess.Popen(
                            [sys.executable, "-m", "hbkit.experiment.compare", json.dumps(job)],
                            stdout=fh,
                            stderr=subprocess.STDOUT,
                            env=device_env(dev),
                        ),
                        log_path,
                        dev,
                    )
                )
        while any(p.poll() is None for p, _, _ in procs):
            if cancel is not None and cancel.is_set():
                raise KeyboardInterrupt("cancelled")
            if poll is not None:
                poll()
            time.sleep(1)
    except BaseException:
        _stop(procs)
        raise
    if poll is not None:
        poll()
    failed = [(p, path, dev) for p, path, dev in procs if p.returncode != 0]
    if failed:
        p, path, dev = failed[0]
        tail = [
            line
            for line in path.read_text(encoding="utf-8", errors="replace").splitlines()
            if line.strip()
        ]
        raise GridError(
            f"worker on {dev} failed (exit {p.returncode}): "
            f"{tail[-1][:300] if tail else 'no output'}; its log: {path}. Rerun the same command: "
            "finished models are kept and interrupted ones resume"
        )
    timings = []
    for k in range(len(devices)):
        with contextlib.suppress(OSError, ValueError):
            timings.append(json.loads((logs / f"worker-{k}.timings.json").read_text()))
    return timings


def _stop(procs) -> None:
    import signal

    for p, _, _ in procs:
        if p.poll() is None:
            p.send_signal(signal.SIGINT)
    deadline = time.time() + 60
    for p, _, _ in procs:
        try:
            p.wait(timeout=max(1.0, deadline - time.time()))
        except subprocess.TimeoutExpired:
            p.kill()
