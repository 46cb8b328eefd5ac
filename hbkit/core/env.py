"""One rule each for the environment: the cache folder, the data roots (:func:`default_data_roots`
states the whole rule), the run folders, offline mode, and the world size."""

from __future__ import annotations

import os
from pathlib import Path


def data_roots(data_dir: str | os.PathLike | None = None) -> list[tuple[str, Path]]:
    """The folders a user named for the data, first hit wins: ``("argument data_dir", data_dir)``
    when given, then ``("HBKIT_DATA_DIR", $HBKIT_DATA_DIR)`` when set; each expanded (``~``). Every
    loader that looks for a release (the benchmarks, SQuAD translate-train, MIRACL, ``hbkit
    doctor``) starts from this list and then falls back to its own default (the project's ``data/``,
    the hub cache, or a download). An empty ``data_dir`` and a root that is a file are refused
    (``ValueError``), before anything is looked for there.

    Examples:
        >>> data_roots("/data")[0]
        ('argument data_dir', PosixPath('/data'))
    """
    if data_dir is not None and not str(data_dir).strip():
        raise ValueError(
            "data_dir (--data-dir) is empty: name the folder that holds the releases, or leave it "
            "out to use $HBKIT_DATA_DIR or the project's data/"
        )
    given = (("argument data_dir", data_dir), ("HBKIT_DATA_DIR", os.environ.get("HBKIT_DATA_DIR")))
    roots = [(origin, Path(root).expanduser()) for origin, root in given if root]
    for origin, root in roots:
        if root.exists() and not root.is_dir():
            who = "data_dir (--data-dir)" if origin.startswith("argument") else origin
            raise ValueError(
                f"{who} {root} is a file, not a folder: name the folder that holds the releases "
                "(laid out as in data/README.md)"
            )
    return roots


def source_checkout() -> Path | None:
    """The source checkout hbkit runs from (a ``pyproject.toml`` beside the package), or None for an
    installed package: where ``runs/`` lives and ``../shared/data`` is looked for."""
    checkout = Path(__file__).resolve().parents[2]
    return checkout if (checkout / "pyproject.toml").is_file() else None


#: the folder found beside a source checkout when no data folder is named (``make`` passes the same
#: one)
SHARED_DATA = Path("..") / "shared" / "data"


def shared_data_dir() -> Path | None:
    """The data folder beside the source checkout hbkit runs from, ``<checkout>/../shared/data``,
    when it exists: the folder ``make`` passes as ``HBKIT_DATA_DIR``, so ``hbkit`` and the notebooks
    find it without the Makefile. ``$HBKIT_SHARED_DATA`` names another folder, and an empty value
    turns the search off. None when hbkit is not run from a checkout or the folder is absent."""
    env = os.environ.get("HBKIT_SHARED_DATA")
    if env is not None:
        return Path(env).expanduser() if env.strip() and Path(env).expanduser().is_dir() else None
    checkout = source_checkout()
    found = (checkout / SHARED_DATA).resolve() if checkout is not None else None
    return found if found is not None and found.is_dir() else None


def default_data_roots(project_data: Path) -> list[Path]:
    """Where a release is looked for when no folder is named (:func:`data_roots` is empty), first
    hit wins: :func:`shared_data_dir` when it exists, then the project's ``data/``
    (``project_data``). A release found in neither is downloaded into ``data/`` (unless offline).
    The whole rule, named folders first:

    1. ``--data-dir`` (the ``data_dir`` argument);
    2. ``$HBKIT_DATA_DIR``;
    3. ``../shared/data`` beside the checkout (:func:`shared_data_dir`);
    4. the project's ``data/``;
    5. a download into ``data/``.

    A named folder (1, 2) that lacks a file is an error that names the file; 3 and 4 are only used
    when they hold the release."""
    return [r for r in (shared_data_dir(), project_data) if r is not None]


def looked_in(project_data: Path) -> str:
    """Where :func:`default_data_roots` looked, for a message: ``--data-dir and HBKIT_DATA_DIR (not
    set), /x/shared/data, /x/hbkit/data``."""
    return "--data-dir and HBKIT_DATA_DIR (not set), " + ", ".join(
        str(r) for r in default_data_roots(project_data)
    )


def runs_root() -> Path:
    """Where run folders live: ``$HBKIT_RUNS``; else, when hbkit runs from a source checkout (a
    ``pyproject.toml`` beside the package), that checkout's ``runs/``, wherever the process starts
    (``make run`` at the top, the notebooks in ``notebooks/``); else ``./runs``."""
    env = os.environ.get("HBKIT_RUNS")
    if env:
        return Path(env).expanduser()
    checkout = source_checkout()
    return checkout / "runs" if checkout is not None else Path("runs")


def default_run_dir(profile_name: str) -> Path:
    """The one run folder of a profile (``runs/cpu``, ``runs/paper``, ...): ``make run``, the
    notebooks and the dashboard share it, so work done by one is reused by the others.

    Args:
        profile_name: a profile's name (``ci``, ``cpu``, ``gpu``, ``paper``, ...).

    Returns:
        ``<runs root>/<profile_name>``, the root being :func:`runs_root`'s (``$HBKIT_RUNS``, else
            the
        checkout's ``runs/``, else ``./runs``).

    Examples:
        >>> default_run_dir("cpu").name
        'cpu'
    """
    if not profile_name or profile_name == "auto":
        raise ValueError(
            "default_run_dir needs a resolved profile name (cfg['profile']), not 'auto'"
        )
    return runs_root() / profile_name


def cache_dir() -> Path:
    """``$HBKIT_CACHE``, else the user cache folder (``~/.cache/hbkit`` on Linux). Created on
    demand."""
    root = os.environ.get("HBKIT_CACHE")
    if root:
        path = Path(root).expanduser()
    else:
        from platformdirs import user_cache_dir

        path = Path(user_cache_dir("hbkit"))
    path.mkdir(parents=True, exist_ok=True)
    return path


_TRUE = ("1", "on", "yes", "true")


def offline() -> bool:
    """The one rule for "offline": ``HF_HUB_OFFLINE`` or ``HBKIT_OFFLINE`` set to a true value (1,
    on, yes, true, in any case; huggingface_hub's own reading of its variable). Then nothing is
    downloaded and the hub is never contacted: local copies, caches and the embedded encoder are
    used, and what is missing is named."""
    return any(
        os.environ.get(v, "").strip().lower() in _TRUE for v in ("HF_HUB_OFFLINE", "HBKIT_OFFLINE")
    )


def world() -> tuple[int, int]:
    """The one rule for ``(rank, world_size)``: torch.distributed's when its process group is
    initialised, else ``RANK`` / ``WORLD_SIZE`` (set by torchrun and accelerate before
    initialisation), else ``(0, 1)``. (The batch sampler asks the initialised process group only: it
    needs one to find its rank.)"""
    import sys

    dist = sys.modules.get(
        "torch.distributed"
    )  # not imported here: torch is heavy, and only then initialised
    if dist is not None and dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1))


def peak_rss_mb(reset: bool = False) -> float | None:
    """This process's peak resident memory (MB) since it started or since the last ``reset`` (Linux:
    ``VmHWM`` of ``/proc/self/status``; ``reset`` writes 5 to ``/proc/self/clear_refs``, which sets
    the peak to the current RSS). ``None`` where the system gives no resettable peak (macOS,
    Windows, a locked-down /proc): a stage's peak is then not measured rather than reported
    wrong."""
    try:
        if reset:
            with open("/proc/self/clear_refs", "w") as f:
                f.write("5")
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def release_freed_memory() -> None:
    """Give the memory freed since the last call back to the system (glibc's ``malloc_trim``;
    nothing elsewhere). glibc keeps freed blocks in its heaps for reuse: after one cpu-profile model
    was trained, 3.5 GB of freed activations stayed resident with no object alive
    (``benchmarks/bench_compare.py``), so each stage of the main job calls this when it starts
    (:func:`hbkit.experiment.stages.timed`)."""
    global _LIBC
    if _LIBC is None:
        import ctypes
        import ctypes.util

        try:
            lib = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
            _LIBC = lib if hasattr(lib, "malloc_trim") else False
        except OSError:
            _LIBC = False
    if _LIBC:
        _LIBC.malloc_trim(0)


_LIBC = None

#: torch's own switch for transparent huge pages under its CPU tensors (``c10/core/alloc_cpu.cpp``):
#: with ``1``, every CPU tensor is page-aligned, and each of 2 MB and more is
#: ``madvise(MADV_HUGEPAGE)``-d. torch reads it once, at its first CPU allocation, so it must be set
#: before torch is imported
TORCH_HUGE_PAGES = "THP_MEM_ALLOC_ENABLE"


def torch_huge_pages() -> bool:
    """Turn on torch's huge pages for large CPU tensors (``THP_MEM_ALLOC_ENABLE=1``) unless the
    variable is already set (``0`` keeps them off). ``import hbkit`` calls this, before anything
    imports torch. Measured on the cpu profile's training (``benchmarks/bench_train_memory.py``,
    7 steps): the peak RSS falls from 3.9 GB to 2.7 GB (0.68x) at 0.95x the time per step, since
    glibc's heaps then keep far fewer freed activations resident. Returns whether torch will use
    them: False when the variable says otherwise, off Linux, or when torch was imported before (it
    has read the variable then)."""
    import sys

    if not sys.platform.startswith("linux"):
        return False
    if "torch" in sys.modules and os.environ.get(TORCH_HUGE_PAGES) is None:
        return False
    return os.environ.setdefault(TORCH_HUGE_PAGES, "1").strip() == "1"


#: glibc's mallopt parameter for the mmap threshold (malloc.h)
_M_MMAP_THRESHOLD = -3


def large_blocks_from_mmap(threshold_bytes: int) -> bool:
    """Serve every block of at least ``threshold_bytes`` by its own mmap from now on (glibc's
    ``mallopt(M_MMAP_THRESHOLD)``), so that freeing it gives its pages back at once. By default
    glibc raises the threshold each time a large block is freed, and a training step's activations
    then come from its heaps and stay resident once freed. Returns False where there is no glibc
    (nothing changes)."""
    if threshold_bytes <= 0:
        raise ValueError(f"threshold_bytes={threshold_bytes}: give a positive size")
    release_freed_memory()  # loads libc
    return bool(
        _LIBC
        and hasattr(_LIBC, "mallopt")
        and _LIBC.mallopt(_M_MMAP_THRESHOLD, int(threshold_bytes)) == 1
    )


#: the mmap threshold ``HBKIT_LOW_MEMORY=1`` sets (``benchmarks/bench_train_memory.py``, 7 steps of
#: the cpu profile with huge pages on: 2,166 MB against 2,653 MB with huge pages alone and 3,911 MB
#: before them, for 1.19x the time per step; the losses are equal)
LOW_MEMORY_THRESHOLD = 4 * 2**20


def low_memory_requested() -> bool:
    """Whether ``HBKIT_LOW_MEMORY`` asks for :func:`low_memory` (is ``1``); reads the variable only,
    changes nothing."""
    return _low_memory_value() == "1"


def _low_memory_value() -> str:
    return os.environ.get("HBKIT_LOW_MEMORY", "").strip()


def low_memory() -> bool:
    """Apply ``HBKIT_LOW_MEMORY``: ``1`` serves blocks of 4 MB and more by mmap
    (:func:`large_blocks_from_mmap`), for a lower peak at some speed; unset, empty or ``0`` leaves
    glibc as it is. Returns whether it is on. Raises ``ValueError`` (one line, naming the variable)
    for any other value."""
    value = _low_memory_value()
    if value in ("", "0"):
        return False
    if value != "1":
        raise ValueError(
            f"HBKIT_LOW_MEMORY={value!r}: set it to 1 (a lower memory peak, slower training steps) "
            "or 0 / unset it"
        )
    return large_blocks_from_mmap(LOW_MEMORY_THRESHOLD)
