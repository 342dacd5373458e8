"""Headless Chromium for the viewer's browser tests and the README screenshots.

Debian's ``chromium`` and ``chromium-driver`` packages, driven by selenium; no browser is ever
downloaded. ``python tests/_browser.py RUN_DIR docs/`` takes the README's screenshots.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
import threading
from contextlib import contextmanager
from pathlib import Path

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
]


def browser_missing() -> str | None:
    """Why no browser test can run here, or None when Chromium and its driver are installed."""
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium is not installed (pip install -e '.[dev]')"
    for path in (CHROMIUM, CHROMEDRIVER):
        if not os.path.exists(path):
            return f"{path} is missing (apt-get install chromium chromium-driver)"
    return None


@contextmanager
def chromium(width: int = 1400, height: int = 1000):
    """A headless Chromium webdriver with a fresh profile, closed afterwards."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    with tempfile.TemporaryDirectory(prefix="creditgym-chromium-") as profile:
        options = webdriver.ChromeOptions()
        options.binary_location = CHROMIUM
        for flag in [*FLAGS, f"--user-data-dir={profile}", f"--window-size={width},{height}"]:
            options.add_argument(flag)
        driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
        try:
            yield driver
        finally:
            driver.quit()


@contextmanager
def serving(path: str | Path):
    """`creditgym view PATH` on a free port of 127.0.0.1, in a thread; yields its URL."""
    from creditgym.view import EpisodeStore, make_server

    server = make_server(EpisodeStore(Path(path)), "127.0.0.1", 0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.url
    finally:
        server.shutdown()
        server.server_close()


def wait_ready(driver, timeout: float = 20.0) -> None:
    """Until the page has loaded its overview, list and first view."""
    from selenium.webdriver.support.ui import WebDriverWait

    WebDriverWait(driver, timeout).until(
        lambda d: d.execute_script("return document.body.getAttribute('data-ready')") == "1"
    )


def screenshots(run_dir: str, out_dir: str) -> None:
    """The README's pictures of the list, an episode, a group and the curves."""
    import json
    import time

    out = Path(out_dir)
    records = [json.loads(line) for line in (Path(run_dir) / "episodes.jsonl").open()]
    # an episode of a group that has both a success and a failure, if there is one
    groups: dict[str, list[int]] = {}
    for i, r in enumerate(records):
        groups.setdefault(json.dumps([r["iteration"], r["group_id"]]), []).append(i)
    mixed = [
        ids for ids in groups.values() if len({records[i]["success"] for i in ids}) == 2
    ] or list(groups.values())
    episode_id = mixed[-1][0]
    with serving(run_dir) as url, chromium(1500, 1000) as driver:
        for name, fragment in [
            ("viewer-list", f"#episode={episode_id}"),
            ("viewer-group", f"#group={episode_id}"),
            ("viewer-curves", "#curves"),
        ]:
            driver.get(url + fragment)
            wait_ready(driver)
            time.sleep(0.5)
            driver.save_screenshot(str(out / f"{name}.png"))
            print("wrote", out / f"{name}.png")


if __name__ == "__main__":
    screenshots(sys.argv[1], sys.argv[2])
