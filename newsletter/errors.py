"""The exceptions the library raises for user errors.

The CLI turns a NewsletterError into one line on stderr (plus a hint) and exit status 1.
Anything else is a bug and keeps its traceback.
"""


class NewsletterError(Exception):
    """A problem the user can fix: bad input, a missing file, a refused request."""

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message


class ConfigError(NewsletterError):
    """newsletter.toml (or its environment overrides) is wrong; may carry several problems."""

    def __init__(self, problems: list[str], hint: str | None = None) -> None:
        self.problems = problems
        super().__init__("; ".join(problems) if len(problems) == 1 else "\n".join(problems), hint)


class IssueError(NewsletterError):
    """An issue file cannot be found, read or parsed."""


class RenderError(NewsletterError):
    """A template or the essay could not be rendered."""


class SubscriberError(NewsletterError):
    """The subscriber file or a subscriber command's input is wrong."""


class ProviderError(NewsletterError):
    """A delivery provider refused or failed in a way that stops the send."""


class MailboxError(NewsletterError):
    """The return mailbox (IMAP) cannot be reached, logged in to or read."""


class SendError(NewsletterError):
    """A send cannot start or go on (refused before anything goes out)."""


class RecipientError(NewsletterError):
    """One recipient's message cannot be built or handed over (an address the transport cannot
    carry, a name that cannot be put in a header). That recipient fails with this reason; the rest
    of the send goes on."""


class FileWriteError(NewsletterError, OSError):
    """A file or folder cannot be written (a full disk, a read-only folder, a name too long).

    Also an OSError, with its errno, so code that handled the OSError before still does.
    """

    def __init__(self, path: object, exc: OSError, hint: str | None = None) -> None:
        NewsletterError.__init__(self, f"{path}: cannot write: {exc.strerror or exc}", hint)
        self.errno, self.strerror, self.filename = exc.errno, exc.strerror, str(path)
