"""newsletter.archive.site."""
