"""The reader service (`newsletter serve`): subscribe, confirm, unsubscribe, SendGrid's events -> the inbox.

The face of the package. The service never touches the subscriber list: it appends what readers
did to the inbox (newsletter.subscribers.inbox), which `newsletter subscribers apply` folds in.
"""

from __future__ import annotations

from newsletter.web.app import create_app

__all__ = ["create_app"]
