"""The dashboard as a person sees it: Voilà serves notebook 6 and headless Chromium loads it, a control is
changed, the figure follows, and the picture is saved. Runs where Chromium, chromedriver and the ``ui`` extra
are installed (`make test-browser`); skipped elsewhere, CI included."""
import importlib.util
import shutil
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
pytestmark = [pytest.mark.browser,
              pytest.mark.skipif(not (shutil.which("chromium") and shutil.which("chromedriver")
                                      and importlib.util.find_spec("voila") and importlib.util.find_spec("selenium")),
                                 reason="needs chromium, chromedriver and the ui extra (voila, selenium)")]


def test_dashboard_renders_follows_a_control_and_is_saved(tmp_path, monkeypatch):
    sys.path.insert(0, str(ROOT / "scripts"))
    import screenshot_dashboard as shot
    monkeypatch.setenv("HBKIT_RUNS", str(ROOT / "runs"))
    out = tmp_path / "dashboard.png"
    with shot.dashboard("ci", out, wait=240) as driver:
        before = shot.first_title(driver)
        other = "tydiqa" if not before.startswith("tydiqa") else "mlqa-r"
        after = shot.choose_benchmark(driver, other)
        driver.save_screenshot(str(out))
    assert before != after and after.startswith(f"{other}:")
    assert out.stat().st_size > 20_000   # a rendered page, not a blank one
