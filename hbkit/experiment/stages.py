"""The stages of the main job (:func:`hbkit.experiment.compare.compare`), each of which reads and
writes files in one run folder; the order and the plan are in :mod:`hbkit.experiment.compare` and
:mod:`hbkit.experiment.plan`.

1. **data** (:func:`stage_data`) — the training pairs and the benchmarks (evaluation subsample drawn
   with the fixed ``eval_seed``), their content fingerprints; the folder's ``config.json`` must
   agree (:func:`hbkit.experiment.plan.check_reusable`). Only when every check passed are
   ``overlap.csv``, ``clusters.csv`` (the answer clusters, the statistics' unit,
   :func:`clusters_table`) and ``config.json`` written;
2. **train** (:func:`stage_train`) — ``models/<run>/`` (:func:`hbkit.train.trainer.train`: a
   finished, intact model is reused, a damaged or interrupted one is retrained / resumed). A run
   whose results are all present (:func:`results_complete`) is neither trained nor evaluated:
   committed results without weights are reused, and new seeds add to them;
3. **evaluate** (:func:`stage_evaluate`) — ``per_query/<run>__<benchmark>.parquet`` (per-query
   metrics), ``alignment/<run>__<benchmark>.parquet`` (per-group alignment), the training-free
   fixes' statistics and results, and the stored multilingual rankings, written atomically; a file
   that exists and reads back is reused, a damaged one is named and recomputed;
4. **aggregate** (:func:`stage_aggregate`) — ``results.csv`` (every metric per model and seed),
   ``aggregate.csv`` (mean and sd over seeds, t intervals over seeds and answer clusters),
   ``effects.csv`` (paired effects and the strategy-level test), ``umap.csv``: all statistics come
   from :mod:`hbkit.analysis.stats`. The report that follows is
   :func:`hbkit.experiment.report.report`.

Several processes may fill one folder (:mod:`hbkit.experiment.grid`): each model is trained and
evaluated under a lock of its own, and the shared files are written under the folder's short
:class:`hbkit.core.files.RunLock`. ``timings.json``: wall time per stage of the process that
aggregated, and under ``peak_rss_mb`` each stage's peak resident memory (MB, the largest over its
models: :func:`timed`). What a folder holds before it runs, and what running it would cost, is
:mod:`hbkit.experiment.status`; its files are read through
:class:`hbkit.experiment.run_files.RunFolder`.
"""

from __future__ import annotations

import logging
import time
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pandas as pd

from hbkit.analysis import figures as viz
from hbkit.analysis import stats
from hbkit.core.env import peak_rss_mb, release_freed_memory
from hbkit.core.files import atomic_path, atomic_write_json
from hbkit.core.vocab import CORPUS_COLUMN, has_fix, untrained, with_fix, without_fix
from hbkit.data.benchmarks import answer_clusters, check_disjoint, load_benchmark
from hbkit.data.checks import check_zero_shot, overlap_counts
from hbkit.data.corpora import training_pairs, validation_pairs
from hbkit.data.corpus_benchmarks import load_corpus_benchmarks
from hbkit.data.registry import DataError, check_benchmark_names, is_corpus_benchmark
from hbkit.encoders.encode import encode
from hbkit.encoders.load import apply_prompts, fingerprint, load_encoder
from hbkit.experiment.plan import (
    Run,
    bench_fingerprint,
    corpus_fingerprint,
    first_seed_ids,
    fixed_run,
    subsample_pairs,
)
from hbkit.experiment.run_files import (
    RunFolder,
    read_array,
    read_result,
    record_tables,
    write_result,
)
from hbkit.retrieval import posthoc
from hbkit.retrieval.alignment import alignment_per_group
from hbkit.retrieval.bias import BIAS_METRICS
from hbkit.retrieval.bias import DECIDING as BIAS_DECIDING
from hbkit.retrieval.corpus_eval import evaluate_corpus
from hbkit.retrieval.ir_metrics import METRICS as CORPUS_METRICS
from hbkit.retrieval.mteb_tasks import run_mteb
from hbkit.retrieval.pools import evaluate_embeddings, multilingual_rankings
from hbkit.train.config import TrainConfig, TrainError
from hbkit.train.run_folder import pairs_fingerprint
from hbkit.train.sampling import SamplerError
from hbkit.train.trainer import prepare_data, train

log = logging.getLogger(__name__)


@contextmanager
def timed(timings: dict, stage: str, collect: bool = True):
    """Add the wall time of the block to ``timings[stage]`` and keep its peak resident memory in
    ``timings["peak_rss_mb"][stage]`` (the largest over calls: one stage runs once per model). The
    peak is reset when the block starts (:func:`hbkit.core.env.peak_rss_mb`), so each stage's figure
    is its own, not the process's so far; it is left out where the system gives none. What the stage
    before freed is given back to the system first (:func:`hbkit.core.env.release_freed_memory`), so
    that it does not count as this stage's.

    ``collect``: run the cycle collector first, for a stage that follows one that dropped a model or
    a trainer (their reference cycles hold the weights). A full collection costs 0.1-0.5 s in a
    large process, so the per-benchmark stages (encode, score, align), which follow stages that
    leave no cycles, pass False."""
    if collect:
        import gc

        gc.collect()
    release_freed_memory()
    start = peak_rss_mb(reset=True)
    t = time.perf_counter()
    try:
        yield
    finally:
        timings[stage] = timings.get(stage, 0.0) + time.perf_counter() - t
        peak = peak_rss_mb() if start is not None else None
        if peak is not None:
            peaks = timings.setdefault("peak_rss_mb", {})
            peaks[stage] = round(max(peaks.get(stage, 0.0), peak), 1)


def stage_data(cfg: dict, data_dir, allow_overlap: bool = False):
    """Training pairs, pool benchmarks (subsampled with ``eval_seed``), corpus benchmarks (those
    whose files are absent are skipped and said so), the zero-shot check, and the content
    fingerprints."""
    pairs = training_pairs(cfg["corpus"], data_dir, cfg["train_languages"])
    val = validation_pairs(cfg.get("val_corpus", "held-out"), data_dir)
    benches = {}
    for name in cfg["benchmarks"]:
        b = load_benchmark(name, data_dir)
        n = (cfg["eval_groups"] or {}).get(name)
        benches[name] = b.subsample(n, seed=cfg["eval_seed"]) if n else b
    corpora, notes = {}, []
    for spec in (
        check_benchmark_names(cfg.get("corpus_benchmarks") or [])
        if cfg.get("corpus_benchmarks")
        else []
    ):
        try:
            for b in load_corpus_benchmarks(spec, data_dir):
                corpora[b.name] = b
        except DataError as e:
            log.warning("%s skipped: %s", spec, e)
            notes.append(f"{spec} skipped: {str(e).splitlines()[0]}")
    if "xquad-r-eval" in benches and cfg["corpus"] == "xquad-train":
        check_disjoint(pairs["group"], benches["xquad-r-eval"])
    overlap = mix_overlap(pairs, benches)
    # a question overlap is refused here, before anything is written; its warnings (allowed overlap,
    # in-domain) echo the next line, so it carries no comment that would read as a refusal
    check_zero_shot(overlap, force=allow_overlap)
    fps = {
        "train": pairs_fingerprint(pairs),
        **{n: bench_fingerprint(b) for n, b in benches.items()},
        **{n: corpus_fingerprint(b) for n, b in corpora.items()},
    }
    if val is not None:
        fps["val"] = pairs_fingerprint(val)
    return pairs, val, benches, corpora, fps, notes, overlap


def mix_overlap(pairs, benches: dict) -> pd.DataFrame:
    """:func:`hbkit.data.checks.overlap_counts` of the training pairs, per corpus of a mix (column
    ``corpus``), so that a refusal names the part that overlaps (Mr. TyDi's questions in TyDi-QA,
    say)."""
    if CORPUS_COLUMN not in pairs.column_names:
        return overlap_counts(pairs, benches)
    codes = pd.Series(pairs[CORPUS_COLUMN])
    return pd.concat(
        [
            overlap_counts(pairs.select(np.flatnonzero(codes.to_numpy() == name)), benches).assign(
                corpus=name
            )
            for name in pd.unique(codes)
        ],
        ignore_index=True,
    )


def clusters_table(benches: dict) -> pd.DataFrame:
    """``benchmark, group, cluster`` of every pool benchmark
    (:func:`hbkit.data.benchmarks.answer_clusters`): the unit of the statistics. Corpus benchmarks
    have none (each query is its own unit)."""
    parts = [answer_clusters(b).assign(benchmark=name) for name, b in benches.items()]
    return pd.concat(parts, ignore_index=True)[["benchmark", "group", "cluster"]]


def base_encoder(cfg: dict, path: str | None = None):
    """The encoder of a run: ``cfg["model"]`` (or a trained folder ``path``) with the profile's
    ``prompts`` when it has none of its own (:func:`hbkit.encoders.load.apply_prompts`)."""
    return apply_prompts(load_encoder(path or cfg["model"]), cfg.get("prompts"))


def train_config(run: Run, cfg: dict, validates: bool) -> TrainConfig:
    """The :class:`~hbkit.train.config.TrainConfig` of one planned model of a profile;
    ``validates``: the run has a validation corpus of its own."""
    extra = {"corpus": cfg["corpus"], "weight_decay": cfg["weight_decay"]}
    if validates:
        extra["val_corpus"] = cfg["val_corpus"]
    if cfg["val_groups"] or validates:
        extra.update(
            val_groups=cfg["val_groups"],
            eval_steps=cfg["eval_steps"],
            save_steps=cfg["eval_steps"],
            eval_metric=cfg["eval_metric"],
            early_stopping_patience=cfg["early_stopping_patience"],
        )
    else:
        extra.update(save_steps=max(10, cfg["steps"] // 4))
    return TrainConfig(
        strategy=run.strategy,
        alpha=run.alpha if run.strategy == "hybrid" else 0.5,
        batch_size=cfg["batch_size"],
        max_steps=cfg["steps"],
        lr=cfg["lr"],
        freeze_word_embeddings=cfg["freeze_word_embeddings"],
        seed=run.seed,
        **extra,
    )


def check_training_data(runs: list[Run], cfg: dict, pairs, val_pairs=None) -> None:
    """Refuse, before a run folder is written, data that some planned model could not be trained on:
    each model's pairs (its ``train_groups`` subsample) and validation set go through the trainer's
    own checks (:func:`hbkit.train.trainer.prepare_data`: a batch larger than a mix part's groups,
    one language for X-Y batches, a validation set too small for a batch). Models of one strategy
    and α on the same pairs are checked once."""
    seen = set()
    for run in runs:
        if run.strategy is None:
            continue
        key = (run.strategy, run.alpha, run.seed if cfg["train_groups"] else None)
        if key in seen:
            continue
        seen.add(key)
        try:
            prepare_data(
                subsample_pairs(pairs, cfg["train_groups"], run.seed),
                train_config(run, cfg, val_pairs is not None),
                val_pairs,
            )
        except (SamplerError, TrainError) as e:
            raise TrainError(
                f"model {run.id} cannot be trained on this data: {e} (nothing was written; fix the "
                "data or the batch size and rerun)"
            ) from None


def stage_train(
    run: Run,
    cfg: dict,
    pairs,
    out: Path,
    progress: bool,
    callbacks: list | None = None,
    val_pairs=None,
) -> Path:
    """Train one planned model into ``out/models/<run>`` (:func:`hbkit.train.trainer.train`)."""
    return train(
        base_encoder(cfg),
        subsample_pairs(pairs, cfg["train_groups"], run.seed),
        train_config(run, cfg, val_pairs is not None),
        out / "models" / run.id,
        progress=progress,
        callbacks=callbacks,
        val_pairs=val_pairs,
    )


def _fix_stats(
    encoder, fp: str, passages: pd.DataFrame, fixes, out: Path, run: Run, progress: bool
) -> dict:
    """Each fix's statistics for this model from the training passages (each distinct text encoded
    once, and cached), with a summary of what they were estimated from in
    ``out/fixes/<run>.json``."""
    texts, inverse = np.unique(passages["passage"].to_numpy(), return_inverse=True)
    P = encode(encoder, texts.tolist(), "passage", fp=fp, progress=progress)[inverse]
    stats_ = {f: posthoc.estimate(f, P, passages["lang"], passages["group"]) for f in fixes}
    atomic_write_json(
        out / "fixes" / f"{run.id}.json",
        {
            "passages": int(len(passages)),
            "groups": int(passages["group"].nunique()),
            "fixes": [st.summary() for st in stats_.values()],
        },
    )
    return stats_


def stage_evaluate(
    run: Run,
    encoder,
    benches: dict,
    corpora: dict,
    out: Path,
    umap_q: pd.DataFrame,
    timings: dict,
    progress: bool,
    fixes: tuple = (),
    fix_passages: pd.DataFrame | None = None,
    rankings_k: int = 0,
):
    """Per-query metrics and per-group alignment of one model on every pool benchmark, and per-query
    metrics on every corpus benchmark (sharded encoding, faiss search; shards shared by the runs
    under ``out/corpus``); each file is reused when intact. Each of ``fixes``
    (:mod:`hbkit.retrieval.posthoc`, estimated from ``fix_passages``, training passages only) adds
    the per-query metrics of ``<model>+<fix>`` on every pool benchmark, from the same embeddings
    transformed (corpus benchmarks, monolingual, get none). With ``rankings_k``, each pool benchmark
    evaluated here also leaves ``rankings/<run>__<benchmark>.parquet``: the multilingual pool's top
    ``rankings_k`` and relevant candidates of every query
    (:func:`hbkit.retrieval.pools.multilingual_rankings`), from which a ranking measure added later
    is computed without the weights; not needed to count as done."""
    fp = fingerprint(encoder)
    ident = {
        "model": run.name,
        "strategy": run.strategy or "base",
        "alpha": run.alpha,
        "seed": run.seed,
    }
    fstats = None
    for bname, bench in benches.items():
        pq_path = out / "per_query" / f"{run.id}__{bname}.parquet"
        al_path = out / "alignment" / f"{run.id}__{bname}.parquet"
        fix_paths = {
            f: out / "per_query" / f"{fixed_run(run, f).id}__{bname}.parquet" for f in fixes
        }
        todo = [f for f, path in fix_paths.items() if read_result(path) is None]
        have_pq, have_al = read_result(pq_path) is not None, read_result(al_path) is not None
        if have_pq and have_al and not todo:
            timings["reused_results"] += 1
            continue
        with timed(timings, "encode", collect=False):
            Q = encode(encoder, bench.queries["text"].tolist(), "query", fp=fp, progress=progress)
            C = encode(
                encoder, bench.candidates["text"].tolist(), "passage", fp=fp, progress=progress
            )
            if todo and fstats is None:
                fstats = _fix_stats(encoder, fp, fix_passages, fixes, out, run, progress)
        with timed(timings, "score", collect=False):
            for f in todo:
                Qf, Cf = posthoc.transform(
                    fstats[f], Q, bench.queries["lang"], C, bench.candidates["lang"]
                )
                write_result(
                    evaluate_embeddings(bench, Qf, Cf, progress=progress).per_query.assign(
                        **{**ident, "model": fixed_run(run, f).name}
                    ),
                    fix_paths[f],
                )
                if rankings_k:
                    write_result(
                        multilingual_rankings(bench, Qf, Cf, rankings_k),
                        out / "rankings" / f"{fixed_run(run, f).id}__{bname}.parquet",
                    )
            res = None if have_pq else evaluate_embeddings(bench, Q, C, progress=progress)
            if res is not None and rankings_k:
                write_result(
                    multilingual_rankings(bench, Q, C, rankings_k),
                    out / "rankings" / f"{run.id}__{bname}.parquet",
                )
        with timed(timings, "align", collect=False):
            al = (
                None
                if have_al
                else alignment_per_group(
                    Q, bench.queries["lang"].to_numpy(), bench.queries["group"].to_numpy()
                )
            )
        if res is not None:
            write_result(res.per_query.assign(**ident), pq_path)
        if al is not None:
            write_result(al.assign(benchmark=bname, **ident), al_path)
    todo = [
        b
        for n, b in corpora.items()
        if read_result(out / "per_query" / f"{run.id}__{n}.parquet") is None
    ]
    timings["reused_results"] += len(corpora) - len(todo)
    if todo:
        with timed(timings, "corpus", collect=False):
            _, pq = evaluate_corpus(
                encoder, todo, out / "corpus", progress=progress, metrics=list(CORPUS_METRICS)
            )
        for name, part in pq.groupby("benchmark"):
            write_result(part.assign(**ident), out / "per_query" / f"{run.id}__{name}.parquet")
    umap_path = out / "umap" / f"{run.id}.npy"
    if read_array(umap_path) is None:
        with timed(timings, "encode", collect=False), atomic_path(umap_path) as tmp:
            np.save(tmp, _umap_embeddings(encoder, fp, benches, umap_q))


def _umap_embeddings(encoder, fp: str, benches: dict, umap_q: pd.DataFrame) -> np.ndarray:
    """The UMAP queries' embeddings as rows of their benchmark's query embeddings, which the
    evaluation just encoded and cached: no text is encoded twice for one model, and a resumed run
    (the benchmark's results already there) reads the same cached rows, so the file's bytes do not
    depend on where a run was interrupted. Queries that are no benchmark's rows are encoded on their
    own."""
    for bench in benches.values():
        q = bench.queries
        if not q.index.is_unique:
            continue
        pos = q.index.get_indexer(umap_q.index)
        if (
            len(pos)
            and (pos >= 0).all()
            and (q["text"].to_numpy()[pos] == umap_q["text"].to_numpy()).all()
        ):
            return encode(encoder, q["text"].tolist(), "query", fp=fp)[pos]
    return encode(encoder, umap_q["text"].tolist(), "query", fp=fp)


def results_complete(
    out: Path, run: Run, bench_names: list[str], umap: bool, fixes: tuple = ()
) -> bool:
    """Whether every result of ``run`` is in ``out`` and reads back: per-query metrics of each
    benchmark (and of each of its ``fixes`` on each pool benchmark), per-group alignment of each
    pool benchmark and (``umap``: the model's first seed) its UMAP embeddings. Then neither its
    weights nor any training are needed: committed results (no weights) are reused, and adding seeds
    trains only the new ones. A trained model whose weights are gone (committed results) is not
    retrained for its fixes: they are left out, and the aggregate says so."""
    if run.strategy is not None and not (out / "models" / run.id).is_dir():
        fixes = ()
    for name in bench_names:
        if read_result(out / "per_query" / f"{run.id}__{name}.parquet") is None:
            return False
        if is_corpus_benchmark(name):
            continue
        if read_result(out / "alignment" / f"{run.id}__{name}.parquet") is None:
            return False
        if any(
            read_result(out / "per_query" / f"{fixed_run(run, f).id}__{name}.parquet") is None
            for f in fixes
        ):
            return False
    return not umap or read_array(out / "umap" / f"{run.id}.npy") is not None


def completion(out: Path, runs: list[Run], bench_names: list[str], fixes=()):
    """``done(run)``: :func:`results_complete` of a run of the plan ``runs`` in ``out`` (its UMAP
    embeddings counted for each model's first seed; the profile's ``fixes`` of every model)."""
    first = first_seed_ids(runs)
    fixes = tuple(fixes or ())
    return lambda run: results_complete(out, run, bench_names, umap=run.id in first, fixes=fixes)


def _complete_fixes(pool: pd.DataFrame, fixes=()) -> tuple[pd.DataFrame, list[str]]:
    """``pool`` without the rows of a trained model's fix (``hybrid+shift``) that lacks some (seed,
    benchmark) of its model (weights gone before the fix was evaluated), so that a fix never narrows
    the seeds of the strategies; and a line for each fix left out, or of ``fixes`` not evaluated at
    all for a trained model."""
    notes, drop = [], []
    have = pool.groupby("model")[["seed", "benchmark"]].apply(
        lambda d: set(zip(d["seed"], d["benchmark"]))
    )
    for m in have.index:
        absent = [
            f
            for f in fixes
            if not has_fix(m) and not untrained(m) and with_fix(m, f) not in have.index
        ]
        if absent:
            notes.append(
                f"{', '.join(with_fix(m, f) for f in absent)} not evaluated: the weights of {m} "
                "were gone (committed results); a run that trains it evaluates them"
            )
    for m in have.index:
        base_name = without_fix(m)
        if (
            has_fix(m)
            and not untrained(m)
            and base_name in have.index
            and have[m] != have[base_name]
        ):
            drop.append(m)
            notes.append(
                f"{m} left out: evaluated for {len(have[m])} of the {len(have[base_name])} (seed, "
                f"benchmark) results of {base_name} (the weights of the others were gone; rerun "
                "with them to add it)"
            )
    return (pool[~pool["model"].isin(drop)] if drop else pool), notes


def stage_mteb(out: Path, cfg: dict, runs: list[Run], progress: bool = False) -> int:
    """Run mteb's own evaluator on every model of the plan for the profile's ``mteb_tasks`` into
    ``<out>/mteb`` (:func:`hbkit.retrieval.mteb_tasks.run_mteb`: each model under its own name and
    content revision, so a model already scored is read back, not run again). A trained model whose
    weights are gone (a committed folder keeps none) is skipped, counted and logged. Returns how
    many models were scored."""
    tasks = list(cfg.get("mteb_tasks") or [])
    if not tasks:
        return 0
    scored, skipped = 0, []
    # a fix evaluates the same weights: not an MTEB model
    for run in (r for r in runs if not has_fix(r.name)):
        source = cfg["model"] if run.strategy is None else out / "models" / run.id / "model"
        if run.strategy is not None and not any(Path(source).glob("*.safetensors")):
            skipped.append(run.id)
            continue
        run_mteb(str(source), tasks, out / "mteb", progress=progress)
        scored += 1
    if skipped:
        log.warning(
            "MTEB: %d model(s) without weights left out (%s)", len(skipped), ", ".join(skipped)
        )
    return scored


def cell_means(pq: pd.DataFrame, keys: list[str], metrics: list[str]) -> pd.DataFrame:
    """Each metric's mean and count of values (NaN left out) per group of ``keys``: one row per
    (group, metric) that has a value, sorted by ``keys`` then metric, with columns ``keys +
    ["metric", "value", "n"]``. The rows and values of ``pq.melt(...).dropna().groupby(keys +
    ["metric"]).agg(mean, size)``, computed on the wide frame: the long one held every value with
    all its keys (4 GB, 16 s for the 8-seed cpu run's 1.4M rows)."""
    cols = sorted(metrics)  # the order a groupby on the metric's name gives
    g = pq.groupby(keys, dropna=False)[cols]
    means, counts = g.mean(), g.count()
    means.columns.name = counts.columns.name = "metric"
    cell = pd.DataFrame(
        {"value": means.stack(future_stack=True), "n": counts.stack(future_stack=True)}
    )
    return cell[cell["n"] > 0].reset_index()


def stage_aggregate(out: Path, cfg: dict, umap_q: pd.DataFrame, runs: list[Run]) -> None:
    run = RunFolder(out)
    pq, al = run.per_query(), run.per_query("alignment")
    metrics = [
        m
        for m in (
            "map",
            "recall@1",
            "recall@10",
            "recall@100",
            "acc@1",
            "acc@5",
            "acc@10",
            "mrr@10",
            "ndcg@10",
            "rank_distance",
            "top10_same_lang",
            *BIAS_METRICS,
        )
        if m in pq.columns
    ]
    keys = ["model", "strategy", "alpha", "seed", "benchmark", "setting", "qlang", "dlang"]
    cell = cell_means(pq, keys, metrics)
    macro = (
        cell.groupby([k for k in keys if k not in ("qlang", "dlang")] + ["metric"], dropna=False)
        .agg(value=("value", "mean"), n=("n", "sum"))
        .reset_index()
        .assign(qlang="all", dlang="all")
    )
    results = pd.concat([cell, macro[cell.columns]], ignore_index=True)
    with atomic_path(out / "results.csv") as tmp:
        results.to_csv(tmp, index=False)
    pq, al = run.with_clusters(pq), run.with_clusters(al)
    perm = {"n_perm": cfg["permutations"], "seed": cfg["eval_seed"]}
    corpus = pq["benchmark"].map(is_corpus_benchmark).astype(bool)
    pool, cq = pq[~corpus], pq[corpus]
    # the newer bias measures (folders evaluated before them lack them); PEER is reported, not
    # tested: on these pools (one relevant passage per language) it is one constant whenever a
    # relevant passage is retrieved
    pool, fix_notes = _complete_fixes(pool, cfg.get("fixes") or ())
    bias = [m for m in BIAS_METRICS if m in pool.columns and pool[m].notna().any()]
    agg = stats.aggregate(pool, metrics=("map", "rank_distance", "acc@1", *bias))
    eff = stats.effects(
        pool, metrics=("map", "rank_distance", *[m for m in bias if m in BIAS_DECIDING]), **perm
    )
    if len(cq):  # corpus benchmarks (MIRACL): the official nDCG@10 and Recall@100
        agg = pd.concat(
            [agg, stats.aggregate(cq, metrics=("ndcg@10", "recall@100"))], ignore_index=True
        )
        eff = stats.combine_effects(eff, stats.effects(cq, metrics=("ndcg@10",), **perm))
    # the research question: alignment (per group) and, on TyDi-QA (not parallel),
    # question-to-passage accuracy
    aeff = stats.alignment_effects(al, **perm)
    tydi = (
        stats.effects(
            pool[(pool.benchmark == "tydiqa") & (pool.setting == "multi")],
            metrics=("acc@1",),
            **perm,
        )
        if "tydiqa" in set(pool.benchmark)
        else pd.DataFrame()
    )
    effects = stats.combine_effects(eff, aeff, tydi)  # Benjamini-Hochberg within each family
    missing = sorted({*effects.attrs.get("missing", []), *agg.attrs.get("missing", []), *fix_notes})
    for df, name in ((agg, "aggregate.csv"), (effects, "effects.csv")):
        with atomic_path(out / name) as tmp:
            df.to_csv(tmp, index=False)
    align = (
        al.groupby(["model", "strategy", "alpha", "seed", "benchmark", "metric"], dropna=False)[
            "value"
        ]
        .mean()
        .reset_index()
    )
    with atomic_path(out / "alignment.csv") as tmp:
        align.to_csv(tmp, index=False)
    coords = []
    shown = {}
    for r in runs:  # one picture per model (its first seed)
        emb = read_array(out / "umap" / f"{r.id}.npy") if r.name not in shown else None
        if emb is not None:
            shown[r.name] = r
            xy = viz.umap_coords(emb, seed=cfg["eval_seed"])
            coords.append(
                pd.DataFrame(
                    {
                        "x": xy[:, 0],
                        "y": xy[:, 1],
                        "lang": umap_q["lang"].to_numpy(),
                        "text": umap_q["text"].to_numpy(),
                        "model": r.name,
                    }
                )
            )
    with atomic_path(out / "umap.csv") as tmp:
        pd.concat(coords, ignore_index=True).to_csv(tmp, index=False)
    atomic_write_json(out / "missing.json", missing)
    record_tables(out, ["results.csv", "aggregate.csv", "effects.csv", "alignment.csv", "umap.csv"])
