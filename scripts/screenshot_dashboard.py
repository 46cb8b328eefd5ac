"""Open the strategy dashboard (notebooks/06_dashboard.ipynb) in Voilà under headless Chromium and save a
screenshot, so a person can see the real page. Not part of CI.

Needs: `pip install -e ".[ui]"` (Voilà, Selenium) and Debian's chromium + chromium-driver
(`apt-get install chromium chromium-driver`).
Run:   python scripts/screenshot_dashboard.py [--profile ci] [--out runs/dashboard.png]
The dashboard reads the profile's shared run folder (runs/<profile>, the one `make run` writes); it is created
first if missing.
"""
import argparse
import contextlib
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def dashboard(profile_name: str, out: Path, wait: int):
    """Voilà serving notebooks/06_dashboard.ipynb for ``profile_name`` and headless Chromium on it, once the
    widgets and the first plotly figure have rendered: yields the Selenium driver."""
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if not chromium:
        sys.exit("chromium not found: apt-get install chromium chromium-driver")
    # the kernel runs as a user's would: under pytest, PYTEST_CURRENT_TEST makes ipykernel leave the process's own
    # output unredirected, and the Voilà page then stalls at its last cells ("Executing 15 of 16")
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}, "HBKIT_PROFILE": profile_name}
    from hbkit.core.env import default_run_dir
    from hbkit.experiment.profiles import profile

    run = default_run_dir(profile(profile_name)["profile"])
    if not (run / "results.csv").is_file():
        from hbkit.experiment.compare import compare
        compare(profile_name, run, progress=False)
    out.parent.mkdir(parents=True, exist_ok=True)   # the Voilà log goes beside the picture
    port = free_port()
    voila = subprocess.Popen([sys.executable, "-m", "voila", "--no-browser", f"--port={port}", "--Voila.ip=127.0.0.1",
                              "--show_tracebacks=True", "06_dashboard.ipynb"], cwd=ROOT / "notebooks", env=env,
                             stdout=subprocess.DEVNULL, stderr=open(out.with_suffix(".voila.log"), "w"))
    try:
        url = f"http://127.0.0.1:{port}/"
        # wait for the port only: a GET of the page would start a second kernel running the notebook
        for _ in range(60):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=2).close()
                break
            except OSError:
                time.sleep(1)
        from selenium import webdriver
        from selenium.common.exceptions import TimeoutException
        from selenium.webdriver.common.by import By
        from selenium.webdriver.support import expected_conditions as ec
        from selenium.webdriver.support.ui import WebDriverWait

        opts = webdriver.ChromeOptions()
        opts.binary_location = chromium
        for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                     "--disable-background-networking", "--disable-component-update", "--disable-sync",
                     "--window-size=1400,1900", "--hide-scrollbars"):
            opts.add_argument(flag)
        # Voilà streams the page while the kernel runs the notebook: do not block in get() (chromedriver's own
        # 120 s command timeout fired there on a slow kernel start); wait for the rendered widgets instead
        opts.page_load_strategy = "none"
        service = webdriver.ChromeService(executable_path=shutil.which("chromedriver"))
        driver = webdriver.Chrome(options=opts, service=service)
        try:
            driver.get(url)
            try:
                WebDriverWait(driver, wait).until(ec.presence_of_element_located((By.CSS_SELECTOR, ".widget-dropdown select")))
                WebDriverWait(driver, wait).until(ec.presence_of_element_located((By.CSS_SELECTOR, ".js-plotly-plot .bars")))
            except TimeoutException:
                seen = out.with_suffix(".timeout.png")
                driver.save_screenshot(str(seen))
                sys.exit(f"the dashboard did not render in {wait} s: the page as Chromium saw it is {seen}, "
                         f"Voilà's log {out.with_suffix('.voila.log')}")
            time.sleep(2)
            yield driver
        finally:
            driver.quit()
    finally:
        voila.terminate()


def first_title(driver) -> str:
    """The title of the dashboard's first figure (``<benchmark>: <metric>``)."""
    from selenium.webdriver.common.by import By
    return driver.find_element(By.CSS_SELECTOR, ".js-plotly-plot .gtitle").text


def choose_benchmark(driver, name: str, wait: int = 60) -> str:
    """Pick ``name`` in the benchmark dropdown, as a person would, and return the first figure's new title."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select, WebDriverWait

    Select(driver.find_elements(By.CSS_SELECTOR, ".widget-dropdown select")[0]).select_by_visible_text(name)
    WebDriverWait(driver, wait).until(lambda d: first_title(d).startswith(f"{name}:"))
    time.sleep(1)
    return first_title(driver)


def missing_tools() -> str | None:
    """What this script needs and this machine lacks, as one line with the fix; None when everything is there."""
    import importlib.util

    lacks = [m for m in ("voila", "selenium") if importlib.util.find_spec(m) is None]
    if lacks:
        return (f"{' and '.join(lacks)} not installed: install the ui extra, "
                f"{sys.executable} -m pip install -e \".[ui]\" (make test-browser does it)")
    if not (shutil.which("chromium") or shutil.which("chromium-browser")) or not shutil.which("chromedriver"):
        return "chromium or chromedriver not found: apt-get install chromium chromium-driver (Debian)"
    return None


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0].replace("\n", " "))
    ap.add_argument("--profile", default="ci",
                    help="the profile whose shared run folder (runs/<profile>) the dashboard shows; the folder is "
                         "filled first (hbkit compare) when it holds no results (default: ci, about a minute)")
    ap.add_argument("--out", default=str(ROOT / "runs" / "dashboard.png"),
                    help="where the screenshot goes (PNG); Voilà's log goes beside it (default: runs/dashboard.png)")
    ap.add_argument("--wait", type=int, default=90, help="seconds Chromium lets the page execute and render")
    a = ap.parse_args(argv)
    why = missing_tools()
    if why:
        ap.exit(2, f"screenshot_dashboard.py: {why}\n")
    out = Path(a.out)
    with dashboard(a.profile, out, a.wait) as driver:
        driver.save_screenshot(str(out))
    print(out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
