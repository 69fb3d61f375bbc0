"""CLI commands: send (to be built)."""

from __future__ import annotations
