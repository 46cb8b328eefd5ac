"""Paths and run profiles (``ci``, ``cpu``, ``gpu``) as plain, copyable data."""
from __future__ import annotations

import os
from pathlib import Path


def cache_dir() -> Path:
    """``$HBKIT_CACHE``, else the user cache folder (``~/.cache/hbkit`` on Linux). Created on demand."""
    root = os.environ.get("HBKIT_CACHE")
    if root:
        path = Path(root).expanduser()
    else:
        from platformdirs import user_cache_dir

        path = Path(user_cache_dir("hbkit"))
    path.mkdir(parents=True, exist_ok=True)
    return path


#: Run profiles: plain data a user can read and copy (``hbkit compare --profile NAME``; override any key).
#: ``eval_groups``: query groups kept per benchmark (None = the full benchmark), with a proportional share
#: of the other candidates as distractors (see ``RetrievalBenchmark.subsample``).
PROFILES: dict[str, dict] = {
    # CI: seconds, on the tiny random encoder; checks the pipeline, not the research question
    "ci": {"model": "hbkit/tiny", "strategies": ["xx", "xy", "hybrid"], "alphas": [], "steps": 4, "batch_size": 8,
           "lr": 1e-3, "freeze_word_embeddings": False, "train_groups": 64, "train_languages": None,
           "eval_groups": {"xquad-r-eval": 12, "mlqa-r": 12, "tydiqa": 30},
           "umap_groups": 10, "bootstrap": 200, "seed": 0},
    # CPU (default without a GPU): ~25 min on 2 cores. Cut: 40 steps at batch 32 (paper: batch 100, full
    # epochs), frozen word embeddings, evaluation on subsamples (whole parallel groups kept).
    "cpu": {"model": "intfloat/multilingual-e5-small", "strategies": ["xx", "xy", "hybrid"], "alphas": [],
            "steps": 40, "batch_size": 32, "lr": 3e-5, "freeze_word_embeddings": True, "train_groups": None,
            "train_languages": None, "eval_groups": {"xquad-r-eval": 120, "mlqa-r": 150, "tydiqa": 300},
            "umap_groups": 40, "bootstrap": 1000, "seed": 0},
    # GPU: full benchmarks, paper hyper-parameters (batch 100, lr 3e-5), all weights trained
    "gpu": {"model": "intfloat/multilingual-e5-small", "strategies": ["xx", "xy", "hybrid"],
            "alphas": [0.25, 0.75], "steps": 1000, "batch_size": 100, "lr": 3e-5, "freeze_word_embeddings": False,
            "train_groups": None, "train_languages": None, "eval_groups": {},
            "umap_groups": 60, "bootstrap": 1000, "seed": 0},
}


def default_profile() -> str:
    """``$HBKIT_PROFILE`` if set, else ``gpu`` when CUDA is available, else ``cpu``."""
    env = os.environ.get("HBKIT_PROFILE")
    if env:
        if env not in PROFILES:
            raise ValueError(f"HBKIT_PROFILE={env!r}: use one of {', '.join(PROFILES)}")
        return env
    import torch

    return "gpu" if torch.cuda.is_available() else "cpu"


def profile(name: str = "auto", **overrides) -> dict:
    """A copy of profile ``name`` (``auto`` = :func:`default_profile`) with ``overrides`` applied."""
    name = default_profile() if name in (None, "auto") else name
    if name not in PROFILES:
        raise ValueError(f"unknown profile {name!r}; use one of {', '.join(PROFILES)} or auto")
    unknown = set(overrides) - set(PROFILES[name])
    if unknown:
        raise ValueError(f"unknown profile keys {sorted(unknown)}; known: {', '.join(PROFILES[name])}")
    return {**PROFILES[name], **{k: v for k, v in overrides.items() if v is not None}, "profile": name}
