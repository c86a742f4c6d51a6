"""What ``marquee dev`` starts its services with."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest
from rich.console import Console

from marquee_cli import dev as dev_module
from marquee_cli.dev import DevError, DevOptions, _Dev, parse_replicas
from marquee_cli.infra import Piece
from marquee_cli.supervisor import Supervisor
from marquee_platform.service import ServiceSpec
from marquee_platform.settings import ServiceSettings
from marquee_testing.localinfra import free_port

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


SEARCH = ServiceSpec(
    "search",
    ServiceSettings,
    "marquee_search.main:create_app",
    8003,
    Path("m"),
    consumer_factory="marquee_search.consumers:create_consumer",
)


def test_replicas_are_parsed_with_errors_that_say_what_to_write() -> None:
    known = ["gateway", "auth", "search"]
    assert parse_replicas("search=2, gateway=3,relay=2", known) == {
        "search": 2,
        "gateway": 3,
        "relay": 2,
    }
    assert parse_replicas("", known) == {}
    for text, complaint in [
        ("search", "NAME=COUNT"),
        ("search=two", "NAME=COUNT"),
        ("serch=2", "not a service"),
        ("search=0", "between 1 and 9"),
        ("search=10", "between 1 and 9"),
    ]:
        with pytest.raises(ValueError, match=complaint):
            parse_replicas(text, known)


def test_each_replica_gets_its_own_port_and_the_gateway_balances_over_them(
    tmp_path: Path,
) -> None:
    specs = {**SPECS, "search": SEARCH}
    options = DevOptions(state_dir=tmp_path, replicas={"search": 2, "auth": 2, "relay": 2})
    processes = {p.name: p for p in _Dev(options, Console())._process_specs(specs, URLS)}
    assert set(processes) == {
        "gateway",
        "auth-1",
        "auth-2",
        "search-1",
        "search-2",
        "relay-1",
        "relay-2",
        "search-consumer-1",
        "search-consumer-2",
    }
    assert processes["search-1"].port == 8003
    assert processes["search-2"].port == 8013
    argv = processes["search-2"].argv
    assert argv[argv.index("--port") + 1] == "8013"
    urls = json.loads(processes["gateway"].env["GATEWAY_SERVICE_URLS"])
    assert urls == {
        "auth": ["http://127.0.0.1:8001", "http://127.0.0.1:8011"],
        "search": ["http://127.0.0.1:8003", "http://127.0.0.1:8013"],
    }
    metrics_ports = {
        processes[name].argv[processes[name].argv.index("--metrics-port") + 1]
        for name in ("relay-1", "relay-2", "search-consumer-1", "search-consumer-2")
    }
    assert metrics_ports == {"9100", "9110", "9103", "9113"}, "no two workers share a port"


def test_gateway_replicas_accept_from_one_shared_socket(tmp_path: Path) -> None:
    port = free_port()  # the test binds it: never a developer's 8000
    options = DevOptions(state_dir=tmp_path, port_offset=port - 8000, replicas={"gateway": 2})
    dev = _Dev(options, Console())
    try:
        processes = {p.name: p for p in dev._process_specs(SPECS, URLS)}
        first, second = processes["gateway-1"], processes["gateway-2"]
        assert first.pass_fds == second.pass_fds
        assert len(first.pass_fds) == 1
        fd = str(first.pass_fds[0])
        for process in (first, second):
            assert process.argv[process.argv.index("--fd") + 1] == fd
            assert "--port" not in process.argv
        assert first.port == second.port == port  # both answer the health probe there
        assert dev.shared_sockets[0].getsockname() == ("127.0.0.1", port)
    finally:
        dev._shutdown_infrastructure()


NOTIFICATIONS = ServiceSpec(
    "notifications", ServiceSettings, "marquee_notifications.main:create_app", 8007, Path("m")
)


def test_the_smtp_sink_runs_beside_notifications_on_loopback_and_receives_its_mail(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("NOTIFICATIONS_SMTP_URL", raising=False)
    options = DevOptions(state_dir=tmp_path, port_offset=100)
    dev = _Dev(options, Console())
    specs = {**SPECS, "notifications": NOTIFICATIONS}
    processes = {p.name: p for p in dev._process_specs(specs, URLS)}
    sink = processes["smtp-sink"]
    argv = list(sink.argv)
    assert argv[1:3] == ["-m", "marquee_notifications.sink"]
    assert argv[argv.index("--host") + 1] == "127.0.0.1"
    assert argv[argv.index("--port") + 1] == "1125"
    service_env = processes["notifications"].env
    assert argv[argv.index("--database-url") + 1] == service_env["NOTIFICATIONS_DATABASE_URL"]
    assert service_env["NOTIFICATIONS_SMTP_URL"] == "smtp://127.0.0.1:1125"
    assert service_env["NOTIFICATIONS_DEV_OUTBOX"] == "true"
    assert sink.log_path == tmp_path / "logs" / "smtp-sink.log"
    assert sink.port is None, "the supervisor's health probe speaks HTTP, not SMTP"
    assert dev.dev_mail_url == "http://127.0.0.1:8107/api/v1/notifications/dev/mail"

    dev.supervisor = Supervisor(list(processes.values()))
    console = Console(record=True, width=200)
    console.print(dev._render())
    table = console.export_text()
    sink_row = next(line for line in table.splitlines() if "smtp-sink" in line)
    assert "smtp://127.0.0.1:1125" in sink_row
    assert dev.dev_mail_url in table


def test_no_sink_without_notifications_or_when_the_operator_names_an_smtp_server(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("NOTIFICATIONS_SMTP_URL", raising=False)
    processes = _Dev(DevOptions(state_dir=tmp_path), Console())._process_specs(SPECS, URLS)
    assert "smtp-sink" not in {p.name for p in processes}
    assert "NOTIFICATIONS_SMTP_URL" not in processes[0].env

    monkeypatch.setenv("NOTIFICATIONS_SMTP_URL", "smtp://mail.example.com:587")
    specs = {**SPECS, "notifications": NOTIFICATIONS}
    processes = _Dev(DevOptions(state_dir=tmp_path), Console())._process_specs(specs, URLS)
    assert "smtp-sink" not in {p.name for p in processes}
    assert processes[0].env["NOTIFICATIONS_SMTP_URL"] == "smtp://mail.example.com:587"


def test_a_taken_smtp_sink_port_stops_dev_before_anything_starts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("NOTIFICATIONS_SMTP_URL", raising=False)
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        taken = listener.getsockname()[1]
        monkeypatch.setattr(dev_module, "SMTP_SINK_PORT", taken)
        dev = _Dev(DevOptions(state_dir=tmp_path), Console())
        with pytest.raises(DevError, match=f"smtp-sink {taken}"):
            dev._check_ports({"notifications": NOTIFICATIONS})
