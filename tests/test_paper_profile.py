"""The paper's protocol end to end at CI size: SQuAD translate-train in its release layout (written here), the
`paper` profile with the tiny encoder, early stopping, the full-benchmark names, MIRACL absent (skipped, said)."""
import json

import pandas as pd
import pytest

from hbkit.compare import compare

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
    """A data folder: the benchmark releases (linked) plus squad-translate-train/ in the release layout."""
    root = tmp_path_factory.mktemp("data")
    for name in ("xquad-r", "mlqa-r", "tydiqa-goldp"):
        (root / name).symlink_to(data_dir / name)
    write_release(root / "squad-translate-train")
    return root


def test_data_build_command(root, tmp_path, monkeypatch, capsys):
    from hbkit.cli import main
    monkeypatch.setenv("HBKIT_CACHE", str(tmp_path / "cache"))
    assert main(["data", "build", "squad-translate-train", "--dir", str(root / "squad-translate-train")]) == 0
    out = capsys.readouterr().out
    assert "cached at" in out and " de " in f" {out} " and "60" in out


def test_paper_profile_end_to_end(root, tmp_path, monkeypatch):
    monkeypatch.delenv("HBKIT_DATA_DIR", raising=False)
    res = compare("paper", tmp_path / "run", data_dir=root, progress=False, model="hbkit/tiny", seeds=[0],
                  alphas=[], steps=8, batch_size=8, lr=1e-3, freeze_word_embeddings=False,
                  eval_groups={"xquad-r": 8, "mlqa-r": 8, "tydiqa": 20}, val_groups=10, eval_steps=2,
                  early_stopping_patience=2, permutations=200, umap_groups=4)
    out = tmp_path / "run"
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["profile"] == "paper" and cfg["corpus"] == "squad-translate-train"
    assert any(n.startswith("miracl:") and "skipped" in n for n in cfg["notes"])  # absent here: skipped, said
    r = pd.read_csv(out / "results.csv")
    assert {"xquad-r", "mlqa-r", "tydiqa"} == set(r.benchmark)  # the FULL XQuAD-R name: nothing of it is trained on
    overlap = pd.read_csv(out / "overlap.csv")
    assert (overlap[overlap.field == "query"].bench_matched == 0).all()
    for s in ("xx", "xy", "hybrid"):
        card = json.loads((out / "models" / f"{s}-s0" / "model" / "hbkit_training.json").read_text())
        assert card["config"]["corpus"] == "squad-translate-train" and card["metric_for_best_model"] == "eval_loss"
        assert card["best_checkpoint"] is not None and card["config"]["val_groups"] == 10
        assert "hbkit-corpus-squad-translate-train" in (out / "models" / f"{s}-s0" / "model" / "README.md").read_text()
    assert set(res["verdicts"].claim) >= {"C1", "C3", "A1"}
