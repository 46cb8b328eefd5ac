"""The one downloader (hbkit.data.fetch.fetch_file) against a local HTTP server on 127.0.0.1: SQuAD
translate-train and an archive release arrive whole, a corrupt or cut-short file never lands, an unreachable
address says what to do instead."""
import hashlib
import io
import json
import zipfile

import pytest

from hbkit.data.fetch import download, fetch_file
from hbkit.data.registry import DataError
from hbkit.data.releases import translate_train


def _squad(lang: str) -> bytes:
    ctx = f"Context in {lang}. The answer is here."
    qa = {"id": "q1", "question": f"Where, {lang}?", "answers": [{"answer_start": 0, "text": "Context"}]}
    return json.dumps({"data": [{"title": "T", "paragraphs": [{"context": ctx, "qas": [qa]}]}]}).encode()


def _leftovers(folder):
    return [p.name for p in folder.rglob("*") if p.name.endswith(".tmp")]


def test_translate_train_downloads_whole_and_refuses_a_corrupt_file(server, tmp_path, monkeypatch):
    root, url = server
    (root / "tt").mkdir()
    blobs = {"en": _squad("en"), "de": _squad("de")}
    (root / translate_train.SQUAD_TRAIN_FILE).write_bytes(blobs["en"])
    (root / "tt" / translate_train.translate_file("de")).write_bytes(blobs["de"])
    manifest = {l: (len(b), hashlib.sha256(b).hexdigest()) for l, b in blobs.items()}
    monkeypatch.setattr(translate_train, "SQUAD_URL", f"{url}/{translate_train.SQUAD_TRAIN_FILE}")
    monkeypatch.setattr(translate_train, "TT_URL", url + "/tt/{file}")
    monkeypatch.setattr(translate_train, "SQUAD_TT_MANIFEST", manifest)
    dest = tmp_path / "squad-translate-train"
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")   # offline: refused at once, nothing written
    with pytest.raises(DataError, match="cannot download SQuAD translate-train while offline"):
        translate_train.download_squad_translate_train(dest, languages=["de"])
    assert not dest.exists()
    monkeypatch.delenv("HF_HUB_OFFLINE")
    monkeypatch.delenv("HBKIT_OFFLINE", raising=False)
    translate_train.download_squad_translate_train(dest, languages=["de"])
    assert (dest / translate_train.SQUAD_TRAIN_FILE).read_bytes() == blobs["en"]
    assert (dest / translate_train.TRANSLATE_DIR / translate_train.translate_file("de")).read_bytes() == blobs["de"]

    # the upstream file changed (same size, other bytes): refused, nothing written, no temporary file left
    other = tmp_path / "other"
    (root / "tt" / translate_train.translate_file("de")).write_bytes(blobs["de"][:-3] + b"  }")
    with pytest.raises(DataError, match=r"sha256 .* the release has \d+ bytes, sha256 [0-9a-f]{64}"):
        translate_train.download_squad_translate_train(other, languages=["de"])
    assert not (other / translate_train.TRANSLATE_DIR / translate_train.translate_file("de")).exists()
    assert _leftovers(other) == []


def test_a_cut_short_file_never_lands(server, tmp_path):
    root, url = server
    (root / "f.json").write_bytes(b"x" * 1000)
    with pytest.raises(DataError, match="got 1000 bytes"):
        fetch_file(f"{url}/f.json", tmp_path / "f.json", size=2000)
    assert not (tmp_path / "f.json").exists() and _leftovers(tmp_path) == []
    fetch_file(f"{url}/f.json", tmp_path / "f.json", size=1000, sha256=hashlib.sha256(b"x" * 1000).hexdigest())
    assert (tmp_path / "f.json").read_bytes() == b"x" * 1000


def test_an_unreachable_address_names_the_offline_way(server, tmp_path):
    _, url = server
    with pytest.raises(DataError, match=r"cannot download .*missing.json .*set HBKIT_DATA_DIR"):
        fetch_file(f"{url}/missing.json", tmp_path / "m.json")
    assert not (tmp_path / "m.json").exists() and _leftovers(tmp_path) == []


def test_an_archive_release_is_extracted_and_the_archive_removed(server, tmp_path, monkeypatch):
    root, url = server
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("HBKIT_OFFLINE", raising=False)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("release/dev/a.json", b'{"a": 1}')
        z.writestr("release/dev/b.json", b'{"b": 2}')
    (root / "release.zip").write_bytes(buf.getvalue())
    src = {"fake": {"folder": "fake", "files": ["a.json", "b.json"], "archive": f"{url}/release.zip",
                    "member": "release/dev/{file}"}}
    download("fake", tmp_path / "data", sources=src)
    folder = tmp_path / "data" / "fake"
    assert (folder / "a.json").read_bytes() == b'{"a": 1}' and (folder / "b.json").read_bytes() == b'{"b": 2}'
    assert sorted(p.name for p in folder.iterdir()) == ["a.json", "b.json"]   # the archive itself is gone


def test_a_failed_release_download_leaves_no_empty_folder(server, tmp_path, monkeypatch):
    """The first file is unreachable: the folders the download created are gone again, and a folder that was
    there before stays."""
    _, url = server
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("HBKIT_OFFLINE", raising=False)
    src = {"fake": {"folder": "fake", "files": ["a.json"], "url": url + "/nothing/{file}"}}
    with pytest.raises(DataError, match="cannot download"):
        download("fake", tmp_path / "data" / "new", sources=src)
    assert not (tmp_path / "data").exists()
    (tmp_path / "kept").mkdir()
    with pytest.raises(DataError, match="cannot download"):
        download("fake", tmp_path / "kept", sources=src)
    assert (tmp_path / "kept").is_dir() and list((tmp_path / "kept").iterdir()) == []
