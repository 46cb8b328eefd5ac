"""Sharded encoding (kill + resume byte-identical, corrupt shard re-encoded, other model refused, two ranks),
streaming exact search vs numpy, IVF/HNSW recall reporting, TREC run files, and the offline end-to-end
TyDi-as-MIRACL case checked against pytrec_eval."""
import hashlib
import json
import logging
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from hbkit.retrieval.corpus_eval import evaluate_corpus
from hbkit.retrieval.faiss_search import search, write_trec_run
from hbkit.retrieval.shards import ManifestMismatch, encode_corpus, iter_shards, load_manifest

ROOT = Path(__file__).resolve().parents[1]


def _docs(n=230):
    return [(f"{i // 3}#{i % 3}", f"title {i % 17}", f"passage number {i} about topic {i % 11} " * (1 + i % 4))
            for i in range(n)]


def _files(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.name.startswith(("shard-", "manifest"))}


class HashEncoder:
    """A deterministic stand-in encoder (no torch): a text's vector is seeded by its sha256."""
    prompts = {"query": "query: ", "passage": "passage: "}

    def __init__(self, dim=16):
        self.dim = dim

    def encode(self, texts, prompt_name=None, **kw):
        out = np.stack([np.random.default_rng(int.from_bytes(hashlib.sha256(t.encode()).digest()[:8], "little"))
                        .normal(size=self.dim) for t in texts]).astype(np.float32)
        return out / np.linalg.norm(out, axis=1, keepdims=True)


_CHILD = textwrap.dedent("""
    import os, sys, torch
    torch.set_num_threads(int(os.environ["T_THREADS"]))
    from hbkit.encoders.load import tiny_encoder
    from hbkit.retrieval.shards import encode_corpus
    sys.path.insert(0, os.environ["T_TESTS"])
    from test_search import _docs
    stop = int(os.environ.get("T_STOP", "0"))
    done = []
    def on_shard(rec):
        done.append(rec["index"])
        if stop and len(done) == stop:
            os._exit(17)  # killed for real: no cleanup, no manifest
    encode_corpus(tiny_encoder(), lambda: iter(_docs()), sys.argv[1], shard_size=50, batch_size=16,
                  progress=False, on_shard=on_shard, wait_timeout=120)
""")


def _child(out, env_extra, wait=True):
    import torch
    env = {**os.environ, "PYTHONPATH": str(ROOT), "T_TESTS": str(ROOT / "tests"), "HF_HUB_OFFLINE": "1",
           "T_THREADS": str(torch.get_num_threads()), **env_extra}
    p = subprocess.Popen([sys.executable, "-c", _CHILD, str(out)], env=env, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
    if not wait:
        return p
    _, err = p.communicate(timeout=300)
    return p.returncode, err


@pytest.fixture(scope="module")
def reference(tmp_path_factory, tiny):
    """One uninterrupted single-process encoding: what every other run must reproduce byte for byte."""
    ref = tmp_path_factory.mktemp("ref")
    m = encode_corpus(tiny, lambda: iter(_docs()), ref, shard_size=50, batch_size=16, progress=False)
    return ref, m


def test_kill_resume_is_byte_identical_and_corrupt_shard_is_reencoded(tmp_path, tiny, reference, caplog):
    run = tmp_path / "run"
    ref, m = reference
    assert m["complete"] and m["n_docs"] == 230 and [s["count"] for s in m["shards"]] == [50, 50, 50, 50, 30]
    assert m["shards"][0]["first"] == "0#0" and m["shards"][-1]["last"] == "76#1" and m["dtype"] == "float16"
    rc, err = _child(run, {"T_STOP": "2"})
    assert rc == 17, err[-2000:]
    assert not json.loads((run / "manifest.json").read_text())["complete"]
    assert sorted(p.name for p in run.glob("shard-*.npy")) == ["shard-00000.npy", "shard-00001.npy"]
    written = []
    encode_corpus(tiny, lambda: iter(_docs()), run, shard_size=50, batch_size=16, progress=False,
                  on_shard=lambda r: written.append(r["index"]))
    assert written == [2, 3, 4]  # the two finished shards were not encoded again
    assert _files(run) == _files(ref)  # byte-identical to the uninterrupted run
    # a truncated shard is found and encoded again
    npy = run / "shard-00001.npy"
    npy.write_bytes(npy.read_bytes()[:-100])
    written.clear()
    with caplog.at_level(logging.WARNING):
        encode_corpus(tiny, lambda: iter(_docs()), run, shard_size=50, batch_size=16, progress=False,
                      on_shard=lambda r: written.append(r["index"]))
    assert written == [1] and "shard 1 is missing, truncated, corrupt or stale" in caplog.text
    assert _files(run) == _files(ref)


def test_other_model_is_refused_and_force_replaces(tmp_path):
    enc = HashEncoder()
    docs = lambda: iter(_docs(60))  # noqa: E731
    encode_corpus(enc, docs, tmp_path, shard_size=50, progress=False, fingerprint="aaaa1111")
    with pytest.raises(ManifestMismatch, match="another model \\(fingerprint aaaa1111\\); this model is bbbb2222. "
                                               "Use another folder, or force=True \\(--force\\)"):
        encode_corpus(enc, docs, tmp_path, shard_size=50, progress=False, fingerprint="bbbb2222")
    (tmp_path / "manifest.json").unlink()  # killed before rank 0 wrote it: a shard record still names the model
    with pytest.raises(ManifestMismatch, match="fingerprint aaaa1111"):
        encode_corpus(enc, docs, tmp_path, shard_size=50, progress=False, fingerprint="bbbb2222")
    with pytest.raises(ManifestMismatch, match="dtype: 'float16' there, 'float32' now"):
        encode_corpus(enc, docs, tmp_path, shard_size=50, dtype="float32", progress=False, fingerprint="aaaa1111")
    m = encode_corpus(enc, docs, tmp_path, shard_size=50, progress=False, fingerprint="bbbb2222", force=True)
    assert m["fingerprint"] == "bbbb2222" and m["complete"] and m["n_docs"] == 60


def test_a_rank_another_process_encodes_is_refused_by_name(tmp_path):
    """Two processes told to encode the same rank into one folder: the second is refused at once (filelock's
    Timeout, named), and nothing of the folder changes."""
    from hbkit.core.files import lock_for
    from hbkit.retrieval.shards import SearchError

    holder = subprocess.Popen([sys.executable, "-c", textwrap.dedent(f"""
        import sys, time
        from hbkit.core.files import lock_for
        lock = lock_for({str(tmp_path / '.rank0-of-1')!r}); lock.acquire()
        print("held", flush=True); time.sleep(60)
        """)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(SearchError, match="another process is already encoding rank 0 of 1 here"):
            encode_corpus(HashEncoder(), lambda: iter(_docs(60)), tmp_path, shard_size=50, progress=False,
                          fingerprint="aaaa1111", rank=0, world_size=1)
        assert sorted(p.name for p in tmp_path.iterdir()) == [".rank0-of-1.lock"]
    finally:
        holder.kill()
        holder.wait()
    assert lock_for(tmp_path / ".rank0-of-1").acquire(timeout=5)   # the holder's lock went with it


def test_two_ranks_split_the_shards_and_rank0_merges(tmp_path, tiny, reference, monkeypatch):
    """Ranks from the environment (as torchrun sets them): rank 1 runs concurrently (a thread: the same code
    path as a second process, without a second 15 s import), rank 0 waits for its shards and merges."""
    import threading
    ddp, (ref, _) = tmp_path / "ddp", reference
    monkeypatch.setenv("RANK", "0")
    monkeypatch.setenv("WORLD_SIZE", "2")
    got = {0: [], 1: []}
    out = {}

    def rank1():
        out[1] = encode_corpus(tiny, lambda: iter(_docs()), ddp, shard_size=50, batch_size=16, progress=False,
                               on_shard=lambda r: got[1].append(r["index"]), wait_timeout=120, rank=1, world_size=2)
    t = threading.Thread(target=rank1)
    t.start()
    out[0] = encode_corpus(tiny, lambda: iter(_docs()), ddp, shard_size=50, batch_size=16, progress=False,
                           on_shard=lambda r: got[0].append(r["index"]), wait_timeout=120)
    t.join(120)
    assert got == {0: [0, 2, 4], 1: [1, 3]} and out[0] == out[1] and out[0]["complete"] and len(out[0]["shards"]) == 5
    assert _files(ddp) == _files(ref)


def test_streaming_exact_search_equals_numpy_and_approximate_indexes_report_recall(tmp_path):
    enc = HashEncoder(dim=16)
    docs = [(f"d{i:04d}", f"text {i}") for i in range(1500)]
    encode_corpus(enc, lambda: iter(docs), tmp_path, shard_size=400, dtype="float32", progress=False, fingerprint="hash")
    Q = enc.encode([f"query {i}" for i in range(30)])
    C = np.concatenate([e for _, e in iter_shards(tmp_path)]).astype(np.float32)
    ref = np.argsort(-(Q @ C.T), axis=1, kind="stable")[:, :20]
    res = search(tmp_path, Q, k=20, block=128)  # blocks smaller than shards: the heap merges across both
    assert [[int(d[1:]) for d in row] for row in res.docids] == ref.tolist()
    np.testing.assert_allclose(res.scores, np.take_along_axis(Q @ C.T, ref, 1), rtol=1e-5)
    for kind in ("ivf", "hnsw"):
        approx = search(tmp_path, Q, k=20, index=kind, nlist=8, nprobe=2)
        overlap = np.mean([len(set(a) & set(b)) / 20 for a, b in zip(approx.docids, res.docids)])
        assert 0 < approx.recall_vs_exact <= 1 and approx.recall_vs_exact == pytest.approx(overlap)
    assert search(tmp_path, Q, k=20, index="ivf", nlist=8, nprobe=8).recall_vs_exact == 1.0  # all lists: exact


def test_trec_run_file_orders_ties_like_trec_eval(tmp_path):
    import pytrec_eval
    run = {"q1": {"a": 0.5, "c": 0.5, "b": 0.9}, "q2": {"x": 1.0}}
    path = write_trec_run(tmp_path / "run.trec", run, tag="t")
    assert path.read_text().splitlines() == ["q1 Q0 b 1 0.9 t", "q1 Q0 c 2 0.5 t", "q1 Q0 a 3 0.5 t", "q2 Q0 x 1 1 t"]
    with open(path) as fh:
        assert pytrec_eval.parse_run(fh) == run
    with pytest.raises(ValueError, match="run tag"):
        write_trec_run(tmp_path / "r", run, tag="a b")


def _read_trec(path):
    import pytrec_eval
    with open(path) as fh:
        return pytrec_eval.parse_run(fh)


def test_offline_end_to_end_tydi_as_miracl(data_dir, tmp_path, tiny):
    import pytrec_eval

    from hbkit.data.corpus_benchmarks import tydi_as_miracl
    from hbkit.data.releases.miracl import read_release
    from hbkit.data.releases.tydiqa import load_tydiqa

    langs = ["sw", "te", "fi"]
    tydi_as_miracl(data_dir, tmp_path / "release", langs)
    benches = [read_release(tmp_path / "release", l, name=f"tydiqa-corpus-{l}") for l in langs]
    table, pq = evaluate_corpus(tiny, benches, tmp_path / "work", k=100, shard_size=150, progress=False)
    ref = load_tydiqa(data_dir, langs)
    for b in benches:
        folder = tmp_path / "work" / load_manifest_fp(tmp_path / "work") / b.name
        m = load_manifest(folder)
        assert m["n_docs"] == int((ref.candidates["lang"] == b.lang).sum()) and len(m["shards"]) > 1
        rows = pq[pq["benchmark"] == b.name]
        assert len(rows) == int((ref.queries["lang"] == b.lang).sum())
        run = _read_trec(table.attrs["runs"][b.name])
        assert all(len(d) == min(100, m["n_docs"]) for d in run.values())
        ev = pytrec_eval.RelevanceEvaluator(b.qrels, {"ndcg_cut_10", "recall_100"}).evaluate(run)
        got = rows.set_index("query_id")
        for q, v in ev.items():
            assert got.at[q, "ndcg@10"] == pytest.approx(v["ndcg_cut_10"], abs=1e-6)
            assert got.at[q, "recall@100"] == pytest.approx(v["recall_100"], abs=1e-6)
        cell = table[(table.benchmark == b.name)].set_index("metric")
        assert cell.at["ndcg@10", "value"] == pytest.approx(np.mean([v["ndcg_cut_10"] for v in ev.values()]), abs=1e-9)
        assert cell.at["ndcg@10", "n"] == len(rows) and set(cell["qlang"]) == {b.lang}
    macro = table[table.qlang == "all"].set_index("metric")
    assert list(macro["benchmark"].unique()) == ["tydiqa-corpus"] and set(macro.index) == {"ndcg@10", "recall@100", "mrr@10"}
    per_lang = table[table.qlang != "all"]
    assert macro.at["recall@100", "value"] == pytest.approx(per_lang[per_lang.metric == "recall@100"]["value"].mean())
    assert (pq["group"] == pq["query_id"]).all() and set(pq["setting"]) == {"mono"}


def load_manifest_fp(work: Path) -> str:
    (fp,) = [p.name for p in work.iterdir() if p.is_dir()]
    return fp
