"""Issue 9, items 13 and 14: the essay's own images in build and the preview, nothing else served,
and an email that never scrolls sideways on a phone when its images are blocked or broken."""

from __future__ import annotations

import email
import email.policy
import shutil
from pathlib import Path
from typing import Any

import pytest

from newsletter.config import load_settings
from newsletter.preview.server import PreviewServer
from newsletter.render.sample import build_issue

IMAGES = Path(__file__).resolve().parents[1] / "fixtures" / "images"
SITE = "https://haileyscomet.example.com/"
BODY = """---
title: Tide pools
date: 2026-12-01
slug: tide-pools
status: ready
---

A pool at dawn.

![A tide pool at dawn, anemones open](images/pool.png){width=320}

| Photo | Note |
|---|---|
| ![Anemones in a pool](images/pool.png) | They close when touched. |

[![A linked photo of the shore](images/shore.jpg)](https://example.org/)

- ![A crab under a rock](images/missing.png)
"""


@pytest.fixture
def letter(newsletter_dir: Path) -> Path:
    (newsletter_dir / "issues" / "images").mkdir()
    shutil.copy(IMAGES / "pool-320.png", newsletter_dir / "issues" / "images" / "pool.png")
    shutil.copy(IMAGES / "pool-321.jpg", newsletter_dir / "issues" / "images" / "shore.jpg")
    (newsletter_dir / "issues" / "private.txt").write_text("not for the web")
    (newsletter_dir / "issues" / "2026-12-01-tide-pools.md").write_text(BODY)
    return newsletter_dir


def test_build_shows_local_images_and_the_message_keeps_absolute_urls(letter: Path) -> None:
    settings = load_settings(letter / "newsletter.toml", environ={})
    result = build_issue(settings, "tide-pools", letter / "build")
    html = (result.folder / "email.html").read_text()
    assert 'src="images/pool.png"' in html and 'src="images/shore.jpg"' in html
    assert f'src="{SITE}images/missing.png"' in html  # no file: left as it is (check reports it)
    assert (result.folder / "images" / "pool.png").read_bytes() == (IMAGES / "pool-320.png").read_bytes()
    assert not (result.folder / "private.txt").exists()
    message = email.message_from_bytes((result.folder / "message.eml").read_bytes(), policy=email.policy.default)
    sent = message.get_body(("html",)).get_content()  # type: ignore[union-attr]
    assert f'src="{SITE}images/pool.png"' in sent and 'src="images/' not in sent


def test_preview_serves_only_what_an_issue_references(letter: Path) -> None:
    with PreviewServer(letter / "newsletter.toml", port=0) as srv:
        def status(path: str) -> int:
            return srv.respond(path, "127.0.0.1").status

        assert status("/issue/tide-pools/email.html") == 200
        image = srv.respond("/issue/tide-pools/images/pool.png", "127.0.0.1")
        assert image.status == 200 and image.content_type == "image/png"
        assert status("/issue/tide-pools/private.txt") == 404
        assert status("/issue/tide-pools/images/missing.png") == 404
        assert status("/issue/the-fear-of-entering-the-room/images/pool.png") == 404
        assert status("/archive/private.txt") == 404
        assert status("/archive/images/pool.png") == 200  # the archive publishes what essays show
        assert status("/archive/2026-12-01-tide-pools.md") == 404


def _scroll_width(browser: Any, html: str, mode: str) -> tuple[int, list[float]]:
    context = browser.new_context(viewport={"width": 375, "height": 700})
    if mode == "blocked":
        context.route("**/*", lambda route: route.abort())
    else:
        context.route("**/*", lambda route: route.fulfill(status=404, body="gone"))
    try:
        page = context.new_page()
        page.set_content(html, wait_until="load")
        widths = page.evaluate("[...document.images].map(i => i.getBoundingClientRect().right)")
        return int(page.evaluate("document.documentElement.scrollWidth")), widths
    finally:
        context.close()


@pytest.mark.browser
@pytest.mark.parametrize("mode", ["blocked", "broken"])
def test_email_never_scrolls_sideways_on_a_phone_without_its_images(
    letter: Path, browser: Any, mode: str
) -> None:
    settings = load_settings(letter / "newsletter.toml", environ={})
    result = build_issue(settings, "tide-pools", letter / "build")
    message = email.message_from_bytes((result.folder / "message.eml").read_bytes(), policy=email.policy.default)
    html = message.get_body(("html",)).get_content()  # type: ignore[union-attr]
    width, rights = _scroll_width(browser, html, mode)
    assert width <= 375 and all(right <= 375 for right in rights), (width, rights)
