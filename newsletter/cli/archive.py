"""CLI commands: archive (to be built)."""

from __future__ import annotations
