"""Wall time of the statistics layer on per-query results of the cpu profile's evaluation shape.

Run: python benchmarks/bench_stats.py [--repeat 1] [--n-perm 10000]
Synthetic per-query results: 3 seeds x 6 models (base once; xx, xy, hybrid, hybrid-a0.25, hybrid-a0.75) x
xquad-r-eval (120 groups x 11 languages: 11 mono, 110 cross, 11 multi cells, each query in each of its cells),
mlqa-r (150 groups in 2-4 of 7 languages) and tydiqa (300 single-language queries in 9 languages, mono + multi).
Times aggregate + effects + verdicts together (the goal: <= 10 s on 2 cores) and prints the share of the
goal, each part's time, and the peak RSS of the process.
"""
import argparse
import resource
import time

import numpy as np
import pandas as pd

from hbkit.analysis import claims, stats

GOAL_S = 10.0
XQ_LANGS = ["ar", "de", "el", "en", "es", "hi", "ru", "th", "tr", "vi", "zh"]
MLQA_LANGS = ["ar", "de", "en", "es", "hi", "vi", "zh"]
TYDI_LANGS = ["ar", "bn", "en", "fi", "id", "ko", "ru", "sw", "te"]
MODELS = {"base": None, "xx": 1.0, "xy": 0.0, "hybrid": 0.5, "hybrid-a0.25": 0.25, "hybrid-a0.75": 0.75}


def slots(rng) -> pd.DataFrame:
    """(benchmark, setting, qlang, dlang, query_id, group) of every scored query."""
    parts = []
    # xquad-r-eval: 120 groups, all 11 languages
    q = pd.DataFrame([(l, f"xq{g}:{l}", f"xq{g}") for g in range(120) for l in XQ_LANGS],
                     columns=["qlang", "query_id", "group"])
    parts.append(q.assign(benchmark="xquad-r-eval", setting="mono", dlang=q.qlang))
    parts += [q.assign(benchmark="xquad-r-eval", setting="cross", dlang=y)[lambda d: d.qlang != y] for y in XQ_LANGS]
    parts.append(q.assign(benchmark="xquad-r-eval", setting="multi", dlang="all"))
    # mlqa-r: 150 groups in 2-4 of 7 languages; cross cells only towards the group's other languages
    rows = []
    for g in range(150):
        langs = rng.choice(MLQA_LANGS, size=rng.integers(2, 5), replace=False)
        for x in langs:
            qid = f"ml{g}:{x}"
            rows += [("mono", x, x, qid, f"ml{g}"), ("multi", x, "all", qid, f"ml{g}")]
            rows += [("cross", x, y, qid, f"ml{g}") for y in langs if y != x]
    parts.append(pd.DataFrame(rows, columns=["setting", "qlang", "dlang", "query_id", "group"]).assign(benchmark="mlqa-r"))
    # tydiqa: 300 single-language queries (each its own group), mono + multi
    t = pd.DataFrame({"qlang": rng.choice(TYDI_LANGS, 300), "group": [f"ty{i}" for i in range(300)]})
    t["query_id"] = t["group"]
    parts += [t.assign(benchmark="tydiqa", setting="mono", dlang=t.qlang),
              t.assign(benchmark="tydiqa", setting="multi", dlang="all")]
    return pd.concat(parts, ignore_index=True)


def per_query(seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    s = slots(rng)
    difficulty = pd.Series(rng.uniform(0.2, 0.8, s["group"].nunique()), index=s["group"].unique())
    d = difficulty[s["group"]].to_numpy()
    multi = (s["setting"] == "multi").to_numpy()
    has_rd = multi & (s["benchmark"] != "tydiqa").to_numpy()
    frames = []
    for model, alpha in MODELS.items():
        for sd in ([np.nan] if alpha is None else [0, 1, 2]):
            gain = 0.0 if alpha is None else 0.05 + 0.03 * (1 - abs(alpha - 0.5) * 2) * multi
            v = np.clip(d + gain + rng.normal(0, 0.1, len(s)), 0, 1)
            frames.append(s.assign(model=model, strategy=None if alpha is None else model.split("-")[0],
                                   alpha=alpha, seed=sd, map=v, **{"acc@1": (v > 0.5).astype(float)},
                                   rank_distance=np.where(has_rd, np.round(300 * (1 - v) + rng.integers(0, 20, len(s))),
                                                          np.nan)))
    return pd.concat(frames, ignore_index=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--n-perm", type=int, default=10000)
    a = ap.parse_args()
    t = time.perf_counter()
    pq = per_query()
    print(f"synthetic per-query results: {len(pq):,} rows ({time.perf_counter() - t:.1f} s to build); "
          f"peak RSS so far {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB")
    for r in range(a.repeat):
        t0 = time.perf_counter()
        agg = stats.aggregate(pq)
        t1 = time.perf_counter()
        eff = stats.effects(pq, n_perm=a.n_perm)
        t2 = time.perf_counter()
        ver = claims.verdicts(eff)
        t3 = time.perf_counter()
        total = t3 - t0
        print(f"run {r + 1}: aggregate {t1 - t0:.2f} s ({len(agg)} rows), effects {t2 - t1:.2f} s ({len(eff)} rows), "
              f"verdicts {t3 - t2:.2f} s ({len(ver)} rows)")
        print(f"total {total:.2f} s = {total / GOAL_S:.0%} of the {GOAL_S:g} s goal "
              f"(n_perm={a.n_perm})")
    print(f"peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB")


if __name__ == "__main__":
    main()
