"""The demo (``make demo``, ``python -m demo``) and its lab of network
namespaces, which the functional tests and the benchmarks share. Not part of
the installed daemons."""
