"""Normalised embeddings, batched by token count (:func:`embed_texts`) and cached on disk, keyed by
the model fingerprint, the prompt and the texts (:func:`encode`)."""

from __future__ import annotations

import hashlib
import json
import logging
from typing import Sequence

import numpy as np
import torch
from tqdm.auto import tqdm

from hbkit.core.env import cache_dir
from hbkit.core.files import atomic_path
from hbkit.encoders.load import fingerprint

log = logging.getLogger(__name__)


#: padded tokens one forward pass may hold, per text of ``batch_size``: a batch of
#: :func:`embed_texts` holds at most ``batch_size`` texts and ``batch_size * TOKENS_PER_TEXT``
#: padded tokens, so texts of 512 tokens go 16 at a time at batch 64 (their attention scores stay
#: ~0.2 GB) while queries go 64 at a time
TOKENS_PER_TEXT = 128
#: texts tokenised at once to count their tokens (bounds the memory of the ids for a corpus shard)
COUNT_CHUNK = 8192


def token_counts(model, texts: Sequence[str], prefix: str = "") -> np.ndarray:
    """How many tokens each text becomes for ``model`` (with ``prefix``, special tokens, truncated
    at the model's ``max_seq_length``): what a forward pass pads to. A model without a text
    tokenizer gets character counts, sentence-transformers' own proxy."""
    tok = getattr(model, "tokenizer", None)
    limit = getattr(model, "max_seq_length", None) or 512
    if callable(tok):
        try:
            out = np.empty(len(texts), dtype=np.int64)
            for i in range(0, len(texts), COUNT_CHUNK):
                ids = tok(
                    [prefix + t for t in texts[i : i + COUNT_CHUNK]],
                    truncation=True,
                    max_length=limit,
                )["input_ids"]
                out[i : i + len(ids)] = [len(x) for x in ids]
            return out
        except (
            TypeError,
            ValueError,
            KeyError,
        ):  # not a text tokenizer (an image or audio processor)
            pass
    return np.fromiter((len(t) for t in texts), dtype=np.int64, count=len(texts))


def length_batches(
    counts: np.ndarray, batch_size: int, tokens_per_text: int = TOKENS_PER_TEXT
) -> list[np.ndarray]:
    """Row indices of ``counts`` (tokens per text), longest first, cut into batches of at most
    ``batch_size`` texts and ``batch_size * tokens_per_text`` padded tokens (a text longer than that
    goes alone).

    sentence-transformers sorts by characters, which in 11 languages is a poor proxy for tokens (a
    Chinese and an English passage of one length differ ~3x in tokens): on the cpu profile's
    benchmarks its batches pad to 1.6x the real tokens, these to 1.05-1.2x.

    Examples:
        >>> batches = length_batches(np.array([3, 300, 5, 290]), batch_size=4, tokens_per_text=128)
        >>> [b.tolist() for b in batches]
        [[1], [3], [2, 0]]
    """
    order = np.argsort(-np.asarray(counts), kind="stable")
    budget = batch_size * tokens_per_text
    batches, i = [], 0
    while i < len(order):
        k = int(max(1, min(batch_size, budget // max(1, int(counts[order[i]])))))
        batches.append(order[i : i + k])
        i += k
    return batches


def embed_texts(
    model,
    texts: Sequence[str],
    prompt_name: str | None = None,
    batch_size: int = 64,
    progress: bool = False,
    desc: str = "encoding",
) -> np.ndarray:
    """L2-normalised float32 embeddings of ``texts`` (uncached), in batches of similar token counts
    (:func:`length_batches`): each batch is one ``model.encode`` call, so prompts, pooling and
    truncation stay sentence-transformers'. The rows come back in input order; a text's embedding
    does not depend on its batch (padding is masked) beyond float rounding."""
    texts = list(texts)
    if not texts:
        return np.asarray(
            model.encode([], prompt_name=prompt_name, convert_to_numpy=True), dtype=np.float32
        )
    prompts = getattr(model, "prompts", None) or {}
    prefix = prompts.get(prompt_name or getattr(model, "default_prompt_name", None) or "", "") or ""
    emb = None
    with tqdm(total=len(texts), desc=desc, unit="text", disable=not progress) as bar:
        for idx in length_batches(token_counts(model, texts, prefix), batch_size):
            part = model.encode(
                [texts[j] for j in idx],
                prompt_name=prompt_name,
                batch_size=len(idx),
                convert_to_numpy=True,
                normalize_embeddings=True,
                show_progress_bar=False,
            )
            if emb is None:
                emb = np.empty((len(texts), part.shape[1]), dtype=np.float32)
            emb[idx] = part
            bar.update(len(idx))
    return emb


# --------------------------------------------------------------------------------------------------
# encoding (cached on disk, keyed by model fingerprint + prompt + text hash)
# --------------------------------------------------------------------------------------------------
def encode(
    model,
    texts: Sequence[str],
    prompt_name: str | None = None,
    batch_size: int = 64,
    cache: bool = True,
    fp: str | None = None,
    progress: bool = False,
    devices: Sequence[str] | None = None,
) -> np.ndarray:
    """L2-normalised float32 embeddings of ``texts`` with the model's prompt ``prompt_name`` (if it
    has one), in batches of similar token counts (:func:`embed_texts`).

    ``devices`` (e.g. ``["cuda:0", "cuda:1"]``) encodes shards in parallel processes, one per
    device, with sentence-transformers' multi-process pool, and merges them in input order; default:
    every GPU when there are several, else the model's device.

    With ``cache=True`` the array is stored under ``<cache>/embeddings/<model fingerprint>/`` and
    reused when the same model (same weights) encodes the same texts with the same prompt again.

    Args:
        model: a ``SentenceTransformer`` (:func:`hbkit.encoders.load.load_encoder`).
        texts: the texts to encode.
        prompt_name: the model's prompt to prepend (``query``/``passage``), if it has it.
        batch_size: texts per forward pass.
        cache: store and reuse the array in the embedding cache.
        fp: the model's fingerprint for the cache key (None: computed from its weights).
        progress: show a progress bar.
        devices: devices to encode on in parallel (None: see above).

    Returns:
        A ``(len(texts), dim)`` float32 array of unit rows, in the order of ``texts``.

    Examples:
        >>> E = encode(load_encoder("tiny"), ["a question", "eine Frage"], "query") # doctest: +SKIP
        >>> E.shape  # doctest: +SKIP
    """
    prompts = getattr(model, "prompts", None) or {}
    prompt_name = prompt_name if prompt_name in prompts else None
    path = None
    if cache:
        fp = fp or fingerprint(model)
        h = hashlib.sha256(
            json.dumps([prompt_name, prompts.get(prompt_name), list(texts)]).encode()
        ).hexdigest()[:32]
        path = cache_dir() / "embeddings" / fp / f"{h}.npy"
        if path.is_file():
            try:
                arr = np.load(path)
                if arr.shape[0] == len(texts):
                    return arr
                log.warning(
                    "embedding cache %s holds %d rows for %d texts; re-encoding",
                    path,
                    arr.shape[0],
                    len(texts),
                )
            except Exception as e:  # noqa: BLE001 - truncated, empty or foreign files are all re-encoded
                log.warning(
                    "embedding cache %s is unreadable (%s: %s); re-encoding",
                    path,
                    type(e).__name__,
                    e,
                )
    if devices is None and torch.cuda.device_count() > 1:
        devices = [f"cuda:{i}" for i in range(torch.cuda.device_count())]
    # sentence-transformers' multi-process pool, one process per device
    if devices and len(devices) > 1:
        emb = model.encode(
            list(texts),
            prompt_name=prompt_name,
            batch_size=batch_size,
            convert_to_numpy=True,
            normalize_embeddings=True,
            show_progress_bar=progress,
            device=list(devices),
        )
        emb = np.asarray(emb, dtype=np.float32)
    else:
        emb = embed_texts(model, texts, prompt_name, batch_size, progress)
    # a per-process temporary file, then an atomic rename: concurrent writers never collide
    if path is not None:
        with atomic_path(path) as tmp:
            np.save(tmp, emb)
    return emb
