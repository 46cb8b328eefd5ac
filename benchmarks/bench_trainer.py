"""hbkit's trainer path against a bare training loop, on CPU: the overhead of the HF Trainer stack, the sampler,
the collator (tokenising in the main process) and the per-step logging, as a ratio that shows on any machine.

    PYTHONPATH=$PWD OMP_NUM_THREADS=2 HBKIT_DATA_DIR=../shared/data python benchmarks/bench_trainer.py \
        [--steps 24] [--batch 32] [--models tiny,embedded]

For each encoder (``tiny``: hbkit's 2-layer test encoder; ``embedded``: the packaged multilingual-e5-small, real
weights) and the same XQuAD training pairs (four languages), batch and ``max_seq_length``:

* **trainer**: ``hbkit.train.train`` (hybrid batches, PairCollator, SentenceTransformerTrainer, MNRL, the step log),
  wall time between consecutive optimizer steps (so the next batch's sampling and tokenising count);
* **trainer, fused AdamW**: the same with ``optim="adamw_torch_fused"`` (``TrainConfig.optim``);
* **bare loop**: the same model (dropout 0, at most 128 tokens, word embeddings frozen, as the trainer's run) and texts, tokenised in the loop (``model.tokenize``), forward of queries and
  passages, MNRL (scale 20), backward, ``torch.optim.AdamW`` step: nothing else.

The first ``--warmup`` steps of each are left out; medians and means of the rest are printed with the ratio
trainer / bare loop. On a GPU the same comparison is part of ``benchmarks/gpu_check.py`` (``trainer_path``).
"""
from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path


def step_times(encoder, pairs, batch: int, steps: int, optim: str) -> list[float]:
    from transformers import TrainerCallback

    from hbkit.train.config import TrainConfig
    from hbkit.train.trainer import train

    marks: list[float] = []

    class Timer(TrainerCallback):
        def on_step_end(self, args, state, control, **kw):
            marks.append(time.perf_counter())

    cfg = TrainConfig(strategy="hybrid", batch_size=batch, max_steps=steps, save_steps=steps + 1, dropout=0.0,
                      seed=0, optim=optim, training_args={"save_strategy": "no"})
    with tempfile.TemporaryDirectory() as d:
        train(encoder, pairs, cfg, Path(d) / "run", resume=False, progress=False, callbacks=[Timer()])
    return [b - a for a, b in zip(marks, marks[1:])]


def bare_times(encoder, pairs, batch: int, steps: int) -> list[float]:
    import numpy as np
    import torch

    queries, passages = list(pairs["query"]), list(pairs["passage"])
    rng = np.random.default_rng(0)
    model = encoder
    model.max_seq_length = min(model.max_seq_length or 128, 128)   # as the trainer sets it (TrainConfig's 128)
    for m in model.modules():   # dropout 0, as the trainer's run is set
        if isinstance(m, torch.nn.Dropout):
            m.p = 0.0
    model.train()
    params = [p for n, p in model.named_parameters() if "word_embeddings" not in n]
    for n, p in model.named_parameters():
        p.requires_grad_("word_embeddings" not in n)
    opt = torch.optim.AdamW(params, lr=3e-5, weight_decay=0.01)
    qp, pp = (model.prompts or {}).get("query", ""), (model.prompts or {}).get("passage", "")
    out = []
    for _ in range(steps):
        t0 = time.perf_counter()
        idx = rng.choice(len(queries), size=batch, replace=False)
        q = model.tokenize([qp + queries[i] for i in idx])
        p = model.tokenize([pp + passages[i] for i in idx])
        eq = model(q)["sentence_embedding"]
        ep = model(p)["sentence_embedding"]
        scores = torch.nn.functional.normalize(eq, dim=-1) @ torch.nn.functional.normalize(ep, dim=-1).T * 20.0
        loss = torch.nn.functional.cross_entropy(scores, torch.arange(batch))
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        out.append(time.perf_counter() - t0)
    return out


def summary(xs: list[float], warmup: int) -> tuple[float, float]:
    xs = xs[warmup:]
    return statistics.median(xs), statistics.fmean(xs)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--steps", type=int, default=24)
    ap.add_argument("--warmup", type=int, default=4)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--models", default="tiny,embedded")
    a = ap.parse_args()
    import torch

    from hbkit.data.benchmarks import parallel_pairs
    from hbkit.encoders.load import load_encoder, tiny_encoder

    pairs = parallel_pairs(languages=["en", "de", "es", "ar"])
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; {len(pairs):,} XQuAD training pairs; "
          f"batch {a.batch}, {a.steps} steps ({a.warmup} left out)")
    for name in a.models.split(","):
        make = (lambda: tiny_encoder(seed=0)) if name == "tiny" else (lambda: load_encoder("embedded", device="cpu"))
        rows = {"trainer": step_times(make(), pairs, a.batch, a.steps, "adamw_torch"),
                "trainer, fused AdamW": step_times(make(), pairs, a.batch, a.steps, "adamw_torch_fused"),
                "bare loop": bare_times(make(), pairs, a.batch, a.steps)}
        bare = summary(rows["bare loop"], a.warmup)
        print(f"\n{name}:")
        for k, v in rows.items():
            med, mean = summary(v, a.warmup)
            print(f"  {k:22s} median {med * 1e3:8.1f} ms/step, mean {mean * 1e3:8.1f} ms  = {med / bare[0]:.2f}x the bare "
                  f"loop (median), {mean / bare[1]:.2f}x (mean)")


if __name__ == "__main__":
    main()
