"""A mix's memory: loading a cached, memory-mapped mix against building it in memory (hbkit before #33), in fresh
processes, as RSS growth against the mix's text bytes.

    PYTHONPATH=$PWD OMP_NUM_THREADS=1 python benchmarks/bench_mix.py [--rows 600000]

Two pairs files (Parquet, ``--rows`` rows each over two languages, mMARCO-like lengths: queries ~35 characters,
passages ~330) are cached as corpora, then mixed (``a.parquet+b.parquet``). Each measurement is a fresh process that
loads the mix and touches every row's group and language (what a sampler reads) and reports its RSS before and after:

* ``cached mix`` (now): the mix is a corpus-cache entry, written once and memory-mapped;
* ``in-memory mix`` (before): the parts' rows prefixed with ``Dataset.map(keep_in_memory=True)`` and concatenated,
  as ``hbkit.data.corpora._mix`` did.

Goal (#33): loading a mix adds at most a third of its text bytes to the RSS.

Then the training set's fingerprint (the identity of every model's folder, computed at each ``train`` and
``compare`` start): hashing every row of the mix against the remembered value, in fresh processes, with the
peak RSS each adds.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def rss_mb(field: str = "VmRSS") -> float:
    """The process's resident memory (``VmRSS``), or one part of it: ``RssAnon`` (private), ``RssFile`` (pages
    of mapped files, shared with every process that maps them)."""
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    return float("nan")


def write_parts(root: Path, rows: int) -> list[Path]:
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(0)
    letters = np.array(list("abcdefghijklmnopqrstuvwxyz      "))
    pool = "".join(letters[rng.integers(0, len(letters), 3_000_000)].tolist())
    out = []
    for name in ("a", "b"):
        p = root / f"{name}.parquet"
        if not p.is_file():
            g = rows // 2
            off = rng.integers(0, len(pool) - 400, size=(2, rows))
            df = pd.DataFrame({"group": [f"{name}{i % g}" for i in range(rows)],
                               "lang": ["en"] * g + ["de"] * (rows - g),
                               "query": [pool[o:o + 35] for o in off[0]], "passage": [pool[o:o + 330] for o in off[1]],
                               "answer_key": [f"{name}k{i % g}" for i in range(rows)]})
            df.to_parquet(p)
        out.append(p)
    return out


def in_memory_mix(spec: str):
    """hbkit's mix before #33: every part mapped into memory and concatenated."""
    import datasets

    from hbkit.core.vocab import CORPUS_COLUMN
    from hbkit.data.corpora import corpus_parts, load_training_corpus, part_name

    out = []
    for part in corpus_parts(spec):
        ds = load_training_corpus(part)
        name = part_name(part)
        ds = ds.select_columns(["group", "lang", "query", "passage", "answer_key"])

        def prefix(batch, name=name):
            return {"group": [f"{name}/{g}" for g in batch["group"]],
                    "answer_key": [f"{name}/{k}" for k in batch["answer_key"]], CORPUS_COLUMN: [name] * len(batch["group"])}
        ds = ds.map(prefix, batched=True, keep_in_memory=True)
        out.append(ds.cast(datasets.Features({c: datasets.Value("string") for c in ds.column_names})))
    return datasets.concatenate_datasets(out)


def child(spec: str, how: str) -> None:
    import pyarrow.compute as pc

    from hbkit.data.corpora import load_training_corpus

    before, anon0, file0 = rss_mb(), rss_mb("RssAnon"), rss_mb("RssFile")
    t0 = time.perf_counter()
    ds = load_training_corpus(spec) if how == "cached" else in_memory_mix(spec)
    s = time.perf_counter() - t0
    n = len(pc.unique(ds.data.column("group"))) + len(pc.unique(ds.data.column("lang")))   # what a sampler reads
    after, anon, file = rss_mb(), rss_mb("RssAnon") - anon0, rss_mb("RssFile") - file0
    text = sum(pc.sum(pc.binary_length(ds.data.column(c))).as_py() for c in ("group", "lang", "query", "passage",
                                                                             "answer_key"))
    print(json.dumps({"before_mb": before, "after_mb": after, "anon_mb": anon, "file_mb": file, "s": s, "rows": len(ds), "text_mb": text / 2**20,
                      "n": n}))


def fingerprint_child(spec: str) -> None:
    from hbkit.data.corpora import load_training_corpus
    from hbkit.train.run_folder import _hash_rows, pairs_fingerprint

    ds = load_training_corpus(spec)
    out = {}
    for name, fn in (("pairs_fingerprint", pairs_fingerprint), ("hash_rows", _hash_rows)):
        base = rss_mb()
        with open("/proc/self/clear_refs", "w") as fh:   # reset the peak (VmHWM) to the current RSS
            fh.write("5")
        t0 = time.perf_counter()
        fp = fn(ds)
        out[name] = {"s": time.perf_counter() - t0, "peak_mb": rss_mb("VmHWM") - base, "fp": fp}
    print(json.dumps(out))


def run(spec: str, how: str, env: dict) -> dict:
    out = subprocess.run([sys.executable, __file__, "--child", how, spec], env=env, capture_output=True, text=True)
    if out.returncode:
        sys.exit(out.stderr[-3000:])
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rows", type=int, default=600_000, help="rows per part (default 600,000)")
    ap.add_argument("--dir", type=Path, default=Path(tempfile.gettempdir()) / "bench-mix")
    ap.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.child:
        return fingerprint_child(a.child[1]) if a.child[0] == "fingerprint" else child(a.child[1], a.child[0])
    root = a.dir / str(a.rows)
    root.mkdir(parents=True, exist_ok=True)
    spec = "+".join(str(p) for p in write_parts(root, a.rows))
    env = {**os.environ, "HBKIT_CACHE": str(root / "cache"), "PYTHONPATH": str(Path(__file__).resolve().parents[1]),
           "HF_HUB_OFFLINE": "1", "TQDM_DISABLE": "1"}
    first = run(spec, "cached", env)   # builds the parts and the mix (not the measurement)
    cached, memory = run(spec, "cached", env), run(spec, "memory", env)
    print(f"mix of 2 parts x {a.rows:,} rows: {cached['rows']:,} rows, {cached['text_mb']:,.0f} MB of text "
          f"(first build {first['s']:.1f} s)")
    for name, r in (("cached mix (memory-mapped)", cached), ("in-memory mix (before)", memory)):
        grew = r["after_mb"] - r["before_mb"]
        print(f"  {name}: load {r['s']:.2f} s, RSS +{grew:,.0f} MB = {grew / r['text_mb']:.2f} of its text bytes "
              f"(goal <= 0.33): private +{r['anon_mb']:,.0f} MB, pages of mapped files +{r['file_mb']:,.0f} MB")
    g_c, g_m = (r["after_mb"] - r["before_mb"] for r in (cached, memory))
    print(f"ratio in-memory / cached RSS growth: {g_m / max(g_c, 1e-9):.1f}x")
    time.sleep(2.5)   # past RACY_S: the mix's files are settled, so the first sight remembers its fingerprint
    seen, again = run(spec, "fingerprint", env), run(spec, "fingerprint", env)
    assert seen["pairs_fingerprint"]["fp"] == again["pairs_fingerprint"]["fp"] == again["hash_rows"]["fp"]
    rows, memo = again["hash_rows"], again["pairs_fingerprint"]
    print(f"training-set fingerprint of the mix: first sight {seen['pairs_fingerprint']['s']:.2f} s; "
          f"later starts {memo['s'] * 1e3:.1f} ms (+{memo['peak_mb']:,.0f} MB peak) against hashing every row "
          f"{rows['s']:.2f} s (+{rows['peak_mb']:,.0f} MB peak): {rows['s'] / max(memo['s'], 1e-9):,.0f}x")


if __name__ == "__main__":
    main()
