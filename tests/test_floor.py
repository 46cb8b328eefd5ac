"""scripts/floor_constraints.py: every declared dependency has one floor, pinned exactly for make test-floor."""
import importlib.util
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
spec = importlib.util.spec_from_file_location("floor_constraints", ROOT / "scripts" / "floor_constraints.py")
floor = importlib.util.module_from_spec(spec)
spec.loader.exec_module(floor)


def test_every_declared_dependency_is_pinned_at_its_floor():
    pins = floor.pins()
    assert "sentence-transformers==6.0" in pins and "transformers==5.0" in pins   # the layout hbkit imports
    assert any(p.startswith("torch==2.13.0") for p in pins)                        # the CPU build at hand
    assert all("==" in p for p in pins) and len(pins) >= 15


def test_a_dependency_without_a_floor_is_refused(tmp_path):
    py = tmp_path / "pyproject.toml"
    py.write_text('[project]\nname = "x"\ndependencies = ["numpy>=1.24", "pandas"]\n')
    with pytest.raises(SystemExit, match="'pandas' has no single floor"):
        floor.pins(py, ROOT / "constraints-cpu.txt")
