"""A few real-shaped messages of a return mailbox, for the classification tests.

Written from RFC 3464 (DSN), RFC 5965 (ARF) and the shapes Postfix and Exim produce; the fuller
collection (Gmail, Microsoft 365, Amazon SES...) lives in tests/fixtures/mailbox/.
"""

from __future__ import annotations

import zlib

RETURN_PATH = "bounces@haileyscomet.example.com"
NEWSLETTER_ID = "<177.1.abc.the-fear-of-entering-the-room@haileyscomet.example.com>"


def postfix_dsn(recipient: str = "ada.lovelace@example.com", status: str = "5.1.1", action: str = "failed",
                to: str = RETURN_PATH, message_id: str = "<20261129.ABC123@mx.haileyscomet.example.com>",
                original_id: str = NEWSLETTER_ID, date: str = "Sun, 29 Nov 2026 10:00:00 +0000") -> bytes:
    """A Postfix bounce: multipart/report; report-type=delivery-status with the returned headers."""
    return f"""\
Return-Path: <>
Delivered-To: {to}
Date: {date}
From: MAIL-DAEMON@mx.haileyscomet.example.com (Mail Delivery System)
Subject: Undelivered Mail Returned to Sender
To: {to}
Auto-Submitted: auto-replied
MIME-Version: 1.0
Content-Type: multipart/report; report-type=delivery-status;
 boundary="B1"
Message-Id: {message_id}

This is a MIME-encapsulated message.

--B1
Content-Description: Notification
Content-Type: text/plain; charset=us-ascii

I'm sorry to have to inform you that your message could not
be delivered to one or more recipients.

<{recipient}>: host mx.example.com[192.0.2.1] said: 550 {status} User unknown

--B1
Content-Description: Delivery report
Content-Type: message/delivery-status

Reporting-MTA: dns; mx.haileyscomet.example.com
X-Postfix-Queue-ID: ABC123
Arrival-Date: Sun, 29 Nov 2026 09:59:58 +0000

Final-Recipient: rfc822; {recipient}
Original-Recipient: rfc822;{recipient}
Action: {action}
Status: {status}
Remote-MTA: dns; mx.example.com
Diagnostic-Code: smtp; 550 {status} <{recipient}>: Recipient address rejected: User unknown

--B1
Content-Description: Undelivered Message Headers
Content-Type: text/rfc822-headers

From: Hailey Tai <hailey@haileyscomet.example.com>
To: {recipient}
Subject: The fear of entering the room
Message-ID: {original_id}

--B1--
""".replace("\n", "\r\n").encode()


def exim_failure(recipient: str = "grace.hopper@example.org", to: str = RETURN_PATH) -> bytes:
    """Exim's own (non-DSN) bounce: plain text, the failing address indented after a fixed sentence."""
    return f"""\
Return-path: <>
Envelope-to: {to}
Date: Sun, 29 Nov 2026 11:00:00 +0000
From: Mail Delivery System <Mailer-Daemon@mail.example.org>
To: {to}
Subject: Mail delivery failed: returning message to sender
Message-Id: <E1kEXIM-0001@mail.example.org>
Auto-Submitted: auto-replied

This message was created automatically by mail delivery software.

A message that you sent could not be delivered to one or more of its
recipients. This is a permanent error. The following address(es) failed:

  {recipient}
    SMTP error from remote mail server after RCPT TO:<{recipient}>:
    550 5.1.1 No such user here

------ This is a copy of the message, including all the headers. ------

Message-ID: {NEWSLETTER_ID}
From: Hailey Tai <hailey@haileyscomet.example.com>
To: {recipient}
Subject: The fear of entering the room

Hello.
""".replace("\n", "\r\n").encode()


def arf(recipient: str = "marek@example.net", feedback_type: str = "abuse",
        return_path: str = RETURN_PATH, original_id: str = NEWSLETTER_ID) -> bytes:
    """A Yahoo/AOL-style complaint: multipart/report; report-type=feedback-report (RFC 5965)."""
    return f"""\
Return-Path: <feedback@arf.mail.yahoo.com>
Date: Sun, 29 Nov 2026 12:00:00 +0000
From: Yahoo! Mail AntiSpam Feedback <feedback@arf.mail.yahoo.com>
To: fbl@haileyscomet.example.com
Subject: FW: The fear of entering the room
Message-ID: <arf-0001@arf.mail.yahoo.com>
MIME-Version: 1.0
Content-Type: multipart/report; report-type=feedback-report; boundary="ARF"

--ARF
Content-Type: text/plain; charset="US-ASCII"

This is an email abuse report for an email message received from IP 192.0.2.25.

--ARF
Content-Type: message/feedback-report

Feedback-Type: {feedback_type}
User-Agent: Yahoo!-Mail-Feedback/2.0
Version: 1
Original-Mail-From: <{return_path}>
Arrival-Date: Sun, 29 Nov 2026 09:00:00 +0000
Source-IP: 192.0.2.25
Reported-Domain: haileyscomet.example.com

--ARF
Content-Type: message/rfc822

Return-Path: <{return_path}>
From: Hailey Tai <hailey@haileyscomet.example.com>
To: {recipient}
Subject: The fear of entering the room
Message-ID: {original_id}
Date: Sun, 29 Nov 2026 09:00:00 +0000

Hello.

--ARF--
""".replace("\n", "\r\n").encode()


def unsubscribe_mail(sender: str = "Amira Haddad <amira.haddad@example.com>", subject: str = "unsubscribe",
                     body: str = "", to: str = "unsubscribe@haileyscomet.example.com") -> bytes:
    """What a mail program sends for a List-Unsubscribe mailto: link."""
    return f"""\
From: {sender}
To: {to}
Subject: {subject}
Date: Sun, 29 Nov 2026 13:00:00 +0000
Message-ID: <unsub-{zlib.crc32((sender + subject + body).encode())}@example.com>

{body}
""".replace("\n", "\r\n").encode()


def auto_reply(to: str = RETURN_PATH) -> bytes:
    """An out-of-office reply (RFC 3834): never a bounce, even though it came back to the return path."""
    return f"""\
From: Ada Lovelace <ada.lovelace@example.com>
To: {to}
Subject: Automatic reply: The fear of entering the room
Date: Sun, 29 Nov 2026 14:00:00 +0000
Auto-Submitted: auto-replied
X-Autoreply: yes
Message-ID: <ooo-1@example.com>

I am away until Monday with no access to email. Delivery of your message is delayed until then.
""".replace("\n", "\r\n").encode()
