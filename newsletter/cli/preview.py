"""CLI commands: preview (to be built)."""

from __future__ import annotations
