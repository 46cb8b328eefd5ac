"""hbkit — hybrid batch training for multilingual retrievers (arXiv 2408.10536).

The public API: data (``parallel_pairs``, ``load_benchmark``), encoders (``load_encoder``), batch samplers
(``HybridBatchSampler`` and friends), training (``train``, ``TrainConfig``), evaluation (``evaluate``,
``paired_bootstrap``), and the main job (``compare``).
"""
from hbkit.analysis.bootstrap import paired_bootstrap
from hbkit.data.benchmarks import RetrievalBenchmark, load_benchmark, parallel_pairs
from hbkit.data.registry import DataError
from hbkit.encoders.load import load_encoder
from hbkit.experiment.compare import compare
from hbkit.experiment.profiles import PROFILES, profile
from hbkit.retrieval.pools import EvalResult, evaluate, evaluate_alignment
from hbkit.train.config import TrainConfig
from hbkit.train.sampling import (
    HybridBatchSampler,
    PairCollator,
    XXMonoBatchSampler,
    XYBatchSampler,
    make_sampler,
    text_pairs,
)
from hbkit.train.trainer import train

__all__ = ["PROFILES", "profile", "DataError", "RetrievalBenchmark", "load_benchmark", "parallel_pairs",
           "EvalResult", "evaluate", "evaluate_alignment", "paired_bootstrap", "load_encoder",
           "HybridBatchSampler", "XXMonoBatchSampler", "XYBatchSampler", "PairCollator", "make_sampler",
           "text_pairs", "TrainConfig", "train", "compare"]
__version__ = "0.1.0"
