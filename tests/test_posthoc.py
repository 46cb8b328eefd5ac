"""hbkit.retrieval.posthoc: the training-free fixes (SHIFT, language-wise centering) on hand-computed cases from their
definitions (SHIFT's Eq. 1 and Algorithm 1, yjoonjang/SHIFT@c610626 langvec.py / apply.py / baselines/centering.py),
on embeddings with a planted language direction that the fixes must remove, and through stage_evaluate: estimated
from training passages only, written as <model>+<fix> results, resumed without re-encoding."""
import json

import numpy as np
import pandas as pd
import pytest

from hbkit.retrieval import posthoc
from hbkit.retrieval.bias import tlr_at_k


def _unit(x):
    x = np.asarray(x, dtype=float)
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


def test_shift_by_hand():
    """V_de = mean over parallel groups of f(d_de) - f(d_en); a German candidate becomes z - V_de (renormalised),
    English candidates and every query are unchanged; a language without an English partner is left unchanged
    and named."""
    P = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0],      # g1: en, de
                  [0.0, 0.0, 1.0], [0.0, 1.0, 1.0],      # g2: en, de
                  [1.0, 1.0, 0.0]])                      # g3: fr only (no English partner)
    st = posthoc.estimate("shift", P, ["en", "de", "en", "de", "fr"], ["g1", "g1", "g2", "g2", "g3"])
    np.testing.assert_allclose(st.vectors["de"], ((P[1] - P[0]) + (P[3] - P[2])) / 2)   # [-0.5, 1, 0]
    assert st.source == "en" and st.n == {"de": 2} and st.uncovered == ["fr"] and "fr" not in st.vectors
    C = _unit([[1, 1, 0], [0, 1, 0], [1, 0, 1]])
    Q = _unit([[0, 1, 1]])
    Qf, Cf = posthoc.transform(st, Q, ["de"], C, ["en", "de", "fr"])
    np.testing.assert_array_equal(Qf, Q.astype(np.float32))
    np.testing.assert_allclose(Cf[0], C[0], atol=1e-7)
    np.testing.assert_allclose(Cf[1], _unit(C[1] - [-0.5, 1.0, 0.0]), atol=1e-7)
    np.testing.assert_allclose(Cf[2], C[2], atol=1e-7)
    assert st.summary() == {"fix": "shift", "source": "en", "n": {"de": 2}, "uncovered": ["fr"]}


def test_center_by_hand_moves_queries_and_candidates():
    """mu_l = the mean training passage in l, subtracted from every query and candidate in l (SHIFT's
    baselines/centering.py). Candidate-side centering alone would not change a monolingual ranking (one vector
    moves every candidate): with queries centered too, it does."""
    P = np.array([[1.0, 0.0], [3.0, 0.0], [0.0, 2.0], [0.0, 4.0]])
    st = posthoc.estimate("center", P, ["en", "en", "de", "de"], ["a", "b", "a", "b"])
    np.testing.assert_allclose(st.vectors["en"], [2.0, 0.0])
    np.testing.assert_allclose(st.vectors["de"], [0.0, 3.0])
    assert st.n == {"en": 2, "de": 2} and st.source is None
    Q, C = _unit([[1, 1]]), _unit([[1, 0.2], [0.3, 1]])
    Qf, Cf = posthoc.transform(st, Q, ["de"], C, ["en", "de"])
    np.testing.assert_allclose(Qf[0], _unit(Q[0] - [0, 3]), atol=1e-6)
    np.testing.assert_allclose(Cf, _unit(C - np.array([[2, 0], [0, 3]])), atol=1e-6)


def test_the_fixes_remove_a_planted_language_direction():
    """Unit embeddings of topic + a per-language offset as large as the topic: the untransformed multilingual pool
    ranks the query's own language first (TLR@3 of the other languages' relevant passages 0.23); SHIFT and
    centering, estimated on other (training) topics, recover language-neutral rankings (TLR@3 = 1: both
    translations in the top 3)."""
    rng = np.random.default_rng(0)
    d, langs = 32, ["en", "de", "es"]
    offset = {l: rng.standard_normal(d) for l in langs}

    def emb(topics):
        return {l: _unit(topics + offset[l] + 0.05 * rng.standard_normal(topics.shape)) for l in langs}
    train = emb(rng.standard_normal((50, d)))                                  # training passages: 50 topics
    P = np.concatenate([train[l] for l in langs])
    p_lang, p_group = np.repeat(langs, 50), np.tile([f"t{i}" for i in range(50)], 3)
    topics = rng.standard_normal((20, d))                                       # evaluation: 20 other topics
    cand = emb(topics)
    C, c_lang = np.concatenate([cand[l] for l in langs]), np.repeat(langs, 20)
    Q = _unit(np.concatenate([topics + offset[l] + 0.05 * rng.standard_normal(topics.shape) for l in langs]))
    q_lang = np.repeat(langs, 20)
    rel = [np.array([t, 20 + t, 40 + t]) for t in np.tile(np.arange(20), 3)]
    assert np.nanmean(tlr_at_k(Q @ C.T, rel, q_lang, c_lang, k=3)) < 0.3
    for fix in posthoc.FIXES:
        st = posthoc.estimate(fix, P, p_lang, p_group)
        Qf, Cf = posthoc.transform(st, Q, q_lang, C, c_lang)
        assert np.allclose(np.linalg.norm(Cf, axis=1), 1, atol=1e-5)
        assert np.nanmean(tlr_at_k(Qf @ Cf.T, rel, q_lang, c_lang, k=3)) == 1.0, fix


def test_training_passages_subsample_and_bad_input():
    """Distinct (group, lang) rows from a seeded subset of groups, the same from a DataFrame or a datasets.Dataset;
    an unknown fix and mismatched shapes are refused with the argument named."""
    from datasets import Dataset

    pairs = pd.DataFrame({"group": [f"g{i // 4}" for i in range(40)], "lang": ["en", "en", "de", "de"] * 10,
                          "query": [f"q{i}" for i in range(40)], "passage": [f"p{i // 2}" for i in range(40)]})
    a = posthoc.training_passages(pairs, max_groups=4, seed=1)
    b = posthoc.training_passages(Dataset.from_pandas(pairs), max_groups=4, seed=1)
    pd.testing.assert_frame_equal(a, b)
    assert a["group"].nunique() == 4 and len(a) == 8 and not a.duplicated(["group", "lang"]).any()
    assert len(posthoc.training_passages(pairs)) == 20
    with pytest.raises(ValueError, match="fix 'lir'"):
        posthoc.estimate("lir", np.zeros((2, 2)), ["en", "de"], ["a", "a"])
    with pytest.raises(ValueError, match="one lang and group per row"):
        posthoc.estimate("shift", np.zeros((3, 2)), ["en", "de"], ["a", "a"])


def test_stage_evaluate_writes_the_fixes_from_training_passages_and_resumes(tiny, tmp_path, empty_cache, monkeypatch):
    """stage_evaluate with both fixes: per-query files of base+shift and base+center beside base's, the statistics'
    provenance in fixes/base.json (the training passages' counts, not the benchmark's), no alignment or UMAP for a
    fix, and a resumed run (one fix file lost) re-encodes nothing and writes the same bytes."""
    from hbkit.data.retrieval_benchmark import RetrievalBenchmark
    from hbkit.encoders.encode import encode
    from hbkit.experiment.plan import Run
    from hbkit.experiment.stages import stage_evaluate

    q = pd.DataFrame([{"id": f"{l}:{g}", "lang": l, "text": f"{w} question {g}", "group": str(g)}
                      for g in range(4) for l, w in (("en", "which"), ("de", "welche"))])
    c = pd.DataFrame([{"id": f"{l}:c{g}", "lang": l, "text": f"{w} answer {g}" * (g + 1), "context": "", "doc": str(g)}
                      for g in range(4) for l, w in (("en", "the"), ("de", "die"))])
    bench = RetrievalBenchmark("toy", q, c, {r.id: [f"en:c{r.group}", f"de:c{r.group}"] for r in q.itertuples()})
    train = pd.DataFrame([{"group": f"t{g}", "lang": l, "passage": f"{w} training passage {g}"}
                          for g in range(6) for l, w in (("en", "the"), ("de", "die"))])
    seen = []
    real = tiny.encode
    monkeypatch.setattr(tiny, "encode", lambda texts, **kw: (seen.extend(texts), real(texts, **kw))[1])
    run = Run("base", None, None, None)
    timings = {"reused_results": 0}
    stage_evaluate(run, tiny, {"toy": bench}, {}, tmp_path, q.iloc[:2], timings, False, ("shift", "center"), train, 3)
    for m in ("base", "base+shift", "base+center"):   # the multilingual rankings, for measures added later
        rk = pd.read_parquet(tmp_path / "rankings" / f"{m}__toy.parquet")
        assert set(rk.query_id) == set(q["id"]) and rk.groupby("query_id").relevant.sum().eq(2).all()
    assert set(seen) >= set(train["passage"])            # the training passages were encoded: the statistics' data
    info = json.loads((tmp_path / "fixes" / "base.json").read_text())
    assert info["passages"] == 12 and info["groups"] == 6
    assert {f["fix"]: f["n"] for f in info["fixes"]} == {"shift": {"de": 6}, "center": {"de": 6, "en": 6}}
    pq = {m: pd.read_parquet(tmp_path / "per_query" / f"{m}__toy.parquet") for m in ("base", "base+shift", "base+center")}
    assert set(pq["base+shift"].model) == {"base+shift"} and pq["base+shift"].seed.isna().all()
    assert len(pq["base+shift"]) == len(pq["base"]) and not (tmp_path / "alignment" / "base+shift__toy.parquet").exists()
    # SHIFT, recomputed by hand from the cached embeddings, gives these scores' multilingual mAP ordering
    P = encode(tiny, train["passage"].tolist(), "passage")
    st = posthoc.estimate("shift", P, train["lang"], train["group"])
    Q, C = encode(tiny, q["text"].tolist(), "query"), encode(tiny, c["text"].tolist(), "passage")
    _, Cf = posthoc.transform(st, Q, q["lang"], C, c["lang"])
    np.testing.assert_allclose(Cf[c["lang"].to_numpy() == "de"],
                               _unit(C[c["lang"].to_numpy() == "de"] - st.vectors["de"]), atol=1e-6)
    first = (tmp_path / "per_query" / "base+center__toy.parquet").read_bytes()
    (tmp_path / "per_query" / "base+center__toy.parquet").unlink()    # interrupted before this file
    seen.clear()
    stage_evaluate(run, tiny, {"toy": bench}, {}, tmp_path, q.iloc[:2], timings, False, ("shift", "center"), train)
    assert seen == [] and (tmp_path / "per_query" / "base+center__toy.parquet").read_bytes() == first
