"""Configurators: interchangeable ways of talking to the kernel, one module each."""
