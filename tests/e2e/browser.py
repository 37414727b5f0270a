"""A real headless Chromium for browser tests: Debian's ``chromium`` driven by selenium
through Debian's ``chromium-driver`` (``.ci/run`` installs both when missing)."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TypeVar

from selenium import webdriver
from selenium.common.exceptions import StaleElementReferenceException
from selenium.webdriver.chrome.webdriver import WebDriver

T = TypeVar("T")

#: Headless, no sandbox (we run as root), and nothing that reaches out to the network.
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--window-size=1280,1000",
)


@contextmanager
def chromium(log_dir: Path) -> Iterator[WebDriver]:
    """A fresh browser with a fresh profile in a temporary folder, removed afterwards."""
    binary, driver_path = shutil.which("chromium"), shutil.which("chromedriver")
    if binary is None or driver_path is None:
        raise AssertionError("chromium is not installed: apt-get install chromium chromium-driver (.ci/run does)")
    profile = tempfile.mkdtemp(prefix="jobplatform-chromium-")
    options = webdriver.ChromeOptions()
    # Both paths given, so selenium never looks for (or downloads) a browser or driver.
    options.binary_location = binary
    for flag in (*CHROMIUM_FLAGS, f"--user-data-dir={profile}"):
        options.add_argument(flag)
    service = webdriver.ChromeService(executable_path=driver_path, log_output=str(log_dir / "chromedriver.log"))
    driver = webdriver.Chrome(options=options, service=service)
    try:
        driver.set_page_load_timeout(20)
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def fresh(read: Callable[[], T], attempts: int = 5) -> T:
    """``read()`` again when the page replaced the element between finding and reading it."""
    for _ in range(attempts - 1):
        try:
            return read()
        except StaleElementReferenceException:
            continue
    return read()


def artifacts_folder(default: Path) -> Path:
    """Where screenshots go: ``$JOBS_TEST_ARTIFACTS`` when set, else the test's own
    temporary folder. Never the work tree."""
    folder = Path(os.environ["JOBS_TEST_ARTIFACTS"]) if os.environ.get("JOBS_TEST_ARTIFACTS") else default
    folder.mkdir(parents=True, exist_ok=True)
    return folder
