"""MTEB offline: XQuADRetrieval and MLQARetrieval built from the local releases reproduce what mteb records of
its own build (every subset of its descriptive_stats: counts, text lengths, relevant documents), mteb's
evaluator scores them without the hub, and two trained models never share results."""
import json
import os
from pathlib import Path

import pytest

mteb = pytest.importorskip("mteb")

from hbkit.data.registry import DataError  # noqa: E402
from hbkit.retrieval import mteb_tasks as mt  # noqa: E402

STATS = Path(mteb.__file__).parent / "descriptive_stats" / "Retrieval"


@pytest.mark.parametrize("task", mt.TASKS)
def test_every_subset_mteb_describes_is_rebuilt_exactly(task, data_dir):
    recorded = json.loads((STATS / f"{task}.json").read_text())["validation"]["hf_subset_descriptive_stats"]
    assert len(recorded) >= 7
    for subset, want in recorded.items():
        got = mt.split_statistics(mt.build_split(task, subset, data_dir))
        for part in ("documents_text_statistics", "queries_text_statistics", "relevant_docs_statistics"):
            for key, value in got[part].items():
                assert value == pytest.approx(want[part][key], abs=1e-9), (task, subset, part, key)
        if "num_documents" in want:
            assert (got["num_documents"], got["num_queries"]) == (want["num_documents"], want["num_queries"])


def test_bad_requests_are_refused_before_any_model_loads(tmp_path):
    with pytest.raises(DataError, match="builds XQuADRetrieval, MLQARetrieval offline"):
        mt.check_request(["XQuAD"], None)
    with pytest.raises(DataError, match="has no subset 'zz'"):
        mt.check_request(["XQuADRetrieval"], {"XQuADRetrieval": ["zz"]})
    (tmp_path / "file").write_text("x")
    with pytest.raises(DataError, match="a file, not a folder"):
        mt.run_mteb("no/such/model", ["XQuADRetrieval"], tmp_path / "file", {"XQuADRetrieval": ["en"]})


def test_the_cli_names_a_bad_subsets_option(tmp_path, capsys):
    from hbkit.app.cli import main

    assert main(["mteb", "--subsets", "XQuADRetrieval", "--out", str(tmp_path / "o")]) == 2
    assert "write TASK=SUB,SUB" in capsys.readouterr().err and not (tmp_path / "o").exists()


def _trained(tmp_path, data_dir, seed):
    from hbkit.data.benchmarks import parallel_pairs
    from hbkit.encoders.load import tiny_encoder
    from hbkit.experiment.plan import subsample_pairs
    from hbkit.train.config import TrainConfig
    from hbkit.train.trainer import train

    pairs = subsample_pairs(parallel_pairs(data_dir=data_dir, languages=["en", "de"]), 40, 0)
    cfg = TrainConfig(strategy="xx", batch_size=4, max_steps=2, lr=1e-3, save_steps=2, freeze_word_embeddings=False,
                      seed=seed)
    return train(tiny_encoder(seed=3), pairs, cfg, tmp_path / f"xx-s{seed}", progress=False)


def test_two_seeds_get_their_own_results_in_mtebs_layout_and_a_rerun_reuses_them(tmp_path, data_dir, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    out, subsets = tmp_path / "mteb", {"XQuADRetrieval": ["en"], "MLQARetrieval": ["zho-ara"]}
    tables = [mt.run_mteb(str(_trained(tmp_path, data_dir, s)), list(mt.TASKS), out, subsets, data_dir, progress=False)
              for s in (1, 2)]
    names = [t.model.iloc[0] for t in tables]
    assert names == ["hbkit/xx-a1-s1", "hbkit/xx-a1-s2"]
    for t in tables:
        assert sorted(t.subset) == ["en", "zho-ara"] and t.ndcg_at_10.between(0, 1).all()
        folder = out / "results" / t.model.iloc[0].replace("/", "__") / t.revision.iloc[0]
        assert (folder / "XQuADRetrieval.json").is_file() and (folder / "MLQARetrieval.json").is_file()
    assert tables[0].revision.iloc[0] != tables[1].revision.iloc[0]
    assert list(tables[0].ndcg_at_10) != list(tables[1].ndcg_at_10)   # each seed scored, none reused for the other
    result = next((out / "results").rglob("hbkit__xx-a1-s1/*/XQuADRetrieval.json"))
    stamp = result.stat().st_mtime_ns
    again = mt.run_mteb(str(tmp_path / "xx-s1" / "model"), ["XQuADRetrieval"], out, subsets, data_dir, progress=False)
    assert result.stat().st_mtime_ns == stamp and again.ndcg_at_10.iloc[0] == tables[0].ndcg_at_10.iloc[0]
    assert os.environ["HF_HUB_OFFLINE"] == "1"


@pytest.mark.parametrize("setting", ["mono", "cross", "multi"])
def test_pooled_settings_as_mteb_tasks_score_what_hbkit_scores(setting, data_dir):
    """mteb's evaluator (pytrec_eval) on hbkit's pooled task gives, cell by cell, hbkit's own nDCG@10."""
    from mteb.models.sentence_transformer_wrapper import SentenceTransformerEncoderWrapper

    from hbkit.data.benchmarks import load_benchmark
    from hbkit.encoders.load import tiny_encoder
    from hbkit.retrieval.pools import evaluate

    bench = load_benchmark("xquad-r-eval", data_dir).subsample(12, seed=0)
    model = tiny_encoder(seed=3)
    task = mt.pooled_task(bench, setting)
    assert task.metadata.name == f"HbkitXquadREval{setting.capitalize()}"
    assert len(task.hf_subsets) == {"mono": 11, "cross": 110, "multi": 11}[setting]
    t = evaluate(model, bench, settings=(setting,), progress=False).table   # first: mteb's wrapper renames prompts
    wrapped = SentenceTransformerEncoderWrapper(model, model_prompts={"query": "query: ", "document": "passage: "})
    scores = {s["hf_subset"]: s["ndcg_at_10"]
              for s in mteb.evaluate(wrapped, [task], cache=None, show_progress_bar=False).task_results[0].scores["test"]}
    t = t[(t.metric == "ndcg@10") & (t.qlang != "all")]
    ours = {(r.qlang if setting != "cross" else f"{r.qlang}-{r.dlang}"): r.value for r in t.itertuples()}
    assert set(ours) == set(scores)
    for cell, value in ours.items():
        assert scores[cell] == pytest.approx(value, abs=1e-4), cell    # mteb rounds to 5 decimals


def test_compare_runs_the_profiles_mteb_tasks_on_each_model_and_the_report_shows_them(tmp_path, data_dir, monkeypatch):
    """stage_mteb (what compare runs when the profile has mteb_tasks) scores the base model and each trained model
    with weights, skips and names one without, and the report's table has one row per model and task."""
    from hbkit.experiment.plan import Run
    from hbkit.experiment.profiles import ProfileError, profile
    from hbkit.experiment.report import mteb_table
    from hbkit.experiment.stages import stage_mteb

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HBKIT_DATA_DIR", str(data_dir))
    with pytest.raises(ProfileError, match="mteb_tasks"):
        profile("ci", mteb_tasks=["NoSuchRetrieval"])
    cfg = profile("ci", mteb_tasks=["xquad-r-eval:mono"])
    out = tmp_path / "run"
    trained = _trained(tmp_path, data_dir, 1)
    (out / "models" / "xx-s1").mkdir(parents=True)
    trained.rename(out / "models" / "xx-s1" / "model")
    (out / "models" / "xx-s2" / "model").mkdir(parents=True)          # a committed folder: no weights
    runs = [Run("base", None, None, None), Run("xx", "xx", 1.0, 1), Run("xx", "xx", 1.0, 2),
            Run("xx+shift", "xx", 1.0, 1)]   # a fix is the same model: not scored again
    cfg["model"] = "tiny"
    assert stage_mteb(out, cfg, runs) == 2
    table = mteb_table(out)
    assert sorted(table.model) == ["hbkit/xx-a1-s1", "tiny"] and (table.task == "HbkitXquadREvalMono").all()
    assert table["mean"].between(0, 1).all() and {"en", "de"} <= set(table.columns)
