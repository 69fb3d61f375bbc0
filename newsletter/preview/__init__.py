"""The local preview server. It never imports newsletter.send or newsletter.providers: a preview cannot send.

The face of the package: what other packages use. Each name is imported from its module on
first use, so importing one module of the package never imports the others (`--help` stays fast).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from newsletter.lazy import lazy_names

if TYPE_CHECKING:
    from newsletter.preview.server import DEFAULT_PORT, PreviewServer

_HOMES = {  # module -> the names it gives the face
    "server": ("DEFAULT_PORT", "PreviewServer"),
}
__all__ = ["DEFAULT_PORT", "PreviewServer"]


__getattr__ = lazy_names(__name__, _HOMES)
