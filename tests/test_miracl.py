"""MIRACL reader on a release-layout fixture (and its malformed variants), TyDi-as-MIRACL, and the metrics
against pytrec_eval and ranx (graded relevance, tied scores)."""
import gzip
import json
import logging
from pathlib import Path

import numpy as np
import pytest
from hub_fake import FakeHub
from hub_fake import hub_run as _hub_run

from hbkit.data.corpus_benchmarks import load_corpus_benchmarks, tydi_as_miracl
from hbkit.data.registry import DataError
from hbkit.data.releases.miracl import corpus_files, load_miracl, read_release
from hbkit.retrieval.ir_metrics import evaluate_run, query_metrics, to_pytrec_eval_names, trec_order, untie

LANG = "sw"
TOPICS = {"q1": "mji mkuu wa Kenya", "q2": "mto mrefu zaidi", "q3": "rais wa kwanza", "q4": "swali bila jibu"}
# graded relevance; q4 has only relevance-0 judgements (excluded, counted)
QRELS = [("q1", "1#0", 2), ("q1", "1#1", 0), ("q1", "2#0", 1), ("q2", "3#0", 1), ("q3", "4#0", 1),
         ("q3", "2#1", 1), ("q4", "1#1", 0), ("q4", "5#0", 0)]
DOCS = [[("1#0", "Nairobi", "Nairobi ni mji mkuu wa Kenya."), ("1#1", "Nairobi", "Ina wakazi wengi."),
         ("2#0", "Kenya", "Kenya ni nchi ya Afrika Mashariki.")],
        [("2#1", "Kenya", "Rais wa kwanza alikuwa Jomo Kenyatta."), ("3#0", "Nile", "Nile ni mto mrefu."),
         ("4#0", "Kenyatta", "Jomo Kenyatta alikuwa rais."), ("5#0", "Tanzania", "Tanzania ni jirani.")]]


def _write(root, lang=LANG, topics=TOPICS, qrels=QRELS, docs=DOCS):
    t = root / f"miracl-v1.0-{lang}" / "topics" / f"topics.miracl-v1.0-{lang}-dev.tsv"
    q = root / f"miracl-v1.0-{lang}" / "qrels" / f"qrels.miracl-v1.0-{lang}-dev.tsv"
    t.parent.mkdir(parents=True); q.parent.mkdir(parents=True)
    t.write_text("".join(f"{k}\t{v}\n" for k, v in topics.items()), encoding="utf-8")
    q.write_text("".join(f"{a} Q0 {b} {r}\n" for a, b, r in qrels))
    c = root / f"miracl-corpus-v1.0-{lang}"
    c.mkdir()
    for i, shard in enumerate(docs):
        with gzip.open(c / f"docs-{i}.jsonl.gz", "wt", encoding="utf-8") as fh:
            for d, title, text in shard:
                fh.write(json.dumps({"docid": d, "title": title, "text": text}, ensure_ascii=False) + "\n")
    return root


@pytest.fixture
def release(tmp_path):
    return _write(tmp_path / "miracl")


def test_reads_release_layout_and_streams_corpus(release, caplog):
    with caplog.at_level(logging.WARNING):
        b = load_miracl(LANG, data_dir=release)
    assert b.name == "miracl-sw" and list(b.topics) == ["q1", "q2", "q3"]
    assert b.qrels["q1"] == {"1#0": 2, "1#1": 0, "2#0": 1}
    assert b.skipped == {"query with only relevance-0 judgements (excluded)": 1}
    assert "only relevance-0" in caplog.text  # said, not only counted
    docs = list(b.docs())
    assert [d for d, _, _ in docs] == [d for s in DOCS for d, _, _ in s]  # shards in order
    assert next(b.passages()) == ("1#0", "Nairobi Nairobi ni mji mkuu wa Kenya.")  # title + " " + text
    assert b.check() == 7


def test_resolves_hbkit_data_dir(tmp_path, monkeypatch):
    _write(tmp_path / "miracl")
    monkeypatch.setenv("HBKIT_DATA_DIR", str(tmp_path))
    assert len(load_miracl(LANG).topics) == 3


def test_corpus_shards_in_numeric_order(tmp_path):
    for i in (0, 1, 2, 10):
        (tmp_path / f"docs-{i}.jsonl.gz").write_bytes(b"")
    assert [p.name for p in corpus_files(tmp_path)] == ["docs-0.jsonl.gz", "docs-1.jsonl.gz", "docs-2.jsonl.gz",
                                                       "docs-10.jsonl.gz"]


def test_missing_release_names_the_files_and_the_hub(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HBKIT_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("HBKIT_DATA_DIR", str(tmp_path))
    with pytest.raises(DataError, match=r"hub is unreachable.*topics\.miracl-v1\.0-yo-dev\.tsv.*qrels\.miracl-v1\.0-yo-dev\.tsv"
                                        r".*miracl-corpus-v1\.0-yo/docs-0\.jsonl\.gz"):
        load_miracl("yo")
    with pytest.raises(DataError, match="no train split"):
        load_miracl("yo", "train")
    with pytest.raises(DataError, match="no language 'xx'"):
        load_miracl("xx")


def test_hub_download_through_a_local_server(tmp_path):
    """MIRACL from the hub, as a user with internet gets it: hbkit's own code path (huggingface_hub's
    hf_hub_download at the pinned revisions) against a local server holding the release files in the hub
    repositories' layout; the benchmark read back equals the same files read locally. A second load uses the
    download without asking the server; a revision without the files is named with the variable to change."""
    from hbkit.data.sources import HUB_SOURCES
    release = _write(tmp_path / "release")
    repos = {"miracl/miracl": release, "miracl/miracl-corpus": release}
    revisions = {HUB_SOURCES["miracl"]["repo"]: HUB_SOURCES["miracl"]["revision"],
                 HUB_SOURCES["miracl-corpus"]["repo"]: HUB_SOURCES["miracl-corpus"]["revision"]}
    hub = FakeHub(repos, revisions)
    try:
        code = ("from hbkit.data.releases.miracl import load_miracl; b = load_miracl('sw'); "
                "print((sorted(b.topics.items()), sorted((q, sorted(j.items())) for q, j in b.qrels.items()), b.check()))")
        r = _hub_run(tmp_path, hub, code)
        assert r.returncode == 0, r.stderr[-3000:]
        local = read_release(release, "sw")
        assert r.stdout.strip() == str((sorted(local.topics.items()),
                                        sorted((q, sorted(j.items())) for q, j in local.qrels.items()), local.check()))
        got = [p for m, p in hub.requests if m == "GET"]
        assert any("/resolve/" + HUB_SOURCES["miracl-corpus"]["revision"] + "/miracl-corpus-v1.0-sw/docs-1.jsonl.gz" in p
                   for p in got)
        cached = tmp_path / "cache" / "miracl" / (HUB_SOURCES["miracl"]["revision"][:12] + "-"
                                                 + HUB_SOURCES["miracl-corpus"]["revision"][:12])
        assert (cached / "miracl-v1.0-sw" / "topics" / "topics.miracl-v1.0-sw-dev.tsv").is_file()
        for i in (0, 1):
            name = f"miracl-corpus-v1.0-sw/docs-{i}.jsonl.gz"
            assert (cached / name).read_bytes() == (release / name).read_bytes()
        n = len(hub.requests)
        r = _hub_run(tmp_path, hub, code)
        assert r.returncode == 0 and len(hub.requests) == n, "the second load reads the download, not the hub"
        r = _hub_run(tmp_path / "other", hub, "from hbkit.data.releases.miracl import load_miracl; load_miracl('te')")
        assert r.returncode != 0 and "has no miracl-corpus-v1.0-te/docs-0.jsonl.gz" in r.stderr
        assert "HBKIT_MIRACL_CORPUS_REVISION=main" in r.stderr
    finally:
        hub.close()


CORPUS_DIR = "miracl-corpus-v1.0-sw"
QRELS_FILE = Path("miracl-v1.0-sw") / "qrels" / "qrels.miracl-v1.0-sw-dev.tsv"
TOPICS_FILE = Path("miracl-v1.0-sw") / "topics" / "topics.miracl-v1.0-sw-dev.tsv"


def _shard(root: Path, name: str, blob: bytes, mode: str = "wb") -> None:
    with gzip.open(root / CORPUS_DIR / name, mode) as fh:
        fh.write(blob)


def _truncate(root: Path) -> None:
    path = root / CORPUS_DIR / "docs-1.jsonl.gz"
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def _replace_in(rel: Path, old: bytes, new: bytes):
    return lambda root: (root / rel).write_bytes((root / rel).read_bytes().replace(old, new))


def _append_docid(docid: str):
    return lambda root: _shard(root, "docs-1.jsonl.gz", (json.dumps({"docid": docid, "title": "", "text": "x"}) + "\n")
                               .encode(), mode="ab")


def _no_corpus(root: Path) -> None:
    for p in (root / CORPUS_DIR).iterdir():
        p.unlink()


#: (case, what it does to the release: to its records before they are written, or to its files after, the message)
MALFORMED = [
    ("truncated gz", None, _truncate, r"docs-1\.jsonl\.gz: corrupt or truncated gzip"),
    ("bad line", None, lambda r: _shard(r, "docs-0.jsonl.gz", b'{"docid": "1#0", "title": "", "text": "x"}\n{not json\n'),
     r"docs-0\.jsonl\.gz:2: not a JSON line"),
    ("missing field", None, lambda r: _shard(r, "docs-0.jsonl.gz", b'{"docid": "1#0", "text": "x"}\n'),
     r"docs-0\.jsonl\.gz:1: a corpus record needs string fields"),
    ("duplicate docid", lambda q, t, d: d[1].append(("1#0", "dup", "dup")), None,
     r"duplicate docid.*docid '1#0' is document 1 and again document \d+"),
    ("unknown doc", lambda q, t, d: q.append(("q2", "9#9", 1)), None,
     r"qrels name 1 docid\(s\) absent from the corpus \(e\.g\. \['9#9'\]\)"),
    ("empty qrels", lambda q, t, d: q.clear(), None, r"qrels\.miracl-v1\.0-sw-dev\.tsv: the qrels file is empty"),
    ("bad qrels line", None, lambda r: (r / QRELS_FILE).write_text("q1 Q0 1#0 1\nq1 1#0 1\n"),
     r"qrels\.miracl-v1\.0-sw-dev\.tsv:2: expected 'qid Q0 docid relevance'"),
    ("bad topics line", None, lambda r: (r / TOPICS_FILE).write_text("q1 no tab here\n"),
     r"topics\.miracl-v1\.0-sw-dev\.tsv:1: expected 'qid<TAB>query'"),
    ("qrels query not in topics", lambda q, t, d: q.append(("q9", "1#0", 1)), None, r"qrels query id\(s\) are not in"),
    ("missing corpus", None, _no_corpus, r"missing .*miracl-corpus-v1\.0-sw/docs-0\.jsonl\.gz"),
    ("non-utf8 topics", None, _replace_in(TOPICS_FILE, "q2\tmto".encode(), b"q2\tmto\xff"),
     r"topics\.miracl-v1\.0-sw-dev\.tsv: line 2, column 7: byte 0xff is not UTF-8; save the topics"),
    ("non-utf8 qrels", None, lambda r: (r / QRELS_FILE).write_bytes(b"\xfe" + (r / QRELS_FILE).read_bytes()),
     r"qrels\.miracl-v1\.0-sw-dev\.tsv: line 1, column 1: byte 0xfe is not UTF-8; save the qrels"),
    ("non-utf8 shard", None, lambda r: _shard(r, "docs-0.jsonl.gz", b'{"docid": "1#0", "title": "", "text": "x"}\n'
                                                                     b'{"docid": "1#1", "title": "", "text": "caf\xe9"}\n'),
     r"docs-0\.jsonl\.gz:2: column \d+: byte 0xe9 is not UTF-8 \(the gzip itself is intact\)"),
    ("docid with a space", None, _append_docid("8 #1"),
     r"docs-1\.jsonl\.gz:5: docid '8 #1' is empty or holds whitespace.*e\.g\. '8_#1'"),
    ("docid with a newline", None, _append_docid("8\n#1"), r"docs-1\.jsonl\.gz:5: docid '8\\n#1' is empty or holds whitespace"),
]


@pytest.mark.parametrize("case, records, files, match", MALFORMED, ids=[m[0] for m in MALFORMED])
def test_malformed_release_gives_its_message(tmp_path, case, records, files, match):
    root = tmp_path / "miracl"
    qrels, topics, docs = list(QRELS), dict(TOPICS), [list(s) for s in DOCS]
    if records is not None:
        records(qrels, topics, docs)
    _write(root, topics=topics, qrels=qrels, docs=docs)
    if files is not None:
        files(root)
    with pytest.raises(DataError, match=match):
        read_release(root, "sw").check()


def test_unknown_doc_can_be_skipped_and_counted(tmp_path):
    _write(tmp_path, qrels=QRELS + [("q2", "9#9", 1)])
    b = read_release(tmp_path, "sw")
    b.check(unknown_docs="skip")
    assert b.skipped["qrels docid absent from the corpus (judgement dropped)"] == 1
    assert "9#9" not in b.qrels["q2"] and len(b.topics) == 3


def test_tydi_as_miracl_round_trips(data_dir, tmp_path):
    from hbkit.data.releases.tydiqa import load_tydiqa
    out = tydi_as_miracl(data_dir, tmp_path / "a", ["sw", "fi"])
    ref = load_tydiqa(data_dir, ["sw", "fi"])
    for lang in ("sw", "fi"):
        b = read_release(out, lang, name=f"tydiqa-corpus-{lang}")
        n_q = int((ref.queries["lang"] == lang).sum())
        n_c = int((ref.candidates["lang"] == lang).sum())
        assert len(b.topics) == n_q and b.check() == n_c and b.skipped == {}
        assert all(len(j) == 1 and list(j.values()) == [1] for j in b.qrels.values())
    # deterministic bytes (gzip mtime 0): a second write is identical
    tydi_as_miracl(data_dir, tmp_path / "b", ["sw"])
    f = "miracl-corpus-v1.0-sw/docs-0.jsonl.gz"
    assert (tmp_path / "a" / f).read_bytes() == (tmp_path / "b" / f).read_bytes()
    assert [b.name for b in load_corpus_benchmarks("tydiqa-corpus:sw", data_dir, work_dir=tmp_path / "c")] == ["tydiqa-corpus-sw"]


# ------------------------------------------------------------------------------------------------
# metrics against pytrec_eval and ranx
# ------------------------------------------------------------------------------------------------
def _random_case(seed, n_q=40, n_d=60, tied=False):
    rng = np.random.default_rng(seed)
    qrels, run = {}, {}
    for i in range(n_q):
        q = f"q{i}"
        judged = rng.choice(n_d, size=rng.integers(1, 12), replace=False)
        qrels[q] = {f"d{j:03d}": int(rng.integers(0, 4)) for j in judged}
        if i % 7 == 0:
            qrels[q] = {d: 0 for d in qrels[q]}  # only relevance 0: excluded
        elif not any(qrels[q].values()):
            qrels[q][next(iter(qrels[q]))] = 1
        if i % 11 == 5:
            continue  # judged query absent from the run: 0
        retrieved = rng.choice(n_d, size=rng.integers(5, n_d), replace=False)
        scores = rng.integers(0, 4, size=len(retrieved)) / 4 if tied else rng.normal(size=len(retrieved))
        run[q] = {f"d{j:03d}": float(s) for j, s in zip(retrieved, scores)}
    run["not-judged"] = {"d000": 1.0}
    return qrels, run


def test_trec_order_breaks_ties_by_docid_descending():
    assert trec_order({"a": 0.5, "c": 0.5, "b": 0.9, "d": 0.1}) == ["b", "c", "a", "d"]


@pytest.mark.parametrize("tied", [False, True])
@pytest.mark.parametrize("seed", [0, 1])
def test_metrics_equal_pytrec_eval_and_ranx(seed, tied):
    import pytrec_eval
    from ranx import Qrels, Run
    from ranx import evaluate as rx

    qrels, run = _random_case(seed, tied=tied)
    ours, skipped = evaluate_run(qrels, run, ["ndcg@10", "recall@100", "mrr@10", "ndcg@3", "recall@5"])
    excluded = [q for q, j in qrels.items() if not any(j.values())]
    assert skipped["query with only relevance-0 judgements (excluded)"] == len(excluded) > 0
    assert skipped["run query absent from qrels (ignored)"] == 1
    assert set(ours) == set(qrels) - set(excluded)
    names = to_pytrec_eval_names(["ndcg@10", "recall@100", "ndcg@3", "recall@5"])
    ev = pytrec_eval.RelevanceEvaluator(qrels, set(names.values()) | {"recip_rank"})
    ref = ev.evaluate(run)
    cut = {q: {d: run[q][d] for d in trec_order(s)[:10]} for q, s in run.items()}  # MRR@10 = recip_rank of the top 10
    ref_rr = ev.evaluate(cut)
    for q, v in ours.items():
        for m, key in names.items():
            assert v[m] == pytest.approx(ref.get(q, {}).get(key, 0.0), abs=1e-6), (q, m)
        assert v["mrr@10"] == pytest.approx(ref_rr.get(q, {}).get("recip_rank", 0.0), abs=1e-6), q
    # ranx has no defined tie rule: give it trec_eval's order as strictly decreasing scores (untie)
    ordered = untie({q: s for q, s in run.items() if q in ours})
    keep = [q for q in ours if ordered.get(q)]
    rx_run = Run({q: ordered[q] for q in keep})
    rx(Qrels({q: qrels[q] for q in keep}), rx_run, ["ndcg@10", "recall@100", "mrr@10"])
    for m in ("ndcg@10", "recall@100", "mrr@10"):
        np.testing.assert_allclose([ours[q][m] for q in keep], [rx_run.scores[m][q] for q in keep], atol=1e-6,
                                   err_msg=m)
    if tied:  # the tie rule matters on this data: docid-ascending tie order gives other numbers
        asc = {q: {d: float(len(s) - r) for r, d in enumerate(sorted(s, key=lambda d: (-s[d], d)))}
               for q, s in run.items() if q in keep}
        flipped = Run(asc)
        rx(Qrels({q: qrels[q] for q in keep}), flipped, ["mrr@10"])
        assert not np.allclose([ours[q]["mrr@10"] for q in keep], [flipped.scores["mrr@10"][q] for q in keep])


def test_hand_computed_graded_ndcg():
    # ranking d3 (rel 2), d1 (0), d2 (1); ideal 2, 1
    v = query_metrics({"d1": 0, "d2": 1, "d3": 2}, {"d1": 0.5, "d2": 0.1, "d3": 0.9}, ["ndcg@10", "mrr@10", "recall@2"])
    dcg = 2 / np.log2(2) + 1 / np.log2(4)
    idcg = 2 / np.log2(2) + 1 / np.log2(3)
    assert v["ndcg@10"] == pytest.approx(dcg / idcg) and v["mrr@10"] == 1.0 and v["recall@2"] == 0.5


def test_tydiqa_corpus_cache_follows_the_data(data_dir, tmp_path):
    """The cache of TyDi-as-MIRACL is keyed by what it is built from: a copy of the data whose Swahili questions
    are all replaced gets its own entry, never the old one's topics."""
    import json as _json
    import shutil

    from hbkit.data.corpus_benchmarks import load_corpus_benchmarks
    work = tmp_path / "cache"
    first = load_corpus_benchmarks("tydiqa-corpus:sw", data_dir, work_dir=work)[0]
    other = tmp_path / "data"
    shutil.copytree(data_dir / "tydiqa-goldp", other / "tydiqa-goldp")
    for f in (other / "tydiqa-goldp").rglob("*.json"):
        f.chmod(0o644)
        doc = _json.loads(f.read_text())
        changed = False
        for art in doc["data"]:
            for para in art["paragraphs"]:
                for qa in para["qas"]:
                    if qa["id"].startswith("swahili"):
                        qa["question"], changed = "Nini?", True
        if changed:
            f.write_text(_json.dumps(doc))
    second = load_corpus_benchmarks("tydiqa-corpus:sw", other, work_dir=work)[0]
    assert set(first.topics.values()) != {"Nini?"} and set(second.topics.values()) == {"Nini?"}
    assert len([p for p in work.iterdir() if p.name.startswith("sw-")]) == 2
    again = load_corpus_benchmarks("tydiqa-corpus:sw", data_dir, work_dir=work)[0]
    assert again.topics == first.topics


def test_byte_order_marks_are_not_blamed_on_splits(tmp_path):
    """Topics and qrels saved with a UTF-8 BOM (Windows editors) read like the plain files; the BOM was once part
    of the first qid, and the error blamed topics and qrels from different splits."""
    root = _write(tmp_path / "miracl")
    for p in (root / "miracl-v1.0-sw").rglob("*.tsv"):
        p.write_bytes(b"\xef\xbb\xbf" + p.read_bytes())
    b = read_release(root, "sw")
    assert set(b.topics) == {"q1", "q2", "q3"} and b.check() == 7


def test_cli_eval_checks_docids_before_encoding_and_prints_the_metrics(tmp_path, monkeypatch, capsys):
    """``hbkit eval --bench miracl:sw``: a qrels docid the corpus lacks is refused before anything is encoded,
    with advice the command line can follow (--unknown-docs skip); with it, the judgement is dropped and counted,
    and the metrics table is printed (a one-language corpus benchmark once printed "Empty DataFrame")."""
    from hbkit.app.cli import main
    _write(tmp_path / "miracl", qrels=QRELS + [("q2", "9#9", 1)])
    monkeypatch.setenv("HBKIT_DATA_DIR", str(tmp_path))
    out = tmp_path / "eval"
    assert main(["eval", "--model", "tiny", "--bench", "miracl:sw", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "absent from the corpus (e.g. ['9#9'])" in err and "--unknown-docs skip" in err
    assert not list(out.rglob("shard-*")), "nothing is encoded before the docids are checked"
    assert main(["eval", "--model", "tiny", "--bench", "miracl:sw", "--out", str(out), "--unknown-docs", "skip"]) == 0
    cap = capsys.readouterr()
    assert "miracl-sw: 1 qrels docid absent from the corpus (judgement dropped)" in cap.err
    assert "Empty DataFrame" not in cap.out and "ndcg@10" in cap.out and "miracl-sw" in cap.out
