"""A training run's folder: its identity, and resume or refuse."""

from __future__ import annotations

import json
import logging
import os
import shutil
import time
from dataclasses import asdict
from pathlib import Path

from hbkit.core.digests import MAPPED_AT_LOAD, recall_derived, remember_derived
from hbkit.core.env import world
from hbkit.core.files import atomic_write_json, atomic_write_text, checksums_match, read_jsonl
from hbkit.encoders.load import LEGACY_FINGERPRINT_VERSIONS, fingerprint
from hbkit.train.config import TrainConfig, TrainError

log = logging.getLogger(__name__)


def warmup_args(ratio: float) -> dict:
    """transformers >= 5 takes the warm-up ratio as a float ``warmup_steps``; older versions as
    ``warmup_ratio``."""
    import transformers

    return (
        {"warmup_steps": float(ratio)}
        if int(transformers.__version__.split(".")[0]) >= 5
        else {"warmup_ratio": ratio}
    )


def latest_checkpoint(folder: Path) -> str | None:
    cps = (
        sorted(folder.glob("checkpoint-*"), key=lambda p: int(p.name.split("-")[1]))
        if folder.is_dir()
        else []
    )
    cps = [c for c in cps if (c / "trainer_state.json").is_file()]
    return str(cps[-1]) if cps else None


def finished_state(checkpoint: str | None, max_steps: int) -> dict | None:
    """The trainer state of ``checkpoint`` when it ends the run (``max_steps`` reached, or early
    stopping had stopped it), else None. Resuming from such a checkpoint would train one step more
    than the run has."""
    if not checkpoint:
        return None
    path = Path(checkpoint) / "trainer_state.json"
    try:
        state = json.loads(path.read_text())
    except ValueError:
        raise TrainError(
            f"{path} is damaged (not JSON, as after a kill mid-write); delete {Path(checkpoint)} "
            "to resume from the checkpoint before it, or run with --no-resume"
        ) from None
    control = state.get("stateful_callbacks", {}).get("TrainerControl", {})
    control = control[0] if isinstance(control, list) and control else control
    stopped = (
        bool(control.get("args", {}).get("should_training_stop"))
        if isinstance(control, dict)
        else False
    )
    return state if state.get("global_step", 0) >= max_steps or stopped else None


def pairs_fingerprint(pairs) -> str:
    """A content hash of a training set (every row's group, language, query, passage and answer
    key).

    A set memory-mapped from the corpus cache (a cached corpus or mix, as ``hbkit train`` and
    ``compare`` load it: :func:`hbkit.data.corpus_cache.load_cached`) costs a lookup after its first
    sight: the hash is remembered under :func:`_mapped_source` (which files, which operations on
    them) and the identities the files had when they were mapped
    (:data:`hbkit.core.digests.MAPPED_AT_LOAD`), so a file rewritten or replaced since is a new
    identity and is hashed again (see :mod:`hbkit.core.digests`). Anything else is hashed row by row
    each time."""
    source = _mapped_source(pairs)
    mapped = getattr(pairs, MAPPED_AT_LOAD, None) or {}
    if source is None or not set(source["files"]) <= set(mapped):
        return _hash_rows(pairs)
    idents = [mapped[f] for f in source["files"]]
    fp = recall_derived("pairs_fingerprint", source, idents)
    if fp is None:
        began = time.time_ns()
        fp = _hash_rows(pairs)
        remember_derived("pairs_fingerprint", source, idents, fp, began)
    return fp


#: bumped when :func:`_hash_rows` changes (its remembered values then no longer apply)
PAIRS_FINGERPRINT_VERSION = 1


def _hash_rows(pairs) -> str:
    import hashlib

    import pandas as pd

    h = hashlib.blake2b(digest_size=16)
    cols = [
        c for c in ("group", "lang", "query", "passage", "answer_key") if c in pairs.column_names
    ]
    for s in range(0, len(pairs), 200_000):
        df = pairs.select_columns(cols)[s : s + 200_000]
        h.update(pd.util.hash_pandas_object(pd.DataFrame(df), index=False).to_numpy().tobytes())
    h.update(repr((len(pairs), cols)).encode())
    return h.hexdigest()


def _mapped_source(pairs) -> dict | None:
    """What the rows of a ``datasets.Dataset`` are made of, when every one of them comes from a
    memory-mapped file: each block's file and the operations replayed on it (column selections,
    slices), the block layout, the row count, columns and output format, and a digest of its indices
    mapping (a ``select`` or ``filter``); None for anything held in memory (its rows are hashed each
    time). The files themselves enter by identity, in :func:`pairs_fingerprint`."""
    import hashlib

    try:
        from datasets.table import ConcatenationTable, MemoryMappedTable
    except ImportError:  # pragma: no cover - datasets is a core dependency
        return None
    table = getattr(pairs, "data", None)
    if table is None:
        return None
    layout = table.blocks if isinstance(table, ConcatenationTable) else [[table]]
    blocks = [
        [[os.path.abspath(b.path), repr(b.replays)] for b in row]
        if all(isinstance(b, MemoryMappedTable) for b in row)
        else None
        for row in layout
    ]
    if not blocks or any(row is None for row in blocks):
        return None
    indices = getattr(pairs, "_indices", None)
    digest = None
    if indices is not None:
        col = indices.column(0)
        col = col.combine_chunks() if hasattr(col, "combine_chunks") else col
        digest = hashlib.sha256(col.to_numpy(zero_copy_only=False).tobytes()).hexdigest()
    return {
        "version": PAIRS_FINGERPRINT_VERSION,
        "blocks": blocks,
        "rows": len(pairs),
        "columns": list(pairs.column_names),
        "indices": digest,
        "format": repr(getattr(pairs, "format", None)),
        "files": sorted({path for row in blocks for path, _ in row}),
    }


#: config fields added after folders were made: at these values they are left out of the identity,
#: so that a folder trained before the field existed (with what is now its default) stays resumable
_LATER_FIELDS = {"val_corpus": "held-out", "optim": "adamw_torch", "pad_to_multiple_of": None}
#: config fields that change how a model is computed or what is kept, not which model: never part of
#: the identity, so a run may be resumed with them changed (gradient checkpointing recomputes the
#: same activations with the same dropout masks; keep_checkpoints only says what stays on disk after
#: the save; dataloader_workers only says which process tokenises the same batches)
_HOW_FIELDS = ("gradient_checkpointing", "keep_checkpoints", "dataloader_workers")


def run_identity(encoder, pairs, config: TrainConfig, val_pairs=None) -> dict:
    """What a training folder was made with: the config, the base model's weights hash and the
    data's hash (and the validation corpus's, when it has one). Two runs with equal identities train
    the same model (up to non-deterministic kernels)."""
    cfg = {
        k: v
        for k, v in asdict(config).items()
        if k not in _HOW_FIELDS and not (k in _LATER_FIELDS and v == _LATER_FIELDS[k])
    }
    ident = {
        "config": cfg,
        "base_model": fingerprint(encoder),
        "data": pairs_fingerprint(pairs),
        "world_size": world()[1],
    }
    if val_pairs is not None:
        ident["val_data"] = pairs_fingerprint(val_pairs)
    return ident


def model_complete(model_dir: Path) -> bool:
    """A saved model folder is complete when ``hbkit_training.json`` lists every file with its
    sha256."""
    return checksums_match(model_dir, "hbkit_training.json")


def setup_differences(old: dict, identity: dict, encoder=None) -> list[str]:
    """The keys of ``identity`` that ``old`` (a folder's recorded identity) differs in. A base model
    recorded under an older fingerprint version
    (:data:`hbkit.encoders.load.LEGACY_FINGERPRINT_VERSIONS`) of the same weights counts as the
    same, so a folder trained before a fingerprint change stays resumable and reusable."""
    diff = [k for k in identity if old.get(k) != identity[k]]
    if (
        "base_model" in diff
        and encoder is not None
        and old.get("base_model")
        in {fingerprint(encoder, version=v) for v in LEGACY_FINGERPRINT_VERSIONS}
    ):
        diff.remove("base_model")
    return diff


def finished_model(model_dir: Path, identity: dict, encoder=None) -> bool:
    """Whether ``model_dir`` is a complete saved model (:func:`model_complete`: every file's sha256
    checked) trained with this set-up (the identity its ``hbkit_training.json`` records): reused as
    it is."""
    if not (model_dir.is_dir() and model_complete(model_dir)):
        return False
    done = json.loads((model_dir / "hbkit_training.json").read_text()).get("identity") or {}
    return not setup_differences(done, identity, encoder)


def prepare_folder(
    out_dir: Path, identity: dict, resume: bool, encoder=None, finished: bool | None = None
) -> str | None:
    """Check ``out_dir`` against this run: refuse another set-up, clean up when starting afresh, and
    return the checkpoint to resume from (after trimming the log to it). ``finished``:
    :func:`finished_model` of its ``model/``, when the caller has it (None: checked here)."""
    path = out_dir / "train_config.json"
    ckpt_dir = out_dir / "checkpoints"
    if resume and path.is_file():
        try:
            old = json.loads(path.read_text())
        except ValueError:
            raise TrainError(
                f"{path} is damaged (not JSON); the folder's set-up is unknown: delete {out_dir} "
                "or run with --no-resume to start afresh there"
            ) from None
        diff = setup_differences(old, identity, encoder)
        if diff and not latest_checkpoint(ckpt_dir) and not (out_dir / "model").exists():
            log.info(
                "%s holds another set-up but nothing trained (no checkpoint, no model): starting "
                "afresh",
                out_dir,
            )
            resume = False
        elif diff:
            keys = [
                f"config.{k}"
                for k in identity["config"]
                if old.get("config", {}).get(k) != identity["config"][k]
            ]
            what = ", ".join(keys + [k for k in diff if k != "config"])
            raise TrainError(
                f"{out_dir} holds a run with another set-up ({what} differ); resuming would mix "
                "them. Use --no-resume to start afresh there, or another --out"
            )
    if not resume or not path.is_file():
        for sub in ("checkpoints", "model"):
            shutil.rmtree(out_dir / sub, ignore_errors=True)
        (out_dir / "train_log.jsonl").unlink(missing_ok=True)
        atomic_write_json(path, identity)
        return None
    if finished if finished is not None else finished_model(out_dir / "model", identity, encoder):
        return None  # reused as it is, its log whole (its checkpoints are gone: nothing to trim to)
    resume_from = latest_checkpoint(ckpt_dir)
    log_path = out_dir / "train_log.jsonl"
    # keep the records up to the checkpoint: the steps after it are trained again
    if log_path.is_file():
        upto = int(Path(resume_from).name.split("-")[1]) if resume_from else 0
        keep = [r for r in read_jsonl(log_path) if r.get("step", 0) <= upto]
        atomic_write_text(log_path, "".join(json.dumps(r) + "\n" for r in keep))
    return resume_from
