"""GPU check: what the paper profile costs on this card, measured before hours of GPU time (`make gpu-check`).

No network: the two encoders are built offline from their exact shapes with random weights (timings do not
depend on the weights) and tokenised with the real XLM-R tokenizer (the `offline` extra, or
$HBKIT_TOKENIZER_JSON); the texts are XQuAD-R's questions and answer sentences ($HBKIT_DATA_DIR).
Where the embedded multilingual-e5-small can be built (the `offline` extra), it is used with its real weights.

It measures, and writes to --out (gpu_check.json):
1. training steps at batch --batch (paper: 100) and --max-seq-length in bf16 autocast (AdamW, MNRL, the paper's
   prefixes: "Query: "/"Passage: " for XLM-R, "query: "/"passage: " for mE5), for XLM-R base's exact shape
   (12 layers, 768 hidden, vocabulary 250,002) and for multilingual-e5-small's: s/step, real and padded
   tokens/s, peak memory, and achieved TFLOP/s (6 x non-embedding parameters x padded tokens + the attention
   term 12 x layers x hidden x sequence length per token; Kaplan et al. 2020, PaLM appendix B) against the
   card's dense bf16 peak;
2. CachedMultipleNegativesRankingLoss (GradCache) at mini-batch 32 against MNRL on one batch, dropout off,
   fp32: losses equal to 1e-4 and the gradients' cosine; and its s/step in bf16;
3. the full-pool LAReQA kernel (hbkit.retrieval.ranking.rank_metrics) on CUDA against numba on CPU, multilingual
   setting of the full XQuAD-R (13,090 queries x 13,014 candidates): every metric equal to 1e-6 on
   embeddings rounded to a 2^-10 grid (every product then exact in fp32, so no tie can flip between the two
   BLAS), the largest difference on the raw embeddings, and the time ratio;
4. fp16 corpus encoding of XQuAD's paragraphs (passages of ~150 words) in passages/s and tokens/s;
5. ``trainer_path``: hbkit's own trainer (``hbkit.train.train``: sampler, collator, SentenceTransformerTrainer, MNRL,
   the step log) on the same shapes and batch, plain and with each option of TRAINER_VARIANTS (fused AdamW,
   batches padded to a multiple of 64 tokens, the collator in 2 dataloader workers): s/step (mean and median), the ratio to
   the bare loop of 1., the share of the bf16 peak (the bare loop's FLOPs per step at the trainer's time), peak
   memory, and a torch.profiler summary (top CUDA kernels and CPU ops, GPU idle share). ``--no-trainer`` skips it.

`--dry-run` runs every part at tiny sizes on CPU (torch's CPU path stands in for CUDA), so CI keeps it working.

Run: python benchmarks/gpu_check.py [--out runs/gpu_check.json] [--dry-run]
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

#: dense bf16 peak (NVIDIA datasheets, without sparsity), by a substring of torch.cuda.get_device_name()
PEAK_BF16 = (("H200", 989e12), ("H100 PCIe", 756e12), ("H100", 989e12), ("A100", 312e12), ("L40S", 362e12),
             ("A10G", 70e12), ("A10", 125e12), ("L4", 121e12))
#: (name, transformers class, config) of the encoders whose training step is measured
SHAPES = {
    "xlm-roberta-base": ("XLMRobertaModel", dict(vocab_size=250_002, hidden_size=768, num_hidden_layers=12,
                                                 num_attention_heads=12, intermediate_size=3072,
                                                 max_position_embeddings=514, type_vocab_size=1, pad_token_id=1,
                                                 bos_token_id=0, eos_token_id=2, layer_norm_eps=1e-5),
                         {"query": "Query: ", "passage": "Passage: "}),
    "multilingual-e5-small": ("BertModel", dict(vocab_size=250_037, hidden_size=384, num_hidden_layers=12,
                                                num_attention_heads=12, intermediate_size=1536,
                                                max_position_embeddings=512, type_vocab_size=2, pad_token_id=1),
                              {"query": "query: ", "passage": "passage: "}),
}
DRY = dict(num_hidden_layers=2, hidden_size=64, num_attention_heads=2, intermediate_size=128)


def peak_flops(name: str) -> float | None:
    return next((v for k, v in PEAK_BF16 if k in name), None)


def build_encoder(name: str, max_seq_length: int, dry: bool, device: str, embedded_ok: bool):
    """A sentence-transformers encoder (Transformer, mean pooling, Normalize) of ``name``'s exact shape with
    random weights, or the embedded multilingual-e5-small with its real weights where available."""
    import torch
    import transformers
    from transformers import XLMRobertaTokenizerFast

    from hbkit.encoders.load import EncoderError, embedded_model_path, mean_pooled, xlmr_tokenizer_file

    cls, cfg, prompts = SHAPES[name]
    if name == "multilingual-e5-small" and embedded_ok and not dry:
        try:
            from sentence_transformers import SentenceTransformer

            model = SentenceTransformer(str(embedded_model_path()), device=device)
            model.max_seq_length = max_seq_length
            return model, "embedded (real weights)"
        except (EncoderError, ImportError) as e:   # ImportError: the fallback build's packages are absent too
            print(f"  embedded multilingual-e5-small not available ({e}); random weights of its shape")
    cfg = {**cfg, **(DRY if dry else {})}
    config = getattr(transformers, cls.replace("Model", "Config"))(**cfg)
    torch.manual_seed(0)
    hf = getattr(transformers, cls)(config)
    with tempfile.TemporaryDirectory(prefix=f"gpu-check-{name}-") as tmp:   # loaded into memory, then removed
        hf.save_pretrained(tmp)
        XLMRobertaTokenizerFast(tokenizer_file=str(xlmr_tokenizer_file()), model_max_length=512).save_pretrained(tmp)
        return mean_pooled(Path(tmp), max_seq_length=max_seq_length, device=device, prompts=prompts), "random-init"


def non_embedding_params(model) -> int:
    auto = model[0].auto_model
    return sum(p.numel() for n, p in auto.named_parameters() if "embeddings" not in n and "pooler" not in n)


def load_texts(dry: bool):
    """XQuAD-R's queries, candidates, relevance (multilingual setting) and XQuAD paragraphs."""
    from hbkit.data.benchmarks import load_benchmark

    b = load_benchmark("xquad-r")
    if dry:
        b = b.subsample(20, seed=0)
    q, c = b.queries.reset_index(drop=True), b.candidates.reset_index(drop=True)
    cidx = {cid: i for i, cid in enumerate(c["id"])}
    rel = [np.array([cidx[x] for x in b.relevance[qid]]) for qid in q["id"]]
    # the training pair of a query: its answer sentence in the query's own language (xx-style) when present
    same = [next((i for i in r if c["lang"][i] == ql), r[0]) for r, ql in zip(rel, q["lang"])]
    pairs = list(zip(q["text"], c["text"].to_numpy()[same]))
    paragraphs = list(dict.fromkeys(c["context"])) if "context" in c else list(c["text"])
    return q, c, rel, pairs, paragraphs


def features(model, texts, device: str) -> dict:
    """The model's input features of ``texts`` on ``device`` (``preprocess`` in sentence-transformers >= 6)."""
    f = (model.preprocess if hasattr(model, "preprocess") else model.tokenize)(texts)
    return {k: v.to(device) if hasattr(v, "to") else v for k, v in f.items()}


def sync(device: str) -> None:
    import torch

    if device.startswith("cuda"):
        torch.cuda.synchronize()


def train_steps(model, pairs, batch: int, steps: int, warmup: int, device: str, loss_name: str = "mnrl",
                mini_batch: int = 32) -> dict:
    """Optimizer steps as the trainer takes them (AdamW, bf16 autocast on CUDA); timed after ``warmup``."""
    import torch
    from sentence_transformers.sentence_transformer.losses import (
        CachedMultipleNegativesRankingLoss,
        MultipleNegativesRankingLoss,
    )

    model.train()
    loss_fn = (MultipleNegativesRankingLoss(model) if loss_name == "mnrl"
               else CachedMultipleNegativesRankingLoss(model, mini_batch_size=mini_batch, show_progress_bar=False))
    opt = torch.optim.AdamW(model.parameters(), lr=3e-5, weight_decay=0.01)
    rng = np.random.default_rng(0)
    qp, pp = model.prompts["query"], model.prompts["passage"]
    cuda = device.startswith("cuda")
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    real = padded = 0
    times = []
    L, H = model[0].auto_model.config.num_hidden_layers, model[0].auto_model.config.hidden_size
    attn = 0.0
    for i in range(warmup + steps):
        idx = rng.choice(len(pairs), size=batch, replace=False)
        fq = features(model, [qp + pairs[j][0] for j in idx], device)
        fp = features(model, [pp + pairs[j][1] for j in idx], device)
        sync(device)
        t = time.perf_counter()
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=cuda):
            loss = loss_fn([fq, fp], None)
            loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        sync(device)
        if i >= warmup:
            times.append(time.perf_counter() - t)
            for f in (fq, fp):
                real += int(f["attention_mask"].sum())
                padded += int(f["attention_mask"].numel())
                attn += 12 * L * H * f["attention_mask"].shape[1] * f["attention_mask"].numel()
    secs = float(np.sum(times))
    flops = 6 * non_embedding_params(model) * padded + attn
    return {"loss": loss_name, "batch": batch, "steps": steps, "s_per_step": secs / steps,
            "s_per_step_median": float(np.median(times)), "s_per_step_min": float(np.min(times)),
            "s_per_step_max": float(np.max(times)), "step_times": [round(x, 4) for x in times], "tokens_per_s": real / secs, "padded_tokens_per_s": padded / secs,
            "mean_padded_len": padded / (2 * batch * steps), "tflops_per_s": flops / secs / 1e12,
            "peak_memory_gib": torch.cuda.max_memory_allocated() / 2 ** 30 if cuda else None}


#: the trainer paths timed, by name: TrainConfig options over the default path (plain AdamW, batches padded to their
#: longest text, the collator in the training process). Each is behind a TrainConfig option that a CPU test covers
#: (tests/test_training.py); what a GPU measures here decides the paper profile's defaults.
TRAINER_VARIANTS = {
    "adamw_torch": {},
    "adamw_torch_fused": {"optim": "adamw_torch_fused"},
    "fused+pad64": {"optim": "adamw_torch_fused", "pad_to_multiple_of": 64},
    "fused+pad64+workers2": {"optim": "adamw_torch_fused", "pad_to_multiple_of": 64, "dataloader_workers": 2},
}


def trainer_path(model, batch: int, steps: int, warmup: int, max_seq_length: int, options: dict, dry: bool,
                 profile_steps: int = 3) -> dict:
    """hbkit's real training path on the same shape: ``hbkit.train.train`` (HybridBatchSampler over XQuAD's
    training pairs in six languages, PairCollator tokenising in the main process, SentenceTransformerTrainer,
    MNRL, the per-step log), ``precision="auto"`` (bf16 on a GPU that has it). Wall time between consecutive
    optimizer steps (the next batch's sampling and tokenising count), the step times after ``warmup``, and a
    ``torch.profiler`` summary of ``profile_steps`` steps after them: the top CUDA kernels and CPU ops by self
    time and the GPU's idle share of those steps' wall time. ``options``: TrainConfig fields over the default
    path (:data:`TRAINER_VARIANTS`)."""
    import torch
    from transformers import TrainerCallback

    from hbkit.data.benchmarks import parallel_pairs
    from hbkit.train.config import TrainConfig
    from hbkit.train.trainer import train

    cuda = torch.cuda.is_available() and not dry
    pairs = parallel_pairs(languages=["en", "de", "es", "ar", "zh", "ru"])
    marks: list[float] = []
    prof = {}

    class Timer(TrainerCallback):
        def on_step_begin(self, args, state, control, **kw):
            if state.global_step == warmup + steps and profile_steps:
                acts = [torch.profiler.ProfilerActivity.CPU] + ([torch.profiler.ProfilerActivity.CUDA] if cuda else [])
                prof["p"] = torch.profiler.profile(activities=acts)
                prof["p"].__enter__()
                prof["t0"] = time.perf_counter()

        def on_step_end(self, args, state, control, **kw):
            if cuda:
                torch.cuda.synchronize()
            marks.append(time.perf_counter())
            if "p" in prof and state.global_step == warmup + steps + profile_steps:
                prof["wall"] = time.perf_counter() - prof["t0"]
                prof["p"].__exit__(None, None, None)

    if cuda:
        torch.cuda.reset_peak_memory_stats()
    cfg = TrainConfig(strategy="hybrid", batch_size=batch, max_steps=warmup + steps + profile_steps + 1,
                      save_steps=10 ** 6, max_seq_length=max_seq_length, seed=0,
                      training_args={"save_strategy": "no"}, **options)
    with tempfile.TemporaryDirectory(prefix="gpu-check-trainer-") as d:
        train(model, pairs, cfg, Path(d) / "run", resume=False, progress=False, callbacks=[Timer()])
    times = np.diff(marks)[warmup:warmup + steps]
    out = {"path": "hbkit.train.train", "optim": cfg.optim, "options": dict(options), "batch": batch,
           "steps": int(len(times)),
           "s_per_step": float(np.mean(times)), "s_per_step_median": float(np.median(times)),
           "step_times": [round(float(x), 4) for x in times],
           "peak_memory_gib": torch.cuda.max_memory_allocated() / 2 ** 30 if cuda else None}
    if "p" in prof and "wall" in prof:
        ev = prof["p"].key_averages()
        key = "self_device_time_total" if cuda else "self_cpu_time_total"
        top = sorted(ev, key=lambda e: getattr(e, key, 0), reverse=True)[:10]
        out["profile"] = {"steps": profile_steps, "wall_s": prof["wall"],
                          "top": [{"name": e.key, "self_s": getattr(e, key, 0) / 1e6, "calls": e.count} for e in top],
                          "top_cpu": [{"name": e.key, "self_s": e.self_cpu_time_total / 1e6, "calls": e.count} for e in
                                      sorted(ev, key=lambda e: e.self_cpu_time_total, reverse=True)[:10]]}
        if cuda:
            busy = sum(getattr(e, "self_device_time_total", 0) for e in ev) / 1e6
            out["profile"]["gpu_busy_s"] = busy
            out["profile"]["gpu_idle_share"] = max(0.0, 1 - busy / prof["wall"])
    return out


def cached_equals_mnrl(model, pairs, batch: int, mini_batch: int, device: str) -> dict:
    """Loss and gradients of GradCache (CachedMNRL, mini-batch ``mini_batch``) against MNRL on one batch (fp32,
    dropout off, so both see the same network)."""
    import torch
    from sentence_transformers.sentence_transformer.losses import (
        CachedMultipleNegativesRankingLoss,
        MultipleNegativesRankingLoss,
    )

    model.eval()
    sub = pairs[:batch]
    qp, pp = model.prompts["query"], model.prompts["passage"]
    out, grads = {}, {}
    for name, fn in (("mnrl", MultipleNegativesRankingLoss(model)),
                     ("cached", CachedMultipleNegativesRankingLoss(model, mini_batch_size=mini_batch,
                                                                    show_progress_bar=False))):
        fq = features(model, [qp + q for q, _ in sub], device)
        fp = features(model, [pp + p for _, p in sub], device)
        model.zero_grad(set_to_none=True)
        loss = fn([fq, fp], None)
        loss.backward()
        out[name] = float(loss.detach())
        grads[name] = torch.cat([p.grad.detach().float().ravel() for p in model.parameters() if p.grad is not None])
    model.zero_grad(set_to_none=True)
    cos = float(torch.nn.functional.cosine_similarity(grads["mnrl"], grads["cached"], dim=0))
    return {"batch": batch, "mini_batch": mini_batch, "mnrl_loss": out["mnrl"], "cached_loss": out["cached"],
            "abs_diff": abs(out["mnrl"] - out["cached"]), "grad_cosine": cos,
            "equal_1e-4": abs(out["mnrl"] - out["cached"]) <= 1e-4}


def encode(model, texts, prompt: str, batch: int, device: str) -> tuple[np.ndarray, float, int]:
    import torch

    model.eval()
    sync(device)
    t = time.perf_counter()
    with torch.autocast("cuda", dtype=torch.float16, enabled=device.startswith("cuda")):
        E = model.encode([prompt + x for x in texts], batch_size=batch, convert_to_numpy=True,
                         normalize_embeddings=True, show_progress_bar=False)
    sync(device)
    secs = time.perf_counter() - t
    tokens = sum(len(x) for x in model.tokenizer([prompt + x for x in texts], truncation=True,
                                                 max_length=model.max_seq_length)["input_ids"])
    return E.astype(np.float32), secs, tokens


def kernel_check(Q: np.ndarray, C: np.ndarray, rel, q_lang, c_lang, gpu: str) -> dict:
    """rank_metrics on ``gpu`` against numba on CPU: equal to 1e-6 on grid-rounded embeddings; times."""
    from hbkit.retrieval.ranking import rank_metrics

    rank_metrics(Q[:8], C, rel[:8], q_lang=q_lang[:8], c_lang=c_lang, device="cpu")   # numba compile, not timed
    rank_metrics(Q[:8], C, rel[:8], q_lang=q_lang[:8], c_lang=c_lang, device=gpu)     # CUDA context, not timed
    res = {"queries": len(Q), "pool": len(C)}
    for label, (q, c) in (("grid", (np.round(Q * 1024) / 1024, np.round(C * 1024) / 1024)), ("raw", (Q, C))):
        out, secs = {}, {}
        for dev in ("cpu", gpu):
            sync(gpu)
            t = time.perf_counter()
            out[dev] = rank_metrics(q.astype(np.float32), c.astype(np.float32), rel, q_lang=q_lang, c_lang=c_lang,
                                    device=dev)
            sync(gpu)
            secs[dev] = time.perf_counter() - t
        diff = max(float(np.nanmax(np.abs(out["cpu"][m] - out[gpu][m]))) if np.isfinite(out["cpu"][m]).any() else 0.0
                   for m in out["cpu"])
        nan_same = all(np.array_equal(np.isnan(out["cpu"][m]), np.isnan(out[gpu][m])) for m in out["cpu"])
        res[label] = {"max_abs_diff": diff, "nan_pattern_equal": nan_same, "cpu_numba_s": secs["cpu"],
                      f"{gpu}_s": secs[gpu], "cpu_over_gpu": secs["cpu"] / secs[gpu]}
    res["equal_1e-6"] = res["grid"]["max_abs_diff"] <= 1e-6 and res["grid"]["nan_pattern_equal"]
    return res


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default="runs/gpu_check.json", help="where to write the measurements (JSON)")
    ap.add_argument("--dry-run", action="store_true", help="tiny sizes on CPU: checks that the script works")
    ap.add_argument("--batch", type=int, default=100, help="pairs per training step (the paper: 100)")
    ap.add_argument("--max-seq-length", type=int, default=128, help="training truncation length in tokens")
    ap.add_argument("--steps", type=int, default=30, help="timed training steps per encoder")
    ap.add_argument("--warmup", type=int, default=10, help="untimed steps first (kernel selection, allocator)")
    ap.add_argument("--mini-batch", type=int, default=32, help="CachedMNRL mini-batch")
    ap.add_argument("--no-trainer", action="store_true", help="leave out hbkit's trainer path (trainer_path)")
    a = ap.parse_args(argv)
    for k in ("batch", "max_seq_length", "steps", "mini_batch", "warmup"):
        if getattr(a, k) < 1:
            ap.error(f"--{k.replace('_', '-')} must be >= 1")
    import torch

    cuda = torch.cuda.is_available()
    if not cuda and not a.dry_run:
        sys.exit("gpu_check: no CUDA device is visible (torch.cuda.is_available() is False); run it on a GPU "
                 "machine, or pass --dry-run for the tiny CPU version")
    dev, gpu = ("cuda", "cuda") if cuda and not a.dry_run else ("cpu", "torch-cpu")
    batch, steps, warm = (8, 2, 1) if a.dry_run else (a.batch, a.steps, a.warmup)
    name = torch.cuda.get_device_name() if cuda else platform.processor() or "cpu"
    report = {"device": name, "dry_run": a.dry_run, "torch": torch.__version__, "cuda": torch.version.cuda,
              "bf16": bool(cuda and torch.cuda.is_bf16_supported()), "peak_bf16_tflops": (peak_flops(name) or 0) / 1e12
              or None, "max_seq_length": a.max_seq_length, "train": {}, "started": time.strftime("%Y-%m-%d %H:%M:%S")}
    if cuda:
        report["gpu_memory_gib"] = torch.cuda.get_device_properties(0).total_memory / 2 ** 30
    torch.backends.cuda.matmul.allow_tf32 = False      # fp32 products stay fp32 (the kernel check needs it)
    t0 = time.perf_counter()
    q, c, rel, pairs, paragraphs = load_texts(a.dry_run)
    print(f"{name}: {len(q)} queries, {len(c)} candidates, {len(pairs)} training pairs, {len(paragraphs)} paragraphs")
    for shape in SHAPES:
        model, weights = build_encoder(shape, a.max_seq_length, a.dry_run, dev, embedded_ok=True)
        r = train_steps(model, pairs, batch, steps, warm, dev)
        r["weights"] = weights
        r["non_embedding_params"] = non_embedding_params(model)
        if report["peak_bf16_tflops"]:
            r["mfu"] = r["tflops_per_s"] / report["peak_bf16_tflops"]
        report["train"][shape] = r
        print(f"  train {shape} ({weights}): {r['s_per_step']:.3f} s/step (median {r['s_per_step_median']:.3f}) at batch {batch}, "
              f"{r['tokens_per_s']:,.0f} tokens/s, {r['tflops_per_s']:.1f} TFLOP/s, peak {r['peak_memory_gib']} GiB")
        if not a.no_trainer:
            report.setdefault("trainer_path", {})[shape] = {}
            for variant, options in TRAINER_VARIANTS.items():
                t = trainer_path(build_encoder(shape, a.max_seq_length, a.dry_run, dev, embedded_ok=True)[0], batch,
                                 steps, warm, a.max_seq_length, options, a.dry_run, 1 if a.dry_run else 3)
                t["over_bare_loop"] = t["s_per_step_median"] / r["s_per_step_median"]
                if r.get("mfu"):   # the bare loop's FLOPs per step at the trainer's time (same shapes and batch)
                    t["mfu"] = r["mfu"] * r["s_per_step"] / t["s_per_step"]
                report["trainer_path"][shape][variant] = t
                print(f"  hbkit trainer {shape} ({variant}): {t['s_per_step']:.3f} s/step (median "
                      f"{t['s_per_step_median']:.3f}) = {t['over_bare_loop']:.2f}x the bare loop"
                      + (f", {t['mfu']:.1%} of the bf16 peak" if t.get("mfu") else ""))
        if shape == "multilingual-e5-small":
            eq = cached_equals_mnrl(model, pairs, batch, min(a.mini_batch, batch // 2 or 1), dev)
            eq["timing"] = train_steps(model, pairs, batch, steps, warm, dev, "cached", min(a.mini_batch, batch))
            report["cached_mnrl"] = eq
            print(f"  CachedMNRL vs MNRL: |loss diff| {eq['abs_diff']:.2e} (grad cosine {eq['grad_cosine']:.6f}); "
                  f"{eq['timing']['s_per_step']:.3f} s/step (median {eq['timing']['s_per_step_median']:.3f})")
            model.half() if cuda else None
            Q, tq, _ = encode(model, q["text"].tolist(), model.prompts["query"], 256, dev)
            C, tc, _ = encode(model, c["text"].tolist(), model.prompts["passage"], 256, dev)
            P, tp, ntok = encode(model, paragraphs, model.prompts["passage"], 128, dev)
            report["encode_fp16"] = {"paragraphs": len(paragraphs), "passages_per_s": len(paragraphs) / tp,
                                     "tokens_per_s": ntok / tp, "mean_tokens": ntok / len(paragraphs),
                                     "xquad_r_texts_per_s": (len(q) + len(c)) / (tq + tc),
                                     "dtype": "float16" if cuda else "float32 (dry run)"}
            print(f"  encode: {report['encode_fp16']['passages_per_s']:,.0f} passages/s "
                  f"({report['encode_fp16']['mean_tokens']:.0f} tokens each)")
        del model
        if cuda:
            torch.cuda.empty_cache()
    k = kernel_check(Q, C, rel, q["lang"].to_numpy(), c["lang"].to_numpy(), gpu)
    report["kernel"] = k
    print(f"  kernel {k['queries']} x {k['pool']}: max diff {k['grid']['max_abs_diff']:.1e} (grid), "
          f"{k['raw']['max_abs_diff']:.1e} (raw); numba CPU {k['grid']['cpu_numba_s']:.2f} s, "
          f"{gpu} {k['grid'][gpu + '_s']:.2f} s: {k['grid']['cpu_over_gpu']:.1f}x")
    report["wall_s"] = time.perf_counter() - t0
    report["ok"] = bool(report["cached_mnrl"]["equal_1e-4"] and k["equal_1e-6"])
    out = Path(a.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(report, indent=2, default=float))
    tmp.replace(out)
    print(f"wrote {out} in {report['wall_s']:.0f} s; checks {'passed' if report['ok'] else 'FAILED'}")
    return report


if __name__ == "__main__":
    sys.exit(0 if main()["ok"] else 1)
