"""Event sources, one package each: parse what arrives, match routes, call the kernel."""
