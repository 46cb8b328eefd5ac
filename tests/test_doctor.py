"""hbkit doctor: the preflight answers offline at once, names each missing piece with its fix, and exits non-zero."""
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from hbkit.experiment.doctor import MISSING, doctor


@pytest.fixture
def offline(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HBKIT_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("HBKIT_DATA_DIR", raising=False)


def _free(monkeypatch, gib):
    real = shutil.disk_usage
    monkeypatch.setattr("hbkit.experiment.doctor.shutil.disk_usage",
                        lambda p: real(p)._replace(free=int(gib * 2**30)))


def test_cpu_profile_is_ready_with_the_releases(offline, data_dir, tmp_path, monkeypatch):
    _free(monkeypatch, 500)   # the answer must not depend on the test machine's disk (nor its memory)
    monkeypatch.setattr("hbkit.experiment.doctor._available_mb", lambda: 20_000.0)
    t0 = time.perf_counter()
    t = doctor("cpu", data_dir, tmp_path / "run")
    assert time.perf_counter() - t0 < 60   # no download, no connection: checksums of local files only
    s = t.set_index("check")["status"]
    assert s["data: xquad-r"] == s["data: mlqa-r"] == s["data: tydiqa"] == s["encoder"] == s["disk"] == "ok"
    assert s["CUDA"] in ("info", "ok") and not (t.status == MISSING).any()
    assert "match their sha256" in t.set_index("check").loc["data: xquad-r", "detail"]


def test_a_full_disk_is_missing_with_its_fix(offline, data_dir, tmp_path, monkeypatch):
    """The CI machine once had a few hundred MB free: the cpu profile's 24 models need more, and doctor says so."""
    _free(monkeypatch, 0.3)
    row = doctor("cpu", data_dir, tmp_path / "run").set_index("check").loc["disk"]
    assert row["status"] == MISSING and "0.3 GiB free" in row["detail"] and "--out on a larger disk" in row["fix"]


def test_too_little_memory_is_missing_with_its_fix(offline, data_dir, tmp_path, monkeypatch):
    """The cpu profile's training peaks at the measured 2.9 GB: with 2.5 GB available doctor says to set
    HBKIT_LOW_MEMORY=1 (2.1 GB); with it set, 2.5 GB is enough; with 1.5 GB neither is."""
    _free(monkeypatch, 500)
    memory = lambda: doctor("cpu", data_dir, tmp_path / "run").set_index("check").loc["memory"]  # noqa: E731
    monkeypatch.setattr("hbkit.experiment.doctor._available_mb", lambda: 2_500.0)
    row = memory()
    assert row["status"] == MISSING and "HBKIT_LOW_MEMORY=1" in row["fix"] and "2.9 GB" in row["detail"]
    monkeypatch.setenv("HBKIT_LOW_MEMORY", "1")
    assert memory()["status"] == "ok"
    monkeypatch.setattr("hbkit.experiment.doctor._available_mb", lambda: 1_500.0)
    row = memory()
    assert row["status"] == MISSING and "--batch-size" in row["fix"]


def test_a_bad_low_memory_value_is_refused_before_any_work(tmp_path, monkeypatch):
    from hbkit.core.env import low_memory
    from hbkit.experiment.compare import compare

    monkeypatch.setenv("HBKIT_LOW_MEMORY", "yes")
    with pytest.raises(ValueError, match="HBKIT_LOW_MEMORY='yes': set it to 1"):
        low_memory()
    with pytest.raises(ValueError, match="HBKIT_LOW_MEMORY"):
        compare("ci", tmp_path / "run", progress=False)
    assert not (tmp_path / "run").exists()


_FREED = """
import sys, numpy as np
from hbkit.core.env import large_blocks_from_mmap
def anon():
    return next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("RssAnon")) / 1024
if sys.argv[1] == "on":
    assert large_blocks_from_mmap(4 * 2**20)
big = np.ones(2**21)   # one 16 MB block, freed: glibc's own threshold rises to its size (up to 32 MB)
del big
blocks, pins = [], []
for _ in range(24):    # 24 blocks of 8 MB, each with a live 2 MB block above it in the heap
    blocks.append(np.ones(2**20))
    pins.append(np.ones(2**18))
before = anon()
del blocks
print(before - anon())
"""


def test_large_blocks_from_mmap_gives_freed_blocks_back(tmp_path):
    """The mechanism of HBKIT_LOW_MEMORY: with glibc as it is, 192 MB of freed 8 MB blocks below a live one stay
    resident; with the threshold fixed at 4 MB each block was its own mapping, and freeing gives it back."""
    script = tmp_path / "freed.py"
    script.write_text(_FREED)
    given_back = {how: float(subprocess.run([sys.executable, str(script), how], capture_output=True, text=True,
                                            check=True).stdout) for how in ("off", "on")}
    assert given_back["on"] > 150 and given_back["off"] < 50, given_back


_HUGE = """
import os, sys
if sys.argv[1] == "torch-first":
    import torch
import hbkit, torch
ts = [torch.ones(2**24 + i * 1024) for i in range(4)]   # 4 touched tensors of 64 MB
huge = sum(int(l.split()[1]) for l in open("/proc/self/smaps") if l.startswith("AnonHugePages:")) // 1024
print(os.environ.get("THP_MEM_ALLOC_ENABLE"), all(t.data_ptr() % 4096 == 0 for t in ts), huge)
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="torch's huge pages are Linux's")
def test_import_hbkit_puts_torchs_large_tensors_on_huge_pages_unless_told_otherwise(tmp_path):
    """``import hbkit`` before torch sets torch's THP_MEM_ALLOC_ENABLE=1: its large CPU tensors are page-aligned and
    advised to huge pages (AnonHugePages grows where the system's THP mode is madvise or always). A user's 0 is
    kept, and torch imported first is left as it is (it has read the variable by then)."""
    thp = Path("/sys/kernel/mm/transparent_hugepage/enabled")
    mode = thp.read_text() if thp.exists() else "[never]"
    script = tmp_path / "huge.py"
    script.write_text(_HUGE)
    env = {k: v for k, v in os.environ.items() if k != "THP_MEM_ALLOC_ENABLE"}

    def probe(how, **extra):
        out = subprocess.run([sys.executable, str(script), how], capture_output=True, text=True, check=True,
                             env={**env, **extra}).stdout.split()
        return out[0], out[1] == "True", int(out[2])

    var, aligned, huge = probe("hbkit-first")
    assert var == "1" and aligned, (var, aligned)
    if "[never]" not in mode:
        assert huge >= 128, huge   # most of the 256 MB
    var, aligned, huge = probe("hbkit-first", THP_MEM_ALLOC_ENABLE="0")
    assert var == "0" and not aligned and huge == 0, (var, aligned, huge)
    var, aligned, huge = probe("torch-first")
    assert var == "None" and not aligned and huge == 0


def test_paper_profile_offline_names_what_is_missing(offline, data_dir, tmp_path):
    """A data folder with the benchmarks but no SQuAD translate-train, mMARCO or SQuADShifts, a damaged XQuAD-R file,
    offline: each
    missing piece is a row with its fix, MIRACL is said to be skipped, and the command exits 1."""
    root = tmp_path / "data"
    for name in ("mlqa-r", "tydiqa-goldp"):
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).symlink_to(data_dir / name)
    shutil.copytree(data_dir / "xquad-r", root / "xquad-r")
    blob = (root / "xquad-r" / "de.json").read_bytes()
    (root / "xquad-r" / "de.json").write_bytes(blob[:-10] + b" " * 10)   # same size, other bytes
    t = doctor("paper", root, tmp_path / "run", model="FacebookAI/xlm-roberta-base").set_index("check")
    assert t.loc["data: xquad-r", "status"] == MISSING and "de.json: sha256 differs" in t.loc["data: xquad-r", "detail"]
    assert t.loc["data: mlqa-r", "status"] == "ok"
    row = t.loc["training corpus: squad-translate-train"]
    assert row.status == MISSING and f"hbkit data download squad-translate-train --data-dir {root}" in row.fix
    row = t.loc["training corpus: mmarco"]   # the paper's mix: each part its own row, with the command that fetches it
    assert row.status == MISSING and \
        f"hbkit data download mmarco --data-dir {root} --languages ar,de,en,es,hi,ru,zh" in row.fix
    row = t.loc["validation: squadshifts"]
    assert row.status == MISSING and f"hbkit data download squadshifts --data-dir {root}" in row.fix
    from paper_fixtures import write_mmarco, write_squadshifts
    write_mmarco(root / "mmarco", langs=("ar", "de", "en", "es", "hi", "ru", "zh"), n_queries=4)
    write_squadshifts(root / "squadshifts", per_domain=3)
    t = doctor("paper", root, tmp_path / "run", model="FacebookAI/xlm-roberta-base").set_index("check")
    assert t.loc["training corpus: mmarco", "status"] == "ok"
    assert t.loc["validation: squadshifts", "status"] == MISSING and "differ from the release's size" in \
        t.loc["validation: squadshifts", "detail"]   # fixture files, not the release's bytes
    assert t.loc["data: miracl-sw", "status"] == "skipped" and "miracl/miracl" in t.loc["data: miracl-sw", "fix"]
    assert t.loc["CUDA", "status"] in (MISSING, "ok")
    r = subprocess.run([sys.executable, "-m", "hbkit.app.cli", "doctor", "--profile", "paper", "--data-dir", str(root),
                        "--out", str(tmp_path / "run")], capture_output=True, text=True,
                       env={**__import__("os").environ, "HF_HUB_OFFLINE": "1"})
    assert r.returncode == 1 and "not ready:" in r.stdout and "training corpus: squad-translate-train" in r.stdout
    assert "Traceback" not in r.stderr


def test_bad_profile_is_refused_before_any_check(offline):
    from hbkit.experiment.profiles import ProfileError
    with pytest.raises(ProfileError, match="batch_size"):
        doctor("cpu", batch_size=1)
