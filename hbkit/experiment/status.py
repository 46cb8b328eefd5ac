"""What a run folder holds before it runs, and what running it would cost: the models still to train
or evaluate, the minutes per model measured in the last run that trained one, and the disk the new
models take. The notebooks show it (:func:`plan_status`), and the report's next step uses its
estimate (:func:`minutes_per_model`)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from hbkit.core.env import runs_root
from hbkit.experiment.doctor import model_disk
from hbkit.experiment.plan import benchmark_names, plan
from hbkit.experiment.run_files import RunFolder
from hbkit.experiment.stages import completion


def plan_status(cfg: dict, out: str | Path) -> pd.DataFrame:
    """What a run of ``cfg`` into ``out`` would do: one row per planned model (``model``, ``seed``,
    ``done``: every result of it is in ``out`` already, so it is neither trained nor evaluated
    again). ``attrs`` holds ``to_run`` (how many models are still to train or evaluate),
    ``minutes_per_model`` and ``measured_in`` (:func:`minutes_per_model`) and ``estimate_minutes``
    (their product, None when nothing has been measured for this profile yet) and ``disk_gib`` (what
    the models to train will take on disk: :func:`hbkit.experiment.doctor.model_disk`).

    Args:
        cfg: a profile (:func:`hbkit.experiment.profiles.profile`), with the seeds and α values to
            run.
        out: the run folder.

    Returns:
        The plan, one row per model, with the ``attrs`` above.

    Examples:
        >>> st = plan_status(profile("cpu"), default_run_dir("cpu"))
        >>> st.attrs["to_run"], st.attrs["estimate_minutes"]
    """
    out = Path(out)
    names = benchmark_names(cfg)
    runs = plan(cfg)
    done = completion(out, runs, names, cfg.get("fixes"))
    rows = [{"model": r.name, "seed": r.seed, "done": out.is_dir() and done(r)} for r in runs]
    status = pd.DataFrame(rows, columns=["model", "seed", "done"])
    todo = int((~status["done"]).sum())
    per_model, where = minutes_per_model(out, cfg["profile"])
    kept, training = model_disk(cfg)
    trained = int((~status["done"] & status["seed"].notna()).sum())
    status.attrs.update(
        to_run=todo,
        minutes_per_model=per_model,
        measured_in=where,
        estimate_minutes=None if per_model is None else round(todo * per_model, 1),
        disk_gib=round((trained * kept + (training if trained else 0)) / 2**30, 1),
    )
    return status


def minutes_per_model(out: str | Path, profile_name: str) -> tuple[float | None, str | None]:
    """Minutes one model took (training and evaluation) in the last run that trained one: ``out``'s
    ``timings.json``, else the committed measurement of the profile (``results/<profile>/`` in a
    checkout). Returns ``(minutes, the folder measured)``, or ``(None, None)`` when neither
    exists."""
    for folder in (Path(out), runs_root().parent / "results" / profile_name):
        try:  # an estimate: a folder without them, or with a damaged one, is passed over
            run = RunFolder(folder)
            t, cfg = run.json("timings.json"), run.json("config.json")
        except (OSError, ValueError):
            continue
        n = t.get("evaluated_models")
        if n is None:
            # written before hbkit counted them: planned models minus those with reused results
            n = len(plan(cfg)) - int(t.get("reused_results", 0)) // max(
                1, len(benchmark_names(cfg))
            )
        spent = sum(t.get(k, 0.0) for k in ("train", "encode", "score", "align"))
        if n and n > 0 and spent > 0:
            # 3 places: a ci-profile model takes seconds
            return round(spent / n / 60, 3), str(folder)
    return None, None
