"""Lines a reader can hold: hbkit/ keeps to 100 characters (ruff's E501), with no unused name or syntax error
(F, E9). ruff is a dev dependency; this runs in ``make test``, so CI holds the rule."""
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RULES = ["--select", "E501,E9,F", "--line-length", "100", "--no-cache"]


def _ruff(*paths):
    return subprocess.run([sys.executable, "-m", "ruff", "check", *RULES, *map(str, paths)],
                          capture_output=True, text=True, cwd=ROOT)


def test_hbkit_lines_are_at_most_100_characters():
    r = _ruff(ROOT / "hbkit")
    assert r.returncode == 0, r.stdout + r.stderr


def test_the_check_sees_a_long_line(tmp_path):
    bad = tmp_path / "long.py"
    bad.write_text('"""A module."""\n\nX = "' + "x" * 100 + '"\n')
    r = _ruff(bad)
    assert r.returncode == 1 and "E501" in r.stdout, r.stdout + r.stderr
    (tmp_path / "long.py").write_text('"""A module."""\n\nX = "' + "x" * 90 + '"\n')
    assert _ruff(bad).returncode == 0


def test_pyproject_formats_at_the_same_length():
    text = (ROOT / "pyproject.toml").read_text()
    assert "[tool.ruff]\nline-length = 100\n" in text
