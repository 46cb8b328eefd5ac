"""The shared words: strategies and their α, settings, contrasts, the order models are shown in."""
from __future__ import annotations

SETTINGS = ("mono", "cross", "multi")


#: the contrasts between strategies that :func:`effects` computes by default (plus every model - base)
STRATEGY_CONTRASTS = (("hybrid", "xx"), ("hybrid", "xy"), ("xy", "xx"))


STRATEGY_ORDER = ["base", "xx", "xy", "hybrid"]


STRATEGIES = ("xx", "xy", "hybrid")


#: α of each strategy: X-Y batches only (0), the paper's hybrid (0.5), X-X-mono only (1)
STRATEGY_ALPHA = {"xy": 0.0, "hybrid": 0.5, "xx": 1.0}


#: the column of a training-pairs dataset that names each row's corpus in a mix of corpora
#: (:func:`hbkit.data.corpora.load_training_corpus` writes it; :class:`hbkit.train.sampling.MultiCorpusBatchSampler`
#: draws one corpus per batch from it)
CORPUS_COLUMN = "corpus"
