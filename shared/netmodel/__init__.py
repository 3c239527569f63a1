"""The object model of network primitives (pure: no netlink, D-Bus or OVSDB).

Pipeline, as frontd and superd run it:
canonicalize (request → canonical attrs) → build model (Network, Bond, …)
→ validate (each primitive itself, then the request as a whole against the
netinfo snapshot) → plan (ordered operations, serializable) → apply → verify
→ persist. The last three live in superd.
"""
