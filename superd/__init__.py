"""superd: the privileged supervisor (configurators, transactions, netinfo)."""
