"""Training on the tiny encoder: each strategy lowers the loss; an interrupted run resumes to the same weights."""
import dataclasses
import json

import pytest
import torch
from transformers import TrainerCallback

from hbkit.encoders.load import tiny_encoder
from hbkit.train.config import TrainConfig
from hbkit.train.trainer import train


@pytest.fixture(scope="module")
def pairs(data_dir):
    from hbkit.data.benchmarks import parallel_pairs
    p = parallel_pairs(data_dir=data_dir, languages=["en", "de", "es", "zh"])
    keep = set(sorted(set(p["group"]))[:160])
    return p.filter(lambda r: r["group"] in keep)


def fixed_loss(model, pairs, n=64):
    """InfoNCE of a fixed mixed batch (queries en, passages de) — the same for every strategy."""
    from sentence_transformers.sentence_transformer.losses import MultipleNegativesRankingLoss
    df = pairs.to_pandas()
    en = df[df.lang == "en"].set_index("group")
    de = df[df.lang == "de"].set_index("group")
    groups = list(en.index[:n])
    model.eval()
    with torch.no_grad():
        feats = [model.tokenize([f"query: {q}" for q in en.loc[groups, "query"]]),
                 model.tokenize([f"passage: {p}" for p in de.loc[groups, "passage"]])]
        return MultipleNegativesRankingLoss(model)(feats, None).item()


@pytest.mark.parametrize("strategy", ["xx", "xy", "hybrid"])
def test_short_run_lowers_loss(strategy, pairs, tmp_path):
    model = tiny_encoder(seed=1)
    before = fixed_loss(model, pairs)
    cfg = TrainConfig(strategy=strategy, batch_size=16, max_steps=30, lr=2e-3, warmup_ratio=0.0,
                      freeze_word_embeddings=False, save_steps=100, seed=0)
    out = train(model, pairs, cfg, tmp_path / strategy, progress=False)
    after = fixed_loss(model, pairs)
    assert after < before - 0.05, (before, after)
    card = json.loads((out / "hbkit_training.json").read_text())
    assert card["steps"] == 30 and sum(card["batch_counts"].values()) == 30
    if strategy == "xx":
        assert card["batch_counts"]["xy"] == 0
    if strategy == "xy":
        assert card["batch_counts"]["xx"] == 0
    log = [json.loads(l) for l in (tmp_path / strategy / "train_log.jsonl").read_text().splitlines()]
    steps = [r for r in log if "loss" in r]
    assert len(steps) == 30 and all(r["batch"] in ("xx", "xy") for r in steps)


class Interrupt(TrainerCallback):
    def on_step_end(self, args, state, control, **kw):
        if state.global_step == 7:  # after the checkpoint at step 6, one step into the second epoch
            raise KeyboardInterrupt


def test_resume_gives_same_weights(pairs, tmp_path):
    """40 groups at batch 8: 5 batches per epoch. Interrupted at step 7 and resumed from checkpoint 6 (mid-way
    through epoch 2), the run equals an uninterrupted one: same batches, losses, counts and weights."""
    keep = set(sorted(set(pairs["group"]))[:40])
    pairs = pairs.filter(lambda r: r["group"] in keep)
    cfg = TrainConfig(strategy="hybrid", batch_size=8, max_steps=8, lr=1e-3, save_steps=3, seed=3,
                      freeze_word_embeddings=False, val_groups=0, dropout=0.0)
    full = train(tiny_encoder(seed=2), pairs, cfg, tmp_path / "full", progress=False)
    with pytest.raises(KeyboardInterrupt):
        train(tiny_encoder(seed=2), pairs, cfg, tmp_path / "cut", progress=False, callbacks=[Interrupt()])
    assert (tmp_path / "cut" / "checkpoints" / "checkpoint-6").is_dir()
    resumed = train(tiny_encoder(seed=2), pairs, cfg, tmp_path / "cut", progress=False)
    card = json.loads((resumed / "hbkit_training.json").read_text())
    assert card["resumed_from"].endswith("checkpoint-6")
    from safetensors.torch import load_file
    a = load_file(next(full.rglob("model.safetensors")))
    b = load_file(next(resumed.rglob("model.safetensors")))
    assert a.keys() == b.keys()
    for k in a:
        torch.testing.assert_close(a[k], b[k], atol=1e-6, rtol=0, msg=k)
    # the resumed run logged every step once, with the batch types and losses of the uninterrupted run
    la = [json.loads(l) for l in (tmp_path / "full" / "train_log.jsonl").read_text().splitlines() if '"loss"' in l]
    lb = [json.loads(l) for l in (tmp_path / "cut" / "train_log.jsonl").read_text().splitlines() if '"loss"' in l]
    assert [r["step"] for r in lb] == list(range(1, 9))
    assert [(r["batch"], r["lang"]) for r in la] == [(r["batch"], r["lang"]) for r in lb]
    assert [r["loss"] for r in la] == pytest.approx([r["loss"] for r in lb], abs=1e-5)
    assert card["batch_counts"] == json.loads((full / "hbkit_training.json").read_text())["batch_counts"]
    # running the finished run again trains nothing and changes nothing
    again = train(tiny_encoder(seed=2), pairs, cfg, tmp_path / "cut", progress=False)
    assert json.loads((again / "hbkit_training.json").read_text())["steps"] == 8
    assert len([l for l in (tmp_path / "cut" / "train_log.jsonl").read_text().splitlines() if '"loss"' in l]) == 8


def test_folder_of_another_set_up_is_refused(pairs, tmp_path):
    from hbkit.train.config import TrainError
    cfg = TrainConfig(strategy="xx", batch_size=8, max_steps=2, lr=1e-3, save_steps=1, freeze_word_embeddings=False)
    train(tiny_encoder(seed=2), pairs, cfg, tmp_path, progress=False)
    other = TrainConfig(strategy="hybrid", batch_size=8, max_steps=2, lr=1e-3, save_steps=1, freeze_word_embeddings=False)
    with pytest.raises(TrainError, match="config.strategy"):
        train(tiny_encoder(seed=2), pairs, other, tmp_path, progress=False)
    with pytest.raises(TrainError, match="data"):
        train(tiny_encoder(seed=2), pairs.select(range(len(pairs) - 10)), cfg, tmp_path, progress=False)
    out = train(tiny_encoder(seed=2), pairs, other, tmp_path, progress=False, resume=False)
    card = json.loads((out / "hbkit_training.json").read_text())
    assert card["config"]["strategy"] == "hybrid" and card["batch_counts"]["xx"] + card["batch_counts"]["xy"] == 2


def test_config_is_validated():
    with pytest.raises(ValueError, match="alpha=1.5"):
        TrainConfig(alpha=1.5)
    with pytest.raises(ValueError, match="max_steps"):
        TrainConfig(max_steps=0)
    with pytest.raises(ValueError, match="lr"):
        TrainConfig(lr=-1)


def test_validation_split_and_best_model(pairs, tmp_path):
    cfg = TrainConfig(strategy="xy", batch_size=8, max_steps=6, lr=1e-3, val_groups=24, eval_steps=3, save_steps=3,
                      freeze_word_embeddings=False)
    out = train(tiny_encoder(seed=4), pairs, cfg, tmp_path, progress=False)
    card = json.loads((out / "hbkit_training.json").read_text())
    assert card["best_metric"] is not None and card["metric_for_best_model"] == "eval_loss"


class Scripted:
    """A sentence-transformers evaluator whose score per call is given: the best step is known in advance."""

    def __init__(self, scores):
        from sentence_transformers.evaluation import SentenceEvaluator

        class _E(SentenceEvaluator):
            def __init__(self):
                super().__init__()
                self.name, self.primary_metric, self.greater_is_better, self.calls = "scripted", "score", True, 0

            def __call__(self, model, output_path=None, epoch=-1, steps=-1):
                v = scores[min(self.calls, len(scores) - 1)]
                self.calls += 1
                return self.prefix_name_to_metrics({"score": v}, self.name)
        self.evaluator = _E()


def test_early_stopping_keeps_the_best_checkpoint(pairs, tmp_path):
    """Scores 0.1, 0.5 (best, step 4), 0.3, 0.2: patience 2 stops after step 8 and the saved model is step 4's."""
    from safetensors.torch import load_file
    cfg = TrainConfig(strategy="xy", batch_size=8, max_steps=20, lr=1e-3, val_groups=24, eval_steps=2, save_steps=2,
                      early_stopping_patience=2, freeze_word_embeddings=False, dropout=0.0, keep_checkpoints=True)
    ev = Scripted([0.1, 0.5, 0.3, 0.2, 0.1]).evaluator
    out = train(tiny_encoder(seed=4), pairs, cfg, tmp_path, progress=False, evaluator=ev)
    card = json.loads((out / "hbkit_training.json").read_text())
    assert card["steps"] == 8 and card["stopped_early"] and card["best_metric"] == 0.5
    assert card["metric_for_best_model"] == "eval_scripted_score" and card["best_checkpoint"].endswith("checkpoint-4")
    best = load_file(next((tmp_path / "checkpoints" / "checkpoint-4").rglob("model.safetensors")))
    saved = load_file(next(out.rglob("model.safetensors")))
    for k in best:
        torch.testing.assert_close(saved[k], best[k], atol=0, rtol=0, msg=k)
    assert "hbkit-strategy-xy" in (out / "README.md").read_text()


def test_sampler_drops_into_sentence_transformer_trainer(pairs, tmp_path):
    """The README's example: hbkit's sampler and collator in a plain SentenceTransformerTrainer."""
    from sentence_transformers import SentenceTransformerTrainer, SentenceTransformerTrainingArguments
    from sentence_transformers.sentence_transformer.losses import MultipleNegativesRankingLoss

    import hbkit
    model = tiny_encoder(seed=5)
    factory = hbkit.make_sampler("hybrid", alpha=0.5)
    args = SentenceTransformerTrainingArguments(str(tmp_path), batch_sampler=factory, per_device_train_batch_size=8,
                                                prompts=model.prompts, max_steps=3, report_to="none", use_cpu=True,
                                                save_strategy="no", disable_tqdm=True)
    collator = hbkit.PairCollator(preprocess_fn=model.preprocess, prompts=model.prompts)
    trainer = SentenceTransformerTrainer(model=model, args=args, train_dataset=pairs,
                                         loss=MultipleNegativesRankingLoss(model), data_collator=collator)
    trainer.train()
    assert trainer.state.global_step == 3 and isinstance(factory.last, hbkit.HybridBatchSampler)
    kinds = [k.split(":")[0] for k in collator.seen[:3]]
    assert kinds == [b.kind for b in factory.last.plan()[:3]]


def test_freeze_works_for_any_architecture():
    from hbkit.train.trainer import _freeze
    m = tiny_encoder(seed=1)
    _freeze(m, TrainConfig(freeze_word_embeddings=True, freeze_layers=1))
    auto = m[0].auto_model
    assert not auto.get_input_embeddings().weight.requires_grad
    assert not any(p.requires_grad for p in auto.encoder.layer[0].parameters())
    assert all(p.requires_grad for p in auto.encoder.layer[1].parameters())


def test_resume_reads_a_log_whose_last_line_a_kill_cut_short(tmp_path, caplog):
    """The records up to the checkpoint are kept; the cut line is named and left out (its step is trained again)."""
    from hbkit.core.files import read_jsonl
    from hbkit.train.run_folder import prepare_folder
    ident = {"config": {"a": 1}, "base": "x", "data": "y"}
    prepare_folder(tmp_path, ident, resume=True)
    (tmp_path / "checkpoints" / "checkpoint-2").mkdir(parents=True)
    (tmp_path / "checkpoints" / "checkpoint-2" / "trainer_state.json").write_text("{}")
    (tmp_path / "train_log.jsonl").write_text('{"step": 1, "loss": 2.0}\n{"step": 2, "loss": 1.9}\n{"step": 3, "lo')
    prepare_folder(tmp_path, ident, resume=True)
    assert [r["step"] for r in read_jsonl(tmp_path / "train_log.jsonl")] == [1, 2] and "cut short" in caplog.text
    (tmp_path / "train_config.json").write_text('{"config": ')
    with pytest.raises(ValueError, match="train_config.json is damaged"):
        prepare_folder(tmp_path, ident, resume=True)


class KillBeforeSave(TrainerCallback):
    def on_train_end(self, args, state, control, **kw):  # the last checkpoint is written, the model is not
        raise KeyboardInterrupt


def test_resume_from_the_final_checkpoint_trains_nothing_more(pairs, tmp_path):
    """Killed between the last checkpoint and the model's save, the rerun saves that checkpoint's weights: the
    same number of steps and the same weights as an uninterrupted run (a constant learning rate would show an
    extra step), and no temporary model folder of the dead process is left."""
    import os
    keep = set(sorted(set(pairs["group"]))[:40])
    pairs = pairs.filter(lambda r: r["group"] in keep)
    cfg = TrainConfig(strategy="hybrid", batch_size=8, max_steps=6, lr=1e-3, save_steps=3, seed=3, warmup_ratio=0.0,
                      freeze_word_embeddings=False, val_groups=0, dropout=0.0,
                      training_args={"lr_scheduler_type": "constant"})
    full = train(tiny_encoder(seed=2), pairs, cfg, tmp_path / "full", progress=False)
    with pytest.raises(KeyboardInterrupt):
        train(tiny_encoder(seed=2), pairs, cfg, tmp_path / "cut", progress=False, callbacks=[KillBeforeSave()])
    assert (tmp_path / "cut" / "checkpoints" / "checkpoint-6").is_dir() and not (tmp_path / "cut" / "model").exists()
    dead = tmp_path / "cut" / ".model.999999999.0badc0de.tmp"   # what a kill -9 mid-save leaves (no such PID)
    dead.mkdir()
    (dead / "model.safetensors").write_bytes(b"partial")
    resumed = train(tiny_encoder(seed=2), pairs, cfg, tmp_path / "cut", progress=False)
    card = json.loads((resumed / "hbkit_training.json").read_text())
    assert card["steps"] == 6 and card["resumed_from"].endswith("checkpoint-6")
    assert card["batch_counts"] == json.loads((full / "hbkit_training.json").read_text())["batch_counts"]
    from safetensors.torch import load_file
    a = load_file(next(full.rglob("model.safetensors")))
    b = load_file(next(resumed.rglob("model.safetensors")))
    for k in a:
        torch.testing.assert_close(a[k], b[k], atol=1e-7, rtol=0, msg=k)
    assert not dead.exists()
    assert [p.name for p in (tmp_path / "cut").iterdir() if p.name.startswith(".")] == []
    lb = [json.loads(l) for l in (tmp_path / "cut" / "train_log.jsonl").read_text().splitlines() if '"loss"' in l]
    assert [r["step"] for r in lb] == list(range(1, 7))
    assert os.getpid() != 999999999


def test_pairs_with_a_sparse_extra_column_train(pairs, tmp_path):
    """A user's JSONL with an extra key on some rows only (null elsewhere) trains: only the contract's columns
    reach the trainer (its model card once read every string column and crashed on the nulls)."""
    from hbkit.data.pairs import read_pairs
    df = pairs.to_pandas()
    df = df[df.group.isin(sorted(set(df.group))[:20])]
    path = tmp_path / "pairs.jsonl"
    with open(path, "w") as fh:
        for i, r in enumerate(df[["group", "lang", "query", "passage"]].to_dict("records")):
            r = {**r, "note": "checked"} if i % 3 == 0 else {**r, "note": None} if i % 3 == 1 else r
            fh.write(json.dumps(r) + "\n")
    ds = read_pairs(path)
    assert "note" in ds.column_names
    cfg = TrainConfig(strategy="hybrid", batch_size=4, max_steps=2, save_steps=10, val_groups=0)
    out = train(tiny_encoder(seed=1), ds, cfg, tmp_path / "out", progress=False)
    assert json.loads((out / "hbkit_training.json").read_text())["steps"] == 2


def test_cli_train_validates_the_pairs_before_loading_a_model(tmp_path, capsys):
    """A bad pairs file is refused, naming its line, before the (here impossible) model load is tried."""
    from hbkit.app.cli import main
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"group": "g1", "lang": "en", "query": "q", "passage": "p"}\n{"group": "g1", "lang": "de"\n')
    rc = main(["train", "--corpus", str(bad), "--model", str(tmp_path / "no-such-model"), "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert rc == 2 and "bad.jsonl: line 2: malformed JSON" in err and "no-such-model" not in err


def test_cancel_stops_cleanly_and_a_rerun_resumes(pairs, tmp_path):
    """The dashboard's Cancel: the event set during step 4 stops the run at that step's end with RunCancelled;
    no model folder is written (it cannot pass for a finished run), checkpoint 3 stays, and a rerun resumes
    from it to the full number of steps."""
    import threading

    from hbkit.train.trainer import RunCancelled, cancel_callback

    keep = set(sorted(set(pairs["group"]))[:40])
    pairs = pairs.filter(lambda r: r["group"] in keep)
    cfg = TrainConfig(strategy="hybrid", batch_size=8, max_steps=6, lr=1e-3, save_steps=3, seed=3,
                      freeze_word_embeddings=False, val_groups=0, dropout=0.0)
    event = threading.Event()

    class SetAt4(TrainerCallback):
        def on_step_begin(self, args, state, control, **kw):
            if state.global_step == 3:   # step 4 is running
                event.set()

    with pytest.raises(RunCancelled, match="cancelled at step 4"):
        train(tiny_encoder(seed=2), pairs, cfg, tmp_path, progress=False, callbacks=[SetAt4(), cancel_callback(event)])
    assert not (tmp_path / "model").exists() and (tmp_path / "checkpoints" / "checkpoint-3").is_dir()
    done = train(tiny_encoder(seed=2), pairs, cfg, tmp_path, progress=False)
    card = json.loads((done / "hbkit_training.json").read_text())
    assert card["steps"] == 6 and card["resumed_from"].endswith("checkpoint-3")


def test_compare_cancelled_before_the_first_model_writes_no_model(data_dir, tmp_path):
    import threading

    from hbkit.experiment.compare import compare
    from hbkit.train.trainer import RunCancelled

    event = threading.Event()
    event.set()
    seen = []
    with pytest.raises(RunCancelled, match="cancelled before"):
        compare("ci", tmp_path / "run", data_dir=data_dir, progress=False, seeds=[0], on_progress=seen.append,
                cancel=event)
    assert not (tmp_path / "run" / "models").exists() and seen == []


def test_data_no_batch_can_be_made_of_is_refused_before_anything_is_written(tmp_path):
    """Groups each in one language cannot give an X-Y batch: refused before the run folder is made; and a folder
    that holds another set-up but nothing trained (no checkpoint, no model) is not 'another set-up' to refuse."""
    import json

    import datasets

    from hbkit.encoders.load import tiny_encoder
    from hbkit.train.config import TrainConfig
    from hbkit.train.sampling import SamplerError
    from hbkit.train.trainer import train
    rows = [{"group": f"g{i}", "lang": ("en", "de")[i % 2], "query": f"question {i}", "passage": f"answer {i}",
             "answer_key": f"g{i}"} for i in range(40)]
    one_lang = datasets.Dataset.from_list(rows)
    with pytest.raises(SamplerError, match="each in one language"):
        train(tiny_encoder(), one_lang, TrainConfig(strategy="xy", batch_size=4, max_steps=2), tmp_path / "run",
              progress=False)
    assert not (tmp_path / "run").exists()
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "train_config.json").write_text(json.dumps({"config": {"strategy": "xy"}, "base_model": "x"}))
    model = train(tiny_encoder(), one_lang, TrainConfig(strategy="xx", batch_size=4, max_steps=2, save_steps=10),
                  tmp_path / "run", progress=False)
    assert (model / "hbkit_training.json").is_file()


def test_fused_adamw_gives_the_first_losses_of_the_plain_path(pairs, tmp_path):
    """TrainConfig.optim="adamw_torch_fused" (benchmarks/bench_trainer.py times it): the same batches and the
    same losses as the plain AdamW, to float tolerance, and a folder trained before the option existed (the
    default) keeps its identity."""
    from hbkit.train.run_folder import run_identity

    logs, fixed = {}, {}
    before = fixed_loss(tiny_encoder(seed=1), pairs)
    for optim in ("adamw_torch", "adamw_torch_fused"):
        cfg = TrainConfig(strategy="hybrid", batch_size=8, max_steps=6, lr=2e-3, warmup_ratio=0.0, dropout=0.0,
                          freeze_word_embeddings=False, save_steps=100, seed=3, optim=optim)
        model = tiny_encoder(seed=1)
        train(model, pairs, cfg, tmp_path / optim, progress=False)
        fixed[optim] = fixed_loss(model, pairs)
        logs[optim] = [json.loads(l) for l in (tmp_path / optim / "train_log.jsonl").read_text().splitlines()]
    plain, fused = logs["adamw_torch"], logs["adamw_torch_fused"]
    assert [r["batch"] for r in plain] == [r["batch"] for r in fused]
    assert [r["loss"] for r in fused] == pytest.approx([r["loss"] for r in plain], rel=1e-4, abs=1e-5)
    assert fixed["adamw_torch"] < before - 0.01   # the steps did train
    assert fixed["adamw_torch_fused"] == pytest.approx(fixed["adamw_torch"], rel=1e-4)
    ident = run_identity(tiny_encoder(seed=1), pairs, TrainConfig())
    assert "optim" not in ident["config"]
    assert run_identity(tiny_encoder(seed=1), pairs, TrainConfig(optim="adamw_torch_fused"))["config"]["optim"] \
        == "adamw_torch_fused"
    with pytest.raises(ValueError, match="optim='sgd'"):
        TrainConfig(optim="sgd")


def test_gradient_checkpointing_trains_the_same_model_with_dropout_on(pairs, tmp_path):
    """TrainConfig.gradient_checkpointing (None: on for CPU training, where the main job's memory is bounded):
    the activations are recomputed with the same dropout masks, so the losses and the trained model equal the
    path that keeps them; the option is not part of a folder's identity (a run may resume with it changed)."""
    from transformers import TrainerCallback

    from hbkit.train.run_folder import run_identity

    class Seen(TrainerCallback):   # whether the model recomputes its activations while it trains
        def on_step_begin(self, args, state, control, model=None, **kw):
            self.on = any(getattr(m, "gradient_checkpointing", False) for m in model.modules())

    logs, fixed, used = {}, {}, {}
    for ckpt in (False, None):
        cfg = TrainConfig(strategy="hybrid", batch_size=8, max_steps=5, lr=2e-3, warmup_ratio=0.0,
                          freeze_word_embeddings=True, save_steps=100, seed=3, gradient_checkpointing=ckpt)
        model = tiny_encoder(seed=1)
        assert any(m.p > 0 for m in model.modules() if isinstance(m, torch.nn.Dropout))   # dropout is on
        seen = Seen()
        train(model, pairs, cfg, tmp_path / str(ckpt), progress=False, callbacks=[seen])
        used[ckpt] = seen.on
        assert not any(getattr(m, "gradient_checkpointing", False) for m in model.modules())   # off again
        fixed[ckpt] = fixed_loss(model, pairs)
        logs[ckpt] = [json.loads(l) for l in (tmp_path / str(ckpt) / "train_log.jsonl").read_text().splitlines()]
    assert used == {False: False, None: True}
    assert [r["batch"] for r in logs[False]] == [r["batch"] for r in logs[None]]
    assert [r["loss"] for r in logs[None]] == pytest.approx([r["loss"] for r in logs[False]], rel=1e-4, abs=1e-5)
    assert fixed[None] == pytest.approx(fixed[False], rel=1e-4)
    assert run_identity(tiny_encoder(seed=1), pairs, TrainConfig(gradient_checkpointing=True)) == \
        run_identity(tiny_encoder(seed=1), pairs, TrainConfig(gradient_checkpointing=False))
    with pytest.raises(ValueError, match="gradient_checkpointing='yes'"):
        TrainConfig(gradient_checkpointing="yes")


def test_checkpoints_are_removed_once_the_model_is_saved(pairs, tmp_path, monkeypatch):
    """A finished model keeps model/ and its log, not checkpoints/ (weights and optimizer state: most of a
    folder). A kill between the save and the pruning leaves them; the next call finds the model trained and
    removes them, and keep_checkpoints keeps them."""
    from hbkit.train import trainer as trainer_module

    cfg = TrainConfig(strategy="xy", batch_size=8, max_steps=4, save_steps=2, lr=1e-3, freeze_word_embeddings=False)
    real = trainer_module.prune_checkpoints
    monkeypatch.setattr(trainer_module, "prune_checkpoints", lambda out: None)   # "killed" right after the save
    out = train(tiny_encoder(seed=2), pairs, cfg, tmp_path / "run", progress=False)
    assert (tmp_path / "run" / "checkpoints" / "checkpoint-4").is_dir()
    monkeypatch.setattr(trainer_module, "prune_checkpoints", real)
    again = train(tiny_encoder(seed=2), pairs, cfg, tmp_path / "run", progress=False)
    assert again == out and not (tmp_path / "run" / "checkpoints").exists()
    again = train(tiny_encoder(seed=2), pairs, cfg, tmp_path / "run", progress=False)   # nothing left to trim to:
    log_lines = (tmp_path / "run" / "train_log.jsonl").read_text().splitlines()      # the log stays whole
    assert len([line for line in log_lines if '"loss"' in line]) == 4
    assert (out / "hbkit_training.json").is_file() and (tmp_path / "run" / "train_log.jsonl").is_file()
    assert [p.name for p in (tmp_path / "run").iterdir() if p.name.endswith(".tmp")] == []
    kept = train(tiny_encoder(seed=2), pairs, dataclasses.replace(cfg, keep_checkpoints=True), tmp_path / "kept",
                 progress=False)
    assert kept.is_dir() and (tmp_path / "kept" / "checkpoints" / "checkpoint-4").is_dir()


@pytest.mark.parametrize("progress", [True, False])
def test_progress_shows_the_loss_on_the_bar_not_one_dict_per_step(pairs, tmp_path, capfd, progress):
    """With progress bars on, the trainer prints no dict per logged step (every step is logged): the bar shows
    the running loss, and train_log.jsonl has every step. With them off (notebooks, benchmarks) no dict either,
    and the run's one summary line stays."""
    cfg = TrainConfig(strategy="hybrid", batch_size=8, max_steps=6, save_steps=3, lr=1e-3, freeze_word_embeddings=False)
    train(tiny_encoder(seed=1), pairs, cfg, tmp_path, progress=progress)
    out, err = capfd.readouterr()
    assert "'loss'" not in out + err and ("loss=" in err) == progress   # the bar's postfix: loss=..., xx=..., xy=...
    assert progress or "train_runtime" in out
    assert [json.loads(line)["step"] for line in (tmp_path / "train_log.jsonl").read_text().splitlines()] == [1, 2, 3, 4,
                                                                                                             5, 6]


def test_padding_to_a_multiple_gives_the_losses_of_the_plain_path(pairs, tmp_path):
    """TrainConfig.pad_to_multiple_of (fewer batch shapes for a GPU; gpu_check.py times it): each batch's token
    length is a multiple of N, and with dropout off the steps' losses are the unpadded path's (padding is masked
    out of attention and pooling). A folder trained before the option existed (none) keeps its identity; a bad N is
    refused in one line that names it and max_seq_length."""
    from hbkit.train.run_folder import run_identity
    from hbkit.train.trainer import _preprocess

    enc = tiny_encoder(seed=1)
    feats = _preprocess(enc, TrainConfig(pad_to_multiple_of=8))(["query: one two three four five six seven"])
    plain = _preprocess(enc, TrainConfig())(["query: one two three four five six seven"])
    assert feats["input_ids"].shape[1] % 8 == 0 and feats["input_ids"].shape[1] > plain["input_ids"].shape[1]
    logs = {}
    for pad in (None, 8):
        cfg = TrainConfig(strategy="hybrid", batch_size=8, max_steps=5, lr=2e-3, warmup_ratio=0.0, dropout=0.0,
                          freeze_word_embeddings=False, save_steps=100, seed=3, pad_to_multiple_of=pad)
        train(tiny_encoder(seed=1), pairs, cfg, tmp_path / str(pad), progress=False)
        logs[pad] = [json.loads(l) for l in (tmp_path / str(pad) / "train_log.jsonl").read_text().splitlines()]
    assert [r["batch"] for r in logs[8]] == [r["batch"] for r in logs[None]]
    assert [r["loss"] for r in logs[8]] == pytest.approx([r["loss"] for r in logs[None]], rel=1e-4, abs=1e-5)
    assert "pad_to_multiple_of" not in run_identity(tiny_encoder(seed=1), pairs, TrainConfig())["config"]
    for bad in (0, 48, 2.0, True):
        with pytest.raises(ValueError, match=rf"pad_to_multiple_of={bad!r}.*max_seq_length=128"):
            TrainConfig(pad_to_multiple_of=bad)


def test_dataloader_workers_tokenise_the_same_batches(pairs, tmp_path):
    """TrainConfig.dataloader_workers (the collator in worker processes, off the training loop): the same
    batches, kinds and losses as tokenising in the training process, every batch still recorded by the trainer
    (the collator's own list stays in the worker), and the same folder identity (a run may resume with another
    number of workers)."""
    from hbkit.train.run_folder import run_identity

    logs = {}
    for workers in (0, 2):
        cfg = TrainConfig(strategy="hybrid", batch_size=8, max_steps=4, lr=2e-3, warmup_ratio=0.0, dropout=0.0,
                          save_steps=100, seed=5, dataloader_workers=workers)
        train(tiny_encoder(seed=1), pairs, cfg, tmp_path / str(workers), progress=False)
        logs[workers] = [json.loads(l) for l in (tmp_path / str(workers) / "train_log.jsonl").read_text().splitlines()]
    assert len(logs[2]) == 4 and all(r["batch"] in ("xx", "xy") for r in logs[2])
    assert [(r["batch"], r["lang"]) for r in logs[2]] == [(r["batch"], r["lang"]) for r in logs[0]]
    assert [r["loss"] for r in logs[2]] == pytest.approx([r["loss"] for r in logs[0]], rel=1e-5)
    assert run_identity(tiny_encoder(seed=1), pairs, TrainConfig(dataloader_workers=3)) == \
        run_identity(tiny_encoder(seed=1), pairs, TrainConfig())
    with pytest.raises(ValueError, match="dataloader_workers=-1"):
        TrainConfig(dataloader_workers=-1)
