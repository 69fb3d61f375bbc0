"""The reader service as a WSGI application object, for any WSGI server behind the writer's proxy.

    NEWSLETTER_CONFIG=/srv/letter/newsletter.toml gunicorn -w 1 --threads 8 newsletter.cli.wsgi:application

Built from the environment as `newsletter serve` builds it (the same secrets, the same checks);
a broken newsletter.toml or a missing secret stops the server at start with one line.
"""

from __future__ import annotations

from newsletter.cli.serve import application_from_environment

application = application_from_environment()
