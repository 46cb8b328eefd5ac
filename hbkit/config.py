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


#: Run profiles: plain data a user can read and copy (``hbkit compare --profile NAME``; every key is also a
#: command-line option, ``--batch-size 16`` etc., see :data:`PROFILE_KEYS`). ``eval_groups``: query groups kept
#: per benchmark (None = the full benchmark), with a proportional share of the other candidates as distractors
#: (see ``RetrievalBenchmark.subsample``), drawn with ``eval_seed`` — fixed, so every model of every training
#: seed is scored on the same queries and candidates. ``seeds`` are training seeds: one model per (strategy, α,
#: seed); they change the sampler, the subsample of training groups and dropout, never what is evaluated.
_COMMON = {"strategies": ["xx", "xy", "hybrid"], "alphas": [], "train_languages": None, "eval_seed": 0,
           "permutations": 10000, "delta": 0.01}
PROFILES: dict[str, dict] = {
    # CI: seconds, on the tiny random encoder; checks the pipeline, not the research question
    "ci": {**_COMMON, "model": "hbkit/tiny", "seeds": [0, 1], "steps": 4, "batch_size": 8, "lr": 1e-3,
           "freeze_word_embeddings": False, "train_groups": 64,
           "eval_groups": {"xquad-r-eval": 12, "mlqa-r": 12, "tydiqa": 30}, "umap_groups": 10, "bootstrap": 200,
           "permutations": 2000},
    # CPU (default without a GPU): ~25 min per seed on 2 cores. Cut: 40 steps at batch 32 (paper: batch 100,
    # full epochs), frozen word embeddings, evaluation on subsamples (whole parallel groups kept).
    "cpu": {**_COMMON, "model": "intfloat/multilingual-e5-small", "seeds": [0], "steps": 40, "batch_size": 32,
            "lr": 3e-5, "freeze_word_embeddings": True, "train_groups": None,
            "eval_groups": {"xquad-r-eval": 120, "mlqa-r": 150, "tydiqa": 300}, "umap_groups": 40, "bootstrap": 1000},
    # GPU: full benchmarks, paper hyper-parameters (batch 100, lr 3e-5), all weights trained
    "gpu": {**_COMMON, "model": "intfloat/multilingual-e5-small", "alphas": [0.25, 0.75], "seeds": [0, 1, 2],
            "steps": 1000, "batch_size": 100, "lr": 3e-5, "freeze_word_embeddings": False, "train_groups": None,
            "eval_groups": {}, "umap_groups": 60, "bootstrap": 1000},
}

#: Every profile key: its type (as the command line parses it) and what it means. The defaults live in
#: :data:`PROFILES` only.
PROFILE_KEYS: dict[str, tuple[str, str]] = {
    "model": ("str", "base encoder: a hub name, a local folder, or tiny"),
    "strategies": ("list[str]", "strategies to train, comma-separated (xx,xy,hybrid)"),
    "alphas": ("list[float]", "extra hybrid α values, e.g. 0.25,0.75 (0.5 is the hybrid run)"),
    "seeds": ("list[int]", "training seeds, e.g. 0,1,2: one model per strategy, α and seed"),
    "steps": ("int", "optimizer steps per model"),
    "batch_size": ("int", "pairs per step"),
    "lr": ("float", "learning rate"),
    "freeze_word_embeddings": ("bool", "keep the input word embeddings fixed"),
    "train_groups": ("int?", "train on a seeded subset of this many parallel groups (none: all)"),
    "train_languages": ("list[str]?", "training languages (none: all)"),
    "eval_groups": ("dict[int]", "query groups kept per benchmark, e.g. xquad-r-eval=120,mlqa-r=150 (none: full)"),
    "eval_seed": ("int", "seed of the evaluation subsample (the same for every model and training seed)"),
    "umap_groups": ("int", "parallel XQuAD-R groups in the UMAP pictures"),
    "bootstrap": ("int", "bootstrap resamples for intervals"),
    "permutations": ("int", "sign-flip permutations for p-values"),
    "delta": ("float", "C5: hybrid counts as within delta (mAP) of the best strategy"),
}


class ProfileError(ValueError):
    """A profile key or value is not valid; the message names it and the fix."""


def check_profile(cfg: dict) -> dict:
    """Validate a profile before any work starts (a bad α must not surface after hours of training)."""
    from .sampling import STRATEGIES

    def fail(key, why):
        raise ProfileError(f"{key}={cfg.get(key)!r}: {why}")

    unknown = set(cfg.get("strategies") or []) - set(STRATEGIES)
    if not cfg.get("strategies") or unknown:
        fail("strategies", f"use one or more of {', '.join(STRATEGIES)}")
    for key in ("strategies", "alphas", "seeds"):
        vals = list(cfg.get(key) or [])
        if len(set(vals)) != len(vals):
            fail(key, "a value is given twice; list each once")
    if any(not isinstance(a, (int, float)) or not 0 <= a <= 1 for a in cfg.get("alphas") or []):
        fail("alphas", "every α must lie in [0, 1]")
    if not cfg.get("seeds") or any(not isinstance(x, int) or x < 0 for x in cfg["seeds"]):
        fail("seeds", "give one or more non-negative integers, e.g. 0,1,2")
    for key, low in (("steps", 1), ("batch_size", 2), ("umap_groups", 2), ("bootstrap", 100), ("permutations", 100),
                     ("eval_seed", 0)):
        if not isinstance(cfg.get(key), int) or isinstance(cfg.get(key), bool) or cfg[key] < low:
            fail(key, f"must be an integer >= {low}")
    if cfg.get("train_groups") is not None and (not isinstance(cfg["train_groups"], int) or cfg["train_groups"] < 2):
        fail("train_groups", "must be an integer >= 2, or none for all groups")
    if not isinstance(cfg.get("lr"), (int, float)) or cfg["lr"] < 0:
        fail("lr", "must be >= 0")
    if not isinstance(cfg.get("delta"), (int, float)) or cfg["delta"] < 0:
        fail("delta", "must be >= 0 (the largest shortfall of hybrid that still counts as 'as good')")
    for name, n in (cfg.get("eval_groups") or {}).items():
        if not isinstance(n, int) or n < 1:
            fail("eval_groups", f"{name}={n!r}: each must be an integer >= 1 (leave a benchmark out for all groups)")
    return cfg


def default_profile() -> str:
    """``$HBKIT_PROFILE`` if set, else ``gpu`` when CUDA is available, else ``cpu``."""
    env = os.environ.get("HBKIT_PROFILE")
    if env:
        if env not in PROFILES:
            raise ProfileError(f"HBKIT_PROFILE={env!r}: use one of {', '.join(PROFILES)}")
        return env
    import torch

    return "gpu" if torch.cuda.is_available() else "cpu"


def profile(name: str = "auto", **overrides) -> dict:
    """A copy of profile ``name`` (``auto`` = :func:`default_profile`) with ``overrides`` applied (None = keep),
    validated by :func:`check_profile`."""
    name = default_profile() if name in (None, "auto") else name
    if name not in PROFILES:
        raise ProfileError(f"unknown profile {name!r}; use one of {', '.join(PROFILES)} or auto")
    unknown = set(overrides) - set(PROFILE_KEYS)
    if unknown:
        raise ProfileError(f"unknown profile keys {sorted(unknown)}; known: {', '.join(PROFILE_KEYS)}")
    cfg = {**PROFILES[name], **{k: v for k, v in overrides.items() if v is not None}, "profile": name}
    return check_profile(cfg)
