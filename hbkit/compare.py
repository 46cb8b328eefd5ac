"""The main job: from one base encoder, fine-tune every strategy with the same seed, data, steps and
hyper-parameters, evaluate all models zero-shot, and write the report.

``compare(profile="auto", out="runs/compare")`` writes to ``out``:

* ``results.csv`` / ``results.json`` — every metric, tidy (``model, benchmark, setting, qlang, dlang, metric,
  value, n``); ``alignment.csv`` — the alignment measures;
* ``table.md`` / ``table.csv`` — the paper-shaped table (mono / cross / multi mAP and rank distance per
  benchmark and model, with 95% bootstrap intervals over query groups);
* ``significance.csv`` — paired bootstrap of hybrid against each baseline;
* ``report.html`` — self-contained, with the plotly figures; ``timings.json`` — wall time per stage of
  this invocation (``reused_results`` counts the (model, benchmark) results read back instead of computed);
* ``models/<name>/`` — the trained model folders and their logs; ``per_query/`` — per-query metrics.

Re-running reuses the saved models, per-query results and the embedding cache; ``force=True`` redoes all.
"""
from __future__ import annotations

import json
import logging
import shutil
import time
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from . import viz
from .config import profile as get_profile
from .data import check_disjoint, load_benchmark, parallel_pairs
from .evaluation import EvalResult, alignment, encode, evaluate_embeddings, paired_bootstrap
from .models import fingerprint, load_encoder
from .stats import intervals  # noqa: F401  (moved to hbkit.stats; re-exported for old imports)
from .training import TrainConfig, train

log = logging.getLogger(__name__)
BENCHMARKS = ("xquad-r-eval", "mlqa-r", "tydiqa")


def _runs(cfg: dict) -> list[tuple[str, str | None, float]]:
    runs = [("base", None, 0.0)] + [(s, s, 0.5) for s in cfg["strategies"]]
    runs += [(f"hybrid-a{a:g}", "hybrid", a) for a in cfg.get("alphas") or [] if a not in (0.5,)]
    return runs


def _subsample_pairs(pairs, n_groups: int | None, seed: int):
    if not n_groups:
        return pairs
    groups = sorted(set(pairs["group"]))
    keep = set(np.random.default_rng(seed).choice(groups, size=min(n_groups, len(groups)), replace=False).tolist())
    return pairs.filter(lambda r: r["group"] in keep)


#: profile keys that change a trained model or a per-query result; the others (strategies, alphas, umap_groups,
#: bootstrap) only add runs or redo cheap steps, so a run folder stays reusable when they change
RESULT_KEYS = ("model", "steps", "batch_size", "lr", "freeze_word_embeddings", "train_groups", "train_languages",
               "eval_groups", "seed")


def _check_reusable(out: Path, cfg: dict) -> None:
    """Refuse to mix results of two set-ups in one folder: the saved models and per-query results of ``out``
    are reused only if its ``config.json`` agrees with ``cfg`` on :data:`RESULT_KEYS`."""
    path = out / "config.json"
    if not path.is_file() or not any((out / sub).exists() and any((out / sub).iterdir()) for sub in ("models", "per_query")):
        return
    old = json.loads(path.read_text())
    diff = [f"{k}: {old.get(k)!r} -> {cfg.get(k)!r}" for k in RESULT_KEYS if old.get(k) != cfg.get(k)]
    if diff:
        raise ValueError(f"{out} holds models and results of another set-up ({'; '.join(diff)}); reusing them would "
                         "mix the two. Use another --out, or --force to retrain and re-evaluate everything there")


def paper_table(results: pd.DataFrame, ivals: pd.DataFrame) -> pd.DataFrame:
    """Rows: models; columns ``<benchmark> <setting>`` mAP as ``value [low, high]`` and multilingual rank
    distance (lower = less language bias)."""
    r = results[(results["qlang"] == "all")]
    rows = []
    for model in dict.fromkeys(r["model"]):
        row = {"model": model}
        for bench in dict.fromkeys(r["benchmark"]):
            for setting in ("mono", "cross", "multi"):
                v = r[(r.model == model) & (r.benchmark == bench) & (r.setting == setting) & (r.metric == "map")]
                if v.empty:
                    continue
                ci = ivals[(ivals.model == model) & (ivals.benchmark == bench) & (ivals.setting == setting)]
                txt = f"{v.value.iloc[0]:.3f}"
                if not ci.empty:
                    txt += f" [{ci.low.iloc[0]:.3f}, {ci.high.iloc[0]:.3f}]"
                row[f"{bench} {setting} mAP"] = txt
            rd = r[(r.model == model) & (r.benchmark == bench) & (r.setting == "multi") & (r.metric == "rank_distance")]
            if not rd.empty:
                row[f"{bench} rank dist"] = f"{rd.value.iloc[0]:.0f}"
        rows.append(row)
    return pd.DataFrame(rows)


def compare(profile: str = "auto", out: str | Path = "runs/compare", force: bool = False, data_dir=None,
            progress: bool = True, **overrides) -> dict:
    """Run the comparison described in the module docstring; returns the paths of what it wrote."""
    cfg = get_profile(profile, **overrides)
    out = Path(out)
    if force:
        for sub in ("models", "per_query"):
            shutil.rmtree(out / sub, ignore_errors=True)
    else:
        _check_reusable(out, cfg)
    (out / "per_query").mkdir(parents=True, exist_ok=True)
    (out / "config.json").write_text(json.dumps(cfg, indent=1))
    timings: dict[str, float] = {"load_data": 0.0, "train": 0.0, "encode": 0.0, "score": 0.0, "align": 0.0,
                                 "reused_results": 0}
    t0 = time.perf_counter()
    pairs = _subsample_pairs(parallel_pairs(languages=cfg["train_languages"], data_dir_=data_dir),
                             cfg["train_groups"], cfg["seed"])
    benches = {}
    for name in BENCHMARKS:
        b = load_benchmark(name, data_dir)
        n = (cfg["eval_groups"] or {}).get(name)
        benches[name] = b.subsample(n, seed=cfg["seed"]) if n else b
    check_disjoint(pairs["group"], benches["xquad-r-eval"])
    timings["load_data"] = time.perf_counter() - t0

    tables, per_query, aligns, umap_rows = [], {}, [], []
    umap_bench = benches["xquad-r-eval"]
    ug = sorted(umap_bench.queries["group"].unique())[: cfg["umap_groups"]]
    umap_q = umap_bench.queries[umap_bench.queries["group"].isin(ug)]
    runs = _runs(cfg)
    for name, strategy, alpha in tqdm(runs, desc="models", disable=not progress):
        model_dir = out / "models" / name / "model"
        if strategy is None:
            encoder = load_encoder(cfg["model"])
        else:
            if not (model_dir / "hbkit_training.json").is_file():
                t = time.perf_counter()
                tc = TrainConfig(strategy=strategy, alpha=alpha, batch_size=cfg["batch_size"], max_steps=cfg["steps"],
                                 lr=cfg["lr"], freeze_word_embeddings=cfg["freeze_word_embeddings"],
                                 seed=cfg["seed"], save_steps=max(10, cfg["steps"] // 4))
                train(load_encoder(cfg["model"]), pairs, tc, out / "models" / name, progress=progress)
                timings["train"] += time.perf_counter() - t
            encoder = load_encoder(str(model_dir))
        fp = fingerprint(encoder)
        results = []
        for bname, bench in benches.items():
            pq_path = out / "per_query" / f"{name}__{bname}.pkl"
            if pq_path.is_file():
                results.append(pd.read_pickle(pq_path))
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
            a = alignment(Q, bench.queries["lang"].to_numpy(), bench.queries["group"].to_numpy(), bname)
            timings["align"] += time.perf_counter() - t
            res.alignment = a  # the EvalResult field, saved with it
            pd.to_pickle(res, pq_path)
            results.append(res)
        for r in results:
            tables.append(r.table.assign(model=name))
            aligns.append(r.alignment.assign(model=name))
        per_query[name] = EvalResult.concat(results).per_query
        E = encode(encoder, umap_q["text"].tolist(), "query", fp=fp)
        umap_rows.append((name, E))
        del encoder

    results = pd.concat(tables, ignore_index=True)[["model", "benchmark", "setting", "qlang", "dlang", "metric", "value", "n"]]
    align = pd.concat(aligns, ignore_index=True)

    # intervals and significance (paired bootstrap over query groups)
    boot = {"n_boot": cfg["bootstrap"], "seed": cfg["seed"]}
    ivals = pd.concat([intervals(per_query, bname, **boot) for bname in benches], ignore_index=True)
    sig = []
    for name in (m for m in per_query if m.startswith("hybrid")):
        pq = per_query[name]
        for bname in benches:
            for setting in ("mono", "cross", "multi"):
                if pq[(pq.benchmark == bname) & (pq.setting == setting)].empty:
                    continue
                for other in ("xx", "xy", "base"):
                    if other in per_query:
                        s = paired_bootstrap(pq, per_query[other], "map", setting, bname, **boot)
                        sig.append({"model": name, "vs": other, "benchmark": bname, "setting": setting,
                                    "metric": "map", **{k: s[k] for k in ("a", "b", "diff", "low", "high", "p")}})
    significance = pd.DataFrame(sig)
    table = paper_table(results, ivals)

    # UMAP of parallel XQuAD-R questions before / after training
    coords = []
    for name, E in umap_rows:
        xy = viz.umap_coords(E, seed=cfg["seed"])
        coords.append(pd.DataFrame({"x": xy[:, 0], "y": xy[:, 1], "lang": umap_q["lang"].to_numpy(),
                                    "text": umap_q["text"].to_numpy(), "model": name}))
    coords = pd.concat(coords, ignore_index=True)

    results.to_csv(out / "results.csv", index=False)
    (out / "results.json").write_text(json.dumps({"config": cfg, "results": results.to_dict(orient="records"),
                                                  "intervals": ivals.to_dict(orient="records"),
                                                  "significance": significance.to_dict(orient="records")}, indent=1))
    align.to_csv(out / "alignment.csv", index=False)
    table.to_csv(out / "table.csv", index=False)
    (out / "table.md").write_text(table.to_markdown(index=False))
    significance.to_csv(out / "significance.csv", index=False)
    coords.to_csv(out / "umap.csv", index=False)
    timings["total"] = time.perf_counter() - t0
    (out / "timings.json").write_text(json.dumps(timings, indent=1))

    notes = (f"profile <b>{cfg['profile']}</b>: model {cfg['model']}, {cfg['steps']} steps at batch {cfg['batch_size']}, "
             f"lr {cfg['lr']}, frozen word embeddings: {cfg['freeze_word_embeddings']}; training pairs: "
             f"{len(pairs)} rows / {len(set(pairs['group']))} groups (XQuAD training articles). Evaluation: "
             + "; ".join(f"{n}: {len(b.queries)} queries, {len(b.candidates)} candidates"
                         + (f" (subsample of {b.notes['subsample']['groups']} / {b.notes['subsample']['of']} groups)"
                            if "subsample" in b.notes else " (full)") for n, b in benches.items()))
    sections = [("Run", notes), ("Macro mAP with 95% bootstrap intervals", table),
                ("Hybrid against the baselines (paired bootstrap over query groups)", significance),
                ("mAP per benchmark and setting", viz.metric_bars(results, "map")),
                ("Language bias: maximum rank distance (lower is better)", viz.metric_bars(results[results.setting == "multi"], "rank_distance"))]
    for name in per_query:
        sections.append((f"Language pairs: {name}", viz.pair_heatmap(results, name, "xquad-r-eval")))
    sections += [("Alignment", viz.alignment_bars(align)),
                 ("Language clusters before and after training", viz.umap_scatter(coords))]
    viz.write_report(out / "report.html", "hbkit: X-X-mono vs X-Y vs hybrid batches", sections)
    return {"out": out, "table": table, "results": results, "significance": significance, "timings": timings}


def load_run(out: str | Path) -> dict:
    """What a finished ``compare`` run wrote, read back: ``results``, ``alignment``, ``umap``, ``table``,
    ``significance`` (DataFrames) and ``per_query`` (model -> per-query DataFrame)."""
    out = Path(out)
    if not (out / "results.csv").is_file():
        raise FileNotFoundError(f"{out}/results.csv not found: run `hbkit compare --out {out}` first")
    per_query: dict[str, list] = {}
    for f in sorted((out / "per_query").glob("*__*.pkl")):
        per_query.setdefault(f.name.split("__")[0], []).append(pd.read_pickle(f).per_query)
    return {"results": pd.read_csv(out / "results.csv"), "alignment": pd.read_csv(out / "alignment.csv"),
            "umap": pd.read_csv(out / "umap.csv"), "table": pd.read_csv(out / "table.csv"),
            "significance": pd.read_csv(out / "significance.csv"),
            "per_query": {m: pd.concat(v, ignore_index=True) for m, v in per_query.items()}}
