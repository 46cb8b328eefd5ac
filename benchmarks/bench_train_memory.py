"""Training memory on CPU: the cpu profile's model (embedded mE5-small, batch 32, frozen word embeddings, gradient
checkpointing) trained through ``hbkit.train`` in three settings, side by side in fresh processes, alternating:
glibc and torch as they come (4 kB pages: what hbkit did before), torch's huge pages for large tensors (what
``import hbkit`` now turns on, ``hbkit.core.env.torch_huge_pages``), and huge pages with large blocks served by mmap
(``HBKIT_LOW_MEMORY=1``, ``hbkit.core.env.large_blocks_from_mmap``).

    PYTHONPATH=$PWD OMP_WAIT_POLICY=PASSIVE HF_HUB_OFFLINE=1 python benchmarks/bench_train_memory.py \
        [--steps 6] [--repeats 2] [--threshold-mb 4]

glibc raises its mmap threshold each time a large block is freed, so the activations of a step come from its heaps
and, once freed, stay resident: the process's RSS climbs well above what is alive. torch's huge pages
(``THP_MEM_ALLOC_ENABLE=1``: large tensors page-aligned and ``madvise(MADV_HUGEPAGE)``) leave far less of that
resident, and cost no time. With a fixed mmap threshold as well, every block above it is mapped and unmapped, so
the RSS follows what is alive, at the price of fresh (zeroed) pages for each block. Printed: each setting's peak
RSS (``VmHWM``) during training and its median seconds per step after the first, the losses (equal: the same
arithmetic), and the ratios to the first setting.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def child(steps: int, threshold_mb: float, folder: str) -> None:
    import transformers

    from hbkit.core.env import large_blocks_from_mmap
    from hbkit.experiment.plan import plan, subsample_pairs
    from hbkit.experiment.profiles import profile
    from hbkit.experiment.stages import base_encoder, stage_data, train_config
    from hbkit.train.trainer import train

    if threshold_mb:
        large_blocks_from_mmap(int(threshold_mb * 2**20))
    import torch

    assert torch.ones(2**20).data_ptr() % 4096 == 0 or os.environ["THP_MEM_ALLOC_ENABLE"] != "1"
    cfg = {**profile("cpu"), "steps": steps}
    pairs, val = stage_data(cfg, None)[:2]
    encoder = base_encoder(cfg)
    run = next(r for r in plan(cfg) if r.strategy == "hybrid")
    ends, losses = [], []

    class Clock(transformers.TrainerCallback):
        def on_step_end(self, args, state, control, **kw):
            ends.append(time.perf_counter())

        def on_log(self, args, state, control, logs=None, **kw):
            if logs and "loss" in logs:
                losses.append(float(logs["loss"]))

    with open("/proc/self/clear_refs", "w") as fh:   # the peak from here on: training only
        fh.write("5")
    start = time.perf_counter()
    train(encoder, subsample_pairs(pairs, cfg["train_groups"], run.seed), train_config(run, cfg, val is not None),
          Path(folder), progress=False, callbacks=[Clock()], val_pairs=val, resume=False)
    from hbkit.core.env import peak_rss_mb
    steps_s = [b - a for a, b in zip([start, *ends], ends)]
    print(json.dumps({"peak_mb": peak_rss_mb(), "step_s": steps_s, "losses": losses}))


#: the settings, side by side: (name, THP_MEM_ALLOC_ENABLE, fixed mmap threshold in MB or 0)
SETTINGS = (
    ("before: glibc, 4 kB pages", "0", 0.0),
    ("huge pages (the default)", "1", 0.0),
    ("huge pages + HBKIT_LOW_MEMORY", "1", None),  # None: --threshold-mb
)


def run(steps: int, huge: str, threshold_mb: float) -> dict:
    env = {**os.environ, "TQDM_DISABLE": "1", "THP_MEM_ALLOC_ENABLE": huge}
    with tempfile.TemporaryDirectory() as folder:
        out = subprocess.run([sys.executable, __file__, "--child", str(steps), str(threshold_mb), folder],
                             capture_output=True, text=True, env=env)
    if out.returncode:
        sys.exit(out.stderr[-3000:])
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--steps", type=int, default=6, help="training steps per process (default 6)")
    ap.add_argument("--repeats", type=int, default=2, help="processes per setting, alternating (default 2)")
    ap.add_argument("--threshold-mb", type=float, default=4.0,
                    help="HBKIT_LOW_MEMORY's fixed mmap threshold (default 4 MB)")
    ap.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.child:
        return child(int(a.child[0]), float(a.child[1]), a.child[2])
    settings = [(n, h, a.threshold_mb if t is None else t) for n, h, t in SETTINGS]
    got: dict[str, list] = {n: [] for n, _, _ in settings}
    for _ in range(a.repeats):
        for name, huge, th in settings:
            got[name].append(run(a.steps, huge, th))
    summary = {}
    for name, rs in got.items():
        peak = max(r["peak_mb"] for r in rs)
        step = statistics.median(s for r in rs for s in r["step_s"][1:])
        summary[name] = (peak, step)
        print(f"{name:>30}: training peak RSS {peak:,.0f} MB, median {step:.2f} s/step after the first "
              f"({a.steps} steps x {len(rs)} processes); losses {[round(x, 6) for x in rs[0]['losses']]}")
    first = list(got.values())[0][0]["losses"]
    same = all(r["losses"] == first for rs in got.values() for r in rs)
    p0, s0 = summary[settings[0][0]]
    for name, (p, s) in list(summary.items())[1:]:
        print(f"{name} / before: peak {p / p0:.2f}x, time per step {s / s0:.2f}x")
    print(f"losses equal in every process: {same}")


if __name__ == "__main__":
    main()
