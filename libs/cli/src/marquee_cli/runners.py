"""``marquee relay`` and ``marquee consume``: long-running workers stopped by a signal.

Both are what ``marquee dev`` (or a process manager in production) runs and restarts;
they finish the work in hand on SIGTERM/SIGINT and exit.
"""

from __future__ import annotations

import asyncio
import inspect
import os
import signal
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from marquee_platform.logging import configure_logging
from marquee_platform.service import ServiceSpec

if TYPE_CHECKING:
    from marquee_platform.relay import RelayMode


def _stop_on_signals() -> asyncio.Event:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    return stop


def logs_as_json(env: Mapping[str, str] = os.environ) -> bool:
    """``MARQUEE_LOG_JSON`` as the services read it (``marquee dev`` sets it to false)."""
    return env.get("MARQUEE_LOG_JSON", "true").strip().lower() not in ("false", "0", "no", "off")


async def run_relays(targets: dict[str, str], kafka_bootstrap: str, *, mode: RelayMode) -> None:
    """One outbox relay per database (name -> URL), all in this process, until signalled.

    A relay that fails takes the others down with it, so the process exits non-zero and
    its supervisor restarts it whole rather than leaving some databases unrelayed.
    """
    # Imported here: the relay pulls psycopg2's replication support, which only this needs.
    from marquee_platform.relay import run_relay

    configure_logging("relay", level="INFO", json=logs_as_json())
    stop = _stop_on_signals()
    async with asyncio.TaskGroup() as group:
        for name, url in targets.items():
            group.create_task(run_relay(url, kafka_bootstrap, name=name, mode=mode, stop=stop))


async def run_consumer(spec: ServiceSpec) -> None:
    """Build the service's consumer from ``spec.consumer_factory`` and run it until
    SIGTERM/SIGINT."""
    from uvicorn.importer import import_from_string

    from marquee_platform.consumer import run_until_signalled

    assert spec.consumer_factory is not None
    factory = import_from_string(spec.consumer_factory)
    runner: Any = factory()
    if inspect.isawaitable(runner):
        runner = await runner
    await run_until_signalled(runner)
