"""``python -m marquee_cli``: the ``marquee`` command without relying on PATH (marquee dev
starts its consumers this way)."""

from marquee_cli.main import app

app(prog_name="marquee")
