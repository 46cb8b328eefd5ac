"""The paper's grid on 1, 8 and 64 GPUs, one model per GPU (``hbkit compare --devices`` / ``--shard``), from a
measured ``make gpu-check`` step time.

The grid: 3 encoders x 5 strategy/α runs (xx, xy, hybrid at α 0.25, 0.5, 0.75) x 3 seeds = 45 models. XLM-R base
and LaBSE (both 12 layers x 768) take the measured XLM-R base step; multilingual-e5 takes the measured mE5-small
shape's. Each model runs ``--steps`` steps (the paper profile early-stops; 3,500 is the projection of the README's
"Cost, on paper", 30,000 its cap). Models are independent, so G GPUs take them greedily, longest first: the wall
time is that schedule's makespan. Training only: evaluation and start-up come on top.

    python benchmarks/grid_cost.py                      # results/gpu/gpu_check-h200.json
    python benchmarks/grid_cost.py --check results/gpu/gpu_check-h100.json --stat s_per_step_median
"""
from __future__ import annotations

import argparse
import heapq
import json
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ENCODERS = {"XLM-R base": "xlm-roberta-base", "LaBSE": "xlm-roberta-base", "mE5": "multilingual-e5-small"}
RUNS_PER_ENCODER = 5 * 3   # strategy/α runs x seeds


def makespan(durations: list[float], gpus: int) -> float:
    """Wall time of independent jobs on ``gpus`` workers that each take the next job when free (longest first)."""
    free = [0.0] * min(gpus, len(durations))
    heapq.heapify(free)
    for d in sorted(durations, reverse=True):
        heapq.heappush(free, heapq.heappop(free) + d)
    return max(free) if free else 0.0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--check", default=str(ROOT / "results" / "gpu" / "gpu_check-h200.json"),
                    help="a gpu_check.json written by `make gpu-check`")
    ap.add_argument("--stat", default="s_per_step", choices=["s_per_step", "s_per_step_median"],
                    help="the mean step (default: slow steps at new shapes included) or the median")
    ap.add_argument("--steps", type=int, nargs="+", default=[3500, 30000], help="steps per model")
    ap.add_argument("--gpus", type=int, nargs="+", default=[1, 8, 64])
    a = ap.parse_args()
    check = json.loads(Path(a.check).read_text())
    step = {enc: check["train"][shape][a.stat] for enc, shape in ENCODERS.items()}
    print(f"{check['device']}, torch {check['torch']}, {Path(a.check).name} ({check.get('started', '?')}): "
          + ", ".join(f"{e} {s:.3f} s/step ({a.stat})" for e, s in step.items()))
    print(f"grid: {len(ENCODERS)} encoders x {RUNS_PER_ENCODER} runs = {len(ENCODERS) * RUNS_PER_ENCODER} models")
    print("| steps per model | " + " | ".join(f"{g} GPU{'s' if g > 1 else ''}" for g in a.gpus) + " | GPU-hours |")
    print("|---|" + "---|" * (len(a.gpus) + 1))
    for steps in a.steps:
        jobs = [s * steps for s in step.values() for _ in range(RUNS_PER_ENCODER)]
        cells = [f"{makespan(jobs, g) / 3600:.2f} h" for g in a.gpus]
        print(f"| {steps:,} | " + " | ".join(cells) + f" | {sum(jobs) / 3600:.1f} |")


if __name__ == "__main__":
    main()
