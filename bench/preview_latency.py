"""How fast does a save show up in `newsletter preview`? (The issue asks for under a second.)

Prints, on a temp copy of the repository's newsletter:
  - page render times (first, cached, after a save) and the index with 50 issues;
  - save -> server-sent event, over 20 saves (no browser);
  - save -> the new text drawn in both frames of an open page in Chromium, over 10 saves;
  - the server's CPU use while idle (the watcher polls four times a second).

    cd /work/main && /tmp/venv/bin/python bench/preview_latency.py
"""

from __future__ import annotations

import re
import shutil
import socket
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from newsletter.preview.server import PreviewServer  # noqa: E402
from tests.conftest import CHROMIUM, CHROMIUM_ARGS  # noqa: E402

SLUG = "the-fear-of-entering-the-room"
ISSUE = f"issues/2026-11-23-{SLUG}.md"


def ms(seconds: float) -> str:
    return f"{seconds * 1000:7.1f} ms"


def copy_newsletter(into: Path) -> Path:
    shutil.copy(ROOT / "newsletter.toml", into / "newsletter.toml")
    shutil.copytree(ROOT / "issues", into / "issues")
    return into


def timed(fn: object) -> float:
    start = time.perf_counter()
    fn()  # type: ignore[operator]
    return time.perf_counter() - start


def renders(folder: Path) -> None:
    with PreviewServer(folder / "newsletter.toml", port=0) as srv:
        page = f"/issue/{SLUG}/"
        print(f"issue page, first render       {ms(timed(lambda: srv.respond(page)))}")
        print(f"issue page, cached             {ms(timed(lambda: srv.respond(page)))}")
        issue = folder / ISSUE
        issue.write_text(issue.read_text(encoding="utf-8") + "\nOne more line.\n", encoding="utf-8")
        print(f"issue page, after a save       {ms(timed(lambda: srv.respond(page)))}")
        source = issue.read_text(encoding="utf-8")
        for n in range(49):
            text = source.replace(f"slug: {SLUG}", f"slug: copy-{n}")
            (folder / "issues" / f"2026-10-{n % 28 + 1:02d}-copy-{n}.md").write_text(text, encoding="utf-8")
        print(f"index of 50 issues, first      {ms(timed(lambda: srv.respond('/')))}")
        print(f"index of 50 issues, cached     {ms(timed(lambda: srv.respond('/')))}")
        for n in range(49):
            (folder / "issues" / f"2026-10-{n % 28 + 1:02d}-copy-{n}.md").unlink()


def save_to_event(folder: Path, saves: int = 20) -> None:
    with PreviewServer(folder / "newsletter.toml", port=0).start() as srv:
        sock = socket.create_connection(("127.0.0.1", srv.port), timeout=10)
        sock.sendall(b"GET /_preview/events HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        arrived = threading.Event()

        def read() -> None:
            try:
                while chunk := sock.recv(4096):
                    if re.search(rb"event: version", chunk):
                        arrived.set()
            except OSError:
                pass

        threading.Thread(target=read, daemon=True).start()
        arrived.wait(5)
        issue, times = folder / ISSUE, []
        for n in range(saves):
            time.sleep(0.3)
            arrived.clear()
            start = time.perf_counter()
            issue.write_text(issue.read_text(encoding="utf-8") + f"\nSave {n}.\n", encoding="utf-8")
            arrived.wait(5)
            times.append(time.perf_counter() - start)
        sock.close()
    print(f"save -> event ({saves} saves)    median {ms(statistics.median(times))}   max {ms(max(times))}")


def save_to_screen(folder: Path, saves: int = 10) -> None:
    from playwright.sync_api import sync_playwright

    with PreviewServer(folder / "newsletter.toml", port=0).start() as srv, sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1440, "height": 900})
        origin = srv.url.rstrip("/")
        page.route("**/*", lambda r: r.continue_() if r.request.url.startswith(origin) else r.abort())
        page.goto(f"{origin}/issue/{SLUG}/")
        page.wait_for_function("document.querySelectorAll('iframe.frame[data-ready]').length === 2")
        issue, times = folder / ISSUE, []
        for n in range(saves):
            marker = f"Marker{n}"
            start = time.perf_counter()
            issue.write_text(issue.read_text(encoding="utf-8").replace("Imagine a", f"{marker} Imagine a", 1),
                             encoding="utf-8")
            page.wait_for_function(
                "m => ['frame-desktop', 'frame-phone'].every(id => {"
                " const d = document.getElementById(id).contentDocument;"
                " return d && d.body && d.body.textContent.includes(m); })", arg=marker, polling="raf")
            times.append(time.perf_counter() - start)
            time.sleep(0.2)
        browser.close()
    print(f"save -> both frames ({saves} saves) median {ms(statistics.median(times))}   max {ms(max(times))}")


def idle_cpu(folder: Path, seconds: float = 5.0) -> None:
    with PreviewServer(folder / "newsletter.toml", port=0).start():
        time.sleep(0.5)
        start = time.process_time()
        time.sleep(seconds)
        used = time.process_time() - start
    print(f"idle CPU, server + watcher     {used / seconds * 100:5.2f} % of one core")


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        folder = copy_newsletter(Path(tmp))
        renders(folder)
        save_to_event(folder)
        save_to_screen(folder)
        idle_cpu(folder)


if __name__ == "__main__":
    main()
