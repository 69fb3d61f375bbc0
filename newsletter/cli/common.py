"""What every command shares: the console, the error boundary, common options, settings."""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer

from newsletter.errors import ConfigError, NewsletterError

if TYPE_CHECKING:
    from newsletter.config import Settings

F = TypeVar("F", bound=Callable[..., Any])

IssueArgument = Annotated[str, typer.Argument(help="The issue: its slug or the path of its .md file.", metavar="ISSUE")]

ConfigOption = Annotated[
    Path | None,
    typer.Option(
        "--config",
        "-c",
        help="Path to newsletter.toml (default: ./newsletter.toml).",
        envvar="NEWSLETTER_CONFIG",
        dir_okay=False,
        show_default=False,
        metavar="PATH",
    ),
]
SubscribersOption = Annotated[
    Path | None,
    typer.Option("--subscribers", help="Subscriber CSV (default: [subscribers] file).", show_default=False,
                 metavar="PATH"),
]


def echo(message: str = "", *, err: bool = False) -> None:
    """Print a line: the only output path, so tests and pipes see plain text."""
    typer.echo(message, err=err)


def fail(error: NewsletterError) -> None:
    """Report a user error on stderr and exit 1: one line per problem, then the hint."""
    problems = error.problems if isinstance(error, ConfigError) else [error.message]
    for line in problems:
        typer.echo(f"error: {line}", err=True)
    if error.hint:
        typer.echo(f"hint: {error.hint}", err=True)
    raise typer.Exit(1)


def handles_errors(fn: F) -> F:
    """Turn NewsletterError into one clear line and exit 1; bugs keep their traceback."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except NewsletterError as exc:
            fail(exc)
        except KeyboardInterrupt:
            typer.echo("interrupted", err=True)
            raise typer.Exit(130) from None

    return wrapper  # type: ignore[return-value]


def settings_for(config: Path | None, **overrides: Any) -> Settings:
    """Load Settings with CLI overrides given as section__key=value (None dropped)."""
    from newsletter.config import load_settings

    dotted = {k.replace("__", "."): v for k, v in overrides.items() if v is not None}
    return load_settings(config, dotted)


def plural(n: int, word: str, plural_form: str = "") -> str:
    """'1 recipient', '2 recipients', '1,000 batches' (with plural_form='batches')."""
    return f"{n:,} {word if n == 1 else plural_form or word + 's'}"


def unsubscribe_secret(settings: Settings) -> str:
    """The key of the unsubscribe links' tokens, from the variable [delivery] unsubscribe_secret_env names."""
    return os.environ.get(settings.delivery.unsubscribe_secret_env, "")


def unsubscribe_secrets(settings: Settings) -> tuple[str, ...]:
    """The same variable as a list of secrets, newest first (comma-separated, for rotation)."""
    from newsletter.tokens import parse_secrets

    return parse_secrets(unsubscribe_secret(settings))


def readers_token(settings: Settings) -> str:
    """The bearer token of the reader service's events, from the variable [readers] token_env names."""
    return os.environ.get(settings.readers.token_env, "").strip()


def print_checks(report: object, *, verbose: bool = True) -> None:
    """Print a CheckReport: one line per finding, then the counts."""
    from newsletter.render import CheckReport

    assert isinstance(report, CheckReport)
    order = {"error": 0, "warning": 1, "ok": 2}
    for result in sorted(report.results, key=lambda r: order.get(r.level, 3)):
        if verbose or result.level != "ok":
            echo(f"  {result.level:<8} {result.message}")
    e, w = len(report.errors), len(report.warnings)
    echo(f"{plural(e, 'error')}, {plural(w, 'warning')}")
