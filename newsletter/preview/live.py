"""Live reload for the preview: watch the files, announce each change, render ahead.

The watcher polls the stamps of exactly the files a render reads (newsletter.toml, templates,
issues/*.md) four times a second: no inotify limits, and it works on network and container
mounts. Each change moves a version that open pages follow over server-sent events. The warmer
re-renders in the background whatever a change made stale, so a render error reaches the terminal
even with no page open, and the page that asks next finds the render done.
"""

from __future__ import annotations

import secrets
import threading
import traceback
from collections.abc import Callable, Iterator

from newsletter.issues import list_issues
from newsletter.preview.pages import PreviewSite, Stamp

POLL_SECONDS = 0.25
HEARTBEAT_SECONDS = 15.0


class Changes:
    """A version that moves on every change of a watched file; streams wake up on each move."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._count = 0
        self._boot = secrets.token_hex(4)  # a restarted server has new versions: pages refresh
        self.closed = False

    @property
    def version(self) -> str:
        return f"{self._boot}-{self._count}"

    def bump(self) -> None:
        with self._cond:
            self._count += 1
            self._cond.notify_all()

    def close(self) -> None:
        with self._cond:
            self.closed = True
            self._cond.notify_all()

    def wait(self, seen: str | None, timeout: float) -> str | None:
        """The version once it differs from seen (or after timeout); None once closed."""
        with self._cond:
            self._cond.wait_for(lambda: self.closed or self.version != seen, timeout)
            return None if self.closed else self.version

    def stream(self) -> Iterator[bytes]:
        """Server-sent events: the current version now, then each new one, with heartbeats."""
        yield b"retry: 1000\n\n"
        seen: str | None = None
        while (current := self.wait(seen, HEARTBEAT_SECONDS)) is not None:
            if current == seen:
                yield b": keep-alive\n\n"
            else:
                seen = current
                yield f"event: version\ndata: {current}\n\n".encode()


class Watcher(threading.Thread):
    """Poll a stamp of the watched files; call on_change with the paths that changed."""

    def __init__(self, snapshot: Callable[[], Stamp], on_change: Callable[[list[str]], None],
                 interval: float = POLL_SECONDS) -> None:
        super().__init__(name="preview-watcher", daemon=True)
        self.snapshot, self.on_change, self.interval = snapshot, on_change, interval
        self._stop_event = threading.Event()
        self._last = set(snapshot())  # taken now, not when the thread starts: no save slips between

    def run(self) -> None:
        while not self._stop_event.wait(self.interval):
            now = set(self.snapshot())
            if now != self._last:
                changed = sorted({entry[0] for entry in now ^ self._last})
                self._last = now
                self.on_change(changed)

    def stop(self) -> None:
        self._stop_event.set()


class Warmer(threading.Thread):
    """Render every issue ahead of the browser whenever something changed (cached ones are free)."""

    def __init__(self, site: PreviewSite, changes: Changes) -> None:
        super().__init__(name="preview-warmer", daemon=True)
        self.site, self.changes = site, changes
        self._dirty = threading.Event()
        self._dirty.set()  # warm up at start: errors in any issue show in the terminal at once

    def poke(self) -> None:
        self._dirty.set()

    def stop(self) -> None:
        self._dirty.set()

    def run(self) -> None:
        while self._dirty.wait() and not self.changes.closed:
            self._dirty.clear()
            for path in list_issues(self.site.root / "issues"):
                if self.changes.closed or self._dirty.is_set():
                    break  # a newer change: start over from the newest issue
                try:
                    self.site.render(path)
                except Exception:  # a bug: report it, keep warming and serving
                    self.site.log(f"internal error rendering {self.site.rel(path)}:\n{traceback.format_exc()}")

