"""Sampler guarantees as properties over random parallel datasets (hypothesis), plus integration."""
import math

import datasets
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hbkit.train.sampling import (
    HybridBatchSampler,
    SamplerError,
    XXMonoBatchSampler,
    XYBatchSampler,
    make_sampler,
    text_pairs,
)
from hbkit.train.st_training import PairCollator


def make_pairs(n_groups, langs, seed=0, missing=0.0, dup_passages=0):
    rng = np.random.default_rng(seed)
    rows = {"group": [], "lang": [], "query": [], "passage": [], "answer_key": []}
    for g in range(n_groups):
        present = [l for l in langs if rng.random() >= missing] or langs[:2]
        if len(present) < 2:
            present = langs[:2]
        for l in present:
            rows["group"].append(f"g{g}"); rows["lang"].append(l)
            rows["query"].append(f"q {g} {l}")
            # a few groups share a passage text (several questions answered by one sentence)
            a = g % dup_passages if dup_passages and g < 2 * dup_passages else g
            rows["passage"].append(f"p {a} {l}")
            rows["answer_key"].append(f"a{a}")  # the same answer in every language
    return datasets.Dataset.from_dict(rows)


def check_batches(ds, sampler, alpha=None):
    group, lang, passage = ds["group"], ds["lang"], ds["passage"]
    for info, pairs in sampler.global_batches():
        gs = [group[q] for q, _ in pairs]
        assert len(set(gs)) == len(gs), "group twice in a batch"
        assert all(group[q] == group[p] for q, p in pairs)
        ps = [passage[p] for _, p in pairs]
        assert len(set(ps)) == len(ps), "duplicate passage text"
        keys = [ds[int(p)]["answer_key"] for _, p in pairs]
        assert len(set(keys)) == len(keys), "a translation of a positive is a negative"
        if info.kind == "xx":
            assert {lang[q] for q, _ in pairs} == {lang[p] for _, p in pairs} == {info.lang}
        else:
            assert all(lang[q] != lang[p] for q, p in pairs)


langs_st = st.lists(st.sampled_from(["ar", "de", "en", "es", "hi", "ru", "zh", "th"]), min_size=2, max_size=6, unique=True)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(n=st.integers(40, 200), langs=langs_st, bs=st.integers(2, 16), alpha=st.floats(0, 1), seed=st.integers(0, 99),
       missing=st.sampled_from([0.0, 0.3]))
def test_batch_guarantees(n, langs, bs, alpha, seed, missing):
    ds = make_pairs(n, langs, seed, missing, dup_passages=3)
    try:
        s = HybridBatchSampler(ds, bs, seed=seed, alpha=alpha)
    except SamplerError:
        return  # e.g. too few groups with a language: an error is the documented outcome
    check_batches(ds, s)
    assert len(list(iter(s))) == len(s) == ds.unique("group").__len__() // bs


# A correct sampler falls outside a 99% interval for 1% of seeds (e.g. seed 244 at alpha 0.1: 158 of 2,000),
# so random seeds would make this test fail about one run in ten. derandomize fixes the examples: the same
# seeds every run, the same 99% bound.
@settings(max_examples=10, deadline=None, derandomize=True, database=None)
@given(seed=st.integers(0, 1000), alpha=st.sampled_from([0.1, 0.5, 0.8]))
def test_hybrid_share_within_binomial_interval(seed, alpha):
    ds = make_pairs(4000, ["en", "de", "es"], seed)
    s = HybridBatchSampler(ds, 2, seed=seed, alpha=alpha)
    kinds = [b.kind for b in s.plan()]
    n = len(kinds)
    assert n >= 2000
    k = sum(k == "xx" for k in kinds)
    sd = math.sqrt(n * alpha * (1 - alpha))
    assert abs(k - n * alpha) <= 2.576 * sd + 1  # binomial 99% interval


def test_alpha_one_and_zero_reproduce_baselines():
    ds = make_pairs(300, ["en", "de", "es", "zh"])
    for alpha, cls in ((1.0, XXMonoBatchSampler), (0.0, XYBatchSampler)):
        h = list(HybridBatchSampler(ds, 8, seed=5, alpha=alpha))
        assert h == list(cls(ds, 8, seed=5))


def test_determinism_and_set_epoch():
    ds = make_pairs(300, ["en", "de", "es"])
    a, b = HybridBatchSampler(ds, 8, seed=1), HybridBatchSampler(ds, 8, seed=1)
    assert list(a) == list(b)
    first = list(a)
    a.set_epoch(1)
    assert list(a) != first
    a.set_epoch(0)
    assert list(a) == first


@settings(max_examples=10, deadline=None)
@given(world=st.integers(2, 4), seed=st.integers(0, 50), alpha=st.floats(0, 1))
def test_rank_slices_disjoint_and_consistent(world, seed, alpha):
    ds = make_pairs(200, ["en", "de", "es", "ru"], seed)
    bs = 4
    ranks = [HybridBatchSampler(ds, bs, seed=seed, alpha=alpha, num_replicas=world, rank=r) for r in range(world)]
    assert len({len(r) for r in ranks}) == 1
    assert all(r.plan() == ranks[0].plan() for r in ranks)  # every rank agrees on every batch's type
    single = HybridBatchSampler(ds, bs * world, seed=seed, alpha=alpha)
    for per_rank, glob in zip(zip(*ranks), single):
        assert sum(per_rank, []) == glob  # the slices concatenate to the global batch
        flat = sum(per_rank, [])
        assert len(set(flat[0::2])) == len(flat[0::2])


def test_errors():
    ds = make_pairs(10, ["en", "de"])
    with pytest.raises(SamplerError, match="alpha"):
        HybridBatchSampler(ds, 2, alpha=1.5)
    with pytest.raises(SamplerError, match="larger than"):
        HybridBatchSampler(ds, 50)
    with pytest.raises(SamplerError, match="no column 'group'"):
        HybridBatchSampler(ds.remove_columns("group"), 2)
    with pytest.raises(SamplerError, match="unknown strategy"):
        make_sampler("zz")


def test_small_language_is_left_out_of_mono(caplog):
    ds = make_pairs(100, ["en", "de"])
    extra = datasets.Dataset.from_dict({"group": ["g1", "g2"], "lang": ["sw", "sw"], "query": ["a", "b"],
                                        "passage": ["c", "d"], "answer_key": ["a1", "a2"]})
    ds = datasets.concatenate_datasets([ds, extra])
    s = HybridBatchSampler(ds, 8, alpha=1.0)
    assert s.excluded_languages == ["sw"] and "sw" in caplog.text
    assert {b.lang for b in s.plan()} <= {"en", "de"}


def test_plain_dataloader_and_collator(tiny):
    import torch
    ds = make_pairs(64, ["en", "de"])
    s = HybridBatchSampler(ds, 8, seed=0)
    loader = torch.utils.data.DataLoader(ds, batch_sampler=s, collate_fn=text_pairs)
    batch = next(iter(loader))
    assert len(batch) == 8 and all(q.startswith("q") and p.startswith("p") for q, p in batch)
    coll = PairCollator(preprocess_fn=tiny.preprocess, prompts={"query": "query: ", "passage": "passage: "})
    out = coll([ds[i] for i in next(iter(s))])
    assert out["query_input_ids"].shape[0] == out["passage_input_ids"].shape[0] == 8


def test_memory_is_groups_times_languages():
    ds = make_pairs(2000, ["en", "de", "es", "ru", "zh"])
    s = HybridBatchSampler(ds, 16)
    assert s.rows.shape == (2000, 5) and s.hash.shape == (len(ds),)


def test_no_translation_of_a_positive_is_a_negative(data_dir):
    """The probe of issue #12, as an outside check: on the real XQuAD training articles, several questions
    share one answer sentence. In no batch may a passage be relevant (by the XQuAD-R relevance sets, which the
    sampler never reads) to another pair's query. Before the answer-key dedup, 23 of 27 X-Y batches failed."""
    from hbkit.data.benchmarks import parallel_pairs
    from hbkit.data.registry import TRAIN_ARTICLES
    from hbkit.data.releases.lareqa import load_xquad_r

    pairs = parallel_pairs(data_dir=data_dir)
    bench = load_xquad_r(data_dir, articles=TRAIN_ARTICLES)
    cand = {(r.lang, r.context, r.text): r.id for r in bench.candidates.itertuples()}
    passage_id = [cand[(l, c, p)] for l, c, p in zip(pairs["lang"], pairs["context"], pairs["passage"])]
    query_id = [f"{l}:{g}" for l, g in zip(pairs["lang"], pairs["group"])]
    relevant = {q: set(r) for q, r in bench.relevance.items()}
    s = HybridBatchSampler(pairs, 32, seed=0, alpha=0.5)
    kinds = {"xx": 0, "xy": 0}
    for info, batch in s.global_batches(0):
        kinds[info.kind] += 1
        for i, (q, _) in enumerate(batch):
            for j, (_, p) in enumerate(batch):
                assert i == j or passage_id[p] not in relevant[query_id[q]], (info, i, j)
    assert kinds["xy"] >= 10 and kinds["xx"] >= 10  # both kinds were checked


def test_len_and_epochs_under_accelerate_sharding():
    """len() is what accelerate's BatchSamplerShard expects: with rank=None the N slices of every global batch
    are yielded in turn, so each process gets n_batches batches per epoch, each its own slice."""
    from accelerate.data_loader import BatchSamplerShard

    ds = make_pairs(40, ["en", "de", "es"])
    s = HybridBatchSampler(ds, 4, seed=3, num_replicas=2, rank=None)
    assert s.n_batches == 5 and len(s) == 10 and len(list(s)) == 10
    single = HybridBatchSampler(ds, 8, seed=3)
    for epoch in (0, 1, 2):
        s.set_epoch(epoch); single.set_epoch(epoch)
        shards = [list(BatchSamplerShard(s, num_processes=2, process_index=r, split_batches=False)) for r in (0, 1)]
        assert len(shards[0]) == len(shards[1]) == s.n_batches
        assert [a + b for a, b in zip(*shards)] == list(single)


def test_collator_passes_the_batch_kind_on(tiny):
    ds = make_pairs(64, ["en", "de"])
    s = HybridBatchSampler(ds, 8, seed=0, alpha=0.5)
    coll = PairCollator(preprocess_fn=tiny.preprocess, prompts={"query": "query: ", "passage": "passage: "})
    for info, batch in s.global_batches(0):
        out = coll([ds[int(i)] for i in batch.reshape(-1)])
        assert out["hbkit_batch"] == {"kind": info.kind, "lang": info.lang}


def test_arguments_are_checked_before_work():
    with pytest.raises(SamplerError, match="alpha=1.5"):
        make_sampler("hybrid", alpha=1.5)
    with pytest.raises(SamplerError, match="alpha_end"):
        make_sampler("hybrid", alpha=0.5, alpha_end=-0.1)
    ds = make_pairs(20, ["en", "de"])
    with pytest.raises(SamplerError, match="answer_key"):
        HybridBatchSampler(ds.remove_columns("answer_key"), 2)


def test_groups_in_one_language_each_are_named_not_blamed_on_batch_size():
    """Pairs whose groups each have one language (the group column holds per-language ids): X-Y is impossible
    at any batch size, and the message says why instead of advising a lower batch_size."""
    a, b = make_pairs(20, ["en"]), make_pairs(20, ["de"])
    ds = datasets.concatenate_datasets([a, b.map(lambda r: {"group": "de-" + r["group"]})])
    with pytest.raises(SamplerError, match="no group has pairs in two languages") as e:
        HybridBatchSampler(ds, 2)
    assert "lower batch_size" not in str(e.value)
    assert len(list(XXMonoBatchSampler(ds, 2))) > 0
