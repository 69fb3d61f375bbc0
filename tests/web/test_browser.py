"""The reader's journey in a real browser (Debian's Chromium), against the real `newsletter serve`.

A reader finds the subscribe form on an archive page, subscribes, opens the confirmation link
from the email the service wrote to the outbox, confirms, and `subscribers apply` makes them
active; a sent issue's List-Unsubscribe link opens a page whose button unsubscribes them. Opening
a link never changes anything by itself. Every page of the service fits a 375 px phone in light
and dark, passes axe-core, logs no console error (a style the CSP refused would), and no request
leaves 127.0.0.1.
"""

from __future__ import annotations

import csv
import email
import email.policy
import email.utils
import functools
import os
import re
import threading
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from typer.testing import CliRunner

from newsletter.cli import app
from newsletter.subscribers.inbox import Inbox
from tests.web.running import ROOT, SECRET, Service

pytestmark = pytest.mark.browser

AXE = ROOT / ".ci" / "node" / "node_modules" / "axe-core" / "axe.min.js"
SLUG = "the-fear-of-entering-the-room"
READER = "new.reader@example.com"
PHONE = {"width": 375, "height": 740}


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the stdlib's name
        pass


@pytest.fixture
def service(newsletter_dir: Path) -> Iterator[Service]:
    with Service(newsletter_dir) as running:
        yield running


def cli(runner: CliRunner, service: Service, *args: str) -> str:
    env = {name: value for name, value in service.env.items() if name.startswith("NEWSLETTER_")}
    result = runner.invoke(app, list(args), env=env)
    assert result.exit_code == 0, result.output
    return result.output


@pytest.fixture
def archive(service: Service, runner: CliRunner, tmp_path: Path) -> Iterator[str]:
    """The archive built with [readers] url = the running service, served on another loopback port."""
    www = tmp_path / "www"
    cli(runner, service, "archive", "--out", str(www))
    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_QuietHandler, directory=str(www)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


def axe_source() -> str | None:
    return AXE.read_text(encoding="utf-8") if AXE.exists() else None


def test_axe_core_is_installed() -> None:
    """The accessibility audit below needs axe-core; CI installs it (.ci/run), a laptop may not have it."""
    if AXE.exists():
        return
    message = f"{AXE.relative_to(ROOT)} is missing: npm install --prefix .ci/node axe-core@4.10.3 (.ci/run does)"
    if os.environ.get("CI") == "true":
        pytest.fail(message)
    pytest.skip(message)


class Reader:
    """A phone-sized page that refuses anything beyond loopback and audits every service page."""

    def __init__(self, browser: Any, service: Service) -> None:
        self.context = browser.new_context(viewport=PHONE)
        self.page = self.context.new_page()
        self.page.set_default_timeout(10_000)
        self.service = service
        self.problems: list[str] = []
        self.audited: list[str] = []
        self.axe = axe_source()
        self.page.on("console", self._console)
        self.page.on("pageerror", lambda exc: self.problems.append(f"page error: {exc}"))
        self.context.route("**/*", self._only_loopback)

    def _console(self, msg: Any) -> None:
        if msg.type != "error":
            return
        if msg.text.startswith("Failed to load resource") and msg.location.get("url") == self.page.url:
            return  # the page itself answered 400, 404 or 410, as an error page must
        self.problems.append(f"console: {msg.text} ({msg.location.get('url')})")

    def _only_loopback(self, route: Any) -> None:
        if urlsplit(route.request.url).hostname == "127.0.0.1":
            route.continue_()
        else:
            self.problems.append(f"request beyond loopback: {route.request.url}")
            route.abort()

    def audit(self, what: str) -> None:
        """The page on screen: no sideways scroll, light and dark differ, axe-clean in both."""
        page = self.page
        assert page.url.startswith(self.service.url), page.url
        backgrounds = {}
        for scheme in ("light", "dark"):
            page.emulate_media(color_scheme=scheme)
            backgrounds[scheme] = page.evaluate("getComputedStyle(document.body).backgroundColor")
            width = page.evaluate("document.documentElement.scrollWidth")
            assert width <= PHONE["width"], f"{what} ({scheme}): {width}px wide at a 375px viewport"
            if self.axe is not None:
                assert self.run_axe() == [], f"{what} ({scheme}): axe violations"
        assert backgrounds["light"] != backgrounds["dark"], f"{what}: the same background in light and dark"
        page.emulate_media(color_scheme="light")
        self.audited.append(what)

    def run_axe(self) -> list[str]:
        # evaluated through the DevTools protocol: the page's CSP (no script at all) stays in force
        if not self.page.evaluate("() => typeof window.axe === 'object'"):
            self.page.evaluate(f"() => {{ {self.axe}\n }}")
        return list(self.page.evaluate(
            """async () => (await axe.run(document, {resultTypes: ['violations']})).violations
                .map(v => `${v.id}: ${v.help} at ${v.nodes.map(n => n.target.join(' ')).join(', ')}`)"""))

    def click(self, name: str) -> None:
        """Press the button named `name` and wait for the page it leads to."""
        with self.page.expect_navigation():
            self.page.get_by_role("button", name=re.compile(name, re.IGNORECASE)).click()


def assert_out_of_sight(honeypot: Any) -> None:
    """The honeypot is neither seen (off screen or hidden) nor read out (inside aria-hidden)."""
    box = honeypot.bounding_box()
    assert box is None or box["x"] + box["width"] <= 0 or box["y"] + box["height"] <= 0, f"the honeypot shows: {box}"
    assert honeypot.evaluate("el => el.closest('[aria-hidden=true]') !== null"), "a screen reader reads the honeypot"
    assert honeypot.input_value() == ""


def event_types(folder: Path) -> list[str]:
    events, _ = Inbox(folder / "inbox").read()
    return [str(e.type) for e in events]


def row(folder: Path, address: str) -> dict[str, str]:
    with open(folder / "subscribers.csv", encoding="utf-8", newline="") as fh:
        return next(r for r in csv.DictReader(fh) if r["email"] == address)


def text_part(path: Path) -> str:
    message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
    part = message.get_body(("plain",))
    assert part is not None, f"{path.name} has no text part"
    return str(part.get_content())


def confirm_link(folder: Path, service: Service) -> str:
    """The link in the one confirmation email the service wrote to the outbox."""
    found = list((folder / "outbox" / "confirmations").rglob("*.eml"))
    assert len(found) == 1, found
    links = re.findall(re.escape(service.url) + r"confirm/[A-Za-z0-9_.\-]+", text_part(found[0]))
    assert links, text_part(found[0])
    return str(links[0])


def unsubscribe_link(folder: Path, address: str) -> str:
    """The https/http URL of List-Unsubscribe in the message the send wrote for `address`."""
    for path in (folder / "outbox" / SLUG).glob("*.eml"):
        message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        if email.utils.parseaddr(str(message["To"]))[1] == address:
            assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
            return str(re.findall(r"<(https?://[^>]+)>", str(message["List-Unsubscribe"]))[0])
    raise AssertionError(f"no message to {address} in the outbox")


def test_a_reader_subscribes_confirms_and_unsubscribes(browser: Any, service: Service, archive: str,
                                                       runner: CliRunner) -> None:
    folder = service.folder
    reader = Reader(browser, service)
    page = reader.page

    page.goto(archive)
    form = page.locator(f'form[action="{service.url}subscribe"]').first
    assert form.count() == 1, f"no form on the archive page posts to {service.url}subscribe"
    assert_out_of_sight(form.locator("input[name=website]"))
    form.locator("input[name=email]").fill(READER)
    form.locator("input[name=name]").fill("Néa Reader")
    with page.expect_navigation():
        form.locator("button[type=submit], input[type=submit]").first.click()
    assert page.url == service.url + "subscribe"
    assert "inbox" in page.locator("main").inner_text().lower()
    reader.audit("check your inbox")
    assert event_types(folder) == ["subscribe_requested"]

    link = confirm_link(folder, service)
    page.goto(link)
    reader.audit("confirm page")
    assert event_types(folder) == ["subscribe_requested"], "opening the confirm link changed something"
    reader.click("confirm")
    reader.audit("confirmed")
    assert event_types(folder) == ["subscribe_requested", "confirmed"]
    cli(runner, service, "subscribers", "apply")
    assert row(folder, READER)["status"] == "active"
    assert row(folder, READER)["name"] == "Néa Reader"

    cli(runner, service, "send", SLUG, "--yes")
    page.goto(unsubscribe_link(folder, READER))
    reader.audit("unsubscribe page")
    assert event_types(folder) == ["subscribe_requested", "confirmed"], "opening the link unsubscribed"
    reader.click("unsubscribe")
    reader.audit("unsubscribed")
    assert event_types(folder)[-1] == "unsubscribed"
    cli(runner, service, "subscribers", "apply")
    assert row(folder, READER)["status"] == "unsubscribed"
    assert reader.problems == []
    reader.context.close()
    assert SECRET not in service.output()


def test_the_other_pages_read_well_too(browser: Any, service: Service) -> None:
    reader = Reader(browser, service)
    page = reader.page
    page.goto(service.url + "subscribe")
    assert_out_of_sight(page.locator("input[name=website]"))
    reader.audit("subscribe page")
    page.locator("input[name=email]").fill("not an address")
    page.locator("input[name=email]").evaluate("el => el.removeAttribute('required') || (el.type = 'text')")
    with page.expect_navigation():
        page.locator("button[type=submit], input[type=submit]").first.click()
    assert page.locator("input[name=email]").input_value() == "not an address"
    reader.audit("the form with an error")
    page.goto(service.url + "confirm/forged.token.here")
    assert page.locator("a[href$='subscribe'], form[action$='subscribe']").count() >= 1
    reader.audit("a forged confirm link")
    page.goto(service.url + "unsubscribe/forged")
    reader.audit("an unsubscribe page for an unknown link")
    page.goto(service.url + "no-such-page")
    reader.audit("the not-found page")
    assert reader.problems == []
    assert event_types(service.folder) == []
    reader.context.close()
