"""One encoder pair, one seed: the paired bootstrap over groups, and per-model intervals."""

from __future__ import annotations

import numpy as np
import pandas as pd


# --------------------------------------------------------------------------------------------------
# one encoder pair, one seed: the paired bootstrap over groups (moved from evaluation.py)
# --------------------------------------------------------------------------------------------------
def _cell_matrix(pq: pd.DataFrame, metric: str, groups: np.ndarray):
    gi = {g: i for i, g in enumerate(groups)}
    cells = list(pq.groupby(["qlang", "dlang"], sort=True).indices.items())
    V = np.zeros((len(cells), len(groups)))
    M = np.zeros((len(cells), len(groups)))
    for c, (_, idx) in enumerate(cells):
        sub = pq.iloc[idx]
        vals = sub[metric].to_numpy(dtype=float)
        ok = ~np.isnan(vals)
        cols = np.array([gi[g] for g in sub["group"].to_numpy()[ok]], dtype=int)
        np.add.at(V[c], cols, vals[ok])
        np.add.at(M[c], cols, 1.0)
    return V, M


def paired_bootstrap(
    a: pd.DataFrame,
    b: pd.DataFrame | None,
    metric: str = "map",
    setting: str = "multi",
    benchmark: str | None = None,
    n_boot: int = 1000,
    seed: int = 0,
) -> dict:
    """Paired bootstrap over query groups of the macro-averaged ``metric`` in ``setting``.

    Groups (parallel items) are resampled with replacement, so all translations of a question move
    together; each resample recomputes every cell mean and their macro average. One seed only:
    :func:`hbkit.analysis.stats.effects` is the seed-aware version, with the strategy-level test.

    Args:
        a: ``EvalResult.per_query`` of one encoder.
        b: the same for a second encoder on the same benchmark, or None for an interval of ``a``
            alone.
        metric: a per-query metric column (``map``, ``rank_distance``, ...).
        setting: ``mono``, ``cross`` or ``multi``.
        benchmark: the benchmark to keep, when the frames hold several.
        n_boot: bootstrap resamples.
        seed: the resampling seed.

    Returns:
        ``{"a", "b", "diff", "low", "high", "p"}``: the macro values, ``a - b`` with its 95%
            percentile
        interval, and a two-sided bootstrap p-value.

    Examples:
        >>> tuned_q, base_q = evaluate(tuned, bench).per_query, evaluate(base, bench).per_query
        >>> paired_bootstrap(tuned_q, base_q)["diff"]
    """

    def pick(df):
        df = df[(df["setting"] == setting)]
        return df[df["benchmark"] == benchmark] if benchmark else df

    a = pick(a)
    if b is not None:
        b = pick(b)
        key = ["qlang", "dlang", "query_id"]
        merged = a[key + ["group", metric]].merge(b[key + [metric]], on=key, suffixes=("_a", "_b"))
        if len(merged) != len(a) or len(merged) != len(b):
            raise ValueError("paired_bootstrap: the two results do not cover the same queries")
    else:
        merged = a[["qlang", "dlang", "query_id", "group", metric]].rename(
            columns={metric: f"{metric}_a"}
        )
    if merged.empty:
        raise ValueError(
            f"paired_bootstrap: no per-query values for setting={setting!r} metric={metric!r}"
        )
    groups = np.array(sorted(merged["group"].unique()))
    Va, M = _cell_matrix(merged, f"{metric}_a", groups)
    point = lambda V: float(np.mean(V.sum(1) / M.sum(1)))  # noqa: E731
    W = np.random.default_rng(seed).multinomial(
        len(groups), np.full(len(groups), 1 / len(groups)), size=n_boot
    )
    den = W @ M.T  # (n_boot, cells)

    def boot(V):
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.nanmean((W @ V.T) / den, axis=1)

    res = {"a": point(Va), "n_groups": len(groups), "metric": metric, "setting": setting}
    ba = boot(Va)
    if b is None:
        res.update(low=float(np.percentile(ba, 2.5)), high=float(np.percentile(ba, 97.5)))
        return res
    Vb, _ = _cell_matrix(merged, f"{metric}_b", groups)
    d = ba - boot(Vb)
    res.update(
        b=point(Vb),
        diff=res["a"] - point(Vb),
        low=float(np.percentile(d, 2.5)),
        high=float(np.percentile(d, 97.5)),
        p=float(min(1.0, 2 * min((d <= 0).mean(), (d >= 0).mean()))),
    )
    return res


def intervals(
    per_query: dict[str, pd.DataFrame],
    benchmark: str,
    metrics=("map",),
    settings=("mono", "cross", "multi"),
    n_boot: int = 1000,
    seed: int = 0,
) -> pd.DataFrame:
    """Macro value and 95% bootstrap interval (over query groups) per model, metric and setting, for
    one seed (``per_query``: model name -> ``EvalResult.per_query``).
    :func:`hbkit.analysis.stats.aggregate` is the version over seeds."""
    rows = []
    for model, pq in per_query.items():
        for metric in metrics:
            for setting in settings:
                sub = pq[(pq.benchmark == benchmark) & (pq.setting == setting)]
                if sub.empty or metric not in sub:
                    continue
                r = paired_bootstrap(
                    sub, None, metric, setting, benchmark, n_boot=n_boot, seed=seed
                )
                rows.append(
                    {
                        "model": model,
                        "benchmark": benchmark,
                        "setting": setting,
                        "metric": metric,
                        "value": r["a"],
                        "low": r["low"],
                        "high": r["high"],
                    }
                )
    return pd.DataFrame(rows)
