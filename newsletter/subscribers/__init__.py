"""newsletter.subscribers.store."""
