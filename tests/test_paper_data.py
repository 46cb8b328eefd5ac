"""The paper's data: mMARCO joined across languages by id, SQuADShifts read as English pairs, their downloaders
against local servers, a mix of corpora, and the multi-corpus sampler's guarantees (one corpus per batch, drawn in
proportion to its rows, every hybrid guarantee inside it)."""
import hashlib
import re
from collections import Counter

import numpy as np
import pytest
from hub_fake import FakeHub, hub_run
from paper_fixtures import COLLECTION, QUERIES, TRIPLES, write_mmarco, write_squadshifts

from hbkit.data.corpora import load_training_corpus
from hbkit.data.registry import DataError
from hbkit.data.releases.mmarco import mmarco_dir, mmarco_pairs, parse_size
from hbkit.data.releases.squadshifts import download_squadshifts, squadshifts_pairs
from hbkit.data.sources import HUB_SOURCES, SQUADSHIFTS, sources_table
from hbkit.train.sampling import MultiCorpusBatchSampler, make_sampler
from hbkit.train.st_training import PairCollator


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("HBKIT_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("HBKIT_DATA_DIR", raising=False)


def test_mmarco_joins_every_language_by_id(tmp_path, cache):
    """Each language's files come in their own order; rows are joined by query and passage id, a query a language
    lacks is skipped and counted, and the sample has the stated size."""
    pos = write_mmarco(tmp_path / "mmarco", drop={"de": "1000"})
    ds = mmarco_pairs(tmp_path, ["en", "de", "es"], queries=60)
    df = ds.to_pandas()
    assert set(df.lang) == {"en", "de", "es"} and df.group.nunique() == 60
    assert len(df) == 3 * 60 - 1 and not ((df.group == "mmarco/1000") & (df.lang == "de")).any()
    for r in df.itertuples():
        qid = r.group.split("/")[1]
        assert r.query.startswith(r.lang) and r.query.endswith(f"number {qid}?")   # its own language, its own query
        assert r.passage.startswith(r.lang) and f"number {qid} " in r.passage      # its positive, same language
        assert r.answer_key == f"mmarco:{pos[qid]}" and r.source == "mmarco"
    stats = next((tmp_path / "cache" / "corpora").glob("mmarco-*/stats.csv")).read_text()
    assert "query id absent" in stats
    small = mmarco_pairs(tmp_path, ["en"], queries=25).to_pandas()
    assert small.group.nunique() == 25 and set(small.group) <= set(df.group)   # a seeded sample, the same rule


def test_mmarco_specs_and_missing_files_are_named(tmp_path, cache):
    assert parse_size("mmarco") == 100_000 and parse_size("mmarco:200k") == 200_000
    assert parse_size("mmarco:1_000") == 1000
    with pytest.raises(DataError, match="mmarco:200000"):
        parse_size("mmarco:lots")
    write_mmarco(tmp_path / "mmarco", langs=("en",))
    with pytest.raises(DataError, match=r"lacks .*german_queries\.train\.tsv .*hbkit data download mmarco"):
        mmarco_dir(tmp_path, ["en", "de"])
    with pytest.raises(DataError, match="has no language 'th'"):
        mmarco_dir(tmp_path, ["th"])
    (tmp_path / "mmarco" / QUERIES.format(name="english")).write_bytes(b"1000\tcaf\xe9?\n")
    with pytest.raises(DataError, match=r"english_queries\.train\.tsv: line 1, column \d+: byte 0xe9 is not UTF-8"):
        mmarco_pairs(tmp_path, ["en"], queries=10)


def test_mmarco_from_the_hub_through_a_local_server(tmp_path):
    """hbkit's own hub download path (huggingface_hub at the pinned revision, HF_ENDPOINT) fetches the files into
    the hub layout; a size that differs from the registry's is refused and its file removed."""
    release = tmp_path / "release"
    write_mmarco(release, langs=("en", "de"))
    hub = FakeHub({HUB_SOURCES["mmarco"]["repo"]: release},
                  {HUB_SOURCES["mmarco"]["repo"]: HUB_SOURCES["mmarco"]["revision"]})
    dest = tmp_path / "got"
    try:
        code = ("from hbkit.data.sources import HUB_SOURCES; HUB_SOURCES['mmarco']['sizes'].clear(); "
                f"from hbkit.data.releases.mmarco import download_mmarco; print(download_mmarco({str(dest)!r}, ['en', 'de']))")
        r = hub_run(tmp_path, hub, code)
        assert r.returncode == 0, r.stderr[-3000:]
        for rel in (TRIPLES, QUERIES.format(name="german"), COLLECTION.format(name="english")):
            assert (dest / rel).read_bytes() == (release / rel).read_bytes()
        assert any(f"/resolve/{HUB_SOURCES['mmarco']['revision']}/{TRIPLES}" in p for _, p in hub.requests)
        code = ("from hbkit.data.sources import HUB_SOURCES; HUB_SOURCES['mmarco']['sizes'].clear(); "
                f"HUB_SOURCES['mmarco']['sizes']['{TRIPLES}'] = 5; "
                f"from hbkit.data.releases.mmarco import download_mmarco; download_mmarco({str(tmp_path / 'bad')!r}, ['en'])")
        r = hub_run(tmp_path / "other", hub, code)
        assert r.returncode != 0 and "the release has 5" in r.stderr and not (tmp_path / "bad" / TRIPLES).exists()
    finally:
        hub.close()


def test_squadshifts_reads_the_release_as_english_pairs(tmp_path, cache):
    write_squadshifts(tmp_path / "squadshifts")
    ds = squadshifts_pairs(tmp_path)
    df = ds.to_pandas()
    assert len(df) == 4 * 30 and set(df.lang) == {"en"} and df.group.str.startswith("squadshifts/").all()
    assert set(df.article.str.split(":").str[0]) == set(SQUADSHIFTS["files"])
    for r in df.itertuples():
        year = re.search(r"story (\d+)", r.query).group(1)
        assert r.passage == f"It was built in {1800 + int(year)}."   # the answer's sentence, offsets kept exact
        assert r.query == r.query.strip()
    with pytest.raises(DataError, match="has no domain 'news'"):
        squadshifts_pairs(tmp_path, ["news"])


def test_squadshifts_download_from_a_local_server(server, tmp_path, monkeypatch):
    """The authors' files at the registry's address arrive whole and checked; changed bytes are refused."""
    root, url = server
    write_squadshifts(root)
    monkeypatch.setitem(SQUADSHIFTS, "url", url + "/{file}")
    for d, (fname, _, _, n) in list(SQUADSHIFTS["files"].items()):
        blob = (root / fname).read_bytes()
        monkeypatch.setitem(SQUADSHIFTS["files"], d, (fname, len(blob), hashlib.sha256(blob).hexdigest(), n))
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("HBKIT_OFFLINE", raising=False)
    from hbkit.app.cli import main
    assert main(["data", "download", "squadshifts", "--data-dir", str(tmp_path / "data"), "--languages", "nyt,reddit"]) == 0
    assert sorted(p.name for p in (tmp_path / "data" / "squadshifts").iterdir()) == ["nyt_v1.0.json", "reddit_v1.0.json"]
    dest = download_squadshifts(tmp_path / "got")
    assert sorted(p.name for p in dest.iterdir()) == sorted(f for f, *_ in SQUADSHIFTS["files"].values())
    (root / "nyt_v1.0.json").write_bytes((root / "nyt_v1.0.json").read_bytes().replace(b"story", b"stori"))
    with pytest.raises(DataError, match="sha256"):
        download_squadshifts(tmp_path / "bad", ["nyt"])
    assert not (tmp_path / "bad" / "nyt_v1.0.json").exists()


def test_one_registry_lists_every_source(capsys, monkeypatch):
    from hbkit.app.cli import main
    assert main(["data", "sources"]) == 0 and "unicamp-dl/mmarco" in capsys.readouterr().out
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert main(["data", "download", "mmarco", "--data-dir", "/nonexistent"]) == 2
    assert "cannot download mMARCO while offline" in capsys.readouterr().err
    t = sources_table()
    assert {"xquad", "xquad-r", "mlqa-r", "tydiqa", "squad-translate-train", "miracl", "miracl-corpus", "mmarco",
            "squadshifts", "FacebookAI/xlm-roberta-base", "sentence-transformers/LaBSE",
            "intfloat/multilingual-e5-small"} <= set(t.source)
    assert t.revision.str.fullmatch(r"[0-9a-f]{40}|-").all()
    assert t.set_index("source").loc["squadshifts", "sha256"] == 4


@pytest.fixture
def mix(tmp_path, cache, data_dir):
    (tmp_path / "xquad-r").symlink_to(data_dir / "xquad-r")
    write_mmarco(tmp_path / "mmarco", n_queries=120)
    return load_training_corpus("mmarco:120+xquad-train", tmp_path, languages=["en", "de", "es"])


def test_a_mix_names_each_rows_corpus(mix):
    df = mix.to_pandas()
    assert set(df.corpus) == {"mmarco", "xquad-train"}
    assert all(g.startswith(c + "/") and k.startswith(c + "/") for g, k, c in zip(df.group, df.answer_key, df.corpus))
    assert set(df.lang) == {"en", "de", "es"}
    with pytest.raises(DataError, match="part 'mmarco' has none of the languages"):
        load_training_corpus("mmarco+xquad-train", None, languages=["th"])


def test_the_multi_corpus_sampler_draws_one_corpus_per_batch(mix):
    df = mix.to_pandas()
    s = make_sampler("hybrid", alpha=0.5, seed=3)(mix, batch_size=8)
    assert isinstance(s, MultiCorpusBatchSampler) and len(s) == s.n_batches
    share = {c: float((df.corpus == c).mean()) for c in s.corpora}
    seen, kinds = Counter(), Counter()
    for epoch in range(30):
        s.set_epoch(epoch)
        for info, pairs in s.global_batches():
            q, p = df.iloc[pairs[:, 0]], df.iloc[pairs[:, 1]]
            assert set(q.corpus) == set(p.corpus) == {info.corpus}          # one corpus per batch
            assert (q.group.to_numpy() == p.group.to_numpy()).all()         # each pair: one group
            assert p.answer_key.is_unique and p.passage.is_unique          # no positive is another's negative
            if info.kind == "xx":
                assert set(q.lang) == set(p.lang) == {info.lang}
            else:
                assert (q.lang.to_numpy() != p.lang.to_numpy()).all()
            seen[info.corpus] += 1
            kinds[info.kind] += 1
    n = sum(seen.values())
    for c in s.corpora:   # drawn in proportion to its rows (binomial sd about 0.02 here)
        assert abs(seen[c] / n - share[c]) < 0.08, (seen, share)
    assert abs(kinds["xx"] / n - 0.5) < 0.1
    s.set_epoch(4)
    a = [(i, p.tolist()) for i, p in s.global_batches()]
    assert a == [(i, p.tolist()) for i, p in s.global_batches(4)] and [i for i, _ in a] == s.plan(4)
    assert np.isclose(sum(s.p), 1.0)


def test_the_collator_names_the_corpus_of_each_batch(mix, tiny):
    s = make_sampler("xy", seed=1)(mix, batch_size=4)
    coll = PairCollator(preprocess_fn=tiny.preprocess, prompts={"query": "query: ", "passage": "passage: "})
    for (info, _), rows in zip(s.global_batches(), s):
        out = coll([mix[i] for i in rows])
        assert out["hbkit_batch"] == {"kind": "xy", "lang": None, "corpus": info.corpus}
    assert all(k.startswith("xy@") for k in coll.seen)


def test_the_zero_shot_check_names_the_part_of_a_mix_that_overlaps(tmp_path, cache, data_dir):
    """A user's corpus in the mix that holds a benchmark's questions (as Mr. TyDi holds TyDi-QA's) is named."""
    import json

    from hbkit.data.benchmarks import load_benchmark
    from hbkit.data.checks import ZeroShotError, check_zero_shot
    from hbkit.experiment.stages import mix_overlap
    bench = load_benchmark("mlqa-r", data_dir).subsample(5, seed=0)
    leaked = bench.queries.iloc[0]
    write_mmarco(tmp_path / "mmarco", langs=("en",), n_queries=20)
    mine = tmp_path / "mine.jsonl"
    mine.write_text("".join(json.dumps({"group": f"m{i}", "lang": "en", "query": q, "passage": f"p {i}"}) + "\n"
                            for i, q in enumerate([leaked.text, "an unrelated question"])))
    pairs = load_training_corpus(f"mmarco:20+{mine}", tmp_path, languages=["en"])
    overlap = mix_overlap(pairs, {"mlqa-r": bench})
    assert set(overlap.corpus) == {"mmarco", "mine"}
    with pytest.raises(ZeroShotError, match=r"mlqa-r: 1 of its \d+ questions occur in the training corpus \(from the "
                                            r"part 'mine' of the training mix\)"):
        check_zero_shot(overlap)


def test_a_one_language_corpus_in_a_mix_gives_x_x_mono_batches(tmp_path, cache, caplog):
    """An English-only corpus in the mix (the paper added Mr. TyDi and MFAQ in English) cannot give X-Y batches:
    under every strategy its batches are X-X-mono, and the log says so; an α schedule is refused for a mix."""
    import json
    import logging

    from hbkit.train.sampling import SamplerError
    write_mmarco(tmp_path / "mmarco", n_queries=80)
    english = tmp_path / "english.jsonl"
    english.write_text("".join(json.dumps({"group": f"e{i}", "lang": "en", "query": f"english question {i}",
                                           "passage": f"english answer {i}"}) + "\n" for i in range(60)))
    mix = load_training_corpus(f"mmarco:80+{english}", tmp_path, languages=["en", "de", "es"])
    df = mix.to_pandas()
    for strategy in ("xy", "hybrid"):
        with caplog.at_level(logging.WARNING, logger="hbkit.train.sampling"):
            s = make_sampler(strategy, seed=2)(mix, batch_size=8)
        assert "corpus 'english' of the mix has too few groups in two languages" in caplog.text
        kinds = {(i.corpus, i.kind) for e in range(6) for i in s.plan(e)}
        assert ("english", "xy") not in kinds and ("english", "xx") in kinds and ("mmarco", "xy") in kinds
        for info, pairs in s.global_batches():
            if info.corpus == "english":
                assert set(df.iloc[pairs.ravel()].lang) == {"en"}
    with pytest.raises(SamplerError, match="alpha_end .* not defined for a mix"):
        make_sampler("hybrid", alpha=0.2, alpha_end=0.8)(mix, batch_size=8)


def test_validation_sets_are_checked_before_anything_is_written(tmp_path, cache):
    """Held-out groups of a mix are evaluated together (not one corpus per batch, which a small share could not
    fill); a validation corpus too small for one batch is refused before the run folder exists; `hbkit train
    --val-corpus squadshifts` reads SQuADShifts itself."""
    from hbkit.app.cli import main
    from hbkit.encoders.load import tiny_encoder
    from hbkit.train.config import TrainConfig, TrainError
    from hbkit.train.trainer import train
    write_mmarco(tmp_path / "mmarco", n_queries=80)
    write_squadshifts(tmp_path / "squadshifts", per_domain=6)
    english = tmp_path / "english.jsonl"
    english.write_text("".join(f'{{"group": "e{i}", "lang": "en", "query": "q {i}", "passage": "a {i}"}}\n'
                               for i in range(24)))
    mix = load_training_corpus(f"mmarco:80+{english}", tmp_path, languages=["en", "de"])
    cfg = dict(strategy="hybrid", batch_size=8, max_steps=2, eval_steps=2, save_steps=2)
    model = train(tiny_encoder(), mix, TrainConfig(val_groups=12, **cfg), tmp_path / "held-out", progress=False)
    assert any("eval_loss" in l for l in (tmp_path / "held-out" / "train_log.jsonl").read_text().splitlines())
    assert model.is_dir()
    small = squadshifts_pairs(tmp_path)
    with pytest.raises(TrainError, match=r"validation set \(squadshifts: 4 groups\) cannot give a batch of 8"):
        train(tiny_encoder(), mix, TrainConfig(val_corpus="squadshifts", val_groups=4, **cfg), tmp_path / "small",
              progress=False, val_pairs=small)
    assert not (tmp_path / "small").exists()
    assert main(["train", "--model", "tiny", "--corpus", str(english), "--data-dir", str(tmp_path),
                 "--val-corpus", "squadshifts", "--strategy", "xx", "--batch-size", "8", "--max-steps", "2",
                 "--eval-steps", "2", "--save-steps", "2", "--out", str(tmp_path / "cli")]) == 0
    card = (tmp_path / "cli" / "model" / "hbkit_training.json").read_text()
    assert '"val_corpus": "squadshifts"' in card and '"val_data"' in card
