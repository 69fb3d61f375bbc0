"""The Typer front end: parse, call one library function, present the result.

The only package that prints, prompts, or picks exit codes. Each module registers its commands
on `app`; heavy libraries are imported inside the commands so that `--help` stays fast.
"""

from __future__ import annotations

from typing import Annotated

import typer

from newsletter import __version__

app = typer.Typer(
    name="newsletter",
    help="Publish an email newsletter from a folder of Markdown essays.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,  # the process may hold an API key
    add_completion=False,
    rich_markup_mode=None,
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"newsletter {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option("--version", callback=_version, is_eager=True, help="Show the version and exit."),
    ] = False,
) -> None:
    """Publish an email newsletter from a folder of Markdown essays.

    Example: newsletter build the-fear-of-entering-the-room
    """


# Registering commands: each module adds its own to `app` (order = order in --help).
# isort: off
from newsletter.cli import issues as _issues  # noqa: E402,F401
from newsletter.cli import preview as _preview  # noqa: E402,F401
from newsletter.cli import send as _send  # noqa: E402,F401
from newsletter.cli import subscribers as _subscribers  # noqa: E402,F401
from newsletter.cli import archive as _archive  # noqa: E402,F401
# isort: on


def main() -> None:
    """Run the CLI (the console script and python -m newsletter)."""
    app()
