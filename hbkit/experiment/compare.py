"""The main job: train every planned model, evaluate it, and aggregate, in one locked run folder."""
from __future__ import annotations

import shutil
import time
from pathlib import Path

from tqdm.auto import tqdm

from hbkit.core.env import default_run_dir
from hbkit.core.files import RunLock, atomic_path, atomic_write_json
from hbkit.experiment.plan import check_reusable, first_seed_ids, legacy_corpus_fingerprint, plan, umap_bench
from hbkit.experiment.profiles import profile as get_profile
from hbkit.experiment.report import render
from hbkit.experiment.stages import (
    base_encoder,
    check_training_data,
    clusters_table,
    results_complete,
    stage_aggregate,
    stage_data,
    stage_evaluate,
    stage_train,
)
from hbkit.train.trainer import RunCancelled, cancel_callback


def compare(profile: str = "auto", out: str | Path | None = None, force: bool = False, data_dir=None,
            progress: bool = True, allow_overlap: bool = False, on_progress=None, cancel=None, **overrides) -> dict:
    """The main job: train every planned model (strategy, α, seed), evaluate each, aggregate over seeds and
    decide the verdicts, in one locked run folder that a rerun resumes.

    Args:
        profile: a profile name (:func:`hbkit.experiment.profiles.profile`).
        out: the run folder (default: the profile's shared folder, ``runs/<profile>``:
            :func:`hbkit.core.env.default_run_dir`); a folder made with another set-up is refused unless ``force``.
        force: start the folder afresh.
        data_dir: the data root.
        progress: progress bars.
        allow_overlap: go on although training questions occur in an evaluation benchmark (``overlap.csv`` has the
            counts); otherwise the job stops.
        on_progress: called with ``{"stage", "model", "i", "n", "eta_s"}`` before each model and stage (the
        dashboard's progress bar); ``eta_s`` is None until a model has been trained here.
    cancel: a ``threading.Event``; once set, the job stops at the end of the current training step or before
        the next model (:class:`~hbkit.train.trainer.RunCancelled`), and a rerun resumes it.
    **overrides: profile keys (``seeds=[0, 1]``, ``model=...``), validated before the first minute of work.

    Returns:
        What :func:`hbkit.experiment.report.render` returns (``table``, ``verdicts``, ``effects``, ...) plus
        ``timings``.

    Example:
        >>> res = compare("ci", out="runs/ci", seeds=[0, 1])
        >>> res["verdicts"][["claim", "benchmark", "verdict"]]
    """
    cfg = get_profile(profile, **overrides)  # validated before any work
    out = Path(out) if out is not None else default_run_dir(cfg["profile"])
    with RunLock(out):
        timings: dict[str, float] = {"load_data": 0.0, "train": 0.0, "encode": 0.0, "score": 0.0, "align": 0.0,
                                     "aggregate": 0.0, "report": 0.0, "reused_results": 0}
        t0 = time.perf_counter()
        pairs, val, benches, corpora, fps, notes, overlap = stage_data(cfg, data_dir, allow_overlap)
        cfg["data"], cfg["notes"] = fps, notes
        timings["load_data"] = time.perf_counter() - t0
        if not force:
            check_reusable(out, cfg, {n: legacy_corpus_fingerprint(b) for n, b in corpora.items()})
        runs = plan(cfg)
        check_training_data(runs, cfg, pairs, val)   # a mix part too small for the batch: refused here
        # every check passed: only now is anything written (or, with force, removed)
        if force:
            for sub in ("models", "per_query", "alignment", "umap"):
                shutil.rmtree(out / sub, ignore_errors=True)
        with atomic_path(out / "overlap.csv") as tmp:
            overlap.to_csv(tmp, index=False)
        with atomic_path(out / "clusters.csv") as tmp:
            clusters_table(benches).to_csv(tmp, index=False)
        atomic_write_json(out / "config.json", cfg)
        ub = benches[umap_bench(cfg)]
        ug = sorted(ub.queries["group"].unique())[: cfg["umap_groups"]]
        umap_q = ub.queries[ub.queries["group"].isin(ug)]
        first = first_seed_ids(runs)   # the UMAP pictures show each model's first seed
        report = _Progress(on_progress, cancel, len(runs))
        for i, run in enumerate(tqdm(runs, desc="models", disable=not progress)):
            if results_complete(out, run, list(benches) + list(corpora), umap=run.id in first):
                timings["reused_results"] += len(benches) + len(corpora)
                continue
            report("train" if run.strategy else "evaluate", run.id, i)
            if run.strategy is None:
                encoder = base_encoder(cfg)
            else:
                t = time.perf_counter()
                model_dir = stage_train(run, cfg, pairs, out, progress, report.callbacks(), val)
                timings["train"] += time.perf_counter() - t
                encoder = base_encoder(cfg, str(model_dir))
                report("evaluate", run.id, i)
            stage_evaluate(run, encoder, benches, corpora, out, umap_q, timings, progress)
            report.model_done()
            del encoder
        report("aggregate", None, len(runs))
        t = time.perf_counter()
        stage_aggregate(out, cfg, umap_q, runs)
        timings["aggregate"] = time.perf_counter() - t
        t = time.perf_counter()
        res = render(out)
        timings["report"] = time.perf_counter() - t
        timings["total"] = time.perf_counter() - t0
        timings["evaluated_models"] = report.done
        atomic_write_json(out / "timings.json", timings)
    return {**res, "timings": timings}


class _Progress:
    """The job's progress for a caller that shows it (``on_progress``) and its cancel point (``cancel``)."""

    def __init__(self, on_progress, cancel, n: int):
        self.on_progress, self.cancel, self.n = on_progress, cancel, n
        self.t0, self.done = time.perf_counter(), 0

    def __call__(self, stage: str, model: str | None, i: int) -> None:
        if self.cancel is not None and self.cancel.is_set():
            raise RunCancelled(f"cancelled before {stage} of {model or 'the results'}; rerun to resume")
        if self.on_progress is not None:
            per = (time.perf_counter() - self.t0) / self.done if self.done else None
            self.on_progress({"stage": stage, "model": model, "i": i, "n": self.n,
                              "eta_s": None if per is None else per * max(0, self.n - i)})

    def model_done(self) -> None:
        self.done += 1

    def callbacks(self) -> list | None:
        return [cancel_callback(self.cancel)] if self.cancel is not None else None
