"""Tables, verdicts and the HTML report, from a run folder's files alone."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from hbkit.analysis import claims, paper_tables, reference, stats
from hbkit.analysis import figures as viz
from hbkit.core.env import runs_root
from hbkit.core.files import RunLock, atomic_path, atomic_write_text
from hbkit.core.vocab import STRATEGY_ORDER, has_fix, without_fix
from hbkit.experiment.grid import describe_missing, grid_status
from hbkit.experiment.plan import (
    BENCHMARKS,
    benchmark_names,
    config_differences,
    delta_target,
    plan,
    planned_seeds,
    umap_bench,
)
from hbkit.experiment.run_files import RunFolder
from hbkit.experiment.stages import completion
from hbkit.experiment.status import minutes_per_model
from hbkit.retrieval.mteb_tasks import scores_table


# --------------------------------------------------------------------------------------------------
# report: tables, verdicts and HTML from the files alone
# --------------------------------------------------------------------------------------------------
def paper_table(agg: pd.DataFrame) -> pd.DataFrame:
    """Rows: models; columns ``<benchmark> <setting>`` mAP as ``mean [low, high]`` over seeds
    (two-level interval over seeds and answer clusters) and multilingual rank distance (lower = less
    language bias); ``seeds`` lists the seeds."""
    models = sorted(
        dict.fromkeys(agg["model"]),
        key=lambda m: (STRATEGY_ORDER.index(m) if m in STRATEGY_ORDER else 9, m),
    )
    rows = []
    for model in models:
        a = agg[agg.model == model]
        row = {"model": model, "seeds": str(a["seeds"].iloc[0]) if "seeds" in a else ""}
        for bench in dict.fromkeys(agg["benchmark"]):
            for setting in ("mono", "cross", "multi"):
                v = a[(a.benchmark == bench) & (a.setting == setting) & (a.metric == "map")]
                if not v.empty:
                    v = v.iloc[0]
                    row[f"{bench} {setting} mAP"] = (
                        f"{v['mean']:.3f} [{v['low']:.3f}, {v['high']:.3f}]"
                    )
            rd = a[(a.benchmark == bench) & (a.setting == "multi") & (a.metric == "rank_distance")]
            if not rd.empty:
                row[f"{bench} rank dist"] = f"{rd['mean'].iloc[0]:.0f}"
            for m in (
                "tlr@10",
                "mrc@10",
            ):  # the newer bias measures (hbkit.retrieval.bias), where evaluated
                b = a[(a.benchmark == bench) & (a.setting == "multi") & (a.metric == m)]
                if not b.empty and pd.notna(b["mean"].iloc[0]):
                    row[f"{bench} {m.upper()}"] = f"{b['mean'].iloc[0]:.3f}"
            nd = a[
                (a.benchmark == bench)
                & (a.metric == "ndcg@10")
                & a.benchmark.str.contains("miracl|corpus")
            ]
            if not nd.empty:
                v = nd.iloc[0]
                row[f"{bench} nDCG@10"] = f"{v['mean']:.3f} [{v['low']:.3f}, {v['high']:.3f}]"
        rows.append(row)
    return pd.DataFrame(rows)


def fixes_table(out: Path) -> pd.DataFrame:
    """What each training-free fix of each model was estimated from (``out/fixes/<run>.json``,
    written by the evaluation): one row per (model run, fix) with the training passages and groups,
    SHIFT's source language, the passages (centering) or parallel pairs (SHIFT) per language, and
    the languages left unchanged.

    Args:
        out: a ``hbkit compare`` run folder.

    Returns:
        One row per (model run, fix); empty when the run applied no fix.

    Examples:
        >>> fixes_table(Path("results/cpu")).head()  # doctest: +SKIP
    """
    rows = []
    run = RunFolder(out)
    for f in sorted(Path(out, "fixes").glob("*.json")):
        if f.name.startswith("."):
            continue
        info = run.json(f"fixes/{f.name}")
        for fx in info.get("fixes", []):
            rows.append(
                {
                    "run": f.stem,
                    "fix": fx["fix"],
                    "passages": info.get("passages"),
                    "groups": info.get("groups"),
                    "source": fx.get("source") or "",
                    "per_language": ", ".join(f"{k} {v}" for k, v in fx["n"].items()),
                    "left_unchanged": ", ".join(fx.get("uncovered", [])),
                }
            )
    return pd.DataFrame(
        rows,
        columns=["run", "fix", "passages", "groups", "source", "per_language", "left_unchanged"],
    )


def _fix_models(models) -> list[str]:
    """The base model and hybrid, each with and without every fix: the models the fixes section
    shows."""
    return [m for m in models if without_fix(m) in ("base", "hybrid")]


def mteb_table(out: Path) -> pd.DataFrame:
    """The MTEB scores of a run (``out/mteb``, written by the ``mteb_tasks`` profile key): one row
    per model and task, nDCG@10 per subset and their mean; empty when the run scored none."""
    scores = scores_table(out / "mteb")
    if not len(scores):
        return pd.DataFrame()
    wide = scores.pivot_table(index=["model", "task"], columns="subset", values="ndcg_at_10").round(
        4
    )
    wide.insert(0, "mean", scores.groupby(["model", "task"])["ndcg_at_10"].mean().round(4))
    return wide.reset_index()


def unseen_languages(results: pd.DataFrame, cfg: dict) -> list[str]:
    """The evaluated query languages the run never trained on (none when it trained on every
    language): the paper's zero-shot languages, el and vi, under its nine training languages."""
    if not cfg.get("train_languages"):
        return []
    return sorted(set(results["qlang"].dropna()) - {"all"} - set(cfg["train_languages"]))


def shipped_comparison(out: Path, cfg: dict, results: pd.DataFrame) -> dict | None:
    """This run beside the evidence hbkit ships for its profile (``results/<profile>/`` of the
    checkout), for a newcomer's first screen: ``line`` (one sentence: does this machine reproduce
    the shipped models?), ``table`` (per benchmark, the largest |Δ mAP| over the models and seeds
    both folders hold, macro values in every setting, and where it is) and ``verdicts`` (the shipped
    verdicts). None when nothing is shipped for the profile, or ``out`` is the shipped folder
    itself."""
    shipped = runs_root().parent / "results" / str(cfg.get("profile"))
    if not (shipped / "results.csv").is_file() or shipped.resolve() == Path(out).resolve():
        return None
    try:
        ship = RunFolder(shipped)
        theirs_cfg, theirs, verdicts = (
            ship.json("config.json"),
            ship.table("results"),
            ship.table("verdicts"),
        )
    except (OSError, ValueError):
        return None
    n = len(held_seeds(theirs))
    differ = config_differences(theirs_cfg, cfg)  # the rule by which a folder's results are reused
    if differ:
        return {
            "line": f"Not comparable with the shipped evidence ({shipped}, {n} seeds): "
            f"{'; '.join(differ)}.",
            "table": pd.DataFrame(),
            "verdicts": verdicts,
            "folder": shipped,
            "seeds": n,
        }
    keys = ["model", "seed", "benchmark", "setting"]

    def macro(r: pd.DataFrame) -> pd.DataFrame:
        r = r[(r.metric == "map") & (r.qlang == "all") & (r.dlang == "all")]
        return r.assign(seed=pd.to_numeric(r.seed, errors="coerce").fillna(-1).astype(int))[
            keys + ["value"]
        ]

    both = macro(results).merge(macro(theirs), on=keys, suffixes=("", "_shipped"))
    if both.empty:
        return {
            "line": f"No model of this run is in the shipped evidence ({shipped}, {n} seeds) yet.",
            "table": pd.DataFrame(),
            "verdicts": verdicts,
            "folder": shipped,
            "seeds": n,
        }
    both = both.assign(abs_diff=(both["value"] - both["value_shipped"]).abs())
    worst = both.loc[both.groupby("benchmark", sort=True)["abs_diff"].idxmax()]
    table = worst.assign(models=worst["benchmark"].map(both.groupby("benchmark").size()))[
        ["benchmark", "models", "abs_diff", "model", "seed", "setting", "value", "value_shipped"]
    ]
    big = float(table["abs_diff"].max())
    line = (
        f"Against the shipped evidence ({shipped}, {n} seeds): {len(both)} of this run's macro mAP "
        f"values (same models and seeds) differ from the shipped ones by at most {big:.4f} ("
        + ", ".join(f"{b} {d:.4f}" for b, d in zip(table.benchmark, table.abs_diff))
        + "): "
        + (
            "this machine reproduces them."
            if big < 0.005
            else "more than 0.005 apart: this machine does not reproduce them exactly (library "
            "versions, threads or hardware); compare with care."
        )
    )
    return {"line": line, "table": table, "verdicts": verdicts, "folder": shipped, "seeds": n}


def render(out: str | Path, partial: str | None = None) -> dict:
    """Write ``table.md``/``table.csv``, ``verdicts.csv``, ``reference_absolute.csv``,
    ``reference_effects.csv``, ``reference_languages.csv``, ``reference_language_effects.csv`` (the
    paper's per-language tables beside ours) and ``report.html`` of a finished run folder from its
    files alone (no training, encoding or resampling): the same inputs give byte-identical outputs.
    ``partial``: what the grid still lacks (models of the plan not done yet), said at the top of the
    report and above the verdicts."""
    out = Path(out)
    for f in (
        "config.json",
        "results.csv",
        "aggregate.csv",
        "effects.csv",
        "alignment.csv",
        "umap.csv",
    ):
        if not (out / f).is_file():
            raise FileNotFoundError(
                f"{out / f} not found: the run is incomplete; run `hbkit compare --out {out}`"
            )
    run = RunFolder(out)
    cfg = run.json("config.json")
    results, agg, effects, align, coords = (
        run.table(n) for n in ("results", "aggregate", "effects", "alignment", "umap")
    )
    missing = run.json("missing.json", list, optional=True) or []
    verdicts = claims.verdicts(effects, delta=cfg["delta"])
    table = paper_table(agg)
    ref = reference.default_reference()
    ref_note = (
        reference.reference_benchmarks_check(ref, list(cfg.get("benchmarks", BENCHMARKS)))
        if ref is not None
        else "no reference table"
    )
    overlap = run.table("overlap", optional=True)
    overlap = pd.DataFrame() if overlap is None else overlap
    absolute = (
        reference.absolute_view(agg, ref, cfg["model"]) if ref is not None else pd.DataFrame()
    )
    ref_eff = reference.effects_view(effects, ref) if ref is not None else pd.DataFrame()
    power = claims.power_plan(
        effects, ref_eff if ref is not None else None, cfg["model"], delta_target(cfg)
    )
    # the paper's Tables 3-8, 12-13 (shipped) beside ours; unseen: the languages this run never
    # trained on
    langs = paper_tables.per_language_view(results, train_languages=cfg.get("train_languages"))
    lang_effects = paper_tables.per_language_effects(langs)
    # does alignment move with retrieval across models and seeds?
    corr = stats.alignment_vs_retrieval(results, align)
    fixes = fixes_table(out)
    mteb = mteb_table(out)
    if len(mteb):
        with atomic_path(out / "mteb.csv") as tmp:
            mteb.to_csv(tmp, index=False)
    for df, name in (
        (table, "table.csv"),
        (verdicts, "verdicts.csv"),
        (absolute, "reference_absolute.csv"),
        (corr, "alignment_vs_retrieval.csv"),
        (fixes, "fixes.csv"),
        (ref_eff, "reference_effects.csv"),
        (power, "power.csv"),
        (langs, "reference_languages.csv"),
        (lang_effects, "reference_language_effects.csv"),
    ):
        with atomic_path(out / name) as tmp:
            df.to_csv(tmp, index=False)
    atomic_write_text(out / "table.md", table.to_markdown(index=False))
    held = held_seeds(results)
    pending = sorted(set(cfg.get("seeds_pending", [])) | (set(cfg["seeds"]) - set(held)))
    seeds = ",".join(str(s) for s in held) + (
        ""
        if not pending
        else f" (seed{'s' if len(pending) > 1 else ''} {','.join(map(str, pending))} asked for and "
        "not finished; the same command resumes them)"
    )
    notes = (
        f"profile <b>{cfg['profile']}</b>: model {cfg['model']}, {cfg['steps']} steps at batch "
        f"{cfg['batch_size']}, lr {cfg['lr']}, frozen word embeddings: "
        f"{cfg['freeze_word_embeddings']}; training seeds {seeds} (one model per strategy, α and "
        f"seed; the base model once); evaluation subsample seed {cfg['eval_seed']} (the same "
        "queries for every model); the strategy-level test (crossed random effects over seeds and "
        f"answer clusters, Satterthwaite df) decides the verdicts; {cfg['permutations']} sign-flip "
        f"permutations for p_models; δ = {cfg['delta']} for C5. Training corpus: "
        f"{cfg.get('corpus', 'xquad-train')}."
        + (
            f" Training languages: {', '.join(cfg['train_languages'])}; unseen (never trained on, "
            "shown apart in "
            f"the per-language views): {', '.join(unseen_languages(results, cfg)) or 'none'}."
            if cfg.get("train_languages")
            else ""
        )
        + (
            f" Prefixes for an encoder without prompts: {json.dumps(cfg['prompts'])}."
            if cfg.get("prompts")
            else ""
        )
        + (
            f" Training-free fixes evaluated beside every model ({', '.join(cfg['fixes'])}): "
            "estimated for each model "
            f"from the passages of {cfg.get('fix_groups') or 'all'} training groups of "
            f"{cfg.get('corpus', 'xquad-train')} (fixes.csv), never from a benchmark."
            if cfg.get("fixes")
            else ""
        )
        + (f" Incomplete: {'; '.join(missing)}." if missing else "")
        + (f" {'; '.join(cfg['notes'])}." if cfg.get("notes") else "")
    )
    if partial:
        notes = f"<b>PARTIAL GRID</b>: {partial} " + notes
    mean_all = agg.rename(columns={"mean": "value"}).assign(qlang="all", dlang="all")
    mean = mean_all[~mean_all["model"].map(has_fix)]  # the strategies; the fixes have a section
    with_fixes = mean_all[mean_all["model"].isin(_fix_models(dict.fromkeys(mean_all["model"])))]
    shipped = shipped_comparison(out, cfg, results)
    few = _too_few(verdicts)
    first = [("Run", notes)]
    if shipped is not None:
        first.append(("This run beside the evidence hbkit ships", shipped["line"]))
        if len(shipped["table"]):
            first.append(
                (
                    "Largest difference from the shipped results per benchmark (macro mAP, same "
                    "model and seed)",
                    shipped["table"],
                    None,
                    True,
                )
            )
        if few:
            first.append(
                (
                    f"The shipped answer ({shipped['folder']}, {shipped['seeds']} training "
                    "seeds): this run "
                    "has too few seeds for verdicts of its own; these are the committed evidence's",
                    viz.verdict_matrix(shipped["verdicts"]),
                )
            )
    sections = [
        *first,
        (
            ("PARTIAL GRID, the models aggregated last time only. " if partial else "")
            + "The answer: verdicts on the paper's claims (strategy-level test: training seeds "
            "and answer clusters both random; hover a cell for its evidence)",
            viz.verdict_matrix(verdicts),
        ),
        (
            "Strategy effects with 95% intervals, the paper's effects as markers",
            viz.effect_forest(effects, ref_eff if ref is not None else None),
        ),
        (
            "Macro mAP: mean over seeds [95% t interval over seeds and answer clusters]",
            table,
            "table.csv",
            True,
        ),
        (
            "mAP against α (X-Y = 0, hybrid = 0.5, X-X-mono = 1), intervals over seeds and queries",
            viz.alpha_curve(agg, metric="map"),
        ),
        ("mAP per benchmark and setting", viz.metric_bars(mean, "map")),
        (
            "Language bias: maximum rank distance (lower is better)",
            viz.metric_bars(mean[mean.setting == "multi"], "rank_distance"),
        ),
        *[
            (title, viz.metric_bars(mean[mean.setting == "multi"], m))
            for m, title in (
                (
                    "tlr@10",
                    "Language bias: TLR@10, relevant passages in other languages in the top 10 "
                    "(higher is better)",
                ),
                (
                    "mrc@10",
                    "Language bias: MRC@10, rank correlation of parallel queries (higher is "
                    "better)",
                ),
                (
                    "peer@20",
                    "Language bias: PEER@20 (higher is fairer; one constant on pools with one "
                    "relevant passage per language, so reported, not tested)",
                ),
            )
            if m in set(mean["metric"])
        ],
        *(
            [
                (
                    "Training-free fixes beside training (SHIFT, language-wise centering; C6 and "
                    "C7): mAP",
                    viz.metric_bars(with_fixes, "map"),
                ),
                (
                    "Training-free fixes: language bias (TLR@10, multilingual pool)",
                    viz.metric_bars(with_fixes[with_fixes.setting == "multi"], "tlr@10"),
                ),
                ("What each fix was estimated from (training passages only)", fixes, "fixes.csv"),
            ]
            if cfg.get("fixes") and with_fixes["model"].map(has_fix).any()
            else []
        ),
        *(
            [
                (
                    "MTEB, scored by mteb's own evaluator on tasks built offline (nDCG@10 per "
                    "subset; each model under its own name and revision in mteb/)",
                    mteb,
                    "mteb.csv",
                    True,
                )
            ]
            if len(mteb)
            else []
        ),
        ("Language clusters before and after training", viz.umap_scatter(coords)),
        (
            "Alignment (mean over seeds)",
            viz.alignment_bars(
                align.assign(qlang="all", dlang="all")
                .groupby(["model", "benchmark", "metric", "qlang", "dlang"])["value"]
                .mean()
                .reset_index()
            ),
        ),
        (
            "Alignment against retrieval: one point per model and seed (alignment is not "
            "retrieval; mOthello, arXiv 2404.12444)",
            viz.alignment_vs_retrieval_figure(results, align),
        ),
        (
            "Spearman's rho of each alignment measure with mAP across models and seeds, 95% "
            "interval (Fisher z, Bonett-Wright variance)",
            corr,
            "alignment_vs_retrieval.csv",
        ),
    ]
    first_seed = (
        results[results.seed == results.seed.min()] if results.seed.notna().any() else results
    )
    base_rows = results[results.model == "base"]
    # the strategies, not their fixes
    for name in (m for m in dict.fromkeys(results["model"]) if not has_fix(m)):
        r = pd.concat([first_seed, base_rows]).drop_duplicates()
        sections.append((f"Language pairs: {name}", viz.pair_heatmap(r, name, umap_bench(cfg))))
    sections += [
        ("Verdicts with their evidence", verdicts, "verdicts.csv"),
        (
            "Power plan: training seeds that would detect 0.01 mAP, and the paper's effect, at "
            "this run's clusters",
            power,
            "power.csv",
        ),
        (
            "Effects (paired; p: the strategy-level test, t with Satterthwaite df; p_adj: "
            "Benjamini-Hochberg within each "
            "family; p_models: sign-flip over answer clusters with these trained models fixed)",
            effects,
            "effects.csv",
        ),
        (
            "Published numbers as they are (ours − paper only where the encoder matches; "
            f"{ref_note})",
            absolute,
            "reference_absolute.csv",
        ),
        (
            "Published effects beside ours (sign agreement; paper's effect inside our interval?)",
            ref_eff,
            "reference_effects.csv",
        ),
        (
            "Published per-language numbers beside ours (arXiv 2408.10536 Tables 3-8, 12-13, "
            "shipped with hbkit; ours: mean over seeds; unseen: a language this run never trained "
            "on, as el and vi for the paper; absolute values differ by encoder and data)",
            langs,
            "reference_languages.csv",
        ),
        (
            "Per-language differences between strategies beside the paper's (sign agreement per "
            "encoder; ours: difference of seed means, without an interval per language)",
            lang_effects,
            "reference_language_effects.csv",
        ),
        (
            "Zero-shot separation: training texts found in each benchmark (exact / normalised)",
            overlap,
            "overlap.csv",
        ),
    ]
    viz.write_report(out / "report.html", "hbkit: X-X-mono vs X-Y vs hybrid batches", sections)
    return {
        "out": out,
        "table": table,
        "results": results,
        "aggregate": agg,
        "effects": effects,
        "verdicts": verdicts,
        "power": power,
        "partial": partial,
        "shipped": shipped,
        "config": cfg,
    }


def report(run_dir: str | Path) -> dict:
    """``hbkit report RUN_DIR``: re-render the tables, verdicts, power plan and report.html from a
    finished folder; returns what :func:`render` returns. A folder that is not a finished run is
    refused before anything is written there (no lock is left in a mistyped path)."""
    if not (Path(run_dir) / "config.json").is_file():
        raise FileNotFoundError(
            f"{run_dir} is not a run folder (no config.json): give the --out of a finished "
            "`hbkit compare`"
        )
    run_dir = Path(run_dir)
    with RunLock(run_dir, wait=600):
        # the pending seeds count as planned
        cfg = planned_seeds(RunFolder(run_dir).json("config.json"))
        runs = plan(cfg)
        status = grid_status(
            run_dir, runs, completion(run_dir, runs, benchmark_names(cfg), cfg.get("fixes"))
        )
        if status["done"].all():
            return render(run_dir)
        msg = describe_missing(status, run_dir)
        if not (run_dir / "effects.csv").is_file():
            raise GridIncomplete(
                msg.replace("\n", " ") + " No report is written from a partial grid."
            )
        todo = status[~status["done"]]
        return render(
            run_dir,
            partial=f"{len(todo)} of {len(status)} planned models are not done yet "
            f"({', '.join(todo.model)}); these tables and verdicts are those of the "
            "models aggregated last time, without them.",
        )


class GridIncomplete(RuntimeError):
    """A report asked of a run folder whose grid is not filled yet and was never aggregated."""


def summary_text(res: dict, top: int = 8) -> str:
    """What the command line prints after ``compare`` or ``report``, short and without a NaN: the
    table ("n/a" where a model has no value), the verdicts (one paragraph instead when no claim can
    be decided yet), a digest of the power plan (its ``top`` best-powered mAP comparisons; every row
    is in ``power.csv``), where the files are, and last, when there are too few training seeds, what
    to run for a verdict and what it costs here. For a grid other processes are still filling: what
    is missing and who holds it."""
    if res.get("complete") is False:
        return res["message"]
    lines = [res["table"].astype(object).where(res["table"].notna(), "n/a").to_string(index=False)]
    if res.get("partial"):
        lines = [f"PARTIAL GRID: {res['partial']}", ""] + lines
    v = res.get("verdicts")
    few = v is not None and _too_few(v)
    if v is not None and len(v) and not few:
        lines += [
            "",
            v[["claim", "benchmark", "verdict", "evidence"]].to_string(
                index=False, max_colwidth=160
            ),
        ]
    p = res.get("power")
    if p is not None and len(p):
        lines += ["", *_power_digest(p, top)]
    lines += [
        "",
        f"written to {res['out']}/ (report.html, table.md, results.csv, effects.csv, "
        "verdicts.csv, power.csv)",
    ]
    shipped = res.get("shipped")
    if shipped is not None:
        lines += ["", shipped["line"]]
        if few:
            lines += [
                "",
                f"The shipped answer ({shipped['folder']}, {shipped['seeds']} training seeds; "
                "verdicts.csv there has the evidence):",
                *_verdict_lines(shipped["verdicts"]),
            ]
    if few:
        lines += [
            "",
            "TOO FEW TRAINING SEEDS: these numbers describe these trained models only. No verdict "
            "about strategies is given below 3 seeds per strategy (with one there is no "
            "seed-to-seed variation, with two the test's level is not kept; every claim in "
            "verdicts.csv reads 'too few seeds').",
            _next_step(Path(res["out"]), res["config"], res["results"]),
        ]
    return "\n".join(lines)


def _too_few(verdicts: pd.DataFrame) -> bool:
    """Whether no claim of a run can be decided: every verdict reads 'too few seeds'."""
    return bool(len(verdicts)) and bool((verdicts.verdict == "too few seeds").all())


def _verdict_lines(v: pd.DataFrame) -> list[str]:
    """One line per claim: ``C1 X-X-mono (xx) is the best ...: mlqa-r supported · tydiqa
    inconclusive · ...``."""
    out = []
    for claim, g in v.groupby("claim", sort=False):
        cells = " · ".join(f"{b} {x}" for b, x in zip(g["benchmark"], g["verdict"]))
        out.append(f"  {claim} {g['statement'].iloc[0]}: {cells}")
    return out


def _power_digest(p: pd.DataFrame, top: int) -> list[str]:
    """A few lines of the power plan: the range of the detectable mAP differences, and the ``top``
    mAP comparisons that need the fewest seeds (``seeds_for_target`` a number)."""
    m = p[p.metric == "map"]
    seeds = pd.to_numeric(m.seeds_for_target, errors="coerce")
    head = (
        f"Power plan ({len(p)} comparisons in power.csv, column seeds_for_target): at "
        f"{'/'.join(str(n) for n in sorted(set(m.n_seeds)))} seeds the smallest mAP difference a "
        f"test detects (80% power at 5%) is {m.mde.min():.3g}-{m.mde.max():.3g}"
        if len(m) and m.mde.notna().any()
        else f"Power plan ({len(p)} comparisons in power.csv): no minimum detectable effect at "
        "this number of seeds (one seed: no interval)"
    )
    best = m.assign(_s=seeds).dropna(subset=["_s"]).sort_values(["_s", "mde"]).head(top)
    if not len(best):
        return [head + "."]
    cols = [
        "contrast",
        "benchmark",
        "setting",
        "n_seeds",
        "mde",
        "power_at_target",
        "seeds_for_target",
    ]
    body = best[cols].to_string(index=False, float_format=lambda x: f"{x:.3g}")
    rest = int(seeds.notna().sum()) - len(best)
    return [
        head + "; the mAP comparisons that need the fewest seeds:",
        body,
        *([f"... and {rest} more with a number of seeds, in power.csv"] if rest > 0 else []),
    ]


def held_seeds(results: pd.DataFrame) -> list[int]:
    """The training seeds whose results a folder holds (``results.csv``'s trained rows), which may
    be fewer than ``config.json`` asks for after an interruption: what the tables are about."""
    if "seed" not in results.columns:
        return []
    s = pd.to_numeric(results["seed"], errors="coerce").dropna()
    return sorted(int(x) for x in set(s) if x >= 0)


def _next_step(out: Path, cfg: dict, results: pd.DataFrame) -> str:
    """What to run for a verdict of one's own in ``out`` (its ``config.json`` and ``results.csv`` as
    :func:`render` read them), and about what it costs on this machine."""
    have = held_seeds(results) or [0]
    want = sorted(set(have) | set(range(max(3, len(have) + 1))))[: max(3, len(have) + 1)]
    new = [s for s in want if s not in have]
    cmd = (
        f"hbkit compare --profile {cfg.get('profile', 'cpu')} --seeds "
        f"{','.join(map(str, want))} --out {out}"
    )
    minutes, _ = minutes_per_model(out, cfg.get("profile", "cpu"))
    per_seed = len([r for r in plan(cfg) if r.seed == have[0]])
    cost = (
        f" (about {minutes * per_seed * len(new):.0f} min here: {len(new)} new seed(s) x "
        f"{per_seed} models x {minutes:.1f} min)"
        if minutes
        else ""
    )
    return f"Next, for a verdict of your own: {cmd}{cost}; it trains only the new seeds."


def load_run(out: str | Path) -> dict:
    """What a finished ``compare`` run wrote, read back: ``results``, ``aggregate``, ``effects``,
    ``verdicts``, ``alignment``, ``umap``, ``table`` (DataFrames) and ``per_query`` (one frame,
    model/seed columns).

    Args:
        out: a ``hbkit compare`` run folder.

    Returns:
        A dict of DataFrames (the keys above), each empty where the run wrote nothing of that kind.

    Examples:
        >>> run = load_run("results/cpu")  # doctest: +SKIP
        >>> run["verdicts"][["claim", "benchmark", "verdict"]]  # doctest: +SKIP
    """
    out = Path(out)
    if not (out / "results.csv").is_file():
        raise FileNotFoundError(
            f"{out}/results.csv not found: run `hbkit compare --out {out}` first"
        )
    names = ("results", "aggregate", "effects", "verdicts", "alignment", "umap", "table", "power")
    run = RunFolder(out)
    return {**{n: run.table(n) for n in names if run.has(n)}, "per_query": run.per_query()}
