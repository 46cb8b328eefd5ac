"""hbkit — hybrid batch training for multilingual retrievers (arXiv 2408.10536).

The public API: data (``parallel_pairs``, ``load_benchmark``), encoders (``load_encoder``), batch samplers
(``HybridBatchSampler`` and friends), training (``train``, ``TrainConfig``), evaluation (``evaluate``,
``paired_bootstrap``), and the main job (``compare``).
"""
from .config import PROFILES, profile
from .data import DataError, RetrievalBenchmark, load_benchmark, parallel_pairs
from .evaluation import EvalResult, evaluate, evaluate_alignment, paired_bootstrap
from .models import load_encoder
from .sampling import (HybridBatchSampler, PairCollator, XXMonoBatchSampler, XYBatchSampler, make_sampler,
                       text_pairs)
from .training import TrainConfig, train


def compare(*args, **kwargs):
    """See :func:`hbkit.compare.compare`."""
    from .compare import compare as _compare
    return _compare(*args, **kwargs)


__all__ = ["PROFILES", "profile", "DataError", "RetrievalBenchmark", "load_benchmark", "parallel_pairs",
           "EvalResult", "evaluate", "evaluate_alignment", "paired_bootstrap", "load_encoder",
           "HybridBatchSampler", "XXMonoBatchSampler", "XYBatchSampler", "PairCollator", "make_sampler",
           "text_pairs", "TrainConfig", "train", "compare"]
__version__ = "0.1.0"
