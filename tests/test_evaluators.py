"""The in-training retrieval evaluator: its benchmark, its metrics against sklearn, and a real trainer run."""
import json

import numpy as np
import pandas as pd
import pytest

from hbkit.data.registry import DataError
from hbkit.train.evaluator import RetrievalEvaluator, pairs_benchmark

PAIRS = pd.DataFrame({
    "group": ["g1", "g2", "g3", "g1", "g2", "g3"],
    "lang": ["en", "en", "en", "de", "de", "de"],
    "query": ["where is the cat", "where is the dog", "what is red", "wo ist die katze", "wo ist der hund",
              "was ist rot"],
    "passage": ["animals sit on mats", "animals sit on mats", "red is a colour", "tiere sitzen auf matten",
                "tiere sitzen auf matten", "rot ist eine farbe"],
    "answer_key": ["a:0:1", "a:0:1", "b:0:0", "a:0:1", "a:0:1", "b:0:0"]})


def test_pairs_benchmark_dedupes_by_answer_key_and_relates_translations():
    b = pairs_benchmark(PAIRS, "val")
    assert sorted(b.candidates["id"]) == ["de:a:0:1", "de:b:0:0", "en:a:0:1", "en:b:0:0"]
    assert sorted(b.relevance["de:g2"]) == ["de:a:0:1", "en:a:0:1"]  # both translations of the shared answer
    assert len(b.queries) == 6
    no_key = pairs_benchmark(PAIRS.drop(columns="answer_key"), "val")  # each group its own answer
    assert len(no_key.candidates) == 6 and sorted(no_key.relevance["en:g1"]) == ["de:g1", "en:g1"]
    with pytest.raises(DataError, match=r"lack column\(s\) \['passage'\]"):
        pairs_benchmark(PAIRS.drop(columns="passage"))
    with pytest.raises(DataError, match="group 'g1' has several rows in language 'en'"):
        pairs_benchmark(pd.concat([PAIRS, PAIRS.iloc[[0]]]))
    with pytest.raises(DataError, match="settings="):
        RetrievalEvaluator(PAIRS, settings=("mono", "bilingual"))


def test_metrics_match_sklearn_average_precision(tiny):
    from sklearn.metrics import average_precision_score

    from hbkit.encoders.encode import encode

    ev = RetrievalEvaluator(PAIRS, name="val", batch_size=4)
    m = ev(tiny)
    assert ev.primary_metric == "val_multi_map" and ev.greater_is_better
    assert {"val_multi_map", "val_mono_map", "val_cross_map", "val_multi_rank_distance"} <= set(m)
    b = ev.benchmark
    Q = encode(tiny, b.queries["text"].tolist(), "query", cache=False)
    C = encode(tiny, b.candidates["text"].tolist(), "passage", cache=False)
    ids = b.candidates["id"].tolist()
    per_lang = {}
    for i, (qid, lang) in enumerate(zip(b.queries["id"], b.queries["lang"])):
        y = np.isin(ids, b.relevance[qid])
        per_lang.setdefault(lang, []).append(average_precision_score(y, C @ Q[i]))
    ref = np.mean([np.mean(v) for v in per_lang.values()])
    assert m["val_multi_map"] == pytest.approx(ref, abs=1e-6)


def test_inside_sentence_transformer_trainer(tiny, tmp_path, data_dir):
    from sentence_transformers import SentenceTransformerTrainer, SentenceTransformerTrainingArguments
    from sentence_transformers.sentence_transformer import losses

    from hbkit.data import corpora
    from hbkit.encoders.load import tiny_encoder

    pairs = corpora.load_training_corpus("xquad-train", data_dir, languages=["en", "de"]).to_pandas()
    groups = sorted(pairs["group"].unique())
    val = pairs[pairs["group"].isin(groups[:20])]
    train = pairs[pairs["group"].isin(groups[20:84])][["query", "passage"]]
    import datasets

    model = tiny_encoder(seed=1)
    ev = RetrievalEvaluator(val, name="val", batch_size=32)
    args = SentenceTransformerTrainingArguments(
        output_dir=str(tmp_path / "out"), max_steps=4, per_device_train_batch_size=16, learning_rate=5e-3,
        eval_strategy="steps", eval_steps=2, save_steps=2, logging_steps=1, report_to="none",
        load_best_model_at_end=True, metric_for_best_model="eval_val_multi_map", use_cpu=True,
        disable_tqdm=True, seed=0)
    trainer = SentenceTransformerTrainer(model=model, args=args,
                                         train_dataset=datasets.Dataset.from_pandas(train, preserve_index=False),
                                         loss=losses.MultipleNegativesRankingLoss(model), evaluator=ev)
    trainer.train()
    evals = [h for h in trainer.state.log_history if "eval_val_multi_map" in h]
    assert [h["step"] for h in evals] == [2, 4]
    assert {"eval_val_mono_map", "eval_val_cross_map", "eval_val_multi_recall@1"} <= set(evals[0])
    assert trainer.state.best_metric == max(h["eval_val_multi_map"] for h in evals)
    best = max(evals, key=lambda h: h["eval_val_multi_map"])
    assert trainer.state.best_model_checkpoint.endswith(f"checkpoint-{best['step']}")
    csv = pd.read_csv(tmp_path / "out" / "eval" / "val_results.csv")
    assert list(csv["steps"]) == [2, 4] and "multi_map" in csv.columns
    # after load_best_model_at_end the model in memory is the best checkpoint: re-evaluating reproduces its score
    assert ev(trainer.model)["val_multi_map"] == pytest.approx(best["eval_val_multi_map"], abs=1e-5)
    state = json.loads((tmp_path / "out" / "checkpoint-4" / "trainer_state.json").read_text())
    assert state["best_metric"] == pytest.approx(trainer.state.best_metric)
