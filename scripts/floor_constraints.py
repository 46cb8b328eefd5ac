"""Pins every dependency ``pyproject.toml`` declares to its floor, for ``make test-floor``.

Each ``name>=X`` of ``[project] dependencies`` becomes ``name==X``, so the floor environment holds exactly the
lowest versions hbkit says it supports, and the smoke test (``scripts/smoke.py``) proves or disproves them.
A dependency without a floor is refused: every declared dependency must say what it needs.

One exception, printed with the pins: torch. Its floor is sentence-transformers' own, and the only CPU build
this CI can install is the one ``constraints-cpu.txt`` pins, so the floor environment takes that one.

    python scripts/floor_constraints.py > floor.txt && pip install -c floor.txt -e .
"""
import re
import sys
from pathlib import Path

import tomllib

ROOT = Path(__file__).resolve().parent.parent
SPEC = re.compile(r"^([A-Za-z0-9_.-]+)(\[[^\]]*\])?\s*>=\s*([0-9][^,;\s]*)\s*$")


def pins(pyproject: Path = ROOT / "pyproject.toml", cpu: Path = ROOT / "constraints-cpu.txt") -> list[str]:
    deps = tomllib.loads(pyproject.read_text())["project"]["dependencies"]
    torch = next(line.strip() for line in cpu.read_text().splitlines() if line.startswith("torch=="))
    out = []
    for dep in deps:
        m = SPEC.match(dep)
        if not m:
            raise SystemExit(f"{pyproject}: dependency {dep!r} has no single floor (name>=version); give it one")
        name, _, floor = m.groups()
        out.append(torch + f"  # declared floor {floor}: the CPU build at hand" if name == "torch" else f"{name}=={floor}")
    return out


if __name__ == "__main__":
    print("\n".join(pins()))
    sys.exit(0)
