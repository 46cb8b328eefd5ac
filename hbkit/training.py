"""Contrastive fine-tuning, kept thin over sentence-transformers' trainer: config in, model folder out.

``train(encoder, pairs, config, out_dir)`` fine-tunes with InfoNCE over in-batch negatives
(``MultipleNegativesRankingLoss``; ``CachedMultipleNegativesRankingLoss`` when ``mini_batch_size`` is set)
on batches from :mod:`hbkit.sampling`, and writes to ``out_dir``:

* ``model/`` — the SentenceTransformer folder (best checkpoint by validation loss when there is a
  validation split) with ``hbkit_training.json`` (the config, strategy counts, final losses);
* ``train_log.jsonl`` — one line per step: step, loss, lr, batch kind and language(s);
* ``checkpoints/`` — every ``save_steps`` steps; a rerun of the same call resumes from the newest
  checkpoint with the same batches and reaches the same final weights as an uninterrupted run.
"""
from __future__ import annotations

import json
import logging
import os
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from .sampling import STRATEGIES, PairCollator, SamplerError, make_sampler

log = logging.getLogger(__name__)


@dataclass
class TrainConfig:
    """Everything that defines a training run (saved next to the model).

    Paper (arXiv 2408.10536) values: ``lr=3e-5``, ``weight_decay=0.01``, ``batch_size=100``, α = 0.5.
    ``scale`` is the inverse temperature of InfoNCE (sentence-transformers' default 20 = τ 0.05).
    """

    strategy: str = "hybrid"
    alpha: float = 0.5
    alpha_end: float | None = None
    language_weights: str = "uniform"
    batch_size: int = 32
    lr: float = 3e-5
    weight_decay: float = 0.01
    warmup_ratio: float = 0.1
    max_steps: int = 40
    scale: float = 20.0
    freeze_word_embeddings: bool = True
    freeze_layers: int = 0
    mini_batch_size: int | None = None
    val_groups: int = 0
    eval_steps: int = 20
    save_steps: int = 20
    seed: int = 0
    precision: str = "auto"  # auto | fp32 | bf16 | fp16
    max_seq_length: int = 128
    dropout: float | None = None  # set every dropout probability of the encoder (None: keep the model's)

    def __post_init__(self):
        if self.strategy not in STRATEGIES:
            raise SamplerError(f"strategy={self.strategy!r}: use one of {', '.join(STRATEGIES)}")
        if self.max_steps < 1 or self.batch_size < 2:
            raise ValueError(f"max_steps={self.max_steps} and batch_size={self.batch_size} must be >= 1 and >= 2")
        if self.precision not in ("auto", "fp32", "bf16", "fp16"):
            raise ValueError(f"precision={self.precision!r}: use auto, fp32, bf16 or fp16")


def _split_groups(pairs, val_groups: int, seed: int):
    if val_groups <= 0:
        return pairs, None
    groups = sorted(set(pairs["group"]))
    if val_groups >= len(groups):
        raise ValueError(f"val_groups={val_groups} leaves no training group (there are {len(groups)})")
    val = set(np.random.default_rng(seed).choice(groups, size=val_groups, replace=False).tolist())
    flags = [g in val for g in pairs["group"]]
    idx_val = [i for i, f in enumerate(flags) if f]
    idx_train = [i for i, f in enumerate(flags) if not f]
    return pairs.select(idx_train), pairs.select(idx_val)


def _freeze(model, config: TrainConfig) -> None:
    auto = model[0].auto_model
    if config.freeze_word_embeddings:
        auto.embeddings.word_embeddings.weight.requires_grad_(False)
    if config.freeze_layers:
        for layer in auto.encoder.layer[: config.freeze_layers]:
            layer.requires_grad_(False)
    if config.dropout is not None:
        import torch

        for m in model.modules():
            if isinstance(m, torch.nn.Dropout):
                m.p = config.dropout


def _callback(out_dir: Path, factory):
    from transformers import TrainerCallback
    from transformers.trainer_callback import ProgressCallback

    class BatchLog(TrainerCallback):
        """Writes train_log.jsonl and shows the running X-X / X-Y counts on the progress bar."""

        def __init__(self):
            self.counts = {"xx": 0, "xy": 0}
            self.plans: dict[int, list] = {}
            self.trainer = None

        def info(self, step: int):
            s = factory.last
            if s is None:
                return None
            epoch, b = divmod(step - 1, len(s))
            if epoch not in self.plans:
                self.plans[epoch] = s.plan(epoch)
            return self.plans[epoch][b]

        def on_log(self, args, state, control, logs=None, **kw):
            if not logs or "loss" not in logs or not state.is_world_process_zero:
                return
            info = self.info(state.global_step)
            rec = {"step": state.global_step, "loss": logs["loss"], "lr": logs.get("learning_rate"),
                   "batch": info.kind if info else None, "lang": info.lang if info else None}
            with open(out_dir / "train_log.jsonl", "a") as fh:
                fh.write(json.dumps(rec) + "\n")

        def on_step_end(self, args, state, control, **kw):
            info = self.info(state.global_step)
            if info:
                self.counts[info.kind] += 1
            for cb in (self.trainer.callback_handler.callbacks if self.trainer else []):
                if isinstance(cb, ProgressCallback) and getattr(cb, "training_bar", None) is not None:
                    cb.training_bar.set_postfix(xx=self.counts["xx"], xy=self.counts["xy"], refresh=False)

        def on_evaluate(self, args, state, control, metrics=None, **kw):
            if metrics and state.is_world_process_zero:
                with open(out_dir / "train_log.jsonl", "a") as fh:
                    fh.write(json.dumps({"step": state.global_step, **{k: v for k, v in metrics.items()
                                                                          if isinstance(v, (int, float))}}) + "\n")

    return BatchLog()


def _count_kinds(batch_log, steps: int) -> dict[str, int]:
    counts = {"xx": 0, "xy": 0}
    for s in range(1, steps + 1):
        info = batch_log.info(s)
        if info:
            counts[info.kind] += 1
    return counts


def _warmup(ratio: float) -> dict:
    """transformers >= 5 takes the warm-up ratio as a float ``warmup_steps``; older versions as ``warmup_ratio``."""
    import transformers

    return {"warmup_steps": float(ratio)} if int(transformers.__version__.split(".")[0]) >= 5 else {"warmup_ratio": ratio}


def _world_size_env() -> int:
    """World size as torchrun / accelerate launch set it (before torch.distributed is initialised)."""
    return int(os.environ.get("WORLD_SIZE", "1"))


def _latest_checkpoint(folder: Path) -> str | None:
    cps = sorted(folder.glob("checkpoint-*"), key=lambda p: int(p.name.split("-")[1])) if folder.is_dir() else []
    cps = [c for c in cps if (c / "trainer_state.json").is_file()]
    return str(cps[-1]) if cps else None


def train(encoder, pairs, config: TrainConfig | None = None, out_dir: str | os.PathLike = "runs/train",
          resume: bool = True, progress: bool = True, callbacks: list | None = None) -> Path:
    """Fine-tune ``encoder`` (a SentenceTransformer, changed in place) on ``pairs`` with ``config.strategy``.

    Returns the path of the saved model folder (``out_dir/model``). With ``resume=True`` an interrupted run
    continues from the newest checkpoint in ``out_dir/checkpoints``.
    """
    import torch
    from sentence_transformers import SentenceTransformerTrainer, SentenceTransformerTrainingArguments
    from sentence_transformers.sentence_transformer import losses

    config = config or TrainConfig()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    ckpt_dir = out_dir / "checkpoints"
    resume_from = _latest_checkpoint(ckpt_dir) if resume else None
    if not resume_from:
        (out_dir / "train_log.jsonl").unlink(missing_ok=True)
    encoder.max_seq_length = min(encoder.max_seq_length or config.max_seq_length, config.max_seq_length)
    _freeze(encoder, config)
    train_pairs, val_pairs = _split_groups(pairs, config.val_groups, config.seed)

    factory = make_sampler(config.strategy, config.alpha, alpha_end=config.alpha_end,
                           language_weights=config.language_weights, track_size=len(train_pairs))

    cuda = torch.cuda.is_available()
    bf16 = config.precision == "bf16" or (config.precision == "auto" and cuda and torch.cuda.is_bf16_supported())
    fp16 = config.precision == "fp16" or (config.precision == "auto" and cuda and not bf16)
    args = SentenceTransformerTrainingArguments(
        output_dir=str(ckpt_dir), max_steps=config.max_steps, per_device_train_batch_size=config.batch_size,
        per_device_eval_batch_size=config.batch_size, learning_rate=config.lr, weight_decay=config.weight_decay,
        **_warmup(config.warmup_ratio), seed=config.seed, data_seed=config.seed, batch_sampler=factory,
        prompts=dict(encoder.prompts) if encoder.prompts else None, logging_steps=1, save_steps=config.save_steps,
        save_total_limit=2, eval_strategy="steps" if val_pairs is not None else "no",
        eval_steps=config.eval_steps if val_pairs is not None else None,
        load_best_model_at_end=val_pairs is not None, metric_for_best_model="eval_loss" if val_pairs is not None else None,
        bf16=bf16, fp16=fp16, report_to="none", disable_tqdm=not progress, dataloader_drop_last=True,
        use_cpu=not cuda, ddp_backend=None if cuda or _world_size_env() == 1 else "gloo",
    )
    # several processes: in-batch negatives are gathered from every rank (with gradients), so N processes at
    # batch B train like one process at batch N*B
    gather = _world_size_env() > 1
    loss = (losses.CachedMultipleNegativesRankingLoss(encoder, scale=config.scale, mini_batch_size=config.mini_batch_size,
                                                      gather_across_devices=gather)
            if config.mini_batch_size else
            losses.MultipleNegativesRankingLoss(encoder, scale=config.scale, gather_across_devices=gather))
    batch_log = _callback(out_dir, factory)
    trainer = SentenceTransformerTrainer(
        model=encoder, args=args, train_dataset=train_pairs, eval_dataset=val_pairs, loss=loss,
        data_collator=PairCollator(preprocess_fn=encoder.preprocess, prompts=args.prompts),
        callbacks=[batch_log, *(callbacks or [])])
    batch_log.trainer = trainer
    result = trainer.train(resume_from_checkpoint=resume_from)
    if _world_size_env() > 1:  # what this rank actually collated, for checking that ranks agree
        rank = int(os.environ.get("RANK", "0"))
        (out_dir / f"batches_seen.rank{rank}.json").write_text(json.dumps(trainer.data_collator.seen))
    if not trainer.is_world_process_zero():
        return out_dir / "model"
    model_dir = out_dir / "model"
    shutil.rmtree(model_dir, ignore_errors=True)
    trainer.save_model(str(model_dir))
    history = [h for h in trainer.state.log_history if "loss" in h]
    card = {"config": asdict(config), "base_model": getattr(encoder, "model_card_data", None) and
            encoder.model_card_data.base_model, "steps": trainer.state.global_step,
            "batch_counts": _count_kinds(batch_log, trainer.state.global_step), "resumed_from": resume_from,
            "first_loss": history[0]["loss"] if history else None, "last_loss": history[-1]["loss"] if history else None,
            "best_eval_loss": trainer.state.best_metric, "train_runtime_s": result.metrics.get("train_runtime")}
    (model_dir / "hbkit_training.json").write_text(json.dumps(card, indent=1, default=str))
    return model_dir
