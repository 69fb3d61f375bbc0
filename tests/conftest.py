"""Shared fixtures: a copy of Hailey's Comet in a temp folder, the CLI runner, a real browser."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.helpers import copy_newsletter

ROOT = Path(__file__).resolve().parent.parent
TEST_UNSUBSCRIBE_SECRET = "conftest-unsubscribe-secret-not-for-real-use"  # noqa: S105 - a test secret
CHROMIUM = os.environ.get("NEWSLETTER_TEST_CHROMIUM", "/usr/bin/chromium")
# Flags that keep Chromium quiet on a machine with no network beyond loopback.
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--disable-default-apps", "--disable-extensions",
]


@pytest.fixture
def newsletter_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh copy of the repository's newsletter (config, issues, templates), as the cwd."""
    folder = copy_newsletter(ROOT, tmp_path / "letter")
    for name in list(os.environ):
        if name.startswith("NEWSLETTER_"):
            monkeypatch.delenv(name)
    # Hailey's Comet has a reader service ([readers] url), whose unsubscribe links are signed: a real
    # send needs the secret, as it does for the writer. Tests about a missing secret delete it.
    monkeypatch.setenv("NEWSLETTER_UNSUBSCRIBE_SECRET", TEST_UNSUBSCRIBE_SECRET)
    monkeypatch.chdir(folder)
    return folder


@pytest.fixture
def runner() -> CliRunner:
    """Typer's CliRunner with a fixed terminal width, so output assertions are stable."""
    return CliRunner(env={"COLUMNS": "100", "TERM": "dumb", "NO_COLOR": "1"})


@pytest.fixture(scope="session")
def browser() -> Iterator[object]:
    """Debian's Chromium driven by Playwright, headless; never a downloaded browser."""
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: install Debian's chromium package (.ci/run does)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()
