"""The Typer front end: parse, call one library function, present the result.

The only package that prints, prompts, picks exit codes or reads secrets from the environment.
Each command module registers its commands on `app` (newsletter/cli/app.py); importing them here,
in the order --help lists them, is what makes the commands exist. Heavy libraries are imported
inside the commands so that `--help` stays fast.
"""

from __future__ import annotations

from newsletter.cli import archive, issues, preview, report, send, serve, subscribers
from newsletter.cli.app import app, arguments_by_metavar, keep_examples_whole

__all__ = ["app", "main"]
COMMAND_MODULES = (issues, preview, send, report, subscribers, archive, serve)  # --help lists them in this order

_ORDER = [module.__name__ for module in COMMAND_MODULES]
app.registered_commands.sort(key=lambda info: _ORDER.index(getattr(info.callback, "__module__", "")))
keep_examples_whole(app)
arguments_by_metavar()


def main() -> None:
    """Run the CLI (the console script and python -m newsletter)."""
    app()
