"""The README documents every configuration key, and CI runs the README's test command."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

from newsletter.config import SECTIONS

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")


def test_every_config_key_is_in_the_readme_reference() -> None:
    for section, cls in SECTIONS.items():
        for f in dataclasses.fields(cls):
            key = f.metadata.get("key", f.name)
            assert f"`[{section}] {key}`" in README, f"[{section}] {key} is not documented in README.md"


def test_ci_runs_the_readme_test_command() -> None:
    match = re.search(r"## Running the tests\s+```sh\n(.+?)\n```", README)
    assert match, "README has no 'Running the tests' command"
    command = match.group(1).strip()
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8").splitlines()
    assert command in ci, f"{command!r} is not a line of .ci/run"
