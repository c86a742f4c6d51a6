"""Full purchases of one hot event: hold → order → simulated payment → signed webhook →
tickets issued, measured to the ``booking.ticket-issued.v1`` event.

    uv run python bench/purchase_bench.py [--seconds 20] [--concurrency 48]
                                          (make bench-purchase)

Runs the real purchase path as separate processes on 127.0.0.1: the inventory, booking
and payments apps (uvicorn, one worker each), the outbox relay over their three
databases (scratch databases on the local PostgreSQL, dropped at the end), the three
services' consumers (``marquee consume``), a tansu broker, and Redis (a scratch logical
database, ``--redis-db``, flushed). Each fan, a distinct account, holds one explicit
seat, orders it, starts the payment and confirms it with the simulated provider, which
posts the signed webhook to payments; the purchase ends when the fan's ticket-issued
event arrives on Kafka (a consumer in this process). Then it reports:

1. full purchases/s at saturation (closed loop, ``--concurrency`` fans in flight), p50/p99
   per step (hold, order, payment, confirm, confirm → tickets issued) and end to end;
2. the same below saturation (open loop at ``--open-fraction`` of the measured rate,
   latency from each purchase's scheduled start);
3. where the CPU goes: CPU ms per purchase of every process (apps, consumers, relay,
   broker, Redis, this load generator);
4. oversold (a seat with two live tickets, or sold in inventory to another order than its
   ticket's) and lost (a paid order without tickets, a charge without a paid or refunded
   order) after the saga settled.

It prints numbers and never asserts times; the last line is ``RESULT …``. Everything it
starts runs in its own process group and is stopped by PID, also on Ctrl-C or SIGTERM.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import redis.asyncio as redis_asyncio
from aiokafka import AIOKafkaConsumer
from holds_bench import Signer, cpu_seconds, redis_cpu_seconds
from rich.console import Console
from rich.table import Table

from marquee_booking.main import SERVICE as BOOKING
from marquee_contracts import REGISTRY, CloudEvent
from marquee_contracts.booking import TICKET_ISSUED
from marquee_contracts.catalog import EVENT_PUBLISHED
from marquee_inventory.main import SERVICE as INVENTORY
from marquee_payments.main import SERVICE as PAYMENTS
from marquee_platform.db import to_libpq_dsn
from marquee_platform.kafka import create_producer, ensure_topics, publish
from marquee_platform.migrations import drop_database, ensure_database, upgrade_async
from marquee_testing.inventory import published_event
from marquee_testing.localinfra import Broker, start_tansu
from marquee_testing.purchase_stack import running_purchase_stack
from marquee_testing.waiting import wait_until

SERVICES = {"inventory": INVENTORY, "booking": BOOKING, "payments": PAYMENTS}
STEPS = ("hold", "order", "payment", "confirm", "to tickets")
console = Console(width=None if sys.stdout.isatty() else 118)
STARTED = time.monotonic()


def progress(message: str) -> None:
    console.print(f"[dim]{time.monotonic() - STARTED:6.1f}s[/dim] {message}")


def percentile(values: Sequence[float], fraction: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


@dataclass
class Purchase:
    order_id: str | None = None
    started: float = 0.0
    confirmed: float = 0.0
    steps: dict[str, float] = field(default_factory=dict)
    failed: str | None = None


@dataclass
class Stack:
    base: dict[str, str]
    signer: Signer
    event_id: uuid.UUID
    seats: list[str]
    client: aiohttp.ClientSession
    issued: dict[str, float] = field(default_factory=dict)
    """order id → when its first ticket-issued event arrived (monotonic)."""
    waiting: dict[str, asyncio.Event] = field(default_factory=dict)
    next_seat: int = 0

    def seat(self) -> str | None:
        if self.next_seat >= len(self.seats):
            return None
        self.next_seat += 1
        return self.seats[self.next_seat - 1]


async def call(
    stack: Stack, method: str, url: str, headers: dict[str, str], body: dict[str, Any]
) -> tuple[int, dict[str, Any]]:
    async with stack.client.request(method, url, data=json.dumps(body), headers=headers) as answer:
        payload = await answer.read()
        return answer.status, json.loads(payload) if payload else {}


async def purchase(stack: Stack, *, tickets_timeout: float = 60.0) -> Purchase:
    result = Purchase(started=time.monotonic())
    seat = stack.seat()
    if seat is None:
        result.failed = "sold out"
        return result
    headers = stack.signer.headers(str(uuid.uuid4()))
    step_start = time.monotonic()

    def lap(name: str) -> None:
        nonlocal step_start
        now = time.monotonic()
        result.steps[name] = now - step_start
        step_start = now

    status, held = await call(
        stack,
        "POST",
        f"{stack.base['inventory']}/api/v1/inventory/events/{stack.event_id}/holds",
        headers,
        {"seats": [{"seat_id": seat}]},
    )
    if status != 201:
        result.failed = f"hold {status}"
        return result
    lap("hold")
    status, order = await call(
        stack,
        "POST",
        f"{stack.base['booking']}/api/v1/orders",
        {**headers, "idempotency-key": str(uuid.uuid4())},
        {"event_id": str(stack.event_id), "hold_id": held["hold_id"]},
    )
    if status != 201:
        result.failed = f"order {status}"
        return result
    lap("order")
    result.order_id = order["order_id"]
    arrived = stack.waiting.setdefault(order["order_id"], asyncio.Event())
    status, payment = await call(
        stack,
        "POST",
        f"{stack.base['payments']}/api/v1/payments",
        headers,
        {"order_id": order["order_id"]},
    )
    if status != 201:
        result.failed = f"payment {status}"
        return result
    lap("payment")
    status, _ = await call(
        stack,
        "POST",
        f"{stack.base['payments']}/api/v1/payments/simulator/intents/"
        f"{payment['provider_payment_id']}/confirm",
        {"content-type": "application/json"},
        {"client_secret": payment["client_secret"], "card": f"4{uuid.uuid4().int % 10**15:015d}"},
    )
    if status != 200:
        result.failed = f"confirm {status}"
        return result
    lap("confirm")
    result.confirmed = time.monotonic()
    try:
        await asyncio.wait_for(arrived.wait(), tickets_timeout)
    except TimeoutError:
        result.failed = "no tickets in time"
        return result
    result.steps["to tickets"] = stack.issued[order["order_id"]] - result.confirmed
    return result


async def watch_tickets(stack: Stack, bootstrap: str, ready: asyncio.Event) -> None:
    consumer = AIOKafkaConsumer(
        TICKET_ISSUED.name,
        bootstrap_servers=bootstrap,
        group_id=None,
        auto_offset_reset="latest",
    )
    await consumer.start()
    try:
        await consumer.getmany(timeout_ms=200)
        ready.set()
        while True:
            batch = await consumer.getmany(timeout_ms=200, max_records=2000)
            now = time.monotonic()
            for records in batch.values():
                for record in records:
                    event = CloudEvent.from_json_bytes(record.value or b"")
                    order_id = str(event.data.get("order_id"))
                    if order_id not in stack.issued:
                        stack.issued[order_id] = now
                        stack.waiting.setdefault(order_id, asyncio.Event()).set()
    finally:
        await consumer.stop()


@dataclass
class Measured:
    purchases: list[Purchase]
    seconds: float
    cpu: dict[str, float]

    @property
    def done(self) -> list[Purchase]:
        return [one for one in self.purchases if one.failed is None]

    @property
    def rate(self) -> float:
        return len(self.done) / self.seconds if self.seconds else 0.0

    def end_to_end_ms(self, fraction: float) -> float:
        return 1000 * percentile([sum(one.steps.values()) for one in self.done], fraction)


class CpuMeter:
    def __init__(self, pids: dict[str, int], redis: Any) -> None:
        self.pids = pids
        self.redis = redis

    async def sample(self) -> dict[str, float]:
        sample = {name: cpu_seconds(pid) for name, pid in self.pids.items()}
        sample["redis"] = await redis_cpu_seconds(self.redis)
        sample["load generator"] = time.process_time()
        return sample


async def closed_loop(
    stack: Stack, meter: CpuMeter, *, seconds: float, concurrency: int
) -> Measured:
    purchases: list[Purchase] = []
    deadline = time.monotonic() + seconds

    async def fan_loop() -> None:
        while time.monotonic() < deadline:
            one = await purchase(stack)
            purchases.append(one)
            if one.failed == "sold out":
                return

    before = await meter.sample()
    started = time.monotonic()
    await asyncio.gather(*(fan_loop() for _ in range(concurrency)))
    elapsed = time.monotonic() - started
    after = await meter.sample()
    return Measured(purchases, elapsed, {name: after[name] - before[name] for name in after})


async def open_loop(stack: Stack, meter: CpuMeter, *, rate: float, seconds: float) -> Measured:
    purchases: list[Purchase] = []
    count = max(1, int(rate * seconds))
    before = await meter.sample()
    started = time.monotonic()

    async def scheduled(index: int) -> None:
        at = started + index / rate
        await asyncio.sleep(max(0.0, at - time.monotonic()))
        one = await purchase(stack)
        # Latency from the scheduled start: a purchase queued behind others counts its wait.
        one.steps["hold"] += one.started - at
        purchases.append(one)

    await asyncio.gather(*(scheduled(index) for index in range(count)))
    elapsed = time.monotonic() - started
    after = await meter.sample()
    return Measured(purchases, elapsed, {name: after[name] - before[name] for name in after})


def step_table(title: str, measured: Measured) -> Table:
    table = Table(title=title)
    table.add_column("step")
    table.add_column("p50 ms", justify="right")
    table.add_column("p99 ms", justify="right")
    for step in (*STEPS, "end to end"):
        values = (
            [sum(one.steps.values()) for one in measured.done]
            if step == "end to end"
            else [one.steps[step] for one in measured.done if step in one.steps]
        )
        table.add_row(
            step, f"{1000 * percentile(values, 0.5):.1f}", f"{1000 * percentile(values, 0.99):.1f}"
        )
    return table


async def audit(urls: dict[str, str]) -> dict[str, int]:
    """Oversold and lost, from the three databases once the saga settled."""
    booking = await asyncpg.connect(to_libpq_dsn(urls["booking"]))
    inventory = await asyncpg.connect(to_libpq_dsn(urls["inventory"]))
    payments = await asyncpg.connect(to_libpq_dsn(urls["payments"]))
    try:
        double_tickets = await booking.fetchval(
            "SELECT count(*) FROM (SELECT event_id, seat_id FROM tickets WHERE status = 'valid' "
            "AND seat_id IS NOT NULL GROUP BY event_id, seat_id HAVING count(*) > 1) AS d"
        )
        tickets = {
            (str(row["event_id"]), row["seat_id"]): str(row["order_id"])
            for row in await booking.fetch(
                "SELECT event_id, seat_id, order_id FROM tickets WHERE status = 'valid'"
            )
        }
        sold = {
            (str(row["event_id"]), row["seat_id"]): str(row["order_id"])
            for row in await inventory.fetch("SELECT event_id, seat_id, order_id FROM sold_seats")
        }
        disagree = sum(1 for key, order in tickets.items() if sold.get(key) != order)
        paid_without_tickets = await booking.fetchval(
            "SELECT count(*) FROM orders o WHERE o.status IN ('paid', 'confirming') AND NOT "
            "EXISTS (SELECT 1 FROM tickets t WHERE t.order_id = o.id AND t.status = 'valid')"
        )
        order_states = {
            str(row["id"]): row["status"]
            for row in await booking.fetch("SELECT id, status FROM orders")
        }
        charged = [
            str(row["order_id"])
            for row in await payments.fetch(
                "SELECT order_id FROM payments WHERE status = 'succeeded'"
            )
        ]
        charge_without_order = sum(
            1
            for order in charged
            if order_states.get(order)
            not in ("paid", "refunding", "refunded", "partially_refunded")
        )
        return {
            "oversold": int(double_tickets) + disagree,
            "lost": int(paid_without_tickets) + charge_without_order,
            "paid orders": sum(1 for state in order_states.values() if state == "paid"),
            "paid without tickets": int(paid_without_tickets),
            "charges without a paid order": charge_without_order,
            "tickets not sold in inventory to their order": disagree,
        }
    finally:
        for connection in (booking, inventory, payments):
            await connection.close()


async def run(args: argparse.Namespace) -> str:
    postgres = args.postgres_url.rstrip("/").rsplit("/", 1)[0]
    tag = uuid.uuid4().hex[:8]
    urls = {
        name: f"{postgres}/bench_purchase_{tag}_{name}".replace(
            "postgresql://", "postgresql+asyncpg://"
        )
        for name in SERVICES
    }
    redis_url = f"redis://127.0.0.1:6379/{args.redis_db}"
    logs = Path(tempfile.mkdtemp(prefix="marquee-purchase-bench-"))
    processes: dict[str, subprocess.Popen[bytes]] = {}
    stack_exit = contextlib.ExitStack()
    broker: Broker | None = None
    redis = redis_asyncio.Redis.from_url(redis_url)
    signer = Signer()
    created: list[str] = []
    watcher: asyncio.Task[None] | None = None
    try:
        await redis.flushdb()
        for name, spec in SERVICES.items():
            if await ensure_database(urls[name]):
                created.append(urls[name])
            assert spec.migrations is not None
            await upgrade_async(urls[name], spec.migrations)
        with signer.serve() as jwks_base:
            progress("starting tansu …")
            broker = start_tansu(log_dir=logs)
            await ensure_topics(
                broker.bootstrap, {topic.name: topic.partitions for topic in REGISTRY}
            )
            env: dict[str, str] = {
                "MARQUEE_REDIS_URL": redis_url,
                "MARQUEE_JWKS_URL": f"{jwks_base}/.well-known/jwks.json",
                "MARQUEE_LOG_LEVEL": "WARNING",
                # One fan pays once; the bench's fans share the loopback address.
                "PAYMENTS_MAX_ORDERS_PER_ADDRESS": "100000000",
                **dict(setting.split("=", 1) for setting in args.server_env),
            }
            progress(
                "starting inventory, booking, payments (uvicorn, 1 worker each), the relay "
                "and three consumers …"
            )
            stack = stack_exit.enter_context(
                running_purchase_stack(
                    database_urls=urls,
                    kafka_bootstrap=broker.bootstrap,
                    env=env,
                    logs=logs,
                    relay_names={name: f"bench_purchase_{tag}_{name}" for name in urls},
                )
            )
            processes = stack.processes
            event = published_event(rows=args.rows, seats_per_row=100, max_per_order=10)
            producer = create_producer(broker.bootstrap)
            await producer.start()
            try:
                await publish(
                    producer,
                    EVENT_PUBLISHED.name,
                    REGISTRY.event(
                        EVENT_PUBLISHED.name,
                        event.message,
                        source="/marquee/events",
                        subject=str(event.event_id),
                    ),
                    key=str(event.event_id),
                )
            finally:
                await producer.stop()
            base = {name: stack.base(name) for name in SERVICES}
            seats = [
                seat.id
                for section in event.message.seating.sections or []
                for row in section.rows
                for seat in row.seats
            ]
            async with aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=512, keepalive_timeout=3),
                timeout=aiohttp.ClientTimeout(total=60),
            ) as client:
                stack = Stack(base, signer, event.event_id, seats, client)
                await wait_until_selling(stack)
                ready = asyncio.Event()
                watcher = asyncio.create_task(watch_tickets(stack, broker.bootstrap, ready))
                await ready.wait()
                pids = {name: process.pid for name, process in processes.items()}
                pids["broker"] = broker.process.pid
                meter = CpuMeter(pids, redis)
                progress("warming up …")
                await closed_loop(stack, meter, seconds=3, concurrency=8)
                progress(
                    f"closed loop: {args.concurrency} fans in flight for {args.seconds:.0f} s …"
                )
                saturated = await closed_loop(
                    stack, meter, seconds=args.seconds, concurrency=args.concurrency
                )
                rate = saturated.rate * args.open_fraction
                progress(f"open loop at {rate:.0f} purchases/s for {args.seconds:.0f} s …")
                below = await open_loop(stack, meter, rate=max(rate, 1.0), seconds=args.seconds)
                progress("letting the saga settle, then auditing …")
                settled = await settle(urls)
                found = await audit(urls)
    finally:
        if watcher is not None:
            watcher.cancel()
            with contextlib.suppress(BaseException):
                await watcher
        stack_exit.close()
        if broker is not None:
            broker.stop()
        with contextlib.suppress(Exception):
            await redis.flushdb()
        await redis.aclose()
        for url in created:
            await drop_database(url)

    console.print()
    console.print(
        step_table(
            f"1. saturation: {saturated.rate:.0f} full purchases/s ({len(saturated.done)} in "
            f"{saturated.seconds:.1f} s, {args.concurrency} in flight; failed: "
            f"{failures(saturated)})",
            saturated,
        )
    )
    console.print(
        step_table(
            f"2. below saturation: {below.rate:.0f}/s scheduled at {rate:.0f}/s ({len(below.done)} "
            f"purchases; failed: {failures(below)})",
            below,
        )
    )
    cpu = Table(title="3. CPU ms per full purchase, by process (saturation round)")
    cpu.add_column("process")
    cpu.add_column("ms/purchase", justify="right")
    cpu.add_column("share", justify="right")
    total = sum(saturated.cpu.values())
    for name, seconds in sorted(saturated.cpu.items(), key=lambda item: -item[1]):
        cpu.add_row(
            name,
            f"{1000 * seconds / max(1, len(saturated.done)):.2f}",
            f"{100 * seconds / total:.0f} %" if total else "-",
        )
    cpu.add_row(
        "all",
        f"{1000 * total / max(1, len(saturated.done)):.2f}",
        f"{total / saturated.seconds:.2f} cores",
    )
    console.print(cpu)
    console.print(
        f"4. after the saga settled ({settled}): "
        + ", ".join(f"{name} {value}" for name, value in found.items())
    )
    console.print(f"   logs: {logs}")
    p50 = below.end_to_end_ms(0.5)
    p99 = below.end_to_end_ms(0.99)
    return (
        f"RESULT purchases_per_s={saturated.rate:.0f} p50_ms={p50:.1f} p99_ms={p99:.1f} "
        f"oversold={found['oversold']} lost={found['lost']}"
    )


def failures(measured: Measured) -> str:
    counted: dict[str, int] = {}
    for one in measured.purchases:
        if one.failed is not None:
            counted[one.failed] = counted.get(one.failed, 0) + 1
    return ", ".join(f"{name} x{count}" for name, count in counted.items()) or "none"


async def wait_until_selling(stack: Stack, timeout: float = 60.0) -> None:
    """Until inventory has the event and booking has its prices (an order would say so)."""
    organizer = stack.signer.headers("organizer-1", "organizer")

    async def selling() -> bool:
        async with (
            stack.client.get(
                f"{stack.base['inventory']}/api/v1/inventory/events/{stack.event_id}/availability"
            ) as inventory,
            stack.client.get(
                f"{stack.base['booking']}/api/v1/events/{stack.event_id}/sales-settings",
                headers=organizer,
            ) as booking,
        ):
            return inventory.status == 200 and booking.status == 200

    await wait_until(
        selling, timeout=timeout, interval=0.2, message="the event to reach inventory and booking"
    )


async def settle(urls: dict[str, str], timeout: float = 60.0) -> str:
    """Wait until no order is between payment and tickets (or the timeout); says which."""
    booking = await asyncpg.connect(to_libpq_dsn(urls["booking"]))
    started = time.monotonic()

    async def confirming() -> int:
        count: int = await booking.fetchval(
            "SELECT count(*) FROM orders WHERE status = 'confirming'"
        )
        return count

    async def none_confirming() -> bool:
        return await confirming() == 0

    try:
        await wait_until(none_confirming, timeout=timeout, interval=0.5)
        return f"settled in {time.monotonic() - started:.1f} s"
    except AssertionError:
        return f"{await confirming()} orders still confirming after {timeout:.0f} s"
    finally:
        await booking.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--concurrency", type=int, default=48)
    parser.add_argument("--open-fraction", type=float, default=0.5)
    parser.add_argument("--rows", type=int, default=150, help="rows of 100 seats")
    parser.add_argument("--redis-db", type=int, default=13)
    parser.add_argument(
        "--postgres-url",
        default=os.environ.get(
            "MARQUEE_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
        ),
    )
    parser.add_argument(
        "--server-env", action="append", default=[], help="NAME=value for the services (repeatable)"
    )
    args = parser.parse_args()
    result = asyncio.run(run(args))
    print(result, flush=True)


if __name__ == "__main__":
    main()
