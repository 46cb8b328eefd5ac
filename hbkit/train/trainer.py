"""Contrastive fine-tuning over sentence-transformers' trainer: config in, model folder out.

``train(encoder, pairs, config, out_dir)`` fine-tunes with InfoNCE over in-batch negatives
(``MultipleNegativesRankingLoss``; ``CachedMultipleNegativesRankingLoss`` when ``mini_batch_size``
is set) on batches from :mod:`hbkit.train.sampling`, and writes to ``out_dir``:

* ``model/`` — the SentenceTransformer folder (best checkpoint by validation loss when there is a
  validation split) with ``hbkit_training.json`` (the config, strategy counts, final losses);
* ``train_log.jsonl`` — one line per step: step, loss, lr, batch kind and language(s);
* ``checkpoints/`` — every ``save_steps`` steps; a rerun of the same call resumes from the newest
  checkpoint with the same batches and reaches the same final weights as an uninterrupted run. Once
  ``model/`` is saved they are removed (:func:`prune_checkpoints`), unless
  ``config.keep_checkpoints``: a finished model never resumes, and its optimizer state is most of a
  folder's size.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import shutil
from dataclasses import asdict, fields
from pathlib import Path
from typing import NamedTuple

from hbkit.core.digests import carry_mapped
from hbkit.core.env import low_memory, world
from hbkit.core.files import (
    atomic_write_json,
    disk_guard,
    remove_stale_tmp,
    tmp_name,
    write_checksums,
)
from hbkit.core.groups import sample_groups
from hbkit.core.vocab import CORPUS_COLUMN, STRATEGY_ALPHA
from hbkit.train.config import TrainConfig, TrainError
from hbkit.train.run_folder import (
    finished_model,
    finished_state,
    latest_checkpoint,
    prepare_folder,
    run_identity,
    warmup_args,
)
from hbkit.train.sampling import SamplerError, XXMonoBatchSampler, batch_name, make_sampler

log = logging.getLogger(__name__)


class RunCancelled(RuntimeError):
    """A run stopped on request (:func:`cancel_callback`); its checkpoints stay, so a rerun resumes
    it."""


def cancel_callback(event):
    """A trainer callback that stops training at the end of the step during which ``event`` (a
    ``threading.Event``) is set, by raising :class:`RunCancelled`: the model folder is not written,
    so the run is never mistaken for a finished one, and the checkpoints saved so far are where a
    rerun resumes."""
    from transformers import TrainerCallback  # heavy: transformers

    class _Cancel(TrainerCallback):
        def on_step_end(self, args, state, control, **kw):
            if event.is_set():
                raise RunCancelled(
                    f"cancelled at step {state.global_step}; rerun to resume from the last "
                    "checkpoint"
                )
            return control

    return _Cancel()


def _split_groups(pairs, val_groups: int, seed: int):
    if val_groups <= 0:
        return pairs, None
    n = len(set(pairs["group"]))
    if val_groups >= n:
        raise ValueError(f"val_groups={val_groups} leaves no training group (there are {n})")
    val = sample_groups(pairs["group"], val_groups, seed)
    flags = [g in val for g in pairs["group"]]
    idx_val = [i for i, f in enumerate(flags) if f]
    idx_train = [i for i, f in enumerate(flags) if not f]
    return pairs.select(idx_train), pairs.select(idx_val)


def _validation_pairs(val_pairs, config: TrainConfig):
    """A validation corpus of its own: checked against the pairs contract, only the contract's
    columns, and with ``val_groups`` > 0 a subsample of that many groups, drawn with seed 0 (the
    same for every model and training seed, so that their validation losses are comparable)."""
    need = ("group", "lang", "query", "passage")
    missing = [c for c in need if c not in val_pairs.column_names]
    if missing:
        raise TrainError(
            f"the validation pairs ({config.val_corpus}) lack column(s) {', '.join(missing)}; read "
            "them with hbkit.data.pairs.validate_pairs"
        )
    val_pairs = val_pairs.select_columns(
        [c for c in (*need, "answer_key") if c in val_pairs.column_names]
    )
    if config.val_groups and config.val_groups < len(set(val_pairs["group"])):
        keep = sample_groups(val_pairs["group"], config.val_groups, 0)
        val_pairs = val_pairs.select([i for i, g in enumerate(val_pairs["group"]) if g in keep])
    return val_pairs


def _layers(auto):
    """The transformer's stack of layers, found by shape (a ModuleList as long as
    ``num_hidden_layers``)."""
    import torch

    n = getattr(getattr(auto, "config", None), "num_hidden_layers", None)
    for _, m in auto.named_modules():
        if isinstance(m, torch.nn.ModuleList) and len(m) == n:
            return m
    raise TrainError(
        f"freeze_layers: cannot find the {n} layers of {type(auto).__name__}; set freeze_layers=0"
    )


def _freeze(model, config: TrainConfig) -> None:
    """Freeze the input word embeddings (``get_input_embeddings()``: any architecture) and the
    lowest ``freeze_layers`` layers; set dropout."""
    auto = model[0].auto_model
    if config.freeze_word_embeddings:
        auto.get_input_embeddings().weight.requires_grad_(False)
    if config.freeze_layers:
        for layer in _layers(auto)[: config.freeze_layers]:
            layer.requires_grad_(False)
    if config.dropout is not None:
        import torch

        for m in model.modules():
            if isinstance(m, torch.nn.Dropout):
                m.p = config.dropout


class _BatchRecord:
    """What the trainer sees of its batches, shared with the callback that logs them
    (:func:`_callback`): the kinds of the batches that reached the model since the last step ended
    (``pending``, as the collator passed them on in ``inputs["hbkit_batch"]``), every batch that
    reached the model, training and evaluation, as the collator named it (``seen``: the collator's
    own list stays in its process, which is another one with ``dataloader_workers``), and the
    training batch sampler (for ``set_epoch`` on resume)."""

    def __init__(self):
        self.pending: list = []
        self.seen: list = []
        self.sampler = None


def _trainer_class():
    """sentence-transformers' trainer, plus: the kind of every training batch is recorded in
    ``record`` when the batch reaches the model; with ``mono_eval`` the validation batches are
    X-X-mono (a validation set in one language, where X-Y batches do not exist)."""
    from sentence_transformers import SentenceTransformerTrainer

    class HBTrainer(SentenceTransformerTrainer):
        def __init__(self, *args, record: _BatchRecord, mono_eval: bool = False, **kw):
            self.hbkit_record, self.hbkit_mono_eval, self.hbkit_evaluating = (
                record,
                mono_eval,
                False,
            )
            super().__init__(*args, **kw)

        def get_train_dataloader(self):
            loader = super().get_train_dataloader()
            self.hbkit_record.sampler = getattr(self.args.batch_sampler, "last", None)
            return loader

        def training_step(self, model, inputs, *args, **kw):
            info = inputs.pop("hbkit_batch", None)
            if info is not None:
                self.hbkit_record.pending.append(info)
                self.hbkit_record.seen.append(batch_name(info))
            return super().training_step(model, inputs, *args, **kw)

        def get_eval_dataloader(self, *args, **kw):
            self.hbkit_evaluating = True
            try:
                return super().get_eval_dataloader(*args, **kw)
            finally:
                self.hbkit_evaluating = False

        def get_batch_sampler(self, dataset, batch_size, *args, **kw):
            if self.hbkit_evaluating and self.hbkit_mono_eval:
                # one language
                return XXMonoBatchSampler(
                    dataset, batch_size, seed=kw.get("seed", 0), num_replicas=1
                )
            return super().get_batch_sampler(dataset, batch_size, *args, **kw)

        def compute_loss(self, model, inputs, *args, **kw):
            info = inputs.pop("hbkit_batch", None)  # evaluation batches
            if info is not None:
                self.hbkit_record.seen.append(batch_name(info))
            return super().compute_loss(model, inputs, *args, **kw)

    return HBTrainer


BATCHES_FILE = "hbkit_batches.json"


def _quiet_progress(trainer, batch_log) -> None:
    """The trainer's progress bar shows the running loss and the X-X / X-Y counts of ``batch_log``
    (:func:`_callback`) instead of printing one dict per logged step, which is every step:
    ``train_log.jsonl`` holds them all. Without progress bars (``progress=False``: notebooks,
    benchmarks, workers) the trainer's printer drops them too. Evaluation results and the run's
    summary are still printed."""
    from transformers.trainer_callback import PrinterCallback, ProgressCallback

    def step_loss(logs) -> bool:
        return bool(logs) and "loss" in logs and not any(k.startswith("eval_") for k in logs)

    class QuietProgress(ProgressCallback):
        def on_step_end(self, args, state, control, **kwargs):
            # batch_log's on_step_end has run: it comes first
            if getattr(self, "training_bar", None) is not None:
                c = batch_log.counts()
                loss = {} if batch_log.last_loss is None else {"loss": f"{batch_log.last_loss:.4g}"}
                self.training_bar.set_postfix(**loss, xx=c["xx"], xy=c["xy"], refresh=False)
            super().on_step_end(args, state, control, **kwargs)

        def on_log(self, args, state, control, logs=None, **kwargs):
            if not step_loss(logs):
                super().on_log(args, state, control, logs=logs, **kwargs)

    class QuietPrinter(PrinterCallback):
        def on_log(self, args, state, control, logs=None, **kwargs):
            if not step_loss(logs):
                super().on_log(args, state, control, logs=logs, **kwargs)

    handler = trainer.callback_handler
    for loud, quiet in ((ProgressCallback, QuietProgress), (PrinterCallback, QuietPrinter)):
        # ProgressCallback: bars on; PrinterCallback: off
        if any(type(cb) is loud for cb in handler.callbacks):
            trainer.remove_callback(loud)
            trainer.add_callback(quiet())


def _callback(out_dir: Path, restored: dict[int, list], record: _BatchRecord):
    from transformers import TrainerCallback

    class BatchLog(TrainerCallback):
        """Writes train_log.jsonl (one line per logged step: loss, lr, the step's batch kind and
        language) and keeps the running X-X / X-Y counts and loss that the progress bar shows
        (:func:`_quiet_progress`). The kind of step s is what the trainer recorded in ``record`` for
        the batches of step s (see :func:`_trainer_class`); ``steps`` is saved in every checkpoint,
        so a resumed run keeps the kinds of the steps before it."""

        def __init__(self):
            self.steps: dict[int, list] = dict(restored)  # step -> [kind, lang]
            self.last_loss = None  # shown on the progress bar

        def counts(self) -> dict[str, int]:
            c = {"xx": 0, "xy": 0, "mixed": 0}
            for kind, *_ in self.steps.values():
                c[kind] = c.get(kind, 0) + 1
            return {k: v for k, v in c.items() if v or k != "mixed"}

        def on_epoch_begin(self, args, state, control, **kw):
            # the trainer forwards set_epoch through accelerate's wrappers, except when resuming
            # mid-epoch (its skip wrapper hides the sampler): set it here, before the epoch's first
            # batch is drawn
            if record.sampler is not None:
                record.sampler.set_epoch(int(state.epoch + 1e-6))

        def on_step_end(self, args, state, control, **kw):
            infos, record.pending = record.pending, []
            kinds = {i["kind"] for i in infos}
            langs = {i["lang"] for i in infos}
            corpora = {i.get("corpus") for i in infos}
            if infos:
                self.steps[state.global_step] = [
                    kinds.pop() if len(kinds) == 1 else "mixed",
                    langs.pop() if len(langs) == 1 else None,
                ]
                if corpora != {None}:  # a mix of corpora: which one the step's batches came from
                    self.steps[state.global_step].append(
                        corpora.pop() if len(corpora) == 1 else "mixed"
                    )

        def on_log(self, args, state, control, logs=None, **kw):
            if not logs or "loss" not in logs or not state.is_world_process_zero:
                return
            self.last_loss = float(logs["loss"])
            kind, lang, *corpus = self.steps.get(state.global_step, [None, None])
            rec = {
                "step": state.global_step,
                "loss": logs["loss"],
                "lr": logs.get("learning_rate"),
                "batch": kind,
                "lang": lang,
                **({"corpus": corpus[0]} if corpus else {}),
            }
            with open(out_dir / "train_log.jsonl", "a") as fh:
                fh.write(json.dumps(rec) + "\n")

        def on_save(self, args, state, control, **kw):
            ckpt = Path(args.output_dir) / f"checkpoint-{state.global_step}"
            if state.is_world_process_zero and ckpt.is_dir():
                atomic_write_json(
                    ckpt / BATCHES_FILE, {str(k): v for k, v in sorted(self.steps.items())}
                )

        def on_evaluate(self, args, state, control, metrics=None, **kw):
            if metrics and state.is_world_process_zero:
                with open(out_dir / "train_log.jsonl", "a") as fh:
                    fh.write(
                        json.dumps(
                            {
                                "step": state.global_step,
                                **{k: v for k, v in metrics.items() if isinstance(v, (int, float))},
                            }
                        )
                        + "\n"
                    )

    return BatchLog()


def _training_arguments(
    config: TrainConfig,
    encoder,
    ckpt_dir: Path,
    factory,
    validate: bool,
    metric_for_best: str,
    progress: bool,
):
    """The trainer's arguments: steps, batch sampler, precision (bf16 where the GPU has it, else
    fp16 on CUDA, fp32 on the CPU), checkpoints and evaluation; ``config.training_args`` has the
    last word."""
    import torch  # heavy: torch
    from sentence_transformers import SentenceTransformerTrainingArguments  # heavy: transformers

    cuda = torch.cuda.is_available()
    bf16 = config.precision == "bf16" or (
        config.precision == "auto" and cuda and torch.cuda.is_bf16_supported()
    )
    fp16 = config.precision == "fp16" or (config.precision == "auto" and cuda and not bf16)
    kwargs = dict(
        output_dir=str(ckpt_dir),
        max_steps=config.max_steps,
        per_device_train_batch_size=config.batch_size,
        per_device_eval_batch_size=config.batch_size,
        learning_rate=config.lr,
        weight_decay=config.weight_decay,
        **warmup_args(config.warmup_ratio),
        seed=config.seed,
        data_seed=config.seed,
        batch_sampler=factory,
        prompts=dict(encoder.prompts) if encoder.prompts else None,
        logging_steps=1,
        save_steps=config.save_steps,
        save_total_limit=2,
        eval_strategy="steps" if validate else "no",
        eval_steps=config.eval_steps if validate else None,
        load_best_model_at_end=validate,
        metric_for_best_model=metric_for_best if validate else None,
        greater_is_better=metric_for_best != "eval_loss" if validate else None,
        bf16=bf16,
        fp16=fp16,
        optim=config.optim,
        dataloader_num_workers=config.dataloader_workers,
        report_to="none",
        disable_tqdm=not progress,
        dataloader_drop_last=True,
        use_cpu=not cuda,
        ddp_backend=None if cuda or world()[1] == 1 else "gloo",
    )
    if config.gradient_checkpointing or (config.gradient_checkpointing is None and not cuda):
        # non-reentrant: gradients flow although the word embeddings are frozen, and dropout's RNG
        # is replayed
        name = (
            "activation_checkpointing"
            if "activation_checkpointing"
            in {f.name for f in fields(SentenceTransformerTrainingArguments)}
            else "gradient_checkpointing"
        )
        kwargs.update({name: True, f"{name}_kwargs": {"use_reentrant": False}})
    kwargs.update(config.training_args)
    return SentenceTransformerTrainingArguments(**kwargs)


def _checkpointing_off(encoder) -> None:
    """Turn off the gradient checkpointing the training arguments turned on
    (TrainConfig.gradient_checkpointing)."""
    from transformers import PreTrainedModel  # heavy: transformers

    for m in encoder.modules():
        if isinstance(m, PreTrainedModel) and any(
            getattr(s, "gradient_checkpointing", False) for s in m.modules()
        ):
            (
                getattr(m, "activation_checkpointing_disable", None)
                or m.gradient_checkpointing_disable
            )()


def _loss(encoder, config: TrainConfig):
    """InfoNCE over in-batch negatives; GradCache with ``mini_batch_size``. With several processes
    the in-batch negatives are gathered from every rank (with gradients), so N processes at batch B
    train like one process at batch N*B."""
    from sentence_transformers.sentence_transformer import losses  # heavy: torch

    gather = world()[1] > 1
    if config.mini_batch_size:
        return losses.CachedMultipleNegativesRankingLoss(
            encoder,
            scale=config.scale,
            mini_batch_size=config.mini_batch_size,
            gather_across_devices=gather,
        )
    return losses.MultipleNegativesRankingLoss(
        encoder, scale=config.scale, gather_across_devices=gather
    )


def _load_final_checkpoint(trainer, resume_from: str, args, ckpt_dir: Path) -> None:
    """A run killed after its last checkpoint, before the model's save: load that checkpoint's
    state, and the best checkpoint's weights when the run keeps the best."""
    from transformers import TrainerState  # heavy: transformers

    trainer.state = TrainerState.load_from_json(str(Path(resume_from) / "trainer_state.json"))
    best = trainer.state.best_model_checkpoint if args.load_best_model_at_end else None
    # recorded as output_dir/checkpoint-N, relative to where that run started: find it here
    if best:
        best = ckpt_dir / Path(best).name
        if not best.is_dir():
            raise TrainError(
                f"{best} (the best checkpoint {resume_from} names) is missing; its model cannot be "
                "saved: run with --no-resume to train afresh"
            )
    trainer._load_from_checkpoint(str(best or resume_from))
    log.info(
        "%s is the run's last step (%d); its weights are saved as the model, nothing is trained "
        "again",
        resume_from,
        trainer.state.global_step,
    )


def _save_model(trainer, model_dir: Path, card: dict) -> None:
    """Save the model beside ``model_dir`` with its card and checksums, then swap it in."""
    tmp = tmp_name(model_dir)
    try:
        trainer.save_model(str(tmp))
        write_checksums(tmp, "hbkit_training.json", card)
        shutil.rmtree(model_dir, ignore_errors=True)
        os.replace(tmp, model_dir)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def prepare_data(pairs, config: TrainConfig, val_pairs=None):
    """The data of a training run, checked before anything is written: the pairs (only the columns
    training reads), the training and validation splits, the validation corpus of its own (or None)
    and the sampler factory. A dry construction of the samplers refuses data no batch can be made of
    (too few groups for the batch, one language where X-Y batches are asked for, a mix part too
    small), the validation batches too. :func:`train` starts with it, and ``hbkit compare`` calls it
    for every planned model before its first write.

    Returns:
        ``(pairs, train_pairs, val_pairs, own_val, factory)``.

    Raises:
        TrainError: the pairs lack a column, the validation set cannot fill a batch, or
            ``val_corpus`` and ``val_pairs`` disagree; :class:`~hbkit.train.sampling.SamplerError`
            for training data no batch can be made of.
    """
    need = ("group", "lang", "query", "passage")
    if any(c not in pairs.column_names for c in need):
        raise TrainError(
            "the training pairs lack column(s) "
            f"{', '.join(c for c in need if c not in pairs.column_names)}; read them with "
            "hbkit.data.pairs.read_pairs or validate_pairs, which check the contract"
        )
    # only what training reads: extra columns (a user's notes, with nulls) would reach the model
    # card's examples
    pairs = carry_mapped(
        pairs,
        pairs.select_columns(
            [c for c in (*need, "answer_key", CORPUS_COLUMN) if c in pairs.column_names]
        ),
    )
    if (config.val_corpus != "held-out") != (val_pairs is not None):
        raise TrainError(
            f"val_corpus={config.val_corpus!r} "
            + (
                "needs its pairs: pass val_pairs="
                if val_pairs is None
                else "is held-out, but val_pairs were given: set val_corpus to their corpus's name"
            )
        )
    own_val = _validation_pairs(val_pairs, config) if val_pairs is not None else None
    train_pairs, val_pairs = (
        (pairs, own_val)
        if own_val is not None
        else _split_groups(pairs, config.val_groups, config.seed)
    )

    def factory():
        return make_sampler(
            config.strategy,
            config.alpha,
            alpha_end=config.alpha_end,
            language_weights=config.language_weights,
        )

    # held-out groups of a mix: evaluated
    if val_pairs is not None and CORPUS_COLUMN in val_pairs.column_names:
        val_pairs = val_pairs.remove_columns(CORPUS_COLUMN)  # together, not one corpus per batch
    # dry runs, on a factory of their own: the trainer's records only its own samplers
    probe = factory()
    # data no batch can be made of: refused
    probe(train_pairs, batch_size=config.batch_size, seed=config.seed)
    if val_pairs is not None:
        try:
            # as get_batch_sampler will build it
            if own_val is not None and len(set(val_pairs["lang"])) == 1:
                XXMonoBatchSampler(val_pairs, config.batch_size, seed=config.seed, num_replicas=1)
            else:
                probe(val_pairs, batch_size=config.batch_size, seed=config.seed)
        except SamplerError as e:
            raise TrainError(
                f"the validation set ({config.val_corpus}: {len(set(val_pairs['group']))} groups) "
                f"cannot give a batch of {config.batch_size}: {e}. Keep more validation groups "
                "(val_groups)."
            ) from None
    return pairs, train_pairs, val_pairs, own_val, factory()


def train(
    encoder,
    pairs,
    config: TrainConfig | None = None,
    out_dir: str | os.PathLike = "runs/train",
    resume: bool = True,
    progress: bool = True,
    callbacks: list | None = None,
    evaluator=None,
    val_pairs=None,
) -> Path:
    """Fine-tune ``encoder`` (a SentenceTransformer, changed in place) on ``pairs`` with
    ``config.strategy``.

    Returns the path of the saved model folder (``out_dir/model``). ``out_dir`` remembers what it
    was made with (``train_config.json``: config, base-model weights hash, data hash). With
    ``resume=True``:

    * a finished run with the same set-up is returned as it is (nothing is trained again);
    * an interrupted one continues from its newest checkpoint, with the same batches, and reaches
      the same weights as an uninterrupted run; ``train_log.jsonl`` keeps each step once;
    * a folder made with another set-up is refused (:class:`TrainError`) — ``resume=False`` starts
      afresh.

    In-training evaluation (``val_groups > 0``): every ``eval_steps`` the held-out groups are scored
    — the validation loss, and with ``eval_metric="map"`` hbkit's
    :class:`~hbkit.train.evaluator.RetrievalEvaluator` (multilingual mAP; or ``evaluator``, any
    sentence-transformers evaluator); the best checkpoint by that criterion is kept and loaded at
    the end, and ``early_stopping_patience`` evaluations without improvement stop the run
    (transformers' ``EarlyStoppingCallback``). With ``config.val_corpus`` other than ``held-out``,
    ``val_pairs`` (e.g. :func:`hbkit.data.releases.squadshifts.squadshifts_pairs`, the paper's
    SQuADShifts) are the validation set instead; a validation set in one language is batched
    X-X-mono whatever the strategy (its loss is the paper's criterion; X-Y batches do not exist in
    one language).

    Args:
        encoder: a ``SentenceTransformer`` (changed in place).
        pairs: a ``datasets.Dataset`` with ``group``, ``lang``, ``query``, ``passage`` and
            ``answer_key`` (:func:`hbkit.data.benchmarks.parallel_pairs`,
            :func:`hbkit.data.corpora.load_training_corpus`).
        config: a :class:`~hbkit.train.config.TrainConfig` (default: hybrid, α 0.5).
        out_dir: the run folder (locked while in use).
        resume: go on with (or reuse) what ``out_dir`` holds; False starts afresh.
        progress: a progress bar with the running loss and the X-X / X-Y counts.
        callbacks: more ``transformers.TrainerCallback`` objects (:func:`cancel_callback` stops a
            run cleanly).
        evaluator: a sentence-transformers evaluator for in-training evaluation instead of hbkit's.
        val_pairs: the validation corpus of its own, when ``config.val_corpus`` is not ``held-out``.

    Returns:
        The saved model folder, ``out_dir/model`` (a SentenceTransformer folder with
            ``hbkit_training.json``).

    Raises:
        TrainError: a folder of another set-up, pairs without a needed column, a validation set too
            small.

    Examples:
        >>> encoder = load_encoder("intfloat/multilingual-e5-small")
        >>> config = TrainConfig(strategy="hybrid", alpha=0.5, max_steps=100)
        >>> model_dir = train(encoder, parallel_pairs(), config, "runs/hybrid")
    """
    config = config or TrainConfig()
    # HBKIT_LOW_MEMORY=1: a bad value is refused here, before anything is read or written
    low_memory()
    pairs, train_pairs, val_pairs, own_val, factory = prepare_data(pairs, config, val_pairs)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    if config.lr == 0:
        log.warning(
            "lr=0: the weights will not change; this run only measures the loss of the base model"
        )
    folder = _resolve_folder(encoder, pairs, config, own_val, out_dir, resume)
    if folder.finished:
        log.info(
            "%s is already trained with this set-up; nothing to do (--no-resume retrains)",
            folder.model_dir,
        )
        # killed between the save and the pruning
        if world()[0] == 0 and not config.keep_checkpoints:
            prune_checkpoints(out_dir)
        return folder.model_dir
    encoder.max_seq_length = min(
        encoder.max_seq_length or config.max_seq_length, config.max_seq_length
    )
    _freeze(encoder, config)
    _describe_in_card(encoder, config)
    trainer, batch_log = _build_trainer(
        encoder,
        config,
        train_pairs,
        val_pairs,
        factory,
        out_dir,
        folder.resume_from,
        progress,
        callbacks,
        evaluator,
    )
    runtime = _run(trainer, folder.resume_from, out_dir)
    # the caller's encoder leaves as it came (the saved model never recomputes)
    _checkpointing_off(encoder)
    if world()[1] > 1:  # what this rank actually collated, for checking that ranks agree
        atomic_write_json(
            out_dir / f"batches_seen.rank{world()[0]}.json", trainer.hbkit_record.seen
        )
    if not trainer.is_world_process_zero():
        return folder.model_dir
    with disk_guard(folder.model_dir.parent, "the trained model"):
        _save_model(
            trainer,
            folder.model_dir,
            _training_card(trainer, batch_log, encoder, config, folder, runtime),
        )
    if not config.keep_checkpoints:
        prune_checkpoints(out_dir)
    return folder.model_dir


class _Folder(NamedTuple):
    """Where a run stands in its folder: its identity, the model folder, the checkpoint to resume
    from (or None) and whether the model is already trained with this set-up."""

    identity: dict
    model_dir: Path
    resume_from: str | None
    finished: bool


def _resolve_folder(
    encoder, pairs, config: TrainConfig, own_val, out_dir: Path, resume: bool
) -> _Folder:
    """Rank 0 checks ``out_dir`` against the run's identity (a finished model is hashed once, a
    folder of another set-up refused, a fresh start cleared); the other ranks wait for its decision,
    then read it."""
    import torch  # heavy: torch

    rank = world()[0]
    identity = run_identity(encoder, pairs, config, own_val)
    model_dir = out_dir / "model"
    if rank == 0:
        remove_stale_tmp(out_dir, recursive=False)  # a model folder half-saved by a killed process
        # the model's files hashed once
        finished = resume and finished_model(model_dir, identity, encoder)
        resume_from = prepare_folder(out_dir, identity, resume, encoder, finished=finished)
        # without train_config.json the folder was started afresh
        finished = finished and model_dir.is_dir()
    if world()[1] > 1:  # the other ranks follow rank 0's decision, once it is written
        import torch.distributed as dist

        if not dist.is_initialized():
            dist.init_process_group("gloo" if not torch.cuda.is_available() else "nccl")
        dist.barrier()
        resume_from = latest_checkpoint(out_dir / "checkpoints") if resume else None
        if rank != 0:
            finished = resume and finished_model(model_dir, identity, encoder)
    return _Folder(identity, model_dir, resume_from, bool(finished))


def _describe_in_card(encoder, config: TrainConfig) -> None:
    """The saved README.md (sentence-transformers' model card) says how the model was trained."""
    card = getattr(encoder, "model_card_data", None)
    if card is None:
        return
    alpha = config.alpha if config.strategy == "hybrid" else STRATEGY_ALPHA[config.strategy]
    card.model_name = (
        f"{getattr(card, 'base_model', None) or 'encoder'} fine-tuned by hbkit: {config.strategy} "
        f"batches (α={alpha:g}), seed {config.seed}, corpus {config.corpus}"
    )
    card.add_tags(["hbkit", f"hbkit-strategy-{config.strategy}", f"hbkit-corpus-{config.corpus}"])


def _selection(val_pairs, evaluator, config: TrainConfig):
    """The in-training evaluator (``evaluator``, hbkit's
    :class:`~hbkit.train.evaluator.RetrievalEvaluator` with ``eval_metric="map"``, or None) and the
    metric that picks the best checkpoint (the validation loss unless an evaluator scores)."""
    if val_pairs is None or (evaluator is None and config.eval_metric != "map"):
        return evaluator, "eval_loss"
    if evaluator is None:
        from hbkit.train.evaluator import RetrievalEvaluator  # heavy: sentence-transformers

        evaluator = RetrievalEvaluator(val_pairs, name="val")
    pm, name = evaluator.primary_metric, getattr(evaluator, "name", "")
    return evaluator, f"eval_{pm if not name or pm.startswith(name + '_') else f'{name}_{pm}'}"


def _preprocess(encoder, config: TrainConfig):
    """The collator's tokeniser: the encoder's own, padding each batch to a multiple of
    ``config.pad_to_multiple_of`` tokens when it is set."""
    if config.pad_to_multiple_of is None:
        return encoder.preprocess
    return functools.partial(
        encoder.preprocess,
        processing_kwargs={"text": {"pad_to_multiple_of": config.pad_to_multiple_of}},
    )


def _build_trainer(
    encoder,
    config: TrainConfig,
    train_pairs,
    val_pairs,
    factory,
    out_dir: Path,
    resume_from: str | None,
    progress: bool,
    callbacks: list | None,
    evaluator,
):
    """The trainer and its batch log: arguments, loss, collator, evaluation, early stopping, and the
    kinds of the steps before ``resume_from``."""
    from hbkit.train.st_training import PairCollator  # heavy: sentence-transformers

    evaluator, metric_for_best = _selection(val_pairs, evaluator, config)
    callbacks = list(callbacks or [])
    if config.early_stopping_patience:
        from transformers import EarlyStoppingCallback

        callbacks.append(
            EarlyStoppingCallback(early_stopping_patience=config.early_stopping_patience)
        )
    args = _training_arguments(
        config,
        encoder,
        out_dir / "checkpoints",
        factory,
        val_pairs is not None,
        metric_for_best,
        progress,
    )
    restored = {}
    if resume_from and (Path(resume_from) / BATCHES_FILE).is_file():
        restored = {
            int(k): v for k, v in json.loads((Path(resume_from) / BATCHES_FILE).read_text()).items()
        }
    record = _BatchRecord()
    batch_log = _callback(out_dir, restored, record)
    trainer = _trainer_class()(
        model=encoder,
        args=args,
        train_dataset=train_pairs,
        eval_dataset=val_pairs,
        loss=_loss(encoder, config),
        evaluator=evaluator,
        data_collator=PairCollator(
            preprocess_fn=_preprocess(encoder, config), prompts=args.prompts
        ),
        callbacks=[batch_log, *callbacks],
        record=record,
        mono_eval=val_pairs is not None and len(set(val_pairs["lang"])) == 1,
    )
    _quiet_progress(trainer, batch_log)
    return trainer, batch_log


def _run(trainer, resume_from: str | None, out_dir: Path) -> float | None:
    """Train (from ``resume_from`` when given) and return the run's time in seconds; a run killed
    after its last checkpoint, before the model's save, is not trained again: that checkpoint is the
    trained model."""
    # training_args may override max_steps
    if finished_state(resume_from, trainer.args.max_steps) is None:
        _align_special_tokens_quietly(trainer)
        with disk_guard(out_dir / "checkpoints", "a training checkpoint"):
            return trainer.train(resume_from_checkpoint=resume_from).metrics.get("train_runtime")
    _load_final_checkpoint(trainer, resume_from, trainer.args, out_dir / "checkpoints")
    return None


def _training_card(
    trainer, batch_log, encoder, config: TrainConfig, folder: _Folder, runtime
) -> dict:
    """``hbkit_training.json``: the run's identity and config, its steps, batch counts, losses and
    best checkpoint."""
    history = [h for h in trainer.state.log_history if "loss" in h]
    return {
        "identity": folder.identity,
        "config": asdict(config),
        "base_model": getattr(encoder, "model_card_data", None)
        and encoder.model_card_data.base_model,
        "steps": trainer.state.global_step,
        "batch_counts": batch_log.counts(),
        "resumed_from": folder.resume_from,
        "first_loss": history[0]["loss"] if history else None,
        "last_loss": history[-1]["loss"] if history else None,
        "best_metric": trainer.state.best_metric,
        "metric_for_best_model": trainer.args.metric_for_best_model,
        "best_checkpoint": trainer.state.best_model_checkpoint,
        "stopped_early": trainer.state.global_step < config.max_steps,
        "train_runtime_s": runtime,
    }


def _align_special_tokens_quietly(trainer) -> None:
    """What ``Trainer.train`` does first, done here without its warning: the model config's
    PAD/BOS/EOS ids take the tokenizer's (XLM-R's tokenizer and config disagree; the warning named
    nothing a user can act on, once per model). ``train`` then finds them aligned and says nothing;
    the trained model is the same."""
    try:
        from transformers.tokenization_utils_base import PreTrainedTokenizerBase
        from transformers.trainer_utils import align_special_tokens
    except ImportError:  # a transformers without the alignment: nothing to do
        return
    tok = getattr(trainer, "processing_class", None)
    if not (isinstance(tok, PreTrainedTokenizerBase) and hasattr(trainer.model, "config")):
        return
    hf_log = logging.getLogger("transformers.trainer_utils")
    level = hf_log.level
    hf_log.setLevel(logging.ERROR)
    try:
        align_special_tokens(trainer.model, tok)
    finally:
        hf_log.setLevel(level)


def prune_checkpoints(out_dir: Path) -> None:
    """Remove ``out_dir/checkpoints`` of a saved model: renamed to a temporary name first, so that a
    kill while it is deleted never leaves a half-deleted checkpoint for a resume to find (the next
    start removes the renamed rest, :func:`hbkit.core.files.remove_stale_tmp`)."""
    ckpts = Path(out_dir) / "checkpoints"
    if not ckpts.is_dir():
        return
    doomed = tmp_name(ckpts)
    ckpts.rename(doomed)
    shutil.rmtree(doomed, ignore_errors=True)
    log.info(
        "removed the checkpoints of %s (the model is saved; keep_checkpoints keeps them)",
        Path(out_dir).name,
    )
