"""Training-corpus benchmark at the translate-train scale: build, cached load, peak RSS, sampler.

    PYTHONPATH=$PWD OMP_NUM_THREADS=1 HBKIT_CACHE=/tmp/bench-corpus-cache python benchmarks/bench_corpus.py \
        [--groups 87000] [--squad-groups 1500]

1. SQuAD-file path (parsing + pysbd sentence splitting), at ``--squad-groups`` groups x 3 languages
   (SQuAD-format files in /tmp with SQuAD's shape: about 4.6 questions per paragraph, 5-sentence
   paragraphs); the time per row is measured, and the full-size time extrapolated from it (stated as such).
2. Direct path at full size (``--groups`` x 11 languages, about 960k rows; realistic lengths: query ~60
   characters, passage ~150, context ~750): the rows go through the same cache machinery (per-language Arrow
   parts, ``save_to_disk``, ``build_once``) in a child process whose peak RSS is reported.
3. A fresh child process loads the cache (``load_from_disk``, memory-mapped) and builds
   ``HybridBatchSampler(ds, 100)``, its epoch plan and the first 10 batches; its peak RSS is reported after
   each stage. Goals: cached load <= 10 s and peak RSS <= 2 GB.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

LANGS = ["ar", "de", "el", "en", "es", "hi", "ru", "th", "tr", "vi", "zh"]


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def words(rng, n_rows: int, n_words: int, vocab) -> list[str]:
    idx = rng.integers(0, len(vocab), size=(n_rows, n_words))
    return [" ".join(vocab[i] for i in row) for row in idx]


def vocab(rng, size: int = 5000) -> list[str]:
    letters = list("abcdefghijklmnopqrstuvwxyz")
    return ["".join(rng.choice(letters, size=int(rng.integers(2, 9)))) for _ in range(size)]


# ---------------------------------------------------------------------------------------------- child: build
def child_build(groups: int) -> dict:
    import numpy as np

    from hbkit.data import corpus_cache
    from hbkit.data.releases import translate_train

    marker = Path(tempfile.gettempdir()) / f"bench-corpus-{groups}.marker"
    marker.write_text(str(groups))
    t0 = time.perf_counter()

    def build(tmp: Path):
        rng = np.random.default_rng(0)
        voc = vocab(rng)
        pool = words(rng, 20000, 22, voc)  # other sentences of the paragraphs
        gid = [f"{g:024x}" for g in range(groups)]
        key = [f"t{g // 5}:{g % 5 // 2}:{g % 2}" for g in range(groups)]  # some groups share an answer
        parts, stats = [], []
        for lang in LANGS:
            q = words(rng, groups, 10, voc)
            p = [f"{g} {t}." for g, t in zip(gid, words(rng, groups, 22, voc))]
            o = rng.integers(0, len(pool), size=(groups, 4))
            ctx = [f"{pool[a]}. {pool[b]}. {pp} {pool[c]}. {pool[d]}." for pp, (a, b, c, d) in zip(p, o)]
            cols = {"group": gid, "lang": [lang] * groups, "query": [x + "?" for x in q], "passage": p,
                    "answer_key": key, "source": ["synthetic"] * groups, "context": ctx,
                    "article": [k.split(":")[0] for k in key]}
            parts.append(corpus_cache.write_part(tmp / "_parts" / f"{lang}.arrow", cols))
            stats.append({"lang": lang, "rows": groups, "skipped": {}})
            del q, p, ctx, cols
        corpus_cache.save_parts(tmp, parts)
        return translate_train.stats_frame(stats, {})

    folder = corpus_cache.cached_corpus(f"bench-synthetic-{groups}", [marker], {}, build, rebuild=True)
    size = sum(f.stat().st_size for f in (folder / "dataset").glob("*.arrow"))
    return {"folder": str(folder), "build_s": time.perf_counter() - t0, "build_rss_mb": rss_mb(),
            "disk_mb": size / 2**20}


# ---------------------------------------------------------------------------------------------- child: load
def child_load(folder: str) -> dict:
    t0 = time.perf_counter()
    import datasets

    from hbkit.train.sampling import HybridBatchSampler

    t_import = time.perf_counter() - t0
    t = time.perf_counter()
    ds = datasets.load_from_disk(str(Path(folder) / "dataset"))
    n = len(ds)
    out = {"rows": n, "import_s": t_import, "load_s": time.perf_counter() - t, "load_rss_mb": rss_mb()}
    t = time.perf_counter()
    s = HybridBatchSampler(ds, 100, seed=0, alpha=0.5)
    out.update(sampler_s=time.perf_counter() - t, sampler_rss_mb=rss_mb(), batches_per_epoch=len(s))
    t = time.perf_counter()
    plan = s.plan(0)
    out.update(plan_s=time.perf_counter() - t, xx_batches=sum(b.kind == "xx" for b in plan))
    t = time.perf_counter()
    it = iter(s)
    first = [next(it) for _ in range(10)]
    rows = [ds[b]["passage"] for b in first[:1]]  # read the rows of one batch from the memory map
    out.update(first10_s=time.perf_counter() - t, first10_rss_mb=rss_mb(), batch_rows=len(first[0]),
               sample_passage_chars=len(rows[0][1]))
    if os.environ.get("HBKIT_DATA_DIR"):  # zero-shot check of the whole corpus against XQuAD-R (held-out part)
        from hbkit.data.benchmarks import load_benchmark
        from hbkit.data.checks import overlap_counts

        bench = load_benchmark("xquad-r-eval")
        t = time.perf_counter()
        counts = overlap_counts(ds, {"xquad-r-eval": bench})
        out.update(overlap_s=time.perf_counter() - t, overlap_rss_mb=rss_mb(),
                   overlap_matched=int(counts["bench_matched"].sum()))
    return out


# ---------------------------------------------------------------------------------------------- SQuAD files
def squad_path(groups: int, langs=("en", "de", "es")) -> dict:
    """Write SQuAD-format files (4-5 questions per 5-sentence paragraph), build them, time per row."""
    import numpy as np

    from hbkit.data import corpora

    rng = np.random.default_rng(1)
    voc = vocab(rng)
    root = Path(tempfile.mkdtemp(prefix="bench-squad-"))
    (root / "translate-train").mkdir()
    n_par = groups * 2 // 9 + 2  # 4.5 questions per paragraph on average
    sents = [[" ".join(w.capitalize() if i == 0 else w for i, w in enumerate(s.split())) + "."
              for s in words(rng, 5, 22, voc)] for _ in range(n_par)]
    for lang in langs:
        data, g = [], 0
        for p in range(n_par):
            ctx = " ".join(sents[p])
            qas = []
            for k in range(5 if p % 2 else 4):
                if g >= groups:
                    break
                s = sents[p][k % 5]
                ans = s.split()[3]
                start = ctx.index(s) + s.index(ans)
                qas.append({"id": f"{g:024x}", "question": " ".join(words(rng, 1, 10, voc)) + "?",
                            "answers": [{"answer_start": start, "text": ans}]})
                g += 1
            data.append({"title": f"T{p // 40}", "paragraphs": [{"context": ctx, "qas": qas}]})
        path = root / ("train-v1.1.json" if lang == "en" else f"translate-train/squad.translate.train.en-{lang}.json")
        path.write_text(json.dumps({"version": "1.1", "data": data}))
    t = time.perf_counter()
    folder, stats = corpora.build_corpus("squad-translate-train", root, languages=list(langs), rebuild=True,
                                         num_proc=1)
    dt = time.perf_counter() - t
    rows = int(stats.set_index("lang").loc["all", "rows"])
    return {"groups": groups, "languages": len(langs), "rows": rows, "paragraphs_per_language": n_par,
            "build_s": dt, "ms_per_row": 1000 * dt / rows}


def run_child(*args: str) -> dict:
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    out = subprocess.run([sys.executable, __file__, *args], env=env, capture_output=True, text=True)
    if out.returncode:
        raise SystemExit(out.stderr[-3000:])
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--groups", type=int, default=87000)
    ap.add_argument("--squad-groups", type=int, default=1500)
    ap.add_argument("--child", choices=["build", "load"])
    ap.add_argument("--arg")
    a = ap.parse_args()
    if a.child == "build":
        print(json.dumps(child_build(int(a.arg))))
        return
    if a.child == "load":
        print(json.dumps(child_load(a.arg)))
        return
    print(f"CPUs: {os.cpu_count()}, load average {os.getloadavg()[0]:.1f}")
    sq = squad_path(a.squad_groups)
    full_rows = a.groups * len(LANGS)
    print(f"[squad files] {sq['rows']} rows ({sq['groups']} groups x {sq['languages']} languages, "
          f"{sq['paragraphs_per_language']} paragraphs/language): build {sq['build_s']:.1f} s = "
          f"{sq['ms_per_row']:.2f} ms/row -> extrapolated to {full_rows:,} rows on one core: "
          f"{sq['ms_per_row'] * full_rows / 60000:.0f} min (divide by num_proc up to 10 for the translated files)")
    b = run_child("--child", "build", "--arg", str(a.groups))
    print(f"[direct rows] build {full_rows:,} rows: {b['build_s']:.1f} s, peak RSS {b['build_rss_mb']:.0f} MB, "
          f"on disk {b['disk_mb']:.0f} MB")
    for attempt in (1, 2):  # the second run reads a warm page cache
        r = run_child("--child", "load", "--arg", b["folder"])
        print(f"[load #{attempt}] {r['rows']:,} rows: import {r['import_s']:.1f} s, load_from_disk {r['load_s']:.2f} s "
              f"(RSS {r['load_rss_mb']:.0f} MB); HybridBatchSampler(ds, 100) {r['sampler_s']:.1f} s "
              f"(RSS {r['sampler_rss_mb']:.0f} MB, {r['batches_per_epoch']} batches/epoch); plan {r['plan_s']:.3f} s "
              f"({r['xx_batches']} X-X); first 10 batches {r['first10_s']:.2f} s; peak RSS {r['first10_rss_mb']:.0f} MB")
    if "overlap_s" in r:
        print(f"[overlap_counts] {r['rows']:,} training rows vs xquad-r-eval (queries and candidates, exact and "
              f"normalised): {r['overlap_s']:.1f} s, peak RSS {r['overlap_rss_mb']:.0f} MB, "
              f"{r['overlap_matched']} matches")
    ok_time = r["load_s"] <= 10
    ok_rss = r["first10_rss_mb"] <= 2048
    print(f"goals: cached load <= 10 s: {'met' if ok_time else 'MISSED'} ({r['load_s']:.2f} s); "
          f"peak RSS <= 2 GB: {'met' if ok_rss else 'MISSED'} ({r['first10_rss_mb']:.0f} MB)")


if __name__ == "__main__":
    main()
