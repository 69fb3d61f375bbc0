"""newsletter.send.plan."""
