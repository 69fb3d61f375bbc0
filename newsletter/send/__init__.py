"""Sending an issue: the only package that combines render, subscribers, providers and the ledger.

The face of the package: what other packages use. Each name is imported from its module on
first use, so importing one module of the package never imports the others (`--help` stays fast).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from newsletter.lazy import lazy_names

if TYPE_CHECKING:
    from newsletter.send.deliver import BatchProgress, SendEvents
    from newsletter.send.overview import issue_rows
    from newsletter.send.plan import SendOptions, SendPlan, prepare_send, run_send
    from newsletter.send.schedule import CancelResult, cancel_scheduled
    from newsletter.send.status import SendStatus, send_status
    from newsletter.send.suppressions import SyncResult, sync_suppressions

_HOMES = {  # module -> the names it gives the face
    "plan": ("SendOptions", "SendPlan", "prepare_send", "run_send"),
    "deliver": ("BatchProgress", "SendEvents"),
    "overview": ("issue_rows",),
    "schedule": ("CancelResult", "cancel_scheduled"),
    "status": ("SendStatus", "send_status"),
    "suppressions": ("SyncResult", "sync_suppressions"),
}
__all__ = [
    "BatchProgress", "CancelResult", "SendEvents", "SendOptions", "SendPlan", "SendStatus", "SyncResult",
    "cancel_scheduled", "issue_rows", "prepare_send", "run_send", "send_status", "sync_suppressions",
]


__getattr__ = lazy_names(__name__, _HOMES)
