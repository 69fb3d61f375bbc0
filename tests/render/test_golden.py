"""The seed issue renders exactly as its reviewed golden files (python -m tests.golden --update)."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from newsletter.cli import app
from tests.golden import GOLDEN, SLUG, current


@pytest.mark.parametrize("name", ["email.html", "email.txt"])
def test_seed_matches_golden(name: str) -> None:
    expected = (GOLDEN / SLUG / name).read_text(encoding="utf-8")
    assert current()[name] == expected, f"{name} changed: review it, then python -m tests.golden --update"


def test_build_writes_the_golden_files(newsletter_dir, runner: CliRunner) -> None:  # type: ignore[no-untyped-def]
    result = runner.invoke(app, ["build", SLUG, "--out", "out"], env={"NEWSLETTER_UNSUBSCRIBE_SECRET": ""})
    assert result.exit_code == 0, result.output
    for name in ("email.html", "email.txt"):
        written = (newsletter_dir / "out" / SLUG / name).read_text(encoding="utf-8")
        assert written == (GOLDEN / SLUG / name).read_text(encoding="utf-8")
