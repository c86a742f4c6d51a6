"""The purchase path as real processes on 127.0.0.1, for crash tests and the purchase
benchmark: the inventory, booking and payments apps (uvicorn, one worker each), the CDC
relay over their three databases, and the three consumers (``marquee consume``).

Each process runs in its own process group, dies with its parent, logs to a file of its
own and is stopped by PID; :meth:`PurchaseStack.start` (re)starts one with extra
environment (``MARQUEE_CRASH_AT`` for a crash test), :meth:`PurchaseStack.wait_dead`
waits for one to have died and says how.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from marquee_testing.localinfra import die_with_parent, free_port, stop_process, wait_for_port

SERVICES = ("inventory", "booking", "payments")
APP_FACTORIES = {
    "inventory": "marquee_inventory.main:create_app",
    "booking": "marquee_booking.main:create_app",
    "payments": "marquee_payments.main:create_app",
}


@dataclass
class PurchaseStack:
    database_urls: Mapping[str, str]
    env: dict[str, str]
    logs: Path
    ports: dict[str, int]
    relay_names: Mapping[str, str]
    kafka_bootstrap: str
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    def base(self, service: str) -> str:
        return f"http://127.0.0.1:{self.ports[service]}"

    def log(self, name: str) -> Path:
        return self.logs / f"{name.replace(' ', '-')}.log"

    def command(self, name: str) -> list[str]:
        if name in SERVICES:
            return [
                sys.executable, "-m", "uvicorn", "--factory", APP_FACTORIES[name],
                "--host", "127.0.0.1", "--port", str(self.ports[name]), "--workers", "1",
                "--no-access-log", "--no-proxy-headers", "--log-level", "warning",
            ]  # fmt: skip
        if name == "relay":
            command = [
                sys.executable, "-m", "marquee_platform.relay",
                "--kafka-bootstrap", self.kafka_bootstrap, "--mode", "auto",
                "--log-format", "text",
            ]  # fmt: skip
            for service, url in self.database_urls.items():
                command += ["--database-url", url, "--name", self.relay_names[service]]
            return command
        service = name.removesuffix(" consumer")
        assert service in SERVICES, f"no process called {name!r}"
        return [sys.executable, "-m", "marquee_cli", "consume", "--service", service]

    def start(self, name: str, extra_env: Mapping[str, str] | None = None) -> None:
        """Start (or restart, if it is not running) one process; appends to its log."""
        running = self.processes.get(name)
        assert running is None or running.poll() is not None, f"{name} is running"
        with self.log(name).open("ab") as out:
            self.processes[name] = subprocess.Popen(
                self.command(name),
                env={**os.environ, **self.env, **(extra_env or {})},
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=die_with_parent(),
            )
        if name in SERVICES:
            wait_for_port("127.0.0.1", self.ports[name], timeout=60, process=self.processes[name])

    def wait_dead(self, name: str, *, timeout: float) -> int:
        """The return code once the process has died (-9: SIGKILL); fails at timeout."""
        process = self.processes[name]
        try:
            return process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(
                f"{name} did not die within {timeout} s; its log ends:\n"
                + self.log(name).read_text(errors="replace")[-2000:]
            ) from None

    def stop(self, name: str) -> None:
        process = self.processes.pop(name, None)
        if process is not None:
            stop_process(process)

    def close(self) -> None:
        for name in reversed(list(self.processes)):
            self.stop(name)


@contextlib.contextmanager
def running_purchase_stack(
    *,
    database_urls: Mapping[str, str],
    kafka_bootstrap: str,
    env: Mapping[str, str],
    logs: Path,
    relay_names: Mapping[str, str],
    crash_at: Mapping[str, str] | None = None,
) -> Iterator[PurchaseStack]:
    """Every process of the path, started; ``crash_at`` maps a process name to the crash
    point it is started with. ``env`` adds to the environment (Redis, JWKS …)."""
    ports = {service: free_port() for service in SERVICES}
    stack_env = {
        "MARQUEE_KAFKA_BOOTSTRAP": kafka_bootstrap,
        "MARQUEE_LOG_JSON": "false",
        "MARQUEE_INVENTORY_URL": f"http://127.0.0.1:{ports['inventory']}",
        "MARQUEE_BOOKING_URL": f"http://127.0.0.1:{ports['booking']}",
        "PAYMENTS_SIMULATOR_WEBHOOK_URL": (
            f"http://127.0.0.1:{ports['payments']}/api/v1/payments/webhooks/simulated"
        ),
        "PYTHONUNBUFFERED": "1",
        "PAYMENTS_SIMULATOR_ENABLED": "true",
        **{f"{service.upper()}_DATABASE_URL": url for service, url in database_urls.items()},
        **env,
    }
    stack = PurchaseStack(
        database_urls=database_urls,
        env=stack_env,
        logs=logs,
        ports=ports,
        relay_names=relay_names,
        kafka_bootstrap=kafka_bootstrap,
    )
    logs.mkdir(parents=True, exist_ok=True)
    try:
        names = ["relay", *SERVICES, *(f"{service} consumer" for service in SERVICES)]
        for name in names:
            point = (crash_at or {}).get(name)
            stack.start(name, {"MARQUEE_CRASH_AT": point} if point else None)
        yield stack
    finally:
        stack.close()
