"""Benchmark of scale-out on one machine: failover of consumers and relays, throughput
with one and two replicas, and one publish fanned out to 50,000 open streams.

    uv run python bench/scale_bench.py [--kills 10] [--relay-kills 5] [--streams 50000]
                                       [--gateways 4] [--seconds 8]      (make bench-scale)

Everything runs on 127.0.0.1 against the machine's PostgreSQL and Redis and a tansu broker
started here, as separate processes stopped by their PIDs:

1. **Consumer failover.** Two replicas of one consumer group (the platform's
   ConsumerRunner, a handler that records each event) on a 6-partition topic; a ticker
   publishes to every partition every 50 ms. One replica is SIGKILLed; the failover time
   is from the kill to the first event published after it being applied on the last of
   the killed replica's partitions. The killed one is restarted, both must hold 3
   partitions again, and the next kill takes the other: ``--kills`` times, max reported.
2. **Relay takeover.** Two relays for one database (one active, one standing by); a row
   is committed to the outbox every 50 ms; the active relay is SIGKILLed; the takeover
   time is from the kill to the first row committed after it arriving on Kafka.
3. **Throughput with 1 and 2 replicas**: logins/s (auth, argon2id) and search queries/s
   (10,000 events), the load spread over the replicas' URLs, ``--seconds`` each.
4. **Fan-out**: ``--gateways`` gateway processes accept from one shared socket (as
   ``marquee dev --replicas gateway=N`` runs them); ``--streams`` SSE streams on one event
   channel are opened from several client processes (each from its own 127.0.0.x
   address: one address has only 28k ports); one message is published and the time for
   it to reach every stream is measured (p50/p99/max).

The last line is ``RESULT consumer_failover_max_s=… relay_takeover_s=… fanout_50k_p99_s=…
lost=…``; ``lost`` counts events no consumer applied, outbox rows never relayed and
streams the message never reached.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import resource
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import redis.asyncio as redis_asyncio
from aiokafka import AIOKafkaProducer
from pydantic import BaseModel
from sqlalchemy import text

from marquee_auth.main import SERVICE as AUTH
from marquee_contracts import CloudEvent, Topic, TopicRegistry
from marquee_platform.consumer import ConsumerRunner, Delivery, run_until_signalled
from marquee_platform.db import Database, WriteSession
from marquee_platform.kafka import create_producer, ensure_topics
from marquee_platform.migrations import drop_database, ensure_database, upgrade_async
from marquee_platform.realtime import event_channel, publish
from marquee_platform.relay import slot_name_for
from marquee_platform.workers import read_workers
from marquee_search.engines.postgres import PostgresSearchEngine
from marquee_search.main import SERVICE as SEARCH
from marquee_testing.localinfra import die_with_parent, free_port, start_tansu, wait_for_port
from marquee_testing.relay import (
    RelayProcess,
    TopicReader,
    connect,
    drop_slot,
    insert_rows,
    outbox_row,
)
from marquee_testing.waiting import wait_until

POSTGRES = os.environ.get("MARQUEE_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
REDIS = os.environ.get("MARQUEE_REDIS_URL", "redis://127.0.0.1:6379/0")
PARTITIONS = 6
TICK = 0.05
PASSWORD = "correct horse battery staple"  # noqa: S105 - a throwaway bench account


def say(message: str) -> None:
    print(f"{time.strftime('%H:%M:%S')} {message}", flush=True)


def percentile(values: Sequence[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def database_url(name: str) -> str:
    base = POSTGRES.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://")
    return f"{base}/{name}"


def spawn(
    argv: Sequence[str],
    log: Path,
    env: dict[str, str] | None = None,
    *,
    pass_fds: tuple[int, ...] = (),
) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        return subprocess.Popen(
            list(argv),
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env={**os.environ, **(env or {})},
            start_new_session=True,
            pass_fds=pass_fds,
            preexec_fn=die_with_parent(signal.SIGKILL),
        )


def kill(process: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait(timeout=10)


# --- 1. consumer failover -----------------------------------------------------------------


class Tick(BaseModel):
    sequence: int
    published_at: float


async def consumer_child(database: str, bootstrap: str, topic: str, group: str) -> None:
    """A replica of the bench's consumer group: records when each event was applied."""
    registry = TopicRegistry()
    registry.register(Topic(topic, Tick, owner="bench", description="ticks"))
    db = Database(database)

    async def record(delivery: Delivery, session: WriteSession) -> None:
        assert isinstance(delivery.data, Tick)
        await session.execute(
            text(
                "INSERT INTO applied (event_id, part, published_at, applied_at) "
                "VALUES (:id, :part, :published, :applied)"
            ),
            {
                "id": delivery.event.id,
                "part": delivery.partition,
                "published": delivery.data.published_at,
                "applied": time.time(),
            },
        )

    runner = ConsumerRunner(
        group=group,
        bootstrap=bootstrap,
        database=db,
        handlers={topic: record},
        registry=registry,
        status_redis_url=REDIS,
    )
    await run_until_signalled(runner)
    await db.dispose()


async def ticker(
    producer: AIOKafkaProducer, topic: str, stop: asyncio.Event, sent: list[str]
) -> None:
    sequence = 0
    while not stop.is_set():
        now = time.time()
        for partition in range(PARTITIONS):
            event = CloudEvent(
                source="/marquee/bench",
                type=topic,
                data={"sequence": sequence, "published_at": now},
            )
            await producer.send(topic, event.to_json_bytes(), partition=partition)
            sent.append(event.id)
            sequence += 1
        await asyncio.sleep(TICK)  # the ticker's pace, not a wait for a condition


async def consumer_failover(bootstrap: str, kills: int, logs: Path) -> tuple[list[float], int]:
    name = f"bench_scale_{uuid.uuid4().hex[:8]}"
    url = database_url(name)
    await ensure_database(url)
    assert AUTH.migrations is not None
    await upgrade_async(url, AUTH.migrations)  # any migrated service database has an inbox
    db = Database(url)
    async with db.transaction() as session:
        await session.execute(
            text(
                "CREATE TABLE applied (event_id text PRIMARY KEY, part int, "
                "published_at float8, applied_at float8)"
            )
        )
    topic, group = f"bench.tick-{name.rsplit('_', 1)[1]}.v1", f"bench-{name}"
    await ensure_topics(bootstrap, {topic: PARTITIONS})
    redis = redis_asyncio.Redis.from_url(REDIS)
    producer = create_producer(bootstrap)
    await producer.start()
    argv = [sys.executable, __file__, "--consumer-child", url, bootstrap, topic, group]
    replicas = [spawn(argv, logs / f"consumer-{i}.log") for i in range(2)]
    stop, sent = asyncio.Event(), list[str]()
    ticking = asyncio.create_task(ticker(producer, topic, stop, sent))
    times: list[float] = []

    async def holdings() -> dict[int, list[int]]:
        statuses = await read_workers(redis, bootstrap=bootstrap)
        return {
            s.pid: [int(p.rsplit("[", 1)[1][:-1]) for p in s.partitions]
            for s in statuses
            if s.kind == "consumer" and s.group == group
        }

    try:
        for round_number in range(kills):

            async def balanced() -> bool:
                held = await holdings()
                return sorted(held) == sorted(p.pid for p in replicas) and all(
                    len(parts) == PARTITIONS // 2 for parts in held.values()
                )

            await wait_until(balanced, timeout=60, message="both replicas holding 3 partitions")
            victim = replicas[round_number % 2]
            orphaned = (await holdings())[victim.pid]
            killed_at = time.time()
            os.killpg(victim.pid, signal.SIGKILL)

            async def resumed(killed_at: float = killed_at, orphaned: list[int] = orphaned) -> bool:
                async with db.reading() as session:
                    rows = await session.execute(
                        text(
                            "SELECT part, min(applied_at) FROM applied WHERE published_at > :t "
                            "AND part = ANY(:parts) GROUP BY part"
                        ),
                        {"t": killed_at, "parts": orphaned},
                    )
                    firsts: dict[int, float] = {int(p): float(t) for p, t in rows.all()}
                if len(firsts) < len(orphaned):
                    return False
                times.append(max(firsts.values()) - killed_at)
                return True

            await wait_until(
                resumed, timeout=60, message="the killed replica's partitions to be consumed again"
            )
            victim.wait(timeout=10)
            say(f"consumer failover {round_number + 1}/{kills}: {times[-1]:.2f} s")
            replicas[round_number % 2] = spawn(argv, logs / f"consumer-r{round_number}.log")
        stop.set()
        await ticking
        await producer.flush()

        async def all_applied() -> bool:
            async with db.reading() as session:
                count = (await session.execute(text("SELECT count(*) FROM applied"))).scalar_one()
            return int(count) >= len(sent)

        with contextlib.suppress(AssertionError):
            await wait_until(all_applied, timeout=60, message="every tick applied")
        async with db.reading() as reader:
            applied = set((await reader.execute(text("SELECT event_id FROM applied"))).scalars())
        lost = len(set(sent) - applied)
    finally:
        stop.set()
        for replica in replicas:
            kill(replica)
        await producer.stop()
        await redis.aclose()
        await db.dispose()
        await drop_database(url)
    return times, lost


# --- 2. relay takeover ---------------------------------------------------------------------


async def relay_takeover(bootstrap: str, kills: int, logs: Path) -> tuple[list[float], int]:
    name = f"bench_relay_{uuid.uuid4().hex[:8]}"
    url = database_url(name)
    await ensure_database(url)
    assert AUTH.migrations is not None
    await upgrade_async(url, AUTH.migrations)
    topic = f"bench.relayed-{name}.v1"
    await ensure_topics(bootstrap, {topic: 2})
    redis = redis_asyncio.Redis.from_url(REDIS)
    connection = await connect(url)

    def relay(index: int) -> RelayProcess:
        return RelayProcess(
            [url],
            [name],
            bootstrap,
            logs / f"relay-{index}.log",
            extra_args=("--redis-url", REDIS),
        ).start()

    relays = [relay(0), relay(1)]
    committed: list[tuple[str, float]] = []
    stop = asyncio.Event()

    async def write() -> None:
        sequence = 0
        while not stop.is_set():
            row = outbox_row(topic, f"key-{sequence % 5}", {"seq": sequence})
            await insert_rows(connection, [row])
            committed.append((row.event_id, time.time()))
            sequence += 1
            await asyncio.sleep(TICK)  # the writer's pace

    times: list[float] = []
    try:
        async with TopicReader(bootstrap, topic) as reader:
            writing = asyncio.create_task(write())

            async def roles() -> dict[int, str]:
                statuses = await read_workers(redis, bootstrap=bootstrap)
                return {s.pid: s.role for s in statuses if s.kind == "relay" and s.group == name}

            for round_number in range(kills):

                async def paired() -> bool:
                    live = await roles()
                    return sorted(live) == sorted(r.pid for r in relays) and sorted(
                        live.values()
                    ) == ["active", "standby"]

                await wait_until(paired, timeout=60, message="one active relay and one standing by")
                live = await roles()
                index = next(i for i, r in enumerate(relays) if live[r.pid] == "active")
                killed_at = time.time()
                relays[index].kill()

                def arrived_after_kill(killed_at: float = killed_at) -> float | None:
                    after = {event_id for event_id, at in committed if at > killed_at}
                    firsts = [m.received_at for m in reader.received if m.event_id in after]
                    return min(firsts) if firsts else None

                async def relayed_again() -> bool:
                    return arrived_after_kill() is not None

                await wait_until(
                    relayed_again, timeout=60, message="a row committed after the kill on Kafka"
                )
                first = arrived_after_kill()
                assert first is not None
                times.append(first - killed_at)
                say(f"relay takeover {round_number + 1}/{kills}: {times[-1]:.2f} s")
                relays[index] = relay(round_number + 2)
            stop.set()
            await writing
            with contextlib.suppress(AssertionError):
                await reader.wait_for_ids([event_id for event_id, _ in committed], timeout=30)
            lost = len({event_id for event_id, _ in committed} - reader.event_ids())
    finally:
        stop.set()
        for process in relays:
            process.kill()
        await drop_slot(url, slot_name_for(name))
        await connection.close()
        await redis.aclose()
        await drop_database(url)
    return times, lost


# --- 3. throughput with 1 and 2 replicas ----------------------------------------------------


def start_app(factory: str, port: int, env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    argv = [sys.executable, "-m", "uvicorn", "--factory", factory, "--host", "127.0.0.1"]
    argv += ["--port", str(port), "--log-level", "warning", "--no-access-log"]
    return spawn(argv, log, env)


async def rate(
    session: aiohttp.ClientSession, urls: list[str], call: Any, seconds: float, clients: int
) -> float:
    done = 0
    deadline = time.monotonic() + seconds

    async def worker(index: int) -> None:
        nonlocal done
        turn = index
        while time.monotonic() < deadline:
            await call(session, urls[turn % len(urls)], turn)
            turn += 1
            done += 1

    started = time.monotonic()
    await asyncio.gather(*(worker(i) for i in range(clients)))
    return done / (time.monotonic() - started)


async def throughput(bootstrap: str, seconds: float, logs: Path) -> dict[str, tuple[float, float]]:
    auth_url, search_url = (
        database_url(f"bench_a_{uuid.uuid4().hex[:8]}"),
        database_url(f"bench_s_{uuid.uuid4().hex[:8]}"),
    )
    for url, spec in ((auth_url, AUTH), (search_url, SEARCH)):
        await ensure_database(url)
        assert spec.migrations is not None
        await upgrade_async(url, spec.migrations)
    sys.path.insert(0, str(Path(__file__).parent))
    from search_bench import seed  # the search bench's event generator

    search_database = Database(search_url)
    await seed(PostgresSearchEngine(search_database), 10_000, datetime.now(UTC))
    await search_database.dispose()
    ports = {"auth": [free_port(), free_port()], "search": [free_port(), free_port()]}
    env = {
        "AUTH_DATABASE_URL": auth_url,
        "SEARCH_DATABASE_URL": search_url,
        "MARQUEE_REDIS_URL": REDIS,
        "MARQUEE_KAFKA_BOOTSTRAP": bootstrap,
        "MARQUEE_JWKS_URL": f"http://127.0.0.1:{ports['auth'][0]}/.well-known/jwks.json",
        "MARQUEE_LOG_LEVEL": "WARNING",
        "AUTH_LOGIN_LOCKOUT_BASE_SECONDS": "1",
    }
    processes = [
        start_app(f"marquee_{name}.main:create_app", port, env, logs / f"{name}-{i}.log")
        for name, pair in ports.items()
        for i, port in enumerate(pair)
    ]
    results: dict[str, tuple[float, float]] = {}
    try:
        for pair in ports.values():
            for port in pair:
                wait_for_port("127.0.0.1", port, timeout=60)
        connector = aiohttp.TCPConnector(limit=64)
        async with aiohttp.ClientSession(connector=connector) as session:
            emails = [f"scale-{uuid.uuid4().hex[:8]}@example.org" for _ in range(32)]
            base = f"http://127.0.0.1:{ports['auth'][0]}"
            for email in emails:
                async with session.post(
                    f"{base}/api/v1/auth/register", json={"email": email, "password": PASSWORD}
                ) as response:
                    assert response.status == 201, await response.text()

            async def login(session: aiohttp.ClientSession, url: str, turn: int) -> None:
                body = {"email": emails[turn % len(emails)], "password": PASSWORD}
                async with session.post(f"{url}/api/v1/auth/login", json=body) as response:
                    assert response.status == 200, await response.text()

            words = ["jazz", "rock", "night", "festival", "opera", "paris", "lyon", "comedy"]

            async def query(session: aiohttp.ClientSession, url: str, turn: int) -> None:
                params = {"q": words[turn % len(words)], "limit": "20"}
                async with session.get(f"{url}/api/v1/search/events", params=params) as response:
                    assert response.status == 200, await response.text()
                    await response.read()

            for name, call, clients in (("login", login, 8), ("search", query, 16)):
                urls = [
                    f"http://127.0.0.1:{port}"
                    for port in ports["auth" if name == "login" else "search"]
                ]
                await rate(session, urls, call, 1.0, clients)  # warm-up
                one = await rate(session, urls[:1], call, seconds, clients)
                two = await rate(session, urls, call, seconds, clients)
                results[name] = (one, two)
                say(f"{name}: {one:.0f}/s with 1 replica, {two:.0f}/s with 2 ({two / one:.2f}x)")
    finally:
        for process in processes:
            kill(process)
        await drop_database(auth_url)
        await drop_database(search_url)
    return results


# --- 4. fan-out to 50,000 streams -------------------------------------------------------------


async def fanout_child(port: int, source: str, count: int, event_id: str, report: str) -> None:
    """Opens ``count`` streams from ``source``; prints READY, then writes each stream's
    receive time to ``report`` (JSON) and exits."""
    marker = b"event: bench"
    opened: list[asyncio.StreamReader] = []
    writers: list[asyncio.StreamWriter] = []
    gate = asyncio.Semaphore(200)

    async def one() -> None:
        async with gate:
            reader, writer = await asyncio.open_connection(
                "127.0.0.1", port, local_addr=(source, 0)
            )
            writer.write(
                f"GET /api/v1/stream?events={event_id} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                "Accept: text/event-stream\r\n\r\n".encode()
            )
            head = await reader.readuntil(b"\r\n\r\n")
            if not head.startswith(b"HTTP/1.1 200"):
                raise RuntimeError(head.decode(errors="replace"))
            await reader.readuntil(b"\n\n")  # "retry:": subscribed
            opened.append(reader)
            writers.append(writer)

    await asyncio.gather(*(one() for _ in range(count)))
    print("READY", flush=True)
    received: list[float] = []

    async def receive(reader: asyncio.StreamReader) -> None:
        while True:
            frame = await reader.readuntil(b"\n\n")
            if marker in frame:
                received.append(time.time())
                return

    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(asyncio.gather(*(receive(r) for r in opened)), timeout=60)
    write_json(report, {"received": received, "opened": len(opened)})
    for writer in writers:
        writer.close()


def write_json(path: str | Path, data: Any) -> None:
    Path(path).write_text(json.dumps(data))


def read_json(path: str | Path) -> Any:
    return json.loads(Path(path).read_text())


def shared_listener(port: int) -> socket.socket:
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", port))
    listener.listen(8192)
    listener.set_inheritable(True)
    return listener


async def fanout(streams: int, gateways: int, logs: Path) -> tuple[list[float], int]:
    port = free_port()
    listener = shared_listener(port)
    unlimited = {"requests": 10_000_000, "per_seconds": 60}
    env = {
        **os.environ,
        "GATEWAY_REDIS_URL": REDIS,
        "GATEWAY_LOG_LEVEL": "WARNING",
        "GATEWAY_RATE_LIMIT_READ": json.dumps({"per_user": unlimited, "per_ip": unlimited}),
        "GATEWAY_STREAM_MAX_CONNECTIONS": "1000000",
    }
    fd = listener.fileno()
    argv = [sys.executable, "-m", "uvicorn", "--factory", "marquee_gateway.main:create_app"]
    argv += ["--fd", str(fd), "--log-level", "warning", "--no-access-log", "--no-proxy-headers"]
    processes = [
        spawn(argv, logs / f"gateway-{index}.log", env, pass_fds=(fd,)) for index in range(gateways)
    ]
    clients: list[asyncio.subprocess.Process] = []
    event_id = str(uuid.uuid4())
    redis = redis_asyncio.Redis.from_url(REDIS)
    try:
        wait_for_port("127.0.0.1", port, timeout=60)
        client_count = max(1, -(-streams // 15_000))
        share = [
            streams // client_count + (i < streams % client_count) for i in range(client_count)
        ]
        reports = [logs / f"fanout-{index}.json" for index in range(client_count)]
        for index, count in enumerate(share):
            clients.append(
                await asyncio.create_subprocess_exec(
                    sys.executable,
                    __file__,
                    "--fanout-child",
                    str(port),
                    f"127.0.0.{index + 2}",
                    str(count),
                    event_id,
                    str(reports[index]),
                    stdout=asyncio.subprocess.PIPE,
                    start_new_session=True,
                    preexec_fn=die_with_parent(signal.SIGKILL),
                )
            )
        say(f"opening {streams:,} streams across {gateways} gateway processes …")
        began = time.monotonic()
        for client in clients:
            assert client.stdout is not None
            line = await asyncio.wait_for(client.stdout.readline(), timeout=600)
            if line.strip() != b"READY":
                raise RuntimeError(f"a stream client failed: {line!r}")
        opened_in = time.monotonic() - began
        say(f"{streams:,} streams open after {opened_in:.0f}s; publishing one message")
        published_at = time.time()
        await publish(redis, event_channel(event_id), "bench", {"at": published_at})
        latencies: list[float] = []
        for client, report in zip(clients, reports, strict=True):
            await asyncio.wait_for(client.wait(), timeout=120)
            received = read_json(report)["received"]
            latencies += [at - published_at for at in received]
        lost = streams - len(latencies)
    finally:
        for client in clients:
            with contextlib.suppress(ProcessLookupError):
                client.kill()
            await client.wait()
        for process in processes:
            kill(process)
        listener.close()
        await redis.aclose()
    return latencies, lost


# --- main ----------------------------------------------------------------------------------


async def main(args: argparse.Namespace) -> None:
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    logs = Path(tempfile.mkdtemp(prefix="marquee-scale-bench-"))
    say(f"logs: {logs}")
    broker = start_tansu(log_dir=logs)
    try:
        failovers, lost_events = await consumer_failover(broker.bootstrap, args.kills, logs)
        takeovers, lost_rows = await relay_takeover(broker.bootstrap, args.relay_kills, logs)
        rates = await throughput(broker.bootstrap, args.seconds, logs)
    finally:
        broker.stop()
    latencies, lost_streams = await fanout(args.streams, args.gateways, logs)

    print()
    print(
        f"consumer failover after SIGKILL ({len(failovers)} kills): median "
        f"{statistics.median(failovers):.2f} s, max {max(failovers):.2f} s; lost {lost_events}"
    )
    print(
        f"relay takeover ({len(takeovers)} kills): median {statistics.median(takeovers):.2f} s, "
        f"max {max(takeovers):.2f} s; lost {lost_rows}"
    )
    for name, (one, two) in rates.items():
        print(f"{name}: {one:.1f}/s with 1 replica, {two:.1f}/s with 2, ratio {two / one:.2f}")
    if latencies:
        print(
            f"one publish to {args.streams:,} streams over {args.gateways} gateways: p50 "
            f"{statistics.median(latencies):.3f} s, p99 {percentile(latencies, 0.99):.3f} s, "
            f"max {max(latencies):.3f} s; {lost_streams} streams missed it"
        )
    lost = lost_events + lost_rows + lost_streams
    fanout_p99 = percentile(latencies, 0.99) if latencies else float("nan")
    print(
        f"RESULT consumer_failover_max_s={max(failovers):.2f} "
        f"relay_takeover_s={max(takeovers):.2f} fanout_50k_p99_s={fanout_p99:.3f} lost={lost}"
    )


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--consumer-child":
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
        asyncio.run(consumer_child(*sys.argv[2:6]))
    elif len(sys.argv) > 1 and sys.argv[1] == "--fanout-child":
        _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        port, source, count, event_id, report = sys.argv[2:7]
        asyncio.run(fanout_child(int(port), source, int(count), event_id, report))
    else:
        parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
        parser.add_argument("--kills", type=int, default=10)
        parser.add_argument("--relay-kills", type=int, default=5)
        parser.add_argument("--streams", type=int, default=50_000)
        parser.add_argument("--gateways", type=int, default=4)
        parser.add_argument("--seconds", type=float, default=8.0)
        asyncio.run(main(parser.parse_args()))
