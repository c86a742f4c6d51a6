"""Benchmark of the outbox relay: backlog throughput and commit→consume lag, per mode.

    uv run python bench/relay_bench.py [--kafka-bootstrap HOST:PORT] [--modes cdc,polling]

For each mode it creates its own migrated database and topic, runs the relay as a
subprocess (``python -m marquee_platform.relay``) and measures

* throughput: rows/s to relay a backlog preloaded while the relay was stopped (in CDC
  mode the slot exists already, so this is the replication stream, not the first-start
  snapshot); "stream" counts from the first to the last message consumed, "with start"
  from the relay's process start;
* lag: commit→consume latency at a steady insert rate. The inserter writes ``time.time()``
  into each row's payload just before COMMIT; a consumer in this process records when it
  received the row.

Everything it starts (the tansu broker unless --kafka-bootstrap is given, the relay) binds
127.0.0.1 and is stopped by PID; its databases are dropped at the end. Bounded: well under
two minutes with the defaults.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg
from sqlalchemy.engine import make_url

from marquee_auth.main import SERVICE
from marquee_platform.migrations import drop_database, ensure_database, upgrade_async
from marquee_platform.relay import slot_name_for
from marquee_testing.localinfra import Broker, start_tansu
from marquee_testing.relay import (
    RelayProcess,
    TopicReader,
    connect,
    create_topic,
    drop_slot,
    outbox_row,
    wait_until,
)

PARTITIONS = 4
KEYS = 200


@dataclass
class Result:
    mode: str
    backlog: int = 0
    stream_rate: float = 0.0
    rate_with_start: float = 0.0
    lag_rows: int = 0
    target_rate: float = 0.0
    achieved_rate: float = 0.0
    lag_ms: list[float] = field(default_factory=list)
    duplicates: int = 0

    def percentile(self, fraction: float) -> float:
        ordered = sorted(self.lag_ms)
        return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))] if ordered else 0.0


async def preload(connection: asyncpg.Connection, topic: str, rows: int) -> list[str]:
    """COPY ``rows`` outbox rows in (the fastest way to build a backlog)."""
    records = [outbox_row(topic, f"agg-{i % KEYS}", {"i": i}) for i in range(rows)]
    await connection.copy_records_to_table(
        "outbox",
        records=[r.as_args() for r in records],
        columns=["event_id", "topic", "message_key", "payload", "headers"],
    )
    return [r.event_id for r in records]


async def insert_steadily(
    connection: asyncpg.Connection, topic: str, *, rate: float, seconds: float
) -> tuple[list[str], float]:
    """Commit ``rate`` rows/s for ``seconds``, in a transaction every 10 ms."""
    per_tick = max(1, round(rate / 100))
    ticks = round(rate * seconds / per_tick)
    ids: list[str] = []
    started = time.monotonic()
    for tick in range(ticks):
        due = started + tick * per_tick / rate
        delay = due - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        async with connection.transaction():
            rows = []
            committed_at = time.time()  # written just before COMMIT
            for n in range(per_tick):
                row = outbox_row(
                    topic,
                    f"agg-{(tick * per_tick + n) % KEYS}",
                    {"committed_at": committed_at},
                )
                rows.append(row.as_args())
                ids.append(row.event_id)
            await connection.executemany(
                "INSERT INTO outbox (event_id, topic, message_key, payload, headers) "
                "VALUES ($1, $2, $3, $4::jsonb, $5::jsonb)",
                rows,
            )
    return ids, len(ids) / (time.monotonic() - started)


async def bench_mode(
    mode: str, postgres_url: str, bootstrap: str, args: argparse.Namespace, work: Path
) -> Result:
    result = Result(mode=mode, backlog=args.backlog)
    name = f"relay_bench_{mode}_{uuid.uuid4().hex[:8]}"
    url = (
        make_url(postgres_url)
        .set(drivername="postgresql+asyncpg", database=name)
        .render_as_string(hide_password=False)
    )
    await ensure_database(url)
    connection: asyncpg.Connection | None = None
    relay: RelayProcess | None = None
    log = work / f"relay-{mode}.log"

    def new_relay() -> RelayProcess:
        return RelayProcess([url], [name], bootstrap, log, mode=mode)

    try:
        await upgrade_async(url, SERVICE.migrations)
        connection = await connect(url)
        topic = f"bench.relay-{mode}-{uuid.uuid4().hex[:8]}.v1"
        await create_topic(bootstrap, topic, partitions=PARTITIONS)

        if mode == "cdc":
            # Create the slot first, so the backlog below goes through the stream.
            relay = new_relay().start()
            await _wait_for_slot(connection, slot_name_for(name), active=True, relay=relay)
            assert relay.terminate() == 0, relay.log()

        # (a) throughput over a preloaded backlog
        ids = await preload(connection, topic, args.backlog)
        async with TopicReader(bootstrap, topic) as reader:
            started = time.time()
            relay = new_relay().start()
            await reader.wait_for_ids(ids, timeout=90)
            first = min(m.received_at for m in reader.received)
            last = max(m.received_at for m in reader.received)
            result.stream_rate = args.backlog / max(last - first, 1e-6)
            result.rate_with_start = args.backlog / (last - started)

            # (b) lag at a steady rate, same relay, same topic
            backlog_messages = len(reader.received)
            lag_ids, result.achieved_rate = await insert_steadily(
                connection, topic, rate=args.rate, seconds=args.seconds
            )
            result.target_rate = args.rate
            result.lag_rows = len(lag_ids)
            await reader.wait_for_ids(lag_ids, timeout=60)
            assert relay.terminate() == 0, relay.log()

        seen: set[str] = set()
        for message in reader.received[backlog_messages:]:
            if message.event_id in seen:
                continue
            seen.add(message.event_id)
            committed_at = json.loads(message.value)["data"]["committed_at"]
            result.lag_ms.append((message.received_at - committed_at) * 1000)
        result.duplicates = len(reader.received) - len(reader.event_ids())
        return result
    finally:
        if relay is not None:
            relay.kill()
        if connection is not None:
            await connection.close()
        if mode == "cdc":
            await drop_slot(url, slot_name_for(name))
        await drop_database(url)


async def _wait_for_slot(
    connection: asyncpg.Connection, slot: str, *, active: bool, relay: RelayProcess
) -> None:
    async def ready() -> bool:
        return bool(
            await connection.fetchval(
                "SELECT active = $2 FROM pg_replication_slots WHERE slot_name = $1", slot, active
            )
        )

    await wait_until(ready, timeout=30, message=lambda: f"slot {slot}; log:\n{relay.log()}")


def print_table(results: list[Result]) -> None:
    header = (
        f"{'mode':<8} {'backlog':>8} {'rows/s stream':>14} {'rows/s w/ start':>16} "
        f"{'lag rows':>9} {'ins rows/s':>10} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8} "
        f"{'dups':>5}"
    )
    print()
    print(header)
    print("-" * len(header))
    for r in results:
        print(
            f"{r.mode:<8} {r.backlog:>8} {r.stream_rate:>14,.0f} {r.rate_with_start:>16,.0f} "
            f"{r.lag_rows:>9} {r.achieved_rate:>10,.0f} {r.percentile(0.5):>8.1f} "
            f"{r.percentile(0.99):>8.1f} {max(r.lag_ms, default=0):>8.1f} {r.duplicates:>5}"
        )
    if any(r.lag_ms for r in results):
        mean = {r.mode: statistics.fmean(r.lag_ms) for r in results if r.lag_ms}
        print("mean lag ms: " + ", ".join(f"{m} {v:.1f}" for m, v in mean.items()))


async def main(args: argparse.Namespace) -> int:
    work = Path(tempfile.mkdtemp(prefix="marquee-relay-bench-"))
    broker: Broker | None = None
    bootstrap = args.kafka_bootstrap
    if not bootstrap:
        broker = start_tansu(log_dir=work)
        bootstrap = broker.bootstrap
    results: list[Result] = []
    started = time.monotonic()
    try:
        level = await _wal_level(args.postgres_url)
        for mode in args.modes.split(","):
            if mode == "cdc" and level != "logical":
                print(f"skipping cdc: wal_level is {level}", file=sys.stderr)
                continue
            print(f"benchmarking {mode} …", file=sys.stderr, flush=True)
            results.append(await bench_mode(mode, args.postgres_url, bootstrap, args, work))
    finally:
        if broker is not None:
            broker.stop()
    print_table(results)
    print(f"\n(total {time.monotonic() - started:.0f}s; relay logs in {work})")
    figures = " ".join(
        f"{r.mode}_rows_per_s={r.stream_rate:.0f} {r.mode}_lag_p50_ms={r.percentile(0.5):.1f} "
        f"{r.mode}_lag_p99_ms={r.percentile(0.99):.1f} {r.mode}_duplicates={r.duplicates}"
        for r in results
    )
    print(f"RESULT {figures}")
    return 0


async def _wal_level(postgres_url: str) -> str:
    connection = await asyncpg.connect(postgres_url)
    try:
        return str(await connection.fetchval("SHOW wal_level"))
    finally:
        await connection.close()


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--kafka-bootstrap", help="use this broker instead of starting tansu")
    parser.add_argument("--postgres-url", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--modes", default="cdc,polling")
    parser.add_argument("--backlog", type=int, default=50_000)
    parser.add_argument("--rate", type=float, default=1_000.0, help="rows/s for the lag test")
    parser.add_argument("--seconds", type=float, default=10.0, help="length of the lag test")
    return parser.parse_args()


if __name__ == "__main__":
    sys.exit(asyncio.run(main(parse_args())))
