"""Corpus encoding throughput of the embedded multilingual-e5-small through hbkit.retrieval.shards.encode_corpus:
one process with 2 threads vs 2 processes (torchrun-style RANK/WORLD_SIZE, each encoding its own shards)
with 1 thread each, on the same TyDi-QA passages; then a projection for MIRACL-en on GPUs.

Each configuration runs in fresh child processes (same start-up for both); the encoding phase is timed
from the first process entering encode_corpus to the last one returning (model loading excluded, printed
apart). The projection (labelled as such) uses the measured tokens per passage and the model's FLOPs per
token with an explicit GPU throughput assumption (--gpu-tflops, effective, default 100: about a third of
the A100's 312 TFLOPS dense BF16/FP16 peak in NVIDIA's A100 datasheet; or give --gpu-passages-per-s).

Shard i goes to rank i % 2, so keep n / shard-size a multiple of 2 for an even split (default shards of 100).
The FLOP-based GPU figure ignores padding, tokenisation and kernel-launch overheads, so it is an optimistic
bound; pass --gpu-passages-per-s with a measured figure when you have one.

Run: HF_HUB_OFFLINE=1 python benchmarks/bench_encode.py [--n 2000]
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

MIRACL_EN = 32_893_221  # passages (project-miracl/miracl README)
DIM = 384


def passages(n: int):
    from hbkit.data.releases.tydiqa import load_tydiqa

    c = load_tydiqa().candidates
    return [(f"p{i:06d}", t) for i, t in enumerate(c["text"].tolist()[:n])]


def child(args):
    import torch

    from hbkit.encoders.load import load_encoder
    from hbkit.retrieval.shards import encode_corpus

    t0 = time.time()
    model = load_encoder("intfloat/multilingual-e5-small")
    docs = passages(args.n)
    t1 = time.time()
    encode_corpus(model, lambda: iter(docs), args.out, shard_size=args.shard_size, batch_size=args.batch_size,
                  progress=False, wait_timeout=3600)
    t2 = time.time()
    print(json.dumps({"load": t1 - t0, "start": t1, "end": t2, "threads": torch.get_num_threads(),
                      "rank": os.environ.get("RANK", "0")}))


def run_config(nproc: int, threads: int, out: Path, args) -> dict:
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "HF_HUB_OFFLINE": "1", "WORLD_SIZE": str(nproc)}
    procs = [subprocess.Popen([sys.executable, __file__, "--child", "--out", str(out), "--n", str(args.n),
                               "--shard-size", str(args.shard_size), "--batch-size", str(args.batch_size)],
                              env={**env, "RANK": str(r), "LOCAL_RANK": str(r)}, stdout=subprocess.PIPE, text=True)
             for r in range(nproc)]
    res = []
    for p in procs:
        stdout, _ = p.communicate()
        if p.returncode:
            raise SystemExit(f"child failed ({p.returncode})")
        res.append(json.loads(stdout.strip().splitlines()[-1]))
    wall = max(r["end"] for r in res) - min(r["start"] for r in res)
    return {"wall": wall, "load": max(r["load"] for r in res), "threads": res[0]["threads"], "per_s": args.n / wall}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=2000)
    ap.add_argument("--shard-size", type=int, default=100)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--gpu-tflops", type=float, default=100.0, help="effective GPU throughput assumed (TFLOPS)")
    ap.add_argument("--gpu-passages-per-s", type=float, default=None, help="override: assumed passages/s per GPU")
    ap.add_argument("--child", action="store_true")
    ap.add_argument("--out")
    args = ap.parse_args()
    if args.child:
        return child(args)

    import numpy as np

    with tempfile.TemporaryDirectory(prefix="hbkit-bench-encode-") as tmp:
        one = run_config(1, 2, Path(tmp) / "one", args)
        two = run_config(2, 1, Path(tmp) / "two", args)
        a = np.concatenate([np.load(p).astype(np.float32) for p in sorted((Path(tmp) / "one").glob("shard-*.npy"))])
        b = np.concatenate([np.load(p).astype(np.float32) for p in sorted((Path(tmp) / "two").glob("shard-*.npy"))])
        disk = sum(p.stat().st_size for p in (Path(tmp) / "one").glob("shard-*"))
    print(f"{args.n:,} TyDi-QA passages, embedded multilingual-e5-small, shards of {args.shard_size}, batch {args.batch_size}")
    print(f"  1 process x {one['threads']} threads:  {one['wall']:6.1f} s  {one['per_s']:6.1f} passages/s  (model load {one['load']:.1f} s, not timed)")
    print(f"  2 processes x {two['threads']} thread:   {two['wall']:6.1f} s  {two['per_s']:6.1f} passages/s  (model load {two['load']:.1f} s, not timed)")
    print(f"  ratio 2 processes / 1 process: {two['per_s'] / one['per_s']:.2f}x (2 cores; max |embedding diff| {np.abs(a - b).max():.1e})")

    # projection for MIRACL-en
    from transformers import AutoTokenizer

    from hbkit.encoders.load import embedded_model_path

    folder = embedded_model_path()
    tok = AutoTokenizer.from_pretrained(str(folder))
    texts = [t for _, t in passages(args.n)]
    n_tok = float(np.mean([min(len(x), 512) for x in tok(["passage: " + t for t in texts])["input_ids"]]))
    cfg = json.loads((folder / "config.json").read_text())
    h, L, ff = cfg["hidden_size"], cfg["num_hidden_layers"], cfg["intermediate_size"]
    flops_tok = 2 * L * (4 * h * h + 2 * h * ff) + 2 * L * 2 * n_tok * h  # dense layers + attention (QK^T, AV)
    flops_p = flops_tok * n_tok
    cpu_gflops = flops_p * one["per_s"] / 1e9
    gpu_ps = args.gpu_passages_per_s or args.gpu_tflops * 1e12 / flops_p
    bytes_per = DIM * 2 + 12  # float16 vector + ~12 bytes of docid line
    print(f"\nPROJECTION (not measured) for MIRACL-en, {MIRACL_EN:,} passages: measured here {n_tok:.0f} tokens/passage "
          f"(TyDi passages; MIRACL's are similar Wikipedia paragraphs), {flops_p / 1e9:.1f} GFLOP/passage, so this CPU "
          f"ran at {cpu_gflops:.0f} GFLOPS effective")
    print(f"  assumed GPU throughput: {gpu_ps:,.0f} passages/s per GPU "
          + ("(--gpu-passages-per-s)" if args.gpu_passages_per_s else f"(= {args.gpu_tflops:.0f} TFLOPS effective / {flops_p / 1e9:.1f} GFLOP)"))
    for g in (1, 8):
        hours = MIRACL_EN / (gpu_ps * g) / 3600
        print(f"  {g} GPU{'s' if g > 1 else ' '}: {hours:6.2f} h (shard i on GPU i % {g}, linear scaling assumed)")
    print(f"  this CPU (1 process, 2 threads): {MIRACL_EN / one['per_s'] / 86400:.0f} days")
    print(f"  disk: {MIRACL_EN * bytes_per / 1e9:.1f} GB float16 (+ the same again for float32: "
          f"{MIRACL_EN * (DIM * 4 + 12) / 1e9:.1f} GB); measured here {disk / args.n:.0f} bytes/passage with the records")


if __name__ == "__main__":
    main()
