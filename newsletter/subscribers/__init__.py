"""The subscriber list (a CSV file) and everything done to it.

The face of the package: what other packages use. Each name is imported from its module on
first use, so importing one module of the package never imports the others (`--help` stays fast).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from newsletter.lazy import lazy_names

if TYPE_CHECKING:
    from newsletter.subscribers.changes import add_subscribers, apply_statuses, forget_subscribers, unsubscribe
    from newsletter.subscribers.check import check_list, fix_list
    from newsletter.subscribers.exports import ImportReport, export_subscribers, import_subscribers, write_export
    from newsletter.subscribers.platforms import PLATFORMS
    from newsletter.subscribers.schema import COLUMNS, email_key, normalize_email, split_mailbox
    from newsletter.subscribers.stats import ListStats, list_stats
    from newsletter.subscribers.store import count_subscribers, iter_active, select_subscribers

_HOMES = {  # module -> the names it gives the face
    "store": ("count_subscribers", "iter_active", "select_subscribers"),
    "changes": ("add_subscribers", "apply_statuses", "forget_subscribers", "unsubscribe"),
    "schema": ("COLUMNS", "email_key", "normalize_email", "split_mailbox"),
    "check": ("check_list", "fix_list"),
    "stats": ("ListStats", "list_stats"),
    "exports": ("ImportReport", "export_subscribers", "import_subscribers", "write_export"),
    "platforms": ("PLATFORMS",),
}
__all__ = [
    "COLUMNS", "ImportReport", "ListStats", "PLATFORMS", "add_subscribers", "apply_statuses", "check_list",
    "count_subscribers", "email_key", "export_subscribers", "fix_list", "forget_subscribers", "import_subscribers",
    "iter_active", "list_stats", "normalize_email", "select_subscribers", "split_mailbox", "unsubscribe",
    "write_export",
]


__getattr__ = lazy_names(__name__, _HOMES)
