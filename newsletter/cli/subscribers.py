"""`newsletter subscribers ...`: the subscriber list sub-app."""

from __future__ import annotations

import typer

from newsletter.cli import app

subscribers_app = typer.Typer(
    help="Manage the subscriber list (a CSV file).", no_args_is_help=True, rich_markup_mode=None
)
app.add_typer(subscribers_app, name="subscribers")
