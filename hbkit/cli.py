"""Command line: argument parsing only; every command is one call into the modules."""
from __future__ import annotations

import argparse
import logging
import sys


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="hbkit", description="Hybrid batch training for multilingual retrieval")
    sub = p.add_subparsers(dest="cmd", required=True)

    d = sub.add_parser("data", help="data layer: summary or download")
    d.add_argument("action", choices=["summary", "download"])
    d.add_argument("names", nargs="*", default=["xquad", "xquad-r", "mlqa", "tydiqa"])
    d.add_argument("--data-dir")

    c = sub.add_parser("compare", help="train xx / xy / hybrid from one base encoder, evaluate, write the report")
    c.add_argument("--profile", default="auto", help="ci | cpu | gpu | auto (gpu when CUDA is available)")
    c.add_argument("--out", default="runs/compare")
    c.add_argument("--model")
    c.add_argument("--steps", type=int)
    c.add_argument("--batch-size", type=int)
    c.add_argument("--alphas", type=lambda s: [float(x) for x in s.split(",") if x], help="extra hybrid α, e.g. 0.25,0.75")
    c.add_argument("--seed", type=int)
    c.add_argument("--force", action="store_true", help="retrain and re-evaluate everything")
    c.add_argument("--data-dir")

    t = sub.add_parser("train", help="fine-tune one strategy on the XQuAD training articles")
    t.add_argument("--model", default="intfloat/multilingual-e5-small")
    t.add_argument("--strategy", choices=["xx", "xy", "hybrid"], default="hybrid")
    t.add_argument("--alpha", type=float, default=0.5)
    t.add_argument("--alpha-end", type=float)
    t.add_argument("--steps", type=int, default=40)
    t.add_argument("--batch-size", type=int, default=32)
    t.add_argument("--lr", type=float, default=3e-5)
    t.add_argument("--val-groups", type=int, default=0)
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--train-word-embeddings", action="store_true")
    t.add_argument("--dropout", type=float, help="override the encoder's dropout (0 for exact reproducibility checks)")
    t.add_argument("--max-groups", type=int, help="train on a seeded subset of this many parallel groups")
    t.add_argument("--no-resume", action="store_true", help="start afresh even if checkpoints exist")
    t.add_argument("--out", default="runs/train")
    t.add_argument("--data-dir")

    e = sub.add_parser("eval", help="evaluate an encoder zero-shot")
    e.add_argument("--model", default="intfloat/multilingual-e5-small")
    e.add_argument("--bench", default="xquad-r,mlqa-r,tydiqa")
    e.add_argument("--groups", type=int, help="subsample this many query groups per benchmark")
    e.add_argument("--out", default="runs/eval")
    e.add_argument("--save-embeddings", action="store_true", help="also write what was scored (.npy, ids, relevance)")
    e.add_argument("--data-dir")

    a = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    from pathlib import Path

    if a.cmd == "data":
        from . import data
        if a.action == "download":
            for n in a.names:
                print(data.download(n))
        else:
            import pandas as pd
            with pd.option_context("display.max_rows", 200, "display.width", 120):
                s = data.summary(a.data_dir)
                print(s.to_string(index=False))
                print(s.groupby("dataset")[["queries", "candidates"]].sum().to_string())
        return 0
    if a.cmd == "compare":
        from .compare import compare
        res = compare(a.profile, a.out, a.force, a.data_dir, model=a.model, steps=a.steps, batch_size=a.batch_size,
                      alphas=a.alphas, seed=a.seed)
        print(res["table"].to_string(index=False))
        print(f"\nwritten to {res['out']}/ (report.html, table.md, results.csv, significance.csv)")
        return 0
    if a.cmd == "train":
        from .data import parallel_pairs
        from .models import load_encoder
        from .training import TrainConfig, train
        cfg = TrainConfig(strategy=a.strategy, alpha=a.alpha, alpha_end=a.alpha_end, max_steps=a.steps,
                          batch_size=a.batch_size, lr=a.lr, val_groups=a.val_groups, seed=a.seed,
                          freeze_word_embeddings=not a.train_word_embeddings, dropout=a.dropout)
        pairs = parallel_pairs(data_dir=a.data_dir)
        if a.max_groups:
            from .compare import _subsample_pairs
            pairs = _subsample_pairs(pairs, a.max_groups, a.seed)
        print(train(load_encoder(a.model), pairs, cfg, a.out, resume=not a.no_resume))
        return 0
    if a.cmd == "eval":
        from .data import load_benchmark
        from .evaluation import EvalResult, evaluate
        from .models import load_encoder
        enc = load_encoder(a.model)
        out = Path(a.out)
        out.mkdir(parents=True, exist_ok=True)
        res = []
        for name in a.bench.split(","):
            b = load_benchmark(name, a.data_dir)
            if a.groups:
                b = b.subsample(a.groups)
            res.append(evaluate(enc, b, save_dir=out / "scored" if a.save_embeddings else None))
        r = EvalResult.concat(res)
        r.table.to_csv(out / "results.csv", index=False)
        r.to_json(out / "results.json")
        m = r.macro()
        print(m[m.metric.isin(["map", "rank_distance", "acc@10"])].pivot_table(
            index=["benchmark", "metric"], columns="setting", values="value").to_string(float_format="%.4f"))
        return 0
    return 1


if __name__ == "__main__":
    sys.exit(main())
