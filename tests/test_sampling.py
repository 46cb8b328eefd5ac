"""Sampler guarantees as properties over random parallel datasets (hypothesis), plus integration."""
import math

import datasets
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from hbkit.sampling import (HybridBatchSampler, PairCollator, SamplerError, XXMonoBatchSampler, XYBatchSampler,
                            make_sampler, text_pairs)


def make_pairs(n_groups, langs, seed=0, missing=0.0, dup_passages=0):
    rng = np.random.default_rng(seed)
    rows = {"group": [], "lang": [], "query": [], "passage": []}
    for g in range(n_groups):
        present = [l for l in langs if rng.random() >= missing] or langs[:2]
        if len(present) < 2:
            present = langs[:2]
        for l in present:
            rows["group"].append(f"g{g}"); rows["lang"].append(l)
            rows["query"].append(f"q {g} {l}")
            # a few groups share a passage text (several questions answered by one sentence)
            rows["passage"].append(f"p {g % dup_passages if dup_passages and g < 2 * dup_passages else g} {l}")
    return datasets.Dataset.from_dict(rows)


def check_batches(ds, sampler, alpha=None):
    group, lang, passage = ds["group"], ds["lang"], ds["passage"]
    for info, pairs in sampler.global_batches():
        gs = [group[q] for q, _ in pairs]
        assert len(set(gs)) == len(gs), "group twice in a batch"
        assert all(group[q] == group[p] for q, p in pairs)
        ps = [passage[p] for _, p in pairs]
        assert len(set(ps)) == len(ps), "duplicate passage text"
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
                                        "passage": ["c", "d"]})
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
