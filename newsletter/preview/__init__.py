"""The local preview server. It never imports newsletter.send or newsletter.providers: a preview cannot send.

The face of the package: what other packages use. Each name is imported from its module on
first use, so importing one module of the package never imports the others (`--help` stays fast).
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from newsletter.preview.server import DEFAULT_PORT, PreviewServer

_HOMES = {  # module -> the names it gives the face
    "server": ("DEFAULT_PORT", "PreviewServer"),
}
__all__ = ["DEFAULT_PORT", "PreviewServer"]


def __getattr__(name: str) -> Any:
    """Import the module that defines `name` the first time someone asks for it."""
    for module, names in _HOMES.items():
        if name in names:
            return getattr(import_module(f"{__name__}.{module}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
