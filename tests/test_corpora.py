"""Training corpora: SQuAD translate-train in the release layout, xquad-train, user pairs, the cache, overlaps."""
import json
import os
import warnings
from pathlib import Path

import pandas as pd
import pytest

from hbkit.data import corpora, corpus_cache
from hbkit.data.checks import ZeroShotError, check_zero_shot, normalize_text, overlap_counts
from hbkit.data.pairs import COLUMNS, validate_pairs
from hbkit.data.registry import DataError
from hbkit.data.releases import translate_train

ROOT = Path(__file__).resolve().parents[1]

EN = [("Alpha", "Alpha is a city. It has a river. The river is long.", [
          ("q1", "What is Alpha?", "a city"), ("q2", "What does Alpha have?", "a river"),
          ("q3", "Which river is Alpha's?", "a river"), ("q4", "How long is the river?", "long")]),
      ("Beta", "Beta is a town. It sits on a hill.", [
          ("q5", "What is Beta?", "a town"), ("q6", "Where does Beta sit?", "a hill")])]
DE = [("Alpha", "Alpha ist eine Stadt. Sie hat einen Fluss. Der Fluss ist lang.", [
          ("q1", "Was ist Alpha?", "eine Stadt"), ("q2", "Was hat Alpha?", "einen Fluss"),
          ("q3", "Welcher Fluss gehört Alpha?", "einen Fluss"),
          ("q4", "Wie lang ist der Fluss?", ("lang", 999)),            # answer_start outside the context
          ("qX", "Gibt es das?", "Stadt")]),                            # id not in English SQuAD
      ("Beta", "Beta ist eine Stadt. Sie liegt auf einem Hügel.", [
          ("q5", "Was ist Beta?", ("eine Kleinstadt", 5))])]           # text not at answer_start
ES = [("Alpha", "Alfa es una ciudad. Tiene un río. El río es largo.", [
          ("q1", "¿Qué es Alfa?", "una ciudad"), ("q2", "¿Qué tiene Alfa?", "un río"),
          ("q2", "¿Qué tiene Alfa?", "un río"),                          # duplicate id
          ("q3", "¿Qué río es de Alfa?", "un río"), ("q4", "¿Qué tan largo es el río?", "largo")]),
      ("Beta", "Beta es un pueblo. Está en una colina.", [("q5", "¿Qué es Beta?", "un pueblo")])]


def squad_json(articles) -> dict:
    data = []
    for title, ctx, qs in articles:
        qas = []
        for qid, q, ans in qs:
            text, start = ans if isinstance(ans, tuple) else (ans, ctx.index(ans))
            qas.append({"id": qid, "question": q, "answers": [{"answer_start": start, "text": text}]})
        data.append({"title": title, "paragraphs": [{"context": ctx, "qas": qas}]})
    return {"version": "1.1", "data": data}


def write_release(folder: Path, flat: bool = False) -> Path:
    """SQuAD v1.1 train and two translate-train files in the release layout (see data/README.md)."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "train-v1.1.json").write_text(json.dumps(squad_json(EN)))
    tt = folder if flat else folder / "translate-train"
    tt.mkdir(exist_ok=True)
    for lang, arts in (("de", DE), ("es", ES)):
        (tt / f"squad.translate.train.en-{lang}.json").write_text(json.dumps(squad_json(arts), ensure_ascii=False))
    return folder


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("HBKIT_CACHE", str(tmp_path / "cache"))
    corpus_cache.BUILDS.clear()
    return tmp_path / "cache"


@pytest.fixture
def release(tmp_path):
    return write_release(tmp_path / "squad-translate-train")


LANGS = ["de", "en", "es"]


def rows(ds) -> dict:
    return {(r["group"], r["lang"]): r for r in ds}


def test_squad_translate_train_rows_groups_and_answer_keys(cache, release):
    ds = corpora.load_training_corpus("squad-translate-train", release, languages=LANGS)
    assert set(COLUMNS) <= set(ds.column_names) and {"source", "context", "article"} <= set(ds.column_names)
    r = rows(ds)
    assert sorted(k for k in r if k[1] == "en") == [(f"q{i}", "en") for i in range(1, 7)]
    assert sorted(k[0] for k in r if k[1] == "de") == ["q1", "q2", "q3"]
    assert sorted(k[0] for k in r if k[1] == "es") == ["q1", "q2", "q3", "q4", "q5"]
    # the passage is the sentence holding the answer, in each language
    assert r[("q2", "de")]["passage"] == "Sie hat einen Fluss."
    assert r[("q4", "es")]["passage"] == "El río es largo."
    assert r[("q1", "en")]["query"] == "What is Alpha?"
    # two questions answered by the same English sentence share the key in every language
    for lang in ("en", "de", "es"):
        assert r[("q2", lang)]["answer_key"] == r[("q3", lang)]["answer_key"] == "Alpha:0:1"
    assert r[("q1", "es")]["answer_key"] == r[("q1", "en")]["answer_key"] == "Alpha:0:0"
    assert r[("q4", "es")]["answer_key"] != r[("q2", "es")]["answer_key"]
    # sorted by (lang, group); each (group, lang) once
    keys = list(zip(ds["lang"], ds["group"]))
    assert keys == sorted(keys) and len(set(keys)) == len(keys)


def test_skips_counted_per_language_and_reason(cache, release, caplog):
    with caplog.at_level("WARNING", logger="hbkit.data.corpora"):
        folder, stats = corpora.build_corpus("squad-translate-train", release, languages=LANGS)
    s = stats.set_index("lang")
    assert s.loc["de", "skipped: answer_start outside context"] == 1
    assert s.loc["de", "skipped: answer text not at answer_start"] == 1
    assert s.loc["de", "skipped: id not in English SQuAD train (or skipped there)"] == 1
    assert s.loc["es", "skipped: duplicate id"] == 1
    assert s.loc["en", "skipped"] == 0 and s.loc["es", "skipped"] == 1 and s.loc["de", "skipped"] == 3
    assert list(s["rows"][["de", "en", "es"]]) == [3, 6, 5] and s.loc["all", "rows"] == 14
    assert s.loc["en", "rows in single-language groups"] == 1  # q6 exists in English only: kept, counted
    assert "answer_start outside context" in caplog.text and " de: " in caplog.text
    saved = pd.read_csv(folder / "stats.csv")
    pd.testing.assert_frame_equal(saved, stats)
    assert json.loads((folder / "stats.json").read_text())["stats"][0]["lang"] == "de"
    ds = corpora.load_training_corpus("squad-translate-train", release, languages=LANGS)
    pd.testing.assert_frame_equal(corpus_cache.corpus_stats(ds), stats)


def test_paragraph_passages_and_flat_layout(cache, tmp_path):
    flat = write_release(tmp_path / "flat", flat=True)
    ds = corpora.load_training_corpus("squad-translate-train", flat, languages=["en", "de"], passage="paragraph")
    r = rows(ds)
    assert r[("q1", "de")]["passage"] == DE[0][1]
    assert r[("q1", "de")]["answer_key"] == r[("q4", "en")]["answer_key"] == "Alpha:0"
    assert "es" not in set(ds["lang"])


def test_missing_language_file_and_bad_arguments(cache, release):
    with pytest.raises(DataError, match=r"squad.translate.train.en-ru.json not found"):
        corpora.load_training_corpus("squad-translate-train", release, languages=["en", "ru"])
    with pytest.raises(DataError, match="no language 'fr'"):
        corpora.load_training_corpus("squad-translate-train", release, languages=["en", "fr"])
    with pytest.raises(DataError, match="passage='sent'"):
        corpora.load_training_corpus("squad-translate-train", release, passage="sent")
    with pytest.raises(DataError, match="does not hold SQuAD translate-train"):
        corpora.load_training_corpus("squad-translate-train", release.parent / "nowhere")
    with pytest.raises(DataError, match="unknown training corpus 'squad'"):
        corpora.load_training_corpus("squad")
    assert corpus_cache.BUILDS["squad-translate-train"] == 0  # every argument is checked before any work


def test_truncated_release_file(cache, release):
    f = release / "translate-train" / "squad.translate.train.en-de.json"
    f.write_text(f.read_text()[:-40])
    with pytest.raises(DataError, match=r"en-de.json: line \d+, column \d+: not valid JSON .*truncated"):
        corpora.load_training_corpus("squad-translate-train", release, languages=LANGS)
    assert not list((cache / "corpora").glob("squad-translate-train-*/COMPLETE"))


def test_cache_reused_then_rebuilt_when_an_input_changes(cache, release):
    a = corpora.load_training_corpus("squad-translate-train", release, languages=LANGS)
    b = corpora.load_training_corpus("squad-translate-train", release, languages=LANGS)
    assert corpus_cache.BUILDS["squad-translate-train"] == 1
    assert a.cache_files and b.cache_files[0]["filename"] == a.cache_files[0]["filename"]  # memory-mapped
    corpora.load_training_corpus("squad-translate-train", release, languages=LANGS, rebuild=True)
    assert corpus_cache.BUILDS["squad-translate-train"] == 2
    f = release / "translate-train" / "squad.translate.train.en-es.json"
    obj = json.loads(f.read_text())
    obj["data"][1]["paragraphs"][0]["qas"][0]["question"] = "¿Qué cosa es Beta?"
    f.write_text(json.dumps(obj, ensure_ascii=False))
    c = corpora.load_training_corpus("squad-translate-train", release, languages=LANGS)
    assert corpus_cache.BUILDS["squad-translate-train"] == 3
    assert rows(c)[("q5", "es")]["query"] == "¿Qué cosa es Beta?"
    corpora.load_training_corpus("squad-translate-train", release, languages=["en", "de"])  # other options: other key
    assert corpus_cache.BUILDS["squad-translate-train"] == 4


def test_build_killed_half_way_leaves_no_usable_cache(cache, release, monkeypatch):
    real = corpus_cache.write_part
    calls = []

    def dies(path, cols):
        calls.append(path.stem)
        if path.stem == "es":
            raise KeyboardInterrupt("killed")
        return real(path, cols)

    monkeypatch.setattr(translate_train, "write_part", dies)
    with pytest.raises(KeyboardInterrupt):
        corpora.load_training_corpus("squad-translate-train", release, languages=LANGS, num_proc=1)
    assert "de" in calls  # it died after writing part of the corpus
    root = cache / "corpora"
    assert not [p for p in root.iterdir() if p.is_dir()]  # neither a target nor a temporary folder is left
    monkeypatch.setattr(translate_train, "write_part", real)
    ds = corpora.load_training_corpus("squad-translate-train", release, languages=LANGS)
    assert len(ds) == 14 and corpus_cache.BUILDS["squad-translate-train"] == 1
    # a half-written folder without the COMPLETE marker (a SIGKILL after the rename is impossible, but a copy
    # could be partial) is not taken for a finished cache
    folder = Path(ds.cache_files[0]["filename"]).parent.parent
    (folder / "COMPLETE").unlink()
    corpora.load_training_corpus("squad-translate-train", release, languages=LANGS)
    assert corpus_cache.BUILDS["squad-translate-train"] == 2


def _die_mid_build(release: str) -> None:
    real = corpus_cache.write_part

    def dies(path, cols):
        if path.stem == "es":
            os._exit(9)  # like SIGKILL: no exception handler, no finally, the temporary folder stays
        return real(path, cols)

    translate_train.write_part = dies
    corpora.load_training_corpus("squad-translate-train", release, languages=LANGS, num_proc=1)


def test_process_killed_mid_build_leaves_a_stale_folder_that_is_never_used(cache, release):
    import multiprocessing as mp

    p = mp.get_context("fork").Process(target=_die_mid_build, args=(str(release),))
    p.start()
    p.join(120)
    assert p.exitcode == 9
    root = cache / "corpora"
    stale = [d for d in root.iterdir() if d.is_dir()]
    assert len(stale) == 1 and stale[0].name.startswith(".squad-translate-train-") and stale[0].name.endswith(".tmp")
    assert (stale[0] / "_parts" / "de.arrow").is_file()  # it did die half-way
    ds = corpora.load_training_corpus("squad-translate-train", release, languages=LANGS)
    assert len(ds) == 14 and corpus_cache.BUILDS["squad-translate-train"] == 1
    assert [d.name for d in root.iterdir() if d.is_dir()] == [Path(ds.cache_files[0]["filename"]).parent.parent.name]


def _load_in_child(release: str) -> dict:
    import hashlib

    ds = corpora.load_training_corpus("squad-translate-train", release, languages=LANGS, num_proc=1)
    blob = json.dumps([ds[i] for i in range(len(ds))], sort_keys=True).encode()
    return {"builds": corpus_cache.BUILDS["squad-translate-train"], "pid": os.getpid(),
            "sha": hashlib.sha256(blob).hexdigest()}


def test_three_processes_build_once(cache, release):
    import multiprocessing as mp

    # fork: the children start at once with hbkit already imported, so they really race for the empty cache; three
    # processes of their own (a pool on a busy machine may hand two loads to one worker, which then never race)
    ctx = mp.get_context("fork")
    results = ctx.Queue()
    procs = [ctx.Process(target=lambda: results.put(_load_in_child(str(release)))) for _ in range(3)]
    for p in procs:
        p.start()
    outs = [results.get(timeout=600) for _ in procs]
    for p in procs:
        p.join(timeout=60)
    assert all(p.exitcode == 0 for p in procs)
    assert len({o["pid"] for o in outs}) == 3
    assert sum(o["builds"] for o in outs) == 1
    assert len({o["sha"] for o in outs}) == 1
    assert len(list((cache / "corpora").glob("squad-translate-train-*/COMPLETE"))) == 1


# --------------------------------------------------------------------------------------------------
# xquad-train and zero-shot separation (real XQuAD data)
# --------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def xquad_train_ds(data_dir, tmp_path_factory):
    mp = pytest.MonkeyPatch()
    mp.setenv("HBKIT_CACHE", str(tmp_path_factory.mktemp("xq-cache")))
    ds = corpora.load_training_corpus("xquad-train", data_dir)
    yield ds
    mp.undo()


def test_xquad_train_answer_keys(xquad_train_ds):
    ds = xquad_train_ds
    df = ds.to_pandas()
    assert len(df) == 894 * 11 and df["group"].nunique() == 894 and set(df["source"]) == {"xquad-train"}
    # one key per group, the same in every language (parallel_pairs' answer identity)
    assert (df.groupby("group")["answer_key"].nunique() == 1).all()
    assert df["answer_key"].str.startswith("xquad:").all()
    assert df["answer_key"].nunique() < df["group"].nunique()  # questions sharing an answer sentence share it


def test_overlap_xquad_train_in_domain_and_refusals(xquad_train_ds, data_dir):
    from hbkit.data.benchmarks import load_benchmark

    benches = {"xquad-r-eval": load_benchmark("xquad-r-eval", data_dir),
               "xquad-r": load_benchmark("xquad-r", data_dir, languages=["en", "de"])}
    counts = overlap_counts(xquad_train_ds, benches)
    c = counts.set_index(["benchmark", "field", "match"])
    assert c["known_in_domain"].all()
    assert c.loc[("xquad-r-eval", "query", "exact"), "bench_matched"] == 0
    # the training articles are in xquad-r: reference count with plain Python sets
    shared = set(benches["xquad-r"].queries["text"]) & set(xquad_train_ds["query"])
    assert len(shared) > 1700
    assert c.loc[("xquad-r", "query", "exact"), "bench_matched"] == len(shared)
    assert c.loc[("xquad-r", "query", "normalised"), "bench_matched"] >= len(shared)
    with pytest.raises(ZeroShotError, match=rf"xquad-r: {len(shared)} of its \d+ questions occur"):
        check_zero_shot(counts)
    with pytest.warns(UserWarning, match="not zero-shot"):
        check_zero_shot(counts, force=True)
    with pytest.warns(UserWarning, match="xquad-r-eval: .*in-domain"):
        check_zero_shot(counts[counts["benchmark"] == "xquad-r-eval"])


def test_overlap_counts_a_planted_question(cache, data_dir):
    from hbkit.data.benchmarks import load_benchmark

    bench = load_benchmark("xquad-r-eval", data_dir, languages=["en"])
    q = bench.queries["text"].iloc[0]
    train = validate_pairs(pd.DataFrame({
        "group": ["a", "b", "c"], "lang": ["en"] * 3,
        "query": ["  " + q.upper().rstrip("?") + " !", "Who wrote Hamlet?", "Is this new?"],
        "passage": ["x", bench.candidates["text"].iloc[5], "z"]}), origin="planted")
    counts = overlap_counts(train, {"xquad-r-eval": bench}).set_index(["field", "match"])
    assert counts.loc[("query", "exact"), "bench_matched"] == 0
    assert counts.loc[("query", "normalised"), "bench_matched"] == 1
    assert counts.loc[("query", "normalised"), "examples"] == [q]
    assert counts.loc[("passage", "exact"), "bench_matched"] >= 1
    assert not counts["known_in_domain"].any()
    with pytest.raises(ZeroShotError, match=r"xquad-r-eval: 0 of its \d+ questions occur in the training corpus verbatim and 1 after"):
        check_zero_shot(counts.reset_index())


def test_normalize_text():
    assert normalize_text("  Ｗhat’s   THE\tcapital?! ") == "whats the capital"
    assert normalize_text("¿Qué es «Alfa»?") == "qué es alfa"


# --------------------------------------------------------------------------------------------------
# a user's own pairs
# --------------------------------------------------------------------------------------------------
GOOD = [{"group": "g1", "lang": "en", "query": "q one", "passage": "p one"},
        {"group": "g1", "lang": "de", "query": "f eins", "passage": "p eins"},
        {"group": "g2", "lang": "en", "query": "q two", "passage": "p two", "answer_key": "k2"}]


def write_jsonl(path, recs, raw=None):
    lines = [json.dumps(r, ensure_ascii=False) for r in recs]
    if raw:
        lines.insert(raw[0], raw[1])
    path.write_text("\n".join(lines) + "\n")
    return path


def test_user_pairs_jsonl_csv_parquet_roundtrip(cache, tmp_path):
    j = write_jsonl(tmp_path / "p.jsonl", GOOD)
    pd.DataFrame(GOOD).fillna({"answer_key": "g1"}).to_csv(tmp_path / "p.csv", index=False)
    pd.DataFrame(GOOD).to_parquet(tmp_path / "p.parquet")
    for f in (j, tmp_path / "p.csv", tmp_path / "p.parquet"):
        ds = corpora.load_training_corpus(f)
        r = rows(ds)
        assert r[("g2", "en")]["answer_key"] == "k2" and r[("g1", "de")]["answer_key"] == "g1"
        assert list(zip(ds["lang"], ds["group"])) == [("de", "g1"), ("en", "g1"), ("en", "g2")]
        assert r[("g1", "en")]["source"] == str(f)
    assert corpora.load_training_corpus(j, languages=["en"])["lang"] == ["en", "en"]
    corpora.load_training_corpus(j)
    assert sum(v for k, v in corpus_cache.BUILDS.items() if k.startswith("user-")) == 3  # each file validated once


@pytest.mark.parametrize("recs,raw,match", [
    (GOOD, (2, '{"group": "g3", "lang": "en", "query": "x"'), r"p.jsonl: line 3: malformed JSON"),
    ([{k: v for k, v in r.items() if k != "passage"} for r in GOOD], None, r"missing column\(s\) \['passage'\]"),
    (GOOD + [{"group": "g4", "lang": "en", "query": "   ", "passage": "p"}], None, r"line 4: 'query' is empty"),
    (GOOD + [{"group": "g4", "lang": "en", "query": "q", "passage": None}], None, r"line 4: 'passage' is empty"),
    (GOOD + [{"group": 5, "lang": "en", "query": "q", "passage": "p"}], None, r"line 4: column 'group' is int 5"),
    (GOOD + [{"group": "g1", "lang": "en", "query": "q", "passage": "p"}], None,
     r"line 4: duplicate \(group, lang\) = \('g1', 'en'\), also at line 1"),
    (GOOD + [{"group": "g5", "lang": "EN", "query": "q", "passage": "p"}], None,
     r"line 4: lang 'EN' is not a two-letter lower-case ISO 639-1 code .*did you mean 'en'"),
    (GOOD + [{"group": "g5", "lang": "zh-CN", "query": "q", "passage": "p"}], None, r"line 4: lang 'zh-CN'"),
])
def test_user_jsonl_errors(cache, tmp_path, recs, raw, match):
    f = write_jsonl(tmp_path / "p.jsonl", recs, raw)
    with pytest.raises(DataError, match=match):
        corpora.load_training_corpus(f)
    assert not list((cache / "corpora").glob("*/COMPLETE")) if (cache / "corpora").exists() else True


def test_user_csv_errors(cache, tmp_path):
    f = tmp_path / "p.csv"
    f.write_text('group,lang,query,passage\ng1,en,"a query\nover two lines",p1\ng1,de,q,\n')
    with pytest.raises(DataError, match=r"p.csv: line 4: 'passage' is empty"):  # line numbers count the newline
        corpora.load_training_corpus(f)
    f.write_text("group,lang,query,passage\ng1,en,q,p,extra\n")
    with pytest.raises(DataError, match=r"line 2: 5 fields, the header has 4"):
        corpora.load_training_corpus(f)
    f.write_text("")
    with pytest.raises(DataError, match="empty CSV file"):
        corpora.load_training_corpus(f)


def test_user_parquet_and_dataset_errors(cache, tmp_path):
    import datasets

    df = pd.DataFrame(GOOD)
    df.assign(group=[1, 1, 2]).to_parquet(tmp_path / "int.parquet")
    with pytest.raises(DataError, match=r"int.parquet: column 'group' has type int64, expected strings"):
        corpora.load_training_corpus(tmp_path / "int.parquet")
    (tmp_path / "cut.parquet").write_bytes(b"PAR1" + b"\0" * 10)
    with pytest.raises(DataError, match="not a readable Parquet file"):
        corpora.load_training_corpus(tmp_path / "cut.parquet")
    dup = datasets.Dataset.from_pandas(pd.concat([df, df.iloc[[0]]]), preserve_index=False)
    with pytest.raises(DataError, match=r"dataset: row 4: duplicate \(group, lang\)"):
        corpora.load_training_corpus(dup)
    with pytest.warns(UserWarning, match="lang 'it' is not a language of the evaluation benchmarks"):
        ds = corpora.load_training_corpus(datasets.Dataset.from_pandas(df.assign(lang=["en", "it", "en"])))
    assert len(ds) == 3
    with pytest.raises(DataError, match="unknown pairs format '.txt'"):
        (tmp_path / "p.txt").write_text("x")
        corpora.load_training_corpus(tmp_path / "p.txt")


def test_user_pairs_encoding_bom_and_long_fields(cache, tmp_path):
    """Non-UTF-8 bytes are named by file, line, column and byte (not a bare codec message); a byte-order mark is
    accepted; a CSV passage over csv's default 128 KiB field limit is data, not an error."""
    j = write_jsonl(tmp_path / "p.jsonl", GOOD)
    raw = j.read_bytes().splitlines(keepends=True)
    raw[1] = raw[1].replace(b"eins", b"eins\xff")
    j.write_bytes(b"".join(raw))
    with pytest.raises(DataError, match=r"p.jsonl: line 2, column \d+: byte 0xff is not UTF-8; save the pairs file as "
                                        r"UTF-8"):
        corpora.load_training_corpus(j)
    c = tmp_path / "p.csv"
    c.write_bytes(b"group,lang,query,passage\ng1,en,q,p\ng1,de,caf\xe9,p\n")
    with pytest.raises(DataError, match=r"p.csv: line 3, column 10: byte 0xe9 is not UTF-8"):
        corpora.load_training_corpus(c)
    bom = write_jsonl(tmp_path / "bom.jsonl", GOOD)
    bom.write_bytes(b"\xef\xbb\xbf" + bom.read_bytes())
    assert len(corpora.load_training_corpus(bom)) == 3
    long = "word " * 40_000   # 200 KB
    pd.DataFrame(GOOD).assign(passage=["p", long, "p2"]).drop(columns="answer_key").to_csv(tmp_path / "long.csv",
                                                                                        index=False)
    (tmp_path / "long.csv").write_bytes(b"\xef\xbb\xbf" + (tmp_path / "long.csv").read_bytes())
    ds = corpora.load_training_corpus(tmp_path / "long.csv")
    assert sorted(len(p) for p in ds["passage"])[-1] == len(long)


def test_a_translation_file_holding_english_is_noticed(cache, tmp_path):
    """A 'German' translate-train file that holds the English text is built (it is valid SQuAD) but counted and
    warned about, with the count and the file; a real translation (the fixture's German) is not."""
    root = write_release(tmp_path / "release")
    fake = json.loads((root / "train-v1.1.json").read_text())
    (root / "translate-train" / "squad.translate.train.en-de.json").write_text(json.dumps(fake))
    with pytest.warns(UserWarning, match=r"squad-translate-train de: 6 of 6 questions \(100%\) are the English ones "
                                         r"word for word; .*en-de\.json may hold the English text"):
        _, stats = corpora.build_corpus("squad-translate-train", root, languages=LANGS)
    s = stats.set_index("lang")
    assert s.loc["de", "questions identical to English"] == 6 and s.loc["es", "questions identical to English"] == 0
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        corpora.build_corpus("squad-translate-train", write_release(tmp_path / "good"), languages=LANGS)
