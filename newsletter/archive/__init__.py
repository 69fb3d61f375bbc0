"""The static web archive: pages, feed and sitemap, written into a folder of its own.

The face of the package: what other packages use. Each name is imported from its module on
first use, so importing one module of the package never imports the others (`--help` stays fast).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from newsletter.lazy import lazy_names

if TYPE_CHECKING:
    from newsletter.archive.site import SiteReport, build_site, render_site, write_site

_HOMES = {  # module -> the names it gives the face
    "site": ("SiteReport", "build_site", "render_site", "write_site"),
}
__all__ = ["SiteReport", "build_site", "render_site", "write_site"]


__getattr__ = lazy_names(__name__, _HOMES)
