"""The one registry of every source hbkit downloads: its address (or Hugging Face hub repository)
with a pinned revision, its files, and their sizes and sha256 where the release fixes them.

Every downloader of hbkit reads its addresses here and nowhere else:
:func:`hbkit.data.fetch.download` (XQuAD, XQuAD-R, MLQA-R, MLQA, TyDi-QA GoldP),
:func:`hbkit.data.releases.translate_train.download_squad_translate_train`,
:func:`hbkit.data.releases.squadshifts.download_squadshifts`, MIRACL and mMARCO through
:func:`hbkit.data.fetch.fetch_hub_file`, and :func:`hbkit.encoders.load.load_encoder` for the hub
models (:data:`MODEL_SOURCES`). ``hbkit data sources`` prints the table (:func:`sources_table`).
"""

from __future__ import annotations

import json
import os
from functools import lru_cache
from pathlib import Path

from hbkit.data.registry import MLQA_LANGS, XQUAD_LANGS, XQUAD_R_LANGS

_COMMIT_XQUAD = "7d30520c717524000f0d9d2f9c10a069acd9d285"


_COMMIT_LAREQA = "9bc8c7fb6dd8d01d72a05a93c2cb96882b0d299c"


_COMMIT_LAREQA_MLQA = (
    "5405d2a77e83d5ccb47623a3f9e5604c3f103193"  # mlqa-dev-r/ was removed from the head later
)


#: Release addresses of the benchmark releases (used only when no local copy is found); the sha256
#: of every file with a fixed checksum is in ``sha256.json`` beside this module
#: (:func:`release_checksums`).
SOURCES = {
    "xquad": {
        "folder": "xquad",
        "files": [f"xquad.{l}.json" for l in XQUAD_LANGS],
        "url": f"https://raw.githubusercontent.com/google-deepmind/xquad/{_COMMIT_XQUAD}/{{file}}",
        "licence": "CC BY-SA 4.0",
    },
    "xquad-r": {
        "folder": "xquad-r",
        "files": [f"{l}.json" for l in XQUAD_R_LANGS],
        "url": f"https://raw.githubusercontent.com/google-research-datasets/lareqa/{_COMMIT_LAREQA}/xquad-r/{{file}}",
        "licence": "CC BY-SA 4.0",
    },
    "mlqa-r": {
        "folder": "mlqa-r",
        "files": [f"{l}.json" for l in MLQA_LANGS],
        "url": f"https://raw.githubusercontent.com/google-research-datasets/lareqa/{_COMMIT_LAREQA_MLQA}/mlqa-dev-r/{{file}}",
        "licence": "CC BY-NC 4.0",
    },
    "mlqa": {
        "folder": "mlqa/dev",
        "files": [f"dev-context-{c}-question-{q}.json" for c in MLQA_LANGS for q in MLQA_LANGS],
        "archive": "https://dl.fbaipublicfiles.com/MLQA/MLQA_V1.zip",
        "member": "MLQA_V1/dev/{file}",
        "licence": "CC BY-SA 3.0",
    },
    "tydiqa": {
        "folder": "tydiqa-goldp/dev",
        "files": ["tydiqa-goldp-v1.1-dev.json"],
        "url": "https://storage.googleapis.com/tydiqa/v1.1/{file}",
        "licence": "Apache 2.0",
    },
}


#: SQuAD v1.1 train and XTREME's machine translations of it (translate-train). The bucket holds no
#: revisions; the sizes and sha256 pin the bytes.
SQUAD_URL = "https://rajpurkar.github.io/SQuAD-explorer/dataset/train-v1.1.json"


TT_URL = "https://storage.googleapis.com/xtreme_translations/SQuAD/translate-train/{file}"


#: Size (bytes) and sha256 of every release file, as pinned by TensorFlow Datasets
#: (tensorflow/datasets @ 24211da0508a86f0a9efd82c69bab9d25cda0a20,
#: tensorflow_datasets/url_checksums/xquad.txt; SQuAD train also in url_checksums/squad.txt). The
#: German size is also asserted by an independent user of the release (93,188,862 bytes). SQuAD v1.1
#: train holds 87,599 questions.
SQUAD_TT_MANIFEST: dict[str, tuple[int, str]] = {
    "en": (30288272, "3527663986b8295af4f7fcdff1ba1ff3f72d07d61a20f487cb238a6ef92fd955"),
    "ar": (311935799, "d2d01110aa646b547eec88b14b3930dc027c9d149c4962376a1551e251ec3f9b"),
    "de": (93188862, "3c125cb2a31e8ad167c4590ece8fdfd16018a5bbf9475dbfac034c1816a4ab02"),
    "el": (368851294, "9d648f92883a88b27bb0d9ab502a0512bf5ffe7f8ce00bc205b19d66029dab04"),
    "es": (101758698, "cb8f68b8e4cff696209a5ec249a5dc9e2a75a5c7f9dbbfa8a8be1dcf1f91c81a"),
    "hi": (348849738, "fdfd8c59359943c6a55022403e7dfa047e7ee1dea734086a3c73c1adbb44d254"),
    "ru": (379620057, "075818cce7ca8d6efe2c783b125d91bd79add93ddfe8c2b0f45fb610d7552f48"),
    "th": (341480847, "3ae03fd7a9d51a6f45e74a70b8d6168eb365114fcf5de21f34f212197e085eab"),
    "tr": (111351195, "7c618d3f5e0c19d878686a9874b15a10d6f842ae9451e12d8d7d51531bfe79e6"),
    "vi": (160940115, "ad6d3ba17b8e672e7066708ce5795f0f933f3ce18b7442ee11d6e3072f44f60b"),
    "zh": (128888478, "411e4023e4f3627ccb4873edfb77b36e97470b4226a076e6a632544c92353d24"),
}


_COMMIT_SQUADSHIFTS = (
    "016d41ce7fee5a818b68ecf5cbabb0a86291ceef"  # 2020-06-28 "Add datasets to website"
)


#: SQuADShifts (Miller et al., ICML 2020): four SQuAD v1.1-format test sets, from the authors'
#: repository (modestyachts/squadshifts-website, datasets/) at the commit that added them. Sizes and
#: sha256 as recorded by huggingface/datasets (datasets/squadshifts/dataset_infos.json) and checked
#: here against the repository's files.
SQUADSHIFTS = {
    "folder": "squadshifts",
    "licence": "CC BY 4.0",
    "url": f"https://raw.githubusercontent.com/modestyachts/squadshifts-website/{_COMMIT_SQUADSHIFTS}/datasets/{{file}}",
    "files": {  # domain: (file, bytes, sha256, questions)
        "new_wiki": (
            "new_wiki_v1.0.json",
            3607393,
            "1d50a0ca4cdab88d038b52ea8a2d0510af6038d7f41a0a256b9659237769d0ee",
            7938,
        ),
        "nyt": (
            "nyt_v1.0.json",
            4550058,
            "fd55ae252cc735a695fab4473d4cd605b154183ac3b3eb63068f53cfc86f36d6",
            10065,
        ),
        "reddit": (
            "reddit_v1.0.json",
            4170330,
            "b4ac346dbf1816fdec80fdcf91d06a4b754fa51e47960fa8614a94f37ea42a4b",
            9803,
        ),
        "amazon": (
            "amazon_reviews_v1.0.json",
            4177842,
            "9db7bdee84a91f0fb80b9e74f365042fbbb217cb8e0a7e73bb071245472589b6",
            9885,
        ),
    },
}


#: mMARCO's language names in its file names, by ISO code (the 14 languages of unicamp-dl/mmarco v2,
#: "google" set)
MMARCO_LANGS = {
    "ar": "arabic",
    "de": "german",
    "en": "english",
    "es": "spanish",
    "fr": "french",
    "hi": "hindi",
    "id": "indonesian",
    "it": "italian",
    "ja": "japanese",
    "nl": "dutch",
    "pt": "portuguese",
    "ru": "russian",
    "vi": "vietnamese",
    "zh": "chinese",
}


#: Releases hbkit fetches from the Hugging Face hub with huggingface_hub, at a pinned revision (a
#: commit of the hub repository, read from its commit pages; override with the environment variable
#: in ``env``). The repositories hold the release files themselves: ``miracl/miracl``'s loading
#: script no longer runs under current ``datasets``, so hbkit downloads the files
#: (``hf_hub_download``) straight into the release layout.
HUB_SOURCES = {
    "miracl": {
        "repo": "miracl/miracl",
        "revision": "b8fd596db2f405cf6b5edfca2940000d770620c6",
        "env": "HBKIT_MIRACL_REVISION",
        "licence": "Apache 2.0",
        "files": [
            "miracl-v1.0-{lang}/topics/topics.miracl-v1.0-{lang}-{split}.tsv",
            "miracl-v1.0-{lang}/qrels/qrels.miracl-v1.0-{lang}-{split}.tsv",
        ],
    },
    "miracl-corpus": {
        "repo": "miracl/miracl-corpus",
        "revision": "262aa62d062e95c5487d7115094ffb2721830965",
        "env": "HBKIT_MIRACL_CORPUS_REVISION",
        "licence": "Apache 2.0",
        "files": ["miracl-corpus-v1.0-{lang}/docs-{i}.jsonl.gz"],
    },
    # mMARCO (Bonifacio et al., 2021): MS MARCO passage ranking machine-translated (Google
    # Translate, v2). Files as its loading script (mmarco.py 2.0.0) and ir_datasets read them:
    # tab-separated, no header; ids shared by every language. The revision is the one
    # stanford-crfm/helm pins. Sizes from ir_datasets' downloads.json.
    "mmarco": {
        "repo": "unicamp-dl/mmarco",
        "revision": "6d039c4638c0ba3e46a9cb7b498b145e7edc6230",
        "env": "HBKIT_MMARCO_REVISION",
        "licence": "Apache 2.0 (MS MARCO: non-commercial research terms)",
        "files": [
            "data/triples.train.ids.small.tsv",
            "data/google/queries/train/{name}_queries.train.tsv",
            "data/google/collections/{name}_collection.tsv",
        ],
        "sizes": {
            "data/triples.train.ids.small.tsv": 905211990,
            **{
                f"data/google/collections/{MMARCO_LANGS[l]}_collection.tsv": n
                for l, n in (
                    ("ar", 4664307196),
                    ("zh", 2720255044),
                    ("de", 3488187566),
                    ("es", 3571559558),
                    ("ru", 5769514997),
                    ("hi", 7649320531),
                )
            },
            **{
                f"data/google/queries/train/{MMARCO_LANGS[l]}_queries.train.tsv": n
                for l, n in (
                    ("ar", 51869220),
                    ("zh", 31567548),
                    ("de", 39404290),
                    ("es", 41464870),
                    ("ru", 62396828),
                    ("hi", 82511017),
                )
            },
        },
    },
}


#: The hub models hbkit knows by name, at a pinned commit of their hub repository (the revisions the
#: MTEB leaderboard pins in embeddings-benchmark/mteb,
#: mteb/models/model_implementations/{e5_models,facebookai, sentence_transformers_models}.py;
#: mBERT's as other public code pins it). ``load_encoder`` downloads these; the environment variable
#: ``HBKIT_MODEL_REVISION`` (e.g. ``main``) or ``load_encoder(name, revision=...)`` picks another.
MODEL_SOURCES: dict[str, str] = {
    "intfloat/multilingual-e5-small": "fd1525a9fd15316a2d503bf26ab031a61d056e98",
    "intfloat/multilingual-e5-base": "d13f1b27baf31030b7fd040960d60d909913633f",
    "intfloat/multilingual-e5-large": "ab10c1a7f42e74530fe7ae5be82e6d4f11a719eb",
    "FacebookAI/xlm-roberta-base": "e73636d4f797dec63c3081bb6ed5c7b0bb3f2089",
    "FacebookAI/xlm-roberta-large": "c23d21b0620b635a76227c604d44e43a9f0ee389",
    "sentence-transformers/LaBSE": "e34fab64a3011d2176c99545a93d5cbddc9a91b7",
    "google-bert/bert-base-multilingual-cased": "3f076fdb1ab68d5b2880cb87a0886f315b8146f8",
}


def model_revision(name: str) -> str | None:
    """The hub revision to load model ``name`` at: ``$HBKIT_MODEL_REVISION`` when set, else the
    pinned commit of :data:`MODEL_SOURCES` (None for a model hbkit does not know: the hub's
    newest)."""
    return os.environ.get("HBKIT_MODEL_REVISION") or MODEL_SOURCES.get(name)


@lru_cache(maxsize=1)
def _manifest() -> dict[str, str]:
    return json.loads((Path(__file__).with_name("sha256.json")).read_text())


def release_checksums() -> dict[str, str]:
    """The pinned sha256 of every benchmark release file with a fixed checksum, by path under the
    data folder."""
    return dict(_manifest())


def sources_table():
    """Every source hbkit downloads, one row per file group: ``source, kind, address, revision,
    files, bytes, sha256`` (``bytes`` and ``sha256``: how many of its files the registry pins). What
    ``hbkit data sources`` prints."""
    import pandas as pd

    sums = _manifest()
    rows = []
    for name, src in SOURCES.items():
        files = src["files"]
        pinned = sum(f"{src['folder']}/{f}" in sums for f in files)
        rows.append(
            (
                name,
                "http",
                src.get("archive") or src["url"],
                src["url"].split("/")[5] if "githubusercontent" in src.get("url", "") else "-",
                len(files),
                0,
                pinned,
            )
        )
    rows.append(
        (
            "squad-translate-train",
            "http",
            f"{SQUAD_URL} + {TT_URL}",
            "-",
            len(SQUAD_TT_MANIFEST),
            len(SQUAD_TT_MANIFEST),
            len(SQUAD_TT_MANIFEST),
        )
    )
    rows.append(
        (
            "squadshifts",
            "http",
            SQUADSHIFTS["url"],
            _COMMIT_SQUADSHIFTS,
            len(SQUADSHIFTS["files"]),
            len(SQUADSHIFTS["files"]),
            len(SQUADSHIFTS["files"]),
        )
    )
    for name, src in HUB_SOURCES.items():
        rows.append(
            (
                name,
                "hub dataset",
                src["repo"],
                src["revision"],
                len(src["files"]),
                len(src.get("sizes", {})),
                0,
            )
        )
    for name, rev in MODEL_SOURCES.items():
        rows.append((name, "hub model", name, rev, 1, 0, 0))
    return pd.DataFrame(
        rows, columns=["source", "kind", "address", "revision", "files", "bytes", "sha256"]
    )
