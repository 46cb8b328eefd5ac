"""TrainConfig: every training option, validated before the first minute of work."""

from __future__ import annotations

from dataclasses import dataclass, field

from hbkit.core.vocab import STRATEGIES
from hbkit.train.sampling import SamplerError, check_alpha


def _option(default, help: str, **kw):
    """A config field with its help text (read by the command line, which derives its options from
    here)."""
    if isinstance(default, (dict, list)):
        return field(default_factory=lambda: type(default)(default), metadata={"help": help, **kw})
    return field(default=default, metadata={"help": help, **kw})


#: the values of ``precision`` and ``optim`` (one list each, for the option's choices and the check)
PRECISIONS = ("auto", "fp32", "bf16", "fp16")
OPTIMIZERS = ("adamw_torch", "adamw_torch_fused")


@dataclass
class TrainConfig:
    """Everything that defines a training run (saved as ``train_config.json`` next to the model; the
    command line's ``hbkit train`` options are derived from these fields, so each default lives here
    only).

    Paper (arXiv 2408.10536) values: ``lr=3e-5``, ``weight_decay=0.01``, ``batch_size=100``, α =
    0.5. ``scale`` is the inverse temperature of InfoNCE (sentence-transformers' default 20 = τ
    0.05). ``training_args`` passes any ``SentenceTransformerTrainingArguments`` through (e.g.
    ``{"gradient_accumulation_steps": 4, "report_to": "tensorboard", "push_to_hub": True}``); they
    override hbkit's defaults.
    """

    strategy: str = _option(
        "hybrid", "batch policy: xx (X-X-mono), xy (X-Y) or hybrid", choices=STRATEGIES
    )
    alpha: float = _option(0.5, "hybrid: probability that a batch is X-X-mono")
    alpha_end: float | None = _option(
        None, "hybrid: linear schedule of α from alpha to alpha_end over each epoch"
    )
    language_weights: str = _option(
        "uniform", "X-X-mono language draw", choices=("uniform", "proportional")
    )
    batch_size: int = _option(32, "pairs per process and step (the paper: 100)")
    lr: float = _option(3e-5, "peak learning rate")
    weight_decay: float = _option(0.01, "AdamW weight decay")
    warmup_ratio: float = _option(0.1, "share of steps with linear warm-up")
    max_steps: int = _option(40, "optimizer steps", aliases=("--steps",))
    scale: float = _option(20.0, "InfoNCE inverse temperature")
    freeze_word_embeddings: bool = _option(True, "keep the input word embeddings fixed")
    freeze_layers: int = _option(0, "keep the lowest N transformer layers fixed")
    mini_batch_size: int | None = _option(
        None, "GradCache mini-batch (CachedMultipleNegativesRankingLoss)"
    )
    val_groups: int = _option(
        0,
        "hold out this many groups for in-training evaluation (0: none); with a val_corpus, "
        "the number of its groups kept (0: all)",
    )
    val_corpus: str = _option(
        "held-out",
        "validation data: held-out (groups of the training pairs) or the name of the "
        "corpus given to train() as val_pairs (e.g. squadshifts, the paper's)",
    )
    eval_steps: int = _option(20, "evaluate every N steps when there is a validation split")
    eval_metric: str = _option(
        "loss",
        "criterion for the best checkpoint: loss (validation InfoNCE, the paper) or map "
        "(multilingual mAP of the held-out groups)",
        choices=("loss", "map"),
    )
    early_stopping_patience: int = _option(
        0, "stop after N evaluations without improvement (0: never)"
    )
    corpus: str = _option(
        "xquad-train",
        "the training corpus that hbkit train reads: xquad-train, squad-translate-train, "
        "mmarco[:N], a .jsonl/.csv/.parquet pairs file, or a mix joined by + "
        "(hbkit.data.corpora.corpus_parts); also named in the model card",
    )
    save_steps: int = _option(20, "checkpoint every N steps")
    seed: int = _option(
        0, "seed of the sampler, the model's initialisation of new layers and dropout"
    )
    precision: str = _option("auto", "auto | fp32 | bf16 | fp16", choices=PRECISIONS)
    max_seq_length: int = _option(128, "tokens per text")
    dropout: float | None = _option(
        None, "set every dropout probability of the encoder (0 for exact checks)"
    )
    optim: str = _option(
        "adamw_torch",
        "optimizer: adamw_torch, or adamw_torch_fused (one fused kernel per step; "
        "benchmarks/bench_trainer.py and gpu_check.py time both)",
        choices=OPTIMIZERS,
    )
    pad_to_multiple_of: int | None = _option(
        None,
        "pad each batch's texts to a multiple of N tokens (8 or 64: fewer distinct shapes for a "
        "GPU, where each new shape costs time); none: to the batch's longest text. It must divide "
        "max_seq_length. The model trained is the same (padding is masked), but with dropout "
        "the masks drawn differ",
    )
    dataloader_workers: int = _option(
        0,
        "processes that tokenise the next batches while the model trains on this one (the "
        "collator off the training loop's critical path); 0: in the training process",
    )
    gradient_checkpointing: bool | None = _option(
        None,
        "recompute each layer's activations in the backward pass instead of keeping them (the "
        "model trained is the same): a fraction of the training memory for one more forward pass "
        "per step; none: on when training on the CPU, where RAM is the limit, off on GPUs",
    )
    keep_checkpoints: bool = _option(
        False,
        "keep checkpoints/ (weights and optimizer state, every save_steps) once "
        "the model is saved; by default they are removed then, as only a run "
        "that has not finished resumes from them",
    )
    training_args: dict = _option({}, "extra SentenceTransformerTrainingArguments (JSON object)")

    def __post_init__(self):
        if self.strategy not in STRATEGIES:
            raise SamplerError(f"strategy={self.strategy!r}: use one of {', '.join(STRATEGIES)}")
        check_alpha(self.alpha, self.alpha_end, self.language_weights)
        for name, low in (
            ("max_steps", 1),
            ("batch_size", 2),
            ("save_steps", 1),
            ("eval_steps", 1),
            ("max_seq_length", 8),
            ("val_groups", 0),
            ("freeze_layers", 0),
            ("dataloader_workers", 0),
        ):
            if not isinstance(getattr(self, name), int) or getattr(self, name) < low:
                raise ValueError(f"{name}={getattr(self, name)!r}: must be an integer >= {low}")
        if (
            not isinstance(self.seed, int)
            or isinstance(self.seed, bool)
            or not 0 <= self.seed < 2**32
        ):
            raise ValueError(
                f"seed={self.seed!r}: must be a whole number from 0 to 2**32 - 1 (numpy's seed "
                "range)"
            )
        if not (
            0 <= self.lr < float("inf")
            and 0 <= self.weight_decay < float("inf")
            and 0 <= self.warmup_ratio < 1
        ):
            raise ValueError(
                f"lr={self.lr}, weight_decay={self.weight_decay}, "
                f"warmup_ratio={self.warmup_ratio}: "
                "lr and weight_decay must be finite and >= 0 (not NaN), warmup_ratio in [0, 1)"
            )
        if self.pad_to_multiple_of is not None and (
            not isinstance(self.pad_to_multiple_of, int)
            or isinstance(self.pad_to_multiple_of, bool)
            or self.pad_to_multiple_of < 1
            or self.max_seq_length % self.pad_to_multiple_of
        ):
            raise ValueError(
                f"pad_to_multiple_of={self.pad_to_multiple_of!r}: must be none or a whole number "
                f">= 1 that divides max_seq_length={self.max_seq_length} (8 or 64 for 128), so "
                "that no batch is padded past the longest text the model reads"
            )
        if self.dropout is not None and not 0 <= self.dropout < 1:
            raise ValueError(f"dropout={self.dropout}: must lie in [0, 1)")
        if self.precision not in PRECISIONS:
            raise ValueError(f"precision={self.precision!r}: use auto, fp32, bf16 or fp16")
        if self.optim not in OPTIMIZERS:
            raise ValueError(f"optim={self.optim!r}: use adamw_torch or adamw_torch_fused")
        if self.eval_metric not in ("loss", "map"):
            raise ValueError(f"eval_metric={self.eval_metric!r}: use loss or map")
        if self.early_stopping_patience < 0 or (
            self.early_stopping_patience and not self.validates
        ):
            raise ValueError(
                f"early_stopping_patience={self.early_stopping_patience}: needs val_groups > 0 "
                "(held-out groups to evaluate on) or a val_corpus, and must be >= 0"
            )
        if not isinstance(self.val_corpus, str) or not self.val_corpus.strip():
            raise ValueError(
                f"val_corpus={self.val_corpus!r}: use held-out or the validation corpus's name"
            )
        if self.validates and self.save_steps % self.eval_steps:
            raise ValueError(
                f"save_steps={self.save_steps} must be a multiple of eval_steps={self.eval_steps}, "
                "so that the best evaluated step has a checkpoint to return to"
            )
        if self.gradient_checkpointing not in (None, True, False):
            raise ValueError(
                f"gradient_checkpointing={self.gradient_checkpointing!r}: use true, false or none "
                "(on for CPU training, off on GPUs)"
            )
        if not isinstance(self.training_args, dict):
            raise ValueError(
                f"training_args={self.training_args!r}: must be a dict of TrainingArguments fields"
            )

    @property
    def validates(self) -> bool:
        """Whether the run evaluates while training: held-out groups, or a validation corpus of its
        own."""
        return bool(self.val_groups) or self.val_corpus != "held-out"


class TrainError(ValueError):
    """A training run cannot start as asked (e.g. its folder holds another set-up)."""
