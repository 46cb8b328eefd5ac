"""The paper's protocol end to end at CI size: SQuAD translate-train in its release layout (written here), the
`paper` profile with the tiny encoder, early stopping, the full-benchmark names, MIRACL absent (skipped, said)."""
import json

import pandas as pd
import pytest
from paper_fixtures import write_mmarco, write_squadshifts

from hbkit.experiment.compare import compare
from hbkit.experiment.profiles import PAPER_CORPUS

WORDS = ["river", "city", "mountain", "lake", "forest", "bridge", "castle", "harbour", "valley", "island"]
TRANS = {"de": ["Fluss", "Stadt", "Berg", "See", "Wald", "Brücke", "Burg", "Hafen", "Tal", "Insel"],
         "es": ["río", "ciudad", "montaña", "lago", "bosque", "puente", "castillo", "puerto", "valle", "isla"]}
TEMPLATE = {"en": ("Place {n} has a {w}. The {w} of place {n} is old. Visitors like place {n}.", "Does place {n} have a {w}?"),
            "de": ("Ort {n} hat einen {w}. Der {w} von Ort {n} ist alt. Besucher mögen Ort {n}.", "Hat Ort {n} einen {w}?"),
            "es": ("El lugar {n} tiene un {w}. El {w} del lugar {n} es viejo. Los visitantes aman el lugar {n}.",
                   "¿Tiene el lugar {n} un {w}?")}


TRANSLATED = ("ar", "de", "el", "es", "hi", "ru", "th", "tr", "vi", "zh")  # XTREME's translate-train languages


def write_release(folder, n=60):
    """SQuAD v1.1 train + the ten XTREME translate-train files with shared question ids, n questions (languages
    other than de and es reuse the German text: only the layout and the ids matter here)."""
    folder.mkdir(parents=True)
    (folder / "translate-train").mkdir()
    for lang in ("en", *TRANSLATED):
        data = []
        src = lang if lang in TEMPLATE else "de"
        for i in range(n):
            w = WORDS[i % 10] if src == "en" else TRANS[src][i % 10]
            ctx, q = (t.format(n=1000 + i, w=w) for t in TEMPLATE[src])
            qa = {"id": f"sq{i:04d}", "question": q, "answers": [{"text": w, "answer_start": ctx.index(w)}]}
            data.append({"title": f"Place {i}", "paragraphs": [{"context": ctx, "qas": [qa]}]})
        path = folder / ("train-v1.1.json" if lang == "en" else f"translate-train/squad.translate.train.en-{lang}.json")
        path.write_text(json.dumps({"version": "1.1", "data": data}, ensure_ascii=False))
    return folder


@pytest.fixture(scope="module")
def root(data_dir, tmp_path_factory):
    """A data folder: the benchmark releases (linked) plus, in their release layouts, squad-translate-train/,
    mmarco/ (the hub repository's) and squadshifts/ (the authors')."""
    root = tmp_path_factory.mktemp("data")
    for name in ("xquad-r", "mlqa-r", "tydiqa-goldp"):
        (root / name).symlink_to(data_dir / name)
    write_release(root / "squad-translate-train")
    write_mmarco(root / "mmarco", langs=("ar", "de", "en", "es", "hi", "ru", "zh"), n_queries=60)
    write_squadshifts(root / "squadshifts")
    return root


def test_data_build_command(root, tmp_path, monkeypatch, capsys):
    from hbkit.app.cli import main
    monkeypatch.setenv("HBKIT_CACHE", str(tmp_path / "cache"))
    assert main(["data", "build", "squad-translate-train", "--dir", str(root / "squad-translate-train")]) == 0
    out = capsys.readouterr().out
    assert "cached at" in out and " de " in f" {out} " and "60" in out


SMALL = dict(seeds=[0], alphas=[], steps=8, batch_size=8, lr=1e-3, freeze_word_embeddings=False,
             eval_groups={"xquad-r": 8, "mlqa-r": 8, "tydiqa": 20}, val_groups=20, eval_steps=2,
             early_stopping_patience=2, permutations=200, umap_groups=4)


def test_paper_profile_end_to_end(root, tmp_path, monkeypatch, xlmr_folder):
    """The paper's protocol on XLM-R's real classes and tokenizer (random weights, 2 layers): the prefixes, nine
    training languages with el and vi reported unseen, mMARCO + translate-train one corpus per batch, the best
    checkpoint by SQuADShifts validation loss, evaluation on the full-benchmark names."""
    monkeypatch.delenv("HBKIT_DATA_DIR", raising=False)
    res = compare("paper", tmp_path / "run", data_dir=root, progress=False, model=str(xlmr_folder), **SMALL)
    out = tmp_path / "run"
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["profile"] == "paper" and cfg["corpus"] == PAPER_CORPUS == "mmarco:200000+squad-translate-train"
    assert cfg["val_corpus"] == "squadshifts" and "val" in cfg["data"]
    assert cfg["train_languages"] == ["ar", "de", "en", "es", "hi", "ru", "th", "tr", "zh"]
    assert cfg["prompts"] == {"query": "Query: ", "passage": "Passage: "}
    import re
    unseen = re.search(r"unseen \(never trained on[^)]*\): ([a-z, ]+)\.", (out / "report.html").read_text())
    assert unseen and {"el", "vi"} <= set(unseen.group(1).split(", ")) and "de" not in unseen.group(1).split(", ")
    assert any(n.startswith("miracl:") and "skipped" in n for n in cfg["notes"])  # absent here: skipped, said
    r = pd.read_csv(out / "results.csv")
    assert {"xquad-r", "mlqa-r", "tydiqa"} == set(r.benchmark)  # the FULL XQuAD-R name: nothing of it is trained on
    overlap = pd.read_csv(out / "overlap.csv")
    assert (overlap[overlap.field == "query"].bench_matched == 0).all()
    assert set(overlap.corpus) == {"mmarco", "squad-translate-train"}   # checked per corpus of the mix
    corpora, langs = set(), set()
    for s in ("xx", "xy", "hybrid"):
        model = out / "models" / f"{s}-s0" / "model"
        card = json.loads((model / "hbkit_training.json").read_text())
        assert card["config"]["corpus"] == PAPER_CORPUS and card["metric_for_best_model"] == "eval_loss"
        assert card["config"]["val_corpus"] == "squadshifts" and len(card["identity"]["val_data"]) == 32
        assert card["best_checkpoint"] is not None and card["config"]["val_groups"] == 20
        log = [json.loads(l) for l in (out / "models" / f"{s}-s0" / "train_log.jsonl").read_text().splitlines()]
        assert any("eval_loss" in r for r in log)          # validated on SQuADShifts (English, X-X-mono batches)
        steps = [r for r in log if "batch" in r]
        corpora |= {r["corpus"] for r in steps}
        langs |= {r["lang"] for r in steps}
        if s == "xy":
            assert {r["batch"] for r in steps} == {"xy"}
        modules = json.loads((model / "modules.json").read_text())
        assert [m["type"].rsplit(".", 1)[-1] for m in modules][:2] == ["Transformer", "Pooling"]
        assert json.loads((model / "config_sentence_transformers.json").read_text())["prompts"]["query"] == "Query: "
    assert corpora == {"mmarco", "squad-translate-train"}   # one corpus per batch, both drawn
    assert not langs & {"el", "vi"}   # never trained on: the paper's unseen languages
    assert set(res["verdicts"].claim) >= {"C1", "C3", "A1"}


def test_paper_profile_on_a_labse_shaped_encoder(root, tmp_path, monkeypatch, labse_folder):
    """LaBSE's stack (BERT, CLS pooling, Dense, Normalize; no prompts) goes through the same path and keeps its
    stack and the paper's prefixes in the trained folder."""
    monkeypatch.delenv("HBKIT_DATA_DIR", raising=False)
    compare("paper", tmp_path / "run", data_dir=root, progress=False, model=str(labse_folder),
            **{**SMALL, "strategies": ["hybrid"], "steps": 4})
    model = tmp_path / "run" / "models" / "hybrid-s0" / "model"
    types = [m["type"].rsplit(".", 1)[-1] for m in json.loads((model / "modules.json").read_text())]
    assert types == ["Transformer", "Pooling", "Dense", "Normalize"]
    pool = json.loads((model / "1_Pooling" / "config.json").read_text())
    assert pool.get("pooling_mode") == "cls" or pool.get("pooling_mode_cls_token") is True
    from hbkit.encoders.load import load_encoder
    enc = load_encoder(str(model))
    assert enc.prompts["query"] == "Query: " and enc.prompts["passage"] == "Passage: "
    assert abs(float((enc.encode(["Query: river"]) ** 2).sum()) - 1.0) < 1e-5


def test_a_real_xlmr_checkpoint_fingerprints_the_same_at_every_load(xlmr_folder):
    """XLM-R's hub checkpoint has no pooler, so transformers draws one at random at every load; the fingerprint (the
    key of a training folder's base model and of the embedding cache) leaves it out, or a killed run could never
    resume ("another set-up") and no cache would ever hit."""
    from hbkit.encoders.load import fingerprint, load_encoder
    a, b = load_encoder(str(xlmr_folder)), load_encoder(str(xlmr_folder))
    pooler = [n for n in a.state_dict() if ".pooler." in n]
    assert pooler and not all((a.state_dict()[n] == b.state_dict()[n]).all() for n in pooler)   # random at load
    assert fingerprint(a) == fingerprint(b)


def test_paper_and_lareqa_profiles():
    """`paper` is the paper's protocol as far as public data allow (its prefixes, its nine training languages);
    `lareqa` is LAReQA's (no prefixes, every translate-train language); `gpu`, the old name of the GPU profile,
    stays LAReQA's."""
    from hbkit.experiment.profiles import PAPER_PROMPTS, PAPER_TRAIN_LANGUAGES, ProfileError, profile
    p, l = profile("paper"), profile("lareqa")
    assert p["prompts"] == {"query": "Query: ", "passage": "Passage: "} == PAPER_PROMPTS
    assert p["train_languages"] == PAPER_TRAIN_LANGUAGES and not {"el", "vi"} & set(p["train_languages"])
    assert l["prompts"] is None and l["train_languages"] is None and l["corpus"] == "squad-translate-train"
    assert p["corpus"] == "mmarco:200000+squad-translate-train" and p["val_corpus"] == "squadshifts"
    assert l["val_corpus"] == "held-out" and l["val_groups"] == 1000
    paper_only = ("prompts", "train_languages", "profile", "corpus", "val_corpus", "val_groups")
    assert {k: v for k, v in p.items() if k not in paper_only} == {k: v for k, v in l.items() if k not in paper_only}
    assert profile("gpu")["profile"] == "lareqa"   # the old name keeps its old protocol: its folders stay reusable
    assert profile("paper", prompts={})["prompts"] is None    # --prompts none
    with pytest.raises(ProfileError, match="prompts"):
        profile("paper", prompts={"questions": "Q: "})


def test_cli_prompts_keep_their_trailing_space():
    from hbkit.app.cli import build_parser
    a = build_parser().parse_args(["compare", "--prompts", "query=Query: ,passage=Passage: "])
    assert a.prompts == {"query": "Query: ", "passage": "Passage: "}
    assert build_parser().parse_args(["compare", "--prompts", "none"]).prompts == {}


def test_prefixes_reach_training_and_the_saved_model(tmp_path):
    """An encoder without prompts gets the paper's "Query: " / "Passage: " (an E5-style encoder keeps its own);
    the trainer collates with them, the trained folder saves them, and the embedding cache keys differ."""
    from hbkit.data.benchmarks import parallel_pairs
    from hbkit.encoders.load import fingerprint, load_encoder, tiny_encoder
    from hbkit.experiment.profiles import PAPER_PROMPTS
    from hbkit.experiment.stages import base_encoder
    from hbkit.train.config import TrainConfig
    from hbkit.train.trainer import train
    plain = tiny_encoder()
    plain.prompts = {}
    plain.save(str(tmp_path / "plain"))
    cfg = {"model": str(tmp_path / "plain"), "prompts": dict(PAPER_PROMPTS)}
    enc = base_encoder(cfg)
    assert {k: enc.prompts[k] for k in PAPER_PROMPTS} == PAPER_PROMPTS
    assert base_encoder({"model": "tiny", "prompts": dict(PAPER_PROMPTS)}).prompts["query"] == "query: "  # its own
    assert fingerprint(enc) != fingerprint(load_encoder(str(tmp_path / "plain")))
    pairs = parallel_pairs(languages=["en", "de"])
    keep = set(sorted(set(pairs["group"]))[:30])
    pairs = pairs.filter(lambda r: r["group"] in keep)
    seen = []
    from transformers import TrainerCallback

    class Peek(TrainerCallback):
        def on_step_begin(self, args, state, control, **kw):
            seen.append(dict(args.prompts or {}))
    model_dir = train(enc, pairs, TrainConfig(strategy="xy", batch_size=4, max_steps=2, save_steps=10, val_groups=0),
                      tmp_path / "run", progress=False, callbacks=[Peek()])
    assert seen and all({k: p.get(k) for k in PAPER_PROMPTS} == PAPER_PROMPTS for p in seen)
    saved = load_encoder(str(model_dir)).prompts
    assert {k: saved.get(k) for k in PAPER_PROMPTS} == PAPER_PROMPTS


def test_a_folder_recorded_under_the_former_fingerprint_stays_reusable(tmp_path):
    """A model trained when the fingerprint still counted the pooler (version 3) is the same set-up: found
    trained, never refused as 'another set-up' and never trained again."""
    import datasets

    from hbkit.encoders.load import fingerprint, tiny_encoder
    from hbkit.train.config import TrainConfig
    from hbkit.train.trainer import train
    pairs = datasets.Dataset.from_list([{"group": f"g{i}", "lang": lang, "query": f"{lang} question {i}",
                                         "passage": f"{lang} answer {i}", "answer_key": f"g{i}"}
                                        for i in range(24) for lang in ("en", "de")])
    cfg = TrainConfig(strategy="xy", batch_size=4, max_steps=2, save_steps=10)
    old = fingerprint(tiny_encoder(), version=3)
    model_dir = train(tiny_encoder(), pairs, cfg, tmp_path / "run", progress=False)
    for path in (tmp_path / "run" / "train_config.json", model_dir / "hbkit_training.json"):
        rec = json.loads(path.read_text())
        ident = rec.get("identity", rec)
        assert ident["base_model"] == fingerprint(tiny_encoder()) != old
        ident["base_model"] = old
        path.write_text(json.dumps(rec))
    weights = next(model_dir.glob("*.safetensors"))
    before = weights.stat().st_mtime_ns
    assert train(tiny_encoder(), pairs, cfg, tmp_path / "run", progress=False) == model_dir
    assert weights.stat().st_mtime_ns == before
