"""Wall time and peak resident memory per stage of the main job (``hbkit compare``), per profile.

Run: python benchmarks/bench_compare.py [--profiles ci,cpu] [--out runs/bench]
Each profile runs in its own folder with --force and a fresh cache (embeddings, corpora, the embedded model), so
nothing is reused, as on a fresh clone. Printed side by side: seconds per stage, each stage's peak RSS (MB, reset
when the stage starts: ``timings["peak_rss_mb"]``), the job's peak, and encoding's share of training time (the
goal: ≤ 0.5 on the cpu profile; the peak: ≤ 2,500 MB).
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
stages = ["load_data", "train", "load_model", "encode", "score", "align", "aggregate", "report", "total"]
print("seconds  " + "".join(f"{s:>11}" for s in stages))
for p, t in rows.items():
    print(f"{p:8} " + "".join(f"{t.get(s, 0):10.1f}s" for s in stages))
print("peak MB  " + "".join(f"{s:>11}" for s in stages[:-1]))
for p, t in rows.items():
    peaks = t.get("peak_rss_mb", {})
    print(f"{p:8} " + "".join(f"{peaks.get(s, float('nan')):11.0f}" for s in stages[:-1]))
for p, t in rows.items():
    peak = max(t.get("peak_rss_mb", {}).values(), default=float("nan"))
    ratio = t["encode"] / t["train"] if t.get("train") else float("nan")
    print(f"{p}: peak RSS of any stage {peak:,.0f} MB (goal ≤ 2,500); encode / train = {ratio:.2f} (goal ≤ 0.5); "
          f"{t.get('evaluated_models', 0)} models evaluated")
print(json.dumps(rows))
