"""Render benchmark (issue: render under 50 ms, cold --help under 0.3 s, cold build under 1 s).

Run by hand from the repository root, in the project's virtual environment:

    python bench/bench_render.py

Prints the median in-process render time of the seed issue over 20 runs, and the median
wall time of 5 cold `newsletter --help` and `newsletter build` processes.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SLUG = "the-fear-of-entering-the-room"


def median_ms(samples: list[float]) -> float:
    return statistics.median(samples) * 1000


def render_in_process(runs: int = 20) -> list[float]:
    from newsletter.config import load_settings
    from newsletter.issues import find_issue
    from newsletter.render.compose import render_issue

    settings = load_settings(ROOT / "newsletter.toml")
    issue = find_issue(settings.issues_dir, SLUG)
    render_issue(issue, settings)  # imports and template compilation are not the render
    samples = []
    for _ in range(runs):
        start = time.perf_counter()
        render_issue(issue, settings)
        samples.append(time.perf_counter() - start)
    return samples


def cold(args: list[str], runs: int = 5) -> list[float]:
    samples = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run([sys.executable, "-m", "newsletter", *args], cwd=ROOT, check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        samples.append(time.perf_counter() - start)
    return samples


def main() -> None:
    render = median_ms(render_in_process())
    help_ms = median_ms(cold(["--help"]))
    with tempfile.TemporaryDirectory() as out:
        build_ms = median_ms(cold(["build", SLUG, "--out", out]))
    print(f"render (in process, median of 20): {render:7.1f} ms   target < 50 ms")
    print(f"cold newsletter --help (median of 5): {help_ms:7.1f} ms   target < 300 ms")
    print(f"cold newsletter build (median of 5):  {build_ms:7.1f} ms   target < 1000 ms")


if __name__ == "__main__":
    main()
