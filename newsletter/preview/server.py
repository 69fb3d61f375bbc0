"""The local preview server: stdlib HTTP on 127.0.0.1, live reload over server-sent events.

The server only serves what it renders (see newsletter.preview.pages): it never maps a URL to
a file, refuses `..` and encoded separators outright, answers only to localhost names when bound
to loopback (so a web page cannot reach it through DNS rebinding), and sends no-store on every
answer. It never imports newsletter.providers.base or newsletter.send.plan: a preview cannot send.

Live reload (watching, announcing, rendering ahead) lives in newsletter.preview.live.
"""

from __future__ import annotations

import errno
import ipaddress
import socket
import threading
import traceback
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from urllib.parse import unquote

from newsletter.config import Settings
from newsletter.errors import IssueError, NewsletterError
from newsletter.issues import SLUG_PATTERN
from newsletter.preview.live import Changes, Warmer, Watcher
from newsletter.preview.pages import STATIC_FILES, PreviewSite, Response
from newsletter.preview.reports import ReportsSource

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8471
PORT_TRIES = 10  # default port taken: try the next ones, then any free port
LOOPBACK_NAMES = {"localhost", "127.0.0.1", "::1"}
Handler = Callable[[str], Response | None]  # gets the decoded path after its prefix


def text_response(status: int, text: str, headers: tuple[tuple[str, str], ...] = ()) -> Response:
    return Response(status, (text + "\n").encode(), "text/plain; charset=utf-8", headers)


class Router:
    """Exact paths, then the longest matching prefix; None means 404.

    A new part of the site is one `mount` call in build_router.
    """

    def __init__(self) -> None:
        self._exact: dict[str, Callable[[], Response]] = {}
        self._prefixes: list[tuple[str, Handler]] = []

    def add(self, path: str, handler: Callable[[], Response]) -> None:
        self._exact[path] = handler

    def mount(self, prefix: str, handler: Handler) -> None:
        """Send every path under prefix (which ends with '/') to handler(rest of the path)."""
        self._prefixes.append((prefix, handler))
        self._prefixes.sort(key=lambda item: len(item[0]), reverse=True)

    def dispatch(self, path: str) -> Response | None:
        if path in self._exact:
            return self._exact[path]()
        for prefix, handler in self._prefixes:
            if path.startswith(prefix):
                return handler(path[len(prefix):])
        return None


def clean_path(target: str) -> str | None:
    """The request path, percent-decoded once; None if it could reach outside the site.

    Refused: anything not starting with one '/', '.' or '..' segments (in any encoding), empty
    segments, and segments that decode to a separator or NUL. Never used to open a file anyway.
    """
    raw = target.split("?", 1)[0].split("#", 1)[0]
    if not raw.startswith("/") or raw.startswith("//"):
        return None
    segments = raw[1:].split("/")
    try:
        decoded = [unquote(s, errors="strict") for s in segments]
    except UnicodeDecodeError:
        return None
    for i, seg in enumerate(decoded):
        bad_empty = seg == "" and i != len(decoded) - 1
        if seg in (".", "..") or bad_empty or any(c in seg for c in "/\\\x00"):
            return None
    return "/" + "/".join(decoded)


def host_allowed(host_header: str | None, loopback: bool) -> bool:
    """On loopback, answer only requests addressed to a localhost name (no DNS rebinding)."""
    if not loopback or not host_header:
        return True
    name = host_header.strip().lower()
    if name.startswith("["):
        name = name[1:name.find("]")]
    elif name.count(":") == 1:
        name = name.split(":")[0]
    return name in LOOPBACK_NAMES or name.endswith(".localhost")


def is_loopback(host: str) -> bool:
    """True when every address host names is a loopback address."""
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(host, None, type=socket.SOCK_STREAM)
    except socket.gaierror:
        return False
    return all(ipaddress.ip_address(str(info[4][0]).split("%")[0]).is_loopback for info in infos)


def build_router(site: PreviewSite, changes: Changes) -> Router:
    """Every URL the preview answers: the index, issues, the web archive, the preview's assets."""
    router = Router()
    router.add("/", site.index)
    router.add("/archive", lambda: text_response(301, "moved", (("Location", "/archive/"),)))
    router.add("/reports/", site.reports)
    router.add("/reports", lambda: text_response(301, "moved", (("Location", "/reports/"),)))
    router.mount("/issue/", lambda rest: _issue_route(site, rest))
    router.mount("/_preview/", lambda rest: _asset_route(site, changes, rest))
    router.mount("/archive/", site.archive_file)
    return router


def _issue_route(site: PreviewSite, rest: str) -> Response | None:
    slug, _, name = rest.partition("/")
    if not SLUG_PATTERN.match(slug):
        return None
    if rest == slug:
        return text_response(301, "moved", (("Location", f"/issue/{slug}/"),))
    if name == "":
        return site.issue_page(slug)
    return site.issue_file(slug, name)


def _asset_route(site: PreviewSite, changes: Changes, rest: str) -> Response | None:
    if rest == "events":
        return Response(200, changes.stream(), "text/event-stream; charset=utf-8", ())
    return site.static(rest) if rest in STATIC_FILES else None


class PreviewServer:
    """A running preview: the HTTP server, the file watcher and the live-reload stream."""

    def __init__(self, config_path: Path, host: str = DEFAULT_HOST, port: int | None = None,
                 log: Callable[[str], None] = lambda _: None,
                 unsubscribe_secret: Callable[[Settings], str] = lambda _: "",
                 reports: ReportsSource | None = None) -> None:
        self.log = log
        self.changes = Changes()
        self.site = PreviewSite(config_path, unsubscribe_secret, log, lambda: self.changes.version, reports)
        self.site.settings()  # a broken newsletter.toml stops the start; later ones show on the page
        self.router = build_router(self.site, self.changes)
        self.host, self.loopback = host, is_loopback(host)
        self.notes: list[str] = []  # said once at the start: a port change, a non-loopback host
        self.httpd = _bind(self, host, port)
        self.port = int(self.httpd.server_address[1])
        self.watcher = Watcher(self.site.watch_stamp, self._changed)
        self.warmer = Warmer(self.site, self.changes)
        self._thread: threading.Thread | None = None
        self._serving = False

    @property
    def url(self) -> str:
        shown = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}.get(self.host, self.host)
        return f"http://{f'[{shown}]' if ':' in shown else shown}:{self.port}/"

    def path_for(self, ref: str) -> str:
        """The page of an issue given by slug or path (it must live in issues/)."""
        from newsletter.issues import find_issue

        issue = find_issue(self.site.settings().issues_dir, ref)
        if issue.path.resolve().parent != (self.site.root / "issues").resolve():
            raise IssueError(f"{issue.path}: not in {self.site.root / 'issues'}",
                             hint="the preview shows the issues in issues/; move the file there")
        return f"/issue/{issue.slug}/"

    def respond(self, target: str, host_header: str | None = None) -> Response:
        """Answer one GET: a page, a raw file, a stream, or a 404."""
        if not host_allowed(host_header, self.loopback):
            return text_response(403, "the preview answers only to localhost addresses")
        path = clean_path(target)
        response = self.router.dispatch(path) if path is not None else None
        return response if response is not None else self.site.missing()

    def serve_forever(self) -> None:
        """Watch and serve until close() (or Ctrl-C in the calling thread)."""
        if not self.watcher.is_alive():
            self.watcher.start()
            self.warmer.start()
        self._serving = True
        self.httpd.serve_forever(poll_interval=0.1)

    def start(self) -> PreviewServer:
        """Serve from a background thread (tests, the screenshot script)."""
        self._thread = threading.Thread(target=self.serve_forever, name="preview-http", daemon=True)
        self._thread.start()
        return self

    def close(self) -> None:
        """Stop watching, end every open stream, stop serving, free the port."""
        self.changes.close()
        self.watcher.stop()
        self.warmer.stop()
        if self._serving:
            self.httpd.shutdown()
        self.httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> PreviewServer:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def _changed(self, paths: list[str]) -> None:
        self.changes.bump()
        self.log("changed: " + ", ".join(self.site.rel(Path(p)) for p in paths))
        self.warmer.poke()


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False

    def __init__(self, address: tuple[str, int], family: socket.AddressFamily,
                 preview: PreviewServer) -> None:
        self.address_family = family
        self.preview = preview
        super().__init__(address, _RequestHandler)


def _bind(preview: PreviewServer, host: str, port: int | None) -> _HTTPServer:
    try:
        family = socket.getaddrinfo(host or None, 0, type=socket.SOCK_STREAM)[0][0]
    except socket.gaierror as exc:
        raise NewsletterError(f"--host {host}: cannot resolve this address ({exc.strerror})") from None
    ports = [port] if port is not None else [DEFAULT_PORT + i for i in range(PORT_TRIES)] + [0]
    for candidate in ports:
        try:
            httpd = _HTTPServer((host, candidate), family, preview)
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE and candidate != ports[-1]:
                continue
            hint = "choose another with --port N, or --port 0 for any free port"
            raise NewsletterError(f"{host}:{candidate}: cannot listen here: {exc.strerror}", hint) from None
        if port is None and candidate != DEFAULT_PORT:
            preview.notes.append(f"port {DEFAULT_PORT} is taken; using {httpd.server_address[1]}")
        if not preview.loopback:
            preview.notes.append(f"warning: --host {host} is not a loopback address: anyone who can "
                                 "reach this machine can read your drafts")
        return httpd
    raise AssertionError("unreachable: the last candidate is port 0")  # pragma: no cover


class _RequestHandler(BaseHTTPRequestHandler):
    server: _HTTPServer
    protocol_version = "HTTP/1.0"  # one request per connection: a stream ends with its socket
    server_version = "newsletter-preview"
    sys_version = ""

    def do_GET(self) -> None:  # noqa: N802 - http.server's API
        self._answer(head=False)

    def do_HEAD(self) -> None:  # noqa: N802
        self._answer(head=True)

    def _refuse(self) -> None:
        self._send(text_response(405, "the preview only answers GET and HEAD", (("Allow", "GET, HEAD"),)), False)

    do_POST = do_PUT = do_DELETE = do_PATCH = do_OPTIONS = _refuse  # noqa: N815

    def _answer(self, head: bool) -> None:
        preview = self.server.preview
        try:
            response = preview.respond(self.path, self.headers.get("Host"))
        except Exception:  # a bug: say so on the page and in the terminal, keep serving
            preview.log(f"internal error on {self.path}:\n{traceback.format_exc()}")
            response = text_response(500, "internal error in the preview; the terminal has the details")
        self._send(response, head)

    def _send(self, response: Response, head: bool) -> None:
        try:
            self.send_response(response.status)
            self.send_header("Content-Type", response.content_type)
            self.send_header("Cache-Control", "no-store")
            self.send_header("X-Content-Type-Options", "nosniff")
            self.send_header("Referrer-Policy", "no-referrer")
            for name, value in response.headers:
                self.send_header(name, value)
            if isinstance(response.body, bytes):
                self.send_header("Content-Length", str(len(response.body)))
            self.end_headers()
            if head:
                return
            chunks = [response.body] if isinstance(response.body, bytes) else response.body
            for chunk in chunks:
                self.wfile.write(chunk)
        except (BrokenPipeError, ConnectionResetError, ConnectionAbortedError):
            pass  # the browser went away (a closed tab, a reload): nothing to do

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - http.server's API
        pass  # quiet: changes and render errors are logged by PreviewServer and PreviewSite
