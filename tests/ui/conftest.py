"""Browser tests: Playwright driving a Chromium.

The Chromium is the system's (Debian's `chromium`, which `.ci/run` installs) when there is
one, else the one `playwright install chromium` fetches; without either, every browser test is
skipped with one line saying why. Each test saves screenshots under `tests/ui/screenshots/`
(git-ignored).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, Page, sync_playwright

from orchestrator.db.pool import Databases
from orchestrator.runtimes.service import LocalService
from orchestrator.settings import Settings
from support.browser import find_chromium


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    with sync_playwright() as pw:
        path = find_chromium(pw)
        if path is None:
            pytest.skip(
                "BROWSER TESTS SKIPPED: no Chromium (install Debian's `chromium` package, set"
                " CHROMIUM_PATH, or let `playwright install chromium` reach its download)"
            )
        launched = pw.chromium.launch(executable_path=path, args=["--no-sandbox"])
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture
def service(dbs: Databases, local_settings: Settings) -> Iterator[LocalService]:
    with LocalService(local_settings, dbs) as running:
        yield running


@pytest.fixture
def page(browser: Browser, request: pytest.FixtureRequest) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1366, "height": 900}, accept_downloads=True)
    opened = context.new_page()
    opened.set_default_timeout(30_000)
    try:
        yield opened
    finally:
        context.close()
