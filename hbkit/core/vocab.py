"""The shared words: strategies and their α, settings, contrasts, the order models are shown in."""

from __future__ import annotations

SETTINGS = ("mono", "cross", "multi")


#: the contrasts between strategies that :func:`hbkit.analysis.stats.effects` computes by default
#: (plus every model - base)
STRATEGY_CONTRASTS = (("hybrid", "xx"), ("hybrid", "xy"), ("xy", "xx"))


#: the training-free fixes of language bias (:mod:`hbkit.retrieval.posthoc`); a model with one
#: applied at evaluation is named ``<model>+<fix>`` (``base+shift``, ``hybrid+center``)
FIXES = ("shift", "center")


STRATEGY_ORDER = [
    "base",
    "xx",
    "xy",
    "hybrid",
    *(f"{m}+{f}" for m in ("base", "xx", "xy", "hybrid") for f in FIXES),
]


#: the contrasts of trained batches against a free fix that the claims need (C6, C7): hybrid against
#: each fix of the base model
FIX_CONTRASTS = tuple(("hybrid", f"base+{f}") for f in FIXES)


def with_fix(model: str, fix: str) -> str:
    """The name of ``model`` with the training-free ``fix`` applied: ``with_fix("hybrid", "shift")
    == "hybrid+shift"``."""
    return f"{model}+{fix}"


def without_fix(model: str) -> str:
    """The model a fixed model was made from: ``without_fix("hybrid+shift") == "hybrid"``; a plain
    model is itself."""
    return str(model).split("+")[0]


def has_fix(model: str) -> bool:
    """Whether ``model`` is a model with a training-free fix applied (``<model>+<fix>``)."""
    return without_fix(model) != str(model)


def untrained(model: str) -> bool:
    """Whether ``model`` is evaluated once, without a training seed: the base model and its fixes
    (``base+shift``)."""
    return without_fix(model) == "base"


STRATEGIES = ("xx", "xy", "hybrid")


#: α of each strategy: X-Y batches only (0), the paper's hybrid (0.5), X-X-mono only (1)
STRATEGY_ALPHA = {"xy": 0.0, "hybrid": 0.5, "xx": 1.0}


#: the column of a training-pairs dataset that names each row's corpus in a mix of corpora
#: (:func:`hbkit.data.corpora.load_training_corpus` writes it;
#: :class:`hbkit.train.sampling.MultiCorpusBatchSampler` draws one corpus per batch from it)
CORPUS_COLUMN = "corpus"
