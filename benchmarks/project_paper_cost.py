"""Cost of the `paper` profile on one GPU: a PROJECTION from a measured CPU training step, not a GPU measurement.

Measured here: tokens per training pair (XLM-R tokenizer, E5 prompts, on the XQuAD training pairs, a stand-in
for SQuAD sentences) and the wall time of full-weight training steps of the embedded multilingual-e5-small at
batch 32 on this machine's CPU, giving its achieved FLOP/s with the usual 6 x (non-embedding parameters) x
tokens per training step (forward + backward; Kaplan et al. 2020).
Projected: the same FLOPs formula for XLM-R base at batch 100, divided by an effective GPU throughput =
peak dense BF16 (NVIDIA datasheets: H100 SXM 989 TFLOP/s, A100 312 TFLOP/s) x an assumed utilisation
(--mfu, default 0.3; small encoders at 128 tokens rarely reach more). Steps per epoch follow from SQuAD v1.1
train (87,599 questions); the steps to early stopping are an assumption stated in the output.

Run: HF_HUB_OFFLINE=1 python benchmarks/project_paper_cost.py [--steps 3] [--mfu 0.3]
"""
import argparse
import time

import numpy as np

SQUAD_TRAIN = 87_599          # questions in SQuAD v1.1 train = groups of squad-translate-train
GPUS = {"H100 SXM": 989e12, "A100": 312e12}
XLMR_BASE_NON_EMBEDDING = 85_054_464  # 12 layers x (4 x 768^2 + 2 x 768 x 3072) weights + biases/norms (~85M)


def non_embedding_params(model) -> int:
    auto = model[0].auto_model
    emb = sum(p.numel() for p in auto.get_input_embeddings().parameters())
    pos = sum(p.numel() for n, p in auto.named_parameters() if "position_embeddings" in n or "token_type" in n)
    return sum(p.numel() for p in auto.parameters()) - emb - pos


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--mfu", type=float, default=0.3)
    ap.add_argument("--steps-to-stop", type=int, default=3500,
                    help="assumed optimizer steps until early stopping (about 2 epochs to the best + patience)")
    a = ap.parse_args()
    import torch
    from sentence_transformers.sentence_transformer.losses import MultipleNegativesRankingLoss

    import hbkit

    model = hbkit.load_encoder("intfloat/multilingual-e5-small")
    pairs = hbkit.parallel_pairs().to_pandas()
    tok = model.tokenizer
    q = [len(tok(f"query: {t}", truncation=True, max_length=128)["input_ids"]) for t in pairs["query"][:2000]]
    p = [len(tok(f"passage: {t}", truncation=True, max_length=128)["input_ids"]) for t in pairs["passage"][:2000]]
    per_pair = float(np.mean(q) + np.mean(p))
    n_small = non_embedding_params(model)
    loss = MultipleNegativesRankingLoss(model)
    opt = torch.optim.AdamW(model.parameters(), lr=3e-5)
    B = 32
    rng = np.random.default_rng(0)
    times = []
    for s in range(a.steps + 1):
        idx = rng.choice(len(pairs), B, replace=False)
        feats = [model.tokenize([f"query: {t}" for t in pairs["query"].iloc[idx]]),
                 model.tokenize([f"passage: {t}" for t in pairs["passage"].iloc[idx]])]
        t0 = time.perf_counter()
        l = loss(feats, None)
        l.backward()
        opt.step()
        opt.zero_grad()
        if s:  # the first step warms up
            times.append(time.perf_counter() - t0)
    step_s = float(np.median(times))
    cpu_flops = 6 * n_small * per_pair * B / step_s
    print(f"measured: {per_pair:.1f} tokens per pair (query + passage); multilingual-e5-small "
          f"({n_small / 1e6:.1f}M non-embedding parameters), full-weight step at batch {B}: {step_s:.2f} s "
          f"on this CPU = {cpu_flops / 1e9:.1f} GFLOP/s achieved")
    flops_step = 6 * XLMR_BASE_NON_EMBEDDING * per_pair * 100
    steps_epoch = SQUAD_TRAIN // 100
    print(f"paper profile: {steps_epoch} steps per epoch (87,599 groups / batch 100); assumed steps to early stop: "
          f"{a.steps_to_stop} (best within about 2 epochs, then patience 3 x 500 steps)")
    print(f"XLM-R base, batch 100: {flops_step / 1e12:.2f} TFLOP per step; on this CPU that would take "
          f"{flops_step / cpu_flops / 60:.1f} min per step")
    for gpu, peak in GPUS.items():
        s = flops_step / (peak * a.mfu)
        model_h = s * a.steps_to_stop / 3600
        print(f"PROJECTION {gpu} at {a.mfu:.0%} of {peak / 1e12:.0f} TFLOP/s: {s * 1000:.0f} ms per step, "
              f"{model_h * 60:.0f} min per model to early stop, {15 * model_h:.1f} h for 15 models "
              f"(5 strategies/alphas x 3 seeds; evaluation excluded), {45 * model_h:.1f} h for the 3 encoders")


if __name__ == "__main__":
    main()
