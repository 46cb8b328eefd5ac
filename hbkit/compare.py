"""The main job: a plan of runs (strategy, α, seed) and stages that read and write files in one run folder.

``compare(profile="auto", out="runs/compare")``:

1. **plan** — the base model (evaluated once) and one run per (strategy, α, training seed): :func:`plan`;
2. **data** — the training pairs and the benchmarks (evaluation subsample drawn with the fixed ``eval_seed``),
   their content fingerprints; the folder's ``config.json`` must agree (:func:`_check_reusable`). Only when
   every check passed are ``overlap.csv``, ``clusters.csv`` (the answer clusters, the statistics' unit) and
   ``config.json`` written;
3. **train** — ``models/<run>/`` (``hbkit.training.train``: a finished, intact model is reused, a damaged or
   interrupted one is retrained / resumed). A run whose results are all present (:func:`results_complete`) is
   neither trained nor evaluated: committed results without weights are reused, and new seeds add to them;
4. **evaluate** — ``per_query/<run>__<benchmark>.parquet`` (per-query metrics) and
   ``alignment/<run>__<benchmark>.parquet`` (per-group alignment), written atomically; a file that exists and
   reads back is reused, a damaged one is named and recomputed;
5. **aggregate** — ``results.csv`` (every metric per model and seed), ``aggregate.csv`` (mean and sd over
   seeds, t intervals over seeds and answer clusters), ``effects.csv`` (paired effects and the strategy-level
   test: se, df, p, BH within each family, MDE, the variance split), ``umap.csv``: all statistics come from
   :mod:`hbkit.stats`;
6. **report** — :func:`report` renders ``table.md``/``table.csv``, ``verdicts.csv``, ``power.csv`` (seeds needed),
   the published numbers in two views and ``report.html`` from the files above alone (``hbkit report RUN_DIR``:
   byte for byte the same).

The folder is locked while a job uses it (:class:`hbkit.files.RunLock`). ``timings.json``: wall time per stage.
"""
from __future__ import annotations

import io
import json
import logging
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from .config import profile as get_profile
from .files import RunLock, atomic_path, atomic_write_json, atomic_write_text
from .sampling import STRATEGY_ALPHA

log = logging.getLogger(__name__)
BENCHMARKS = ("xquad-r-eval", "mlqa-r", "tydiqa")  # the default pool benchmarks (profile key ``benchmarks``)
CORPUS_METRICS = ("ndcg@10", "recall@100", "mrr@10")


@dataclass(frozen=True)
class Run:
    """One model of the plan. ``name`` is its display name (``base``, ``xx``, ``xy``, ``hybrid``,
    ``hybrid-a0.25``); ``seed`` is None for the base model."""

    name: str
    strategy: str | None
    alpha: float | None
    seed: int | None

    @property
    def id(self) -> str:
        return self.name if self.seed is None else f"{self.name}-s{self.seed}"


def umap_bench(cfg: dict) -> str:
    """The parallel benchmark whose questions the UMAP pictures show (XQuAD-R: 11-way parallel)."""
    return next((b for b in ("xquad-r-eval", "xquad-r", "mlqa-r") if b in cfg["benchmarks"]), cfg["benchmarks"][0])


def plan(cfg: dict) -> list[Run]:
    """The base model, then every (strategy, α, seed): xx, xy and hybrid (α = 0.5) plus ``hybrid-a<α>`` for each
    extra α, once per training seed."""
    runs = [Run("base", None, None, None)]
    for seed in cfg["seeds"]:
        runs += [Run(s, s, STRATEGY_ALPHA[s], seed) for s in cfg["strategies"]]
        runs += [Run(f"hybrid-a{a:g}", "hybrid", float(a), seed) for a in cfg.get("alphas") or [] if a != 0.5]
    return runs


def _subsample_pairs(pairs, n_groups: int | None, seed: int):
    if not n_groups:
        return pairs
    groups = sorted(set(pairs["group"]))
    keep = set(np.random.default_rng(seed).choice(groups, size=min(n_groups, len(groups)), replace=False).tolist())
    return pairs.filter(lambda r: r["group"] in keep)


def bench_fingerprint(b) -> str:
    """A content hash of a benchmark as scored: queries, candidates and relevance."""
    import hashlib

    h = hashlib.blake2b(digest_size=16)
    for df in (b.queries[["id", "lang", "text", "group"]], b.candidates[["id", "lang", "text"]]):
        h.update(pd.util.hash_pandas_object(df, index=False).to_numpy().tobytes())
    h.update(json.dumps(b.relevance, sort_keys=True).encode())
    return h.hexdigest()


#: profile keys that change a trained model or a per-query result; the others (strategies, alphas, seeds,
#: umap_groups, permutations, delta) only add runs or redo cheap steps, so a folder stays reusable
RESULT_KEYS = ("model", "steps", "batch_size", "lr", "freeze_word_embeddings", "train_groups", "train_languages",
               "eval_groups", "eval_seed", "data", "corpus", "benchmarks", "corpus_benchmarks", "val_groups",
               "eval_steps", "eval_metric", "early_stopping_patience", "weight_decay", "prompts")
#: what a folder written before a key existed was made with
LEGACY = {"corpus": "xquad-train", "benchmarks": list(BENCHMARKS), "corpus_benchmarks": [], "val_groups": 0,
          "eval_steps": 20, "eval_metric": "loss", "early_stopping_patience": 0, "weight_decay": 0.01,
          "prompts": None}


#: keys that may grow in a reused folder: a benchmark added later (say MIRACL, once downloaded) is evaluated for
#: every model already there; one removed or changed is refused
ADDITIVE_KEYS = ("benchmarks", "corpus_benchmarks", "eval_groups", "data")


def _differences(old: dict, cfg: dict) -> list[str]:
    diff = []
    for k in RESULT_KEYS:
        a, b = old.get(k), cfg.get(k)
        if k in ADDITIVE_KEYS and isinstance(a, (list, dict)) and isinstance(b, (list, dict)):
            if k == "eval_groups":  # only the benchmarks the folder already holds must be cut the same way
                a = {n: v for n, v in a.items() if n in old.get("benchmarks", [])}
                b = {n: v for n, v in (b or {}).items() if n in old.get("benchmarks", [])}
            if isinstance(a, list) and set(a) <= set(b):
                continue
            if isinstance(a, dict) and all(n in b and b[n] == v for n, v in a.items()):
                continue
            if k == "data":
                changed = [n for n in a if n in b and b[n] != a[n]]
                diff.append(f"data: the files differ ({', '.join(changed)})" if changed else
                            f"data: no longer present ({', '.join(n for n in a if n not in b)})")
                continue
            diff.append(f"{k}: {a!r} -> {b!r} (adding is fine; removing or changing is not)")
        elif a != b:
            diff.append(f"{k}: {a!r} -> {b!r}")
    return diff


def _check_reusable(out: Path, cfg: dict, legacy_data: dict | None = None) -> None:
    """Refuse to mix results of two set-ups (or two data sets) in one folder: the saved models and per-query
    results of ``out`` are reused only if its ``config.json`` agrees with ``cfg`` on :data:`RESULT_KEYS`, where
    the :data:`ADDITIVE_KEYS` may only grow (the new benchmarks are then evaluated for every model)."""
    path = out / "config.json"
    if not path.is_file() or not any((out / sub).is_dir() and any((out / sub).iterdir()) for sub in ("models", "per_query")):
        return
    try:
        old = {**LEGACY, **read_run_json(path, dict)}
    except ValueError as e:
        raise ValueError(f"{e}. Its set-up is unknown, so its models and results cannot be reused safely: use another "
                         "--out, or --force to retrain and re-evaluate everything there") from None
    for name, fp in (legacy_data or {}).items():   # a corpus fingerprint written by hbkit before content_key
        if isinstance(old.get("data"), dict) and old["data"].get(name) == fp and name in cfg.get("data", {}):
            old["data"][name] = cfg["data"][name]
    diff = _differences(old, cfg)
    if diff:
        hint = (" (--profile lareqa is the former paper profile, without the paper's prefixes and nine training "
                "languages)" if any(d.startswith(("prompts", "train_languages")) for d in diff) else "")
        raise ValueError(f"{out} holds models and results of another set-up ({'; '.join(diff)}); reusing them would "
                         f"mix the two{hint}. Use another --out, or --force to retrain and re-evaluate everything there")


def _training_pairs(cfg: dict, data_dir):
    from .corpora import load_training_corpus
    from .data import parallel_pairs

    if cfg["corpus"] == "xquad-train":
        return parallel_pairs(languages=cfg["train_languages"], data_dir=data_dir)
    return load_training_corpus(cfg["corpus"], data_dir, languages=cfg["train_languages"])


def corpus_fingerprint(b) -> str:
    """A hash of a corpus benchmark: its topics, qrels and the bytes of its corpus files
    (:func:`hbkit.files.content_key`)."""
    from .files import content_key

    return content_key(list(b.files), b.topics, b.qrels, [Path(f).name for f in b.files], length=32)


def legacy_corpus_fingerprint(b) -> str:
    """The corpus fingerprint hbkit wrote before :func:`corpus_fingerprint` hashed the files' bytes (topics, qrels,
    the shards' names and sizes): a folder holding it is read as made with the same data, and upgraded."""
    import hashlib

    h = hashlib.blake2b(digest_size=16)
    h.update(json.dumps([b.topics, b.qrels, [(Path(f).name, Path(f).stat().st_size) for f in b.files]],
                        sort_keys=True).encode())
    return h.hexdigest()


def _stage_data(cfg: dict, data_dir, allow_overlap: bool = False):
    """Training pairs, pool benchmarks (subsampled with ``eval_seed``), corpus benchmarks (those whose files are
    absent are skipped and said so), the zero-shot check, and the content fingerprints."""
    from .corpora import check_zero_shot, overlap_counts
    from .data import DataError, check_benchmark_names, check_disjoint, load_benchmark
    from .miracl import load_corpus_benchmarks
    from .training import pairs_fingerprint

    pairs = _training_pairs(cfg, data_dir)
    benches = {}
    for name in cfg["benchmarks"]:
        b = load_benchmark(name, data_dir)
        n = (cfg["eval_groups"] or {}).get(name)
        benches[name] = b.subsample(n, seed=cfg["eval_seed"]) if n else b
    corpora, notes = {}, []
    for spec in check_benchmark_names(cfg.get("corpus_benchmarks") or []) if cfg.get("corpus_benchmarks") else []:
        try:
            for b in load_corpus_benchmarks(spec, data_dir):
                corpora[b.name] = b
        except DataError as e:
            log.warning("%s skipped: %s", spec, e)
            notes.append(f"{spec} skipped: {str(e).splitlines()[0]}")
    if "xquad-r-eval" in benches and cfg["corpus"] == "xquad-train":
        check_disjoint(pairs["group"], benches["xquad-r-eval"])
    overlap = overlap_counts(pairs, benches)
    check_zero_shot(overlap, force=allow_overlap)   # refused: nothing written
    fps = {"train": pairs_fingerprint(pairs), **{n: bench_fingerprint(b) for n, b in benches.items()},
           **{n: corpus_fingerprint(b) for n, b in corpora.items()}}
    return pairs, benches, corpora, fps, notes, overlap


def clusters_table(benches: dict) -> pd.DataFrame:
    """``benchmark, group, cluster`` of every pool benchmark (:func:`hbkit.data.answer_clusters`): the unit of
    the statistics. Corpus benchmarks have none (each query is its own unit)."""
    from .data import answer_clusters

    parts = [answer_clusters(b).assign(benchmark=name) for name, b in benches.items()]
    return pd.concat(parts, ignore_index=True)[["benchmark", "group", "cluster"]]


def _read_parquet(path: Path) -> pd.DataFrame | None:
    """A saved result, or None when it is missing or damaged (then named in the log, and recomputed)."""
    if not path.is_file():
        return None
    try:
        return pd.read_parquet(path)
    except Exception as e:  # noqa: BLE001 - truncated, empty or foreign files are all recomputed
        log.warning("%s is damaged (%s: %s); recomputing it", path, type(e).__name__, str(e)[:120])
        return None


def _read_npy(path: Path) -> np.ndarray | None:
    """A saved array, or None when it is missing or damaged (a 0-byte or truncated file is named in the log, and
    recomputed)."""
    if not path.is_file():
        return None
    try:
        return np.load(path)
    except (OSError, ValueError, EOFError) as e:
        log.warning("%s is damaged (%s: %s); recomputing it", path, type(e).__name__, str(e)[:120])
        return None


def _write_parquet(df: pd.DataFrame, path: Path) -> None:
    with atomic_path(path) as tmp:
        df.to_parquet(tmp, index=False)


def base_encoder(cfg: dict, path: str | None = None):
    """The encoder of a run: ``cfg["model"]`` (or a trained folder ``path``) with the profile's ``prompts`` when it
    has none of its own (:func:`hbkit.models.apply_prompts`)."""
    from .models import apply_prompts, load_encoder

    return apply_prompts(load_encoder(path or cfg["model"]), cfg.get("prompts"))


def _stage_train(run: Run, cfg: dict, pairs, out: Path, progress: bool) -> Path:
    from .training import TrainConfig, train

    extra = {"corpus": cfg["corpus"], "weight_decay": cfg["weight_decay"]}
    if cfg["val_groups"]:
        extra.update(val_groups=cfg["val_groups"], eval_steps=cfg["eval_steps"], save_steps=cfg["eval_steps"],
                     eval_metric=cfg["eval_metric"], early_stopping_patience=cfg["early_stopping_patience"])
    else:
        extra.update(save_steps=max(10, cfg["steps"] // 4))
    tc = TrainConfig(strategy=run.strategy, alpha=run.alpha if run.strategy == "hybrid" else 0.5,
                     batch_size=cfg["batch_size"], max_steps=cfg["steps"], lr=cfg["lr"],
                     freeze_word_embeddings=cfg["freeze_word_embeddings"], seed=run.seed, **extra)
    return train(base_encoder(cfg), _subsample_pairs(pairs, cfg["train_groups"], run.seed), tc,
                 out / "models" / run.id, progress=progress)


def _stage_evaluate(run: Run, encoder, benches: dict, corpora: dict, out: Path, umap_q: pd.DataFrame, timings: dict,
                    progress: bool):
    """Per-query metrics and per-group alignment of one model on every pool benchmark, and per-query metrics on
    every corpus benchmark (sharded encoding, faiss search; shards shared by the runs under ``out/corpus``);
    each file is reused when intact."""
    from .alignment import alignment_per_group
    from .evaluation import encode, evaluate_embeddings
    from .models import fingerprint

    fp = fingerprint(encoder)
    ident = {"model": run.name, "strategy": run.strategy or "base", "alpha": run.alpha, "seed": run.seed}
    for bname, bench in benches.items():
        pq_path = out / "per_query" / f"{run.id}__{bname}.parquet"
        al_path = out / "alignment" / f"{run.id}__{bname}.parquet"
        if _read_parquet(pq_path) is not None and _read_parquet(al_path) is not None:
            timings["reused_results"] += 1
            continue
        t = time.perf_counter()
        Q = encode(encoder, bench.queries["text"].tolist(), "query", fp=fp, progress=progress)
        C = encode(encoder, bench.candidates["text"].tolist(), "passage", fp=fp, progress=progress)
        timings["encode"] += time.perf_counter() - t
        t = time.perf_counter()
        res = evaluate_embeddings(bench, Q, C, progress=progress)
        timings["score"] += time.perf_counter() - t
        t = time.perf_counter()
        al = alignment_per_group(Q, bench.queries["lang"].to_numpy(), bench.queries["group"].to_numpy())
        timings["align"] += time.perf_counter() - t
        _write_parquet(res.per_query.assign(**ident), pq_path)
        _write_parquet(al.assign(benchmark=bname, **ident), al_path)
    todo = [b for n, b in corpora.items() if _read_parquet(out / "per_query" / f"{run.id}__{n}.parquet") is None]
    timings["reused_results"] += len(corpora) - len(todo)
    if todo:
        from .search import evaluate_corpus

        t = time.perf_counter()
        _, pq = evaluate_corpus(encoder, todo, out / "corpus", progress=progress, metrics=list(CORPUS_METRICS))
        timings["corpus"] = timings.get("corpus", 0.0) + time.perf_counter() - t
        for name, part in pq.groupby("benchmark"):
            _write_parquet(part.assign(**ident), out / "per_query" / f"{run.id}__{name}.parquet")
    umap_path = out / "umap" / f"{run.id}.npy"
    if _read_npy(umap_path) is None:
        with atomic_path(umap_path) as tmp:
            np.save(tmp, encode(encoder, umap_q["text"].tolist(), "query", fp=fp))


def results_complete(out: Path, run: Run, bench_names: list[str], umap: bool) -> bool:
    """Whether every result of ``run`` is in ``out`` and reads back: per-query metrics of each benchmark, per-group
    alignment of each pool benchmark and (``umap``: the model's first seed) its UMAP embeddings. Then neither its
    weights nor any training are needed: committed results (no weights) are reused, and adding seeds trains only
    the new ones."""
    from .data import is_corpus_benchmark

    for name in bench_names:
        if _read_parquet(out / "per_query" / f"{run.id}__{name}.parquet") is None:
            return False
        if not is_corpus_benchmark(name) and _read_parquet(out / "alignment" / f"{run.id}__{name}.parquet") is None:
            return False
    return not umap or _read_npy(out / "umap" / f"{run.id}.npy") is not None


def load_per_query(out: str | Path, kind: str = "per_query") -> pd.DataFrame:
    """Every saved per-query (``kind="per_query"``) or per-group alignment (``"alignment"``) file of a run folder,
    concatenated; a damaged file is an error naming it (run ``compare`` again to recompute it)."""
    frames = []
    for f in sorted(Path(out, kind).glob("*.parquet")):
        if f.name.startswith("."):  # a temporary file of an interrupted write (hbkit.files.tmp_name), never a result
            continue
        try:
            frames.append(pd.read_parquet(f))
        except Exception as e:  # noqa: BLE001
            raise ValueError(f"{f} is damaged ({type(e).__name__}); run `hbkit compare` on {out} again to recompute it") from None
    if not frames:
        raise FileNotFoundError(f"{Path(out, kind)} holds no results: run `hbkit compare --out {out}` first")
    return pd.concat(frames, ignore_index=True)


def with_clusters(frame: pd.DataFrame, out: Path) -> pd.DataFrame:
    """``frame`` with the ``cluster`` of each (benchmark, group) from ``out/clusters.csv``; a group without one
    (corpus benchmarks, or a folder written before clusters existed) is its own cluster."""
    path = out / "clusters.csv"
    if not path.is_file():
        return frame.assign(cluster=frame["group"].astype(str))
    cl = pd.read_csv(path, dtype=str)
    merged = frame.assign(group=frame["group"].astype(str)).merge(cl, on=["benchmark", "group"], how="left")
    return merged.assign(cluster=merged["cluster"].fillna(merged["group"]))


def _stage_aggregate(out: Path, cfg: dict, umap_q: pd.DataFrame, runs: list[Run]) -> None:
    from . import stats, viz
    from .data import is_corpus_benchmark

    pq = load_per_query(out)
    al = load_per_query(out, "alignment")
    metrics = [m for m in ("map", "recall@1", "recall@10", "recall@100", "acc@1", "acc@5", "acc@10", "mrr@10",
                           "ndcg@10", "rank_distance", "top10_same_lang") if m in pq.columns]
    keys = ["model", "strategy", "alpha", "seed", "benchmark", "setting", "qlang", "dlang"]
    long = pq.melt(id_vars=keys + ["query_id", "group"], value_vars=metrics, var_name="metric").dropna(subset=["value"])
    cell = long.groupby(keys + ["metric"], dropna=False).agg(value=("value", "mean"), n=("value", "size")).reset_index()
    macro = (cell.groupby([k for k in keys if k not in ("qlang", "dlang")] + ["metric"], dropna=False)
             .agg(value=("value", "mean"), n=("n", "sum")).reset_index().assign(qlang="all", dlang="all"))
    results = pd.concat([cell, macro[cell.columns]], ignore_index=True)
    with atomic_path(out / "results.csv") as tmp:
        results.to_csv(tmp, index=False)
    pq, al = with_clusters(pq, out), with_clusters(al, out)
    perm = {"n_perm": cfg["permutations"], "seed": cfg["eval_seed"]}
    corpus = pq["benchmark"].map(is_corpus_benchmark).astype(bool)
    pool, cq = pq[~corpus], pq[corpus]
    agg = stats.aggregate(pool, metrics=("map", "rank_distance", "acc@1"))
    eff = stats.effects(pool, metrics=("map", "rank_distance"), **perm)
    if len(cq):  # corpus benchmarks (MIRACL): the official nDCG@10 and Recall@100
        agg = pd.concat([agg, stats.aggregate(cq, metrics=("ndcg@10", "recall@100"))], ignore_index=True)
        eff = stats.combine_effects(eff, stats.effects(cq, metrics=("ndcg@10",), **perm))
    # the research question: alignment (per group) and, on TyDi-QA (not parallel), question-to-passage accuracy
    aeff = stats.alignment_effects(al, **perm)
    tydi = (stats.effects(pool[(pool.benchmark == "tydiqa") & (pool.setting == "multi")], metrics=("acc@1",), **perm)
            if "tydiqa" in set(pool.benchmark) else pd.DataFrame())
    effects = stats.combine_effects(eff, aeff, tydi)  # Benjamini-Hochberg within each family
    missing = sorted({*effects.attrs.get("missing", []), *agg.attrs.get("missing", [])})
    for df, name in ((agg, "aggregate.csv"), (effects, "effects.csv")):
        with atomic_path(out / name) as tmp:
            df.to_csv(tmp, index=False)
    align = (al.groupby(["model", "strategy", "alpha", "seed", "benchmark", "metric"], dropna=False)["value"].mean()
             .reset_index())
    with atomic_path(out / "alignment.csv") as tmp:
        align.to_csv(tmp, index=False)
    coords = []
    shown = {}
    for r in runs:  # one picture per model (its first seed)
        emb = _read_npy(out / "umap" / f"{r.id}.npy") if r.name not in shown else None
        if emb is not None:
            shown[r.name] = r
            xy = viz.umap_coords(emb, seed=cfg["eval_seed"])
            coords.append(pd.DataFrame({"x": xy[:, 0], "y": xy[:, 1], "lang": umap_q["lang"].to_numpy(),
                                        "text": umap_q["text"].to_numpy(), "model": r.name}))
    with atomic_path(out / "umap.csv") as tmp:
        pd.concat(coords, ignore_index=True).to_csv(tmp, index=False)
    atomic_write_json(out / "missing.json", missing)


def compare(profile: str = "auto", out: str | Path = "runs/compare", force: bool = False, data_dir=None,
            progress: bool = True, allow_overlap: bool = False, **overrides) -> dict:
    """Run the plan and every stage (module docstring); returns what :func:`render` returns plus ``timings``.
    Training questions found in an evaluation benchmark stop the job (``overlap.csv`` has the counts) unless
    ``allow_overlap``."""
    cfg = get_profile(profile, **overrides)  # validated before any work
    out = Path(out)
    with RunLock(out):
        timings: dict[str, float] = {"load_data": 0.0, "train": 0.0, "encode": 0.0, "score": 0.0, "align": 0.0,
                                     "aggregate": 0.0, "report": 0.0, "reused_results": 0}
        t0 = time.perf_counter()
        pairs, benches, corpora, fps, notes, overlap = _stage_data(cfg, data_dir, allow_overlap)
        cfg["data"], cfg["notes"] = fps, notes
        timings["load_data"] = time.perf_counter() - t0
        if force:
            for sub in ("models", "per_query", "alignment", "umap"):
                shutil.rmtree(out / sub, ignore_errors=True)
        else:
            _check_reusable(out, cfg, {n: legacy_corpus_fingerprint(b) for n, b in corpora.items()})
        # every check passed: only now is anything written
        with atomic_path(out / "overlap.csv") as tmp:
            overlap.to_csv(tmp, index=False)
        with atomic_path(out / "clusters.csv") as tmp:
            clusters_table(benches).to_csv(tmp, index=False)
        atomic_write_json(out / "config.json", cfg)
        runs = plan(cfg)
        ub = benches[umap_bench(cfg)]
        ug = sorted(ub.queries["group"].unique())[: cfg["umap_groups"]]
        umap_q = ub.queries[ub.queries["group"].isin(ug)]
        first = {}
        for run in runs:   # the UMAP pictures show each model's first seed
            first.setdefault(run.name, run.id)
        for run in tqdm(runs, desc="models", disable=not progress):
            if results_complete(out, run, list(benches) + list(corpora), umap=first[run.name] == run.id):
                timings["reused_results"] += len(benches) + len(corpora)
                continue
            if run.strategy is None:
                encoder = base_encoder(cfg)
            else:
                t = time.perf_counter()
                model_dir = _stage_train(run, cfg, pairs, out, progress)
                timings["train"] += time.perf_counter() - t
                encoder = base_encoder(cfg, str(model_dir))
            _stage_evaluate(run, encoder, benches, corpora, out, umap_q, timings, progress)
            del encoder
        t = time.perf_counter()
        _stage_aggregate(out, cfg, umap_q, runs)
        timings["aggregate"] = time.perf_counter() - t
        t = time.perf_counter()
        res = render(out)
        timings["report"] = time.perf_counter() - t
        timings["total"] = time.perf_counter() - t0
        atomic_write_json(out / "timings.json", timings)
    return {**res, "timings": timings}


# --------------------------------------------------------------------------------------------------
# report: tables, verdicts and HTML from the files alone
# --------------------------------------------------------------------------------------------------
def paper_table(agg: pd.DataFrame) -> pd.DataFrame:
    """Rows: models; columns ``<benchmark> <setting>`` mAP as ``mean [low, high]`` over seeds (two-level
    interval over seeds and answer clusters) and multilingual rank distance (lower = less language bias); ``seeds`` lists the seeds."""
    from .viz import STRATEGY_ORDER

    models = sorted(dict.fromkeys(agg["model"]), key=lambda m: (STRATEGY_ORDER.index(m) if m in STRATEGY_ORDER else 9, m))
    rows = []
    for model in models:
        a = agg[agg.model == model]
        row = {"model": model, "seeds": str(a["seeds"].iloc[0]) if "seeds" in a else ""}
        for bench in dict.fromkeys(agg["benchmark"]):
            for setting in ("mono", "cross", "multi"):
                v = a[(a.benchmark == bench) & (a.setting == setting) & (a.metric == "map")]
                if not v.empty:
                    v = v.iloc[0]
                    row[f"{bench} {setting} mAP"] = f"{v['mean']:.3f} [{v['low']:.3f}, {v['high']:.3f}]"
            rd = a[(a.benchmark == bench) & (a.setting == "multi") & (a.metric == "rank_distance")]
            if not rd.empty:
                row[f"{bench} rank dist"] = f"{rd['mean'].iloc[0]:.0f}"
            nd = a[(a.benchmark == bench) & (a.metric == "ndcg@10") & a.benchmark.str.contains("miracl|corpus")]
            if not nd.empty:
                v = nd.iloc[0]
                row[f"{bench} nDCG@10"] = f"{v['mean']:.3f} [{v['low']:.3f}, {v['high']:.3f}]"
        rows.append(row)
    return pd.DataFrame(rows)


def delta_target(cfg: dict) -> float:
    """The difference the power plan is made for: the profile's C5 margin ``delta`` (0.01 mAP by default)."""
    return float(cfg.get("delta") or 0.01)


#: the columns a run folder's tables must have, and those of them no row may leave empty
RUN_TABLES = {
    "results": (["model", "strategy", "alpha", "seed", "benchmark", "setting", "qlang", "dlang", "metric", "value", "n"],
                ["model", "benchmark", "metric"]),
    "aggregate": (["model", "benchmark", "setting", "metric", "mean", "low", "high"], ["model", "benchmark", "metric", "mean"]),
    "effects": (["contrast", "a", "b", "family", "benchmark", "setting", "metric", "diff", "p"],
                ["contrast", "benchmark", "metric", "diff"]),
    "alignment": (["model", "seed", "benchmark", "metric", "value"], ["model", "benchmark", "metric"]),
    "umap": (["x", "y", "lang", "model"], ["x", "y", "model"]),
    "overlap": (["benchmark", "field"], ["benchmark"]),
}


def _damaged(path: Path, why: str) -> ValueError:
    return ValueError(f"{path} is damaged ({why}); run `hbkit compare --out {path.parent}` with the same options "
                      "again: it recomputes the tables from the per-query results it keeps, without training")


def read_run_csv(path: str | Path) -> pd.DataFrame:
    """A table of a run folder, checked: hbkit writes each one whole (ending in a newline) with its columns, so
    a file cut short, unparsable, without a required column or with an empty key cell is a ``ValueError``
    naming the file and the way to recompute it, never a table rendered from part of the rows."""
    path = Path(path)
    blob = path.read_bytes()
    if blob and not blob.endswith(b"\n"):
        raise _damaged(path, "its last line is cut short")
    try:
        df = pd.read_csv(io.BytesIO(blob))   # the bytes already read, not the file a second time
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as e:
        raise _damaged(path, f"not a readable CSV: {str(e).splitlines()[0][:100]}") from None
    cols, keys = RUN_TABLES.get(path.stem, ([], []))
    if miss := [c for c in cols if c not in df.columns]:
        raise _damaged(path, f"missing column(s) {', '.join(miss)}")
    for c in keys:
        if df[c].isna().any():
            raise _damaged(path, f"row {int(df[c].isna().to_numpy().argmax()) + 2} has no {c}")
    return df


def read_run_json(path: str | Path, kind: type = dict):
    """A JSON file of a run folder (``config.json``, ``missing.json``), checked like :func:`read_run_csv`."""
    path = Path(path)
    try:
        obj = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as e:
        raise ValueError(f"{path} is damaged (not JSON: {str(e)[:80]}); "
                         + ("it records the run's options: run `hbkit compare` with them into a new --out" if
                            path.name == "config.json" else f"run `hbkit compare --out {path.parent}` again")) from None
    if not isinstance(obj, kind):
        raise ValueError(f"{path} is damaged (a JSON {type(obj).__name__}, expected a {kind.__name__})")
    return obj


def unseen_languages(results: pd.DataFrame, cfg: dict) -> list[str]:
    """The evaluated query languages the run never trained on (none when it trained on every language): the
    paper's zero-shot languages, el and vi, under its nine training languages."""
    if not cfg.get("train_languages"):
        return []
    return sorted(set(results["qlang"].dropna()) - {"all"} - set(cfg["train_languages"]))


def render(out: str | Path) -> dict:
    """Write ``table.md``/``table.csv``, ``verdicts.csv``, ``reference_absolute.csv``, ``reference_effects.csv``,
    ``reference_languages.csv``, ``reference_language_effects.csv`` (the paper's per-language tables beside ours)
    and ``report.html`` of a finished run folder from its files alone (no training, encoding or resampling):
    the same inputs give byte-identical outputs."""
    from . import reference, stats, viz

    out = Path(out)
    for f in ("config.json", "results.csv", "aggregate.csv", "effects.csv", "alignment.csv", "umap.csv"):
        if not (out / f).is_file():
            raise FileNotFoundError(f"{out / f} not found: the run is incomplete; run `hbkit compare --out {out}`")
    cfg = read_run_json(out / "config.json", dict)
    results, agg, effects, align, coords = (read_run_csv(out / f"{n}.csv") for n in
                                            ("results", "aggregate", "effects", "alignment", "umap"))
    missing = read_run_json(out / "missing.json", list) if (out / "missing.json").is_file() else []
    verdicts = stats.verdicts(effects, delta=cfg["delta"])
    table = paper_table(agg)
    ref = reference.default_reference()
    ref_note = reference.reference_benchmarks_check(ref, list(cfg.get("benchmarks", BENCHMARKS))) if ref is not None \
        else "no reference table"
    overlap = read_run_csv(out / "overlap.csv") if (out / "overlap.csv").is_file() else pd.DataFrame()
    absolute = reference.absolute_view(agg, ref, cfg["model"]) if ref is not None else pd.DataFrame()
    ref_eff = reference.effects_view(effects, ref) if ref is not None else pd.DataFrame()
    power = stats.power_plan(effects, ref_eff if ref is not None else None, cfg["model"], delta_target(cfg))
    # the paper's Tables 3-8, 12-13 (shipped) beside ours; unseen: the languages this run never trained on
    langs = reference.per_language_view(results, train_languages=cfg.get("train_languages"))
    lang_effects = reference.per_language_effects(langs)
    for df, name in ((table, "table.csv"), (verdicts, "verdicts.csv"), (absolute, "reference_absolute.csv"),
                     (ref_eff, "reference_effects.csv"), (power, "power.csv"), (langs, "reference_languages.csv"),
                     (lang_effects, "reference_language_effects.csv")):
        with atomic_path(out / name) as tmp:
            df.to_csv(tmp, index=False)
    atomic_write_text(out / "table.md", table.to_markdown(index=False))
    seeds = ",".join(str(s) for s in cfg["seeds"])
    notes = (f"profile <b>{cfg['profile']}</b>: model {cfg['model']}, {cfg['steps']} steps at batch {cfg['batch_size']}, "
             f"lr {cfg['lr']}, frozen word embeddings: {cfg['freeze_word_embeddings']}; training seeds {seeds} "
             f"(one model per strategy, α and seed; the base model once); evaluation subsample seed {cfg['eval_seed']} "
             f"(the same queries for every model); the strategy-level test (crossed random effects over seeds and "
             f"answer clusters, Satterthwaite df) decides the verdicts; {cfg['permutations']} sign-flip permutations "
             f"for p_models; δ = {cfg['delta']} for C5. Training corpus: {cfg.get('corpus', 'xquad-train')}."
             + (f" Training languages: {', '.join(cfg['train_languages'])}; unseen (never trained on, shown apart in "
                f"the per-language views): {', '.join(unseen_languages(results, cfg)) or 'none'}."
                if cfg.get("train_languages") else "")
             + (f" Prefixes for an encoder without prompts: {json.dumps(cfg['prompts'])}." if cfg.get("prompts") else "")
             + (f" Incomplete: {'; '.join(missing)}." if missing else "")
             + (f" {'; '.join(cfg['notes'])}." if cfg.get("notes") else ""))
    mean = agg.rename(columns={"mean": "value"}).assign(qlang="all", dlang="all")
    sections = [("Run", notes),
                ("Macro mAP: mean over seeds [95% t interval over seeds and answer clusters]", table),
                ("Verdicts on the paper's claims (strategy-level test: training seeds and answer clusters both random)",
                 verdicts),
                ("Power plan: training seeds that would detect 0.01 mAP, and the paper's effect, at this run's clusters",
                 power),
                ("Effects (paired; p: the strategy-level test, t with Satterthwaite df; p_adj: Benjamini-Hochberg "
                 "within each family; p_models: sign-flip over answer clusters with these trained models fixed)",
                 effects),
                ("mAP against α (X-Y = 0, hybrid = 0.5, X-X-mono = 1), intervals over seeds and queries",
                 viz.alpha_curve(agg, metric="map")),
                ("mAP per benchmark and setting", viz.metric_bars(mean, "map")),
                ("Language bias: maximum rank distance (lower is better)",
                 viz.metric_bars(mean[mean.setting == "multi"], "rank_distance")),
                (f"Published numbers as they are (ours − paper only where the encoder matches; {ref_note})", absolute),
                ("Published effects beside ours (sign agreement; paper's effect inside our interval?)", ref_eff),
                ("Published per-language numbers beside ours (arXiv 2408.10536 Tables 3-8, 12-13, shipped with hbkit; "
                 "ours: mean over seeds; unseen: a language this run never trained on, as el and vi for the paper; "
                 "absolute values differ by encoder and data)", langs),
                ("Per-language differences between strategies beside the paper's (sign agreement per encoder; ours: "
                 "difference of seed means, without an interval per language)", lang_effects),
                ("Zero-shot separation: training texts found in each benchmark (exact / normalised)", overlap)]
    first_seed = results[results.seed == results.seed.min()] if results.seed.notna().any() else results
    base_rows = results[results.model == "base"]
    for name in dict.fromkeys(results["model"]):
        r = pd.concat([first_seed, base_rows]).drop_duplicates()
        sections.append((f"Language pairs: {name}", viz.pair_heatmap(r, name, umap_bench(cfg))))
    sections += [("Alignment (mean over seeds)", viz.alignment_bars(align.assign(qlang="all", dlang="all")
                                                                    .groupby(["model", "benchmark", "metric", "qlang", "dlang"])
                                                                    ["value"].mean().reset_index())),
                 ("Language clusters before and after training", viz.umap_scatter(coords))]
    viz.write_report(out / "report.html", "hbkit: X-X-mono vs X-Y vs hybrid batches", sections)
    return {"out": out, "table": table, "results": results, "aggregate": agg, "effects": effects, "verdicts": verdicts,
            "power": power}


def report(run_dir: str | Path) -> dict:
    """``hbkit report RUN_DIR``: re-render the tables, verdicts, power plan and report.html from a finished folder;
    returns what :func:`render` returns. A folder that is not a finished run is refused before anything is written
    there (no lock is left in a mistyped path)."""
    if not (Path(run_dir) / "config.json").is_file():
        raise FileNotFoundError(f"{run_dir} is not a run folder (no config.json): give the --out of a finished "
                                "`hbkit compare`")
    with RunLock(run_dir):
        return render(run_dir)


def summary_text(res: dict) -> str:
    """What the command line prints after ``compare`` or ``report``: the table, the verdicts, the power plan, and
    plainly, when there is one training seed, that it shows these trained models only."""
    lines = [res["table"].to_string(index=False)]
    v = res.get("verdicts")
    if v is not None and len(v):
        lines += ["", v[["claim", "benchmark", "verdict", "evidence"]].to_string(index=False, max_colwidth=160)]
    if v is not None and len(v) and (v.verdict == "too few seeds").all():
        lines += ["", "ONE TRAINING SEED: these numbers describe these trained models only. No verdict about "
                      "strategies is possible without seed-to-seed variation; rerun with --seeds 0,1,2 (or more) into the "
                      "same folder: it trains only the new seeds, then power.csv says how many a verdict needs."]
    p = res.get("power")
    if p is not None and len(p):
        cols = ["contrast", "benchmark", "setting", "metric", "n_seeds", "mde", "power_at_target", "seeds_for_target",
                "paper_diff", "seeds_for_paper", "note"]
        with pd.option_context("display.width", 250, "display.max_columns", 20):
            lines += ["", "Power plan (seeds needed at this run's clusters; power.csv):",
                      p[cols].to_string(index=False, float_format=lambda x: f"{x:.3g}")]
    lines += ["", f"written to {res['out']}/ (report.html, table.md, results.csv, effects.csv, verdicts.csv, power.csv)"]
    return "\n".join(lines)


def load_run(out: str | Path) -> dict:
    """What a finished ``compare`` run wrote, read back: ``results``, ``aggregate``, ``effects``, ``verdicts``,
    ``alignment``, ``umap``, ``table`` (DataFrames) and ``per_query`` (one frame, model/seed columns)."""
    out = Path(out)
    if not (out / "results.csv").is_file():
        raise FileNotFoundError(f"{out}/results.csv not found: run `hbkit compare --out {out}` first")
    names = ("results", "aggregate", "effects", "verdicts", "alignment", "umap", "table", "power")
    return {**{n: read_run_csv(out / f"{n}.csv") for n in names if (out / f"{n}.csv").is_file()},
            "per_query": load_per_query(out)}
