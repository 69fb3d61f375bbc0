"""The return mailbox: bounces, complaints and mailto unsubscribes read over IMAP (issue 13).

    imap.py      the IMAP conversation: log in, list unprocessed messages, read them without
                 touching their unread state, move (or flag) the ones recognised
    classify.py  one raw message -> what it is (a DSN, an ARF complaint, an unsubscribe, nothing)
    soft.py      the soft-bounce history (inbox/soft_bounces.jsonl): N temporary failures in M days
    bounces.py   `newsletter subscribers bounces`: read, recognise, record in the inbox, apply, move
    verp.py      the VERP envelope sender of each recipient and its way back

The face of the package. It imports none of its modules, not even for type checking: the SMTP
provider uses verp.py, and bounces.py reads the send ledger, which sits above the providers;
an import seen here would join the two into a cycle. Import from the modules themselves.
"""

from __future__ import annotations
