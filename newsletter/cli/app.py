"""The Typer app object and how its help is shown; the command modules register on it.

It lives below the command modules (they import it; it imports none of them), so the package
face, newsletter/cli/__init__.py, can import them all in --help order with no import cycle.
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


def keep_examples_whole(group: typer.Typer) -> None:
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
            keep_examples_whole(sub.typer_instance)


def arguments_by_metavar() -> None:
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
