"""Make docs/preview.png, the README's picture of `newsletter preview`.

Runs the preview server in-process on a free loopback port for the newsletter in the current
folder, opens an issue's page in Debian's Chromium (headless, through Playwright; no browser is
ever downloaded), lets no request leave 127.0.0.1 and saves a screenshot of the viewport.

    cd /work/main && /tmp/venv/bin/python scripts/preview_screenshot.py
    /tmp/venv/bin/python scripts/preview_screenshot.py --scheme dark --out /tmp/dark.png
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from newsletter.preview.server import PreviewServer  # noqa: E402
from tests.conftest import CHROMIUM, CHROMIUM_ARGS  # noqa: E402 - the one list of Chromium flags


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", type=Path, default=Path("newsletter.toml"))
    parser.add_argument("--issue", default="the-fear-of-entering-the-room")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "preview.png")
    parser.add_argument("--scheme", choices=("light", "dark"), default="light")
    parser.add_argument("--width", type=int, default=1440)
    parser.add_argument("--height", type=int, default=980)
    args = parser.parse_args()
    with PreviewServer(args.config, port=0).start() as server:
        url = server.url.rstrip("/") + server.path_for(args.issue)
        shoot(url, args.out, args.scheme, (args.width, args.height))
    print(f"wrote {args.out}")


def shoot(url: str, out: Path, scheme: str, size: tuple[int, int]) -> None:
    """Open url, wait for both frames to be drawn and sized, save a viewport screenshot."""
    from playwright.sync_api import sync_playwright

    local = url.split("/", 3)[:3]
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": size[0], "height": size[1]}, color_scheme="light")
        page.route("**/*", lambda route: route.continue_() if route.request.url.split("/", 3)[:3] == local
                   else route.abort())
        page.goto(url)
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
