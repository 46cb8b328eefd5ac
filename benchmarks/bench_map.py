"""Multilingual mAP on XQuAD-R-sized random embeddings: hbkit's chunked kernel vs a per-query sklearn loop.

13,090 queries x 13,014 candidates, 384-d, 11 relevant per query. The sklearn loop is timed on a sample of
queries and scaled to all (it is linear in queries); both compute the same AP (checked on the sample).
Goal: hbkit <= 10 s on 2 cores, >= 50x faster than the loop, peak memory <= 2 GB.
Run: python benchmarks/bench_map.py
"""
import resource
import time

import numpy as np
from sklearn.metrics import average_precision_score

from hbkit.evaluation import rank_metrics

rng = np.random.default_rng(0)
NQ, NC, D, R, SAMPLE = 13090, 13014, 384, 11, 500
Q = rng.normal(size=(NQ, D)).astype(np.float32); Q /= np.linalg.norm(Q, axis=1, keepdims=True)
C = rng.normal(size=(NC, D)).astype(np.float32); C /= np.linalg.norm(C, axis=1, keepdims=True)
rel = [rng.choice(NC, R, replace=False) for _ in range(NQ)]
rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

t = time.perf_counter()
ap = rank_metrics(Q, C, rel)["map"]
t_hb = time.perf_counter() - t
rss1 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

t = time.perf_counter()
ref = []
for i in range(SAMPLE):
    y = np.zeros(NC); y[rel[i]] = 1
    ref.append(average_precision_score(y, C @ Q[i]))
t_sk = (time.perf_counter() - t) * NQ / SAMPLE
assert np.allclose(ap[:SAMPLE], ref, atol=1e-6)
print(f"queries {NQ} x candidates {NC} x {D}-d, {R} relevant each")
print(f"hbkit rank_metrics (all metrics): {t_hb:8.2f} s   peak RSS {rss1:.0f} MB (before: {rss0:.0f} MB)")
print(f"sklearn loop (scaled from {SAMPLE}): {t_sk:8.2f} s")
print(f"speed-up: {t_sk / t_hb:.1f}x   goal: hbkit <= 10 s, >= 50x, peak <= 2048 MB")
