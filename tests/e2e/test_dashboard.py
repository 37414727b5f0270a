"""The dashboard in a real headless Chromium, against a real gunicorn and a real qcluster:
log in with an admin token, open a running countdown, watch its progress bar move and
the job finish without reloading the page; open a job that logs and checkpoints, watch
its log lines arrive and its checkpoint move, live."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from urllib.parse import parse_qs, urlparse

import pytest
from django.conf import settings
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from .browser import artifacts_folder, chromium, fresh
from .harness import Platform, running_platform

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(240)]

#: The browser part of the test (log-in to the last screenshot) stays under this.
BROWSER_BUDGET_SECONDS = 75


@pytest.fixture(scope="module")
def platform(tmp_path_factory) -> Iterator[Platform]:
    """A private database and a real gunicorn (the cluster is started by the test)."""
    with running_platform(settings.DATABASES["default"], tmp_path_factory.mktemp("e2e-logs")) as instance:
        yield instance


def test_a_running_job_moves_and_finishes_in_the_browser_without_a_reload(platform, tmp_path, capsys):
    platform.start_cluster()
    admin_token = platform.manage(
        "issue_token", "e2e-operators", "--scope", "admin", "--scope", "jobs:read", "--quiet"
    ).strip()
    other_token = platform.token("e2e-dashboard-plain")
    api = platform.client(other_token)
    shots = artifacts_folder(tmp_path / "screenshots")
    taken = []

    def screenshot(driver, name: str) -> None:
        path = shots / f"dashboard-{len(taken) + 1:02d}-{name}.png"
        assert driver.save_screenshot(str(path)), path
        taken.append(path)

    started = time.monotonic()
    try:
        with chromium(platform.log_dir) as driver:
            wait = WebDriverWait(driver, 30, poll_frequency=0.2)

            # Not logged in: the log-in page, which will send the browser back.
            driver.get(f"{platform.base_url}/dashboard/")
            where = urlparse(driver.current_url)
            assert where.path == "/api-auth/login/" and parse_qs(where.query)["next"] == ["/dashboard/"]
            screenshot(driver, "login")
            driver.find_element(By.ID, "id_token").send_keys(admin_token)
            driver.find_element(By.CSS_SELECTOR, "input[type=submit]").click()
            wait.until(lambda d: urlparse(d.current_url).path == "/dashboard/")
            assert driver.find_element(By.TAG_NAME, "h1").text == "Overview"

            # Another application's countdown, running.
            job = platform.create_job(
                api, {"type": "countdown", "params": {"seconds": 8}, "metadata": {"migration": "e2e-dashboard"}}
            )
            platform.wait_status(job["id"], ("running",), timeout=30)
            driver.get(f"{platform.base_url}/dashboard/jobs/{job['id']}/")
            driver.execute_script("window.notReloaded = true")  # gone if the page ever reloads

            def status() -> str:
                return fresh(lambda: driver.find_element(By.ID, "job-status").text)

            def progress() -> float:
                return fresh(lambda: float(driver.find_element(By.ID, "job-progress").get_attribute("value")))

            assert status() == "running"
            first = progress()
            screenshot(driver, "running")
            time.sleep(2)
            second = progress()
            assert second > first, (first, second)
            assert status() == "running"
            screenshot(driver, "running-later")

            wait.until(lambda d: status() == "succeeded")
            assert progress() == 100
            assert driver.execute_script("return window.notReloaded === true"), "the page was reloaded"
            assert int(driver.execute_script("return document.body.dataset.updates || '0'")) >= 2
            kinds = fresh(
                lambda: [
                    row.get_attribute("data-kind")
                    for row in driver.find_elements(By.CSS_SELECTOR, "#job-timeline tr[data-kind]")
                ]
            )
            assert kinds[:3] == ["created", "queued", "started"] and kinds[-1] == "succeeded"
            assert "progress" in kinds
            assert '"seconds": 8' in driver.find_element(By.ID, "job-result").text
            screenshot(driver, "succeeded")

            # A job that logs and checkpoints every step: both show up and move, live.
            talker = platform.create_job(api, {"type": "test_resumable", "params": {"steps": 14, "step_seconds": 0.4}})
            platform.wait_status(talker["id"], ("running",), timeout=30)
            driver.get(f"{platform.base_url}/dashboard/jobs/{talker['id']}/")
            driver.execute_script("window.notReloaded = true")

            def log_messages() -> list[str]:
                return fresh(
                    lambda: [
                        row.find_elements(By.CSS_SELECTOR, "td")[3].text
                        for row in driver.find_elements(By.CSS_SELECTOR, "#job-log-lines tr")
                    ]
                )

            def checkpoint() -> dict:
                return fresh(lambda: json.loads(driver.find_element(By.ID, "job-checkpoint-state").text))

            wait.until(lambda d: len(log_messages()) >= 3)
            early_lines, early_checkpoint = log_messages(), checkpoint()
            assert early_lines[0] == "starting from the first step"
            screenshot(driver, "log-early")
            wait.until(lambda d: checkpoint()["done"] >= early_checkpoint["done"] + 2)
            later_lines = log_messages()
            assert later_lines[: len(early_lines)] == early_lines and len(later_lines) > len(early_lines)
            wait.until(lambda d: status() == "succeeded")
            wait.until(lambda d: d.find_element(By.ID, "job-log").get_attribute("data-final") == "true")
            assert log_messages() == ["starting from the first step", *(f"step {n} done" for n in range(1, 15))]
            assert checkpoint() == {"done": 14}
            assert driver.find_element(By.ID, "job-log-total").text == "15"
            assert driver.execute_script("return window.notReloaded === true"), "the page was reloaded"
            screenshot(driver, "log-final")

            # The list, filtered by the job's metadata, and the overview count it.
            driver.get(f"{platform.base_url}/dashboard/jobs/?metadata.migration=e2e-dashboard")
            rows = driver.find_elements(By.CSS_SELECTOR, "#jobs tbody tr")
            assert [row.get_attribute("data-job-id") for row in rows] == [job["id"]]
            screenshot(driver, "list")
            driver.get(f"{platform.base_url}/dashboard/")
            countdown = driver.find_element(By.CSS_SELECTOR, '#counts tr[data-type="countdown"]')
            assert countdown.find_elements(By.CSS_SELECTOR, "td")[3].text == "1"  # succeeded
            screenshot(driver, "overview")

            # Log out, log in with a token without the admin scope: not allowed.
            driver.find_element(By.CSS_SELECTOR, "header form button").click()
            wait.until(lambda d: urlparse(d.current_url).path == "/api-auth/login/")
            driver.find_element(By.ID, "id_token").send_keys(other_token)
            driver.find_element(By.CSS_SELECTOR, "input[type=submit]").click()
            wait.until(lambda d: d.find_element(By.TAG_NAME, "h1").text == "Not allowed")
            screenshot(driver, "not-allowed")
        elapsed = time.monotonic() - started
        assert elapsed < BROWSER_BUDGET_SECONDS, f"the browser test took {elapsed:.0f} s"
    finally:
        with capsys.disabled():
            for path in taken:
                print(f"\nscreenshot: {path}", end="")
            print()
