"""Wall time per stage (load data, train, encode, score, align) of the main job, per profile.

Run: python benchmarks/bench_compare.py [--profiles ci,cpu] [--out runs/bench]
Each profile runs in its own folder with --force and a fresh embedding cache, so nothing is reused; the
stages are printed side by side.
"""
import argparse
import json
import os
import tempfile

from hbkit.experiment.compare import compare

ap = argparse.ArgumentParser()
ap.add_argument("--profiles", default="ci")
ap.add_argument("--out", default="runs/bench")
a = ap.parse_args()
rows = {}
for p in a.profiles.split(","):
    with tempfile.TemporaryDirectory() as cache:
        os.environ["HBKIT_CACHE"] = cache
        rows[p] = compare(p, f"{a.out}/{p}", force=True, progress=False)["timings"]
stages = ["load_data", "train", "encode", "score", "align", "total"]
print("profile  " + "".join(f"{s:>11}" for s in stages))
for p, t in rows.items():
    print(f"{p:8} " + "".join(f"{t.get(s, 0):10.1f}s" for s in stages))
print(json.dumps(rows))
