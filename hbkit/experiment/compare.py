"""The main job: train every planned model, evaluate it, and aggregate, into one run folder that any
number of processes fill together (:mod:`hbkit.experiment.grid`: a lock per model, ``--shard``,
``--devices``)."""

from __future__ import annotations

import json
import logging
import shutil
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from tqdm.auto import tqdm

from hbkit.core.env import default_run_dir, low_memory
from hbkit.core.files import RunLock, atomic_path, atomic_write_json, check_folder
from hbkit.experiment.grid import (
    LOCKS,
    GridError,
    ModelLock,
    any_held,
    check_options,
    default_devices,
    describe_missing,
    grid_status,
    run_workers,
    shard_runs,
    who,
)
from hbkit.experiment.plan import (
    check_reusable,
    held_config,
    legacy_corpus_fingerprint,
    plan,
    umap_bench,
)
from hbkit.experiment.profiles import profile as get_profile
from hbkit.experiment.report import render
from hbkit.experiment.run_files import RunFolder
from hbkit.experiment.stages import (
    base_encoder,
    check_training_data,
    clusters_table,
    completion,
    stage_aggregate,
    stage_data,
    stage_evaluate,
    stage_mteb,
    stage_train,
    timed,
)
from hbkit.retrieval import posthoc
from hbkit.train.trainer import RunCancelled, cancel_callback

log = logging.getLogger(__name__)

#: how long a process waits for another one writing the folder's shared files (config, tables:
#: seconds)
SHARED_LOCK_WAIT_S = 600.0
#: how often a process waiting for models that other processes hold looks again (seconds)
POLL_S = 5.0
#: what one invocation measures (seconds; counts)
TIMING_KEYS = (
    "load_data",
    "train",
    "load_model",
    "encode",
    "score",
    "align",
    "aggregate",
    "report",
)


def compare(
    profile: str = "auto",
    out: str | Path | None = None,
    force: bool = False,
    data_dir=None,
    progress: bool = True,
    allow_overlap: bool = False,
    on_progress=None,
    cancel=None,
    devices=None,
    shard=None,
    **overrides,
) -> dict:
    """The main job: train every planned model (strategy, α, seed), evaluate each, aggregate over
    seeds and decide the verdicts, in one run folder that a rerun resumes and that several processes
    fill together.

    Args:
        profile: a profile name (:func:`hbkit.experiment.profiles.profile`).
        out: the run folder (default: the profile's shared folder, ``runs/<profile>``:
            :func:`hbkit.core.env.default_run_dir`); a folder made with another set-up is refused
            unless ``force``.
        force: start the folder afresh (refused while another process trains a model there, and with
            ``shard``).
        data_dir: the data root.
        progress: progress bars.
        allow_overlap: go on although training questions occur in an evaluation benchmark
            (``overlap.csv`` has the counts); otherwise the job stops.
        on_progress: called with ``{"stage", "model", "i", "n", "eta_s"}`` before each model and
            stage (the dashboard's progress bar); ``eta_s`` is None until a model has been trained
            here.
        cancel: a ``threading.Event``; once set, the job stops at the end of the current training
            step or before the next model (:class:`~hbkit.train.trainer.RunCancelled`), and a rerun
            resumes it.
        devices: one worker process per device (``"cuda:0,cuda:1"``, ``["cpu", "cpu"]``), each
            taking models of the plan (:func:`hbkit.experiment.grid.run_workers`). Default: every
            visible GPU when there are two or more, else this process alone.
        shard: ``"i/N"``: only the models of shard i (model k of the plan when ``k % N == i``), for
            the tasks of a job array that share ``out``. The process does not wait for the other
            shards: the last one to finish aggregates.
        **overrides: profile keys (``seeds=[0, 1]``, ``model=...``), validated before the first
            minute of work.

    Returns:
        What :func:`hbkit.experiment.report.render` returns (``table``, ``verdicts``,
            ``effects``, ...) plus
        ``timings`` and ``complete=True``. When models of the plan are still held by other processes
            or not
        started (a shard), ``complete`` is False and ``status`` / ``message`` say which, and who
            holds them.

    Examples:
        >>> res = compare("ci", out="runs/ci", seeds=[0, 1])
        >>> res["verdicts"][["claim", "benchmark", "verdict"]]
    """
    cfg = get_profile(profile, **overrides)  # validated before any work
    if low_memory():  # HBKIT_LOW_MEMORY=1 (a bad value is refused here)
        log.info(
            "HBKIT_LOW_MEMORY=1: blocks of 4 MB and more are mapped and unmapped one by one, so "
            "freed memory goes back at once (a lower peak, slower training steps)"
        )
    out = check_folder(out if out is not None else default_run_dir(cfg["profile"]), "--out")
    devs, shard = check_options(devices, shard, force)
    devs = devs if devices is not None else default_devices()
    job = _setup(cfg, out, force, data_dir, allow_overlap, shard)
    timings = job.timings
    runs = job.runs
    if devs:
        bar = tqdm(total=len(runs), desc=f"models ({len(devs)} workers)", disable=not progress)
        spec = {
            "profile": cfg["profile"],
            "out": str(
                out
                # resolved: "auto" would differ on a cpu worker "data_dir": None if data_dir is None
                # else str(data_dir),
            ),
            "allow_overlap": allow_overlap,
            "shard": None if shard is None else list(shard),
            "overrides": overrides,
        }
        log.info(
            "%d workers (%s) fill %s; their output: %s/logs/worker-<k>.log",
            len(devs),
            ",".join(devs),
            out,
            out,
        )
        for t in run_workers(out, spec, devs, poll=_Poll(bar, job), cancel=cancel):
            for k, v in t.items():
                if k != "load_data" and isinstance(v, (int, float)):
                    timings[k] = timings.get(k, 0) + v
            for k, v in t.get(
                "peak_rss_mb", {}
            ).items():  # each worker's own peak: the largest is the figure
                peaks = timings.setdefault("peak_rss_mb", {})
                peaks[k] = max(peaks.get(k, 0.0), v)
        bar.close()
    _say_reused(job)
    report = _Progress(on_progress, cancel, len(runs))
    # after workers, this pass only finds what is left (normally nothing); what they did is theirs
    # to count
    _fill(job, progress, report, wait=shard is None, count_reused=not devs)
    status = grid_status(out, runs, job.done)
    if not status["done"].all():
        msg = describe_missing(status, out)
        log.warning("%s", msg)
        return {"out": out, "complete": False, "status": status, "message": msg, "timings": timings}
    report("aggregate", None, len(runs))
    with RunLock(out, wait=SHARED_LOCK_WAIT_S):
        if job.cfg.get("mteb_tasks"):
            with timed(timings, "mteb"):
                stage_mteb(out, job.cfg, runs)
        _record_seeds(job, RunFolder(out).config)  # seeds finished by other processes too
        with timed(timings, "aggregate"):
            stage_aggregate(out, job.cfg, job.umap_q, runs)
        with timed(timings, "report"):
            res = render(out)
        timings["total"] = time.perf_counter() - job.t0
        if timings["evaluated_models"] or not (out / "timings.json").is_file():
            atomic_write_json(out / "timings.json", timings)
        # nothing trained or evaluated here: the run that did the work keeps its figures (the cost
        # estimate)
        else:
            log.info(
                "nothing to train or evaluate: %s/timings.json keeps the figures of the run that "
                "did the work",
                out,
            )
    return {**res, "timings": timings, "complete": True}


def _say_reused(job: "_Job") -> None:
    """One line for what the folder already holds: ``reusing seed 0 (4 models) and seed 1 (1 model)
    from runs/cpu; 3 of 7 models to train or evaluate``."""
    done = [r for r in job.mine if job.done(r)]
    if not done:
        return
    by_seed: dict = {}
    for r in done:
        by_seed.setdefault("the base model" if r.seed is None else f"seed {r.seed}", []).append(
            r.id
        )
    parts = [
        k if k == "the base model" else f"{k} ({len(v)} model{'s' if len(v) > 1 else ''})"
        for k, v in by_seed.items()
    ]
    left = len(job.mine) - len(done)
    log.info(
        "reusing %s from %s; %s",
        ", ".join(parts),
        job.out,
        f"{left} of {len(job.mine)} models to train or evaluate"
        if left
        else "nothing to train or evaluate",
    )


def fill(
    profile: str,
    out,
    data_dir=None,
    allow_overlap: bool = False,
    shard=None,
    progress: bool = False,
    **overrides,
) -> dict:
    """Train and evaluate the models of the plan (of ``shard``) that no other process holds, without
    waiting for the others and without aggregating: one worker of :func:`compare`'s ``devices``.
    Returns its timings."""
    cfg = get_profile(profile, **overrides)
    low_memory()
    job = _setup(
        cfg,
        check_folder(out, "--out"),
        False,
        data_dir,
        allow_overlap,
        check_options(None, shard, False)[1],
    )
    _fill(job, progress, _Progress(None, None, len(job.runs)), wait=False)
    return job.timings


@dataclass
class _Job:
    """What every process of a run folder holds after :func:`_setup`: the profile, the data and the
    plan."""

    cfg: dict
    out: Path
    runs: list
    mine: list
    pairs: object
    val: object
    benches: dict
    corpora: dict
    umap_q: object
    t0: float
    timings: dict = field(default_factory=dict)
    fix_passages: object = None

    def __post_init__(self):
        self.names = list(self.benches) + list(self.corpora)
        self._complete = completion(self.out, self.runs, self.names, self.cfg.get("fixes"))
        self._finished: set = set()

    def done(self, run) -> bool:
        """Whether all of ``run``'s results are in the folder. Each check reads every result file
        back, so a run found finished is remembered (nothing in a job removes results): the line
        saying what is reused, the first pass over the models and the progress poll do not read the
        same files again."""
        if run.id in self._finished:
            return True
        if self._complete(run):
            self._finished.add(run.id)
            return True
        return False


def _setup(cfg: dict, out: Path, force: bool, data_dir, allow_overlap: bool, shard) -> _Job:
    """Load and check the data, plan the models, and, under the folder's short lock, check the
    folder's identity (same set-up, same data) and write its shared files. Every check runs before
    the first write."""
    t0 = time.perf_counter()
    timings = {k: 0.0 for k in TIMING_KEYS} | {"reused_results": 0, "evaluated_models": 0}
    with timed(timings, "load_data"):
        pairs, val, benches, corpora, fps, notes, overlap = stage_data(cfg, data_dir, allow_overlap)
    cfg["data"], cfg["notes"] = fps, notes
    runs = plan(cfg)
    check_training_data(runs, cfg, pairs, val)  # a mix part too small for the batch: refused here
    # the training passages the free fixes are estimated from (never a benchmark's pool): the same
    # for every model
    fix_passages = (
        posthoc.training_passages(pairs, cfg.get("fix_groups"), cfg["eval_seed"])
        if cfg.get("fixes")
        else None
    )
    ub = benches[umap_bench(cfg)]
    ug = sorted(ub.queries["group"].unique())[: cfg["umap_groups"]]
    umap_q = ub.queries[ub.queries["group"].isin(ug)]
    with RunLock(out, wait=SHARED_LOCK_WAIT_S):
        if not force:
            check_reusable(out, cfg, {n: legacy_corpus_fingerprint(b) for n, b in corpora.items()})
        else:
            busy = any_held(out, [r.id for r in runs])
            if busy:
                rid, info = next(iter(busy.items()))
                raise GridError(
                    f"--force would remove the models of {out}, but {rid} is being trained by "
                    f"{who(info)}; wait for it, or stop it first"
                )
        # every check passed: only now is anything written (or, with force, removed)
        if force:
            for sub in ("models", "per_query", "alignment", "umap", "fixes", "rankings"):
                shutil.rmtree(out / sub, ignore_errors=True)
        with atomic_path(out / "overlap.csv") as tmp:
            overlap.to_csv(tmp, index=False)
        with atomic_path(out / "clusters.csv") as tmp:
            clusters_table(benches).to_csv(tmp, index=False)
        job = _Job(
            cfg,
            out,
            runs,
            shard_runs(runs, shard),
            pairs,
            val,
            benches,
            corpora,
            umap_q,
            t0,
            timings,
            fix_passages,
        )
        _record_seeds(job, on_file=None if force else _config_on_file(out))
        (out / LOCKS).mkdir(exist_ok=True)
        # the grid's model locks: from now on config.json binds every process (check_reusable)
        for r in runs:
            (out / LOCKS / f"{r.id}.lock").touch()
    return job


def _record_seeds(job: "_Job", on_file: dict | None) -> None:
    """Write ``config.json`` as the folder stands (:func:`hbkit.experiment.plan.held_config`): the
    seeds it holds whole, and those asked for and not finished. Called under the folder's short
    lock: at the start, when a seed's last model is done, and after the aggregate."""
    atomic_write_json(job.out / "config.json", held_config(job.cfg, job.runs, job.done, on_file))


def _config_on_file(out: Path) -> dict | None:
    """The folder's ``config.json`` before this run writes it; None when it has none, or one that
    does not read (a folder that holds nothing yet: ``check_reusable`` refuses a damaged one where
    models or results are)."""
    try:
        return RunFolder(out).config
    except ValueError:
        return None


def _seed_done(job: "_Job", run) -> None:
    """When ``run`` completed its seed, record it in ``config.json`` (under the folder's short
    lock)."""
    if run.seed is None or not all(job.done(r) for r in job.runs if r.seed == run.seed):
        return
    with RunLock(job.out, wait=SHARED_LOCK_WAIT_S):
        _record_seeds(job, RunFolder(job.out).config)


def _fill(
    job: _Job, progress: bool, report: "_Progress", wait: bool, count_reused: bool = True
) -> None:
    """Train and evaluate each model of ``job.mine`` that is not done and that no other process
    holds, each under its model lock; with ``wait``, then wait for the models other processes hold
    (taking over one whose process died) until every one is done."""
    said, looked_again, todo = None, False, list(job.mine)
    while True:
        held = {}
        for i, run in enumerate(tqdm(todo, desc="models", disable=not progress)):
            if job.done(run):
                job.timings["reused_results"] += len(job.names) if count_reused else 0
                continue
            with ModelLock(job.out, run.id) as lock:
                if not lock.held:
                    held[run.id] = run
                    continue
                if job.done(run):  # finished by another process while we looked
                    continue
                _one_model(job, run, i, progress, report)
            _seed_done(job, run)
        if not held:
            return
        # one more look: a lock seen held for an instant (a status probe) is not left undone
        if not wait:
            if looked_again:
                return
            looked_again = True
            time.sleep(1)
            todo = list(held.values())
            continue
        todo = list(held.values())
        status = grid_status(job.out, todo, job.done)
        running = status[status.state == "running"]
        if not len(status[~status.done]):
            return
        text = "; ".join(f"{m} ({h})" for m, h in zip(running.model, running.held_by))
        if text and text != said:
            log.info("waiting for models other processes train: %s", text)
            said = text
        report.check_cancel("waiting for other processes")
        time.sleep(POLL_S)


def _one_model(job: _Job, run, i: int, progress: bool, report: "_Progress") -> None:
    """Train (unless it is the base model) and evaluate one planned model; its results are written
    atomically."""
    timings = job.timings
    report("train" if run.strategy else "evaluate", run.id, i)
    model_dir = None
    if run.strategy is not None:
        with timed(timings, "train"):
            model_dir = stage_train(
                run, job.cfg, job.pairs, job.out, progress, report.callbacks(), job.val
            )
        report("evaluate", run.id, i)
    with timed(timings, "load_model"):
        encoder = base_encoder(job.cfg, None if model_dir is None else str(model_dir))
    stage_evaluate(
        run,
        encoder,
        job.benches,
        job.corpora,
        job.out,
        job.umap_q,
        timings,
        progress,
        tuple(job.cfg.get("fixes") or ()),
        job.fix_passages,
        int(job.cfg.get("rankings_k") or 0),
    )
    timings["evaluated_models"] += 1
    report.model_done()


class _Poll:
    """The progress bar of a folder that workers fill: models done, looked at every 10 s."""

    def __init__(self, bar, job: _Job):
        self.bar, self.job, self.last = bar, job, 0.0

    def __call__(self) -> None:
        if time.perf_counter() - self.last < 10:
            return
        self.last = time.perf_counter()
        n = sum(self.job.done(r) for r in self.job.runs)
        self.bar.update(n - self.bar.n)


class _Progress:
    """The job's progress for a caller that shows it (``on_progress``) and its cancel point
    (``cancel``)."""

    def __init__(self, on_progress, cancel, n: int):
        self.on_progress, self.cancel, self.n = on_progress, cancel, n
        self.t0, self.done = time.perf_counter(), 0

    def check_cancel(self, where: str) -> None:
        if self.cancel is not None and self.cancel.is_set():
            raise RunCancelled(f"cancelled {where}; rerun to resume")

    def __call__(self, stage: str, model: str | None, i: int) -> None:
        self.check_cancel(f"before {stage} of {model or 'the results'}")
        if self.on_progress is not None:
            per = (time.perf_counter() - self.t0) / self.done if self.done else None
            self.on_progress(
                {
                    "stage": stage,
                    "model": model,
                    "i": i,
                    "n": self.n,
                    "eta_s": None if per is None else per * max(0, self.n - i),
                }
            )

    def model_done(self) -> None:
        self.done += 1

    def callbacks(self) -> list | None:
        return [cancel_callback(self.cancel)] if self.cancel is not None else None


def _worker_main(job: dict) -> int:
    """One worker process of :func:`hbkit.experiment.grid.run_workers` (``python -m
    hbkit.experiment.compare JOB``): :func:`fill`, then its timings to ``job["timings_file"]``."""
    logging.basicConfig(
        level=logging.INFO,
        format=f"%(levelname)s worker {job['worker']} ({job['device']}) %(name)s: %(message)s",
    )
    timings = fill(
        job["profile"],
        job["out"],
        data_dir=job.get("data_dir"),
        allow_overlap=job.get("allow_overlap", False),
        shard=job.get("shard"),
        **job.get("overrides", {}),
    )
    atomic_write_json(job["timings_file"], timings)
    return 0


if __name__ == "__main__":
    import signal

    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    try:
        sys.exit(_worker_main(json.loads(sys.argv[1])))
    except KeyboardInterrupt:
        print(
            "worker interrupted: its model resumes from its last checkpoint at the next compare",
            file=sys.stderr,
        )
        sys.exit(130)
