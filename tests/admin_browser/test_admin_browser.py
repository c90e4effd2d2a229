"""The admin as an operator's console, in a real browser (Debian's Chromium, Playwright).

A real ``runserver`` and a real worker (``process_container_jobs``) run as
processes on one file SQLite database (WAL), set up by
:mod:`tests.admin_browser.console`; jobs run on mock hosts. Nothing in the
browser is reloaded by the test where the page must update by itself.

Screenshots go to docs/_build/screenshots/admin-*.png; the operators' guide
(docs/guides/admin.md) shows the committed copies in docs/_static/screenshots/,
which ``CM_UPDATE_SCREENSHOTS=1`` refreshes from this run.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from tests.admin_browser.console import PASSWORD, SECRET
from tests.docs.test_site_browser import CHROMIUM, FLAGS, _missing

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[2]
SHOTS = ROOT / "docs" / "_build" / "screenshots"
COMMITTED = ROOT / "docs" / "_static" / "screenshots"
GUIDE = ROOT / "docs" / "guides" / "admin.md"
VIEWPORT = {"width": 1200, "height": 760}
#: The screenshots this module takes, all shown in the operators' guide.
SCREENSHOTS = {"admin-jobs-list.png", "admin-confirm-retry.png", "admin-job-attempts.png",
               "admin-job-running.png", "admin-host.png", "admin-viewer-job.png"}
TAKEN: list[str] = []


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


#: Straight to localhost, whatever proxy the environment names.
_DIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def _wait_http(url: str, proc: subprocess.Popen, log: Path, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"the server exited ({proc.returncode}):\n{log.read_text()[-3000:]}")
        try:
            with _DIRECT.open(url, timeout=2):
                return
        except OSError:
            time.sleep(0.1)
    pytest.fail(f"the server did not answer {url} in {timeout} s:\n{log.read_text()[-3000:]}")


def _favicon(message) -> bool:
    """Chromium asks every site for /favicon.ico; the admin has none (not an error of ours)."""
    return (message.location.get("url") or "").endswith("/favicon.ico")


class Console:
    """The running console: its URL, its database, its processes."""

    def __init__(self, url: str, db: Path, ids: dict):
        self.url, self.db, self.ids = url, db, ids

    def job(self, pk: int) -> tuple[str, int]:
        """(status, attempts) of a job, read from the database the server and worker use."""
        with sqlite3.connect(self.db, timeout=30) as conn:
            return conn.execute("SELECT status, attempts FROM container_manager_containerjob "
                                "WHERE id = ?", (pk,)).fetchone()

    def wait_job(self, pk: int, status: str, timeout: float = 30) -> tuple[str, int]:
        deadline = time.monotonic() + timeout
        while (row := self.job(pk))[0] != status:
            assert time.monotonic() < deadline, f"job {pk} is {row[0]!r}, not {status!r}"
            time.sleep(0.1)
        return row


@pytest.fixture(scope="module")
def console(tmp_path_factory):
    if not os.path.exists(CHROMIUM):
        _missing(f"Chromium not found at {CHROMIUM} (apt-get install chromium)")
    tmp = tmp_path_factory.mktemp("console")
    db = tmp / "console.sqlite3"
    env = {k: v for k, v in os.environ.items() if k != "CM_TEST_POSTGRES_DSN"}
    env.update(DJANGO_SETTINGS_MODULE="tests.settings", CM_TEST_SQLITE_PATH=str(db),
               PYTHONUNBUFFERED="1")
    seed = subprocess.run([sys.executable, "-m", "tests.admin_browser.console"], cwd=ROOT,
                          env=env, capture_output=True, text=True, timeout=120)
    assert seed.returncode == 0, seed.stderr[-3000:]
    ids = json.loads(seed.stdout)
    port = _free_port()
    procs, logs = [], []
    for name, args in [
        ("server", ["runserver", f"127.0.0.1:{port}", "--noreload", "--insecure"]),
        ("worker", ["process_container_jobs", "--concurrency", "4", "--poll-interval", "0.1",
                    "--worker-id", "browser-worker"]),
    ]:
        log = tmp / f"{name}.log"
        logs.append(log)
        with log.open("w") as out:
            procs.append(subprocess.Popen([sys.executable, "-m", "django", *args], cwd=ROOT,
                                          env=env, stdout=out, stderr=subprocess.STDOUT))
    try:
        _wait_http(f"http://127.0.0.1:{port}/admin/login/", procs[0], logs[0])
        yield Console(f"http://127.0.0.1:{port}", db, ids)
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


@pytest.fixture(scope="module")
def browser(console):
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _missing("playwright is not installed (pip install -e '.[test]')")
    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS, headless=True)
        yield chromium
        chromium.close()


def _page_as(browser, console, username):
    context = browser.new_context(viewport=VIEWPORT)
    # The navigation sidebar closed, as an operator on a laptop would (more room for the jobs).
    context.add_init_script("localStorage.setItem('django.admin.navSidebarIsOpen', 'false')")
    page = context.new_page()
    page.errors = []
    page.on("pageerror", lambda e: page.errors.append(str(e)))
    page.on("console", lambda m: m.type == "error" and not _favicon(m) and page.errors.append(
        f"{m.text} ({m.location.get('url')})"))
    page.on("response", lambda r: r.status >= 400 and page.errors.append(f"{r.status} {r.url}"))
    page.goto(f"{console.url}/admin/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")
    page.wait_for_selector("#site-name")
    return page


@pytest.fixture(scope="module")
def ops(browser, console):
    page = _page_as(browser, console, "ops")
    yield page
    page.context.close()


@pytest.fixture(scope="module")
def viewer(browser, console):
    page = _page_as(browser, console, "viewer")
    yield page
    page.context.close()


def shot(page, name):
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / name))
    TAKEN.append(name)


def run_action(page, pks, action):
    """Select jobs in the list, choose an action, press Go: the confirmation page."""
    for pk in pks:
        page.check(f'input[name="_selected_action"][value="{pk}"]')
    page.select_option('select[name="action"]', action)
    page.click('button[name="index"]')
    page.wait_for_selector("#cm-explanation")


def messages(page):
    return page.locator("ul.messagelist li").all_inner_texts()


def test_staff_retries_a_failed_job(console, ops):
    failed = console.ids["failed"]
    ops.goto(f"{console.url}/admin/container_manager/containerjob/")
    row = ops.locator("#result_list tr", has=ops.locator(
        f'input[name="_selected_action"][value="{failed}"]'))
    assert row.locator(".cm-status-failed").inner_text() == "failed"
    assert row.locator(".cm-reason").inner_text() == "exited with code 2"
    colour = row.locator(".cm-status-failed").evaluate("e => getComputedStyle(e).backgroundColor")
    assert colour == "rgb(198, 40, 40)"  # STATUS_COLOURS["failed"], #c62828
    assert ops.locator('.cm-count[data-status="failed"]').inner_text() == "2"
    shot(ops, "admin-jobs-list.png")
    done = console.ids["history"][0]  # a completed job: refused
    run_action(ops, [failed, done], "retry_jobs")
    assert ops.locator("#cm-will-run li").all_inner_texts() == [f"job {failed}: myapp:1.4 (failed)"]
    refusal = "it is 'completed': only failed or cancelled jobs can be retried"
    assert ops.locator("#cm-will-refuse li").all_inner_texts() == [
        f"job {done}: python:3.12 (completed): {refusal}"]
    shot(ops, "admin-confirm-retry.png")
    ops.click("#cm-confirm")
    ops.wait_for_selector("ul.messagelist")
    assert messages(ops) == [f"Refused to retry job {done}: python:3.12 (completed): {refusal}.",
                             "Retried 1 job(s): they are pending for a new attempt."]
    assert console.job(done) == ("completed", 1)
    assert console.wait_job(failed, "completed") == ("completed", 2)
    ops.goto(f"{console.url}/admin/container_manager/containerjob/{failed}/change/")
    attempts = ops.locator(".cm-attempt")
    assert attempts.count() == 2
    assert attempts.nth(0).locator(".cm-attempt-status").inner_text() == "failed"
    assert "bad date" in attempts.nth(0).locator(".cm-stderr").inner_text()
    assert attempts.nth(1).locator(".cm-attempt-status").inner_text() == "completed"
    assert attempts.nth(1).locator(".cm-stdout").inner_text() == "rows: 1200\nok\n"
    font = attempts.nth(1).locator(".cm-stdout").evaluate("e => getComputedStyle(e).fontFamily")
    assert "mono" in font.lower()
    ops.locator("#cm-job-live").scroll_into_view_if_needed()
    shot(ops, "admin-job-attempts.png")
    assert ops.errors == []


def test_staff_cancels_a_running_job(console, ops):
    running = console.ids["running"]
    console.wait_job(running, "running")
    ops.goto(f"{console.url}/admin/container_manager/containerjob/?status__exact=running")
    run_action(ops, [running], "cancel_jobs")
    assert ops.locator("#cm-will-run li").count() == 1
    ops.click("#cm-confirm")
    ops.wait_for_selector("ul.messagelist")
    assert messages(ops) == ["Cancelled 1 job(s)."]
    assert console.job(running)[0] == "cancelled"
    assert ops.errors == []


def test_running_job_page_updates_by_itself(console, ops):
    ops.goto(f"{console.url}/admin/container_manager/containerjob/")
    run_action(ops, [console.ids["watched"]], "duplicate_jobs")
    ops.click("#cm-confirm")
    ops.wait_for_selector("ul.messagelist")
    [message] = messages(ops)
    new = int(re.fullmatch(r"Duplicated 1 job\(s\) as new pending job\(s\): (\d+)\.", message)[1])
    console.wait_job(new, "running")
    ops.goto(f"{console.url}/admin/container_manager/containerjob/{new}/change/")
    ops.evaluate("window.cmSamePage = true")  # gone if the page were loaded again
    first = ops.locator(".cm-stdout").inner_text().count("\n")
    assert first < 6, "the job was nearly over before its page loaded"
    # More output than when the page loaded, while the job still runs: updated in place.
    ops.wait_for_function(
        "(n) => document.querySelector('.cm-stdout').textContent.split('\\n').length - 1 > n"
        " && document.querySelector('#cm-job-status').textContent === 'running'",
        arg=max(first, 2), timeout=15_000)  # at least 3 lines on the screenshot
    assert ops.evaluate("window.cmSamePage === true")  # not reloaded
    assert ops.locator(".cm-stderr").inner_text().startswith("warming up\n")  # its stream, apart
    shot(ops, "admin-job-running.png")
    # Once the job finishes, the page draws itself again, once, and stops asking.
    ops.wait_for_function(
        "() => document.querySelector('#cm-job-status').textContent === 'completed'"
        " && window.cmSamePage === undefined", timeout=20_000)
    ops.wait_for_load_state()
    assert ops.locator(".cm-stdout").inner_text().endswith("step 6 of 6\n")
    assert ops.locator("#cm-live-note").count() == 0
    assert console.job(new) == ("completed", 1)
    assert ops.errors == []


def test_host_page(console, ops):
    ops.goto(f"{console.url}/admin/container_manager/executorhost/{console.ids['batch']}/change/")
    assert ops.locator("#cm-max-jobs").inner_text() == "4"
    assert ops.locator("#cm-health-detail").inner_text() == "mock executor"
    assert ops.locator("#cm-host-jobs tbody tr").count() == 4  # 3 nightly runs, the import
    shot(ops, "admin-host.png")
    assert ops.errors == []


def test_view_only_user_sees_no_actions_and_no_environment_values(console, viewer):
    viewer.goto(f"{console.url}/admin/container_manager/containerjob/")
    assert viewer.locator('select[name="action"]').count() == 0
    assert viewer.locator('input[name="_selected_action"]').count() == 0
    assert viewer.locator(".cm-count").count() == 6
    job = console.ids["failed"]
    viewer.goto(f"{console.url}/admin/container_manager/containerjob/{job}/change/")
    assert SECRET not in viewer.content()
    assert "DB_PASSWORD=********" in viewer.locator("body").inner_text()
    assert viewer.locator('input[type="submit"]').count() == 0
    live = viewer.evaluate(f"fetch('/admin/container_manager/containerjob/{job}/live/')"
                           ".then(r => r.text())")
    assert json.loads(live)["id"] == job and SECRET not in live
    viewer.locator(".field-masked_environment_overrides").scroll_into_view_if_needed()
    shot(viewer, "admin-viewer-job.png")
    viewer.goto(f"{console.url}/admin/container_manager/environmentvariabletemplate/"
                f"{console.ids['template']}/change/")
    assert SECRET not in viewer.content()
    assert "API_TOKEN=********" in viewer.locator("body").inner_text()
    assert viewer.errors == []


def test_guide_shows_the_screenshots_this_run_took():
    shown = set(re.findall(r"_static/screenshots/(admin-[\w-]+\.png)", GUIDE.read_text()))
    assert shown == SCREENSHOTS
    if set(TAKEN) != SCREENSHOTS:
        pytest.skip("only part of this module ran: not every screenshot was taken")
    for name in TAKEN:
        if os.environ.get("CM_UPDATE_SCREENSHOTS") == "1":
            COMMITTED.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(SHOTS / name, COMMITTED / name)
        committed = COMMITTED / name
        assert committed.exists(), f"{committed} missing: run with CM_UPDATE_SCREENSHOTS=1"
        assert _png_size(committed) == _png_size(SHOTS / name) == (
            VIEWPORT["width"], VIEWPORT["height"])


def _png_size(path: Path) -> tuple[int, int]:
    head = path.read_bytes()[:24]
    assert head[:8] == b"\x89PNG\r\n\x1a\n", path
    return int.from_bytes(head[16:20], "big"), int.from_bytes(head[20:24], "big")
