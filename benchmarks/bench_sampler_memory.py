"""Sampler memory on a synthetic mMARCO-sized parallel set: 1,000,000 groups x 9 languages (9M rows).

The pairs live in an Arrow dataset on disk (datasets.load_from_disk, memory-mapped), as a user's large
training data would. Prints the resident memory added by building HybridBatchSampler and by drawing batches,
next to the size of one O(groups x languages^2) pair table, which the sampler never builds.
Run: python benchmarks/bench_sampler_memory.py [--groups 1000000]
"""
import argparse
import resource
import tempfile
import time

import datasets
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from hbkit.train.sampling import HybridBatchSampler


def rss_mb() -> float:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


ap = argparse.ArgumentParser()
ap.add_argument("--groups", type=int, default=1_000_000)
ap.add_argument("--batch", type=int, default=100)
a = ap.parse_args()
LANGS = ["ar", "de", "en", "es", "fr", "hi", "ru", "vi", "zh"]
G, L = a.groups, len(LANGS)
with tempfile.TemporaryDirectory() as tmp:
    t = time.perf_counter()
    gid = pa.array(np.repeat(np.arange(G), L)).cast(pa.string())
    lang = pa.DictionaryArray.from_arrays(pa.array(np.tile(np.arange(L, dtype=np.int32), G)), pa.array(LANGS)).cast(pa.string())
    key = pc.binary_join_element_wise(gid, lang, " ")
    table = pa.table({"group": gid, "lang": lang, "query": pc.binary_join_element_wise("q", key, " "),
                      "passage": pc.binary_join_element_wise("p", key, " ")})
    datasets.Dataset(table).save_to_disk(tmp + "/pairs")
    del table, gid, lang, key
    ds = datasets.load_from_disk(tmp + "/pairs")
    print(f"synthetic set: {G:,} groups x {L} languages = {len(ds):,} rows on disk ({time.perf_counter() - t:.0f} s to build)")
    before = rss_mb()
    t = time.perf_counter()
    s = HybridBatchSampler(ds, a.batch, seed=0, alpha=0.5)
    build = time.perf_counter() - t
    after_build = rss_mb()
    t = time.perf_counter()
    it = iter(s)
    for _ in range(200):
        next(it)
    per_batch = (time.perf_counter() - t) / 200
    after_draw = rss_mb()
    pair_table = G * L * (L - 1) * 3 * 8 / 2**20
    print(f"sampler build: {build:.1f} s, +{after_build - before:.0f} MB resident "
          f"(rows table {s.rows.nbytes / 2**20:.0f} MB + passage hashes {s.hash.nbytes / 2**20:.0f} MB)")
    print(f"200 batches of {a.batch}: {per_batch * 1e3:.2f} ms/batch, +{after_draw - after_build:.0f} MB resident")
    print(f"a materialised (group, query lang, passage lang) table would take {pair_table:,.0f} MB "
          f"-> sampler uses {(after_draw - before) / pair_table:.3f}x of it")
