"""hbkit — hybrid batch training for multilingual retrievers (arXiv 2408.10536).

The public API, what the notebooks and a user's own code call:

* data: :func:`parallel_pairs`, :func:`load_benchmark`, :func:`data_summary`,
  :func:`check_disjoint`;
* encoders: :func:`load_encoder`, :func:`encode`;
* batches: :class:`HybridBatchSampler` (and :class:`XXMonoBatchSampler`, :class:`XYBatchSampler`),
  :func:`make_sampler`, :func:`describe_batch`, :func:`text_pairs`, and for sentence-transformers'
  trainer :func:`st_training_kwargs` with :class:`PairCollator`;
* training: :func:`train`, :class:`TrainConfig`;
* evaluation: :func:`evaluate`, :func:`evaluate_alignment`, :func:`aggregate`,
  :func:`alignment_vs_retrieval`;
* the main job and its run folder: :func:`profile`, :func:`compare`, :func:`plan_status`,
  :func:`default_run_dir`, :func:`load_run`, :func:`fixes_table`;
* the paper beside ours: :func:`default_reference`, :func:`effects_view`;
* figures and the dashboard: :mod:`figures` (``hbkit.figures``), :class:`Dashboard`,
  :func:`load_results`, :func:`load_aggregate`, :func:`run_encoder`.

Names load on first use, so ``import hbkit`` costs milliseconds, not torch's import.
"""

from __future__ import annotations

import importlib

from hbkit.core.env import torch_huge_pages as _torch_huge_pages

import hbkit.train  # noqa: F401  the package first, so that the name ``train`` below stays the function

#: large CPU tensors on huge pages: set before torch is imported, which reads it once
#: (:func:`hbkit.core.env.torch_huge_pages`)
_torch_huge_pages()

#: public name -> the module that defines it (``None``: the name is the module itself)
_EXPORTS = {
    "PROFILES": "hbkit.experiment.profiles",
    "profile": "hbkit.experiment.profiles",
    "DataError": "hbkit.data.registry",
    "RetrievalBenchmark": "hbkit.data.retrieval_benchmark",
    "load_benchmark": "hbkit.data.benchmarks",
    "parallel_pairs": "hbkit.data.benchmarks",
    "check_disjoint": "hbkit.data.benchmarks",
    "data_summary": ("hbkit.data.benchmarks", "summary"),
    "load_encoder": "hbkit.encoders.load",
    "encode": "hbkit.encoders.encode",
    "EvalResult": "hbkit.retrieval.pools",
    "evaluate": "hbkit.retrieval.pools",
    "evaluate_alignment": "hbkit.retrieval.pools",
    "aggregate": "hbkit.analysis.stats",
    "alignment_vs_retrieval": "hbkit.analysis.stats",
    "default_reference": "hbkit.analysis.reference",
    "effects_view": "hbkit.analysis.reference",
    "figures": ("hbkit.analysis.figures", None),
    "HybridBatchSampler": "hbkit.train.sampling",
    "XXMonoBatchSampler": "hbkit.train.sampling",
    "XYBatchSampler": "hbkit.train.sampling",
    "SamplerError": "hbkit.train.sampling",
    "make_sampler": "hbkit.train.sampling",
    "describe_batch": "hbkit.train.sampling",
    "text_pairs": "hbkit.train.sampling",
    "PairCollator": "hbkit.train.st_training",
    "st_training_kwargs": "hbkit.train.st_training",
    "TrainConfig": "hbkit.train.config",
    "compare": "hbkit.experiment.compare",
    "plan_status": "hbkit.experiment.status",
    "load_run": "hbkit.experiment.report",
    "fixes_table": "hbkit.experiment.report",
    "default_run_dir": "hbkit.core.env",
    "Dashboard": "hbkit.app.widgets",
    "load_results": "hbkit.app.widgets",
    "load_aggregate": "hbkit.app.widgets",
    "run_encoder": "hbkit.app.widgets",
}


def __getattr__(name: str):
    """Load a public name on first use (PEP 562)."""
    if name not in _EXPORTS:
        raise AttributeError(f"module 'hbkit' has no attribute {name!r}")
    where = _EXPORTS[name]
    module, attr = where if isinstance(where, tuple) else (where, name)
    value = importlib.import_module(module)
    value = value if attr is None else getattr(value, attr)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_EXPORTS})


from hbkit.train.trainer import train  # noqa: E402,F401  (after the package hbkit.train is loaded)

__all__ = sorted([*_EXPORTS, "train"])
__version__ = "0.1.0"
