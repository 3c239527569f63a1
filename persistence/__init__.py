"""Persistence of the network configuration.

``atomic`` holds the crash-safe file primitives (temporary file, fsync,
rename, fsync of the folder); ``unified`` the running and persistent
configuration trees built on them.
"""
