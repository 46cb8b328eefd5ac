"""The digest memo (a cached load costs a stat) and the cache-key race (a build is stored only under the key of the
bytes it read): hbkit.core.digests and hbkit.data.corpus_cache.cached_corpus."""
import json
import multiprocessing as mp
import os
import threading
import time

import pandas as pd
import pytest
from test_caches import edit_in_place

from hbkit.core import digests, files
from hbkit.core.digests import content_key
from hbkit.core.files import lock_for, sha256_file
from hbkit.data import corpora, corpus_cache
from hbkit.data.registry import DataError
from hbkit.data.textfile import read_text


@pytest.fixture
def not_racy(monkeypatch):
    """Files count as settled at once (the tests sleep past the file system's clock tick instead of RACY_S)."""
    monkeypatch.setattr(digests, "RACY_S", 0.0)


def tick():
    time.sleep(0.05)   # past the coarse clock's tick, so that the next write gets another ctime


def memo_entries(cache):
    return sorted((cache / digests.MEMO).rglob("*.json")) if (cache / digests.MEMO).exists() else []


def test_a_file_seen_before_costs_a_stat(empty_cache, tmp_path, not_racy, monkeypatch):
    f = tmp_path / "big.txt"
    f.write_bytes(os.urandom(1 << 16))
    tick()
    assert digests.file_sha256(f) == sha256_file(f)
    (entry,) = memo_entries(empty_cache)
    rec = json.loads(entry.read_text())
    assert rec["identity"] == list(digests.identity(f)) and rec["sha256"] == sha256_file(f)
    opened = []
    real_open = open
    monkeypatch.setattr("builtins.open", lambda p, *a, **k: opened.append(str(p)) or real_open(p, *a, **k))
    key = content_key([f], 1)
    assert str(f) not in opened   # the second sight reads the memo, never the file
    monkeypatch.setattr("builtins.open", real_open)
    assert key == content_key([f], 1)


def test_a_same_size_same_mtime_edit_is_seen(empty_cache, tmp_path, not_racy):
    f = tmp_path / "a.json"
    f.write_text('{"x": "some text here"}')
    tick()
    before = content_key([f], 1)
    assert len(memo_entries(empty_cache)) == 1
    tick()
    edit_in_place(f)   # size and mtime put back: only ctime (which no user can set) tells
    assert content_key([f], 1) != before
    assert digests.file_sha256(f) == sha256_file(f)


def test_a_file_written_just_now_is_not_remembered(empty_cache, tmp_path):
    f = tmp_path / "fresh.txt"
    f.write_text("written within the racy window")
    assert digests.file_sha256(f) == sha256_file(f)
    assert memo_entries(empty_cache) == []   # racy: an edit in the same clock tick would keep its identity
    edit_in_place(f)   # at once, possibly in the same tick as the first write
    assert digests.file_sha256(f) == sha256_file(f)


def test_a_damaged_memo_entry_is_hashed_again(empty_cache, tmp_path, not_racy):
    f = tmp_path / "a.txt"
    f.write_text("hello")
    tick()
    digests.file_sha256(f)
    (entry,) = memo_entries(empty_cache)
    for junk in ("", "{", json.dumps({"identity": [1, 2], "sha256": "0" * 64}), json.dumps([1])):
        entry.write_text(junk)
        assert digests.file_sha256(f) == sha256_file(f)


def _hash_many(args):
    cache, files = args
    os.environ["HBKIT_CACHE"] = cache
    digests.RACY_S = 0.0
    return [digests.file_sha256(f) for _ in range(5) for f in files]


def test_concurrent_writers_leave_whole_entries(empty_cache, tmp_path):
    files = []
    for i in range(12):
        files.append(tmp_path / f"f{i}.bin")
        files[-1].write_bytes(os.urandom(4096))
    tick()
    with mp.get_context("spawn").Pool(3) as pool:
        got = pool.map(_hash_many, [(str(empty_cache), [str(f) for f in files])] * 3)
    want = [sha256_file(f) for _ in range(5) for f in files]
    assert all(g == want for g in got)
    entries = memo_entries(empty_cache)
    assert len(entries) == len(files)
    assert all(json.loads(e.read_text())["sha256"] in want for e in entries)
    assert not [p for p in (empty_cache / digests.MEMO).rglob("*") if p.name.endswith(".tmp")]


def test_reads_are_hashed_as_they_are_read(tmp_path):
    f = tmp_path / "t.txt"
    f.write_bytes("\ufeffline one\nline two\n".encode())
    with digests.recording_reads() as reads:
        assert read_text(f) == "line one\nline two\n"
    assert reads == {os.path.realpath(f): sha256_file(f)}
    with digests.recording_reads() as reads:
        with digests.open_hashed(f) as fh:
            fh.read(3)   # read in part: no digest
    assert reads == {}


# --------------------------------------------------------------------------------------------------
# the key race
# --------------------------------------------------------------------------------------------------
def pairs_file(path, tag: str):
    rows = [{"group": f"g{i}", "lang": lang, "query": f"q{i} {tag} {lang}", "passage": f"p{i} {tag} {lang}",
             "answer_key": f"a{i}"} for i in range(6) for lang in ("en", "de")]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def entries(cache):
    root = cache / "corpora"
    return sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")) if root.exists() else []


def test_an_edit_while_the_build_waits_on_the_lock_is_built_under_its_own_key(empty_cache, tmp_path, not_racy):
    f = pairs_file(tmp_path / "mine.jsonl", "old")
    tick()
    old_key = corpus_cache.cache_key("user-mine", [f], {})   # seen before: the key is a stat, taken before the lock
    lock = lock_for(empty_cache / "corpora" / f"user-mine-{old_key}")
    lock.acquire()
    out = {}
    t = threading.Thread(target=lambda: out.setdefault("ds", corpora.load_training_corpus(str(f))))
    t.start()
    time.sleep(1.0)   # the loader took the key from the old bytes and now waits on the lock
    assert t.is_alive()
    pairs_file(f, "new")
    assert digests.known(f) is None
    lock.release()
    t.join(60)
    assert set(out["ds"]["query"]) == {f"q{i} new {lang}" for i in range(6) for lang in ("en", "de")}
    new_key = corpus_cache.cache_key("user-mine", [f], {})
    assert entries(empty_cache) == [f"user-mine-{new_key}"]   # nothing under the old key


@pytest.mark.parametrize("seen", [True, False])
def test_an_edit_during_the_build_is_not_stored_under_the_old_key(empty_cache, tmp_path, monkeypatch, seen):
    """Seen before: the key is taken first (a stat), so the build that read other bytes is done again. First
    sight: the key is the digest of what the build read, the new bytes, in one build."""
    monkeypatch.setattr(digests, "RACY_S", 0.0)
    f = pairs_file(tmp_path / "mine.jsonl", "old")
    tick()
    old_key = corpus_cache.cache_key("user-mine", [f], {}) if seen else corpus_cache._key("user-mine", [f], {})[0]
    if not seen:
        for e in memo_entries(empty_cache):
            e.unlink()
    real = corpora.read_pairs
    calls = []

    def edit_then_read(path):
        calls.append(1)
        if len(calls) == 1:
            pairs_file(f, "new")   # a writer replaced the bytes after the key was taken, before the builder read them
        return real(path)

    monkeypatch.setattr(corpora, "read_pairs", edit_then_read)
    ds = corpora.load_training_corpus(str(f))
    assert len(calls) == (2 if seen else 1)   # seen: built again from the new bytes
    assert all(" new " in q for q in ds["query"])
    new_key = corpus_cache.cache_key("user-mine", [f], {})
    assert new_key != old_key and entries(empty_cache) == [f"user-mine-{new_key}"]


def test_an_edit_after_the_builder_read_keeps_the_entry_true_to_its_key(empty_cache, tmp_path, monkeypatch):
    """The builder hashed what it read: those bytes are the key's, so the entry is right for its key; the next
    load sees the new bytes and builds them under theirs."""
    f = pairs_file(tmp_path / "mine.jsonl", "old")
    old_key = corpus_cache.cache_key("user-mine", [f], {})
    real = corpora.read_pairs

    def read_then_edit(path):
        ds = real(path)
        pairs_file(f, "new")
        return ds

    monkeypatch.setattr(corpora, "read_pairs", read_then_edit)
    ds = corpora.load_training_corpus(str(f))
    assert all(" old " in q for q in ds["query"]) and entries(empty_cache) == [f"user-mine-{old_key}"]
    monkeypatch.setattr(corpora, "read_pairs", real)
    ds = corpora.load_training_corpus(str(f))
    assert all(" new " in q for q in ds["query"])
    assert len(entries(empty_cache)) == 2


def parquet_rows(path, tag: str):
    pd.DataFrame([{"group": f"g{i}", "lang": l, "query": f"q{i} {tag}", "passage": f"p{i} {tag}", "answer_key": f"a{i}"}
                  for i in range(4) for l in ("en", "de")]).to_parquet(path)
    return path


def test_a_file_that_keeps_changing_is_refused_and_nothing_is_stored(empty_cache, tmp_path, monkeypatch):
    """Parquet is read by pyarrow, not through the hashing reader: a change during the build shows in its identity."""
    f = parquet_rows(tmp_path / "mine.parquet", "v0")
    real = corpora.read_pairs
    n = []

    def read_then_edit(path):
        ds = real(path)
        n.append(1)
        tick()
        parquet_rows(f, f"v{len(n)}")
        return ds

    monkeypatch.setattr(corpora, "read_pairs", read_then_edit)
    with pytest.raises(DataError, match=r"mine\.parquet changed while the corpus was being built, 3 times"):
        corpora.load_training_corpus(str(f))
    assert len(n) == corpus_cache.BUILD_TRIES and entries(empty_cache) == []


def test_a_binary_input_is_checked_by_its_digest_after_the_build(empty_cache, tmp_path, monkeypatch):
    """Parquet is read by pyarrow, not through the hashing reader: the check falls back to the file's digest now."""
    f = tmp_path / "mine.parquet"
    rows = lambda tag: pd.DataFrame([{"group": f"g{i}", "lang": l, "query": f"q{i} {tag}", "passage": f"p{i} {tag}",  # noqa: E731
                                      "answer_key": f"a{i}"} for i in range(4) for l in ("en", "de")])
    rows("old").to_parquet(f)
    real = corpora.read_pairs
    calls = []

    def read_then_edit(path):
        calls.append(1)
        if len(calls) == 1:
            tick()
            rows("new").to_parquet(f)
        return real(path)

    monkeypatch.setattr(corpora, "read_pairs", read_then_edit)
    ds = corpora.load_training_corpus(str(f))
    assert len(calls) == 2 and all(q.endswith("new") for q in ds["query"])


def _load_in_child(args):
    cache, path = args
    os.environ["HBKIT_CACHE"] = cache
    from hbkit.data import corpora as c
    from hbkit.data import corpus_cache as cc
    ds = c.load_training_corpus(path)
    return sum(cc.BUILDS.values()), sorted(ds["query"])


def test_inputs_seen_for_the_first_time_are_read_once(empty_cache, tmp_path, not_racy, monkeypatch):
    """No hash before the build: the key comes from what the build read, and is remembered for the next load."""
    f = pairs_file(tmp_path / "mine.jsonl", "v")
    tick()
    passes = []   # whole reads of the file: by file_sha256 (a plain open) or by the hashing reader (unbuffered)
    counting = lambda p, *a, **k: (passes.append(k.get("buffering")) if str(p) == str(f)  # noqa: E731
                                   else None) or open(p, *a, **k)
    for module in (digests, files):   # the hashing reader (digests) and sha256_file (files, for file_sha256)
        monkeypatch.setattr(module, "open", counting, raising=False)
    ds = corpora.load_training_corpus(str(f))
    assert passes == [0] and corpus_cache.BUILDS["user-mine"] == 1   # one pass: the build's own, hashing read
    assert sorted(corpora.load_training_corpus(str(f))["query"]) == sorted(ds["query"])
    assert passes == [0] and corpus_cache.BUILDS["user-mine"] == 1   # the next load: a stat
    assert digests.known(f) == sha256_file(f)   # (the test's own reads from here on)
    assert entries(empty_cache) == [f"user-mine-{corpus_cache.cache_key('user-mine', [f], {})}"]


def test_two_processes_seeing_new_inputs_at_once_build_once(empty_cache, tmp_path):
    f = pairs_file(tmp_path / "mine.jsonl", "v")   # fresh: racy, so the waiter hashes it, then finds the entry
    with mp.get_context("spawn").Pool(2) as pool:
        got = pool.map(_load_in_child, [(str(empty_cache), str(f))] * 2)
    assert sorted(b for b, _ in got) == [0, 1] and got[0][1] == got[1][1]
    assert len(entries(empty_cache)) == 1


# --------------------------------------------------------------------------------------------------
# the vectorised reader of the large release files
# --------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("block", [7, 64, 1 << 20])
def test_tsv_columns_reads_what_the_line_loop_reads(tmp_path, monkeypatch, block):
    """Every line problem the line loop knows, across block boundaries as small as 7 bytes."""
    import random
    from collections import Counter

    from hbkit.data import textfile

    monkeypatch.setattr(textfile, "BLOCK_BYTES", block)
    rng = random.Random(block)
    pieces = ["1\tplain", "2\twith\textra\ttabs", "3\tcr inside\rtext", "4\tcrlf\r", "", "   ", "no tab here",
              "5\tüñíçødé 中文 العربية", "6\t", "\t7 empty id", "8\ttrailing spaces  ", "1\tduplicate of one"]
    for case in range(6):
        lines = [rng.choice(pieces) for _ in range(rng.randint(0, 40))]
        body = "\n".join(lines) + rng.choice(["\n", "", "\n9\tcut sh", "\n  "])
        raw = (b"\xef\xbb\xbf" if case % 2 else b"") + body.encode()
        f = tmp_path / f"c{case}.tsv"
        f.write_bytes(raw)
        for fields in (2, 3):
            want_p, got_p = Counter(), Counter()
            want = list(textfile.tsv_rows(f, fields, want_p))
            got = [list(r) for cols in textfile.tsv_columns(f, fields, got_p)
                   for r in zip(*[c.to_pylist() for c in cols])]
            assert got == want and got_p == want_p, (case, fields)
        want_p, got_p = Counter(), Counter()
        wanted = {"1", "3", "5", "9", "absent"}
        loop = {}
        for i, text in textfile.tsv_rows(f, 2, want_p):
            if i in wanted:
                if i in loop:
                    want_p[textfile.DUPLICATE_ID] += 1
                else:
                    loop[i] = text.strip()
        assert textfile.id_texts(f, wanted, got_p) == loop and got_p == want_p
    bad = tmp_path / "bad.tsv"
    bad.write_bytes(b"1\tok\n2\tcaf\xe9\n")
    with pytest.raises(DataError, match=r"bad\.tsv: line 2, column 6: byte 0xe9 is not UTF-8"):
        list(textfile.tsv_columns(bad, 2, Counter()))
    with pytest.raises(DataError, match="not found"):
        list(textfile.tsv_columns(tmp_path / "absent.tsv", 2, Counter()))


def test_a_bad_byte_in_a_cut_last_line_is_named(tmp_path):
    from collections import Counter

    from hbkit.data import textfile

    f = tmp_path / "cut.tsv"
    f.write_bytes(b"1\tok\n2\tcaf\xe9")
    with pytest.raises(DataError, match=r"cut\.tsv: line 2, column 6: byte 0xe9"):
        textfile.id_texts(f, {"1"}, Counter())


# --------------------------------------------------------------------------------------------------
# the training set's fingerprint (the folder identity of every model): a stat for a mapped cache entry
# --------------------------------------------------------------------------------------------------
def _pairs_file(path, n=400):
    pd.DataFrame({"group": [f"g{i // 2}" for i in range(n)], "lang": ["en", "de"] * (n // 2),
                  "query": [f"query {i}" for i in range(n)], "passage": [f"the passage {i} here" for i in range(n)],
                  "answer_key": [f"k{i // 2}" for i in range(n)]}).to_parquet(path)
    return path


def test_a_cached_corpus_is_fingerprinted_once_and_then_costs_a_lookup(empty_cache, tmp_path, not_racy, monkeypatch):
    """The fingerprint of a corpus loaded from the cache is remembered by its mapped files' identities: a second
    load (and a column selection or group subsample of it, as the trainer and compare make) reads no row, and gives
    what hashing the rows gives."""
    from hbkit.experiment.plan import subsample_pairs
    from hbkit.train import run_folder

    f = _pairs_file(tmp_path / "pairs.parquet")
    first = corpora.load_training_corpus(f)
    tick()
    assert getattr(first, digests.MAPPED_AT_LOAD)
    want = {"all": run_folder._hash_rows(first),
            "cols": run_folder._hash_rows(first.select_columns(["group", "lang", "query", "passage"])),
            "sub": run_folder._hash_rows(subsample_pairs(first, 20, 0))}
    assert len(set(want.values())) == 3
    views = lambda ds: {"all": ds, "cols": digests.carry_mapped(ds, ds.select_columns(["group", "lang", "query", "passage"])),  # noqa: E731
                        "sub": subsample_pairs(ds, 20, 0)}
    assert {k: run_folder.pairs_fingerprint(v) for k, v in views(first).items()} == want
    calls = []
    monkeypatch.setattr(run_folder, "_hash_rows", lambda p: calls.append(len(p)) or "hashed again")
    again = corpora.load_training_corpus(f)
    assert {k: run_folder.pairs_fingerprint(v) for k, v in views(again).items()} == want and calls == []


def test_an_edit_to_a_mapped_cache_file_is_hashed_again(empty_cache, tmp_path, not_racy):
    """A cache file edited with its size and mtime kept (a new ctime) gives a new identity at the next load: the
    fingerprint is that of the rows now, not the one remembered; a set held in memory is always hashed."""
    import datasets

    from hbkit.train import run_folder

    f = _pairs_file(tmp_path / "pairs.parquet")
    ds = corpora.load_training_corpus(f)
    tick()
    before = run_folder.pairs_fingerprint(ds)
    (arrow,) = [c["filename"] for c in ds.cache_files]
    del ds
    tick()
    st, blob = os.stat(arrow), bytearray(open(arrow, "rb").read())
    i = blob.index(b"the passage 7 here")
    blob[i:i + 3] = b"THE"                      # one passage's text, size and mtime kept
    open(arrow, "wb").write(bytes(blob))
    os.utime(arrow, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert os.stat(arrow).st_size == st.st_size and os.stat(arrow).st_mtime_ns == st.st_mtime_ns
    tick()
    now = corpora.load_training_corpus(f)
    assert "THE passage 7 here" in now["passage"]
    assert run_folder.pairs_fingerprint(now) == run_folder._hash_rows(now) != before
    in_memory = datasets.Dataset.from_pandas(pd.read_parquet(f))
    assert run_folder._mapped_source(in_memory) is None
    assert run_folder.pairs_fingerprint(in_memory) == run_folder._hash_rows(in_memory)


def test_a_fingerprint_of_files_written_just_now_is_not_remembered(empty_cache, tmp_path, monkeypatch):
    """The racy rule: a set whose files were written within RACY_S of the hashing is hashed, not remembered."""
    from hbkit.train import run_folder

    ds = corpora.load_training_corpus(_pairs_file(tmp_path / "pairs.parquet"))
    assert run_folder.pairs_fingerprint(ds) == run_folder._hash_rows(ds)
    assert not list((empty_cache / digests.MEMO / "derived").rglob("*.json"))
