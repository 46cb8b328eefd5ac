"""The paper's grid for one encoder with submitit: one task per shard, one GPU each, one shared run folder.

    pip install submitit
    python docs/cluster/grid_submitit.py --model FacebookAI/xlm-roberta-base --out runs/paper-xlmr --tasks 16

Each task calls ``hbkit.compare(..., shard="i/N")``; the last one to finish aggregates. A pre-empted task is
requeued by submitit (``checkpoint`` below) and resumes its model from the last training checkpoint.
"""
import argparse

import submitit

import hbkit


class Shard:
    def __init__(self, model: str, out: str, n: int):
        self.model, self.out, self.n = model, out, n

    def __call__(self, i: int) -> str:
        res = hbkit.compare("paper", self.out, model=self.model, shard=f"{i}/{self.n}",
                            progress=False)
        return "aggregated" if res.get("complete") else res["message"]

    def checkpoint(self, i: int) -> submitit.helpers.DelayedSubmission:   # pre-empted: requeue, then resume
        return submitit.helpers.DelayedSubmission(self, i)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="FacebookAI/xlm-roberta-base")
    ap.add_argument("--out", default="runs/paper-xlm-roberta-base")
    ap.add_argument("--tasks", type=int, default=16, help="array size (16: the base model and 15 trained ones)")
    ap.add_argument("--partition", default=None)
    a = ap.parse_args()
    ex = submitit.AutoExecutor(folder="logs/submitit")
    ex.update_parameters(gpus_per_node=1, tasks_per_node=1, cpus_per_task=8, timeout_min=240,
                         slurm_partition=a.partition, slurm_array_parallelism=a.tasks)
    jobs = ex.map_array(Shard(a.model, a.out, a.tasks), range(a.tasks))
    for j in jobs:
        print(j.job_id, j.result())


if __name__ == "__main__":
    main()
