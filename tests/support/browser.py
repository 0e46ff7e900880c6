"""Driving the dashboard in a browser: finding a Chromium, signing in, screenshots."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from playwright.sync_api import Page, Playwright

from orchestrator.runtimes.service import LocalService

SCREENSHOTS = Path(__file__).parent.parent / "ui" / "screenshots"
_SYSTEM_CHROMIUMS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")


def _system_chromium() -> str | None:
    explicit = os.environ.get("CHROMIUM_PATH")
    if explicit:
        return explicit if Path(explicit).exists() else None
    return next((path for name in _SYSTEM_CHROMIUMS if (path := shutil.which(name))), None)


def _installed_by_playwright(pw: Playwright) -> str | None:
    path = pw.chromium.executable_path
    if Path(path).exists():
        return path
    try:
        subprocess.run(
            [sys.executable, "-m", "playwright", "install", "chromium"],
            check=True,
            capture_output=True,
            timeout=300,
        )
    except (subprocess.SubprocessError, OSError):
        return None
    return path if Path(path).exists() else None


def shoot(page: Page, request: pytest.FixtureRequest, name: str) -> Path:
    """Save a full-page screenshot named after the test."""
    SCREENSHOTS.mkdir(exist_ok=True)
    test = re.sub(r"[^A-Za-z0-9_-]+", "-", request.node.name).strip("-")
    path = SCREENSHOTS / f"{test}--{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def sign_in(page: Page, service: LocalService, path: str = "/ui/") -> None:
    page.goto(service.server.url + path)
    page.get_by_label("API key").fill(service.runtime.api_key)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(re.compile(r".*/ui/(?!sign-in).*"))


def find_chromium(pw: Playwright) -> str | None:
    return _system_chromium() or _installed_by_playwright(pw)
