"""newsletter.preview.server."""
