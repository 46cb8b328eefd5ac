"""Several processes on CPU (torchrun, gloo), the way they fail in use: an EMPTY cache (every rank builds the
model at once), runs longer than one epoch, an interruption after an epoch boundary, and N processes
building or writing one cache entry at once."""
import json
import os
import socket
import subprocess
import sys
import textwrap

import numpy as np
import pytest

# 40 groups, 2 processes x batch 4 = global batch 8: 5 global batches per epoch, so 12 steps cross 2 epochs
TRAIN = ["--model", "tiny", "--strategy", "hybrid", "--steps", "12", "--lr", "1e-3", "--dropout", "0",
         "--no-freeze-word-embeddings", "--max-groups", "40", "--seed", "1", "--save-steps", "3", "--no-resume"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _launch(args, nproc, env, module=("-m", "hbkit.app.cli")):
    if nproc == 1:
        cmd = [sys.executable, *module, *args]
    else:
        cmd = [sys.executable, "-m", "torch.distributed.run", f"--nproc_per_node={nproc}", "--master_addr=127.0.0.1",
               f"--master_port={_free_port()}", *module, *args]
    return subprocess.run(cmd, env={**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", **env},
                          capture_output=True, text=True, timeout=900)


def _steps(out):
    return [json.loads(l) for l in (out / "train_log.jsonl").read_text().splitlines() if '"loss"' in l]


def test_two_processes_from_an_empty_cache_past_two_epochs_equal_one_at_double_batch(tmp_path, data_dir):
    env = {"HBKIT_CACHE": str(tmp_path / "empty-cache"), "HBKIT_DATA_DIR": str(data_dir)}
    r = _launch(["train", *TRAIN, "--batch-size", "4", "--out", str(tmp_path / "ddp")], 2, env)
    assert r.returncode == 0, r.stderr[-3000:]
    r = _launch(["train", *TRAIN, "--batch-size", "8", "--out", str(tmp_path / "single")], 1, env)
    assert r.returncode == 0, r.stderr[-3000:]
    single, double = _steps(tmp_path / "single"), _steps(tmp_path / "ddp")
    assert [s["step"] for s in double] == list(range(1, 13))
    for a, b in zip(single, double):
        assert (a["batch"], a["lang"]) == (b["batch"], b["lang"]) and a["batch"] in ("xx", "xy")
        assert a["loss"] == pytest.approx(b["loss"], abs=1e-5), (a, b)
    seen = [json.loads((tmp_path / "ddp" / f"batches_seen.rank{r}.json").read_text()) for r in (0, 1)]
    assert seen[0] == seen[1] and len(seen[0]) >= 12  # every rank collated the same kinds, epoch after epoch
    card = json.loads((tmp_path / "ddp" / "model" / "hbkit_training.json").read_text())
    assert card["steps"] == 12 and sum(card["batch_counts"].values()) == 12


RESUME_SCRIPT = textwrap.dedent("""
    import os, sys
    from transformers import TrainerCallback
    from hbkit.experiment.stages import subsample_pairs
    from hbkit.data.benchmarks import parallel_pairs
    from hbkit.encoders.load import tiny_encoder
    from hbkit.train.trainer import TrainConfig, train

    class Interrupt(TrainerCallback):  # right after the step that follows a checkpoint, in the second epoch
        def on_step_end(self, args, state, control, **kw):
            if state.global_step == int(os.environ["STOP_AT"]):
                raise SystemExit(3)

    pairs = subsample_pairs(parallel_pairs(), 40, 1)
    cfg = TrainConfig(strategy="hybrid", batch_size=4, max_steps=12, lr=1e-3, dropout=0.0, save_steps=3,
                      freeze_word_embeddings=False, seed=1)
    cb = [Interrupt()] if os.environ.get("STOP_AT") else []
    train(tiny_encoder(), pairs, cfg, sys.argv[1], progress=False, callbacks=cb)
""")


def test_resumed_multi_process_run_equals_uninterrupted(tmp_path, data_dir):
    script = tmp_path / "run.py"
    script.write_text(RESUME_SCRIPT)
    env = {"HBKIT_CACHE": str(tmp_path / "cache"), "HBKIT_DATA_DIR": str(data_dir)}
    r = _launch([str(tmp_path / "full")], 2, env, module=(str(script),))
    assert r.returncode == 0, r.stderr[-3000:]
    r = _launch([str(tmp_path / "cut")], 2, {**env, "STOP_AT": "7"}, module=(str(script),))
    assert r.returncode != 0 and (tmp_path / "cut" / "checkpoints" / "checkpoint-6").is_dir()
    assert not (tmp_path / "cut" / "model").exists()
    r = _launch([str(tmp_path / "cut")], 2, env, module=(str(script),))
    assert r.returncode == 0, r.stderr[-3000:]
    full, cut = _steps(tmp_path / "full"), _steps(tmp_path / "cut")
    assert [s["step"] for s in cut] == list(range(1, 13))  # each step once, none repeated after the resume
    assert [(a["batch"], a["lang"]) for a in full] == [(b["batch"], b["lang"]) for b in cut]
    assert [a["loss"] for a in full] == pytest.approx([b["loss"] for b in cut], abs=1e-5)
    from safetensors.torch import load_file
    a = load_file(next((tmp_path / "full" / "model").rglob("model.safetensors")))
    b = load_file(next((tmp_path / "cut" / "model").rglob("model.safetensors")))
    for k in a:
        np.testing.assert_allclose(a[k].numpy(), b[k].numpy(), atol=1e-6, err_msg=k)


BUILD_SCRIPT = textwrap.dedent("""
    import logging, sys
    logging.basicConfig(level=logging.INFO)
    import numpy as np
    from hbkit.encoders.load import tiny_encoder
    from hbkit.retrieval.pools import encode
    m = tiny_encoder(seed=7)
    texts = [f"text {i}" for i in range(50)]
    E = None
    for _ in range(10):  # every process writes and reads the same embedding-cache entries over and over
        E = encode(m, texts, "query")
        encode(m, texts[:10], "passage")
    np.save(sys.argv[1], E)
""")


def test_n_processes_build_one_cache_at_once(tmp_path):
    script = tmp_path / "build.py"
    script.write_text(BUILD_SCRIPT)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HBKIT_CACHE": str(tmp_path / "cache")}
    procs = [subprocess.Popen([sys.executable, str(script), str(tmp_path / f"e{i}.npy")], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for i in range(3)]
    logs = [p.communicate(timeout=600) for p in procs]
    assert all(p.returncode == 0 for p in procs), [l[1][-2000:] for l in logs]
    assert sum("building the tiny encoder" in err for _, err in logs) == 1  # one built, the others waited
    E = [np.load(tmp_path / f"e{i}.npy") for i in range(3)]
    assert all(np.array_equal(E[0], e) for e in E[1:])
    leftovers = [p for p in (tmp_path / "cache").rglob("*") if p.name.endswith(".tmp") or ".tmp." in p.name]
    assert not leftovers


MIX_SCRIPT = textwrap.dedent("""
    import json, os, sys
    import datasets
    import torch.distributed as dist
    from hbkit.data import corpus_cache
    from hbkit.data.corpora import load_training_corpus
    from hbkit.train.run_folder import pairs_fingerprint
    dist.init_process_group("gloo")
    ds = load_training_corpus("mmarco:120+xquad-train", sys.argv[1], languages=["en", "de", "es"])
    print("RESULT " + json.dumps({"rank": dist.get_rank(), "builds": dict(corpus_cache.BUILDS),
                                  "files": [f["filename"] for f in ds.cache_files], "rows": len(ds),
                                  "mapped": isinstance(ds.data, datasets.table.MemoryMappedTable),
                                  "fingerprint": pairs_fingerprint(ds)}), flush=True)
    dist.barrier()
    dist.destroy_process_group()
""")


def test_two_ranks_build_the_paper_shaped_mix_once_and_share_its_pages(tmp_path, data_dir):
    """An empty cache, a mix of mMARCO and an XQuAD part under torchrun: one rank builds each part and the mix,
    and both map the same Arrow files of the mix (no private copy in either process)."""
    from paper_fixtures import write_mmarco

    (tmp_path / "xquad-r").symlink_to(data_dir / "xquad-r")
    write_mmarco(tmp_path / "mmarco", n_queries=120)
    script = tmp_path / "mix.py"
    script.write_text(MIX_SCRIPT)
    r = _launch([str(tmp_path)], 2, {"HBKIT_CACHE": str(tmp_path / "cache"), "PYTHONPATH": os.getcwd()},
                module=(str(script),))
    assert r.returncode == 0, r.stderr[-3000:]
    res = [json.loads(l.split("RESULT ", 1)[1]) for l in r.stdout.splitlines() if l.startswith("RESULT ")]
    assert sorted(x["rank"] for x in res) == [0, 1]
    for name in ("mix", "mmarco", "xquad-train"):
        assert sum(x["builds"].get(name, 0) for x in res) == 1, (name, [x["builds"] for x in res])
    a, b = res
    assert a["files"] == b["files"] and a["files"] and all("/corpora/mix-" in f for f in a["files"])
    assert a["mapped"] and b["mapped"]
    assert a["rows"] == b["rows"] and a["fingerprint"] == b["fingerprint"]
