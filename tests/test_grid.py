"""Many processes fill one run folder (hbkit.experiment.grid): workers per device and shards of a job array give
the single process's bytes, each model trained once; a killed worker's model is taken over and resumed; a shard of
another set-up takes nothing; a half-filled grid says what is missing and who holds it."""
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from hbkit.experiment.compare import compare
from hbkit.experiment.grid import (
    GridError,
    ModelLock,
    device_env,
    grid_status,
    holder,
    parse_devices,
    parse_shard,
    shard_runs,
)

#: seed 0 only, 14 steps (a checkpoint at step 10: the kill test resumes from it)
OPTS = {"seeds": [0], "steps": 14}
#: what a run's numbers are: every per-model file and every table (timings.json and logs/ are not)
TABLES = ("results.csv", "aggregate.csv", "effects.csv", "verdicts.csv", "table.md", "table.csv", "power.csv",
          "alignment.csv", "umap.csv", "report.html", "clusters.csv", "overlap.csv", "config.json",
          "reference_effects.csv", "reference_languages.csv")


def _numbers(out: Path) -> dict:
    files = {f: (out / f).read_bytes() for f in TABLES}
    for sub in ("per_query", "alignment", "umap"):
        files.update({f"{sub}/{p.name}": p.read_bytes() for p in sorted((out / sub).iterdir())})
    return files


def _same(a: Path, b: Path) -> None:
    x, y = _numbers(a), _numbers(b)
    assert sorted(x) == sorted(y)
    assert [f for f in x if x[f] != y[f]] == []


def _env() -> dict:
    return {**os.environ, "HBKIT_PROFILE": "ci", "HF_HUB_OFFLINE": "1"}


def _cli(*args, data_dir) -> list[str]:
    return [sys.executable, "-m", "hbkit.app.cli", "compare", "--profile", "ci", "--seeds", "0", "--steps", "14",
            "--data-dir", str(data_dir), *args]


def _trained_once(out: Path, steps: int = 14) -> None:
    """Every trained model of ``out`` ran its steps once, from the start (no second training, no resume)."""
    for card_path in (out / "models").glob("*/model/hbkit_training.json"):
        card = json.loads(card_path.read_text())
        assert card["resumed_from"] is None and card["steps"] == steps, card_path
        steps_logged = [json.loads(l)["step"] for l in (card_path.parents[1] / "train_log.jsonl").read_text().splitlines()
                        if '"loss"' in l]
        assert steps_logged == sorted(set(steps_logged)), card_path


@pytest.fixture(scope="module")
def single(data_dir, tmp_path_factory):
    """The reference: one process, the ci profile at seed 0 (base + three strategies), 14 steps."""
    out = tmp_path_factory.mktemp("single")
    compare("ci", out, data_dir=data_dir, progress=False, devices=None, **OPTS)
    return out


def test_grid_options_are_checked_before_any_work(tmp_path):
    assert parse_shard("2/3") == (2, 3) and parse_shard(None) is None
    for bad in ("3/3", "1/0", "a/2", "-1/2", "1-2"):
        with pytest.raises(GridError, match="--shard"):
            parse_shard(bad)
    assert parse_devices("cpu, cpu") == ["cpu", "cpu"]
    for bad in ("", "cpu,,cpu", "gpu0", "cuda:x"):
        with pytest.raises(GridError, match="--devices"):
            parse_devices(bad)
    with pytest.raises(GridError, match="not visible"):   # no GPU in CI: cuda:0 is refused
        parse_devices("cuda:0")
    runs = list(range(7))
    assert [shard_runs(runs, (i, 3)) for i in range(3)] == [[0, 3, 6], [1, 4], [2, 5]]
    # a worker sees its one card, numbered through the parent's own CUDA_VISIBLE_DEVICES; no torchrun variables
    env = device_env("cuda:1", {"CUDA_VISIBLE_DEVICES": "4,6", "RANK": "0", "WORLD_SIZE": "8"})
    assert env["CUDA_VISIBLE_DEVICES"] == "6" and "RANK" not in env and "WORLD_SIZE" not in env
    assert device_env("cuda:3", {})["CUDA_VISIBLE_DEVICES"] == "3"
    assert device_env("cpu", {"CUDA_VISIBLE_DEVICES": "0"})["CUDA_VISIBLE_DEVICES"] == ""
    r = subprocess.run([sys.executable, "-m", "hbkit.app.cli", "compare", "--profile", "ci", "--out",
                        str(tmp_path / "x"), "--shard", "0/2", "--force"], capture_output=True, text=True, env=_env())
    assert r.returncode == 2 and "--force with --shard" in r.stderr and not (tmp_path / "x").exists()


def test_two_workers_fill_the_folder_as_one_process_does(single, data_dir, tmp_path):
    out = tmp_path / "grid"
    r = subprocess.run(_cli("--out", str(out), "--devices", "cpu,cpu", data_dir=data_dir), capture_output=True,
                       text=True, env=_env())
    assert r.returncode == 0, r.stderr[-2000:]
    _same(single, out)
    _trained_once(out)
    worked = [json.loads((out / "logs" / f"worker-{k}.timings.json").read_text())["evaluated_models"] for k in (0, 1)]
    assert sum(worked) == 4   # each of base, xx, xy, hybrid evaluated by exactly one worker
    assert json.loads((out / "timings.json").read_text())["evaluated_models"] == 4


def test_three_shards_started_at_once_give_the_same_bytes(single, data_dir, tmp_path):
    out = tmp_path / "grid"
    procs = [subprocess.Popen(_cli("--out", str(out), "--shard", f"{i}/3", data_dir=data_dir), stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True, env=_env()) for i in range(3)]
    outs = [p.communicate(timeout=900) for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0], [e[-1500:] for _, e in outs]
    _same(single, out)
    _trained_once(out)
    # the shards that finished early said what the others still held; the last one aggregated
    assert any("written to" in o for o, _ in outs)


def test_a_half_filled_grid_names_what_is_missing_and_who_holds_it(single, data_dir, tmp_path):
    out = tmp_path / "grid"
    res = compare("ci", out, data_dir=data_dir, progress=False, shard="0/2", **OPTS)   # base and xy-s0
    assert res["complete"] is False and not (out / "effects.csv").exists()
    assert "xx-s0: not started" in res["message"] and "hybrid-s0: not started" in res["message"]
    with ModelLock(out, "xx-s0", device="cuda:7") as lock:   # a live process training xx-s0 on a GPU
        assert lock.held
        r = subprocess.run([sys.executable, "-m", "hbkit.app.cli", "report", str(out)], capture_output=True,
                           text=True, env=_env())
    assert r.returncode == 2, r.stderr
    assert f"xx-s0: running, held by PID {os.getpid()}" in r.stderr and "(cuda:7)" in r.stderr
    assert "hybrid-s0: not started" in r.stderr and "No report is written from a partial grid" in r.stderr
    assert not (out / "verdicts.csv").exists() and not (out / "report.html").exists()
    assert holder(out, "xx-s0") is None   # released: nobody holds it
    done = compare("ci", out, data_dir=data_dir, progress=False, shard="1/2", **OPTS)  # the last shard aggregates
    assert done["complete"] is True
    _same(single, out)


def test_a_shard_of_another_set_up_takes_nothing(single, data_dir):
    before = {p: p.read_bytes() for p in sorted(single.rglob("*")) if p.is_file()}
    with pytest.raises(ValueError, match="another set-up"):
        compare("ci", single, data_dir=data_dir, progress=False, seeds=[0], steps=5, shard="1/2")
    after = {p: p.read_bytes() for p in sorted(single.rglob("*")) if p.is_file()}
    assert after == before and not list((single / "locks").glob("*.owner.json"))


KILLER = textwrap.dedent("""
    import os, sys
    from pathlib import Path
    from hbkit.experiment.compare import compare

    out = Path(sys.argv[1])

    class KillAfterCheckpoint:   # asked at every step's end: kill -9 once checkpoint 10 is on disk
        def is_set(self):
            if list(out.glob("models/xx-s0/checkpoints/checkpoint-10/trainer_state.json")):
                os.kill(os.getpid(), 9)
            return False

    compare("ci", out, data_dir=sys.argv[2], progress=False, seeds=[0], strategies=["xx"], steps=14,
            cancel=KillAfterCheckpoint())
""")


def test_a_killed_workers_model_is_taken_over_and_resumed(single, data_dir, tmp_path):
    """Killed after checkpoint 10 of 14 (a plan of xx-s0 alone); the uninterrupted xx-s0 is the reference's."""
    from safetensors.torch import load_file

    opts = {**OPTS, "strategies": ["xx"]}
    whole = single
    out = tmp_path / "killed"
    script = tmp_path / "killer.py"
    script.write_text(KILLER)
    r = subprocess.run([sys.executable, str(script), str(out), str(data_dir)], capture_output=True, text=True, env=_env())
    assert r.returncode == -9, r.stderr[-2000:]
    from hbkit.experiment.plan import plan
    from hbkit.experiment.profiles import profile
    runs = [x for x in plan(profile("ci", **opts)) if x.id == "xx-s0"]
    st = grid_status(out, runs, lambda run: False)
    assert st.state.tolist() == ["interrupted"]   # its process died holding it: the OS lock is free
    res = compare("ci", out, data_dir=data_dir, progress=False, **opts)   # the next process takes it over
    assert res["complete"] is True
    card = json.loads((out / "models" / "xx-s0" / "model" / "hbkit_training.json").read_text())
    assert card["resumed_from"].endswith("checkpoint-10") and card["steps"] == 14
    steps = [json.loads(l)["step"] for l in (out / "models" / "xx-s0" / "train_log.jsonl").read_text().splitlines()
             if '"loss"' in l]
    assert steps == sorted(set(steps)) and steps[-1] == 14   # no step logged twice
    a = load_file(next((whole / "models" / "xx-s0" / "model").rglob("model.safetensors")))
    b = load_file(next((out / "models" / "xx-s0" / "model").rglob("model.safetensors")))
    assert a.keys() == b.keys() and all((a[k] == b[k]).all() for k in a)
    for f in ("per_query/xx-s0__mlqa-r.parquet", "per_query/xx-s0__tydiqa-corpus-sw.parquet",
              "alignment/xx-s0__xquad-r-eval.parquet", "umap/xx-s0.npy"):
        assert (whole / f).read_bytes() == (out / f).read_bytes(), f


def test_the_cluster_examples_use_options_hbkit_has():
    """docs/cluster/: the SLURM array's command line parses with hbkit's own parser; the submitit example
    compiles and passes compare() only keywords it takes."""
    import ast
    import inspect
    import shlex

    from hbkit.app.cli import build_parser
    root = Path(__file__).resolve().parents[1] / "docs" / "cluster"
    line = next(l for l in (root / "grid_array.sbatch").read_text().splitlines() if l.startswith("hbkit compare"))
    argv = shlex.split(line.replace("$SLURM_ARRAY_TASK_ID/$SLURM_ARRAY_TASK_COUNT", "3/16")
                       .replace('"$MODEL"', "m").replace('"$OUT"', "o"))[1:]
    a = build_parser().parse_args(argv)
    assert (a.shard, a.profile, a.out) == ("3/16", "paper", "o") and parse_shard(a.shard) == (3, 16)
    tree = ast.parse((root / "grid_submitit.py").read_text())
    calls = [n for n in ast.walk(tree) if isinstance(n, ast.Call) and getattr(n.func, "attr", "") == "compare"]
    params = inspect.signature(compare).parameters
    assert calls and all(k.arg in params or k.arg == "model" for c in calls for k in c.keywords)
