"""Sampler cost against the model step, and hbkit training throughput against plain sentence-transformers.

1) time per batch of HybridBatchSampler at batch 100 vs the embedded mE5-small's training step at batch 100
   (goal: sampler < 1% of the step);
2) steps/s through hbkit.train (hybrid sampler + PairCollator) vs SentenceTransformerTrainer with its default
   sampler on the same model, data size and batch size (goal: ratio >= 0.97).
Run: python benchmarks/bench_sampler.py [--steps 6] [--model hbkit/tiny]
"""
import argparse
import tempfile
import time

import datasets
import numpy as np
from transformers import TrainerCallback

from hbkit.data.benchmarks import parallel_pairs
from hbkit.encoders.load import load_encoder
from hbkit.train.config import TrainConfig
from hbkit.train.sampling import HybridBatchSampler
from hbkit.train.trainer import train

ap = argparse.ArgumentParser()
ap.add_argument("--steps", type=int, default=6)
ap.add_argument("--batch", type=int, default=100)
ap.add_argument("--model", default="intfloat/multilingual-e5-small")
a = ap.parse_args()

pairs = parallel_pairs()
s = HybridBatchSampler(pairs, a.batch, seed=0)
t = time.perf_counter(); n = 0
for ep in range(20):
    s.set_epoch(ep)
    for _ in s:
        n += 1
t_sampler = (time.perf_counter() - t) / n


class StepTimer(TrainerCallback):
    """Wall time of every optimizer step (forward, backward, update), appended to ``times``."""

    def __init__(self, times):
        self.times = times

    def on_step_begin(self, *args, **kw):
        self.t = time.perf_counter()

    def on_step_end(self, *args, **kw):
        self.times.append(time.perf_counter() - self.t)


def run_hbkit(tmp):
    cfg = TrainConfig(strategy="hybrid", batch_size=a.batch, max_steps=a.steps, save_steps=10**6, warmup_ratio=0,
                      lr=3e-5)
    model = load_encoder(a.model)
    times = []
    train(model, pairs, cfg, tmp + "/hb", progress=False, callbacks=[StepTimer(times)])
    return float(np.mean(times[1:]))  # the first step includes one-off set-up


def run_plain(tmp):
    from sentence_transformers import SentenceTransformerTrainer, SentenceTransformerTrainingArguments
    from sentence_transformers.sentence_transformer.losses import MultipleNegativesRankingLoss
    model = load_encoder(a.model)
    model.max_seq_length = 128
    model[0].auto_model.embeddings.word_embeddings.weight.requires_grad_(False)
    df = pairs.to_pandas()
    # same texts, same-language pairs, default sampler
    ds = datasets.Dataset.from_dict({"query": df["query"].tolist(), "passage": df["passage"].tolist()})
    args = SentenceTransformerTrainingArguments(output_dir=tmp + "/plain", max_steps=a.steps,
                                                per_device_train_batch_size=a.batch, learning_rate=3e-5,
                                                prompts=dict(model.prompts), report_to="none", save_strategy="no",
                                                disable_tqdm=True, use_cpu=True, logging_steps=1)
    times = []
    tr = SentenceTransformerTrainer(model=model, args=args, train_dataset=ds, loss=MultipleNegativesRankingLoss(model),
                                    callbacks=[StepTimer(times)])
    tr.train()
    return float(np.mean(times[1:]))


# alternate the two (plain, hbkit, plain, hbkit) and keep each one's best, so drift on a shared machine
# does not favour either side
plain, hb = float("inf"), float("inf")
for rep in range(2):
    with tempfile.TemporaryDirectory() as tmp:
        plain = min(plain, run_plain(tmp))
        hb = min(hb, run_hbkit(tmp))
print(f"model {a.model}, batch {a.batch}, {a.steps} steps each")
print(f"sampler: {t_sampler * 1e3:.3f} ms/batch; model step: {hb * 1e3:.0f} ms -> sampler share {100 * t_sampler / hb:.3f}% (goal < 1%)")
print(f"plain sentence-transformers: {plain:.2f} s/step; hbkit: {hb:.2f} s/step -> throughput ratio {plain / hb:.3f} (goal >= 0.97)")
