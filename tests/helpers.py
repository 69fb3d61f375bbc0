"""Assertions shared by the CLI tests."""

from __future__ import annotations

from typer.testing import Result


def one_error_line(result: Result) -> str:
    """A user error: exit 1, no traceback, exactly one 'error:' line on stderr; return that line."""
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, result.stderr
    return errors[0]
