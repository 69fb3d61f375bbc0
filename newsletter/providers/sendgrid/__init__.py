"""newsletter.providers.sendgrid.provider."""
