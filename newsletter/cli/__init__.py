"""The Typer front end: parse, call one library function, present the result.

The only package that prints, prompts, or picks exit codes. Each module registers its commands
on `app`; heavy libraries are imported inside the commands so that `--help` stays fast.
"""

from __future__ import annotations

import inspect
import re
from typing import Annotated, Any

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


def _keep_examples_whole(group: typer.Typer) -> None:
    """Print every command's `Example:` paragraph as written, never re-wrapped.

    Help re-wraps paragraphs to the terminal's width, and a command broken over two lines no
    longer works when pasted. A paragraph whose first line is a lone \\b is printed as it is.
    """
    for info in group.registered_commands:
        doc = info.help if info.help is not None else inspect.getdoc(info.callback)
        if doc:
            info.help = re.sub(r"(^|\n\n)(?=Examples?:)", "\\1\b\n", doc)
    for sub in group.registered_groups:
        if sub.typer_instance is not None:
            _keep_examples_whole(sub.typer_instance)


def _arguments_by_metavar() -> None:
    """Show an argument with a metavar by that alone: 'ADDRESS', not 'ADDRESS <list[str]>'.

    Typer (0.29) prints every argument's Python type beside its name; a reader needs the name.
    Older Typers do not print it and lack the method: then this does nothing.
    """
    from typer.core import TyperArgument

    shown = getattr(TyperArgument, "display_type_rich", None)
    if shown is None:
        return

    def display_type_rich(self: TyperArgument, ctx: Any) -> str | None:
        return None if self.metavar is not None else shown(self, ctx)

    TyperArgument.display_type_rich = display_type_rich  # type: ignore[method-assign,assignment]


_keep_examples_whole(app)
_arguments_by_metavar()


def main() -> None:
    """Run the CLI (the console script and python -m newsletter)."""
    app()
