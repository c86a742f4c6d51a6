"""Holds under load: what a hold costs next to a bare authenticated endpoint, and the
inventory service's other figures (oversold, best-available, expiry lag, rebuild).

    uv run python bench/holds_bench.py [--rounds 4] [--round-seconds 3] [--concurrency 32]
                                       (make bench-holds)

Runs against the local PostgreSQL (a scratch database, dropped at the end) and Redis (a
scratch logical database, ``--redis-db``, flushed at the start and at the end). Starts a
tansu broker (the service forwards its hold log to Kafka) and three uvicorn processes on
127.0.0.1, one worker each: the inventory app, a bare FastAPI app whose endpoint does the
same auth work (the platform's token verifier behind ``CurrentUser``) and returns a tiny
JSON, and — to split a hold's cost — the platform's app factory with such an endpoint
(every middleware a service has, no hold). Then it measures:

1. holds/s and bare/s (and platform/s) in alternating rounds, so machine noise hits all;
   p50/p99 at saturation (closed loop, ``--concurrency`` clients), then below it (open
   loop at half the measured rate, latency from each request's scheduled start). Each hold
   is one explicit seat by a distinct user, on one hot 20,000-seat event (more events are
   published if the rounds would run out of seats).
2. oversold: seats held or sold more than once, from every 201 answer, Redis and
   PostgreSQL, including a race of four users for each of ``--race-seats`` seats.
3. best-available on a 50,000-seat map, 60% sold: in-process and through the API.
4. expiry lag: holds with a 30 s TTL (set by the organizer through the API), from each
   deadline to the seat showing available in Redis, the service's own sweeper running.
5. rebuild of a 50,000-seat event with every seat sold in PostgreSQL.
6. direct vs high-demand mode: the same fans (``--mode-fans``, ``--mode-concurrency`` in
   flight, each one explicit seat among the ``--mode-hot`` best of the event) on a
   ``--mode-seats`` event in direct mode, then on one published ``high_demand=True``,
   with the inventory consumer (``marquee consume --service inventory``, a subprocess)
   applying the queue: requests/s the API accepts, request → decision p50/p99 (direct:
   the 201/409; queued: the ``decided_at`` the consumer writes into the request's Redis
   record), decisions/s, held / refused, and fairness: per contested seat, how many
   earlier askers were refused while a later one got it.

The load comes from aiohttp, not httpx: httpx.AsyncClient costs ~3 ms of CPU per request
with 32 in flight (encode/httpx#3215), so on two cores it would mostly measure itself.

Everything it starts runs in its own process group and is stopped by PID, also on Ctrl-C
or SIGTERM. It prints numbers and never asserts times; the last line is ``RESULT …``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import httpx
import redis.asyncio as redis_asyncio
from fastapi import FastAPI
from rich import box
from rich.console import Console
from rich.table import Table
from sqlalchemy import text

from marquee_contracts.inventory import (
    AVAILABILITY_CHANGED,
    HOLD_CREATED,
    HOLD_EXPIRED,
    HOLD_RELEASED,
    HOLD_REQUESTED,
)
from marquee_inventory import handlers, queue
from marquee_inventory.domain import SeatMap, best_available
from marquee_inventory.holds import EventKeys
from marquee_inventory.main import SERVICE
from marquee_inventory.settings import InventorySettings
from marquee_inventory.store import HoldStore
from marquee_platform.app import create_service_app
from marquee_platform.db import Database, to_libpq_dsn
from marquee_platform.http import router
from marquee_platform.kafka import ensure_topics
from marquee_platform.migrations import drop_database, ensure_database, upgrade_async
from marquee_platform.security import CurrentUser, create_token_verifier
from marquee_testing.inventory import Catalog, PublishedEvent, published_event
from marquee_testing.localinfra import (
    Broker,
    die_with_parent,
    free_port,
    start_tansu,
    stop_process,
    wait_for_port,
)

HOLDS_PATH = "/api/v1/inventory/events/{event_id}/holds"
BARE_PATH = "/bare/events/{event_id}/holds"
PLATFORM_PATH = "/platform/events/{event_id}/holds"
MODE_SEATS_PER_ROW = 200
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
BENCH_DIR = Path(__file__).resolve().parent
STARTED = time.monotonic()

console = Console(width=None if sys.stdout.isatty() else 118)


def progress(message: str) -> None:
    print(f"[{time.monotonic() - STARTED:5.0f}s] {message}", file=sys.stderr, flush=True)


# ---- the comparison apps (each served by its own uvicorn process) ------------------------


def create_bare_app() -> FastAPI:
    """The floor a hold is compared with: the inventory settings (``INVENTORY_*``), the
    same token verifier and ``CurrentUser`` dependency, a tiny JSON; nothing else."""
    settings = InventorySettings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with httpx.AsyncClient() as jwks_client:
            app.state.token_verifier = create_token_verifier(
                jwks_url=settings.jwks_url,
                issuer=settings.jwt_issuer,
                audience=settings.jwt_audience,
                client=jwks_client,
            )
            yield

    app = FastAPI(lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None)

    @app.post(BARE_PATH, status_code=201)
    async def bare_hold(event_id: uuid.UUID, user: CurrentUser) -> dict[str, str]:
        return {"event_id": str(event_id), "user_id": user.user_id}

    return app


def create_platform_app() -> FastAPI:
    """The bare endpoint inside the platform's app factory (request context and tracing,
    metrics, problem handlers, the storable-input check, a transactional route): what
    every service pays before its own work. Not in the ratio; it splits a hold's cost."""
    settings = InventorySettings()
    routes = router(prefix="/platform/events")

    @routes.post("/{event_id:uuid}/holds", status_code=201)
    async def platform_hold(event_id: uuid.UUID, user: CurrentUser) -> dict[str, str]:
        return {"event_id": str(event_id), "user_id": user.user_id}

    return create_service_app(
        settings,
        title="holds bench: platform floor",
        description="",
        routers=[routes],
        uses_kafka=False,
    )


# ---- processes -----------------------------------------------------------------------------


def spawn(command: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    """``command`` in its own process group (stopped with :func:`stop_process`), killed
    too if this process dies, its output in ``log``."""
    with log.open("wb") as out:
        return subprocess.Popen(
            command,
            env={**os.environ, **env},
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=die_with_parent(),
        )


def spawn_uvicorn(
    factory: str, port: int, env: dict[str, str], log: Path
) -> subprocess.Popen[bytes]:
    """``factory`` served on 127.0.0.1:``port`` by one uvicorn worker."""
    command = [
        sys.executable,
        "-m",
        "uvicorn",
        "--factory",
        factory,
        "--app-dir",
        str(BENCH_DIR),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        "1",
        "--no-access-log",
        "--no-proxy-headers",
        "--log-level",
        "warning",
    ]
    return spawn(command, env, log)


def cpu_seconds(pid: int) -> float:
    """User + system CPU time a process has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


async def redis_cpu_seconds(redis: Any) -> float:
    info = await redis.info("cpu")
    return float(info["used_cpu_user"]) + float(info["used_cpu_sys"])


# ---- tokens --------------------------------------------------------------------------------


class Signer:
    """Signs access tokens as auth does (EdDSA, a ``kid``) and serves their JWKS."""

    def __init__(self) -> None:
        from cryptography.hazmat.primitives.asymmetric import ed25519
        from jwt.algorithms import OKPAlgorithm

        self._key = ed25519.Ed25519PrivateKey.generate()
        self.kid = f"bench-{uuid.uuid4().hex[:8]}"
        public = OKPAlgorithm.to_jwk(self._key.public_key(), as_dict=True)
        self.document = {"keys": [{**public, "kid": self.kid, "use": "sig", "alg": "EdDSA"}]}

    def headers(self, user_id: str, role: str = "customer") -> dict[str, str]:
        import jwt

        now = int(time.time())
        claims = {
            "sub": user_id,
            "roles": [role],
            "iss": "marquee-auth",
            "aud": "marquee",
            "iat": now,
            "exp": now + 1800,
            "jti": uuid.uuid4().hex,
        }
        token = jwt.encode(claims, self._key, algorithm="EdDSA", headers={"kid": self.kid})
        return {"authorization": f"Bearer {token}", "content-type": "application/json"}

    def serve(self) -> contextlib.AbstractContextManager[str]:
        """The JWKS on 127.0.0.1 from a thread of this process; yields its base URL."""
        from marquee_testing.fixtures import serve_in_thread

        app = FastAPI()
        document = self.document

        @app.get("/.well-known/jwks.json")
        async def jwks() -> dict[str, Any]:
            return document

        return serve_in_thread(app)


# ---- load generation -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Job:
    url: str
    body: bytes
    headers: dict[str, str]
    seat: tuple[uuid.UUID, str] | None = None
    """(event, seat) asked for; a 201 answer is kept for the oversold count."""


@dataclass(frozen=True, slots=True)
class Endpoint:
    name: str
    base: str
    path: str
    pid: int


@dataclass
class Round:
    kind: str
    elapsed: float = 0.0
    latencies: list[float] = field(default_factory=list)
    statuses: Counter[str] = field(default_factory=Counter)
    answers: list[tuple[tuple[uuid.UUID, str], bytes]] = field(default_factory=list)
    refusals: list[str] = field(default_factory=list)
    server_cpu: float = 0.0
    client_cpu: float = 0.0
    redis_cpu: float = 0.0
    ran_dry: bool = False

    @property
    def ok(self) -> int:
        return len(self.latencies)

    @property
    def rate(self) -> float:
        return self.ok / self.elapsed if self.elapsed else 0.0

    def per_request_ms(self, seconds: float) -> float:
        return seconds * 1000 / max(1, self.ok)

    @property
    def not_ok(self) -> dict[str, int]:
        return {status: n for status, n in self.statuses.items() if status != "201"}


def seat_body(seat: str) -> bytes:
    return json.dumps({"seats": [{"seat_id": seat}]}, separators=(",", ":")).encode()


async def send(client: aiohttp.ClientSession, job: Job, result: Round) -> float | None:
    """One request; its latency if answered 201, else None (and the answer counted)."""
    started = time.perf_counter()
    try:
        async with client.post(job.url, data=job.body, headers=job.headers) as response:
            status = response.status
            content = await response.read()
    except (aiohttp.ClientError, TimeoutError) as error:
        result.statuses[type(error).__name__] += 1
        return None
    elapsed = time.perf_counter() - started
    result.statuses[str(status)] += 1
    if status != 201:
        if len(result.refusals) < 3:
            result.refusals.append(f"{status} {content[:160].decode(errors='replace')}")
        return None
    if job.seat is not None:
        result.answers.append((job.seat, content))
    return elapsed


@asynccontextmanager
async def measured(result: Round, server_pid: int, redis: Any) -> AsyncIterator[None]:
    """Wall time of the block, and the CPU the server, Redis and this process used."""
    server, client = cpu_seconds(server_pid), time.process_time()
    redis_before = await redis_cpu_seconds(redis)
    started = time.perf_counter()
    yield
    result.elapsed = time.perf_counter() - started
    result.server_cpu = cpu_seconds(server_pid) - server
    result.client_cpu = time.process_time() - client
    result.redis_cpu = await redis_cpu_seconds(redis) - redis_before


async def closed_loop(
    client: aiohttp.ClientSession,
    jobs: Iterator[Job],
    *,
    kind: str,
    concurrency: int,
    seconds: float | None,
    server_pid: int,
    redis: Any,
) -> Round:
    """``concurrency`` clients, each sending its next request when the last one answered,
    for ``seconds`` (None: until ``jobs`` runs out)."""
    result = Round(kind)

    async def client_loop(deadline: float) -> None:
        while time.perf_counter() < deadline:
            job = next(jobs, None)
            if job is None:
                result.ran_dry = True
                return
            latency = await send(client, job, result)
            if latency is not None:
                result.latencies.append(latency)

    async with measured(result, server_pid, redis):
        deadline = time.perf_counter() + (seconds if seconds is not None else 1e9)
        await asyncio.gather(*(client_loop(deadline) for _ in range(concurrency)))
    return result


async def open_loop(
    client: aiohttp.ClientSession,
    jobs: Iterator[Job],
    *,
    kind: str,
    rate: float,
    seconds: float,
    server_pid: int,
    redis: Any,
) -> Round:
    """Requests started at a fixed rate whatever the answers; a latency runs from the
    request's scheduled start, so time queued behind slow answers counts."""
    result = Round(kind)
    tasks: list[asyncio.Task[None]] = []

    async def one(job: Job, scheduled: float) -> None:
        if await send(client, job, result) is not None:
            result.latencies.append(time.perf_counter() - scheduled)

    async with measured(result, server_pid, redis):
        begin = time.perf_counter()
        for index in range(int(rate * seconds)):
            job = next(jobs, None)
            if job is None:
                result.ran_dry = True
                break
            scheduled = begin + index / rate
            delay = scheduled - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(one(job, scheduled)))
        await asyncio.gather(*tasks)
    return result


def percentile(values: Sequence[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))] if ordered else 0.0


def ms(values: Sequence[float], fraction: float) -> float:
    return percentile(values, fraction) * 1000


def table(title: str, columns: Sequence[str], left: int = 1) -> Table:
    made = Table(title=title, box=box.SIMPLE_HEAD, title_justify="left")
    for index, column in enumerate(columns):
        made.add_column(column, justify="left" if index < left else "right")
    return made


# ---- the bench -----------------------------------------------------------------------------


@dataclass
class Bench:
    args: argparse.Namespace
    database: Database
    database_url: str
    redis: Any
    store: HoldStore
    signer: Signer
    client: aiohttp.ClientSession | None = None
    inventory: Endpoint | None = None
    held: dict[tuple[uuid.UUID, str], list[str]] = field(default_factory=dict)
    """(event, seat) → the hold id of every 201 answer that names it."""
    mismatched: int = 0
    """201 answers for a seat other than the one asked."""

    async def publish(
        self, rows: int, seats_per_row: int = 200, *, high_demand: bool = False
    ) -> PublishedEvent:
        started = time.perf_counter()
        event = published_event(rows=rows, seats_per_row=seats_per_row, high_demand=high_demand)
        await Catalog(self.database, self.store).publish(event)
        progress(
            f"published a {rows * seats_per_row:,}-seat "
            f"{'high-demand ' if high_demand else ''}event through the Catalog harness "
            f"in {time.perf_counter() - started:.1f}s"
        )
        return event

    def http(self) -> tuple[aiohttp.ClientSession, Endpoint]:
        """The load generator's client and the inventory app (both set once started)."""
        assert self.client is not None
        assert self.inventory is not None
        return self.client, self.inventory

    def record(self, answers: Sequence[tuple[tuple[uuid.UUID, str], bytes]]) -> None:
        for (event_id, asked), raw in answers:
            body = json.loads(raw)
            seats = [seat["seat_id"] for seat in body["seats"]]
            for seat in seats:
                self.held.setdefault((event_id, seat), []).append(body["hold_id"])
            if asked and seats != [asked]:
                self.mismatched += 1


def all_seats(event: PublishedEvent) -> list[str]:
    return [
        seat for ids in event.message.seating.seat_ids_by_price_category.values() for seat in ids
    ]


def seat_pool(events: list[PublishedEvent]) -> Iterator[tuple[uuid.UUID, str]]:
    """Every seat of the hot events once, each event's seats shuffled; events appended to
    ``events`` while this runs are used too."""
    rng = random.Random(5)  # noqa: S311 - a load pattern
    for event in events:
        seats = all_seats(event)
        rng.shuffle(seats)
        for seat in seats:
            yield event.event_id, seat


def hold_jobs(
    base: str, pool: Iterator[tuple[uuid.UUID, str]], users: Iterator[dict[str, str]]
) -> Iterator[Job]:
    for event_id, seat in pool:
        headers = next(users, None)
        if headers is None:
            return
        yield Job(
            base + HOLDS_PATH.format(event_id=event_id), seat_body(seat), headers, (event_id, seat)
        )


def repeating_jobs(
    endpoint: Endpoint, event_id: uuid.UUID, users: list[dict[str, str]]
) -> Iterator[Job]:
    """The same request body as a hold, a new user's token each time."""
    url = endpoint.base + endpoint.path.format(event_id=event_id)
    body = seat_body("S0-R0-0")
    index = 0
    while True:
        yield Job(url, body, users[index % len(users)])
        index += 1


async def section_throughput(
    bench: Bench, endpoints: dict[str, Endpoint], hot: list[PublishedEvent]
) -> dict[str, Any]:
    args, (client, _) = bench.args, bench.http()
    users: list[dict[str, str]] = []

    def sign_for(events: Sequence[PublishedEvent]) -> None:
        count = sum(event.message.seating.capacity for event in events)
        progress(f"signing {count:,} access tokens (one user per seat) …")
        users.extend(bench.signer.headers(f"fan-{len(users) + n}") for n in range(count))

    sign_for(hot)
    pool = seat_pool(hot)
    jobs = {
        # A list iterator also yields what is appended later: the tokens of new hot events.
        "holds": hold_jobs(endpoints["holds"].base, pool, iter(users)),
        **{
            name: repeating_jobs(endpoint, hot[0].event_id, users)
            for name, endpoint in endpoints.items()
            if name != "holds"
        },
    }

    async def one_round(name: str, seconds: float) -> Round:
        result = await closed_loop(
            client,
            jobs[name],
            kind=name,
            concurrency=args.concurrency,
            seconds=seconds,
            server_pid=endpoints[name].pid,
            redis=bench.redis,
        )
        bench.record(result.answers)
        return result

    progress("warming up every endpoint …")
    warm = {name: await one_round(name, 1.5) for name in endpoints}
    # Enough seats for every round at the warm-up's pace with room to spare; each more
    # hot event is published before the rounds, not during them.
    wanted = warm["holds"].rate * 1.5 * (args.rounds * args.round_seconds + args.below_seconds)
    wanted += args.race_seats + 1000
    while sum(event.message.seating.capacity for event in hot) < wanted and len(hot) < 6:
        hot.append(await bench.publish(100))
        sign_for(hot[-1:])

    rounds: list[Round] = []
    for number in range(1, args.rounds + 1):
        for name in endpoints:
            result = await one_round(name, args.round_seconds)
            rounds.append(result)
            progress(
                f"round {number} {name:8}: {result.rate:6.0f}/s  p50 "
                f"{ms(result.latencies, 0.5):6.1f} ms  p99 {ms(result.latencies, 0.99):6.1f} ms"
                + (f"  not 201: {result.not_ok}" if result.not_ok else "")
            )
            if result.ran_dry:
                progress("the hot events ran out of seats: no more rounds")
                break
        if rounds[-1].ran_dry:
            break

    by_kind = {name: [r for r in rounds if r.kind == name] for name in endpoints}
    rate = {name: statistics.median(r.rate for r in done) for name, done in by_kind.items() if done}
    cpu = {
        name: statistics.median(r.per_request_ms(r.server_cpu) for r in done)
        for name, done in by_kind.items()
        if done
    }
    below_rate = max(10.0, rate["holds"] * args.below_fraction)
    progress(f"open loop at {below_rate:.0f} requests/s, {args.below_seconds:.0f}s each …")
    below: dict[str, Round] = {}
    for name in ("holds", "bare"):
        below[name] = await open_loop(
            client,
            jobs[name],
            kind=name,
            rate=below_rate,
            seconds=args.below_seconds,
            server_pid=endpoints[name].pid,
            redis=bench.redis,
        )
        bench.record(below[name].answers)

    rows = table(
        f"1. holds vs a bare endpoint doing the same JWT check: {args.concurrency} concurrent "
        f"clients, {args.round_seconds:.0f} s rounds, interleaved",
        [
            "round",
            "endpoint",
            "req/s",
            "p50 ms",
            "p99 ms",
            "max ms",
            "server CPU ms/req",
            "Redis CPU ms/req",
            "load-gen CPU ms/req",
            "not 201",
        ],
        left=2,
    )
    for index, result in enumerate(rounds):
        rows.add_row(
            str(index // len(endpoints) + 1),
            result.kind,
            f"{result.rate:,.0f}",
            f"{ms(result.latencies, 0.5):.1f}",
            f"{ms(result.latencies, 0.99):.1f}",
            f"{ms(result.latencies, 1.0):.1f}",
            f"{result.per_request_ms(result.server_cpu):.2f}",
            f"{result.per_request_ms(result.redis_cpu):.3f}",
            f"{result.per_request_ms(result.client_cpu):.2f}",
            ", ".join(f"{status}: {n}" for status, n in result.not_ok.items()) or "0",
        )
    console.print(rows)
    latencies = {name: [v for r in done for v in r.latencies] for name, done in by_kind.items()}
    summary = table(
        "saturation (closed loop, medians of rounds) and below it (open loop)",
        ["", "holds", "bare", "holds/bare", "target", "platform floor"],
    )
    holds_rate, bare_rate = rate["holds"], rate.get("bare", 0.0)
    ratio = holds_rate / bare_rate if bare_rate else 0.0
    summary.add_row(
        "throughput",
        f"{holds_rate:,.0f}/s",
        f"{bare_rate:,.0f}/s",
        f"{ratio:.2f}",
        ">= 0.5",
        f"{rate.get('platform', 0):,.0f}/s",
    )
    summary.add_row(
        "server CPU per request",
        f"{cpu['holds']:.2f} ms",
        f"{cpu.get('bare', 0):.2f} ms",
        f"{cpu['holds'] / cpu['bare']:.1f} times" if cpu.get("bare") else "",
        "",
        f"{cpu.get('platform', 0):.2f} ms",
    )
    summary.add_row(
        "saturated p50 / p99 (every round)",
        f"{ms(latencies['holds'], 0.5):.1f} / {ms(latencies['holds'], 0.99):.1f} ms",
        f"{ms(latencies.get('bare', []), 0.5):.1f} / {ms(latencies.get('bare', []), 0.99):.1f} ms",
        "",
        "",
        f"{ms(latencies.get('platform', []), 0.5):.1f} / "
        f"{ms(latencies.get('platform', []), 0.99):.1f} ms",
    )
    summary.add_row(
        f"open loop at {below_rate:,.0f}/s: achieved",
        f"{below['holds'].rate:,.0f}/s",
        f"{below['bare'].rate:,.0f}/s",
        "",
        "",
        "",
    )
    summary.add_row(
        "open loop p50 / p99",
        f"{ms(below['holds'].latencies, 0.5):.1f} / {ms(below['holds'].latencies, 0.99):.1f} ms",
        f"{ms(below['bare'].latencies, 0.5):.1f} / {ms(below['bare'].latencies, 0.99):.1f} ms",
        "",
        "holds p99 < 50 ms",
        "",
    )
    summary.add_row(
        "open loop max; not 201",
        f"{ms(below['holds'].latencies, 1.0):.1f} ms; {sum(below['holds'].not_ok.values())}",
        f"{ms(below['bare'].latencies, 1.0):.1f} ms; {sum(below['bare'].not_ok.values())}",
        "",
        "",
        "",
    )
    console.print(summary)
    refusals = [line for r in [*rounds, *below.values()] for line in r.refusals]
    if refusals:
        console.print("   answers other than 201: " + " | ".join(refusals[:3]), markup=False)
    console.print(
        f"   hot events: {len(hot)} of 20,000 seats. CPU: the server process (/proc), Redis "
        "(INFO; the whole server, shared with anyone else using it), this load generator. "
        "'platform floor': the bare endpoint inside create_service_app."
    )
    return {
        "holds_rate": holds_rate,
        "bare_rate": bare_rate,
        "ratio": ratio,
        "p50": ms(latencies["holds"], 0.5),
        "p99": ms(latencies["holds"], 0.99),
        "pool": pool,
    }


async def section_race(bench: Bench, pool: Iterator[tuple[uuid.UUID, str]]) -> tuple[int, Round]:
    """Four users race for each of ``--race-seats`` seats: one 201 per seat expected;
    returns how many seats, and the round."""
    args, (client, inventory) = bench.args, bench.http()
    seats = [seat for seat in (next(pool, None) for _ in range(args.race_seats)) if seat]
    progress(f"race: {len(seats):,} seats, 4 users each …")
    jobs = [
        Job(
            inventory.base + HOLDS_PATH.format(event_id=event_id),
            seat_body(seat),
            bench.signer.headers(f"racer-{index}-{racer}"),
            (event_id, seat),
        )
        for index, (event_id, seat) in enumerate(seats)
        for racer in range(4)
    ]
    random.Random(11).shuffle(jobs)  # noqa: S311 - a load pattern
    result = await closed_loop(
        client,
        iter(jobs),
        kind="race",
        concurrency=args.concurrency,
        seconds=None,
        server_pid=inventory.pid,
        redis=bench.redis,
    )
    bench.record(result.answers)
    return len(seats), result


async def count_oversold(bench: Bench, event_ids: Sequence[uuid.UUID]) -> Counter[str]:
    """Seats two parties hold or bought at once, by every source there is: the 201 answers
    (a seat in two live holds), Redis (the seat held by another hold, or sold) and
    sold_seats (held and sold). The holds checked still live (their TTL is 300 s)."""
    counts = Counter[str]()
    answered: dict[uuid.UUID, dict[str, list[str]]] = {}
    for (event_id, seat), hold_ids in bench.held.items():
        answered.setdefault(event_id, {})[seat] = hold_ids
    for event_id in event_ids:
        keys = EventKeys.of(event_id)
        raw_states = await bench.redis.hgetall(keys.seats)
        states = {seat.decode(): state.decode() for seat, state in raw_states.items()}
        free_counter = int(await bench.redis.hget(keys.meta, "seats_free") or -1)
        async with bench.database.reading() as session:
            rows = await session.execute(
                text("SELECT seat_id FROM sold_seats WHERE event_id = :e"), {"e": event_id}
            )
            sold = {row[0] for row in rows}
        answers = answered.get(event_id, {})
        for seat, hold_ids in answers.items():
            counts["seats in 201 answers"] += 1
            state = states.get(seat, "")
            if len(hold_ids) > 1 or seat in sold or state.startswith("s:"):
                counts["oversold"] += 1
            elif state == "a":
                counts["held (201) but free in Redis"] += 1
            elif state != f"h:{hold_ids[0]}":
                counts["oversold"] += 1
        held_in_redis = {seat for seat, state in states.items() if state.startswith("h:")}
        counts["held in Redis without a 201 seen"] += len(held_in_redis - answers.keys())
        held_and_sold = len(held_in_redis & sold)
        counts["held in Redis and in sold_seats"] += held_and_sold
        counts["oversold"] += held_and_sold
        available = sum(1 for state in states.values() if state == "a")
        counts["seats_free counter off by"] += abs(available - free_counter)
    return counts


def sold_pattern(event: PublishedEvent) -> set[str]:
    """60% of the seats sold, scattered, front rows fuller: row r of n sells each seat with
    probability 0.9 - 0.6 * r / (n - 1), drawn independently (seeded)."""
    rng = random.Random(7)  # noqa: S311 - a sales pattern
    sold = set()
    for section in event.message.seating.sections or []:
        last = max(1, len(section.rows) - 1)
        for index, row in enumerate(section.rows):
            chance = 0.9 - 0.6 * index / last
            sold.update(seat.id for seat in row.seats if rng.random() < chance)
    return sold


async def fill_sold(bench: Bench, event: PublishedEvent, seats: set[str]) -> float:
    """Make exactly ``seats`` sold in sold_seats (COPY, orders of two); returns seconds."""
    ticket_type = next(iter(event.seated.values()))
    now = datetime.now(UTC)
    records = []
    order = uuid.uuid4()
    for index, seat in enumerate(sorted(seats)):
        if index % 2 == 0:
            order = uuid.uuid4()
        records.append((event.event_id, seat, order, ticket_type, now))
    connection = await asyncpg.connect(to_libpq_dsn(bench.database_url))
    try:
        started = time.perf_counter()
        await connection.execute("DELETE FROM sold_seats WHERE event_id = $1", event.event_id)
        await connection.copy_records_to_table(
            "sold_seats",
            records=records,
            columns=["event_id", "seat_id", "order_id", "ticket_type_id", "sold_at"],
        )
        await connection.execute("ANALYZE sold_seats")
        return time.perf_counter() - started
    finally:
        await connection.close()


def section_best_available_in_process(bench: Bench, event: PublishedEvent) -> list[list[str]]:
    sections = [section.model_dump() for section in event.message.seating.sections or []]
    seat_map = SeatMap.from_sections(sections)
    free = set(seat_map.seats) - sold_pattern(event)
    rows = []
    for count in (2, 4):
        timings = []
        placed = None
        for _ in range(bench.args.best_available_calls):
            started = time.perf_counter()
            placed = best_available(seat_map, free, count)
            timings.append(time.perf_counter() - started)
        rows.append(
            [
                f"in-process, count {count}",
                f"{ms(timings, 0.5):.2f}",
                f"{ms(timings, 0.99):.2f}",
                str(len(timings)),
                f"row {placed.seats[0].row_label}, {placed.rule.value}" if placed else "none",
            ]
        )
    return rows


async def section_best_available_api(bench: Bench, event: PublishedEvent) -> list[list[str]]:
    """60% sold in PostgreSQL and Redis, then sequential best-available holds."""
    args, (client, inventory) = bench.args, bench.http()
    await fill_sold(bench, event, sold_pattern(event))
    await handlers.rebuild_event(
        event.event_id, database=bench.database, store=bench.store, force=True
    )
    url = inventory.base + HOLDS_PATH.format(event_id=event.event_id)
    timings: dict[int, list[float]] = {2: [], 4: []}
    statuses = Counter[str]()
    cold = 0.0
    budget = time.perf_counter() + args.best_available_seconds
    for index in range(args.best_available_requests + 1):
        if index and time.perf_counter() > budget:
            break
        count = 2 if index % 2 else 4
        body = json.dumps({"best_available": {"count": count}}).encode()
        headers = bench.signer.headers(f"best-{index}")
        started = time.perf_counter()
        async with client.post(url, data=body, headers=headers) as response:
            content = await response.read()
        elapsed = time.perf_counter() - started
        statuses[str(response.status)] += 1
        if response.status == 201:
            bench.record([((event.event_id, ""), content)])
        if index == 0:
            cold = elapsed  # the first loads the seat map from PostgreSQL (once per process)
        else:
            timings[count].append(elapsed)
    made = sum(len(values) for values in timings.values())
    rows = [
        [
            f"API, count {count}",
            f"{ms(values, 0.5):.1f}",
            f"{ms(values, 0.99):.1f}",
            str(len(values)),
            "1 client, sequential",
        ]
        for count, values in timings.items()
    ]
    every = timings[2] + timings[4]
    rows.append(
        [
            "API, both",
            f"{ms(every, 0.5):.1f}",
            f"{ms(every, 0.99):.1f}",
            str(made),
            f"answers {dict(statuses)}; first request (loads the seat map) {cold * 1000:.0f} ms"
            + (
                f"; stopped at the {args.best_available_seconds:.0f} s budget"
                if made < args.best_available_requests
                else ""
            ),
        ]
    )
    return rows


class TimedStore(HoldStore):
    """The hold store with the Redis half of a rebuild (the INSTALL script) timed."""

    def __init__(self, redis: Any) -> None:
        super().__init__(redis)
        self.install_seconds: list[float] = []

    async def install(self, event_id: uuid.UUID, **kwargs: Any) -> bool:
        started = time.perf_counter()
        try:
            return await super().install(event_id, **kwargs)
        finally:
            self.install_seconds.append(time.perf_counter() - started)


async def section_rebuild(bench: Bench, event: PublishedEvent) -> list[str]:
    copy_seconds = await fill_sold(bench, event, set(all_seats(event)))
    store = TimedStore(bench.redis)
    totals = []
    for run in range(bench.args.rebuilds):
        started = time.perf_counter()
        await handlers.rebuild_event(
            event.event_id, database=bench.database, store=store, force=True
        )
        totals.append(time.perf_counter() - started)
        progress(f"rebuild {run + 1}: {totals[-1] * 1000:.0f} ms")
    free = int(await bench.redis.hget(EventKeys.of(event.event_id).meta, "seats_free"))
    return [
        f"{event.message.seating.capacity:,} seats, every one in sold_seats (COPY of the rows: "
        f"{copy_seconds:.2f} s); seats free in Redis after the rebuild: {free}",
        f"rebuild_event(force=True): median {statistics.median(totals) * 1000:.0f} ms "
        f"(runs: {', '.join(f'{t * 1000:.0f}' for t in totals)} ms)",
        f"  of which the INSTALL script, during which Redis serves nobody else: median "
        f"{statistics.median(store.install_seconds) * 1000:.0f} ms",
    ]


async def section_expiry(bench: Bench, event: PublishedEvent) -> dict[str, Any]:
    """Holds with a 30 s TTL; each deadline to its seat showing available in Redis."""
    args, (client, inventory) = bench.args, bench.http()
    organizer = bench.signer.headers(event.message.organizer_id, role="organizer")
    async with client.put(
        f"{inventory.base}/api/v1/inventory/events/{event.event_id}/hold-settings",
        data=json.dumps({"hold_ttl_seconds": 30}),
        headers=organizer,
    ) as response:
        assert response.status == 200, await response.text()
    keys = EventKeys.of(event.event_id)
    ttl_ms = int(await bench.redis.hget(keys.meta, "ttl_ms"))
    jobs = [
        Job(
            inventory.base + HOLDS_PATH.format(event_id=event.event_id),
            seat_body(seat),
            bench.signer.headers(f"expiry-{index}"),
            (event.event_id, seat),
        )
        for index, seat in enumerate(all_seats(event)[: args.expiry_holds])
    ]
    progress(f"expiry: {len(jobs):,} holds with a {ttl_ms / 1000:.0f} s TTL …")
    made = await closed_loop(
        client,
        iter(jobs),
        kind="expiry",
        concurrency=args.concurrency,
        seconds=None,
        server_pid=inventory.pid,
        redis=bench.redis,
    )
    deadlines = sorted(
        (datetime.fromisoformat(json.loads(raw)["expires_at"]).timestamp(), seat)
        for (_, seat), raw in made.answers
    )
    if not deadlines:
        return {
            "holds": 0,
            "ttl_s": ttl_ms / 1000,
            "lags": [],
            "never": 0,
            "poll_ms": 0.0,
            "spread_s": 0.0,
            "rate": made.rate,
        }
    first, last = deadlines[0][0], deadlines[-1][0]
    progress(f"expiry: waiting {max(0.0, first - time.time()):.0f} s for the first deadline …")
    await asyncio.sleep(max(0.0, first - time.time() - 0.2))
    lags: list[float] = []
    poll_gaps: list[float] = []
    due: dict[str, float] = {}
    position = 0
    previous_poll = time.time()
    while (position < len(deadlines) or due) and time.time() < last + 30:
        now = time.time()
        while position < len(deadlines) and deadlines[position][0] <= now:
            due[deadlines[position][1]] = deadlines[position][0]
            position += 1
        if due:
            names = list(due)
            states = await bench.redis.hmget(keys.seats, names)
            seen = time.time()
            poll_gaps.append(seen - previous_poll)
            previous_poll = seen
            for seat, state in zip(names, states, strict=True):
                if state == b"a":
                    lags.append(seen - due.pop(seat))
        await asyncio.sleep(args.poll_interval)
    return {
        "holds": made.ok,
        "rate": made.rate,
        "ttl_s": ttl_ms / 1000,
        "lags": lags,
        "never": len(due) + len(deadlines) - position,
        "poll_ms": statistics.median(poll_gaps) * 1000 if poll_gaps else 0.0,
        "spread_s": last - first,
    }


# ---- 6. direct vs high-demand mode ---------------------------------------------------------


@dataclass(slots=True)
class Ask:
    """One fan's hold request in section 6 and what became of it (wall-clock seconds: the
    consumer's ``decided_at`` is compared with them)."""

    fan: int
    seat: str
    headers: dict[str, str]
    sent: float = 0.0
    answered: float = 0.0
    status: str = ""
    request_id: str = ""
    requested: float = 0.0
    """Queued: the ``requested_at`` the API recorded (its clock, just before enqueueing)."""
    decided: float = 0.0
    outcome: str = ""
    """``held``, ``refused``, ``pending`` or the answer it got instead."""
    hold_id: str = ""
    code: str = ""


@dataclass
class ModeRun:
    mode: str
    asks: list[Ask]
    api_cpu: float = 0.0
    consumer_cpu: float = 0.0
    undecided: int = 0
    seat_mismatches: int = 0


def wall(value: bytes | str | None) -> float:
    if not value:
        return 0.0
    return datetime.fromisoformat(value.decode() if isinstance(value, bytes) else value).timestamp()


async def send_ask(client: aiohttp.ClientSession, url: str, ask: Ask) -> None:
    ask.sent = time.time()
    try:
        async with client.post(url, data=seat_body(ask.seat), headers=ask.headers) as response:
            status = response.status
            content = await response.read()
    except (aiohttp.ClientError, TimeoutError) as error:
        ask.answered = time.time()
        ask.status = ask.outcome = type(error).__name__
        return
    ask.answered = time.time()
    ask.status = str(status)
    try:
        body = json.loads(content)
    except ValueError:
        body = {}
    if status == 201:
        ask.outcome, ask.hold_id, ask.decided = "held", body["hold_id"], ask.answered
    elif status == 202:
        ask.outcome, ask.request_id = "pending", body["request_id"]
    elif status == 409:  # a problem document: the code ends its type URI
        ask.outcome, ask.decided = "refused", ask.answered
        ask.code = str(body.get("type", "")).rsplit("/", 1)[-1]
    else:
        ask.outcome = str(status)


async def drive(
    client: aiohttp.ClientSession, url: str, asks: Sequence[Ask], concurrency: int
) -> None:
    """``concurrency`` fans in flight; the next fan asks as soon as one is answered."""
    queue_of_fans = iter(asks)

    async def fan_loop() -> None:
        for ask in queue_of_fans:  # shared: each loop takes the next fan
            await send_ask(client, url, ask)

    await asyncio.gather(*(fan_loop() for _ in range(concurrency)))


async def await_decisions(
    redis: Any,
    event_id: uuid.UUID,
    asks: Sequence[Ask],
    *,
    timeout: float,
    consumer: subprocess.Popen[bytes],
) -> int:
    """Poll the queued requests' Redis records until none is pending; how many still are."""
    waiting = [ask for ask in asks if ask.outcome == "pending"]
    deadline = time.monotonic() + timeout
    while waiting:
        async with redis.pipeline(transaction=False) as pipe:
            for ask in waiting:
                pipe.hmget(
                    queue.request_key(event_id, ask.request_id),
                    "status",
                    "requested_at",
                    "decided_at",
                    "hold_id",
                    "problem",
                )
            rows = await pipe.execute()
        still = []
        for ask, (status, requested_at, decided_at, hold_id, problem) in zip(
            waiting, rows, strict=True
        ):
            ask.requested = ask.requested or wall(requested_at)
            if status in (None, b"pending") or not decided_at:
                still.append(ask)
                continue
            ask.outcome, ask.decided = status.decode(), wall(decided_at)
            ask.hold_id = hold_id.decode() if hold_id else ""
            ask.code = json.loads(problem).get("code", "") if problem else ""
        waiting = still
        if not waiting or time.monotonic() > deadline:
            break
        if consumer.poll() is not None:
            raise RuntimeError(f"the inventory consumer exited ({consumer.returncode})")
        await asyncio.sleep(0.1)
    return len(waiting)


async def seat_mismatches(redis: Any, event_id: uuid.UUID, asks: Sequence[Ask]) -> int:
    """Asked seats whose Redis state disagrees with the decisions: held by two, held by
    another hold than the one decided, or held with no held decision seen."""
    holders: dict[str, list[str]] = {}
    for ask in asks:
        holders.setdefault(ask.seat, [])
        if ask.outcome == "held":
            holders[ask.seat].append(ask.hold_id)
    seats = list(holders)
    states = await redis.hmget(EventKeys.of(event_id).seats, seats)
    wrong = 0
    for seat, raw in zip(seats, states, strict=True):
        state, held = (raw or b"").decode(), holders[seat]
        expected = f"h:{held[0]}" if len(held) == 1 else "a" if not held else None
        wrong += state != expected
    return wrong


def fairness(asks: Sequence[Ask], arrival: str) -> dict[str, Any]:
    """Per seat asked by more than one fan (decided asks only), in ``arrival`` order: was
    it held by its first asker, and how many earlier askers were refused while a later
    one got it (inversions; gaps: how much earlier than the winner they asked)."""
    by_seat: dict[str, list[Ask]] = {}
    for ask in asks:
        if ask.outcome in ("held", "refused"):
            by_seat.setdefault(ask.seat, []).append(ask)
    contested = first = inversions = nobody = 0
    gaps: list[float] = []
    for group in by_seat.values():
        if len(group) < 2:
            continue
        contested += 1
        group.sort(key=lambda ask: (getattr(ask, arrival), ask.fan))
        winner = next((i for i, ask in enumerate(group) if ask.outcome == "held"), None)
        if winner is None:
            nobody += 1
            continue
        first += winner == 0
        inversions += winner
        won_at = getattr(group[winner], arrival)
        gaps.extend(won_at - getattr(ask, arrival) for ask in group[:winner])
    return {
        "contested": contested,
        "first": first,
        "inversions": inversions,
        "nobody": nobody,
        "gaps": gaps,
    }


def mode_stats(run: ModeRun) -> dict[str, Any]:
    asks = run.asks
    accepted_status = "202" if run.mode == "queued" else None
    start = min(ask.sent for ask in asks)
    last_answer = max(ask.answered for ask in asks)
    decided = [ask for ask in asks if ask.decided]
    accepted = [
        ask
        for ask in asks
        if (ask.status == accepted_status if accepted_status else ask.status in ("201", "409"))
    ]
    last_decision = max((ask.decided for ask in decided), default=start)
    first_decision = min((ask.decided for ask in decided), default=start)
    outcomes = Counter(ask.outcome for ask in asks)
    return {
        "accepted_rate": len(accepted) / max(1e-9, last_answer - start),
        "accepted": len(accepted),
        "answer": [ask.answered - ask.sent for ask in asks],
        "decision": [ask.decided - ask.sent for ask in decided],
        "after_answer": [ask.decided - ask.answered for ask in decided],
        "decided": len(decided),
        "decision_rate": len(decided) / max(1e-9, last_decision - start),
        "drain_rate": len(decided) / max(1e-9, last_decision - first_decision),
        "backlog": sum(1 for ask in decided if ask.decided > last_answer) + run.undecided,
        "load_s": last_answer - start,
        "until_last_s": last_decision - start,
        "outcomes": outcomes,
        "codes": Counter(ask.code for ask in asks if ask.outcome == "refused"),
        "by_send": fairness(asks, "sent"),
        "by_api": fairness(asks, "requested") if run.mode == "queued" else None,
        "api_ms": run.api_cpu * 1000 / len(asks),
        "consumer_ms": run.consumer_cpu * 1000 / max(1, len(decided)),
        "undecided": run.undecided,
        "mismatches": run.seat_mismatches,
    }


async def section_modes(
    bench: Bench, env: dict[str, str], logs: Path, processes: list[subprocess.Popen[bytes]]
) -> dict[str, Any]:
    """The same fans on a direct and a high-demand event; the consumer as a subprocess."""
    args, (client, inventory) = bench.args, bench.http()
    progress("modes: starting the inventory consumer (marquee consume --service inventory) …")
    consumer = spawn(
        [sys.executable, "-m", "marquee_cli", "consume", "--service", "inventory"],
        env,
        logs / "consumer.log",
    )
    processes.append(consumer)
    try:
        rows = max(1, args.mode_seats // MODE_SEATS_PER_ROW)
        events = {
            "direct": await bench.publish(rows, MODE_SEATS_PER_ROW),
            "queued": await bench.publish(rows, MODE_SEATS_PER_ROW, high_demand=True),
        }
        seats = all_seats(events["direct"])
        hot, spare = seats[: args.mode_hot], seats[args.mode_hot :]
        rng = random.Random(17)  # noqa: S311 - a load pattern
        fans = [
            (f"mode-fan-{n}", rng.choice(hot), bench.signer.headers(f"mode-fan-{n}"))
            for n in range(args.mode_fans)
        ]
        warm = [
            (f"mode-warm-{n}", spare[n], bench.signer.headers(f"mode-warm-{n}")) for n in range(20)
        ]
        runs: dict[str, ModeRun] = {}
        for mode, event in events.items():
            url = inventory.base + HOLDS_PATH.format(event_id=event.event_id)
            warm_asks = [Ask(n, seat, headers) for n, (_, seat, headers) in enumerate(warm)]
            await drive(client, url, warm_asks, 4)
            if mode == "queued":
                progress("modes: warm-up requests queued; waiting for the consumer to decide …")
                left = await await_decisions(
                    bench.redis, event.event_id, warm_asks, timeout=90, consumer=consumer
                )
                if left:
                    raise RuntimeError(f"the consumer left {left} warm-up requests pending")
            bad = Counter(ask.outcome for ask in warm_asks if ask.outcome != "held")
            if bad:
                raise RuntimeError(f"{mode} warm-up holds not held: {dict(bad)}")
            asks = [Ask(n, seat, headers) for n, (_, seat, headers) in enumerate(fans)]
            progress(
                f"modes: {mode}: {len(asks):,} fans, {args.mode_concurrency} in flight, "
                f"for {len(hot)} seats …"
            )
            api_before, consumer_before = cpu_seconds(inventory.pid), cpu_seconds(consumer.pid)
            await drive(client, url, asks, args.mode_concurrency)
            api_cpu = cpu_seconds(inventory.pid) - api_before
            undecided = 0
            if mode == "queued":
                undecided = await await_decisions(
                    bench.redis,
                    event.event_id,
                    asks,
                    timeout=args.mode_drain_seconds,
                    consumer=consumer,
                )
            runs[mode] = ModeRun(
                mode,
                asks,
                api_cpu=api_cpu,
                consumer_cpu=cpu_seconds(consumer.pid) - consumer_before,
                undecided=undecided,
                seat_mismatches=await seat_mismatches(bench.redis, event.event_id, asks),
            )
            progress(
                f"modes: {mode}: "
                f"{dict(Counter(ask.outcome for ask in asks))}"
                + (f", {undecided} still pending" if undecided else "")
            )
    finally:
        stop_process(consumer)
        processes.remove(consumer)
    return {
        "stats": {mode: mode_stats(run) for mode, run in runs.items()},
        "seats": len(seats),
        "hot": len(hot),
        "asked": len({seat for _, seat, _ in fans}),
    }


def print_modes(args: argparse.Namespace, modes: dict[str, Any]) -> None:
    stats = modes["stats"]
    d, q = stats["direct"], stats["queued"]
    made = table(
        f"6. direct vs high-demand mode: {args.mode_fans:,} fans, {args.mode_concurrency} in "
        f"flight, each one seat among the {modes['hot']} best of a {modes['seats']:,}-seat "
        f"event ({modes['asked']} different seats asked; same fans, seats and order for both)",
        ["", "direct", "high-demand (queued)"],
    )

    def pair(s: dict[str, Any], name: str) -> str:
        return f"{ms(s[name], 0.5):,.0f} / {ms(s[name], 0.99):,.0f} ms"

    def fair(f: dict[str, Any] | None) -> str:
        if f is None:
            return "-"
        return (
            f"{f['first']} of {f['contested']}; {f['inversions']} inversions"
            + (
                f" (earlier by p50 {ms(f['gaps'], 0.5):.0f}, max {ms(f['gaps'], 1.0):.0f} ms)"
                if f["gaps"]
                else ""
            )
            + (f"; {f['nobody']} held by nobody" if f["nobody"] else "")
        )

    def outcomes(s: dict[str, Any]) -> str:
        counts = s["outcomes"]
        other = {k: n for k, n in counts.items() if k not in ("held", "refused")}
        codes = ", ".join(f"{code or '?'} {n}" for code, n in s["codes"].items())
        return f"{counts['held']:,} / {counts['refused']:,} ({codes})" + (
            f"; other {other}" if other else ""
        )

    made.add_row(
        "requests/s accepted by the API",
        f"{d['accepted_rate']:,.0f}/s (201 or 409)",
        f"{q['accepted_rate']:,.0f}/s (202)",
    )
    made.add_row("API answer p50 / p99", pair(d, "answer"), pair(q, "answer") + " (the 202)")
    made.add_row("request → decision p50 / p99", pair(d, "decision"), pair(q, "decision"))
    made.add_row("answer → decision p50 / p99", "0 (the answer decides)", pair(q, "after_answer"))
    made.add_row(
        "decisions/s (first ask → last decision)",
        f"{d['decision_rate']:,.0f}/s over {d['until_last_s']:.1f} s",
        f"{q['decision_rate']:,.0f}/s over {q['until_last_s']:.1f} s "
        f"(consumer {q['drain_rate']:,.0f}/s)",
    )
    made.add_row(
        "decided after the last answer",
        str(d["backlog"]),
        f"{q['backlog']:,}"
        + (f" ({q['undecided']} never, drain timed out)" if q["undecided"] else ""),
    )
    made.add_row("held / refused", outcomes(d), outcomes(q))
    made.add_row(
        "contested seats won by the first to send",
        fair(d["by_send"]),
        fair(q["by_send"]),
    )
    made.add_row("  … first by the API's requested_at", "-", fair(q["by_api"]))
    made.add_row(
        "CPU: API per ask; consumer per decision",
        f"{d['api_ms']:.2f} ms",
        f"{q['api_ms']:.2f} ms; {q['consumer_ms']:.2f} ms",
    )
    made.add_row(
        "seats where Redis disagrees",
        str(d["mismatches"]),
        str(q["mismatches"]),
    )
    console.print(made)
    console.print(
        "   Decision: direct, the 201/409 answer; queued, the decided_at the consumer writes "
        "into the request's Redis record (polled until no request is pending). Arrival: "
        "when the load generator sent the request; an inversion is an earlier asker refused "
        "while a later one got the seat. The consumer is `marquee consume --service "
        "inventory`, one process; the event's requests sit on one partition."
    )
    console.print("   " + when_better(d, q), markup=False)


def when_better(d: dict[str, Any], q: dict[str, Any]) -> str:
    d_p99, q_p99 = ms(d["decision"], 0.99), ms(q["decision"], 0.99)
    d_inv, q_inv = d["by_send"]["inversions"], q["by_send"]["inversions"]
    speed = d["decision_rate"] / max(1e-9, q["decision_rate"])
    if speed >= 1.1:
        pace = (
            f"direct decided {speed:.1f}x as fast ({d['decision_rate']:,.0f} vs "
            f"{q['decision_rate']:,.0f} decisions/s, p99 {d_p99:,.0f} vs {q_p99:,.0f} ms)"
        )
    elif speed <= 1 / 1.1:
        pace = (
            f"queued decided {1 / speed:.1f}x as fast ({q['decision_rate']:,.0f} vs "
            f"{d['decision_rate']:,.0f} decisions/s, p99 {q_p99:,.0f} vs {d_p99:,.0f} ms)"
        )
    else:
        pace = (
            f"both decided at about the same pace ({d['decision_rate']:,.0f} vs "
            f"{q['decision_rate']:,.0f}/s, p99 {d_p99:,.0f} vs {q_p99:,.0f} ms)"
        )
    if q_inv < d_inv:
        order = f"queued kept arrival order better ({q_inv} inversions vs {d_inv})"
    elif q_inv > d_inv:
        order = f"queued did not keep arrival order better here ({q_inv} inversions vs {d_inv})"
    else:
        order = f"both kept arrival order equally ({d_inv} inversions each)"
    if q["accepted_rate"] < d["accepted_rate"] / 1.1:
        order += (
            f"; and queued did not spare the API: it accepted {q['accepted_rate']:,.0f} "
            f"requests/s against {d['accepted_rate']:,.0f} ({q['api_ms']:.2f} vs "
            f"{d['api_ms']:.2f} ms of API CPU each)"
        )
    return (
        f"When each is better, from these numbers: {pace}; {order}. Direct while one event's "
        f"holds come faster than the queue drains (~{q['drain_rate']:,.0f}/s here, one "
        f"consumer per partition) or fans need an answer at once; queued for a few hot "
        f"events where who asked first must decide and fans can wait ~{q_p99 / 1000:.1f} s "
        f"(p99) for it, behind a waiting room that admits at most the drain rate."
    )


async def run(args: argparse.Namespace) -> str:
    postgres = args.postgres_url.rstrip("/").rsplit("/", 1)[0]
    database_url = f"{postgres}/bench_holds_{uuid.uuid4().hex[:8]}".replace(
        "postgresql://", "postgresql+asyncpg://"
    )
    redis_url = f"redis://127.0.0.1:6379/{args.redis_db}"
    logs = Path(tempfile.mkdtemp(prefix="marquee-holds-bench-"))
    processes: list[subprocess.Popen[bytes]] = []
    broker: Broker | None = None
    redis = redis_asyncio.Redis.from_url(redis_url)
    database: Database | None = None
    signer = Signer()
    created = False
    try:
        leftover = await redis.dbsize()
        if leftover:
            progress(f"warning: Redis db {args.redis_db} held {leftover} keys; flushing them")
        await redis.flushdb()
        created = await ensure_database(database_url)
        assert SERVICE.migrations is not None
        await upgrade_async(database_url, SERVICE.migrations)
        database = Database(database_url, pool_size=4)
        store = HoldStore(redis)
        bench = Bench(args, database, database_url, redis, store, signer)
        with signer.serve() as jwks_base:
            progress("starting tansu (the service forwards its hold log to Kafka) …")
            broker = start_tansu(log_dir=logs)
            await ensure_topics(
                broker.bootstrap,
                {
                    topic.name: topic.partitions
                    for topic in (
                        HOLD_CREATED,
                        HOLD_RELEASED,
                        HOLD_EXPIRED,
                        AVAILABILITY_CHANGED,
                        HOLD_REQUESTED,
                    )
                },
            )
            hot = [await bench.publish(100)]
            expiry_event = await bench.publish(20)
            big = await bench.publish(250)
            env = {
                "INVENTORY_DATABASE_URL": database_url,
                "INVENTORY_REDIS_URL": redis_url,
                "INVENTORY_KAFKA_BOOTSTRAP": broker.bootstrap,
                "INVENTORY_JWKS_URL": f"{jwks_base}/.well-known/jwks.json",
                "INVENTORY_LOG_LEVEL": "WARNING",
                **dict(setting.split("=", 1) for setting in args.server_env),
            }
            apps = {
                "holds": ("marquee_inventory.main:create_app", HOLDS_PATH),
                "bare": ("holds_bench:create_bare_app", BARE_PATH),
                "platform": ("holds_bench:create_platform_app", PLATFORM_PATH),
            }
            progress("starting the inventory, bare and platform apps (uvicorn, 1 worker each) …")
            ports = {name: free_port() for name in apps}
            for name, (factory, _) in apps.items():
                processes.append(spawn_uvicorn(factory, ports[name], env, logs / f"{name}.log"))
            for process, port in zip(processes, ports.values(), strict=True):
                await asyncio.to_thread(
                    wait_for_port, "127.0.0.1", port, timeout=60, process=process
                )
            endpoints = {
                name: Endpoint(name, f"http://127.0.0.1:{ports[name]}", path, process.pid)
                for (name, (_, path)), process in zip(apps.items(), processes, strict=True)
            }
            bench.inventory = endpoints["holds"]
            # aiohttp, not httpx, drives the load: httpx.AsyncClient spends ~3 ms of CPU per
            # request with 32 in flight (encode/httpx#3215), so on two cores it would
            # measure itself; aiohttp spends ~0.1 ms.
            async with aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=256),
                timeout=aiohttp.ClientTimeout(total=60),
            ) as client:
                bench.client = client
                throughput = await section_throughput(bench, endpoints, hot)
                race_seats, race = await section_race(bench, throughput["pool"])
                progress("counting oversold seats of the hot events …")
                oversold = await count_oversold(bench, [event.event_id for event in hot])
                progress("best-available in-process …")
                best_rows = section_best_available_in_process(bench, big)
                progress("best-available through the API …")
                best_rows += await section_best_available_api(bench, big)
                oversold.update(await count_oversold(bench, [big.event_id]))
                progress("rebuild of a 50,000-seat event, every seat sold …")
                rebuild = await section_rebuild(bench, big)
                expiry = await section_expiry(bench, expiry_event)
                expiry["sweep_s"] = float(
                    env.get("INVENTORY_SWEEP_INTERVAL_SECONDS")
                    or InventorySettings().sweep_interval_seconds
                )
                try:
                    modes = await section_modes(bench, env, logs, processes)
                except Exception as error:  # the other sections' figures still print
                    progress(f"modes: failed: {error!r}")
                    modes = {"error": repr(error)}
    finally:
        for process in reversed(processes):
            stop_process(process)
        if broker is not None:
            broker.stop()
        with contextlib.suppress(Exception):
            await redis.flushdb()
        await redis.aclose()
        if database is not None:
            await database.dispose()
        if created:
            await drop_database(database_url)

    oversold["oversold"] += bench.mismatched
    console.print()
    console.print(
        f"[bold]2. oversold: {oversold['oversold']}[/bold] (seats held or sold more than once: "
        f"every 201 answer against Redis and sold_seats, {len(hot)} hot event(s) and the "
        "best-available event)"
    )
    for name in (
        "seats in 201 answers",
        "held (201) but free in Redis",
        "held in Redis without a 201 seen",
        "held in Redis and in sold_seats",
        "seats_free counter off by",
    ):
        console.print(f"   {name}: {oversold[name]}")
    console.print(
        f"   201 answers naming a seat other than the one asked: {bench.mismatched}\n"
        f"   race: {race_seats:,} seats x 4 users: {race.statuses['201']:,} held (201), "
        f"{race.statuses['409']:,} refused (409), "
        f"{sum(race.not_ok.values()) - race.statuses['409']} other; one winner per seat "
        f"expected ({sum(race.statuses.values()) / race.elapsed:,.0f} requests/s, server CPU "
        f"{race.server_cpu * 1000 / max(1, sum(race.statuses.values())):.2f} ms/request)"
    )
    console.print()
    best = table(
        "3. best-available on 50,000 seats (250 rows x 200), 60% sold, front rows fuller",
        ["", "p50 ms", "p99 ms", "calls", "placed / notes"],
    )
    for row in best_rows:
        best.add_row(*row)
    console.print(best)
    lags = expiry["lags"]
    console.print(
        f"[bold]4. expiry lag[/bold] (deadline to seat available in Redis): "
        f"p50 {ms(lags, 0.5):.0f} ms, p99 {ms(lags, 0.99):.0f} ms, max {ms(lags, 1.0):.0f} ms\n"
        f"   {expiry['holds']:,} holds made at {expiry['rate']:,.0f}/s with the TTL the "
        f"organizer set ({expiry['ttl_s']:.0f} s), deadlines over {expiry['spread_s']:.1f} s; "
        f"{len(lags):,} freed, {expiry['never']} never; the service's sweeper every "
        f"{expiry['sweep_s']:g} s; "
        f"polled every ~{expiry['poll_ms']:.0f} ms"
    )
    console.print()
    console.print("[bold]5. rebuild[/bold]")
    for line in rebuild:
        console.print("   " + line)
    console.print()
    if "error" in modes:
        console.print(
            f"[bold]6. direct vs high-demand mode[/bold]: failed: {modes['error']} "
            f"(the consumer's log: {logs / 'consumer.log'})",
            markup=False,
        )
    else:
        print_modes(args, modes)
    console.print(f"\n(total {time.monotonic() - STARTED:.0f} s; server logs in {logs})")
    return (
        f"RESULT holds_per_s={throughput['holds_rate']:.0f} "
        f"bare_per_s={throughput['bare_rate']:.0f} ratio={throughput['ratio']:.2f} "
        f"p50_ms={throughput['p50']:.1f} p99_ms={throughput['p99']:.1f} "
        f"oversold={oversold['oversold']}"
    )


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--postgres-url", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--redis-db", type=int, default=13, help="scratch logical database")
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=4, help="rounds of each endpoint")
    parser.add_argument("--round-seconds", type=float, default=3.0)
    parser.add_argument("--below-fraction", type=float, default=0.5)
    parser.add_argument("--below-seconds", type=float, default=5.0)
    parser.add_argument("--race-seats", type=int, default=300)
    parser.add_argument("--best-available-calls", type=int, default=100)
    parser.add_argument("--best-available-requests", type=int, default=200)
    parser.add_argument("--best-available-seconds", type=float, default=20.0)
    parser.add_argument("--expiry-holds", type=int, default=2000)
    parser.add_argument("--poll-interval", type=float, default=0.005)
    parser.add_argument("--rebuilds", type=int, default=3)
    parser.add_argument("--mode-seats", type=int, default=2000, help="section 6: seats per event")
    parser.add_argument("--mode-hot", type=int, default=300, help="section 6: seats fans want")
    parser.add_argument("--mode-fans", type=int, default=1500, help="section 6: requests")
    parser.add_argument("--mode-concurrency", type=int, default=128, help="section 6: in flight")
    parser.add_argument("--mode-drain-seconds", type=float, default=60.0)
    parser.add_argument(
        "--server-env",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="more environment for the three apps, for experiments "
        "(e.g. INVENTORY_REALTIME_INTERVAL_SECONDS=3600)",
    )
    return parser.parse_args()


def main() -> int:
    args = parse_args()
    try:
        import uvloop

        loop_factory = uvloop.new_event_loop
    except ImportError:  # pragma: no cover - uvicorn[standard] brings it
        loop_factory = None
    with asyncio.Runner(loop_factory=loop_factory) as runner:
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
    sys.exit(main())
