"""The static web archive: pages, feed and sitemap, written into a folder of its own.

The face of the package: what other packages use. Each name is imported from its module on
first use, so importing one module of the package never imports the others (`--help` stays fast).
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from newsletter.archive.site import SiteReport, build_site, render_site, write_site

_HOMES = {  # module -> the names it gives the face
    "site": ("SiteReport", "build_site", "render_site", "write_site"),
}
__all__ = ["SiteReport", "build_site", "render_site", "write_site"]


def __getattr__(name: str) -> Any:
    """Import the module that defines `name` the first time someone asks for it."""
    for module, names in _HOMES.items():
        if name in names:
            return getattr(import_module(f"{__name__}.{module}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
