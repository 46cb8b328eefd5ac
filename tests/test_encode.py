"""Encoding in batches of similar token counts (``hbkit.encoders.encode``): the same embeddings as one text at a
time, every text once and in input order, and batches bounded in padded tokens."""
import numpy as np
import pytest

from hbkit.encoders.encode import TOKENS_PER_TEXT, embed_texts, encode, length_batches, token_counts

#: texts whose character and token counts disagree, as in the 11 languages of the benchmarks
TEXTS = (["北京是中国的首都，也是政治和文化中心。" * k for k in (1, 3, 6)] +
         ["The capital of France is Paris, " * k for k in (1, 4, 12)] +
         ["สวัสดีครับ ยินดีต้อนรับ", "Привет, как дела?", "", "a", "x " * 400])


def test_batched_embeddings_equal_one_text_at_a_time(tiny):
    alone = np.concatenate([tiny.encode([t], prompt_name=None, convert_to_numpy=True, normalize_embeddings=True)
                            for t in TEXTS])
    got = embed_texts(tiny, TEXTS, batch_size=4)
    assert got.dtype == np.float32 and got.shape == alone.shape
    np.testing.assert_allclose(got, alone, atol=2e-5)
    np.testing.assert_allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-5)
    # the cached entry point gives the same rows, and an empty list gives no rows
    np.testing.assert_allclose(encode(tiny, TEXTS, cache=False, batch_size=3), alone, atol=2e-5)
    assert embed_texts(tiny, []).shape[0] == 0


def test_token_counts_are_what_the_model_pads_to(tiny):
    counts = token_counts(tiny, TEXTS)
    feats = [tiny.tokenize([t])["input_ids"].shape[1] for t in TEXTS]
    assert counts.tolist() == feats
    assert counts.max() == tiny.max_seq_length   # the 400-word text is truncated, as encoding truncates it


@pytest.mark.parametrize("seed", range(5))
def test_length_batches_hold_every_text_once_within_the_budget(seed):
    rng = np.random.default_rng(seed)
    counts = rng.integers(1, 520, size=int(rng.integers(1, 400)))
    batches = length_batches(counts, batch_size=16)
    flat = np.concatenate(batches)
    assert sorted(flat.tolist()) == list(range(len(counts)))
    assert np.all(np.diff(counts[flat]) <= 0)   # longest first
    for b in batches:
        assert 1 <= len(b) <= 16
        assert len(b) == 1 or counts[b].max() * len(b) <= 16 * TOKENS_PER_TEXT


def test_token_sorted_batches_pad_less_than_character_sorted_ones(tiny):
    """The claim of length_batches' docstring, on mixed scripts: sorting by characters (sentence-transformers)
    pads more than sorting by tokens."""
    rng = np.random.default_rng(0)
    texts = [TEXTS[i] for i in rng.integers(0, len(TEXTS) - 1, size=200)]
    counts = token_counts(tiny, texts)

    def padded(order, size=8):
        return sum(int(counts[order[i:i + size]].max()) * len(order[i:i + size]) for i in range(0, len(order), size))

    by_chars = np.argsort([-len(t) for t in texts], kind="stable")
    ours = sum(int(counts[b].max()) * len(b) for b in length_batches(counts, batch_size=8, tokens_per_text=10**6))
    assert ours == padded(np.argsort(-counts, kind="stable")) < padded(by_chars)


def test_a_model_encodes_each_benchmark_text_once_and_umap_reads_its_rows(tiny, tmp_path, empty_cache, monkeypatch):
    """stage_evaluate: queries and candidates once for every setting and the alignment, and the UMAP queries (rows
    of a benchmark's queries) taken from those embeddings, so that a resumed run writes the same bytes."""
    import pandas as pd

    from hbkit.data.retrieval_benchmark import RetrievalBenchmark
    from hbkit.experiment.plan import Run
    from hbkit.experiment.stages import stage_evaluate

    q = pd.DataFrame([{"id": f"{l}:{g}", "lang": l, "text": f"{w} question {g}", "group": str(g)}
                      for g in range(4) for l, w in (("en", "which"), ("de", "welche"))])
    c = pd.DataFrame([{"id": f"{l}:c{g}", "lang": l, "text": f"{w} answer {g}" * (g + 1), "context": "", "doc": str(g)}
                      for g in range(4) for l, w in (("en", "the"), ("de", "die"))])
    bench = RetrievalBenchmark("toy", q, c, {r.id: [f"en:c{r.group}", f"de:c{r.group}"] for r in q.itertuples()})
    seen = []
    real = tiny.encode
    monkeypatch.setattr(tiny, "encode", lambda texts, **kw: (seen.extend(texts), real(texts, **kw))[1])
    umap_q = q[q["group"].isin(["0", "1"])]
    timings = {"reused_results": 0}
    stage_evaluate(Run("base", None, None, None), tiny, {"toy": bench}, {}, tmp_path, umap_q, timings, False)
    assert sorted(seen) == sorted(q["text"].tolist() + c["text"].tolist())   # each text once, UMAP's included
    Q = encode(tiny, q["text"].tolist(), "query")
    first = (tmp_path / "umap" / "base.npy").read_bytes()
    np.testing.assert_array_equal(np.load(tmp_path / "umap" / "base.npy"), Q[:4])
    assert set(timings["peak_rss_mb"]) >= {"encode", "score", "align"}
    (tmp_path / "umap" / "base.npy").unlink()    # resumed after an interruption before the UMAP file
    seen.clear()
    stage_evaluate(Run("base", None, None, None), tiny, {"toy": bench}, {}, tmp_path, umap_q, timings, False)
    assert seen == [] and (tmp_path / "umap" / "base.npy").read_bytes() == first
