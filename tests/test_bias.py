"""hbkit.retrieval.bias against its authors' code: the cases in tests/data/bias_reference_vectors.json were scored by
MIMO's compute_mrc, SHIFT's compute_tlr_at_k and hltcoe/peer_measure (the commits are named in the file's meta),
run on this machine; here hbkit's functions must give the same numbers. Plus hand-computed cases from the
definitions, and PEER's degeneracy on pools with one relevant candidate per language."""
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats as sps

from hbkit.retrieval.bias import bias_measures, mrc_at_k, peer_at_k, peer_from_positions, tlr_at_k

VECTORS = json.loads((Path(__file__).parent / "data" / "bias_reference_vectors.json").read_text())


def _case(c):
    S = np.asarray(c["scores"])
    qids, cids = c["query_ids"], c["corpus_ids"]
    col = {x: j for j, x in enumerate(cids)}
    rel = [np.array([col[x] for x in c["relevant"][q]]) for q in qids]
    q_lang = np.array([q.split("_")[0] for q in qids])
    groups = np.array([q.split("_")[1] for q in qids])
    c_lang = np.array([x.split("_")[1] for x in cids])
    return S, qids, cids, rel, q_lang, groups, c_lang


@pytest.mark.parametrize("i", range(len(VECTORS["cases"])))
def test_equals_the_authors_code(i):
    c = VECTORS["cases"][i]
    S, qids, cids, rel, q_lang, groups, c_lang = _case(c)
    tlr = tlr_at_k(S, rel, q_lang, c_lang, k=c["k_tlr"])
    np.testing.assert_allclose(tlr, [c["tlr"][q] for q in qids], atol=1e-12)
    peer = peer_at_k(S, rel, c_lang, k=c["k_peer"], c_ids=cids)
    np.testing.assert_allclose(peer, [c["peer"][q] for q in qids], atol=1e-12)
    mrc = pd.Series(mrc_at_k(S, groups, q_lang, k=c["k_mrc"])).groupby(q_lang).mean() * 100
    k = c["k_mrc"]
    for lang, v in mrc.items():
        assert v == pytest.approx(c["mrc"][f"MRC@{k}_{lang}"], abs=1e-9)
    assert mrc.mean() == pytest.approx(c["mrc"][f"MRC@{k}_avg"], abs=1e-9)


def test_hand_computed_cases():
    # one query in en; pool: en0 (rel), de0 (rel), es0 (rel), x1, x2 with scores in that order of the list below
    S = np.array([[0.9, 0.3, 0.7, 0.8, 0.1]])
    c_lang = np.array(["en", "de", "es", "en", "de"])
    rel = [np.array([0, 1, 2])]
    # ranks: en0 1, x1 2, es0 3, de0 4, x2 5 -> targets de0, es0; top 3 holds es0 only
    assert tlr_at_k(S, rel, np.array(["en"]), c_lang, k=3)[0] == 0.5
    assert tlr_at_k(S, rel, np.array(["en"]), c_lang, k=4)[0] == 1.0
    assert np.isnan(tlr_at_k(S, [np.array([0])], np.array(["en"]), c_lang, k=3)[0])   # no target
    # PEER@3: positions en 1, es 3, de unretrieved (N=3, U=1: (6+1+1)/2 = 4); one value per language:
    # SS_between = SS_total, H = N - 1 = 2, p = chi2.sf(2, 2)
    assert peer_at_k(S, rel, c_lang, k=3)[0] == pytest.approx(sps.chi2.sf(2, 2))
    assert peer_at_k(S, [np.array([1])], c_lang, k=2)[0] == 1.0        # one language only
    assert peer_at_k(np.array([[0.1, 0.2, 0.3, 0.9, 0.8]]), rel, c_lang, k=2)[0] == 1.0   # none retrieved
    # MRC: two parallel queries whose rankings agree on the union of their top 2 -> 1; reversed -> -1
    S2 = np.array([[0.9, 0.8, 0.1, 0.0], [0.8, 0.7, 0.2, 0.1], [0.0, 0.1, 0.8, 0.9]])
    g, ql = np.array(["a", "a", "b"]), np.array(["en", "de", "en"])
    m = mrc_at_k(S2, g, ql, k=2)
    assert m[0] == pytest.approx(1.0) and m[1] == pytest.approx(1.0) and np.isnan(m[2])
    S3 = np.array([[0.9, 0.8, 0.1, 0.0], [0.0, 0.1, 0.8, 0.9]])
    assert mrc_at_k(S3, np.array(["a", "a"]), np.array(["en", "de"]), k=2)[0] == pytest.approx(-1.0)


def test_peer_is_one_constant_with_one_relevant_per_language():
    """LAReQA's pools: whatever the ranking, PEER takes one value once any relevant candidate is retrieved."""
    rng = np.random.default_rng(0)
    langs = np.array(["ar", "de", "en", "es", "hi", "ru", "th", "tr", "vi", "zh", "el"])
    c_lang = np.tile(langs, 30)
    rel = [np.arange(11) + 11 * (i % 30) for i in range(200)]
    p = peer_at_k(rng.normal(size=(200, len(c_lang))), rel, c_lang, k=20)
    assert set(np.round(p, 12)) <= {round(sps.chi2.sf(10, 10), 12), 1.0}


def test_bias_measures_chunks_and_groups_equal_the_direct_calls():
    c = VECTORS["cases"][2]
    S, qids, cids, rel, q_lang, groups, c_lang = _case(c)
    rng = np.random.default_rng(1)
    Q, C = rng.normal(size=(len(qids), 5)), rng.normal(size=(len(cids), 5))
    got = bias_measures(Q, C, rel, q_lang, c_lang, groups, c_ids=cids, chunk=5)
    S = Q.astype(np.float32) @ C.astype(np.float32).T
    np.testing.assert_allclose(got["tlr@10"], tlr_at_k(S, rel, q_lang, c_lang, 10), equal_nan=True)
    np.testing.assert_allclose(got["peer@20"], peer_at_k(S, rel, c_lang, 20, cids), equal_nan=True)
    np.testing.assert_allclose(got["mrc@10"], mrc_at_k(S, groups, q_lang, 10), equal_nan=True, atol=1e-6)


def test_mrc_leaves_out_a_constant_side_without_a_warning():
    """A query whose scores are all equal over the union (a collapsed encoder): its pairs are left out, silently,
    and a pair that is defined still counts."""
    import warnings
    S = np.array([[1.0, 1.0, 1.0, 1.0],      # q0 (en, g) constant
                  [0.9, 0.5, 0.1, 0.3],      # q1 (de, g)
                  [0.8, 0.6, 0.2, 0.1]])     # q2 (es, g)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        m = mrc_at_k(S, np.array(["g"] * 3), np.array(["en", "de", "es"]), k=2)
    assert np.isnan(m[0])
    rho = sps.spearmanr(S[1, [0, 1]], S[2, [0, 1]]).statistic
    assert m[1] == pytest.approx(rho) and m[2] == pytest.approx(rho)


def test_stored_rankings_give_the_measures_without_embeddings():
    """pools.multilingual_rankings keeps each query's top 20 and relevant candidates with positions: TLR@10 and
    PEER@20 recomputed from that table alone equal bias_measures on the embeddings (a measure added later needs no
    weights); positions break ties in pool order; the table has one row per kept candidate."""
    from hbkit.data.retrieval_benchmark import RetrievalBenchmark
    from hbkit.retrieval.pools import multilingual_rankings

    rng = np.random.default_rng(7)
    langs, G, extra = ["en", "de", "es"], 8, 30
    q = pd.DataFrame([{"id": f"{l}:{g}", "lang": l, "text": "", "group": str(g)} for g in range(G) for l in langs])
    c = pd.DataFrame([{"id": f"{l}:c{g}", "lang": l, "text": "", "context": "", "doc": str(g)}
                      for g in range(G + extra) for l in langs])
    bench = RetrievalBenchmark("toy", q, c, {r.id: [f"{l}:c{r.group}" for l in langs] for r in q.itertuples()})
    topic = rng.standard_normal((G + extra, 16))
    off = {l: 0.8 * rng.standard_normal(16) for l in langs}
    C = np.stack([topic[int(r.doc)] + off[r.lang] for r in c.itertuples()]).astype(np.float32)
    Q = np.stack([topic[int(r.group)] + off[r.lang] + 0.5 * rng.standard_normal(16) for r in q.itertuples()]).astype(np.float32)
    C[5] = C[4]                                                        # a tie: positions follow the pool order
    cidx = {x: i for i, x in enumerate(c["id"])}
    rel = [np.array([cidx[x] for x in bench.relevance[i]]) for i in q["id"]]
    want = bias_measures(Q, C, rel, q["lang"].to_numpy(), c["lang"].to_numpy(), q["group"].to_numpy(), c["id"].to_numpy())
    R = multilingual_rankings(bench, Q, C, k=20)
    assert set(R.columns) == {"query_id", "position", "candidate_id", "clang", "score", "relevant"}
    assert (R.groupby("query_id").position.apply(lambda p: (p <= 20).sum()) == 20).all()
    assert not R.duplicated(["query_id", "candidate_id"]).any() and R.groupby("query_id").relevant.sum().eq(3).all()
    qlang = dict(zip(q["id"], q["lang"]))
    tlr, peer = [], []
    for qid in q["id"]:
        r = R[R.query_id == qid]
        target = r[r.relevant & (r.clang != qlang[qid])]
        # hbkit's tie rule for TLR: rank = how many candidates score at least as high (all of those are in the top 20)
        ranks = [(r.score >= s).sum() if p <= 20 else 99 for s, p in zip(target.score, target.position)]
        tlr.append(np.mean(np.array(ranks) <= 10))
        vals = {l: [float(p) if p <= 20 else np.nan for p in r[r.relevant & (r.clang == l)].position] for l in langs}
        peer.append(peer_from_positions(vals))
    np.testing.assert_allclose(tlr, want["tlr@10"], atol=1e-12)
    np.testing.assert_allclose(peer, want["peer@20"], atol=1e-12)
    r1 = R[R.query_id == "en:1"].set_index("candidate_id")     # de:c1 and es:c1 tie (pool rows 4 and 5)
    assert r1.loc["de:c1", "score"] == r1.loc["es:c1", "score"]
    assert r1.loc["es:c1", "position"] == r1.loc["de:c1", "position"] + 1
