"""The confirmation email of double opt-in, rendered with the newsletter's templates and sent by its provider.

It goes out through the configured way out (the outbox writes outbox/confirmations/*.eml; SMTP
and SendGrid really send) as a one-recipient "issue" whose slug is `confirmations`. It carries
no unsubscribe link (nobody is subscribed yet) and nothing the reader typed but the address:
a name typed into a public form must never reach a stranger's inbox, or the form would relay spam.
"""

from __future__ import annotations

import itertools
import time
from dataclasses import replace

from markupsafe import Markup

from newsletter.config import Settings
from newsletter.errors import ProviderError
from newsletter.models import Recipient, RenderedEmail
from newsletter.providers import Credentials, Letter, Outcome, Outgoing, RetryPolicy, State, make_provider
from newsletter.render import base_url, render_template, template_env, template_source
from newsletter.render.compose import PREHEADER_SPACER, inline_css

SLUG = "confirmations"  # outbox/confirmations/, and the issue SendGrid's events name
# A reader waits for the page: a few quick retries, never the minutes a batch send may wait.
POLICY = RetryPolicy(attempts=2, base_delay=0.5, max_delay=2.0, max_rate_wait=5.0, max_rate_limits=2)


def confirmation_settings(settings: Settings) -> Settings:
    """The settings a confirmation is sent with: no List-Unsubscribe and no unsubscribe group."""
    return replace(
        settings,
        delivery=replace(settings.delivery, unsubscribe_url="", unsubscribe_mailto=""),
        sendgrid=replace(settings.sendgrid, unsubscribe_group_id=None),
        readers=replace(settings.readers, url=""),
    )


class ConfirmationMailer:
    """Render and send one confirmation email at a time (each request thread its own provider)."""

    def __init__(self, settings: Settings, credentials: Credentials, policy: RetryPolicy = POLICY) -> None:
        self.settings = confirmation_settings(settings)
        self.credentials = credentials
        self.policy = policy
        self.env = template_env(settings)
        self.css = template_source(self.env, "email.css")
        self.hours = f"{settings.readers.confirm_hours:g}"
        self._numbers = itertools.count(time.time_ns() // 1000)  # file names sort in sending order

    def render(self, confirm_url: str) -> RenderedEmail:
        """The confirmation email with its link (the same for HTML and text)."""
        nl = self.settings.newsletter
        subject = f"Confirm your subscription to {nl.name}"
        preheader = f"One click and you will get {nl.name} by email."
        context: dict[str, object] = {
            "lang": nl.language, "dir": nl.direction, "newsletter_name": nl.name, "description": nl.description,
            "postal_address": nl.postal_address, "home_url": base_url(self.settings), "subject": subject,
            "preheader": preheader, "confirm_url": confirm_url, "confirm_hours": self.hours,
        }
        html = inline_css(render_template(self.env, "confirm_email.html", {
            **context, "css": Markup(self.css), "preheader_spacer": PREHEADER_SPACER}))
        text = render_template(self.env, "confirm_email.txt", context)
        return RenderedEmail(slug=SLUG, subject=subject, preheader=preheader, html=html, text=text,
                             web_url=base_url(self.settings), links=(confirm_url,))

    def send(self, email: str, confirm_url: str) -> None:
        """Send the confirmation to `email`; ProviderError when it did not go out."""
        letter = Letter(self.render(confirm_url), self.settings)
        outcomes: list[Outcome] = []
        provider = make_provider(self.settings, self.credentials, self.policy)
        try:
            provider.deliver(letter, [Outgoing(next(self._numbers), Recipient(email=email))], outcomes.append)
        finally:
            provider.close()
        failed = [o for o in outcomes if o.state == State.FAILED]
        if failed or not outcomes:
            reason = failed[0].detail if failed else "the provider reported nothing"
            raise ProviderError(f"confirmation email not sent: {reason.replace(email, '<address>')}")
