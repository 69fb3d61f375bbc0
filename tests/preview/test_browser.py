"""The preview in a real browser: Debian's Chromium through Playwright, all traffic on 127.0.0.1."""

from __future__ import annotations

import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from newsletter.preview.server import PreviewServer

pytestmark = pytest.mark.browser

SLUG = "the-fear-of-entering-the-room"
ISSUE_FILE = f"issues/2026-11-23-{SLUG}.md"
BODY_BACKGROUND = "el => getComputedStyle(el).backgroundColor"


@pytest.fixture
def server(newsletter_dir: Path) -> Iterator[PreviewServer]:
    with PreviewServer(newsletter_dir / "newsletter.toml", port=0).start() as srv:
        yield srv


@pytest.fixture
def page(browser: Any, server: PreviewServer) -> Iterator[Any]:
    """A fresh page whose requests may only go to the preview server; the rest are refused."""
    context = browser.new_context(viewport={"width": 1440, "height": 900})
    origin = server.url.rstrip("/")

    def guard(route: Any) -> None:
        if route.request.url.startswith(origin + "/"):
            route.continue_()
        else:
            route.abort()

    context.route("**/*", guard)
    page = context.new_page()
    page.origin = origin
    yield page
    context.close()


def open_issue(page: Any) -> None:
    page.goto(f"{page.origin}/issue/{SLUG}/")
    page.wait_for_function("document.querySelectorAll('iframe.frame[data-ready]').length === 2")


def frame_eval(page: Any, frame_id: str, script: str) -> Any:
    return page.frame_locator(f"#{frame_id}").locator("body").evaluate(script)


def test_index_lists_the_issue_and_its_page_shows_everything(page: Any, server: PreviewServer) -> None:
    page.goto(page.origin + "/")
    row = page.locator("tr.issue-row", has_text="The Fear of Entering the Room")
    assert "ready" in row.text_content() and "KB" in row.text_content()
    assert "all checks pass" in row.text_content()
    row.locator("a.subject").click()
    page.wait_for_url(f"**/issue/{SLUG}/")
    page.wait_for_function("document.querySelectorAll('iframe.frame[data-ready]').length === 2")
    assert page.locator(".inbox-from").inner_text() == "Hailey Tai"
    assert page.locator(".inbox-subject").inner_text() == "The Fear of Entering the Room"
    assert "courage to face our own desire" in page.locator(".inbox-preheader").inner_text()
    for frame_id in ("frame-desktop", "frame-phone"):
        title = page.frame_locator(f"#{frame_id}").locator("h1")
        assert title.inner_text() == "The Fear of Entering the Room"
    assert page.locator("#panel-text").is_hidden()
    page.click("[data-tab=text]")
    sent = urllib.request.urlopen(f"{page.origin}/issue/{SLUG}/email.txt").read().decode()
    assert page.locator("#part-text").text_content() == sent
    font = page.locator("#part-text").evaluate("el => getComputedStyle(el).fontFamily")
    assert "mono" in font.lower()
    assert page.locator("#panel-email").is_hidden()
    page.click("[data-tab=email]")
    assert page.locator("#frame-phone").is_visible()


def test_frames_have_their_widths_and_the_phone_never_scrolls_sideways(page: Any) -> None:
    open_issue(page)
    widths = "el => [document.documentElement.clientWidth, document.documentElement.scrollWidth]"
    assert frame_eval(page, "frame-desktop", widths) == [700, 700]
    client, scroll = frame_eval(page, "frame-phone", widths)
    assert client == 375 and scroll <= client
    assert frame_eval(page, "frame-phone", "() => matchMedia('(max-width: 620px)').matches") is True
    # A frame is its own document: the page's stylesheet does not reach the email.
    assert frame_eval(page, "frame-desktop", "() => [...document.styleSheets].every(s => !s.href)") is True
    height = page.locator("#frame-phone").evaluate("f => f.getBoundingClientRect().height")
    content = frame_eval(page, "frame-phone", "() => document.documentElement.scrollHeight")
    assert abs(height - 2 - content) <= 2  # sized to the email: nothing hidden, no inner scrollbar


def test_dark_switch_changes_the_email_background_and_screenshots(page: Any, tmp_path: Path) -> None:
    open_issue(page)
    light = frame_eval(page, "frame-desktop", BODY_BACKGROUND)
    page.locator("#frame-desktop").screenshot(path=str(tmp_path / "desktop-light.png"))
    page.click("[data-scheme=dark]")
    dark = frame_eval(page, "frame-desktop", BODY_BACKGROUND)
    assert light == "rgb(244, 241, 236)" and dark == "rgb(18, 17, 16)"
    assert frame_eval(page, "frame-phone", BODY_BACKGROUND) == dark
    page.locator("#frame-phone").screenshot(path=str(tmp_path / "phone-dark.png"))
    page.screenshot(path=str(tmp_path / "page-dark.png"))
    page.reload()  # the choice is remembered
    page.wait_for_function("document.querySelectorAll('iframe.frame[data-ready]').length === 2")
    assert frame_eval(page, "frame-desktop", BODY_BACKGROUND) == dark
    page.click("[data-scheme=light]")
    assert frame_eval(page, "frame-desktop", BODY_BACKGROUND) == light
    for name in ("desktop-light.png", "phone-dark.png", "page-dark.png"):
        assert (tmp_path / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert (tmp_path / name).stat().st_size > 10_000


def test_saving_the_issue_updates_the_open_page_within_2_seconds(page: Any, newsletter_dir: Path) -> None:
    from playwright.sync_api import expect

    open_issue(page)
    page.evaluate("window.notReloaded = true")
    page.evaluate("window.scrollTo(0, 400)")
    issue = newsletter_dir / ISSUE_FILE
    text = issue.read_text(encoding="utf-8")
    issue.write_text(text.replace("title: The Fear of Entering the Room", "title: The Courage of Entering")
                     .replace("Imagine a place", "Picture a place"), encoding="utf-8")
    expect(page.frame_locator("#frame-desktop").locator("h1")).to_have_text("The Courage of Entering", timeout=2000)
    expect(page.frame_locator("#frame-phone").locator("h1")).to_have_text("The Courage of Entering", timeout=2000)
    expect(page.locator(".inbox-subject")).to_have_text("The Courage of Entering", timeout=2000)
    assert "Picture a place" in page.frame_locator("#frame-phone").locator("body").inner_text()
    assert page.evaluate("window.notReloaded") is True  # swapped in place, not reloaded
    assert page.evaluate("window.scrollY") == 400


def test_broken_front_matter_shows_the_error_and_the_fix_brings_the_email_back(page: Any, newsletter_dir: Path) -> None:
    from playwright.sync_api import expect

    open_issue(page)
    issue = newsletter_dir / ISSUE_FILE
    good = issue.read_text(encoding="utf-8")
    issue.write_text(good.replace("status: ready", "stauts: ready"), encoding="utf-8")
    message = page.locator(".error-message")
    expect(message).to_contain_text(f"{ISSUE_FILE}:7: unknown front matter key 'stauts'", timeout=2000)
    expect(page.locator(".hint")).to_contain_text("known keys")
    assert page.locator("iframe").count() == 0
    issue.write_text(good, encoding="utf-8")
    expect(page.frame_locator("#frame-desktop").locator("h1")).to_have_text(
        "The Fear of Entering the Room", timeout=2000)
    assert page.locator(".error-message").count() == 0


def test_path_traversal_from_the_browser_gets_404(page: Any) -> None:
    for path in ("/%2e%2e/%2e%2e/etc/passwd", "/issue/..%2f..%2fnewsletter.toml/email.html", "/newsletter.toml"):
        response = page.goto(page.origin + path)
        assert response is not None and response.status == 404
        assert "postal_address" not in page.content()
