"""newsletter.providers.base."""
