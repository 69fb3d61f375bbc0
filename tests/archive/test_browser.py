"""The archive in a real browser (Debian's Chromium), served under a sub-path by a loopback server.

No console errors, no request leaves 127.0.0.1, no sideways scrolling on a 375 px phone, the
relative links work under the prefix, and the dark scheme applies.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from newsletter.archive.site import write_site
from tests.archive.test_site import SEED, SUB_URL, add_fixture_issues, letter_settings

pytestmark = pytest.mark.browser


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the stdlib's name
        pass


@pytest.fixture
def served(newsletter_dir: Path, tmp_path: Path) -> Iterator[str]:
    """The archive written to www/comet/ and served at http://127.0.0.1:<port>/comet/."""
    add_fixture_issues(newsletter_dir)
    www = tmp_path / "www"
    write_site(letter_settings(newsletter_dir, SUB_URL), www / "comet")
    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_QuietHandler, directory=str(www)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/comet/"
    finally:
        server.shutdown()
        server.server_close()


def _open(browser: Any, **options: Any) -> tuple[Any, list[str]]:
    """A 375 px wide page that records console errors and refuses anything beyond loopback."""
    context = browser.new_context(viewport={"width": 375, "height": 740}, **options)
    page = context.new_page()
    problems: list[str] = []
    def on_console(msg: Any) -> None:
        if msg.type == "error":
            problems.append(f"console: {msg.text}")

    page.on("console", on_console)
    page.on("pageerror", lambda exc: problems.append(f"page error: {exc}"))

    def only_loopback(route: Any) -> None:
        if urlsplit(route.request.url).hostname == "127.0.0.1":
            route.continue_()
        else:
            problems.append(f"request beyond loopback: {route.request.url}")
            route.abort()

    page.route("**/*", only_loopback)
    return page, problems


def _assert_fits(page: Any) -> None:
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 375, f"{page.url}: {width}px wide at a 375px viewport"


def test_index_and_issue_pages_read_well_on_a_phone(browser: Any, served: str) -> None:
    page, problems = _open(browser)
    page.goto(served)
    assert page.title() == "Hailey’s Comet"
    _assert_fits(page)
    page.click("text=The Logic of Colour & <Light>")
    page.wait_for_url(served + "the-logic-of-colour/")
    assert page.locator("h1").inner_text() == "The Logic of Colour & <Light>"
    assert page.evaluate("document.querySelector('.essay img').naturalWidth") == 1  # the copied image
    _assert_fits(page)
    page.click("a[rel=next]")
    page.wait_for_url(served + f"{SEED}/")
    _assert_fits(page)
    page.click("text=All issues")
    page.wait_for_url(served)
    assert problems == []
    page.context.close()


def test_dark_scheme_follows_the_system_setting(browser: Any, served: str) -> None:
    page, problems = _open(browser)
    page.goto(served + f"{SEED}/")
    backgrounds = {}
    for scheme in ("light", "dark"):
        page.emulate_media(color_scheme=scheme)
        backgrounds[scheme] = page.evaluate("getComputedStyle(document.body).backgroundColor")
        _assert_fits(page)
    assert backgrounds == {"light": "rgb(244, 241, 236)", "dark": "rgb(18, 17, 16)"}
    assert problems == []
    page.context.close()
