"""The ways out: the outbox (files), SMTP and SendGrid, behind one Protocol (providers.base).

This face chooses and builds a provider from the settings; the concrete providers are imported
only when one is built, so importing this package stays light. A provider never touches the
subscriber list, the ledger or the environment: the send loop (newsletter.send) does.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from newsletter.errors import ProviderError
from newsletter.models import PROVIDERS, ProviderName
from newsletter.providers.base import Credentials, Letter, Outcome, Outgoing, Provider, Report, State
from newsletter.providers.retry import Exhausted, InDoubt, RateLimited, RetryPolicy, Transient
from newsletter.tokens import parse_secrets

if TYPE_CHECKING:
    from newsletter.config import Settings

__all__ = [
    "PROVIDERS", "Credentials", "Exhausted", "InDoubt", "Letter", "Outcome", "Outgoing", "Provider", "ProviderName",
    "RateLimited", "Report", "RetryPolicy", "State", "Transient", "batch_size", "make_provider",
    "missing_credentials", "settings_problems",
]


def make_provider(settings: Settings, credentials: Credentials, policy: RetryPolicy | None = None,
                  *, test_send: bool = False) -> Provider:
    """Map Settings ([delivery] provider and its section) to a ready provider."""
    name = settings.delivery.provider
    policy = policy or RetryPolicy()
    if name == ProviderName.SENDGRID:
        from newsletter.providers.sendgrid.provider import SendGridProvider

        return SendGridProvider.from_settings(settings, credentials.sendgrid_api_key, policy)
    if name == ProviderName.SMTP:
        from newsletter.providers.smtp import SMTPProvider

        return SMTPProvider.from_settings(settings, credentials.smtp_password, policy)
    if name == ProviderName.OUTBOX:
        from newsletter.providers.outbox import OutboxProvider

        return OutboxProvider.from_settings(settings, test_send=test_send)
    raise ProviderError(f"{settings.config_path}: [delivery] provider: unknown provider {name!r}")


def batch_size(settings: Settings) -> int:
    """Recipients per batch for the chosen provider: what its `batch_size` will be, known before it is built."""
    name = settings.delivery.provider
    if name == ProviderName.SENDGRID:
        return settings.sendgrid.batch_size
    if name == ProviderName.SMTP:
        from newsletter.providers.smtp import BATCH_SIZE

        return BATCH_SIZE
    from newsletter.providers.outbox import BATCH_SIZE as OUTBOX_BATCH_SIZE

    return OUTBOX_BATCH_SIZE


def settings_problems(letter: Letter) -> list[str]:
    """What the chosen provider would refuse in every request of this letter, before anything goes out."""
    if letter.settings.delivery.provider == ProviderName.SENDGRID:
        from newsletter.providers.sendgrid.body import settings_problems as sendgrid_problems

        return sendgrid_problems(letter)
    return []


def missing_credentials(settings: Settings, credentials: Credentials) -> ProviderError | None:
    """The error to raise before anything goes out when the chosen provider lacks a secret."""
    name = settings.delivery.provider
    if name == ProviderName.SENDGRID and not credentials.sendgrid_api_key:
        return ProviderError("SENDGRID_API_KEY is not set: the sendgrid provider needs an API key",
                             hint="export SENDGRID_API_KEY=... (a key with the Mail Send permission)")
    if name == ProviderName.SMTP and settings.smtp.username and not credentials.smtp_password:
        env = settings.smtp.password_env
        return ProviderError(f"{env} is not set: [smtp] username is {settings.smtp.username!r} "
                             "but there is no password", hint=f"export {env}=... or leave username empty")
    if (name == ProviderName.SMTP and settings.smtp.return_path and settings.smtp.verp
            and not parse_secrets(credentials.unsubscribe_secret)):
        env = settings.delivery.unsubscribe_secret_env
        return ProviderError(f"{env} is not set: [smtp] verp signs each recipient's return path with it",
                             hint=f"export {env}=<a long random string>, or set [smtp] verp = false")
    return None
