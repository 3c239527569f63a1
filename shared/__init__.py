"""Code shared by frontd and superd: errors, configuration, wire formats."""
