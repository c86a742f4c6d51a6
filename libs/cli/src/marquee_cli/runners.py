"""``marquee relay`` and ``marquee consume``: long-running workers stopped by a signal.

Both are what ``marquee dev`` (or a process manager in production) runs and restarts;
they finish the work in hand on SIGTERM/SIGINT and exit.
"""

from __future__ import annotations

import inspect
import os
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from marquee_platform.logging import configure_logging
from marquee_platform.service import ServiceSpec

if TYPE_CHECKING:
    from marquee_platform.relay import RelayMode


def logs_as_json(env: Mapping[str, str] = os.environ) -> bool:
    """``MARQUEE_LOG_JSON`` as the services read it (``marquee dev`` sets it to false)."""
    return env.get("MARQUEE_LOG_JSON", "true").strip().lower() not in ("false", "0", "no", "off")


async def run_relays(targets: dict[str, str], kafka_bootstrap: str, *, mode: RelayMode) -> int:
    """One outbox relay per database (name -> URL), all in this process, until signalled.

    The same process ``python -m marquee_platform.relay`` runs (one shared producer, a
    failing relay stops the others so the supervisor restarts it whole); returns its
    exit code.
    """
    # Imported here: the relay pulls psycopg2's replication support, which only this needs.
    from marquee_platform.relay import __main__ as relay_process

    argv = ["--kafka-bootstrap", kafka_bootstrap, "--mode", mode]
    argv += ["--log-format", "json" if logs_as_json() else "text"]
    for name, url in targets.items():
        argv += ["--database-url", url, "--name", name]
    arguments = relay_process.parse_args(argv)
    configure_logging("relay", level=arguments.log_level, json=arguments.log_format == "json")
    return await relay_process.main(arguments)


async def run_consumer(spec: ServiceSpec) -> None:
    """Build the service's consumer from ``spec.consumer_factory`` and run it until
    SIGTERM/SIGINT."""
    from uvicorn.importer import import_from_string

    from marquee_platform.consumer import run_until_signalled

    assert spec.consumer_factory is not None
    settings = spec.settings_class()
    # Its rebalances and parked messages are logged at INFO, where an operator looks.
    configure_logging(f"{spec.name}-consumer", level=settings.log_level, json=settings.log_json)
    factory = import_from_string(spec.consumer_factory)
    runner: Any = factory()
    if inspect.isawaitable(runner):
        runner = await runner
    if runner.status_redis_url is None:  # report this replica where the gateway reads it
        runner.status_redis_url = settings.redis_url
    await run_until_signalled(runner)
