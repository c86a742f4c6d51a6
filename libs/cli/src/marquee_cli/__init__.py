"""The ``marquee`` command-line tool: local platform, databases, relays, consumers."""
