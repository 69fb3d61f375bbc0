"""newsletter.render.compose."""
