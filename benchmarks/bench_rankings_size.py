"""Disk cost of the stored multilingual rankings (``rankings/``: each query's top k and relevant candidates, so that a
ranking measure added later needs no weights), per model, on a profile's evaluation subsamples.

Run: python benchmarks/bench_rankings_size.py [--profile cpu] [--k 20]
Encodes the profile's base model on its pool benchmarks (cached embeddings are reused), writes each benchmark's
rankings as the evaluation does, and prints rows, bytes, and the MB per model beside the per-query results' size
of one model, and what a grid of N model variants would add (--variants, default: the cpu 8-seed grid with both
fixes of each model, 25 x 3).
"""
import argparse
import tempfile
import time
from pathlib import Path

from hbkit.core.files import atomic_path
from hbkit.encoders.encode import encode
from hbkit.encoders.load import fingerprint
from hbkit.experiment.profiles import profile
from hbkit.experiment.stages import base_encoder, stage_data
from hbkit.retrieval.pools import evaluate_embeddings, multilingual_rankings

ap = argparse.ArgumentParser()
ap.add_argument("--profile", default="cpu")
ap.add_argument("--k", type=int, default=20)
ap.add_argument("--variants", type=int, default=75)
a = ap.parse_args()
cfg = profile(a.profile)
_, _, benches, _, _, _, _ = stage_data(cfg, None)
enc = base_encoder(cfg)
fp = fingerprint(enc)
rk_total = pq_total = 0
with tempfile.TemporaryDirectory() as tmp:
    print(f"{'benchmark':14}{'queries':>9}{'candidates':>12}{'rows':>9}{'rankings MB':>13}{'per-query MB':>14}{'s':>7}")
    for name, b in benches.items():
        t = time.perf_counter()
        Q = encode(enc, b.queries["text"].tolist(), "query", fp=fp, progress=False)
        C = encode(enc, b.candidates["text"].tolist(), "passage", fp=fp, progress=False)
        R = multilingual_rankings(b, Q, C, a.k)
        P = evaluate_embeddings(b, Q, C, progress=False).per_query
        sizes = []
        for frame, stem in ((R, "rk"), (P, "pq")):
            with atomic_path(Path(tmp) / f"{stem}-{name}.parquet") as path:
                frame.to_parquet(path, index=False)
            sizes.append((Path(tmp) / f"{stem}-{name}.parquet").stat().st_size)
        rk_total += sizes[0]
        pq_total += sizes[1]
        print(f"{name:14}{len(b.queries):9}{len(b.candidates):12}{len(R):9}{sizes[0] / 1e6:13.2f}{sizes[1] / 1e6:14.2f}"
              f"{time.perf_counter() - t:7.1f}")
print(f"per model: rankings {rk_total / 1e6:.2f} MB, per-query results {pq_total / 1e6:.2f} MB "
      f"(ratio {rk_total / pq_total:.2f}); {a.variants} model variants: {a.variants * rk_total / 1e6:.0f} MB of rankings")
