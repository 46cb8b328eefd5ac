"""hbkit.analysis.crossed, the strategy-level test: equal to statsmodels' MixedLM (REML, crossed variance components) on
small cases; its level, power at the reported MDE and interval coverage checked by simulation against a known
truth (3 and 8 seeds, seed-SE/cluster-SE ratios 0 to 4), also end to end through stats.effects."""
import numpy as np
import pandas as pd
import pytest

from hbkit.analysis import stats
from hbkit.analysis.crossed import crossed_test, expected_se_df, noncentrality, power_of, seeds_needed

G = 120


def simulate(S, ratio, n, delta=0.0, G=G, s_b=0.02, s_e=0.05, rng=None):
    """n experiments d[s, g] = delta + a_s + b_g + e_sg with sd(a)/sqrt(S) = ratio x the cluster part's SE."""
    rng = rng if rng is not None else np.random.default_rng(0)
    cluster_se2 = s_b ** 2 / G + s_e ** 2 / (S * G)
    s_a = np.sqrt(S * ratio ** 2 * cluster_se2)
    return (delta + s_a * rng.standard_normal((n, S, 1)) + s_b * rng.standard_normal((n, 1, G))
            + s_e * rng.standard_normal((n, S, G)))


def mixedlm(d):
    """statsmodels' REML fit of d[s, g] ~ 1 + (1|seed) + (1|cluster): (se of the intercept, s2_seed, s2_cluster,
    s2_resid)."""
    import statsmodels.api as sm

    S, G_ = d.shape
    df = pd.DataFrame({"y": d.ravel(), "seed": np.repeat(np.arange(S), G_), "cluster": np.tile(np.arange(G_), S),
                       "one": 1})
    m = sm.MixedLM.from_formula("y ~ 1", groups="one", data=df, re_formula="0",
                                vc_formula={"seed": "0 + C(seed)", "cluster": "0 + C(cluster)"})
    r = m.fit(reml=True, method=["lbfgs", "powell"], maxiter=2000)
    vc = dict(zip(m.exog_vc.names, r.vcomp))
    return float(r.bse["Intercept"]), vc["seed"], vc["cluster"], float(r.scale)


@pytest.mark.parametrize("S,Gs,seed", [(3, 12, 1), (4, 20, 2), (5, 15, 3)])
def test_equals_mixedlm_in_the_interior(S, Gs, seed):
    rng = np.random.default_rng(seed)
    d = 0.3 * rng.standard_normal((S, 1)) + 0.5 * rng.standard_normal((1, Gs)) + 0.2 * rng.standard_normal((S, Gs))
    r = crossed_test(d)
    se, s2_seed, s2_cl, s2_res = mixedlm(d)
    assert r["s2_seed"] > 0 and r["s2_cluster"] > 0
    assert float(r["s2_seed"]) == pytest.approx(s2_seed, rel=2e-3)
    assert float(r["s2_cluster"]) == pytest.approx(s2_cl, rel=2e-3)
    assert float(r["s2_resid"]) == pytest.approx(s2_res, rel=2e-3)
    assert float(r["se"]) == pytest.approx(se, rel=2e-3)


def test_equals_mixedlm_when_the_seed_component_is_at_zero():
    rng = np.random.default_rng(7)
    d = 0.5 * rng.standard_normal((1, 15)) + 0.2 * rng.standard_normal((3, 15))
    d -= d.mean(1, keepdims=True) - d.mean()        # seeds with identical means: REML's seed variance is 0
    r = crossed_test(d)
    se, s2_seed, _, s2_res = mixedlm(d)
    assert float(r["s2_seed"]) == 0 and s2_seed < 1e-3 * s2_res      # the optimiser stops next to the boundary
    assert float(r["se"]) == pytest.approx(se, rel=5e-3)
    assert float(r["df"]) == pytest.approx(14)       # MS_cluster alone: G - 1 degrees of freedom


def test_one_seed_has_no_strategy_level_test():
    r = crossed_test(np.random.default_rng(0).standard_normal((1, 30)))
    assert np.isfinite(r["diff"]) and all(np.isnan(r[k]) for k in ("se", "df", "p", "low", "high", "mde"))


@pytest.mark.parametrize("S", [3, 8])
def test_level_power_and_coverage_by_simulation(S):
    """Per-comparison rejection at 5% within [.03, .08]; power at the (average) reported MDE 80% +- 7%; t-interval
    coverage 95% +- 3%: 6,000 simulated experiments per cell (Monte-Carlo sd of a 5% rate: 0.003)."""
    rng = np.random.default_rng(100 + S)
    for ratio in (0, 0.5, 1, 2, 4):
        null = crossed_test(simulate(S, ratio, 6000, rng=rng))
        rate = float((null["p"] < 0.05).mean())
        cover = float(((null["low"] <= 0) & (null["high"] >= 0)).mean())
        mde = float(np.mean(null["mde"]))
        power = float((crossed_test(simulate(S, ratio, 6000, delta=mde, rng=rng))["p"] < 0.05).mean())
        assert 0.03 <= rate <= 0.08, (S, ratio, rate)
        assert 0.73 <= power <= 0.87, (S, ratio, power)
        assert 0.92 <= cover <= 0.98, (S, ratio, cover)


def test_the_old_normal_mde_overstated_power():
    """At 3 seeds with seeds dominating (df about 2), 2.80 standard errors give far less than 80% power; the
    reported MDE uses the test's own df."""
    assert noncentrality(2.0)[0] > 5.5 and noncentrality(1e5)[0] == pytest.approx(2.80, abs=0.01)
    assert power_of(2.80, 1.0, 2.0) < 0.5


def test_seeds_needed_gives_the_power_it_promises():
    comps = dict(s2_seed=4e-5, s2_cluster=4e-4, s2_resid=2.5e-3)
    n = seeds_needed(**comps, G=G, effect=0.01)
    se, df = expected_se_df(**comps, S=n, G=G)
    se1, df1 = expected_se_df(**comps, S=n - 1, G=G)
    assert power_of(0.01, se, df) >= 0.8 > power_of(0.01, se1, df1)
    rng = np.random.default_rng(5)
    d = (0.01 + np.sqrt(comps["s2_seed"]) * rng.standard_normal((4000, n, 1))
         + np.sqrt(comps["s2_cluster"]) * rng.standard_normal((4000, 1, G))
         + np.sqrt(comps["s2_resid"]) * rng.standard_normal((4000, n, G)))
    assert 0.74 <= float((crossed_test(d)["p"] < 0.05).mean()) <= 0.9
    assert seeds_needed(**comps, G=G, effect=0.0) is None
    assert seeds_needed(1.0, 0.0, 0.0, G=G, effect=1e-4, max_seeds=20) is None


def _per_query(rng, S, seed_sd, n_groups=60, langs=("en", "de", "es"), effect=0.0):
    """Per-query results of base, xx and hybrid: each group in a 2-group cluster, mono and multi cells."""
    rows = []
    groups = [f"g{i:03d}" for i in range(n_groups)]
    diff_g = rng.normal(0, 0.02, n_groups)          # hybrid-by-group interaction
    for m in ("xx", "hybrid"):
        for s in range(S):
            shift = rng.normal(0, seed_sd)
            for st, cells in (("mono", [(l, l) for l in langs]), ("multi", [(l, "all") for l in langs])):
                for x, y in cells:
                    v = 0.5 + shift + rng.normal(0, 0.05, n_groups) + (diff_g + effect if m == "hybrid" else 0)
                    rows.append(pd.DataFrame({"model": m, "strategy": m, "alpha": 0.5, "seed": s, "benchmark": "t",
                                              "setting": st, "qlang": x, "dlang": y,
                                              "query_id": [f"{x}:{g}" for g in groups], "group": groups,
                                              "cluster": [f"c{i // 2}" for i in range(n_groups)], "map": v}))
    return pd.concat(rows, ignore_index=True)


def test_end_to_end_null_through_effects():
    """The plumbing (per-query rows -> cluster contributions -> the test) keeps the level: 3 seeds with a seed
    component, no true effect, 300 experiments (loose band: Monte-Carlo sd 0.013)."""
    rng = np.random.default_rng(11)
    p = []
    for _ in range(300):
        eff = stats.effects(_per_query(rng, 3, seed_sd=0.01), contrasts=["hybrid - xx"], metrics=("map",), n_perm=1)
        assert (eff.n_groups == 30).all()                    # clusters, not groups, are the units
        p += eff.p.tolist()
    rate = float(np.mean(np.array(p) < 0.05))
    assert 0.02 <= rate <= 0.10, rate


def _real_shape(S, G, ratio, rc, n, rng, delta=0.0):
    """n experiments at the cpu evidence's shapes: s2_cluster 1e-3, s2_resid = rc x that, the seed part's SE =
    ratio x the cluster part's SE (results/cpu/effects.csv: rc 0.07-8, ratios 0-3.7)."""
    s2b, s2e = 1e-3, rc * 1e-3
    s2a = S * ratio ** 2 * (s2b / G + s2e / (S * G))
    return (delta + np.sqrt(s2a) * rng.standard_normal((n, S, 1)) + np.sqrt(s2b) * rng.standard_normal((n, 1, G))
            + np.sqrt(s2e) * rng.standard_normal((n, S, G)))


def test_level_at_the_real_shapes_and_why_two_seeds_are_refused():
    """The README's level range, simulated at the real shapes (56 and 145 clusters, residual/cluster 0.25 and 3):
    8 seeds 0.03-0.065 over seed/cluster SE ratios 0-4; 3 seeds at most 0.09 (0.08 measured where seeds dominate);
    2 seeds above 0.09 where seeds dominate, which is why a verdict needs MIN_SEEDS = 3 and the plan starts there.
    4,000 experiments per cell (Monte-Carlo sd of a 5% rate: 0.0034)."""
    from hbkit.analysis.crossed import MIN_SEEDS
    rng = np.random.default_rng(29)
    rates = {}
    for S in (2, 3, 8):
        for G_ in (56, 145):
            for rc in (0.25, 3.0):
                for ratio in (0, 1, 2, 4):
                    rates[S, G_, rc, ratio] = float((crossed_test(_real_shape(S, G_, ratio, rc, 4000, rng))["p"]
                                                     < 0.05).mean())
    eight = [v for k, v in rates.items() if k[0] == 8]
    three = [v for k, v in rates.items() if k[0] == 3]
    assert 0.03 <= min(eight) and max(eight) <= 0.065, rates
    assert 0.025 <= min(three) and max(three) <= 0.09, rates
    assert min(v for k, v in rates.items() if k[0] == 2 and k[3] >= 2) > 0.09, rates   # the reason for the floor
    assert MIN_SEEDS == 3
    # the plan never proposes 2 seeds, even where 2 would do at the expected mean squares
    assert power_of(0.05, *expected_se_df(0.0, 1e-4, 1e-4, S=2, G=145)) > 0.8
    assert seeds_needed(0.0, 1e-4, 1e-4, G=145, effect=0.05) == 3


def test_a_constant_difference_has_se_zero():
    """Every cell differing by the same amount leaves only rounding in the mean squares (se 4e-19 before): se is 0,
    p 0, and a zero difference has p 1."""
    r = crossed_test(np.full((3, 40), 0.0123))
    assert float(r["se"]) == 0 and float(r["p"]) == 0 and float(r["mde"]) == 0
    z = crossed_test(np.zeros((3, 40)))
    assert float(z["se"]) == 0 and float(z["p"]) == 1
    near = crossed_test(0.0123 + 1e-6 * np.random.default_rng(0).standard_normal((3, 40)))
    assert float(near["se"]) > 0 and float(near["p"]) < 1e-6      # a real, tiny spread is still a spread


def test_the_plan_at_the_upper_bound_keeps_its_power_where_the_estimate_does_not():
    """Run as a procedure: an 8-seed pilot's components plan the seeds for an effect, and the plan is judged at the
    true components. At the point estimate about 3 in 10 pilots leave the realised power below 0.70 (the audit: 29%);
    at the upper 95% bound of the seed variance (seed_variance_upper) at most 1 in 10 do."""
    from hbkit.analysis.crossed import seed_variance_upper
    true = dict(s2_seed=2.3e-5, s2_cluster=3.1e-4, s2_resid=2.6e-3)     # hybrid - xy, MLQA-R mono (results/cpu)
    G_, effect = 145, 0.01
    rng = np.random.default_rng(3)
    d = (np.sqrt(true["s2_seed"]) * rng.standard_normal((400, 8, 1))
         + np.sqrt(true["s2_cluster"]) * rng.standard_normal((400, 1, G_))
         + np.sqrt(true["s2_resid"]) * rng.standard_normal((400, 8, G_)))
    r = crossed_test(d)
    low_est, low_up = [], []
    for i in range(400):
        comps = (float(r["s2_seed"][i]), float(r["s2_cluster"][i]), float(r["s2_resid"][i]))
        up = (seed_variance_upper(comps[0], comps[2], 8, G_), *comps[1:])
        assert up[0] >= comps[0]
        for c, out in ((comps, low_est), (up, low_up)):
            n = seeds_needed(*c, G=G_, effect=effect, max_seeds=400)
            out.append(n is not None and power_of(effect, *expected_se_df(**true, S=n, G=G_)) < 0.70)
    assert np.mean(low_est) > 0.15, np.mean(low_est)
    assert np.mean(low_up) <= 0.10, np.mean(low_up)
    assert np.isnan(seed_variance_upper(1e-4, 1e-3, 1, G_))


def test_power_of_a_large_effect_is_one_not_nan():
    """scipy's non-central t lower tail underflows to NaN for noncentrality above about 10; the power there is 1
    (it once made seeds_needed skip a seed count whose power was 1, planning 7 seeds where 3 do)."""
    assert float(power_of(0.043, 0.0039, 12.0)) == pytest.approx(1.0)
    assert np.isfinite(power_of(np.array([0.01, 0.05, 0.5]), 0.004, 5.0)).all()
    assert seeds_needed(7.7e-6, 5.4e-4, 5.4e-4, G=56, effect=0.043) == 3
