"""frontd: the unprivileged API daemon and the admin CLI."""
