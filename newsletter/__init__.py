"""newsletter: publish an email newsletter from a folder of Markdown essays."""

__version__ = "0.1.0"
