"""Cached, normalised embeddings: keyed by the model fingerprint, the prompt and the texts."""
from __future__ import annotations

import hashlib
import json
import logging
from typing import Sequence

import numpy as np
import torch

from hbkit.core.env import cache_dir
from hbkit.core.files import atomic_path
from hbkit.encoders.load import fingerprint

log = logging.getLogger(__name__)


# --------------------------------------------------------------------------------------------------
# encoding (cached on disk, keyed by model fingerprint + prompt + text hash)
# --------------------------------------------------------------------------------------------------
def encode(model, texts: Sequence[str], prompt_name: str | None = None, batch_size: int = 64,
           cache: bool = True, fp: str | None = None, progress: bool = False,
           devices: Sequence[str] | None = None) -> np.ndarray:
    """L2-normalised float32 embeddings of ``texts`` with the model's prompt ``prompt_name`` (if it has one).

    ``devices`` (e.g. ``["cuda:0", "cuda:1"]``) encodes shards in parallel processes, one per device, with
    sentence-transformers' multi-process pool, and merges them in input order; default: every GPU when
    there are several, else the model's device.

    With ``cache=True`` the array is stored under ``<cache>/embeddings/<model fingerprint>/`` and reused when
    the same model (same weights) encodes the same texts with the same prompt again.
    """
    prompts = getattr(model, "prompts", None) or {}
    prompt_name = prompt_name if prompt_name in prompts else None
    path = None
    if cache:
        fp = fp or fingerprint(model)
        h = hashlib.sha256(json.dumps([prompt_name, prompts.get(prompt_name), list(texts)]).encode()).hexdigest()[:32]
        path = cache_dir() / "embeddings" / fp / f"{h}.npy"
        if path.is_file():
            try:
                arr = np.load(path)
                if arr.shape[0] == len(texts):
                    return arr
                log.warning("embedding cache %s holds %d rows for %d texts; re-encoding", path, arr.shape[0], len(texts))
            except Exception as e:  # noqa: BLE001 - truncated, empty or foreign files are all re-encoded
                log.warning("embedding cache %s is unreadable (%s: %s); re-encoding", path, type(e).__name__, e)
    if devices is None and torch.cuda.device_count() > 1:
        devices = [f"cuda:{i}" for i in range(torch.cuda.device_count())]
    kw = {"device": list(devices)} if devices and len(devices) > 1 else {}
    emb = model.encode(list(texts), prompt_name=prompt_name, batch_size=batch_size, convert_to_numpy=True,
                       normalize_embeddings=True, show_progress_bar=progress, **kw)
    emb = np.asarray(emb, dtype=np.float32)
    if path is not None:  # a per-process temporary file, then an atomic rename: concurrent writers never collide
        with atomic_path(path) as tmp:
            np.save(tmp, emb)
    return emb
