import functools
import http.server
import os
import threading
from pathlib import Path

import pytest

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# the tests name their data (HBKIT_DATA_DIR, data_dir=...): the search beside the checkout is off, so that "no data"
# stays no data; tests/test_data.py turns it on
os.environ.setdefault("HBKIT_SHARED_DATA", "")

DATA = os.environ.get("HBKIT_DATA_DIR")


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """The release copies. In CI HBKIT_DATA_DIR is set: a broken path must fail, never skip."""
    if not DATA:
        default = Path(__file__).resolve().parents[1].parent / "shared" / "data"
        if default.is_dir():
            return default.resolve()
        pytest.skip("HBKIT_DATA_DIR is not set and ../shared/data is absent")
    path = Path(DATA).resolve()
    assert (path / "xquad-r" / "en.json").is_file(), f"HBKIT_DATA_DIR={DATA} does not hold the releases"
    return path


@pytest.fixture(scope="session")
def tiny():
    from hbkit.encoders.load import tiny_encoder
    return tiny_encoder()


@pytest.fixture(scope="session")
def embedded():
    from hbkit.encoders.load import load_encoder
    os.environ["HF_HUB_OFFLINE"] = "1"
    return load_encoder("intfloat/multilingual-e5-small")


@pytest.fixture(scope="session")
def xlmr_folder(tmp_path_factory):
    """XLM-R's real model class, config keys and tokenizer, 2 small layers (tests/real_arch.py)."""
    from real_arch import build_xlmr
    return build_xlmr(tmp_path_factory.mktemp("xlmr") / "xlm-roberta")


@pytest.fixture(scope="session")
def labse_folder(tmp_path_factory):
    """A sentence-transformers folder shaped like LaBSE: BERT, CLS pooling, Dense, Normalize (tests/real_arch.py)."""
    from real_arch import build_labse
    return build_labse(tmp_path_factory.mktemp("labse") / "labse")


@pytest.fixture
def server(tmp_path):
    """A plain HTTP server on 127.0.0.1 serving ``tmp_path/www``: ``(folder, base address)``; the downloaders are
    tested against it."""
    root = tmp_path / "www"
    root.mkdir()
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(root))
    handler.log_message = lambda *a, **k: None
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    yield root, f"http://127.0.0.1:{srv.server_address[1]}"
    srv.shutdown()
    srv.server_close()


@pytest.fixture
def empty_cache(tmp_path, monkeypatch):
    """An empty hbkit cache (HBKIT_CACHE) and a cleared count of corpus builds."""
    from hbkit.data import corpus_cache

    monkeypatch.setenv("HBKIT_CACHE", str(tmp_path / "cache"))
    corpus_cache.BUILDS.clear()
    return tmp_path / "cache"

