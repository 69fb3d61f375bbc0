"""Make docs/preview.png and docs/reports.png, the README's pictures of `newsletter preview`.

Runs the preview server in-process on a free loopback port for the newsletter in the current
folder, opens an issue's page in Debian's Chromium (headless, through Playwright; no browser is
ever downloaded), lets no request leave 127.0.0.1 and saves a screenshot of the viewport.

    cd /work/main && /tmp/venv/bin/python scripts/preview_screenshot.py
    /tmp/venv/bin/python scripts/preview_screenshot.py --scheme dark --out /tmp/dark.png
    /tmp/venv/bin/python scripts/preview_screenshot.py --page reports --demo   # docs/reports.png

The Reports page shows what `newsletter report` reads (ledgers, events, SendGrid's statistics).
With --demo it is a rehearsal: a copy of this newsletter sends two issues to the loopback
SendGrid-speaking test server (tests/fakes/sendgrid.py), which then answers category statistics.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import os
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from newsletter.preview.server import PreviewServer  # noqa: E402
from tests.conftest import CHROMIUM, CHROMIUM_ARGS  # noqa: E402 - the one list of Chromium flags


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", type=Path, default=Path("newsletter.toml"))
    parser.add_argument("--issue", default="the-fear-of-entering-the-room")
    parser.add_argument("--page", choices=("issue", "reports"), default="issue")
    parser.add_argument("--demo", action="store_true", help="reports: a rehearsal against the test server")
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--scheme", choices=("light", "dark"), default="light")
    parser.add_argument("--width", type=int, default=1440)
    parser.add_argument("--height", type=int, default=980)
    args = parser.parse_args()
    out = args.out or ROOT / "docs" / f"{'preview' if args.page == 'issue' else 'reports'}.png"
    if args.page == "reports":
        with (demo_folder() if args.demo else contextlib.nullcontext(args.config)) as config:
            from newsletter.cli.report import overview_for

            with PreviewServer(config, port=0, reports=overview_for).start() as server:
                shoot(server.url + "reports/", out, args.scheme, (args.width, args.height), full_page=True)
    else:
        with PreviewServer(args.config, port=0).start() as server:
            url = server.url.rstrip("/") + server.path_for(args.issue)
            shoot(url, out, args.scheme, (args.width, args.height))
    print(f"wrote {out}")


@contextlib.contextmanager
def demo_folder() -> Iterator[Path]:
    """A copy of this newsletter that sent two issues to the loopback SendGrid; its newsletter.toml."""
    from typer.testing import CliRunner

    from newsletter.cli import app
    from newsletter.report import category_for
    from tests.fakes.sendgrid import FakeSendGrid
    from tests.helpers import copy_newsletter

    fake = FakeSendGrid("SG.demo-key-for-the-screenshot").start()
    with tempfile.TemporaryDirectory() as tmp:
        folder = copy_newsletter(ROOT, Path(tmp) / "letter")
        first = "the-fear-of-entering-the-room"
        text = (folder / "issues" / f"2026-11-23-{first}.md").read_text(encoding="utf-8")
        (folder / "issues" / "2026-11-30-a-second-look.md").write_text(
            text.replace(f"slug: {first}", "slug: a-second-look").replace(
                "title: The Fear of Entering the Room", "title: A Second Look"), encoding="utf-8")
        env = {"NEWSLETTER_SENDGRID__HOST": fake.url, "NEWSLETTER_DELIVERY__PROVIDER": "sendgrid",
               "SENDGRID_API_KEY": fake.api_key, "NEWSLETTER_SENDGRID__CLICK_TRACKING": "true",
               "NEWSLETTER_UNSUBSCRIBE_SECRET": "demo-secret-not-for-real-use"}
        saved, cwd = dict(os.environ), Path.cwd()
        os.environ.update(env)
        os.chdir(folder)
        try:
            for slug in (first, "a-second-look"):
                result = CliRunner().invoke(app, ["send", slug, "--yes"])
                assert result.exit_code == 0, result.output
            today = dt.datetime.now(dt.UTC).date().isoformat()
            fake.add_category_stats(today, category_for(first), delivered=7, bounces=1, blocks=1, spam_reports=1,
                                    unsubscribes=1, unique_clicks=3)
            fake.add_category_stats(today, category_for("a-second-look"), delivered=9, unique_clicks=4)
            yield folder / "newsletter.toml"
        finally:
            os.chdir(cwd)
            os.environ.clear()
            os.environ.update(saved)
            fake.stop()


def shoot(url: str, out: Path, scheme: str, size: tuple[int, int], full_page: bool = False) -> None:
    """Open url, wait for it to be drawn (an issue's two frames sized), save a screenshot."""
    from playwright.sync_api import sync_playwright

    local = url.split("/", 3)[:3]
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": size[0], "height": size[1]},
                                color_scheme="dark" if full_page and scheme == "dark" else "light")
        page.route("**/*", lambda route: route.continue_() if route.request.url.split("/", 3)[:3] == local
                   else route.abort())
        page.goto(url)
        if full_page:  # the Reports page: drawn on the server, nothing to wait for
            out.parent.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(out), full_page=True)
            browser.close()
            return
        page.wait_for_selector("iframe.frame[data-ready]", state="attached")
        page.wait_for_function("document.querySelectorAll('iframe.frame[data-ready]').length === 2")
        if scheme == "dark":
            page.click("[data-scheme=dark]")
        page.wait_for_timeout(300)  # let the frames settle at their fitted heights
        out.parent.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(out))
        browser.close()


if __name__ == "__main__":
    main()
