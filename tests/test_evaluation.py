"""Metrics checked against independent references: sklearn (AP), ranx (R@k, MRR@10, nDCG@10)."""
import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import average_precision_score

from hbkit.analysis.bootstrap import paired_bootstrap
from hbkit.data.retrieval_benchmark import RetrievalBenchmark
from hbkit.encoders.encode import encode
from hbkit.retrieval.alignment import alignment, language_knn_purity
from hbkit.retrieval.pools import evaluate_embeddings
from hbkit.retrieval.ranking import rank_metrics


def _exact_scores(Q, C):
    """Inner products in float64, elementwise then summed: identical candidates get identical scores (a
    BLAS product need not give them: OpenBLAS computes edge tiles with another kernel)."""
    return (Q[:, None, :].astype(np.float64) * C[None, :, :].astype(np.float64)).sum(-1)


def _random(n=60, m=300, d=16, seed=0, max_rel=5):
    rng = np.random.default_rng(seed)
    Q = rng.normal(size=(n, d)).astype(np.float32)
    C = rng.normal(size=(m, d)).astype(np.float32)
    rel = [rng.choice(m, size=rng.integers(1, max_rel + 1), replace=False) for _ in range(n)]
    return Q, C, rel


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_map_equals_sklearn_loop(seed):
    Q, C, rel = _random(seed=seed)
    got = rank_metrics(Q, C, rel, chunk=17)["map"]
    S = Q @ C.T
    for i, r in enumerate(rel):
        y = np.zeros(len(C)); y[r] = 1
        assert got[i] == pytest.approx(average_precision_score(y, S[i]), abs=1e-6)


def test_map_with_ties_equals_sklearn():
    # quantised scores produce many ties; the kernel's threshold semantics must still match sklearn
    Q, C, rel = _random(seed=3)
    Q = np.round(Q, 0); C = np.round(C, 0)
    got = rank_metrics(Q, C, rel)["map"]
    S = _exact_scores(Q, C)
    for i, r in enumerate(rel):
        y = np.zeros(len(C)); y[r] = 1
        assert got[i] == pytest.approx(average_precision_score(y, S[i]), abs=1e-6)


def test_topk_metrics_equal_ranx():
    from ranx import Qrels, Run
    from ranx import evaluate as rx
    Q, C, rel = _random(n=40, m=200, seed=4)
    got = rank_metrics(Q, C, rel)
    S = Q @ C.T
    qrels = Qrels({f"q{i:04d}": {f"d{j}": 1 for j in r} for i, r in enumerate(rel)})
    run = Run({f"q{i:04d}": {f"d{j}": float(S[i, j]) for j in range(len(C))} for i in range(len(Q))})
    ref = rx(qrels, run, ["recall@1", "recall@10", "mrr@10", "ndcg@10", "hit_rate@5"], return_mean=False)
    for name in ("recall@1", "recall@10", "mrr@10", "ndcg@10"):
        np.testing.assert_allclose(got[name], ref[name], atol=1e-6, err_msg=name)
    np.testing.assert_allclose(got["acc@5"], ref["hit_rate@5"], atol=1e-6)


def test_rank_distance_on_hand_built_ranking():
    # one query, pool of 5: scores 5,4,3,2,1 for candidates 0..4; relevant 1 and 3 -> ranks 2 and 4
    Q = np.array([[1.0]], dtype=np.float32)
    C = np.array([[5.0], [4.0], [3.0], [2.0], [1.0]], dtype=np.float32)
    out = rank_metrics(Q, C, [[3, 1]])
    assert out["rank_distance"][0] == 2
    assert out["map"][0] == pytest.approx((1 / 2 + 2 / 4) / 2)
    assert np.isnan(rank_metrics(Q, C, [[0]])["rank_distance"][0])  # needs two relevant


def _toy_benchmark():
    # 3 groups x 2 languages; candidate = the translation-invariant "meaning" vector + language offset
    q, c, rel = [], [], {}
    for g in range(3):
        for l in ("en", "de"):
            q.append({"id": f"{l}:{g}", "lang": l, "text": f"q{g}{l}", "group": str(g)})
            c.append({"id": f"{l}:c{g}", "lang": l, "text": f"c{g}{l}", "context": "", "doc": str(g)})
    for r in q:
        rel[r["id"]] = [f"en:c{r['group']}", f"de:c{r['group']}"]
    return RetrievalBenchmark("toy", pd.DataFrame(q), pd.DataFrame(c), rel)


def test_settings_and_macro():
    b = _toy_benchmark()
    E = np.eye(3, dtype=np.float32)
    Q = np.stack([E[int(g)] for g in b.queries["group"]])
    lang_off = np.array([[0.3] if l == "en" else [-0.3] for l in b.candidates["lang"]], dtype=np.float32)
    C = np.hstack([np.stack([E[int(d)] for d in b.candidates["doc"]]), lang_off])
    Q = np.hstack([Q, np.array([[0.3] if l == "en" else [-0.3] for l in b.queries["lang"]], dtype=np.float32)])
    res = evaluate_embeddings(b, Q, C, progress=False)
    macro = res.macro().set_index(["setting", "metric"])["value"]
    assert macro[("mono", "map")] == 1.0 and macro[("cross", "map")] == 1.0 and macro[("multi", "map")] == 1.0
    # every query ranks its own-language relevant first: top10 has 1 of 2 relevant in own language
    cells = res.table[(res.table.setting == "cross") & (res.table.qlang != "all")]
    assert set(zip(cells.qlang, cells.dlang)) == {("en", "de"), ("de", "en")}
    assert macro[("multi", "rank_distance")] == 1.0


def test_alignment_and_purity():
    rng = np.random.default_rng(0)
    base = rng.normal(size=(50, 8))
    langs = np.array(["en"] * 50 + ["de"] * 50)
    groups = np.concatenate([np.arange(50), np.arange(50)]).astype(str)
    E = np.vstack([base, base + 0.01 * rng.normal(size=base.shape)])
    E /= np.linalg.norm(E, axis=1, keepdims=True)
    df = alignment(E, langs, groups, "t").set_index(["qlang", "dlang", "metric"])["value"]
    assert df[("en", "de", "translation_p@1")] == 1.0
    assert df[("all", "all", "cos_gap")] > 0.5
    pur, exp = language_knn_purity(E, langs)
    assert pur < 0.7 and exp == pytest.approx(49 / 99)
    # fully separated languages: purity 1
    E2 = np.vstack([np.c_[base, np.full(50, 100.0)], np.c_[base, np.full(50, -100.0)]])
    E2 /= np.linalg.norm(E2, axis=1, keepdims=True)
    assert language_knn_purity(E2, langs)[0] == 1.0


def test_paired_bootstrap_detects_difference_and_not_noise():
    rng = np.random.default_rng(1)
    rows = []
    for g in range(200):
        for l in ("en", "de"):
            rows.append({"benchmark": "t", "setting": "multi", "qlang": l, "dlang": "all", "query_id": f"{l}{g}",
                         "group": str(g), "map": rng.uniform()})
    a = pd.DataFrame(rows)
    b = a.copy(); b["map"] = a["map"] - 0.1
    r = paired_bootstrap(a, b)
    assert r["diff"] == pytest.approx(0.1) and r["low"] > 0 and r["p"] < 0.01
    same = paired_bootstrap(a, a.copy())
    assert same["diff"] == 0 and same["low"] <= 0 <= same["high"]
    single = paired_bootstrap(a, None)
    assert single["low"] < single["a"] < single["high"]


def test_sharded_encode_matches_single_process(tiny):
    """Two worker processes (sentence-transformers' multi-process pool) give the single-process embeddings,
    merged in input order."""
    from hbkit.encoders.encode import encode
    texts = [f"sentence number {i} in a small corpus" for i in range(40)]
    one = encode(tiny, texts, "query", cache=False)
    two = encode(tiny, texts, "query", cache=False, devices=["cpu", "cpu"])
    np.testing.assert_allclose(one, two, atol=1e-5)


def test_encode_cache_is_keyed_by_weights(tiny, tmp_path, monkeypatch):
    import copy

    import torch

    from hbkit.encoders.encode import encode
    monkeypatch.setenv("HBKIT_CACHE", str(tmp_path))
    a = encode(tiny, ["hello", "world"], "query")
    assert len(list(tmp_path.rglob("*.npy"))) == 1
    np.testing.assert_array_equal(encode(tiny, ["hello", "world"], "query"), a)  # from the cache
    other = copy.deepcopy(tiny)
    with torch.no_grad():
        next(other.parameters()).add_(0.5)
    b = encode(other, ["hello", "world"], "query")
    assert len(list(tmp_path.rglob("*.npy"))) == 2 and not np.allclose(a, b)


def test_map_equals_sklearn_on_real_benchmark_subset(data_dir, tiny):
    from hbkit.data.benchmarks import load_benchmark
    from hbkit.encoders.encode import encode
    b = load_benchmark("xquad-r-eval", data_dir).subsample(15, seed=1)
    Q = encode(tiny, b.queries.text.tolist(), "query", cache=False)
    C = encode(tiny, b.candidates.text.tolist(), "passage", cache=False)
    # on a 2^-10 grid every product and partial sum is exact in float32, so any BLAS and any summation
    # order give bit-identical scores: the comparison has no near-ties decided by rounding (and real ties)
    Q, C = np.round(Q * 1024) / 1024, np.round(C * 1024) / 1024
    res = evaluate_embeddings(b, Q, C, settings=("multi",), progress=False).per_query.set_index("query_id")
    S = Q.astype(np.float64) @ C.astype(np.float64).T
    ids = b.candidates.id.tolist()
    for i, qid in enumerate(b.queries.id):
        y = np.isin(ids, b.relevance[qid]).astype(int)
        assert res.at[qid, "map"] == pytest.approx(average_precision_score(y, S[i]), abs=1e-6)


def test_map_only_mode_matches_full():
    Q, C, rel = _random(seed=7)
    full = rank_metrics(Q, C, rel)
    only = rank_metrics(Q, C, rel, metrics=("map", "rank_distance"))
    assert set(only) == {"map", "rank_distance"}
    np.testing.assert_array_equal(only["map"], full["map"])
    np.testing.assert_array_equal(only["rank_distance"], full["rank_distance"])


def test_tydiqa_has_no_cross_cells(data_dir):
    """TyDi-QA is not parallel: no query has a relevant passage in another language, so the general rule
    (a cell with no relevant candidate yields no row) leaves it mono and multi only."""
    from hbkit.data.benchmarks import load_benchmark
    b = load_benchmark("tydiqa", data_dir).subsample(40, seed=0)
    rng = np.random.default_rng(0)
    Q = rng.normal(size=(len(b.queries), 8)).astype(np.float32)
    C = rng.normal(size=(len(b.candidates), 8)).astype(np.float32)
    res = evaluate_embeddings(b, Q, C, progress=False)
    assert set(res.table.setting) == {"mono", "multi"} and set(res.per_query.setting) == {"mono", "multi"}
    assert (res.per_query.groupby("setting").size() == len(b.queries)).all()


def test_one_tie_rule_for_every_metric():
    """Identical candidate texts get identical scores. Every metric uses rank(c) = |{c': s(c') >= s(c)}| (ties
    share the lowest rank, as sklearn's AP), so the result does not depend on the order of the pool."""
    from sklearn.metrics import average_precision_score
    rng = np.random.default_rng(0)
    C = rng.normal(size=(30, 8)).astype(np.float32)
    C[5] = C[3]; C[6] = C[3]; C[12] = C[11]          # duplicated candidates
    Q = np.stack([C[3] + 0.01, C[11] + 0.01, rng.normal(size=8)]).astype(np.float32)
    rel = [[3], [12, 20], [0, 6]]
    out = rank_metrics(Q, C, rel)
    S = _exact_scores(Q, C)
    for i, r in enumerate(rel):  # brute force from the definitions
        rank = {c: int((S[i] >= S[i, c]).sum()) for c in r}
        y = np.isin(np.arange(30), r)
        assert out["map"][i] == pytest.approx(average_precision_score(y, S[i]))
        assert out["acc@1"][i] == float(min(rank.values()) <= 1)
        assert out["recall@10"][i] == pytest.approx(sum(v <= 10 for v in rank.values()) / len(r))
        assert out["mrr@10"][i] == pytest.approx(1 / min(rank.values()) if min(rank.values()) <= 10 else 0)
        ideal = sum(1 / np.log2(k + 2) for k in range(min(len(r), 10)))
        assert out["ndcg@10"][i] == pytest.approx(sum(1 / np.log2(v + 1) for v in rank.values() if v <= 10) / ideal)
    assert out["acc@1"][0] == 0.0  # the relevant candidate ties with two duplicates: it shares rank 3
    perm = rng.permutation(30)
    inv = np.argsort(perm)
    again = rank_metrics(Q, C[perm], [[int(inv[c]) for c in r] for r in rel])
    for m in out:
        np.testing.assert_allclose(again[m], out[m], equal_nan=True)


def test_damaged_embedding_cache_is_reencoded(tiny, tmp_path, monkeypatch):
    monkeypatch.setenv("HBKIT_CACHE", str(tmp_path))
    first = encode(tiny, ["a", "b"], "query")
    (f,) = list(tmp_path.rglob("*.npy"))
    f.write_bytes(b"")  # a 0-byte file, as left by a full disk
    np.testing.assert_allclose(encode(tiny, ["a", "b"], "query"), first)
    f.write_bytes(f.read_bytes()[:70])
    np.testing.assert_allclose(encode(tiny, ["a", "b"], "query"), first)


@pytest.mark.parametrize("case", ["plain", "ties", "duplicates", "one-vector", "int64-counts"])
def test_cpu_kernel_equals_torch_kernel(case, monkeypatch):
    """The numba CPU kernel and the torch kernel (the GPU path, run here on CPU) are two implementations of
    the same formulas; with ties, duplicated candidates and languages they must agree on every metric."""
    rng = np.random.default_rng(11)
    Q, C, rel = _random(n=150, m=400, d=8, seed=5, max_rel=12)
    if case == "ties":
        Q, C = np.round(Q), np.round(C)
    if case == "duplicates":
        C[rng.integers(0, 400, 120)] = C[rng.integers(0, 400, 120)]
    if case == "one-vector":
        C[:] = C[0]
    if case == "int64-counts":  # the path of pools of 2**24 candidates or more
        import hbkit.retrieval.ranking
        monkeypatch.setattr(hbkit.retrieval.ranking, "_F32_EXACT", 0)
        C[rng.integers(0, 400, 120)] = C[rng.integers(0, 400, 120)]
    langs = np.array(["de", "en", "fr"])
    ql, cl = langs[rng.integers(0, 3, len(Q))], langs[rng.integers(0, 3, len(C))]
    cpu = rank_metrics(Q, C, rel, q_lang=ql, c_lang=cl, chunk=37, device="cpu")
    ref = rank_metrics(Q, C, rel, q_lang=ql, c_lang=cl, chunk=64, device="torch-cpu")
    assert set(cpu) == set(ref)
    for name in cpu:
        np.testing.assert_allclose(cpu[name], ref[name], rtol=1e-12, equal_nan=True, err_msg=name)
    if case == "one-vector":  # every candidate ties: rank = pool size for all, and > 10 tie at the top
        assert np.all(cpu["map"] == pytest.approx(np.array([len(r) for r in rel]) / len(C)))
        assert np.isnan(cpu["top10_same_lang"]).all()


def test_duplicated_candidates_share_a_rank_at_model_width():
    """At d=384 (e5-small's width) OpenBLAS gives two equal columns of Q @ C.T different last bits; the kernel
    scores each distinct vector once, so 20 copies of the relevant candidate share one rank, as the tie rule
    says, wherever they sit in the pool."""
    rng = np.random.default_rng(0)
    Q = rng.normal(size=(50, 384)).astype(np.float32)
    C = rng.normal(size=(1000, 384)).astype(np.float32)
    dup = rng.choice(1000, 20, replace=False)
    C[dup] = C[dup[0]]
    rel = [[int(dup[3])] for _ in range(50)]
    out = rank_metrics(Q, C, rel)
    S = _exact_scores(Q, C)
    ranks = (S >= S[:, [dup[0]]]).sum(1)  # all 20 copies count: the shared (lowest) rank
    np.testing.assert_allclose(out["map"], 1 / ranks)
    np.testing.assert_array_equal(out["acc@10"], (ranks <= 10).astype(float))


@pytest.mark.parametrize("bad, message", [("nan", "NaN or infinite"), ("index", r"\[0, 300\)"),
                                          ("negative", r"\[0, 300\)"), ("empty", "at least one relevant")])
def test_rank_metrics_refuses_bad_input(bad, message):
    Q, C, rel = _random()
    if bad == "nan":
        C[7, 2] = np.nan
    elif bad == "index":
        rel[3] = np.array([1, 300])
    elif bad == "negative":
        rel[3] = np.array([-1])
    else:
        rel[3] = np.array([], dtype=int)
    with pytest.raises(ValueError, match=message):
        rank_metrics(Q, C, rel)
