"""What ``marquee dev`` starts its services with."""

from __future__ import annotations

from pathlib import Path

from rich.console import Console

from marquee_cli.dev import DevOptions, _Dev
from marquee_cli.infra import Piece
from marquee_platform.service import ServiceSpec
from marquee_platform.settings import ServiceSettings

SPECS = {
    "gateway": ServiceSpec("gateway", ServiceSettings, "marquee_gateway.main:create_app", 8000),
    "auth": ServiceSpec("auth", ServiceSettings, "marquee_auth.main:create_app", 8001, Path("m")),
}
URLS = {
    Piece.POSTGRES: "postgresql://postgres@127.0.0.1:5432/postgres",
    Piece.REDIS: "redis://127.0.0.1:6379/0",
    Piece.KAFKA: "127.0.0.1:9092",
}


def test_uvicorn_never_rewrites_the_client_address_from_forwarded_headers(
    tmp_path: Path,
) -> None:
    # Every client of make dev is 127.0.0.1, which uvicorn trusts for X-Forwarded-For by
    # default: left on, any client could pick its address per request.
    processes = _Dev(DevOptions(state_dir=tmp_path), Console())._process_specs(SPECS, URLS)
    servers = [process for process in processes if "uvicorn" in process.argv]
    assert {process.name for process in servers} == {"gateway", "auth"}
    for process in servers:
        assert "--no-proxy-headers" in process.argv, process.argv
