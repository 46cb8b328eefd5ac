"""hbkit batches in a user's own SentenceTransformerTrainer, the ways it goes wrong in use: the default
collator (rows never paired), a sampler instance or the bare class as ``batch_sampler`` (None, or batch kinds
mixed in one DDP step), a seed given twice, rows from another sampler reaching PairCollator; and the one call,
``hbkit.st_training_kwargs``, that gives the pieces together, in one process and under 2-process DDP."""
import json
import os
import socket
import subprocess
import sys
import textwrap

import pytest

import hbkit
from hbkit.encoders.load import tiny_encoder
from hbkit.train.sampling import SamplerError


@pytest.fixture(scope="module")
def pairs(data_dir):
    p = hbkit.parallel_pairs(data_dir=data_dir, languages=["en", "de", "es", "zh"])
    keep = set(sorted(set(p["group"]))[:96])
    return p.filter(lambda r: r["group"] in keep)


def _trainer(tmp_path, model, pairs, args_kw, trainer_kw, steps=3):
    from sentence_transformers import SentenceTransformerTrainer, SentenceTransformerTrainingArguments
    from sentence_transformers.sentence_transformer.losses import MultipleNegativesRankingLoss

    args = SentenceTransformerTrainingArguments(str(tmp_path / "out"), per_device_train_batch_size=8, max_steps=steps,
                                                report_to="none", use_cpu=True, save_strategy="no",
                                                disable_tqdm=True, **args_kw)
    return SentenceTransformerTrainer(model=model, args=args, train_dataset=pairs,
                                      loss=MultipleNegativesRankingLoss(model), **trainer_kw)


def test_the_one_call_trains_on_the_batches_its_sampler_plans(pairs, tmp_path):
    model = tiny_encoder(seed=5)
    st = hbkit.st_training_kwargs("hybrid", 0.5, model, seed=3)
    trainer = _trainer(tmp_path, model, pairs, st.args, st.trainer)
    trainer.train()
    sampler = st.batch_sampler.last
    assert trainer.state.global_step == 3 and sampler.seed == 3 and trainer.args.seed == 3
    assert sampler.pairs_per_batch == 8 and sampler.rows_per_batch == sampler.batch_size == 16
    plan = sampler.plan(0)[:3]
    assert st.data_collator.seen[:3] == [f"xx:{b.lang}" if b.kind == "xx" else "xy" for b in plan]
    assert st.prompts == {"query": "query: ", "passage": "passage: "} == st.data_collator.prompts


def test_the_default_collator_is_refused_before_a_step(pairs, tmp_path):
    model = tiny_encoder(seed=5)
    trainer = _trainer(tmp_path, model, pairs, {"batch_sampler": hbkit.make_sampler("hybrid")}, {})
    with pytest.raises(SamplerError, match="only hbkit.PairCollator pairs.*SentenceTransformerDataCollator"):
        trainer.train()
    assert trainer.state.global_step == 0


def test_a_sampler_instance_as_batch_sampler_is_refused(pairs, tmp_path):
    model = tiny_encoder(seed=5)
    st = hbkit.st_training_kwargs("xy", 0.5, model)
    instance = hbkit.HybridBatchSampler(pairs, 8)
    trainer = _trainer(tmp_path, model, pairs, {**st.args, "batch_sampler": instance}, st.trainer)
    with pytest.raises(SamplerError, match="got a HybridBatchSampler instance.*make_sampler"):
        trainer.train()


def test_a_seed_given_to_make_sampler_wins_over_the_trainers(pairs, tmp_path):
    model = tiny_encoder(seed=5)
    factory = hbkit.make_sampler("hybrid", 0.5, seed=5)
    collator = hbkit.PairCollator(preprocess_fn=model.preprocess, prompts=model.prompts)
    trainer = _trainer(tmp_path, model, pairs, {"batch_sampler": factory, "seed": 42}, {"data_collator": collator},
                       steps=2)
    trainer.train()
    assert factory.last.seed == 5
    want = hbkit.HybridBatchSampler(pairs, 8, seed=5).plan(0)[:2]
    assert collator.seen[:2] == [f"xx:{b.lang}" if b.kind == "xx" else "xy" for b in want]


def test_wrong_prompts_no_model_or_a_bad_strategy_are_refused():
    model = tiny_encoder(seed=5)
    with pytest.raises(SamplerError, match="columns .*query.*passage"):
        hbkit.st_training_kwargs("hybrid", 0.5, model, prompts={"anchor": "q: "})
    with pytest.raises(SamplerError, match="needs the SentenceTransformer"):
        hbkit.st_training_kwargs("hybrid", 0.5)
    with pytest.raises(SamplerError, match="unknown strategy"):
        hbkit.st_training_kwargs("xz", 0.5, model)
    with pytest.raises(SamplerError, match="alpha=1.5"):
        hbkit.st_training_kwargs("hybrid", 1.5, model)
    assert hbkit.st_training_kwargs("xx", 0.5, model, prompts=None).data_collator.prompts == {}


def test_pair_collator_refuses_rows_another_sampler_drew(pairs, tiny):
    coll = hbkit.PairCollator(preprocess_fn=tiny.preprocess, prompts={})
    rows = [pairs[i] for i in range(4)]
    assert rows[0]["group"] != rows[1]["group"] or rows[2]["group"] != rows[3]["group"]
    with pytest.raises(SamplerError, match="of different groups: the batch was not drawn by an hbkit batch sampler"):
        coll(rows)
    with pytest.raises(SamplerError, match="even number of rows"):
        coll(rows[:3])


def test_accelerate_shards_keep_every_batch_whole(pairs):
    """accelerate's BatchSamplerShard drops a batch whose length is not the sampler's ``batch_size``: the
    attribute is rows (2 per pair), so under 2 processes every global batch reaches both, in two slices."""
    from accelerate.data_loader import BatchSamplerShard

    s = hbkit.HybridBatchSampler(pairs, 4, num_replicas=2, rank=None, seed=0)
    got = [list(BatchSamplerShard(s, 2, r)) for r in (0, 1)]
    assert len(got[0]) == len(got[1]) == s.n_batches
    assert all(len(b) == s.rows_per_batch == 8 for r in got for b in r)
    for (info, pairs_), a, b in zip(s.global_batches(), *got):
        assert a + b == pairs_.reshape(-1).tolist()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


DDP_SCRIPT = textwrap.dedent("""
    import json, os, sys
    import torch.distributed as dist
    from sentence_transformers import SentenceTransformerTrainer, SentenceTransformerTrainingArguments
    from sentence_transformers.sentence_transformer.losses import MultipleNegativesRankingLoss
    import hbkit
    from hbkit.encoders.load import tiny_encoder
    from hbkit.train.sampling import SamplerError

    pairs = hbkit.parallel_pairs(data_dir=os.environ["DATA"], languages=["en", "de", "es", "zh"])
    keep = set(sorted(set(pairs["group"]))[:96])
    pairs = pairs.filter(lambda r: r["group"] in keep)
    model = tiny_encoder(seed=5)
    out = {}
    def run(args_kw, trainer_kw):
        args = SentenceTransformerTrainingArguments(sys.argv[1], per_device_train_batch_size=4, max_steps=4,
                                                    report_to="none", use_cpu=True, save_strategy="no",
                                                    disable_tqdm=True, ddp_backend="gloo", **args_kw)
        t = SentenceTransformerTrainer(model=model, args=args, train_dataset=pairs,
                                       loss=MultipleNegativesRankingLoss(model), **trainer_kw)
        t.train()
        return t
    st = hbkit.st_training_kwargs("hybrid", 0.5, model, seed=1)
    t = run(st.args, st.trainer)
    s = st.batch_sampler.last
    out["world"] = dist.get_world_size()
    out["seen"] = st.data_collator.seen[:4]
    out["plan"] = [b.kind + (":" + b.lang if b.lang else "") for b in s.plan(0)[:4]]
    out["replicas"] = [s.num_replicas, s.rank]
    try:   # the bare class: every rank would draw alone, and a step would mix kinds
        run({"batch_sampler": hbkit.HybridBatchSampler, "seed": 1}, st.trainer)
        out["class"] = "trained"
    except SamplerError as e:
        out["class"] = str(e)
    print("RESULT " + json.dumps(out), flush=True)
""")


def test_two_process_ddp_every_step_is_one_batch_kind_and_the_bare_class_is_refused(tmp_path, data_dir):
    script = tmp_path / "ddp.py"
    script.write_text(DDP_SCRIPT)
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", "--master_addr=127.0.0.1",
           f"--master_port={_free_port()}", str(script), str(tmp_path / "out")]
    r = subprocess.run(cmd, env={**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "DATA": str(data_dir)},
                       capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, r.stderr[-3000:]
    results = [json.loads(line.split("RESULT ", 1)[1]) for line in r.stdout.splitlines() if "RESULT " in line]
    assert len(results) == 2 and all(x["world"] == 2 for x in results)
    assert results[0]["seen"] == results[1]["seen"] == results[0]["plan"]   # both ranks, step by step, one kind
    assert all(x["replicas"] == [2, None] for x in results)
    assert all("without num_replicas" in x["class"] and "make_sampler" in x["class"] for x in results)


def test_import_hbkit_loads_no_torch_and_the_notebooks_import_only_hbkit():
    code = "import sys, hbkit; print(sorted(m for m in ('torch', 'sentence_transformers', 'plotly') if m in sys.modules))"
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and r.stdout.strip() == "[]", r.stdout + r.stderr
    assert callable(hbkit.train) and hbkit.figures.__name__ == "hbkit.analysis.figures"
    assert "paired_bootstrap" not in dir(hbkit)
    with pytest.raises(AttributeError, match="no attribute 'nothing_here'"):
        hbkit.nothing_here
    from pathlib import Path
    for nb in sorted((Path(__file__).parent.parent / "notebooks").glob("*.ipynb")):
        cells = json.loads(nb.read_text())["cells"]
        code = "\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "code")
        internal = [line for line in code.splitlines() if line.lstrip().startswith(("from hbkit", "import hbkit."))]
        assert not internal, f"{nb.name} imports hbkit's internals: {internal}"
        for name in set(__import__("re").findall(r"\bhbkit\.(\w+)", code)):
            assert name in dir(hbkit), f"{nb.name} uses hbkit.{name}, which hbkit does not export"
