"""The main job end to end on the ci profile (tiny encoder), with two training seeds, and the ways a run
folder breaks in use: re-runs, another set-up or other data, damaged files, two jobs at once."""
import json
import logging
import os
import shutil
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from hbkit.experiment.compare import compare
from hbkit.experiment.plan import fixed_run, plan


@pytest.fixture(scope="module")
def ci_run(data_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("compare")
    return compare("ci", out, data_dir=data_dir, progress=False, seeds=[0, 1])


PLAIN = ["base", "xx", "xy", "hybrid"]                                  # the base model and the ci strategies
FIXED = [f"{m}+{f}" for m in PLAIN for f in ("shift", "center")]      # each one's training-free fixes
POOLS = {"xquad-r-eval", "mlqa-r", "tydiqa"}                           # the ci profile's pool benchmarks
SEEDS = {0, 1}                                                         # ci_run's training seeds


def test_every_output_file_is_written(ci_run):
    out = ci_run["out"]
    for f in ("results.csv", "aggregate.csv", "effects.csv", "verdicts.csv", "table.md", "table.csv",
              "report.html", "timings.json", "alignment.csv", "umap.csv", "reference_absolute.csv",
              "reference_effects.csv", "reference_languages.csv", "reference_language_effects.csv", "config.json"):
        assert (out / f).is_file(), f


def test_results_hold_every_model_benchmark_and_seed(ci_run):
    r = pd.read_csv(ci_run["out"] / "results.csv")
    assert set(r.model) == set(PLAIN + FIXED)
    assert set(r[r.model.isin(FIXED)].benchmark) == POOLS   # a fix is an embedding transform: pool benchmarks only
    r = r[r.model.isin(PLAIN)]
    assert set(r.benchmark) == POOLS | {"tydiqa-corpus-sw"}
    corpus = r[r.benchmark == "tydiqa-corpus-sw"]  # TyDi-QA as a MIRACL-style corpus, through faiss
    assert {"ndcg@10", "recall@100"} <= set(corpus.metric) and set(corpus.setting) == {"mono"}
    macro = r[(r.qlang == "all") & (r.metric == "map")]
    models = 1 + 3 * len(SEEDS)             # the base model once, 3 strategies per seed
    settings = 3 + 3 + 2                    # xquad-r-eval and mlqa-r: mono, cross, multi; tydiqa: no cross
    assert len(macro) == models * settings
    assert set(r[r.model != "base"].seed) == SEEDS and r[r.model == "base"].seed.isna().all()


def test_every_metric_is_in_its_range(ci_run):
    r = pd.read_csv(ci_run["out"] / "results.csv")
    assert r[~r.metric.isin(["rank_distance", "mrc@10"])].value.between(0, 1).all()
    assert r[r.metric == "mrc@10"].value.between(-1, 1).all()   # a rank correlation
    assert {"tlr@10", "mrc@10", "peer@20"} <= set(r.metric)


def test_table_lists_the_models_in_order_with_their_seeds(ci_run):
    table = pd.read_csv(ci_run["out"] / "table.csv")
    assert list(table.model) == PLAIN + FIXED
    seeds = dict(zip(table.model, table.seeds.astype(str)))
    assert seeds["xx"] == "0,1" and seeds["base+shift"] == "-1"   # a fix of the base model: evaluated once


def test_effects_have_their_families_and_tests(ci_run):
    eff = pd.read_csv(ci_run["out"] / "effects.csv")
    assert {"hybrid - xx", "hybrid - xy", "xy - xx"} <= set(eff.contrast) and eff.p.between(0, 1).all()
    assert (eff.low <= eff.high).all() and eff.p_adj.ge(eff.p - 1e-12).all()
    assert set(eff.family) == {"claims", "strategies", "base", "fixes"} and eff.df.gt(0).all() and eff.mde.ge(0).all()
    both_once = eff.a.str.startswith("base") & eff.b.str.startswith("base")   # base+shift - base: evaluated once each
    assert eff[~both_once].seeds_agree.str.fullmatch(r"[012]/2").all() and (eff.n_groups > 0).all()
    assert eff[both_once].seeds_agree.str.fullmatch(r"[01]/1").all() and eff[both_once].p.notna().all()
    claims = eff[eff.family == "claims"]
    assert {("multi", "tlr@10"), ("multi", "mrc@10")} <= set(zip(claims.setting, claims.metric))   # C4's measures
    assert "peer@20" not in set(eff.metric)   # reported in aggregate.csv, not tested (constant on these pools)


def test_two_seeds_give_no_strategy_verdict(ci_run):
    """The ci profile's 2 seeds: no strategy verdict, since the test's level is not kept below 3 (test_crossed.py)."""
    v = pd.read_csv(ci_run["out"] / "verdicts.csv")
    assert {"C1", "C2", "C3", "C4", "C5", "C6", "C7", "A1"} <= set(v.claim)
    assert set(v.verdict) <= {"too few seeds", "inconclusive"} and "too few seeds" in set(v.verdict)
    assert v[v.verdict == "too few seeds"].evidence.str.contains("2 training seeds per strategy").all()


def test_answer_clusters_cover_every_evaluated_group(ci_run):
    """The statistics' unit: answer clusters (paragraphs), one row per evaluated query group."""
    clusters = pd.read_csv(ci_run["out"] / "clusters.csv")
    cfg = json.loads((ci_run["out"] / "config.json").read_text())
    assert set(clusters.benchmark) == POOLS
    assert clusters.groupby("benchmark").group.nunique().to_dict() == {b: cfg["eval_groups"][b] for b in POOLS}


def test_newer_bias_measures_are_per_query_in_the_multilingual_pool_only(ci_run):
    pq = pd.read_parquet(ci_run["out"] / "per_query" / "base__xquad-r-eval.parquet")
    multi = pq[pq.setting == "multi"]
    assert multi["tlr@10"].between(0, 1).all() and multi["mrc@10"].between(-1, 1).all() and multi["peer@20"].le(1).all()
    assert pq[pq.setting != "multi"][["tlr@10", "mrc@10", "peer@20"]].isna().all().all()


def test_power_plan_has_a_number_of_seeds_for_every_tested_comparison(ci_run):
    power = pd.read_csv(ci_run["out"] / "power.csv")
    assert len(power) and (power.paper_encoder == "XLM-R").all()   # the shipped reference's encoder
    assert power[power.metric != "rank_distance"].seeds_for_target.notna().all()


def test_same_queries_for_every_seed(ci_run):
    """The training seed never changes what is evaluated: every model is scored on the same queries."""
    from hbkit.experiment.run_files import RunFolder
    pq = RunFolder(ci_run["out"]).per_query()
    ids = pq.groupby(["model", "seed"], dropna=False).apply(lambda d: frozenset(zip(d.benchmark, d.query_id)))
    fixed = ids.index.get_level_values("model").str.contains("+", regex=False)
    assert len(set(ids[~fixed])) == 1 and len(set(ids[fixed])) == 1       # a fix: the same, on the pool benchmarks
    assert set(ids[fixed].iloc[0]) == {(b, q) for b, q in ids[~fixed].iloc[0] if b != "tydiqa-corpus-sw"}


def test_report_shows_seeds_effects_verdicts_and_published_numbers(ci_run):
    html = (ci_run["out"] / "report.html").read_text()
    assert html.startswith("<!doctype html>") and html.count("plotly-graph-div") >= 5
    assert "Plotly.newPlot" in html and 'src="https://cdn.plot.ly' not in html  # plotly.js inlined
    for text in ("training seeds 0,1", "Verdicts", "Effects", "against α", "Published numbers", "Published effects",
                 "arXiv 2408.10536", "Zero-shot separation", "tydiqa-corpus-sw nDCG@10", "Alignment against retrieval",
                 "Language bias: TLR@10", "Language bias: MRC@10", "xquad-r-eval TLR@10"):
        assert text in html, text


def test_report_re_renders_byte_for_byte(ci_run):
    out = ci_run["out"]
    names = ("table.md", "table.csv", "verdicts.csv", "reference_absolute.csv", "reference_effects.csv", "power.csv",
             "reference_languages.csv", "reference_language_effects.csv", "alignment_vs_retrieval.csv",
             "report.html")
    before = {n: (out / n).read_bytes() for n in names}
    for n in names:
        (out / n).unlink()
    r = subprocess.run([sys.executable, "-m", "hbkit.app.cli", "report", str(out)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert {n: (out / n).read_bytes() for n in names} == before
    assert "Power plan" in r.stdout and "seeds_for_target" in r.stdout


def test_rerun_reuses_models_and_recomputes_a_damaged_result(ci_run, data_dir, caplog):
    out = ci_run["out"]
    before = {p: p.stat().st_mtime_ns for p in out.glob("models/*/model/hbkit_training.json")}
    damaged = out / "per_query" / "xy-s1__mlqa-r.parquet"
    damaged.write_bytes(damaged.read_bytes()[:100])  # truncated, as by a crash mid-write of an older version
    (out / "per_query" / ".xx-s0__mlqa-r.parquet.999.abcd.tmp.parquet").write_bytes(b"PAR1")  # a killed write's temp
    caplog.set_level(logging.INFO, logger="hbkit")
    again = compare("ci", out, data_dir=data_dir, progress=False, seeds=[0, 1])
    assert (f"reusing the base model, seed 0 (3 models), seed 1 (2 models) from {out}; 1 of 7 models to train or "
            "evaluate") in caplog.text   # said before the bar jumps past them
    after = {p: p.stat().st_mtime_ns for p in out.glob("models/*/model/hbkit_training.json")}
    assert before == after  # nothing retrained: the finished models were recognised (identity checks only)
    assert again["timings"]["reused_results"] == 7 * 4 - 1 and "xy-s1__mlqa-r.parquet is damaged" in caplog.text
    pd.testing.assert_frame_equal(again["table"], ci_run["table"])


def test_damaged_model_is_retrained(ci_run, data_dir, caplog):
    """A damaged model is retrained when it is needed (one of its results is missing); a model whose results are
    all there is not needed at all."""
    out = ci_run["out"]
    weights = next((out / "models" / "hybrid-s0" / "model").rglob("model.safetensors"))
    weights.write_bytes(weights.read_bytes()[:1000])
    (out / "per_query" / "hybrid-s0__tydiqa.parquet").unlink()
    compare("ci", out, data_dir=data_dir, progress=False, seeds=[0, 1])
    from hbkit.encoders.load import load_encoder
    assert load_encoder(str(out / "models" / "hybrid-s0" / "model")) is not None


def test_rerun_with_another_setup_is_refused(ci_run, data_dir):
    with pytest.raises(ValueError, match=r"steps: 4 -> 5.*--force"):
        compare("ci", ci_run["out"], data_dir=data_dir, progress=False, steps=5)


def test_rerun_with_other_data_is_refused(ci_run, data_dir, tmp_path):
    other = tmp_path / "data"
    shutil.copytree(data_dir, other, ignore=shutil.ignore_patterns("mlqa"))
    (other / "xquad-r").chmod(0o755)
    path = other / "xquad-r" / "de.json"
    path.chmod(0o644)
    doc = json.loads(path.read_text())
    for art in doc["data"]:  # another release of the same benchmark: every German question edited
        for para in art["paragraphs"]:
            for qa in para["qas"]:
                qa["question"] += " (v2)"
    path.write_text(json.dumps(doc))
    with pytest.raises(ValueError, match=r"data: the files differ \(train, xquad-r-eval\)"):
        compare("ci", ci_run["out"], data_dir=other, progress=False, seeds=[0, 1])


def test_two_jobs_in_one_folder(ci_run, monkeypatch):
    """The folder's shared files are written under a short lock: a second job waits for it, naming the holder,
    and gives up after its limit (models have locks of their own: tests/test_grid.py)."""
    import threading
    import time

    import hbkit.experiment.compare as cmp
    from hbkit.core.files import FolderInUse, RunLock
    lines: list[str] = []
    with RunLock(ci_run["out"]):
        p = subprocess.Popen([sys.executable, "-m", "hbkit.app.cli", "report", str(ci_run["out"])],
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        reader = threading.Thread(target=lambda: lines.extend(p.stderr), daemon=True)
        reader.start()
        t0 = time.time()   # released only once it says it waits (its start takes seconds, more on a busy machine)
        while not any("waiting up to 600 s for PID" in x for x in lines) and time.time() - t0 < 240:
            assert p.poll() is None, "".join(lines)[-2000:]   # still waiting, not failed
            time.sleep(0.5)
    p.wait(timeout=300)
    reader.join(timeout=60)
    err = "".join(lines)
    assert p.returncode == 0 and "waiting up to 600 s for PID" in err and "Traceback" not in err
    monkeypatch.setattr(cmp, "SHARED_LOCK_WAIT_S", 1)
    with RunLock(ci_run["out"]):
        with pytest.raises(FolderInUse, match="still in use by PID .* after 1 s"):
            compare("ci", ci_run["out"], progress=False)


def test_bad_arguments_fail_before_any_work(tmp_path):
    for kw, msg in (({"alphas": [1.5]}, "alphas"), ({"seeds": [0, 0]}, "given twice"), ({"delta": -0.1}, "delta"),
                    ({"eval_groups": {"mlqa-r": 0}}, "eval_groups"), ({"fixes": ["lir"]}, "fixes=.*shift, center"),
                    ({"fixes": ["shift", "shift"]}, "fixes"), ({"fix_groups": 1}, "fix_groups"),
                    ({"rankings_k": -1}, "rankings_k")):
        with pytest.raises(ValueError, match=msg):
            compare("ci", tmp_path / "x", progress=False, **kw)
    assert not (tmp_path / "x").exists()


def test_extra_alpha_trains_only_the_new_runs(ci_run, data_dir):
    out = ci_run["out"]
    again = compare("ci", out, data_dir=data_dir, progress=False, seeds=[0, 1], alphas=[0.25])
    assert again["timings"]["reused_results"] == 7 * 4
    r = again["results"]
    assert set(r.model[~r.model.str.contains("+", regex=False)]) == {"base", "xx", "xy", "hybrid", "hybrid-a0.25"}
    assert {"hybrid-a0.25+shift", "hybrid-a0.25+center"} <= set(r.model)
    log = json.loads((out / "models" / "hybrid-a0.25-s1" / "model" / "hbkit_training.json").read_text())
    assert log["config"]["strategy"] == "hybrid" and log["config"]["alpha"] == 0.25 and log["config"]["seed"] == 1


def test_overlapping_training_questions_are_refused(data_dir, tmp_path):
    """Zero-shot separation: a training corpus holding evaluation questions stops the job before any training."""
    from hbkit.data.benchmarks import load_benchmark
    from hbkit.data.checks import ZeroShotError
    q = load_benchmark("mlqa-r", data_dir).queries.iloc[:3]
    rows = [{"group": f"g{i}", "lang": l, "query": t if l == "en" else f"{t} ({l})", "passage": f"p{i} {l}",
             "answer_key": f"g{i}"} for i, t in enumerate(q.text) for l in ("en", "de")]
    rows += [{"group": f"x{i}", "lang": l, "query": f"question {i} {l}", "passage": f"answer {i} {l}",
              "answer_key": f"x{i}"} for i in range(40) for l in ("en", "de")]
    path = tmp_path / "pairs.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in rows))
    run = tmp_path / "run"
    run.mkdir()
    with pytest.raises(ZeroShotError, match=r"mlqa-r: [1-9]\d* of its .*--allow-overlap"):
        compare("ci", run, data_dir=data_dir, progress=False, corpus=str(path), seeds=[0],
                eval_groups={"xquad-r-eval": 12, "tydiqa": 30})  # all of mlqa-r: the copied questions are in it
    assert [p.name for p in run.iterdir() if not p.name.startswith(".lock")] == []   # refused: nothing written


def test_added_benchmark_is_evaluated_for_every_model_and_removing_one_is_refused(ci_run, data_dir):
    """A benchmark added later (MIRACL once downloaded, in the paper profile) is scored for the models already
    in the folder, without retraining or re-scoring anything; taking one away would mix two set-ups."""
    out = ci_run["out"]
    before = {p.name: p.stat().st_mtime_ns for p in (out / "per_query").glob("*.parquet")}
    models = {p.name: p.stat().st_mtime_ns for p in (out / "models").glob("*/model/model.safetensors")}
    again = compare("ci", out, data_dir=data_dir, progress=False, seeds=[0, 1],
                    corpus_benchmarks=["tydiqa-corpus:sw", "tydiqa-corpus:te"])
    after = {p.name: p.stat().st_mtime_ns for p in (out / "per_query").glob("*.parquet")}
    assert all(after[n] == t for n, t in before.items())  # nothing re-scored
    runs = {r.id for r in plan(json.loads((out / "config.json").read_text()))}  # an extra α run may sit there too
    assert {n for n in after if n not in before} == {f"{r}__tydiqa-corpus-te.parquet" for r in runs}
    assert {p.name: p.stat().st_mtime_ns for p in (out / "models").glob("*/model/model.safetensors")} == models
    assert "tydiqa-corpus-te" in set(again["results"].benchmark)
    assert json.loads((out / "config.json").read_text())["corpus_benchmarks"] == ["tydiqa-corpus:sw", "tydiqa-corpus:te"]
    with pytest.raises(ValueError, match=r"corpus_benchmarks: .*removing or changing is not"):
        compare("ci", out, data_dir=data_dir, progress=False, seeds=[0, 1], corpus_benchmarks=["tydiqa-corpus:te"])


def test_results_without_weights_are_reused_and_new_seeds_add_to_them(ci_run, data_dir, tmp_path, caplog):
    """Committed results (per-query Parquet, config, UMAP of the first seeds; no weights) are a run folder: compare
    trains nothing for them, and a new seed trains only its own runs."""
    src = ci_run["out"]
    dst = tmp_path / "committed"
    shutil.copytree(src, dst, ignore=shutil.ignore_patterns("models", "corpus", ".lock*", "report.html"))
    for f in (dst / "umap").glob("*-s1.npy"):
        f.unlink()                                  # only the first seed's UMAP is shown, and kept
    from hbkit.experiment.report import render
    cfg = json.loads((dst / "config.json").read_text())   # earlier tests may have added a benchmark or an α
    same = {"seeds": [0, 1], "alphas": cfg["alphas"], "corpus_benchmarks": cfg["corpus_benchmarks"]}
    ids = {r.id for r in plan({**cfg, **same})}
    ids |= {fixed_run(r, f).id for r in plan({**cfg, **same}) for f in cfg["fixes"]}
    for f in [*(dst / "per_query").glob("*"), *(dst / "alignment").glob("*")]:
        if f.name.split("__")[0] not in ids:   # an earlier test's extra-α run, outside this plan
            f.unlink()
    timings_before = (dst / "timings.json").read_bytes()
    caplog.set_level(logging.INFO, logger="hbkit")
    again = compare("ci", dst, data_dir=data_dir, progress=False, **same)
    assert not (dst / "models").exists() and again["timings"]["train"] == 0
    assert "reusing the base model, seed 0 (" in caplog.text and "; nothing to train or evaluate" in caplog.text
    assert (dst / "timings.json").read_bytes() == timings_before   # the cost figures of the run that did the work
    ref = render(src)["table"]
    pd.testing.assert_frame_equal(again["table"], ref[ref.model.isin(again["table"].model)].reset_index(drop=True))
    for f in (dst / "per_query").glob("xx+*"):     # a trained model's fixes, absent with its weights: not retrained
        f.unlink()
    compare("ci", dst, data_dir=data_dir, progress=False, **same)
    assert not (dst / "models").exists()
    assert any(m.startswith("xx+shift, xx+center not evaluated") for m in json.loads((dst / "missing.json").read_text()))
    more = compare("ci", dst, data_dir=data_dir, progress=False, **{**same, "seeds": [0, 1, 2]})
    assert sorted(p.name for p in (dst / "models").iterdir()) == sorted(
        ["hybrid-s2", "xx-s2", "xy-s2"] + [f"hybrid-a{a:g}-s2" for a in cfg["alphas"] if a != 0.5])
    assert set(more["results"][more["results"].model == "xx"].seed) == {0, 1, 2}
    assert (pd.read_csv(dst / "effects.csv").n_seeds[lambda s: s > 1] == 3).all()


def test_a1_can_be_supported_in_a_run_with_a_corpus_benchmark(ci_run):
    """tydiqa-corpus is not applicable to A1 (no parallel queries): with every A1 comparison significant in the
    claimed direction, A1 is supported, and the corpus benchmark is named as not applicable."""
    from hbkit.analysis import claims
    eff = pd.read_csv(ci_run["out"] / "effects.csv")
    assert "tydiqa-corpus-sw" in set(eff.benchmark)
    eff = eff.assign(n_seeds=3)     # as if a third seed had been trained: 2 give no strategy verdict
    for bench in ("xquad-r-eval", "mlqa-r", "tydiqa"):
        measures = ([("multi", "acc@1", +1)] if bench == "tydiqa" else
                    [("alignment", m, s) for m, s in claims.A1_MEASURES])
        for setting, metric, sign in measures:
            for other in ("xx", "xy"):
                sel = (eff.benchmark == bench) & (eff.setting == setting) & (eff.metric == metric) & (
                    eff.a == "hybrid") & (eff.b == other)
                assert sel.sum() == 1, (bench, metric, other)
                eff.loc[sel, ["diff", "low", "high", "p", "p_adj"]] = [0.05 * sign, 0.04 * sign, 0.06 * sign, 1e-6, 1e-5]
                eff.loc[sel & (sign < 0), ["low", "high"]] = [-0.06, -0.04]
    v = claims.verdicts(eff)
    a1 = v[(v.claim == "A1") & (v.benchmark == "all")].iloc[0]
    assert a1.verdict == "supported", a1.evidence
    assert "tydiqa-corpus-sw (a corpus benchmark" in a1.evidence


def test_one_seed_says_it_shows_these_models_only(ci_run, data_dir, tmp_path):
    """The command line on a folder holding seed 0's results only (ci_run's, without weights: nothing is trained
    again) says its numbers describe these trained models only, and no verdict is decided."""
    one = tmp_path / "one"
    shutil.copytree(ci_run["out"], one, ignore=shutil.ignore_patterns("models", "corpus", ".lock*", "report.html"))
    cfg = json.loads((one / "config.json").read_text())   # earlier tests may have added a benchmark or an α
    ids = {r.id for r in plan({**cfg, "seeds": [0]})}
    for f in [*(one / "per_query").glob("*"), *(one / "alignment").glob("*"), *(one / "umap").glob("*")]:
        if f.name.split("__")[0].removesuffix(".npy") not in ids:
            f.unlink()
    extra = [*(["--alphas", ",".join(f"{a:g}" for a in cfg["alphas"])] if cfg["alphas"] else []),
             *(["--corpus-benchmarks", ",".join(cfg["corpus_benchmarks"])] if cfg["corpus_benchmarks"] else [])]
    shipped = tmp_path / "results" / "ci"   # what hbkit ships for the profile, beside the runs folder
    shutil.copytree(ci_run["out"], shipped, ignore=shutil.ignore_patterns("models", "corpus", ".lock*", "report.html"))
    r = subprocess.run([sys.executable, "-m", "hbkit.app.cli", "compare", "--profile", "ci", "--seeds", "0", "--out",
                        str(one), "--data-dir", str(data_dir), *extra], capture_output=True, text=True,
                       env={**os.environ, "HBKIT_RUNS": str(tmp_path / "runs")})
    assert not (one / "models").exists()   # reused, not trained
    # the first screen says that this machine reproduces the shipped models, and gives the shipped answer
    assert f"Against the shipped evidence ({shipped}, 2 seeds): " in r.stdout and "at most 0.0000" in r.stdout
    assert "this machine reproduces them" in r.stdout and "The shipped answer" in r.stdout
    assert "This run beside the evidence hbkit ships" in (one / "report.html").read_text()
    assert r.returncode == 0, r.stderr[-2000:]
    assert "TOO FEW TRAINING SEEDS: these numbers describe these trained models only" in r.stdout
    assert "NaN" not in r.stdout and "nan" not in r.stdout.split()   # "n/a" for a person, never NaN
    last = r.stdout.strip().splitlines()[-1]   # the last line says what to run next, and what it costs here
    assert last.startswith(f"Next, for a verdict of your own: hbkit compare --profile ci --seeds 0,1,2 --out {one}")
    assert len(r.stdout.splitlines()) < 60 and ">NaN<" not in (one / "report.html").read_text()
    v = pd.read_csv(tmp_path / "one" / "verdicts.csv")
    assert set(v.verdict) == {"too few seeds"} and "contradicted" not in r.stdout
    # interrupted after asking for two seeds: config.json holds seed 0 and seed 1 as pending, and the report says so
    cfg = json.loads((one / "config.json").read_text())
    (one / "config.json").write_text(json.dumps({**cfg, "seeds_pending": [1]}))
    from hbkit.experiment.report import render
    render(one)
    assert "training seeds 0 (seed 1 asked for and not finished; the same command resumes" in (
        one / "report.html").read_text()


def test_damaged_umap_and_log_files_are_named_and_recomputed(ci_run, data_dir, caplog):
    """A 0-byte UMAP array is named and recomputed; a train_log.jsonl whose last line a kill cut short is read
    without it (the loss curves still draw), and a line damaged in the middle is named with the file."""
    from hbkit.analysis import figures as viz
    from hbkit.core.files import read_jsonl
    out = ci_run["out"]
    (out / "umap" / "xx-s0.npy").write_bytes(b"")
    log = out / "models" / "xy-s0" / "train_log.jsonl"
    good = log.read_text()
    log.write_text(good + '{"step": 99, "loss": 1.2')             # the kill's cut
    again = compare("ci", out, data_dir=data_dir, progress=False, seeds=[0, 1],
                    **{k: json.loads((out / "config.json").read_text())[k] for k in ("alphas", "corpus_benchmarks")})
    assert "xx-s0.npy is damaged" in caplog.text and np.load(out / "umap" / "xx-s0.npy").shape[0] > 0
    assert "xx" in set(again["results"].model)
    assert len(read_jsonl(log)) == len(good.splitlines()) and "cut short" in caplog.text
    assert viz.loss_curves(out) is not None
    log.write_text('{"step": 1}\nnot json\n{"step": 2}\n')
    with pytest.raises(ValueError, match=r"train_log.jsonl: line 2 is not JSON"):
        read_jsonl(log)
    log.write_text(good)


def test_report_on_a_mistyped_folder_writes_nothing(tmp_path):
    r = subprocess.run([sys.executable, "-m", "hbkit.app.cli", "report", str(tmp_path / "typo")], capture_output=True,
                       text=True)
    assert r.returncode != 0 and "is not a run folder" in r.stderr and "Traceback" not in r.stderr
    assert not (tmp_path / "typo").exists()


@pytest.mark.parametrize("name,damage,why", [
    ("results.csv", lambda b: b[: len(b) // 2], "its last line is cut short"),
    ("results.csv", lambda b: b[: b.rindex(b"\n", 0, len(b) // 2) + 1] + b"xx,xx,0.0\n", "row .* has no"),
    ("results.csv", lambda b: b[: b.rindex(b"\n", 0, len(b) // 2) + 1], r"\d+ rows where compare wrote \d+"),
    ("effects.csv", lambda b: b.replace(b"0.", b"1.", 1), r"bytes differ from what compare wrote"),
    ("effects.csv", lambda b: b"\x00\xff garbage\n", "not a readable CSV"),
    ("effects.csv", lambda b: b"a,b\n1,2\n", "missing column.*contrast"),
    ("aggregate.csv", lambda b: b"", "not a readable CSV"),
    ("alignment.csv", lambda b: b.replace(b"model,", b"modle,", 1), "missing column.*model"),
    ("config.json", lambda b: b[:40], "not JSON"),
    ("missing.json", lambda b: b'{"a": 1}', "expected a list.*run `hbkit compare --out .*` with the same options"),
])
def test_report_names_a_damaged_table_and_writes_nothing(ci_run, tmp_path, name, damage, why, capsys):
    """``hbkit report`` on a folder whose table or JSON is damaged names that file and how to recompute it (a
    half-truncated results.csv once rendered without complaint), and leaves every output as it was."""
    out = tmp_path / "run"
    shutil.copytree(ci_run["out"], out, ignore=shutil.ignore_patterns("models", ".lock*"))
    f = out / name
    f.write_bytes(damage(f.read_bytes()))
    before = {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()}
    from hbkit.app.cli import main
    rc = main(["report", str(out)])   # the command line, in this process (no interpreter start per case)
    err = capsys.readouterr().err
    assert rc == 2 and "Traceback" not in err, err
    assert f"{f} is damaged" in err and __import__("re").search(why, err), err
    assert {p.name: p.read_bytes() for p in out.iterdir() if p.is_file() and not p.name.startswith(".lock")} == \
        {k: v for k, v in before.items() if not k.startswith(".lock")}


def test_the_report_leads_with_the_answer(ci_run):
    """report.html opens with the run, then the verdict matrix and the forest plot; every long table sits
    collapsed with a link to its CSV file, which exists beside the report."""
    import re
    page = (ci_run["out"] / "report.html").read_text()
    heads = re.findall(r"<h2>([^<]*)", page)
    assert heads[0] == "Run" and heads[1].startswith("The answer: verdicts") and heads[2].startswith("Strategy effects")
    assert page.index("Verdicts on the paper") < page.index("Strategy effects on map")   # the figures' titles
    collapsed = re.findall(r"<details><summary><b>([^<]*)</b> \((\d+) rows; <a href='([^']+)'>", page)
    names = {c[2] for c in collapsed}
    assert {"effects.csv", "verdicts.csv", "power.csv"} <= names
    for _, n, csv in collapsed:
        assert (ci_run["out"] / csv).is_file() and len(pd.read_csv(ci_run["out"] / csv)) == int(n), csv
    assert page.index("<details>") > page.index("Macro mAP")   # the answer and the main table come first


def test_verdict_matrix_colours_each_verdict():
    from hbkit.analysis.figures import VERDICT_COLOURS, verdict_matrix
    v = pd.DataFrame({"claim": ["C1", "C1", "C2", "C2"], "benchmark": ["mlqa-r", "all", "mlqa-r", "all"],
                      "verdict": ["supported", "inconclusive", "contradicted", "too few seeds"],
                      "statement": ["s"] * 4, "evidence": ["e"] * 4})
    fig = verdict_matrix(v)
    hm = fig.data[0]
    assert list(hm.x) == ["mlqa-r", "all"] and list(hm.y) == ["C1", "C2"]
    assert [list(r) for r in hm.text] == [["supported", "inconclusive"], ["contradicted", "too few seeds"]]
    colour = {t: dict((round(v, 6), c) for v, c in hm.colorscale)[round(z / max(1, len(hm.colorscale) - 1), 6)]
              for row_t, row_z in zip(hm.text, hm.z) for t, z in zip(row_t, row_z)}
    assert colour["supported"] == VERDICT_COLOURS["supported"] and colour["contradicted"] == VERDICT_COLOURS["contradicted"]


def test_verdict_matrix_says_n_a_with_the_reason_where_a_claim_has_no_verdict():
    """C2 has no row on TyDi-QA (no cross-lingual setting): the cell reads n/a, not blank, and its hover gives the
    reason the claim's ``all`` row names; a cell with no reason anywhere says so."""
    from hbkit.analysis.figures import VERDICT_COLOURS, verdict_matrix
    v = pd.DataFrame({"claim": ["C1", "C1", "C1", "C2", "C2"],
                      "benchmark": ["mlqa-r", "tydiqa", "all", "mlqa-r", "all"],
                      "verdict": ["supported", "inconclusive", "inconclusive", "contradicted", "contradicted"],
                      "statement": ["s"] * 5,
                      "evidence": ["e", "e", "e", "e", "contradicted on mlqa-r; not applicable: miracl-sw (no map); "
                                                       "tydiqa (no cross map)"]})
    hm = verdict_matrix(v).data[0]
    assert list(hm.x) == ["mlqa-r", "tydiqa", "all"]
    assert [list(r) for r in hm.text][1] == ["contradicted", "n/a", "contradicted"]
    assert hm.customdata[1][1] == "C2 on tydiqa: not applicable (no cross map)"
    colours = dict((round(x, 6), c) for x, c in hm.colorscale)
    assert colours[round(hm.z[1][1] / max(1, len(hm.colorscale) - 1), 6)] == VERDICT_COLOURS["not applicable"]
    assert None not in [z for row in hm.z for z in row]


def test_plan_status_counts_every_benchmark_a_run_scores(ci_run):
    """Notebook 1's status: a folder whose models have all their results is done; a corpus benchmark not yet
    scored there (named from its spec, nothing is read or built) makes every model still to run."""
    from hbkit.data.corpus_benchmarks import corpus_benchmark_names
    from hbkit.experiment.status import plan_status
    assert corpus_benchmark_names("tydiqa-corpus:sw,te") == ["tydiqa-corpus-sw", "tydiqa-corpus-te"]
    assert corpus_benchmark_names("miracl:sw") == ["miracl-sw"]
    out = ci_run["out"]
    cfg = {**json.loads((out / "config.json").read_text()), "seeds": [0, 1]}
    done = plan_status(cfg, out)
    assert done.done.all() and done.attrs["to_run"] == 0 and done.attrs["estimate_minutes"] == 0
    more = plan_status({**cfg, "corpus_benchmarks": [*cfg["corpus_benchmarks"], "tydiqa-corpus:fi"]}, out)
    assert not more.done.any() and more.attrs["to_run"] == len(more)
    assert more.attrs["minutes_per_model"] > 0 and more.attrs["measured_in"] == str(out)


def test_cell_means_are_the_long_frames_means_without_building_it():
    """results.csv's cells: the wide groupby gives the rows, order, dtypes and bits of the melt it replaces,
    with NaN metrics (a group whose metric has no value has no row), NaN seeds and α (the base model) and
    several metrics sorted by name."""
    import numpy as np

    from hbkit.experiment.stages import cell_means
    rng = np.random.default_rng(0)
    n = 3000
    pq = pd.DataFrame({"model": rng.choice(["base", "xx-s0", "hybrid-s1"], n), "benchmark": rng.choice(["b1", "b2"], n),
                       "qlang": rng.choice(["en", "de", "ar"], n), "query_id": [f"q{i}" for i in range(n)],
                       "group": rng.choice([f"g{i}" for i in range(50)], n)})
    pq["seed"] = pq["model"].map({"base": np.nan, "xx-s0": 0.0, "hybrid-s1": 1.0})
    for m in ("map", "rank_distance", "acc@1", "tlr@10"):
        pq[m] = rng.random(n) * 1e3 / 7
        pq.loc[rng.random(n) < 0.2, m] = np.nan
    pq.loc[pq["model"] == "base", "tlr@10"] = np.nan          # a metric with no value for a whole model
    keys, metrics = ["model", "seed", "benchmark", "qlang"], ["map", "rank_distance", "acc@1", "tlr@10"]
    long = pq.melt(id_vars=keys + ["query_id", "group"], value_vars=metrics, var_name="metric").dropna(subset=["value"])
    want = long.groupby(keys + ["metric"], dropna=False).agg(value=("value", "mean"), n=("value", "size")).reset_index()
    got = cell_means(pq, keys, metrics)
    pd.testing.assert_frame_equal(got, want, check_exact=True)
    assert not ((got["model"] == "base") & (got["metric"] == "tlr@10")).any() and got["seed"].isna().any()


def test_config_records_the_seeds_the_folder_holds_not_those_asked(ci_run, data_dir, tmp_path):
    """Interrupted while training the first model of a new seed, the folder's config.json holds the seeds whose
    every model is done, and the new one as pending; ``hbkit report`` then speaks of the grid as partial."""
    import shutil
    import threading

    from hbkit.experiment.report import report
    from hbkit.train.trainer import RunCancelled

    out = tmp_path / "grow"
    shutil.copytree(ci_run["out"], out)
    cancel = threading.Event()

    def on_progress(p):
        if p.get("stage") == "train" and str(p.get("model", "")).endswith("-s2"):
            cancel.set()

    made = json.loads((out / "config.json").read_text())   # an earlier test may have added a benchmark there
    with pytest.raises(RunCancelled):
        compare("ci", out, data_dir=data_dir, progress=False, seeds=[0, 1, 2], on_progress=on_progress, cancel=cancel,
                benchmarks=made["benchmarks"], corpus_benchmarks=made["corpus_benchmarks"])
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["seeds"] == [0, 1] and cfg["seeds_pending"] == [2]
    report(out)
    html = (out / "report.html").read_text()
    assert "training seeds 0,1 (seed 2 asked for and not finished" in html and "PARTIAL GRID" in html


def test_held_config_by_hand():
    """held_config: a seed is held when every planned model of it is done; a seed held on file and not planned
    stays held; an unfinished seed of this run is pending, and no pending key is written when none is."""
    from hbkit.experiment.plan import Run, held_config

    runs = [Run("base", None, None, None), Run("xx", "xx", 0.0, 0), Run("xy", "xy", 1.0, 0),
            Run("xx", "xx", 0.0, 1), Run("xy", "xy", 1.0, 1)]
    done_ids = {"base", "xx-s0", "xy-s0", "xx-s1"}
    cfg = {"profile": "ci", "seeds": [0, 1], "model": "m"}
    got = held_config(cfg, runs, lambda r: r.id in done_ids, {"seeds": [5], "seeds_pending": [9]})
    assert got == {"profile": "ci", "seeds": [0, 5], "model": "m", "seeds_pending": [1]}
    done_ids.add("xy-s1")
    assert held_config({**cfg, "seeds_pending": [1]}, runs, lambda r: r.id in done_ids, None) == {**cfg}
