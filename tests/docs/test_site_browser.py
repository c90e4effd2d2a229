"""The built site in a real browser: Debian's headless Chromium driven by Playwright.

Never downloads a browser. Locally it skips when Chromium or Playwright is missing;
in CI (``CI=true``) it fails instead.
"""

from __future__ import annotations

import functools
import http.server
import os
import shutil
import threading
from pathlib import Path

import pytest

from tests.docs.conftest import DOCS

pytestmark = pytest.mark.browser

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
SCREENSHOTS = DOCS / "_build" / "screenshots"


def _missing(reason: str) -> None:
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{reason} (CI=true: the browser test must run)")
    pytest.skip(reason)


@pytest.fixture(scope="module")
def site(built_html: Path):
    handler = functools.partial(
        http.server.SimpleHTTPRequestHandler, directory=str(built_html)
    )
    handler.log_message = lambda *a, **k: None  # type: ignore[method-assign]
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def page():
    if not os.path.exists(CHROMIUM):
        _missing(f"Chromium not found at {CHROMIUM} (apt-get install chromium)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _missing("playwright is not installed (pip install -e '.[test]')")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS, headless=True)
        context = browser.new_context(viewport={"width": 1280, "height": 900})
        pg = context.new_page()
        pg.console_errors = []  # type: ignore[attr-defined]
        pg.on("console", lambda m: m.type == "error" and pg.console_errors.append(m.text))
        pg.on("pageerror", lambda e: pg.console_errors.append(str(e)))
        pg.on(
            "response",
            lambda r: r.status >= 400 and pg.console_errors.append(f"HTTP {r.status} {r.url}"),
        )
        yield pg
        browser.close()


def test_home_page_renders(site, page):
    page.goto(f"{site}/index.html")
    assert "django-container-manager" in page.title()
    assert page.locator("h1").first.inner_text().startswith("django-container-manager")
    assert page.locator(".sidebar-tree a", has_text="Getting started").count() >= 1
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "home.png"), full_page=False)
    assert page.console_errors == []


def test_search_finds_harvest(site, page):
    page.goto(f"{site}/search.html?q=harvest")
    results = page.locator("#search-results ul.search li")
    results.first.wait_for(timeout=20_000)
    texts = results.all_inner_texts()
    assert any("ContainerJob.harvest" in t for t in texts), texts[:10]
    assert page.console_errors == []


def test_guide_link_into_reference_resolves(site, page):
    page.goto(f"{site}/guides/getting-started.html")
    link = page.locator('a[href*="reference/models.html#container_manager.models.ContainerJob"]')
    assert link.count() >= 1
    link.first.click()
    page.wait_for_load_state()
    assert "reference/models.html" in page.url
    anchor = page.url.split("#", 1)[1]
    target = page.locator(f'[id="{anchor}"]')
    assert target.count() == 1 and target.is_visible()
    page.goto(f"{site}/reference/models.html#container_manager.models.ContainerJob")
    page.screenshot(path=str(SCREENSHOTS / "containerjob.png"), full_page=False)
    assert page.console_errors == []
