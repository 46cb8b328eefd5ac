"""mMARCO at (a stated fraction of) full size: the build against reading the same bytes, its peak RSS, and a cached load
against one sha256 pass over the inputs.

    PYTHONPATH=$PWD OMP_NUM_THREADS=1 python benchmarks/bench_mmarco.py [--fraction 0.125] [--dir /tmp/bench-mmarco]

1. Writes a synthetic release in mMARCO's real layout (``data/triples.train.ids.small.tsv``,
   ``data/google/queries/train/<language>_queries.train.tsv``, ``data/google/collections/<language>_collection.tsv``)
   for the paper profile's seven languages (en ar zh de es ru hi), at ``--fraction`` of the release's rows: 39,780,811
   triples over 808,731 queries, 8,841,823 passages per language, each language's file as many bytes per line as the
   release's (its registry sizes; English's as Spanish's), in its own script (Arabic, CJK, Cyrillic and Devanagari
   texts are 2-3 bytes a character) and its own line order. Kept between runs (not timed).
2. Reads every file with ``cat`` to /dev/null, twice (the read time). Before each timed step the files are evicted
   from the page cache (``posix_fadvise(DONTNEED)``), so every step reads from the disk, as the full release's
   31 GB are read on a machine whose memory does not hold them (``--warm``: leave the cache as it is).
3. Builds ``mmarco:200000`` (the paper profile's part) in a fresh process with an empty cache, and reports its time
   and peak RSS. The first sight of the files hashes them for the key (one sha256 pass) and the build reads them.
4. Times one sha256 pass (hashlib, 4 MiB reads) over the same files, and a cached load in a fresh process (the
   memo: a stat per file).

Prints the ratios build / read and cached load / sha256 pass, and the extrapolation to full size (linear in the
bytes, stated as such). Goals (#33): build <= 3x the read time at a peak RSS <= 4 GB; cached load <= 0.3 s and <= 1/3
of one sha256 pass, with inputs >= 4 GB.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

LANGS = ["en", "ar", "zh", "de", "es", "ru", "hi"]
FULL = {"triples": 39_780_811, "queries": 808_731, "passages": 8_841_823}
#: first code point and alphabet size of each language's script (bytes per character in UTF-8: 1, 2 or 3)
SCRIPTS = {"en": (ord("a"), 26), "de": (ord("a"), 26), "es": (ord("a"), 26), "ar": (0x0627, 36),
           "ru": (0x0430, 32), "zh": (0x4E00, 3000), "hi": (0x0905, 48)}


def release_sizes(lang: str) -> tuple[int, int]:
    """(collection bytes, queries bytes) of the real release (hbkit's registry; English as Spanish)."""
    from hbkit.data.sources import HUB_SOURCES, MMARCO_LANGS

    sizes = HUB_SOURCES["mmarco"]["sizes"]
    name = MMARCO_LANGS["es" if lang == "en" else lang]
    return (sizes[f"data/google/collections/{name}_collection.tsv"],
            sizes[f"data/google/queries/train/{name}_queries.train.tsv"])


def pool(rng, lang: str, chars: int = 4_000_000) -> str:
    import numpy as np

    first, n = SCRIPTS[lang]
    letters = np.array([chr(first + i) for i in range(n)] + [" "] * max(2, n // 5))
    return "".join(letters[rng.integers(0, len(letters), size=chars)].tolist())


def write_lines(path: Path, ids, lengths, text: str, rng, chunk: int = 200_000) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    offs = rng.integers(0, len(text) - int(lengths.max()) - 1, size=len(ids))
    with open(path, "wb") as fh:
        for s in range(0, len(ids), chunk):
            fh.write("".join(f"{i}\t{text[o:o + l].strip() or 'x'}\n" for i, o, l in
                             zip(ids[s:s + chunk].tolist(), offs[s:s + chunk].tolist(),
                                 lengths[s:s + chunk].tolist())).encode())


def generate(root: Path, fraction: float) -> dict:
    import numpy as np

    marker = root / "bench-release.json"
    if marker.is_file() and json.loads(marker.read_text()).get("fraction") == fraction:
        return json.loads(marker.read_text())
    shutil.rmtree(root, ignore_errors=True)
    from hbkit.data.releases.mmarco import mmarco_files

    rng = np.random.default_rng(0)
    nq, npas, nt = (max(10, round(FULL[k] * fraction)) for k in ("queries", "passages", "triples"))
    qids = np.sort(rng.choice(1_200_000, size=nq, replace=False))
    positive = rng.integers(0, npas, size=nq)
    files = mmarco_files(root, LANGS)
    t0 = time.perf_counter()
    q_of = rng.integers(0, nq, size=nt)
    q_of.sort(kind="stable")
    trip = np.stack([qids[q_of], positive[q_of], rng.integers(0, npas, size=nt)], axis=1)
    files["triples"].parent.mkdir(parents=True, exist_ok=True)
    np.savetxt(files["triples"], trip, fmt="%d", delimiter="\t")
    for lang in LANGS:
        coll_bytes, q_bytes = release_sizes(lang)
        text = pool(rng, lang)
        bpc = len(text[:10000].encode()) / 10000   # bytes per character of this script
        for kind, ids, per_line in (("queries", qids, q_bytes / FULL["queries"]),
                                    ("collection", np.arange(npas), coll_bytes / FULL["passages"])):
            chars = max(4.0, (per_line - 8) / bpc)
            lengths = np.clip(rng.normal(chars, chars / 3, size=len(ids)), 2, 4 * chars).astype(int)
            order = rng.permutation(len(ids))   # each language's own line order
            write_lines(files[f"{kind}-{lang}"], ids[order], lengths, text, rng)
        print(f"  wrote {lang} ({time.perf_counter() - t0:.0f} s)", flush=True)
    info = {"fraction": fraction, "queries": nq, "passages": npas, "triples": nt,
            "bytes": sum(p.stat().st_size for p in files.values()), "write_s": time.perf_counter() - t0}
    marker.write_text(json.dumps(info))
    time.sleep(2.5)   # past the digest memo's racy window (hbkit.core.digests.RACY_S)
    return info


def evict(files: list[Path]) -> None:
    """Drop the files' pages from the page cache (posix_fadvise DONTNEED; no root needed), so that the next read
    comes from the disk, as the full release's 31 GB do on a machine whose memory does not hold them."""
    for f in files:
        fd = os.open(f, os.O_RDONLY)
        try:
            os.fdatasync(fd)
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        finally:
            os.close(fd)


def cat_time(files: list[Path], cold: bool) -> float:
    if cold:
        evict(files)
    t0 = time.perf_counter()
    subprocess.run(["cat", *map(str, files)], stdout=subprocess.DEVNULL, check=True)
    return time.perf_counter() - t0


def sha_time(files: list[Path], cold: bool) -> float:
    if cold:
        evict(files)
    t0 = time.perf_counter()
    for f in files:
        h = hashlib.sha256()
        with open(f, "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 22), b""):
                h.update(chunk)
    return time.perf_counter() - t0


def child(root: str, queries: int) -> None:
    """Load mmarco:<queries> (building it if the cache is empty); print its time and peak RSS as JSON."""
    t0 = time.perf_counter()
    from hbkit.data import corpus_cache
    from hbkit.data.releases.mmarco import mmarco_pairs

    imported = time.perf_counter()
    ds = mmarco_pairs(root, LANGS, queries)
    done = time.perf_counter()
    print(json.dumps({"s": done - imported, "import_s": imported - t0, "rows": len(ds),
                      "builds": sum(corpus_cache.BUILDS.values()),
                      "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))


def run_child(root: Path, cache: Path, queries: int, cold: bool, files: list[Path]) -> dict:
    if cold:
        evict(files)
    env = {**os.environ, "HBKIT_CACHE": str(cache), "PYTHONPATH": str(Path(__file__).resolve().parents[1]),
           "HF_HUB_OFFLINE": "1", "TQDM_DISABLE": "1"}
    out = subprocess.run([sys.executable, __file__, "--child", str(root), "--queries", str(queries)], env=env,
                         capture_output=True, text=True)
    if out.returncode:
        sys.exit(f"the child failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--fraction", type=float, default=0.125, help="of the release's rows (default 1/8: about 4 GB)")
    ap.add_argument("--dir", type=Path, default=Path(tempfile.gettempdir()) / "bench-mmarco")
    ap.add_argument("--queries", type=int, default=200_000, help="the build's sample (the paper profile's mmarco:200000)")
    ap.add_argument("--warm", dest="cold", action="store_false",
                    help="leave the files in the page cache (default: evict them before each timed step, so that "
                         "they are read from the disk, as a release larger than the memory is)")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.child:
        return child(a.child, a.queries)
    if not 0 < a.fraction <= 1:
        sys.exit("--fraction: a share of the release's rows in (0, 1]")
    from hbkit.data.releases.mmarco import mmarco_files

    root = a.dir / f"f{a.fraction:g}"
    print(f"synthetic mMARCO release at {a.fraction:g} of full size in {root}", flush=True)
    info = generate(root, a.fraction)
    files = list(mmarco_files(root, LANGS).values())
    gb = info["bytes"] / 1e9
    print(f"  {info['triples']:,} triples, {info['queries']:,} queries and {info['passages']:,} passages per language, "
          f"{len(LANGS)} languages: {gb:.2f} GB in {len(files)} files")
    cache = Path(tempfile.mkdtemp(prefix="bench-mmarco-cache-"))
    try:
        read1, read2 = cat_time(files, a.cold), cat_time(files, a.cold)
        build = run_child(root, cache, a.queries, a.cold, files)
        assert build["builds"] == 1, build
        sha = sha_time(files, a.cold)
        load = run_child(root, cache, a.queries, a.cold, files)
        assert load["builds"] == 0 and load["rows"] == build["rows"], load
    finally:
        shutil.rmtree(cache, ignore_errors=True)
    read = min(read1, read2)
    print(f"\npage cache: {'evicted before each timed step (reads from the disk)' if a.cold else 'warm'}")
    print(f"read (cat > /dev/null): {read1:.1f} s, again {read2:.1f} s ({gb / read:.2f} GB/s)")
    print(f"build mmarco:{a.queries} ({build['rows']:,} rows): {build['s']:.1f} s = {build['s'] / read:.2f}x the read "
          f"time (goal 3x), peak RSS {build['peak_rss_mb']:,.0f} MB (goal 4,096 MB)")
    print(f"one sha256 pass: {sha:.1f} s ({gb / sha:.2f} GB/s)")
    print(f"cached load (a fresh process, the memo): {load['s']:.3f} s = {load['s'] / sha:.4f} of a sha256 pass "
          f"(goal <= 0.3 s and <= 1/3), peak RSS {load['peak_rss_mb']:,.0f} MB")
    full = 1 / a.fraction
    print(f"\nEXTRAPOLATED to full size (x{full:g}, linear in the bytes; not measured): {gb * full:.1f} GB, read "
          f"{read * full:.0f} s at this machine's rate, build {build['s'] * full:.0f} s")


if __name__ == "__main__":
    main()
