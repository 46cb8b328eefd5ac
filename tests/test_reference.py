"""hbkit.analysis.reference: the shipped Table 1, its checks, and the views beside our results and effects."""
import numpy as np
import pandas as pd
import pytest

from hbkit.analysis import reference as R


def test_shipped_table_loads_with_its_header():
    path = R.shipped_reference_path()
    text = path.read_text()
    assert text.startswith("# Source: arXiv 2408.10536 Table 1") and "FULL XQuAD-R" in text
    assert "Roy et al. 2020" in text.split("source,encoder")[0] and "rank_distance = maximum rank distance" in text
    ref = R.load_reference(path)
    assert len(ref) == 52 and list(ref.columns) == list(R.REFERENCE_COLUMNS)
    assert ref.groupby("encoder").size().to_dict() == {"LaBSE": 24, "XLM-R": 24, "mBERT": 4}
    row = ref[(ref.encoder == "LaBSE") & (ref.model == "hybrid") & (ref.benchmark == "mlqa-r")
              & (ref.metric == "rank_distance")]
    assert row.value.tolist() == [195.0]
    assert ref[ref.metric == "map"].value.between(0, 1).all()


def test_default_reference_is_the_shipped_table_unless_overridden(tmp_path, monkeypatch):
    monkeypatch.delenv("HBKIT_REFERENCE", raising=False)
    assert len(R.default_reference()) == 52
    path = tmp_path / "mine.csv"
    path.write_text("source,encoder,model,benchmark,setting,metric,value\np,E,xx,mlqa-r,multi,map,0.5\n")
    monkeypatch.setenv("HBKIT_REFERENCE", str(path))
    assert len(R.default_reference()) == 1


def test_unknown_and_unrun_benchmarks_get_a_message(tmp_path):
    path = tmp_path / "ref.csv"
    path.write_text("source,encoder,model,benchmark,setting,metric,value\np,E,xx,xquad,multi,map,0.5\n")
    with pytest.raises(ValueError, match=r"row 1: benchmark 'xquad' is not one hbkit knows") as e:
        R.load_reference(path)
    assert str(path) in str(e.value)
    path.write_text("source,encoder,model,benchmark,setting,metric,value\n"
                    "p,E,xx,miracl-sw,multi,map,0.5\np,E,xy,miracl-sw,multi,map,0.6\np,E,xx,mlqa-r,multi,map,0.5\n"
                    "p,E,xx,xquad-r,multi,rank_distance,300\n")
    ref = R.load_reference(path)
    msg = R.reference_benchmarks_check(ref, ["xquad-r-eval", "mlqa-r", "tydiqa"])
    assert "miracl-sw (2 rows): kept with ours empty" in msg
    assert "xquad-r (1 rows): our xquad-r-eval" in msg and "mlqa-r" not in msg.split("):", 1)[1]
    assert R.reference_benchmarks_check(ref, ["miracl-sw", "mlqa-r", "xquad-r"]) == ""
    path.write_text("source,encoder,model,benchmark,setting,metric,value\np,E,xx,mlqa-r,multi,rank_distance,-3\n")
    with pytest.raises(ValueError, match="rank_distance = -3.0 is negative"):
        R.load_reference(path)


def test_paper_effects():
    pe = R.paper_effects(R.default_reference())
    assert len(pe) == 24 + 24 + 2  # XLM-R, LaBSE: 8 numbers x 3 contrasts; mBERT: xy - xx only
    assert set(pe[pe.encoder == "mBERT"].contrast) == {"xy - xx"}
    row = pe[(pe.encoder == "XLM-R") & (pe.contrast == "hybrid - xx") & (pe.benchmark == "xquad-r")
             & (pe.setting == "multi") & (pe.metric == "map")].iloc[0]
    assert row.paper_diff == pytest.approx(0.046)
    zero = pe[(pe.encoder == "XLM-R") & (pe.contrast == "hybrid - xx") & (pe.benchmark == "mlqa-r")
              & (pe.setting == "mono")]
    assert zero.paper_diff.tolist() == [0.0]


def _ours(rows):
    return pd.DataFrame(rows, columns=["contrast", "a", "b", "benchmark", "setting", "metric", "diff", "low", "high",
                                       "p_adj"])


def test_effects_view_booleans():
    ours = _ours([
        ("hybrid - xx", "hybrid", "xx", "xquad-r-eval", "multi", "map", 0.03, 0.01, 0.05, 0.01),   # paper +0.046
        ("xy - hybrid", "xy", "hybrid", "xquad-r-eval", "multi", "map", 0.02, 0.00, 0.04, 0.2),    # flipped; paper 0
        ("xy - xx", "xy", "xx", "mlqa-r", "cross", "map", -0.01, -0.02, 0.005, 0.3),              # paper +0.036
        ("hybrid - xy", "hybrid", "xy", "mlqa-r", "multi", "rank_distance", -5.0, -9.0, -1.0, 0.02),  # paper +0.4
    ])
    v = R.effects_view(ours, R.default_reference())
    assert len(v) == 50  # every paper effect is kept
    key = lambda c, b, s, m: v[(v.encoder == "XLM-R") & (v.contrast == c) & (v.benchmark == b)  # noqa: E731
                               & (v.setting == s) & (v.metric == m)].iloc[0]
    a = key("hybrid - xx", "xquad-r", "multi", "map")
    assert (a.same_sign, a.paper_inside_our_interval) == (True, True)
    assert a.our_benchmark == "xquad-r-eval" and a.matched_as == "our xquad-r-eval for the paper's xquad-r"
    b = key("hybrid - xy", "xquad-r", "multi", "map")       # ours flipped to hybrid - xy = -0.02 [-0.04, 0]
    assert b["diff"] == pytest.approx(-0.02) and (b.low, b.high) == pytest.approx((-0.04, 0.0))
    assert pd.isna(b.same_sign) and bool(b.paper_inside_our_interval) and "no difference" in b.note
    c = key("xy - xx", "mlqa-r", "cross", "map")
    assert (c.same_sign, c.paper_inside_our_interval) == (False, False) and c.matched_as == "same benchmark"
    d = key("hybrid - xy", "mlqa-r", "multi", "rank_distance")
    assert not d.same_sign  # paper +0.4, ours -5
    assert pd.isna(d.paper_inside_our_interval) and "pool size" in d.note
    e = key("hybrid - xx", "mlqa-r", "mono", "map")
    assert e.matched_as == "none" and pd.isna(e.same_sign) and pd.isna(e["diff"])
    assert str(v.same_sign.dtype) == "boolean"


def test_absolute_view_differences_only_for_the_same_encoder_and_benchmark():
    ref = R.default_reference()
    ours = pd.DataFrame([("hybrid", "mlqa-r", "multi", "map", 0.6), ("hybrid", "xquad-r-eval", "multi", "map", 0.7)],
                        columns=["model", "benchmark", "setting", "metric", "mean"])
    t = R.absolute_view(ours, ref, "sentence-transformers/LaBSE")
    assert len(t) == 52
    lab = t[(t.encoder == "LaBSE") & (t.model == "hybrid") & (t.setting == "multi") & (t.metric == "map")]
    m = lab[lab.benchmark == "mlqa-r"].iloc[0]
    assert m["ours - paper"] == pytest.approx(0.6 - 0.579) and m.note == ""
    x = lab[lab.benchmark == "xquad-r"].iloc[0]
    assert x.ours == 0.7 and x.ours_benchmark == "xquad-r-eval" and pd.isna(x["ours - paper"]) and "full xquad-r" in x.note
    other = t[(t.encoder == "XLM-R") & (t.model == "hybrid") & (t.benchmark == "mlqa-r") & (t.setting == "multi")
              & (t.metric == "map")].iloc[0]
    assert other.ours == 0.6 and pd.isna(other["ours - paper"]) and "different encoder" in other.note
    results_csv = ours.rename(columns={"mean": "value"}).assign(qlang="all", dlang="all")
    assert R.absolute_view(results_csv, ref, "multilingual-e5-small")["ours"].notna().sum() == 4  # XLM-R and LaBSE hybrid
    assert R.encoder_matches("XLM-R", "FacebookAI/xlm-roberta-base") and not R.encoder_matches("LaBSE", None)


def test_a_renamed_metric_or_an_empty_file_is_named(tmp_path):
    """`mAP` for `map` would silently match nothing (48 matched effects fall to 12): refused, naming the row."""
    import pytest

    from hbkit.analysis.reference import load_reference, shipped_reference_path
    text = shipped_reference_path().read_text()
    bad = tmp_path / "ref.csv"
    bad.write_text(text.replace(",map,", ",mAP,", 1))
    with pytest.raises(ValueError, match=r"ref.csv, data row \d+: metric 'mAP' is not one hbkit computes \(did you mean 'map'\?\)"):
        load_reference(bad)
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    with pytest.raises(ValueError, match="empty.csv: not a readable CSV"):
        load_reference(empty)


def test_shipped_paper_tables_agree_with_their_printed_means():
    """The shipped per-language tables (Tables 3-8, 12-13) load whole, and each group's languages average to the
    printed Mean row at the printed precision: an independent check of the extraction, with the one misprint the
    README names (Table 5, LaBSE hybrid XQuAD-R mono mAP, 0.0017 off)."""
    from hbkit.analysis.paper_tables import paper_tables
    t = paper_tables()
    assert len(t) == 1092 and set(t.table) == {1, 2, 3, 4, 5, 6, 7, 8, 12, 13}
    keys = ["table", "encoder", "model", "benchmark", "setting", "metric"]
    langs = t[~t.lang.isin(["mean", "median"])].groupby(keys)["value"].mean()
    printed = t[t.lang == "mean"].set_index(keys)["value"]
    both = pd.concat([langs.rename("avg"), printed.rename("printed")], axis=1).dropna()
    both = both[both.index.get_level_values("table").isin([3, 4, 5, 6, 7, 8, 12, 13])]
    tol = np.where(both.index.get_level_values("metric") == "rank_distance", 0.051, 0.00051)
    off = both[(both.avg - both.printed).abs() > tol]
    assert len(both) >= 90
    assert list(off.index) == [(5, "LaBSE", "hybrid", "xquad-r", "mono", "map")], off


def test_paper_tables_name_a_bad_row(tmp_path):
    from hbkit.analysis.paper_tables import paper_tables
    from hbkit.analysis.reference import shipped_reference_path
    src = shipped_reference_path().with_name("arxiv-2408.10536-tables.csv").read_text().splitlines()
    bad = tmp_path / "t.csv"
    bad.write_text("\n".join(src[:3] + [src[3].replace(",XLM-R,", ",XLMR,")] + src[4:]) + "\n")
    with pytest.raises(ValueError, match=r"t.csv, data row 3: encoder 'XLMR' is not one of LaBSE, XLM-R"):
        paper_tables(bad)


def test_per_language_view_and_effects_by_hand():
    """Ours in the paper's shape: mono = the language's own cell, cross = the mean over the other passage
    languages, multi = against the whole pool; xquad-r-eval stands in for xquad-r and miracl-XX is MIRACL's XX;
    means over seeds; the effects' signs are compared per encoder."""
    from hbkit.analysis.paper_tables import per_language_effects, per_language_view
    rows = []
    for seed, bump in ((0, 0.0), (1, 0.02)):
        for model, v in (("xx", 0.50), ("xy", 0.60), ("hybrid", 0.70)):
            rows += [dict(model=model, seed=seed, benchmark="xquad-r-eval", setting="mono", qlang="de", dlang="de",
                          metric="map", value=v + bump),
                     dict(model=model, seed=seed, benchmark="xquad-r-eval", setting="cross", qlang="de", dlang="en",
                          metric="map", value=v),
                     dict(model=model, seed=seed, benchmark="xquad-r-eval", setting="cross", qlang="de", dlang="es",
                          metric="map", value=v + 0.1),
                     dict(model=model, seed=seed, benchmark="xquad-r-eval", setting="multi", qlang="de", dlang="all",
                          metric="map", value=v - 0.2),
                     dict(model=model, seed=seed, benchmark="miracl-sw", setting="mono", qlang="sw", dlang="sw",
                          metric="ndcg@10", value=v / 2)]
    view = per_language_view(pd.DataFrame(rows))
    get = lambda b, s, l, m, model: view[(view.benchmark == b) & (view.setting == s) & (view.lang == l)  # noqa: E731
                                         & (view.metric == m) & (view.model == model)].iloc[0]
    assert get("xquad-r", "mono", "de", "map", "hybrid")["ours"] == pytest.approx(0.71)
    assert get("xquad-r", "cross", "de", "map", "xx")["ours"] == pytest.approx(0.55)
    assert get("xquad-r", "multi", "de", "map", "xy")["ours"] == pytest.approx(0.40)
    r = get("miracl", "mono", "sw", "ndcg@10", "hybrid")
    assert r["ours"] == pytest.approx(0.35) and r["n_seeds"] == 2 and not np.isnan(r["paper XLM-R"])
    eff = per_language_effects(view)
    e = eff[(eff.benchmark == "xquad-r") & (eff.setting == "mono") & (eff.contrast == "hybrid-xx")].iloc[0]
    assert e["ours"] == pytest.approx(0.2)
    assert e["agree XLM-R"] == (np.sign(e["paper XLM-R"]) == 1)
