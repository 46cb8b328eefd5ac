"""Reliability, round four: a refused run writes nothing, the release readers tell a byte-order mark from
corruption, the mix-spec parser knows files and duplicate names, and every CLI argument is checked before any work.
Each test is a case a user hit; it fails on the code before this round."""
import errno
import json
import os
from collections import Counter

import pandas as pd
import pytest
from paper_fixtures import COLLECTION, QUERIES, write_mmarco, write_squadshifts

from hbkit.app.cli import main
from hbkit.core.files import DiskFull, RunLock, atomic_write_text, disk_guard
from hbkit.data.corpora import corpus_parts, load_training_corpus
from hbkit.data.registry import DataError
from hbkit.data.releases.mmarco import mmarco_pairs
from hbkit.data.releases.squad import squad_questions
from hbkit.data.releases.squadshifts import squadshifts_pairs
from hbkit.experiment.compare import compare
from hbkit.experiment.profiles import profile
from hbkit.train.config import TrainError


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("HBKIT_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("HBKIT_DATA_DIR", raising=False)
    return tmp_path / "cache"


def _listing(folder):
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*")) if folder.exists() else None


# --------------------------------------------------------------------------------------------------
# 1. a mix part too small for the batch: refused before the first write, and the fixed rerun is not blocked
# --------------------------------------------------------------------------------------------------
def test_a_mix_part_too_small_for_the_batch_is_refused_before_anything_is_written(data_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("HBKIT_CACHE", str(tmp_path / "cache"))
    small = tmp_path / "ok.parquet"
    pd.DataFrame([{"group": "g0", "lang": l, "query": f"a question about rivers ({l})", "passage": f"rivers ({l})"}
                  for l in ("en", "de")]).to_parquet(small)
    spec = f"xquad-train+{small}"
    fresh = tmp_path / "fresh"
    with pytest.raises(TrainError, match=r"model xx-s0 cannot be trained .*corpus 'ok' of the mix .*batch size 8 is "
                                         r"larger than the number of groups \(1\).*nothing was written"):
        compare("ci", fresh, data_dir=data_dir, progress=False, corpus=spec, seeds=[0], strategies=["xx"],
                train_groups=100_000)   # every group, the small part's too
    assert not fresh.exists()   # not even the folder or its lock file
    used = tmp_path / "used"
    used.mkdir()
    (used / "notes.txt").write_text("mine")
    before = _listing(used)
    with pytest.raises(TrainError, match="nothing was written"):
        compare("ci", used, data_dir=data_dir, progress=False, corpus=spec, seeds=[0], strategies=["xx"],
                train_groups=100_000, force=True)
    assert _listing(used) == before   # --force removed nothing either: the checks come first
    assert main(["compare", "--profile", "ci", "--out", str(used), "--data-dir", str(data_dir), "--corpus", spec,
                 "--seeds", "0", "--batch-size", "1"]) == 2   # a batch of 1 is refused by the profile, also at once
    assert _listing(used) == before


def test_a_refused_run_in_a_new_folder_leaves_no_folder_and_a_failing_one_keeps_its_work(tmp_path):
    new = tmp_path / "a" / "b"
    with pytest.raises(ValueError, match="refused"):
        with RunLock(new):
            raise ValueError("refused")
    assert not (tmp_path / "a").exists()
    with pytest.raises(ValueError, match="failed"):
        with RunLock(new):
            atomic_write_text(new / "config.json", "{}")
            raise ValueError("failed")
    assert sorted(p.name for p in new.iterdir()) == ["config.json"]   # what was written stays; the lock file goes
    with RunLock(new):
        pass
    assert (new / ".lock").exists()   # a run that ends well keeps its lock file, as filelock does


# --------------------------------------------------------------------------------------------------
# 2-5. the mMARCO reader
# --------------------------------------------------------------------------------------------------
def test_mmarco_refuses_an_empty_file_and_ids_with_spaces(tmp_path, cache):
    write_mmarco(tmp_path / "mmarco", langs=("en", "de"), n_queries=20)
    german = tmp_path / "mmarco" / QUERIES.format(name="german")
    german.write_bytes(b"")
    with pytest.raises(DataError, match=r"german_queries\.train\.tsv: the mMARCO queries file is empty \(0 bytes\)"):
        mmarco_pairs(tmp_path, ["en", "de"], queries=20)
    english = (tmp_path / "mmarco" / QUERIES.format(name="english")).read_text().splitlines(keepends=True)
    german.write_text("".join(" " + l for l in english))
    with pytest.raises(DataError, match=r"german_queries\.train\.tsv: none of the 20 queries ids .*carry spaces "
                                        r"\(' 10\d+'\)"):
        mmarco_pairs(tmp_path, ["en", "de"], queries=20)
    assert not list(cache.glob("corpora/mmarco-*/COMPLETE"))


def test_mmarco_counts_a_cut_last_line_as_a_line_not_a_skipped_query(tmp_path, cache):
    write_mmarco(tmp_path / "mmarco", langs=("en",), n_queries=20)
    coll = tmp_path / "mmarco" / COLLECTION.format(name="english")
    coll.write_text(coll.read_text() + "90071")   # an interrupted download: the last line stops inside its id
    df = mmarco_pairs(tmp_path, ["en"], queries=20).to_pandas()
    assert len(df) == 20
    stats = pd.read_csv(next(cache.glob("corpora/mmarco-*/stats.csv")))
    en = stats[stats.lang == "en"].iloc[0]
    assert en["skipped"] == 0 and en["lines: collection: last line cut short"] == 1


def test_mmarco_strips_a_byte_order_mark_and_counts_a_duplicated_id(tmp_path, cache):
    write_mmarco(tmp_path / "mmarco", langs=("en",), n_queries=20)
    qfile = tmp_path / "mmarco" / QUERIES.format(name="english")
    lines = qfile.read_text(encoding="utf-8").splitlines(keepends=True)
    first_id = lines[0].split("\t")[0]
    dup = f"{first_id}\ta second text for the same id\n"
    qfile.write_bytes(b"\xef\xbb\xbf" + "".join(lines + [dup]).encode())
    df = mmarco_pairs(tmp_path, ["en"], queries=20).to_pandas()
    assert len(df) == 20 and not df.group.str.contains("\ufeff").any()   # the first row is not lost to the mark
    assert df.set_index("group").loc[f"mmarco/{first_id}", "query"] == lines[0].split("\t")[1].strip()  # first wins
    stats = pd.read_csv(next(cache.glob("corpora/mmarco-*/stats.csv")))
    assert stats[stats.lang == "en"].iloc[0]["lines: queries: duplicate id"] == 1


# --------------------------------------------------------------------------------------------------
# 6-7. the mix-spec parser
# --------------------------------------------------------------------------------------------------
def test_the_mix_parser_refuses_duplicate_names_and_knows_files(tmp_path, cache):
    with pytest.raises(DataError, match=r"'mmarco:5' and 'mmarco:6' would both be named 'mmarco'.*give each corpus once"):
        load_training_corpus("mmarco:5+mmarco:6", tmp_path)
    with pytest.raises(DataError, match=r"mmarco:5.*mmarco:6"):
        profile("ci", corpus="mmarco:5+mmarco:6")   # before the first minute of work
    assert not (cache / "corpora").exists()        # nothing was built
    with pytest.raises(DataError, match=r"unknown training corpus '.*/my' \('\+' joins a mix, so .*my\+pairs\.jsonl"):
        corpus_parts(str(tmp_path / "my+pairs.jsonl"))
    path = tmp_path / "my+pairs.jsonl"
    path.write_text("".join(json.dumps({"group": f"g{i}", "lang": l, "query": f"q{i} {l}", "passage": f"p{i} {l}"}) + "\n"
                            for i in range(4) for l in ("en", "de")))
    assert corpus_parts(str(path)) == [str(path)]
    assert corpus_parts(f"{path}+xquad-train") == [str(path), "xquad-train"]
    assert len(load_training_corpus(str(path))) == 8
    a, b = tmp_path / "a", tmp_path / "b"
    for d in (a, b):
        d.mkdir()
        (d / "pairs.jsonl").write_text(path.read_text())
    with pytest.raises(DataError, match="rename one of the files"):
        corpus_parts(f"{a / 'pairs.jsonl'}+{b / 'pairs.jsonl'}")


# --------------------------------------------------------------------------------------------------
# 8-9. SQuAD-format readers
# --------------------------------------------------------------------------------------------------
def test_squad_readers_accept_a_byte_order_mark_and_name_a_latin1_byte(tmp_path, cache):
    write_squadshifts(tmp_path / "squadshifts", per_domain=6)
    plain = squadshifts_pairs(tmp_path).to_pandas()
    f = tmp_path / "squadshifts" / "nyt_v1.0.json"
    f.write_bytes(b"\xef\xbb\xbf" + f.read_bytes())
    marked = squadshifts_pairs(tmp_path).to_pandas()
    assert marked.equals(plain)
    text = f.read_bytes()[3:]
    at = text.index(b"When was")
    f.write_bytes(text[:at] + b"Caf\xe9 " + text[at:])   # a Latin-1 byte inside a question
    line = text[:at].count(b"\n") + 1
    with pytest.raises(DataError, match=rf"nyt_v1\.0\.json: line {line}, column \d+: byte 0xe9 is not UTF-8; save the "
                                        r"SQuAD-format file as UTF-8"):
        squadshifts_pairs(tmp_path)
    tt = tmp_path / "squad.translate.train.en-de.json"
    tt.write_bytes(b"\xef\xbb\xbf" + json.dumps({"data": [{"title": "t", "paragraphs": [
        {"context": "Ein Satz. Noch einer.", "qas": [{"id": "1", "question": "Was?",
                                                      "answers": [{"text": "Noch", "answer_start": 10}]}]}]}]}).encode())
    assert [q.qid for q in squad_questions(tt, Counter(), strict=False)] == ["1"]


# --------------------------------------------------------------------------------------------------
# 10-16. the command line
# --------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("value", ["", "0,,1", ",", "0,"])
def test_empty_seeds_are_refused(value, capsys):
    with pytest.raises(SystemExit) as e:
        main(["compare", "--profile", "ci", "--seeds", value])
    assert e.value.code == 2 and "--seeds" in capsys.readouterr().err


def test_none_means_none_for_lists():
    from hbkit.app.cli import build_parser
    a = build_parser().parse_args(["compare", "--train-languages", "none", "--alphas", "none"])
    cfg = profile("paper", train_languages=a.train_languages, alphas=a.alphas)
    assert cfg["train_languages"] is None and cfg["alphas"] == []   # not the paper's nine languages and two α


@pytest.mark.parametrize("argv", [["compare", "--profile", "ci"], ["eval", "--model", "tiny", "--bench", "xquad-r"],
                                  ["train", "--model", "tiny"], ["doctor", "--profile", "ci"]])
def test_an_out_that_is_a_file_is_refused_before_any_work(argv, tmp_path, capsys, monkeypatch):
    import hbkit.app.cli as cli
    for name in ("compare", "evaluate", "train", "doctor", "load_encoder", "load_benchmark"):
        monkeypatch.setattr(cli, name, lambda *a, **k: pytest.fail("work started before --out was checked"))
    f = tmp_path / "afile"
    f.write_text("x")
    assert main([*argv, "--out", str(f)]) == 2
    err = capsys.readouterr().err
    assert f"--out {f} is a file, not a folder" in err and "Errno" not in err
    assert main([*argv, "--out", str(f / "below")]) == 2
    assert "is a file, so no folder can be made below it" in capsys.readouterr().err
    assert f.read_text() == "x"


def test_doctor_data_dir_that_is_a_file_or_empty_is_refused(tmp_path, capsys):
    f = tmp_path / "afile"
    f.write_text("x")
    assert main(["doctor", "--profile", "ci", "--data-dir", str(f)]) == 2
    assert f"data_dir (--data-dir) {f} is a file, not a folder" in capsys.readouterr().err
    assert main(["doctor", "--profile", "ci", "--data-dir", ""]) == 2
    assert "data_dir (--data-dir) is empty" in capsys.readouterr().err


def test_train_arguments_are_named_and_nothing_is_written(tmp_path, capsys):
    with pytest.raises(SystemExit):
        main(["train", "--training-args", "{bad", "--out", str(tmp_path / "t1")])
    err = capsys.readouterr().err
    assert "--training-args" in err and "not valid JSON" in err and "loads" not in err
    with pytest.raises(SystemExit):
        main(["train", "--training-args", "[1, 2]", "--out", str(tmp_path / "t1")])
    assert "not an object" in capsys.readouterr().err
    assert main(["train", "--seed", "-1", "--out", str(tmp_path / "t2")]) == 2
    err = capsys.readouterr().err
    assert "--seed -1: must be a whole number from 0 to 2**32 - 1" in err and "numpy" in err
    assert not (tmp_path / "t1").exists() and not (tmp_path / "t2").exists()


def test_run_notebooks_refuses_an_unknown_profile_in_one_line(capsys):
    import importlib.util
    from pathlib import Path
    spec = importlib.util.spec_from_file_location("run_notebooks", Path(__file__).parents[1] / "scripts" / "run_notebooks.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    with pytest.raises(SystemExit) as e:
        mod.main(["--profile", "nosuch"])
    err = capsys.readouterr().err
    assert e.value.code == 2 and "unknown profile 'nosuch'" in err and "Traceback" not in err


SAFETENSORS_FULL = "Error while serializing: I/O error: No space left on device (os error 28)"


def test_a_full_disk_names_the_folder_what_was_written_and_the_free_space(tmp_path, monkeypatch):
    with pytest.raises(DiskFull, match=rf"writing results\.csv in {tmp_path} \([\d.]+ [KMGT]?B free there\)"):
        with disk_guard(tmp_path, "results.csv"):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
    with pytest.raises(KeyError):   # other errors pass unchanged
        with disk_guard(tmp_path, "x"):
            raise KeyError("x")
    import importlib

    import datasets
    trainer = importlib.import_module("hbkit.train.trainer")   # hbkit.train is also the exported function
    from hbkit.encoders.load import tiny_encoder
    from hbkit.train.config import TrainConfig

    class SafetensorError(Exception):   # what safetensors raises on ENOSPC: no errno, only words
        pass

    def full(*a, **k):
        raise SafetensorError(SAFETENSORS_FULL)
    monkeypatch.setattr(trainer, "_save_model", full)
    pairs = datasets.Dataset.from_list([{"group": f"g{i}", "lang": l, "query": f"q {i} {l}", "passage": f"p {i} {l}",
                                         "answer_key": f"g{i}"} for i in range(8) for l in ("en", "de")])
    with pytest.raises(DiskFull, match=r"writing the trained model in .*run \(.* free there\).*a rerun resumes") as e:
        trainer.train(tiny_encoder(), pairs, TrainConfig(strategy="xx", batch_size=4, max_steps=2, save_steps=2),
                      tmp_path / "run", progress=False)
    assert isinstance(e.value.__cause__, SafetensorError)


# --------------------------------------------------------------------------------------------------
# what the probe after this round found
# --------------------------------------------------------------------------------------------------
def test_a_cut_line_that_kept_its_tab_and_a_stray_carriage_return(tmp_path):
    from hbkit.data.textfile import CUT_LAST_LINE, NO_TABS, id_texts, read_json
    f = tmp_path / "q.tsv"
    f.write_bytes(b"1\tfirst\rpart\n2\tsecond\n3\tthe third is cut sh")
    problems = Counter()
    assert id_texts(f, None, problems) == {"1": "first\rpart", "2": "second"}   # \r stays inside its text
    assert problems == {CUT_LAST_LINE: 1} and NO_TABS not in problems
    j = tmp_path / "x.json"
    j.write_text('{"data": []}\nxyz\n')
    with pytest.raises(DataError, match="line 2, column 1: .*text follows the JSON document") as e:
        read_json(j)
    assert "truncated" not in str(e.value)


def test_nan_huge_seeds_and_corpus_parts_are_refused_with_the_option_named(tmp_path, capsys):
    assert main(["train", "--lr", "nan", "--out", str(tmp_path / "t")]) == 2
    assert "--lr nan" in capsys.readouterr().err
    assert main(["compare", "--profile", "ci", "--lr", "nan", "--out", str(tmp_path / "c")]) == 2
    assert "--lr nan: must be a finite number" in capsys.readouterr().err
    assert main(["compare", "--profile", "ci", "--seeds", "4294967296", "--out", str(tmp_path / "c")]) == 2
    assert "--seeds [4294967296]: give one or more whole numbers from 0 to 2**32 - 1" in capsys.readouterr().err
    assert not (tmp_path / "t").exists() and not (tmp_path / "c").exists()
    with pytest.raises(DataError, match="unknown training corpus 'notes.txt'"):
        corpus_parts("notes.txt")
    with pytest.raises(DataError, match="only mmarco takes a size"):
        corpus_parts("mmarco+xquad-train:abc")
