"""SendGrid: the provider (provider.py), its HTTP calls (api.py), the pure request body (body.py)
and the bodies built ahead in a worker process (prebuild.py)."""
