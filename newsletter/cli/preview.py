"""CLI command: preview (the live preview server)."""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Annotated

import typer

from newsletter.cli.app import app
from newsletter.cli.common import ConfigOption, echo, handles_errors, unsubscribe_secret

if TYPE_CHECKING:
    from newsletter.preview import PreviewServer


def _log(message: str) -> None:
    echo(f"{time.strftime('%H:%M:%S')} {message}", err=True)


@contextlib.contextmanager
def _sigterm_stops() -> Iterator[None]:
    """`kill` (SIGTERM) stops the server the way Ctrl-C does: cleanly, exit status 0."""

    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _open_browser(url: str) -> None:
    """Open url in a desktop browser, if there is a desktop; never a text browser in this terminal."""
    if sys.platform.startswith("linux") and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        echo("(no display found: open the address above in your browser)")
        return
    import webbrowser

    threading.Thread(target=webbrowser.open, args=(url,), daemon=True).start()


def _announce(server: PreviewServer, url: str, no_open: bool) -> None:
    for note in server.notes:
        echo(note, err=True)
    echo(f"Previewing {server.site.settings().newsletter.name} at {url}")
    echo("Watching newsletter.toml, issues/ and templates/; Ctrl-C to stop.")
    if not no_open:
        _open_browser(url)


@app.command()
@handles_errors
def preview(
    issue: Annotated[str | None, typer.Argument(help="Open this issue (slug or path); default: the index.",
                                                metavar="ISSUE")] = None,
    port: Annotated[int | None, typer.Option("--port", "-p", min=0, max=65535, show_default=False,
                                             help="Port (default 8471, or the next free one; 0: any).")] = None,
    host: Annotated[str, typer.Option("--host", help="Address to listen on; anything but loopback "
                                                     "shows your drafts to the network.")] = "127.0.0.1",
    no_open: Annotated[bool, typer.Option("--no-open", help="Do not open a browser.")] = False,
    config: ConfigOption = None,
) -> None:
    """Preview issues in the browser, live: every save shows up without a reload.

    Desktop and phone frames, light and dark, the plain-text part, the inbox row and the
    preflight checks, exactly as `build` writes the email for a sample subscriber; and a Reports
    page with what became of each sent issue (`newsletter report`, drawn). Ctrl-C stops.

    Example: newsletter preview the-fear-of-entering-the-room
    """
    from newsletter.cli.report import overview_for
    from newsletter.config import find_config
    from newsletter.preview import PreviewServer

    server = PreviewServer(config or find_config(), host=host, port=port, log=_log,
                           unsubscribe_secret=unsubscribe_secret, reports=overview_for)
    try:
        with _sigterm_stops():  # before the address is printed: whoever reads it may stop us
            _announce(server, server.url.rstrip("/") + (server.path_for(issue) if issue else "/"), no_open)
            server.serve_forever()
    except KeyboardInterrupt:
        echo("Stopped.")
    finally:
        server.close()
