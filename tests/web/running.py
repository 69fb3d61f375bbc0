"""The real reader service as a child process on 127.0.0.1, for the tests that drive it from outside.

`newsletter serve` runs exactly as a writer runs it (python -m newsletter serve --port N, in the
newsletter folder), with its output in a log file the tests read, and can be killed with SIGKILL
and started again on the same port, as a crash and a restart would.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from types import TracebackType

from newsletter.subscribers.schema import email_key
from newsletter.tokens import Tokens

ROOT = Path(__file__).resolve().parents[2]
SECRET = "w4-test-secret-never-shown-9f2c1d"  # noqa: S105 - a test secret
PULL_TOKEN = "w4-pull-token-never-shown-77ab"  # noqa: S105 - a test secret
BASE_PATH = "/r/"


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def service_env(port: int, **extra: str) -> dict[str, str]:
    """The environment of the service and of the CLI commands that talk about it."""
    env = {name: value for name, value in os.environ.items() if not name.startswith("NEWSLETTER_")}
    env.update({
        "NEWSLETTER_UNSUBSCRIBE_SECRET": SECRET,
        "NEWSLETTER_READERS_TOKEN": PULL_TOKEN,
        "NEWSLETTER_READERS__URL": f"http://127.0.0.1:{port}{BASE_PATH}",
        "PYTHONPATH": str(ROOT),
        "PYTHONUNBUFFERED": "1",
    })
    env.update(extra)
    return env


def unsubscribe_token(address: str) -> str:
    """The token the service's unsubscribe link carries for this address (the test secret)."""
    return Tokens((SECRET,)).unsubscribe_token(email_key(address))


class Service:
    """`newsletter serve` in `folder` on a fixed loopback port; start, kill -9, start again."""

    def __init__(self, folder: Path, port: int | None = None, **env: str) -> None:
        self.folder = folder
        self.port = port or free_port()
        self.env = service_env(self.port, **env)
        self.url = f"http://127.0.0.1:{self.port}{BASE_PATH}"
        self.log = folder.parent / f"serve-{self.port}.log"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 20.0) -> Service:
        """Start the process and return once it answers HTTP (GET <base>subscribe)."""
        with open(self.log, "ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "newsletter", "serve", "--port", str(self.port)],
                cwd=self.folder, env=self.env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"newsletter serve exited with {self.process.returncode}:\n{self.output()}")
            try:
                with urllib.request.urlopen(self.url + "subscribe", timeout=2):
                    return self
            except urllib.error.HTTPError:
                return self  # it answers: what it answers is for the tests to judge
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                time.sleep(0.05)
        self.kill()
        raise RuntimeError(f"newsletter serve did not answer on {self.url} in {timeout} s:\n{self.output()}")

    def kill(self) -> None:
        """SIGKILL, as a crash or the OOM killer would: no handler runs, nothing is flushed."""
        if self.process is not None and self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGKILL)
        if self.process is not None:
            self.process.wait(timeout=10)

    def stop(self) -> None:
        """SIGTERM and wait (SIGKILL after 10 s)."""
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.kill()

    def output(self) -> str:
        """Everything the service printed so far (its log), across restarts."""
        return self.log.read_text(encoding="utf-8", errors="replace") if self.log.exists() else ""

    def __enter__(self) -> Service:
        return self.start()

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.stop()
