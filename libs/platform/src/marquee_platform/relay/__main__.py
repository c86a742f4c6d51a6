"""``python -m marquee_platform.relay``: relay one or more databases until SIGTERM/SIGINT.

    python -m marquee_platform.relay --kafka-bootstrap 127.0.0.1:9092 \\
        --database-url postgresql://…/auth --name auth \\
        --database-url postgresql://…/booking --name booking

Several databases share one process and one producer (one asyncio task each), which is
what ``marquee dev`` wants; in production run one per service database.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import sys
import time
from collections.abc import Callable, Sequence
from datetime import timedelta

from marquee_platform.logging import configure_logging
from marquee_platform.metrics import serve_metrics
from marquee_platform.relay.common import (
    RelayConfigError,
    RelayOptions,
    create_relay_producer,
    database_name,
)
from marquee_platform.relay.runner import RelayRole, run_relay
from marquee_platform.workers import WorkerBeacon, WorkerStatus

logger = logging.getLogger("marquee.relay")
_DEFAULTS = RelayOptions()


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m marquee_platform.relay",
        description="Relay transactional-outbox rows from PostgreSQL to Kafka.",
    )
    parser.add_argument(
        "--database-url",
        action="append",
        required=True,
        help="a service database (repeat for several)",
    )
    parser.add_argument(
        "--name",
        action="append",
        default=[],
        help="name per --database-url, in the same order (default: the database name); "
        "labels metrics and names the CDC slot marquee_outbox_<name>",
    )
    parser.add_argument("--kafka-bootstrap", required=True, help="HOST:PORT of a broker")
    parser.add_argument("--mode", choices=("auto", "cdc", "polling"), default="auto")
    parser.add_argument("--poll-interval", type=float, default=_DEFAULTS.poll_interval)
    parser.add_argument("--batch-size", type=int, default=_DEFAULTS.batch_size)
    parser.add_argument(
        "--retention-hours",
        type=float,
        default=_DEFAULTS.retention.total_seconds() / 3600,
        help="delete relayed rows older than this",
    )
    parser.add_argument(
        "--metrics-port", type=int, default=None, help="serve Prometheus /metrics on this port"
    )
    parser.add_argument("--metrics-address", default="127.0.0.1")
    parser.add_argument(
        "--redis-url",
        default=os.environ.get("MARQUEE_REDIS_URL"),
        help="report this relay alive (active or standby) there, for the gateway's /readyz "
        "(default: $MARQUEE_REDIS_URL; none: no report)",
    )
    parser.add_argument("--log-level", default="INFO")
    parser.add_argument("--log-format", choices=("json", "text"), default="json")
    args = parser.parse_args(argv)
    if args.name and len(args.name) != len(args.database_url):
        parser.error("give one --name per --database-url, or none")
    if not args.name:
        args.name = [database_name(url) for url in args.database_url]
    if len(set(args.name)) != len(args.name):
        parser.error("names must be unique: each names a replication slot")
    return args


async def main(args: argparse.Namespace) -> int:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    options = RelayOptions(
        poll_interval=args.poll_interval,
        batch_size=args.batch_size,
        retention=timedelta(hours=args.retention_hours),
    )
    roles = {name: RelayRole() for name in args.name}
    started_at = time.time()
    beacons = [
        WorkerBeacon(
            args.redis_url, _status_of(name, args.kafka_bootstrap, role, started_at)
        ).start()
        for name, role in roles.items()
        if args.redis_url
    ]
    shared = None
    if len(args.database_url) > 1:
        shared = create_relay_producer(args.kafka_bootstrap, name="shared", options=options)
        await shared.start()
    try:
        tasks = [
            asyncio.create_task(
                run_relay(
                    url,
                    args.kafka_bootstrap,
                    name=name,
                    mode=args.mode,
                    stop=stop,
                    producer=shared,
                    options=options,
                    role=roles[name],
                ),
                name=f"relay-{name}",
            )
            for url, name in zip(args.database_url, args.name, strict=True)
        ]

        def stop_all_if_failed(task: asyncio.Task[None]) -> None:
            # One database's relay giving up (a configuration error) stops the others, so
            # the process exits non-zero instead of running half-configured.
            if not task.cancelled() and task.exception() is not None:
                stop.set()

        for task in tasks:
            task.add_done_callback(stop_all_if_failed)
        logger.info("relaying %s in %s mode", ", ".join(args.name), args.mode)
        results = await asyncio.gather(*tasks, return_exceptions=True)
    finally:
        if shared is not None:
            await shared.stop()
        for beacon in beacons:
            await beacon.stop()
    failed = [r for r in results if isinstance(r, BaseException)]
    for error in failed:
        logger.error("relay stopped: %s", error, exc_info=error)
    if failed:
        return 2 if all(isinstance(e, RelayConfigError) for e in failed) else 1
    logger.info("relay stopped cleanly")
    return 0


def _status_of(
    name: str, bootstrap: str, role: RelayRole, started_at: float
) -> Callable[[], WorkerStatus]:
    def status() -> WorkerStatus:
        return WorkerStatus(
            kind="relay",
            group=name,
            bootstrap=bootstrap,
            role="active" if role.active else "standby",
            started_at=started_at,
        )

    return status


if __name__ == "__main__":
    arguments = parse_args()
    configure_logging("relay", level=arguments.log_level, json=arguments.log_format == "json")
    serve_metrics(arguments.metrics_port, address=arguments.metrics_address)
    sys.exit(asyncio.run(main(arguments)))
