"""Where every release file comes from: pinned sources, checksums, the data root, the downloader."""

from __future__ import annotations

import hashlib
import logging
import os
import urllib.error
import urllib.request
import zipfile
from pathlib import Path
from typing import Iterable

from hbkit.core.env import data_roots, default_data_roots, looked_in, offline
from hbkit.core.files import atomic_path, atomic_write_bytes, tmp_name
from hbkit.data.registry import MLQA_LANGS, TYDI_NAMES, TYDIQA_LANGS, DataError
from hbkit.data.sources import HUB_SOURCES, SOURCES, release_checksums

log = logging.getLogger(__name__)


PROJECT_DATA = Path(__file__).resolve().parents[2] / "data"


# --------------------------------------------------------------------------------------------------
# where files come from
# --------------------------------------------------------------------------------------------------
def _files(name: str, languages: Iterable[str] | None = None) -> list[str]:
    """The files of release ``name`` that ``languages`` need (all files when None)."""
    files = SOURCES[name]["files"]
    if languages is None or name == "tydiqa":
        return files
    langs = set(languages)
    if name == "mlqa":  # the rebuilt MLQA-R reads the same-language files
        return [f"dev-context-{l}-question-{l}.json" for l in MLQA_LANGS if l in langs]
    return [f for f in files if f.split(".")[-2] in langs]


def _missing(root: Path, name: str, languages: Iterable[str] | None = None) -> list[Path]:
    """The files of ``name`` (for ``languages``) that ``root`` lacks; TyDi-QA accepts the
    per-language files (``<language>_tydiqa_dev.json``) or the official
    ``tydiqa-goldp-v1.1-dev.json``."""
    folder = root / SOURCES[name]["folder"]
    if name == "tydiqa":
        if (folder / "tydiqa-goldp-v1.1-dev.json").is_file():
            return []
        names = {v: k for k, v in TYDI_NAMES.items()}
        want = [folder / f"{names[l]}_tydiqa_dev.json" for l in (languages or TYDIQA_LANGS)]
        return [f for f in want if not f.is_file()]
    return [folder / f for f in _files(name, languages) if not (folder / f).is_file()]


def missing_release_files(
    root: str | os.PathLike, name: str, languages: Iterable[str] | None = None
) -> list[Path]:
    """The files of release ``name`` (for ``languages``) that the data folder ``root`` lacks (public
    form of the check :func:`release_dir` makes; ``hbkit doctor`` lists them)."""
    return _missing(Path(root), name, languages)


def release_dir(
    name: str,
    data_dir: str | os.PathLike | None = None,
    languages: Iterable[str] | None = None,
    download_missing: bool | None = None,
) -> Path:
    """Return the root folder that holds release ``name`` (``xquad``, ``xquad-r``, ``mlqa-r``,
    ``mlqa``, ``tydiqa``) for ``languages`` (default: all of them).

    Order (:func:`hbkit.core.env.default_data_roots` states the rule): explicit ``data_dir``;
    ``$HBKIT_DATA_DIR``; ``../shared/data`` beside the checkout; the project's ``data/``; else
    download into ``data/`` (unless ``download_missing=False`` or
    ``HF_HUB_OFFLINE``/``HBKIT_OFFLINE`` is set). An explicit path or ``HBKIT_DATA_DIR`` that lacks
    a needed file is an error naming that file, never silently skipped.
    """
    if name not in SOURCES:
        raise DataError(f"unknown dataset {name!r}; known: {', '.join(SOURCES)}")
    for origin, root in data_roots(data_dir)[:1]:
        missing = _missing(root, name, languages)
        if missing:
            raise DataError(
                f"{origin}={root} lacks "
                f"{missing[0]}{f' (and {len(missing) - 1} more)' if len(missing) > 1 else ''} of "
                f"{name}. Point it at a folder laid out like data/README.md, or unset it to use "
                f"./data or a download (`hbkit data download {name}`)."
            )
        return root
    for root in default_data_roots(PROJECT_DATA):
        if not _missing(root, name, languages):
            return root
    if download_missing is False or (download_missing is None and offline()):
        raise DataError(
            f"{name} not found (looked in {looked_in(PROJECT_DATA)}; offline, so no download): set "
            "HBKIT_DATA_DIR or --data-dir to a folder laid out like data/README.md (e.g. "
            f"HBKIT_DATA_DIR=../shared/data), or run `hbkit data download {name}` while online."
        )
    download(name, PROJECT_DATA)
    return PROJECT_DATA


def fetch_file(
    url: str, path: str | os.PathLike, size: int | None = None, sha256: str | None = None
) -> Path:
    """Download ``url`` into ``path``: the one downloader of hbkit's release files.

    Streams in 1 MiB chunks into a temporary file beside ``path`` and renames it only when the byte
    count and sha256 match ``size`` and ``sha256`` (each checked when given), so an interrupted or
    corrupt download never leaves a file that looks complete.

    Raises:
        DataError: the address cannot be reached (with the offline alternative), or the bytes differ
            from the release (with both checksums).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    h, n = hashlib.sha256(), 0
    try:
        with (
            atomic_path(path) as tmp,
            urllib.request.urlopen(url, timeout=300) as r,
            open(tmp, "wb") as out,
        ):  # noqa: S310
            while chunk := r.read(1 << 20):
                h.update(chunk)
                n += len(chunk)
                out.write(chunk)
            out.flush()
            if (size is not None and n != size) or (sha256 is not None and h.hexdigest() != sha256):
                want = ", ".join(
                    w
                    for w in (
                        f"{size} bytes" if size is not None else "",
                        f"sha256 {sha256}" if sha256 is not None else "",
                    )
                    if w
                )
                raise DataError(
                    f"{url}: got {n} bytes, sha256 {h.hexdigest()}; the release has {want}. The "
                    "download is corrupt or the upstream file changed; retry, or use HBKIT_DATA_DIR"
                )
    except (urllib.error.URLError, OSError) as e:
        raise DataError(
            f"cannot download {url} ({getattr(e, 'reason', e)}); check the network, or place the "
            "files in a folder laid out like data/README.md and set HBKIT_DATA_DIR"
        ) from None
    return path


def hub_revision(source: str) -> str:
    """The revision of ``source`` (a :data:`hbkit.data.sources.HUB_SOURCES` key) to download: its
    environment variable when set, else the pinned commit."""
    src = HUB_SOURCES[source]
    return os.environ.get(src["env"]) or src["revision"]


def locate_folder(
    sub: str,
    files: list[str],
    data_dir,
    what: str,
    download_hint: str,
    download,
    download_missing: bool | None = None,
) -> Path:
    """The folder holding ``files`` (relative paths) of a downloadable release: ``data_dir`` itself
    or its ``sub``/, else ``$HBKIT_DATA_DIR/sub``, else ``sub``/ of ``../shared/data`` beside the
    checkout or of the project's ``data/`` (:func:`hbkit.core.env.default_data_roots`), else
    ``download(data/sub)`` unless offline (:func:`hbkit.core.env.offline`) or
    ``download_missing=False``. A folder a user named that lacks a file is a :class:`DataError`
    naming the first one and ``download_hint`` (the command that fetches them into it, given the
    root)."""
    for origin, root in data_roots(data_dir)[:1]:
        for cand in ((root,) if origin.startswith("argument") else ()) + (root / sub,):
            if all((cand / f).is_file() for f in files):
                return cand
        missing = [f for f in files if not (root / sub / f).is_file()]
        raise DataError(
            f"{origin}={root} lacks {root / sub / missing[0]} ({what}; {len(missing)} of "
            f"{len(files)} files missing): run `{download_hint.format(root=root)}` while online, "
            "or place the release files there"
        )
    for root in default_data_roots(PROJECT_DATA):
        if all((root / sub / f).is_file() for f in files):
            return root / sub
    default = PROJECT_DATA / sub
    if download_missing is False or (download_missing is None and offline()):
        raise DataError(
            f"{what} not found in {sub}/ of {looked_in(PROJECT_DATA)}, and offline "
            f"(HF_HUB_OFFLINE/HBKIT_OFFLINE): place "
            f"{', '.join(files[:4])}{' ...' if len(files) > 4 else ''} there, or set HBKIT_DATA_DIR"
        )
    return download(default)


def fetch_hub_file(source: str, name: str, dest: str | os.PathLike) -> bool:
    """Download file ``name`` of hub source ``source`` (:data:`hbkit.data.sources.HUB_SOURCES`) at
    its revision (:func:`hub_revision`) into ``dest/name`` with huggingface_hub's
    ``hf_hub_download`` (honouring ``HF_ENDPOINT`` and ``HF_TOKEN``; it writes ``.incomplete`` files
    and renames them, so a file arrives whole). Returns False when the hub says the revision has no
    such file; a connection failure raises (it must never read as "absent")."""
    from huggingface_hub import hf_hub_download

    # huggingface_hub.errors from 0.24 on; LocalEntryNotFoundError (a subclass) means "could not
    # connect", not "the hub has no such file"
    from huggingface_hub.utils import EntryNotFoundError, LocalEntryNotFoundError

    src = HUB_SOURCES[source]
    try:
        hf_hub_download(
            src["repo"], name, repo_type="dataset", revision=hub_revision(source), local_dir=dest
        )
    except EntryNotFoundError as e:
        if isinstance(e, LocalEntryNotFoundError):
            raise
        return False
    return True


def _verify(rel: str, blob: bytes, origin: str) -> None:
    want = release_checksums().get(rel)
    got = hashlib.sha256(blob).hexdigest()
    if want is not None and got != want:
        raise DataError(
            f"{origin}: sha256 {got} does not match the release ({want}); the download is "
            f"corrupt or the upstream file changed. Delete it and retry, or use HBKIT_DATA_DIR."
        )


def download(
    name: str, dest: str | os.PathLike = PROJECT_DATA, sources: dict | None = None
) -> Path:
    """Download release ``name`` from its official address into ``dest`` (laid out like
    data/README.md).

    Every file with a known checksum (all of XQuAD, XQuAD-R, MLQA-R and MLQA dev) is verified by
    sha256 before it is written (atomically); TyDi-QA GoldP dev is checked by its question count
    (5,077) when read. Offline (``HF_HUB_OFFLINE=1`` / ``HBKIT_OFFLINE=1``) it refuses at once,
    saying where to place the files.
    """
    if name not in (sources or SOURCES):
        raise DataError(f"unknown dataset {name!r}; known: {', '.join(sources or SOURCES)}")
    src = (sources or SOURCES)[name]
    folder = Path(dest) / src["folder"]
    if offline():
        raise DataError(
            f"cannot download {name} while offline (HF_HUB_OFFLINE/HBKIT_OFFLINE is set): place "
            f"{', '.join(src['files'][:2])}{' ...' if len(src['files']) > 2 else ''} in {folder} "
            "(see data/README.md), or unset the variable"
        )
    created = [d for d in (folder, *folder.parents) if not d.exists()]
    folder.mkdir(parents=True, exist_ok=True)
    try:
        _fetch_release(src, folder)
    except BaseException:
        for d in created:  # innermost first: a failed download leaves no empty folder behind
            try:
                d.rmdir()
            except OSError:  # something arrived in it (a file another process wrote): keep it
                break
        raise
    return Path(dest)


def _fetch_release(src: dict, folder: Path) -> None:
    if "archive" in src:
        log.info("downloading %s", src["archive"])
        archive = fetch_file(src["archive"], tmp_name(folder / "release.zip"))
        try:
            with zipfile.ZipFile(archive) as z:
                for f in src["files"]:
                    blob = z.read(src["member"].format(file=f))
                    _verify(f"{src['folder']}/{f}", blob, f"{src['archive']}!{f}")
                    atomic_write_bytes(folder / f, blob)
        finally:
            archive.unlink(missing_ok=True)
    else:
        manifest = release_checksums()
        for f in src["files"]:
            url = src["url"].format(file=f)
            log.info("downloading %s", url)
            fetch_file(url, folder / f, sha256=manifest.get(f"{src['folder']}/{f}"))
