"""``hbkit doctor``: a preflight before hours of GPU time. For a profile, one table of what the run
needs and whether it is here: every data source (present locally, its checksum, or where it would be
downloaded from and whether that address is reachable), the base encoder, the disk space, and CUDA
with bf16 and the GPU memory for the profile's batch. Each row that would stop the run says how to
fix it; :func:`doctor` returns the rows and the command line exits non-zero when one is missing.
Offline it answers at once (no download, no connection).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd

from hbkit.analysis.reference import published_file
from hbkit.core.env import (
    data_roots,
    default_data_roots,
    default_run_dir,
    low_memory_requested,
    offline,
)
from hbkit.core.files import existing_ancestor, sha256_file
from hbkit.data.corpora import corpus_parts
from hbkit.data.fetch import PROJECT_DATA, hub_revision, missing_release_files
from hbkit.data.registry import DataError, is_corpus_benchmark
from hbkit.data.releases.miracl import (
    corpus_dir,
    corpus_files,
    hub_cache_dir,
    miracl_root,
    topics_path,
)
from hbkit.data.releases.mmarco import mmarco_dir
from hbkit.data.releases.squadshifts import squadshifts_dir
from hbkit.data.releases.translate_train import TRANSLATE_TRAIN_LANGS, squad_translate_train_files
from hbkit.data.sources import (
    HUB_SOURCES,
    MMARCO_LANGS,
    SOURCES,
    SQUAD_TT_MANIFEST,
    SQUADSHIFTS,
    model_revision,
    release_checksums,
)
from hbkit.encoders.load import ALIASES, DEFAULT_MODEL, REGISTRY, hub_reachable
from hbkit.experiment.profiles import profile as get_profile

#: parameters of the encoders hbkit knows (for the disk and memory estimates)
PARAMS = {
    "FacebookAI/xlm-roberta-base": 278e6,
    "FacebookAI/xlm-roberta-large": 560e6,
    "sentence-transformers/LaBSE": 471e6,
    "intfloat/multilingual-e5-small": 118e6,
    "intfloat/multilingual-e5-base": 278e6,
    "intfloat/multilingual-e5-large": 560e6,
    "google-bert/bert-base-multilingual-cased": 178e6,
    "hbkit/tiny": 8e6,
}


#: measured by `make gpu-check` (results/gpu): peak GPU memory of an XLM-R base training step at
#: batch 100 and 128 tokens in bf16 (H100 and H200 alike)
MEASURED_PEAK_GIB = {"params": 278e6, "batch": 100, "gib": 10.2}


#: the peak RSS (MB) of training the cpu profile's model on CPU (embedded mE5-small, batch 32,
#: frozen word embeddings, torch's huge pages on: ``import hbkit`` sets them): a whole model in the
#: main job (``benchmarks/bench_compare.py --profiles cpu``, the train stage, at 92c513b: 2,983 MB
#: against 5,014 before the huge pages), and with HBKIT_LOW_MEMORY=1 as well
#: (``benchmarks/bench_train_memory.py``, 7 steps: 2,166 MB against 2,653 MB with huge pages
#: alone), and the time per step that costs
CPU_TRAIN_PEAK_MB = {
    "model": "intfloat/multilingual-e5-small",
    "batch": 32,
    "default": 2983,
    "low_memory": 2166,
    "slower": 1.19,
}


#: the release each pool benchmark and the xquad-train corpus read
RELEASE_OF = {
    "xquad-r": "xquad-r",
    "xquad-r-eval": "xquad-r",
    "mlqa-r": "mlqa-r",
    "tydiqa": "tydiqa",
    "mlqa-r-rebuilt": "mlqa",
    "xquad-train": "xquad-r",
}


COLUMNS = ["check", "status", "detail", "fix"]


MISSING = "missing"


def _row(check: str, status: str, detail: str, fix: str = "") -> dict:
    return {"check": check, "status": status, "detail": detail, "fix": fix}


def _data_root(data_dir) -> Path:
    named = [root for _, root in data_roots(data_dir)]
    return named[0] if named else default_data_roots(PROJECT_DATA)[0]


def _release_rows(root: Path, names: list[str]) -> list[dict]:
    rows, sums = [], release_checksums()
    for name in dict.fromkeys(names):
        missing = missing_release_files(root, name)
        if missing:
            rows.append(
                _row(
                    f"data: {name}",
                    MISSING,
                    f"{len(missing)} file(s) absent, e.g. {missing[0]}",
                    f"hbkit data download {name} --data-dir {root} (online), or place the release "
                    "there (data/README.md)",
                )
            )
            continue
        folder = root / SOURCES[name]["folder"]
        bad = [
            rel
            for rel, want in sums.items()
            if rel.startswith(SOURCES[name]["folder"] + "/")
            and (root / rel).is_file()
            and sha256_file(root / rel) != want
        ]
        checked = sum(
            1
            for rel in sums
            if rel.startswith(SOURCES[name]["folder"] + "/") and (root / rel).is_file()
        )
        if bad:
            rows.append(
                _row(
                    f"data: {name}",
                    MISSING,
                    f"{root / bad[0]}: sha256 differs from the release ({len(bad)} file(s))",
                    f"delete it and run hbkit data download {name}",
                )
            )
        else:
            rows.append(
                _row(
                    f"data: {name}",
                    "ok",
                    f"{folder} ({checked} file(s) match their sha256)"
                    if checked
                    else f"{folder} (no pinned checksum; checked when read)",
                )
            )
    return rows


def _corpus_rows(cfg: dict, root: Path) -> list[dict]:
    """One row per part of the training corpus (a mix has several) and one for the validation
    corpus."""
    rows = [r for part in corpus_parts(cfg["corpus"]) for r in _part_rows(part, cfg, root)]
    if cfg.get("val_corpus") == "squadshifts":
        try:
            folder = squadshifts_dir(root, download_missing=False)
            off = [
                f
                for d, (f, size, *_) in SQUADSHIFTS["files"].items()
                if (folder / f).stat().st_size != size
            ]
            rows.append(
                _row(
                    "validation: squadshifts",
                    MISSING if off else "ok",
                    f"{', '.join(off)} differ from the release's size"
                    if off
                    else f"4 domain files in {folder}",
                    f"hbkit data download squadshifts --data-dir {root} (online)" if off else "",
                )
            )
        except DataError as e:
            rows.append(
                _row(
                    "validation: squadshifts",
                    MISSING,
                    str(e).split(":")[0] + ": not found",
                    f"hbkit data download squadshifts --data-dir {root} (online), or place the "
                    "four files",
                )
            )
    return rows


def _part_rows(part: str, cfg: dict, root: Path) -> list[dict]:
    langs = cfg.get("train_languages")
    if part == "xquad-train":
        return []  # the xquad-r release, listed with the benchmarks
    if part.partition(":")[0] == "mmarco":
        have = [l for l in (langs or sorted(MMARCO_LANGS)) if l in MMARCO_LANGS]
        try:
            folder = mmarco_dir(root, have, download_missing=False)
        except DataError as e:
            return [
                _row(
                    "training corpus: mmarco",
                    MISSING,
                    str(e).split("(")[0].strip(),
                    f"hbkit data download mmarco --data-dir {root} --languages {','.join(have)} "
                    "(online; 3-8 GB per language), or place the hub repository's files",
                )
            ]
        return [_row("training corpus: mmarco", "ok", f"{len(have)} languages in {folder}")]
    if part == "squad-translate-train":
        if len(corpus_parts(cfg["corpus"])) > 1:  # in a mix: the languages it has
            langs = [l for l in langs if l in TRANSLATE_TRAIN_LANGS] if langs else None
        try:
            files = squad_translate_train_files(root, langs)
        except DataError as e:
            return [
                _row(
                    "training corpus: squad-translate-train",
                    MISSING,
                    str(e).split(";")[0],
                    f"hbkit data download squad-translate-train --data-dir {root} (online), or "
                    "place the release files (docs/howto/paper-protocol.md)",
                )
            ]
        off = [
            f"{l}: {p.stat().st_size:,} bytes, the release has {SQUAD_TT_MANIFEST[l][0]:,}"
            for l, p in files.items()
            if l in SQUAD_TT_MANIFEST and p.stat().st_size != SQUAD_TT_MANIFEST[l][0]
        ]
        if off:
            return [
                _row(
                    "training corpus: squad-translate-train",
                    MISSING,
                    "; ".join(off[:2]),
                    "download the release files again (their sha256 is pinned in "
                    "hbkit.data.sources)",
                )
            ]
        return [
            _row(
                "training corpus: squad-translate-train",
                "ok",
                f"{len(files)} files, sizes of the release",
            )
        ]
    path = Path(part)
    return [
        _row(
            f"training corpus: {path.name}",
            "ok" if path.is_file() else MISSING,
            str(path),
            "" if path.is_file() else "give an existing .jsonl/.csv/.parquet of pairs to --corpus",
        )
    ]


def _miracl_rows(spec: str, data_dir) -> list[dict]:
    langs = [l for l in spec.partition(":")[2].split(",") if l]
    # the rule load_miracl follows: data_dir, else $HBKIT_DATA_DIR, else the hub cache
    local = miracl_root(data_dir)
    where = local or _data_root(data_dir) / "miracl"
    rows = []
    for lang in langs:
        found = next(
            (
                r
                for r in (local, hub_cache_dir())
                if r is not None
                and topics_path(r, lang, "dev").is_file()
                and corpus_files(corpus_dir(r, lang))
            ),
            None,
        )
        if found is not None:
            rows.append(
                _row(
                    f"data: miracl-{lang}",
                    "ok",
                    f"{found} ({len(corpus_files(corpus_dir(found, lang)))} corpus shards)",
                )
            )
        elif offline():  # compare skips an absent corpus benchmark and says so: not a stop
            rows.append(
                _row(
                    f"data: miracl-{lang}",
                    "skipped",
                    "not here, and offline (HF_HUB_OFFLINE/HBKIT_OFFLINE): "
                    "the run leaves it out and says so",
                    f"place the release under {where} (data/README.md), or run online: it "
                    "downloads from "
                    f"{HUB_SOURCES['miracl']['repo']} at {hub_revision('miracl')[:10]}",
                )
            )
        else:
            rows.append(
                _row(
                    f"data: miracl-{lang}",
                    "download",
                    f"from the hub: {HUB_SOURCES['miracl']['repo']} and "
                    f"{HUB_SOURCES['miracl-corpus']['repo']} (pinned revisions) into "
                    f"{hub_cache_dir()}",
                )
            )
    return rows


def _model_rows(cfg: dict) -> list[dict]:
    name = ALIASES.get(cfg["model"], cfg["model"])
    if name == "hbkit/tiny" or Path(name).expanduser().is_dir():
        return [_row("encoder", "ok", f"{name} (local)")]
    if name == DEFAULT_MODEL:
        return [
            _row("encoder", "ok", f"{name} (from the hub when reachable, else the embedded copy)")
        ]
    try:
        from huggingface_hub import try_to_load_from_cache

        cached = isinstance(
            try_to_load_from_cache(name, "config.json", revision=model_revision(name)), str
        )
    except Exception:  # noqa: BLE001 - an old huggingface_hub: treat as not cached
        cached = False
    if cached:
        return [_row("encoder", "ok", f"{name} (in the Hugging Face cache)")]
    if offline() or not hub_reachable():
        return [
            _row(
                "encoder",
                MISSING,
                f"{name}: not in the Hugging Face cache and the hub is not reachable",
                "run once online (it is cached), or pass a local folder to --model"
                + ("" if name in REGISTRY else "; it is not one of hbkit's known encoders"),
            )
        ]
    return [_row("encoder", "download", f"{name} from the hub (reachable)")]


def _runs(cfg: dict) -> int:
    return 1 + len(cfg["seeds"]) * (len(cfg["strategies"]) + len(cfg.get("alphas") or []))


def model_disk(cfg: dict) -> tuple[float, float]:
    """Bytes on disk per trained model of ``cfg``: what stays (the saved model, fp32 weights), and
    what a model in training holds besides until it is saved (two checkpoints of the weights and
    AdamW's two moments, removed then: TrainConfig.keep_checkpoints). An upper bound: frozen word
    embeddings (cpu profile) have no moments."""
    params = PARAMS.get(cfg["model"], 278e6)
    return params * 4, params * 4 * 3 * 2


def _disk_rows(cfg: dict, out: Path) -> list[dict]:
    per_model, while_training = model_disk(cfg)
    need = per_model * (_runs(cfg) - 1) + while_training
    stats = _miracl_candidates()
    for spec in cfg.get("corpus_benchmarks") or []:
        if spec.startswith("miracl:"):
            n = sum(stats.get(l, 0) for l in spec.partition(":")[2].split(",") if l)
            # fp16 embeddings up to 1,024 dims, plus the corpus itself
            need += n * 1024 * 2 * 2 * _runs(cfg)
    probe = existing_ancestor(out)
    free = shutil.disk_usage(probe).free
    status = "ok" if free >= need else MISSING
    return [
        _row(
            "disk",
            status,
            f"up to about {need / 2**30:,.1f} GiB ({_runs(cfg) - 1} trained models of "
            f"{per_model / 2**30:,.2f} GiB, {while_training / 2**30:,.1f} GiB more for the "
            "checkpoints of the one in training, removed once it is saved; corpus embeddings), "
            f"{free / 2**30:,.1f} GiB free at {probe}",
            "" if status == "ok" else "free space, or --out on a larger disk",
        )
    ]


def _available_mb() -> float | None:
    """MemAvailable of /proc/meminfo in MB (None where there is none)."""
    try:
        for line in open("/proc/meminfo"):
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


def _memory_rows(cfg: dict) -> list[dict]:
    """The memory a CPU training of ``cfg`` peaks at (measured for the cpu profile's shape, scaled
    by batch size for others of its model), against what this machine has available."""
    import torch  # heavy: imported only for this check

    m = CPU_TRAIN_PEAK_MB
    if torch.cuda.is_available() or cfg["model"] != m["model"]:
        return []
    scale = cfg["batch_size"] / m["batch"]
    peak, low = m["default"] * max(1.0, scale), m["low_memory"] * max(1.0, scale)
    have = _available_mb()
    on = low_memory_requested()
    need = low if on else peak
    detail = (
        f"training peaks at about {peak / 1024:.1f} GB of memory ({low / 1024:.1f} GB with "
        f"HBKIT_LOW_MEMORY=1, {m['slower']:.2f}x the time per step; on: {'yes' if on else 'no'})"
        + (f"; {have / 1024:.1f} GB available now" if have is not None else "")
    )
    if have is None or have >= need:
        return [_row("memory", "ok", detail)]
    fix = (
        "set HBKIT_LOW_MEMORY=1, or free memory"
        if not on and have >= low
        else "free memory, or a smaller --batch-size (the peak scales with it)"
    )
    return [_row("memory", MISSING, detail, fix)]


def _miracl_candidates() -> dict[str, int]:
    """MIRACL dev corpus sizes per language (the paper's Table 11, shipped)."""

    t = pd.read_csv(published_file("arxiv-2408.10536-data-stats.csv"))
    t = t[(t["table"] == 11) & (t["statistic"] == "num_candidates")]
    return {r.lang: int(float(r.value)) for r in t.itertuples()}


def _cuda_rows(cfg: dict) -> list[dict]:
    import torch  # heavy: imported only for this check

    gpu_needed = cfg["profile"] in ("paper", "lareqa")
    if not torch.cuda.is_available():
        return [
            _row(
                "CUDA",
                MISSING if gpu_needed else "info",
                "no CUDA device",
                "run the paper and lareqa profiles on a GPU machine; --profile cpu runs here"
                if gpu_needed
                else "",
            )
        ]
    props = torch.cuda.get_device_properties(0)
    total = props.total_memory / 2**30
    params = PARAMS.get(cfg["model"], 278e6)
    need = (
        MEASURED_PEAK_GIB["gib"]
        * (params / MEASURED_PEAK_GIB["params"])
        * max(1.0, cfg["batch_size"] / MEASURED_PEAK_GIB["batch"])
    )
    bf16 = torch.cuda.is_bf16_supported()
    rows = [
        _row(
            "CUDA",
            "ok",
            f"{props.name}, {total:.0f} GiB, bf16 {'yes' if bf16 else 'no (fp16 instead)'}",
        )
    ]
    rows.append(
        _row(
            "GPU memory",
            "ok" if need <= total * 0.9 else MISSING,
            f"about {need:.1f} GiB for batch {cfg['batch_size']} (scaled from the measured 10.2 "
            "GiB of XLM-R base at batch 100)",
            ""
            if need <= total * 0.9
            else "set TrainConfig(mini_batch_size=32) (GradCache, same loss) or a smaller "
            "--batch-size",
        )
    )
    return rows


def doctor(
    profile_name: str = "auto", data_dir=None, out: str | Path | None = None, **overrides
) -> pd.DataFrame:
    """The preflight table of ``profile_name`` (with ``overrides``): columns ``check, status,
    detail, fix``; status ``ok``, ``download`` (fetched on first use, the address is reachable),
    ``info``, ``skipped`` (a corpus benchmark the run would leave out, saying so) or ``missing``
    (the run would stop or could not finish: ``fix`` says what to do)."""
    cfg = get_profile(profile_name, **overrides)
    root = _data_root(data_dir)
    releases = [RELEASE_OF[b] for b in cfg["benchmarks"] if b in RELEASE_OF]
    if cfg["corpus"] == "xquad-train":
        releases.append(RELEASE_OF["xquad-train"])
    rows = [
        _row(
            "profile",
            "ok",
            f"{cfg['profile']}: {cfg['model']}, {_runs(cfg)} models, {cfg['steps']} steps at "
            f"batch {cfg['batch_size']}",
        )
    ]
    rows += _release_rows(root, releases)
    for spec in cfg.get("corpus_benchmarks") or []:
        if spec.startswith("miracl:"):
            rows += _miracl_rows(spec, data_dir)
        elif is_corpus_benchmark(spec):
            rows += _release_rows(root, ["tydiqa"])
    rows += _corpus_rows(cfg, root)
    rows += _model_rows(cfg)
    rows += _disk_rows(cfg, Path(out) if out is not None else default_run_dir(cfg["profile"]))
    rows += _memory_rows(cfg)
    rows += _cuda_rows(cfg)
    return pd.DataFrame(rows, columns=COLUMNS).drop_duplicates(
        subset=["check", "status", "detail"], ignore_index=True
    )
