"""The GPU check (`make gpu-check`) stays runnable: its --dry-run takes every path at tiny sizes on CPU."""
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_gpu_check_dry_run(tmp_path, data_dir):
    out = tmp_path / "gpu_check.json"
    env_cmd = [sys.executable, str(ROOT / "benchmarks" / "gpu_check.py"), "--dry-run", "--out", str(out)]
    r = subprocess.run(env_cmd, capture_output=True, text=True, timeout=600,
                       env={**__import__("os").environ, "HBKIT_DATA_DIR": str(data_dir)})
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    rep = json.loads(out.read_text())
    assert rep["dry_run"] is True and rep["ok"] is True
    assert set(rep["train"]) == {"xlm-roberta-base", "multilingual-e5-small"}
    for t in rep["train"].values():
        assert t["s_per_step"] > 0 and t["tokens_per_s"] > 0 and t["non_embedding_params"] > 0
    # GradCache equals MNRL on the same batch, and the torch kernel equals numba on grid-rounded embeddings
    assert rep["cached_mnrl"]["abs_diff"] <= 1e-4 and rep["cached_mnrl"]["grad_cosine"] > 0.999
    assert rep["kernel"]["grid"]["max_abs_diff"] <= 1e-6 and rep["kernel"]["grid"]["nan_pattern_equal"]
    assert rep["encode_fp16"]["passages_per_s"] > 0
    for shape in ("xlm-roberta-base", "multilingual-e5-small"):   # hbkit's own trainer path, plain and each option
        assert set(rep["trainer_path"][shape]) == {"adamw_torch", "adamw_torch_fused", "fused+pad64",
                                                   "fused+pad64+workers2"}
        for variant, t in rep["trainer_path"][shape].items():
            assert t["path"] == "hbkit.train.train" and t["s_per_step"] > 0 and t["over_bare_loop"] > 0
            assert t["optim"] == ("adamw_torch" if variant == "adamw_torch" else "adamw_torch_fused")
            assert t["profile"]["top"] and t["profile"]["top_cpu"]
    assert not list(tmp_path.glob(".*tmp"))  # written atomically


def test_gpu_check_refuses_without_cuda(tmp_path):
    torch = pytest.importorskip("torch")
    if torch.cuda.is_available():
        pytest.skip("a GPU is present")
    r = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "gpu_check.py"), "--out", str(tmp_path / "x.json")],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode != 0 and "no CUDA device" in r.stderr and "--dry-run" in r.stderr
    assert not (tmp_path / "x.json").exists()


def test_gpu_check_measured_on_a_gpu_is_committed():
    """The README's measured column comes from this file (an H200 lent to a session)."""
    rep = json.loads((ROOT / "results" / "gpu" / "gpu_check-h200.json").read_text())
    assert rep["dry_run"] is False and "H200" in rep["device"] and rep["ok"]
