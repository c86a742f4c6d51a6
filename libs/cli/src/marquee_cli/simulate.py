"""``marquee simulate onsale``: one hot on-sale, modelled step by step (docs/scaling.md).

Ten million fans arrive within minutes for eighty thousand places. Which part of the
platform runs out first, how long does the sale take, how long do fans wait? The model
answers from per-operation costs measured by the benchmarks (docs/benchmarks.md) and
replica counts, fast enough to try many deployments: a 10,000,000-fan run takes well
under a second.

**The model** is a time-stepped queueing model (one step is ``Scenario.step_seconds``, 1 s):

- Fans are *fluid* until the waiting room admits them: arrivals per step follow a
  front-loaded curve over ``--arrival-minutes`` (with Poisson noise from ``--seed``); each
  fan joins the waiting room through the gateway (a share signs in first, at auth), then
  waits in a FIFO queue that loses a share of its fans every minute.
- The waiting room admits at most ``--admit-per-minute`` fans, and never more than the
  places left to hold (places not held, not sold, not promised to fans admitted a moment
  ago): the platform behind it only sees admitted shoppers.
- Admitted fans are counted in whole orders, in cohorts (the fans of one step who do the
  same thing), through the purchase path: hold (inventory, Redis) → order (booking) →
  pay (payments, Stripe) → ``payment-succeeded`` (booking's consumer) → ``order-paid``
  (inventory's consumer sells the places) → ``sale-confirmed`` (booking's consumer
  issues the tickets). Between steps fans take their time (choosing seats, typing a card
  number); some give up, and their hold lapses after the hold time, so its places go back
  on sale. A hold that lapses while its paid order is still queued is sold anyway if its
  places are still free (honoured), refunded otherwise — as the saga does.
- Every service is a *pool* of capacity: processes x 1,000 ms of CPU per second, or
  commits/s, or requests/s. Each step costs each pool it uses a fixed amount per order
  (:class:`Costs`). When the steps want more of a pool than it has in one time step,
  every step gets the same fraction of what it asked for (processor sharing), and what is
  not served waits for the next step, first come first served. Background work (stream
  fan-out, search, expiries) takes its share of a pool without being queued.
- One event's Redis keys and its event-keyed Kafka messages are split over
  ``sections`` hash tags/keys; which Redis shard and which Kafka partition (and so which
  consumer replica) each one lands on is computed with Redis Cluster's CRC16 and Kafka's
  murmur2, so a pool's capacity is that of its busiest shard or replica.

The *first bottleneck* is the pool whose demand first reaches its capacity; if none
does, the waiting room's admission rate is what paces the sale (``admission``), or, if
admission never ran at its full rate either, ``none``.

What is left out: overloaded services queue here, where real ones time out and clients
retry; a process is one core; costs are per order as measured for one-seat purchases.

Standard library only: the command is a plain function (:func:`onsale_command`) the CLI
calls, and the SVG is written by hand.
"""

from __future__ import annotations

import heapq
import json
import math
import random
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Literal

Kind = Literal["measured", "assumed", "setting", "code"]


def _figure(value: float, source: str, kind: Kind) -> Any:
    """A default with where it comes from: ``measured`` (docs/benchmarks.md, dated),
    ``setting`` (a configured default), ``code`` (counted from the code) or ``assumed``."""
    return field(default=value, metadata={"source": source, "kind": kind})


@dataclass(frozen=True, slots=True)
class Costs:
    """What one operation costs, and how fans behave. CPU figures are milliseconds of one
    core, per order (one fan's purchase), in the process named.

    Each default says where it comes from (``Costs.describe()``, ``--show-costs``); a JSON
    object of ``{"field": number}`` (``--costs FILE.json``) overrides any of them."""

    # ---- the door: gateway, auth, waiting room -----------------------------------------
    gateway_request_ms: float = _figure(
        2.99,
        "benchmarks.md Gateway (2026-11-22): a signed-in GET /me adds p50 2.99 ms through "
        "the gateway (token verified, rate limit charged); taken as the gateway's CPU per "
        "proxied request",
        "measured",
    )
    stream_open_ms: float = _figure(
        0.75,
        "benchmarks.md Gateway (2026-11-22): one process opened 10,000 streams in 7-8 s "
        "(client on the same 2 cores, so an upper bound)",
        "measured",
    )
    stream_delivery_ms: float = _figure(
        0.028,
        "gateway.md streams benchmark (2026-11-22): 250-310 ms of gateway CPU to deliver "
        "one message to 10,000 streams, ~28 us per delivery",
        "measured",
    )
    stream_memory_kib: float = _figure(
        16.7,
        "benchmarks.md Gateway (2026-11-22): RSS 105 -> 268 MiB for 10,000 idle streams",
        "measured",
    )
    gateway_base_memory_mib: float = _figure(
        105, "benchmarks.md Gateway (2026-11-22): RSS before streams", "measured"
    )
    streams_per_gateway_process: float = _figure(
        10_000,
        "planning limit: at 10,000 streams a publish reaches all of them p99 300-400 ms "
        "(940 ms with a full GC) (2026-11-22); the hard cap stream_max_connections is 20,000",
        "measured",
    )
    login_ms: float = _figure(
        28,
        "benchmarks.md Gateway (2026-11-22): a login costs ~28 ms of auth CPU (argon2id ~18 ms)",
        "measured",
    )
    login_share: float = _figure(
        0.1,
        "fans without a live session who sign in as they arrive (the rest hold a refresh token)",
        "assumed",
    )
    waitroom_join_ms: float = _figure(
        1.0,
        "the waiting room is not built: a platform-floor request (0.6-0.7 ms, holds bench "
        "2026-12-01) plus a queue insert and a signed queue ticket",
        "assumed",
    )
    waiting_stream_share: float = _figure(
        1.0,
        "waiting fans who keep an SSE stream open for their position (1: all, as gateway.md "
        "describes; 0: they poll a CDN-cached queue status instead)",
        "assumed",
    )
    position_update_s: float = _figure(
        5, "seconds between two position messages to a waiting fan", "assumed"
    )
    search_share: float = _figure(
        0.3, "arriving fans who search before joining the queue", "assumed"
    )
    search_cache_hit: float = _figure(
        0.9,
        "share of those searches answered by an edge cache (everyone types the same name)",
        "assumed",
    )
    search_query_ms: float = _figure(
        14,
        "benchmarks.md Search (2026-11-22): ~14 ms of CPU per query on the PostgreSQL "
        "engine at 100k events (no Elasticsearch figure exists here)",
        "measured",
    )
    # ---- holds: inventory and Redis ----------------------------------------------------
    hold_ms: float = _figure(
        1.9,
        "benchmarks.md Holds (2026-12-01, + hiredis): ~1.9 ms of inventory CPU per hold",
        "measured",
    )
    seat_map_ms_per_1000_seats: float = _figure(
        0.5,
        "benchmarks.md Holds (2026-12-01): best-available over a 50,000-seat map p50 23-26 ms "
        "in-process (the whole map is read); taken as the cost of every whole-map read",
        "measured",
    )
    best_available_share: float = _figure(
        0.5,
        "holds that ask for best-available (reads the map again) instead of explicit seats",
        "assumed",
    )
    redis_hold_ms: float = _figure(
        0.5,
        "benchmarks.md Purchases (2026-12-02): Redis 1 ms of CPU per purchase; half "
        "assumed to be the hold, half the sale's claim",
        "measured",
    )
    redis_sale_ms: float = _figure(
        0.5, "the other half of Redis's 1 ms per purchase (2026-12-02)", "measured"
    )
    redis_seat_map_ms_per_1000_seats: float = _figure(
        0.1,
        "Redis CPU for HGETALL of a seat map, per 1,000 seats (replies of ~10 M fields/s)",
        "assumed",
    )
    seat_map_reads_per_fan: float = _figure(
        1,
        "whole seat-map reads (GET availability) per admitted fan before holding",
        "assumed",
    )
    nudges_per_s_per_inventory_process: float = _figure(
        4,
        "inventory's REALTIME_INTERVAL_SECONDS 0.25: availability-changed at most 4/s per "
        "event and process, to every fan on the seat map",
        "setting",
    )
    hold_ttl_s: float = _figure(300, "inventory's default hold time (hold-settings)", "setting")
    # ---- order, payment, tickets -------------------------------------------------------
    booking_order_ms: float = _figure(
        12.6,
        "benchmarks.md Purchases (2026-12-02, with sniffio): booking app 12.6 ms per purchase",
        "measured",
    )
    inventory_order_ms: float = _figure(
        5.1,
        "benchmarks.md Purchases (2026-12-02): inventory app 7 ms per purchase, less the "
        "hold's 1.9 ms: booking's read of the hold",
        "measured",
    )
    payments_ms: float = _figure(
        33,
        "benchmarks.md Purchases (2026-12-02, with sniffio): payments app 33 ms per purchase "
        "(its three requests; a fifth is the simulated provider's webhook delivery)",
        "measured",
    )
    payments_consumer_ms: float = _figure(
        9,
        "benchmarks.md Purchases (2026-12-02): payments consumer (order-created, "
        "order-confirmed; keyed by order id)",
        "measured",
    )
    booking_payment_consumer_ms: float = _figure(
        6,
        "benchmarks.md Purchases (2026-12-02): booking consumer 16 ms per purchase; 6 "
        "assumed for payment-succeeded (keyed by order id)",
        "measured",
    )
    booking_sale_consumer_ms: float = _figure(
        10,
        "the other 10 of booking consumer's 16 ms (2026-12-02): sale-confirmed, tickets "
        "and barcodes (keyed by event id: the event's hot partition)",
        "measured",
    )
    inventory_consumer_ms: float = _figure(
        11,
        "benchmarks.md Purchases (2026-12-02): inventory consumer (order-paid, keyed by "
        "event id: the event's hot partition)",
        "measured",
    )
    broker_ms: float = _figure(
        14,
        "benchmarks.md Purchases (2026-12-02): the broker (tansu, memory storage) per "
        "purchase; Apache Kafka is likely cheaper",
        "measured",
    )
    expiry_booking_ms: float = _figure(
        5,
        "booking consumer per lapsed hold (hold-expired: order expired, order-closed)",
        "assumed",
    )
    expiry_inventory_ms: float = _figure(
        3,
        "inventory consumer per lapsed order (order-closed: nothing left to release)",
        "assumed",
    )
    stripe_ops_per_order: float = _figure(
        2,
        "payments/handlers.py: create the PaymentIntent; read the charge's risk on success",
        "code",
    )
    postgres_commits_per_s: float = _figure(
        10_000,
        "small write transactions per second one PostgreSQL primary commits (group commit)",
        "assumed",
    )
    # ---- fans --------------------------------------------------------------------------
    arrival_front_load: float = _figure(
        3,
        "arrivals fall off as exp(-k t / T) over the arrival window (k = this; 0: "
        "uniform): the first minute is the busiest",
        "assumed",
    )
    queue_abandon_per_minute: float = _figure(
        0.01, "share of waiting fans who give up each minute", "assumed"
    )
    abandon_before_hold: float = _figure(
        0.05, "admitted fans who never hold (their admission lapses)", "assumed"
    )
    abandon_after_hold: float = _figure(
        0.05, "fans who hold and never order (the hold lapses)", "assumed"
    )
    abandon_checkout: float = _figure(
        0.10, "fans who order and never pay (card declined, gave up: the hold lapses)", "assumed"
    )
    think_admit_to_hold_s: float = _figure(
        10, "admission -> hold request (the seat map, choosing)", "assumed"
    )
    think_hold_to_order_s: float = _figure(10, "hold -> order (reviewing the price)", "assumed")
    think_order_to_pay_s: float = _figure(
        45, "order -> payment confirmed (typing a card number, 3-D Secure)", "assumed"
    )
    provider_confirm_s: float = _figure(
        2, "Stripe: the browser's confirmation -> the webhook reaches payments", "assumed"
    )

    @classmethod
    def describe(cls) -> list[tuple[str, str, str]]:
        """``(name, kind, source)`` for every figure."""
        return [(f.name, f.metadata["kind"], f.metadata["source"]) for f in fields(cls)]

    def overridden(self, values: Mapping[str, Any]) -> Costs:
        known = {f.name for f in fields(self)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(
                f"unknown cost {', '.join(unknown)}; known: {', '.join(sorted(known))}"
            )
        for name, value in values.items():
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise ValueError(f"cost {name} must be a number, not {value!r}")
            if value < 0 or not math.isfinite(value):
                raise ValueError(f"cost {name} must be a finite number >= 0, not {value!r}")
        return replace(self, **{name: float(value) for name, value in values.items()})

    @classmethod
    def from_json(cls, path: Path) -> Costs:
        try:
            values = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as error:
            raise ValueError(f"cannot read costs from {path}: {error}") from error
        if not isinstance(values, dict):
            raise ValueError(f"{path} must hold one JSON object of cost names to numbers")
        return cls().overridden(values)


@dataclass(frozen=True, slots=True)
class Deployment:
    """Replica counts: the defaults are docs/scaling.md's plan for 10,000,000 fans and
    80,000 places. A process is one core (one uvicorn worker, one consumer)."""

    gateway_processes: int = 1000
    auth_processes: int = 192
    waitroom_processes: int = 64
    search_replicas: int = 32
    inventory_processes: int = 6
    booking_processes: int = 6
    payments_processes: int = 12
    payments_consumers: int = 4
    booking_consumers: int = 16
    inventory_consumers: int = 16
    kafka_partitions: int = 48
    kafka_broker_cores: int = 6
    sections: int = 40
    """Slot groups (Redis hash tags) and Kafka keys one event's seats are split over: 1 is
    today's layout (``{evt:<id>}``, key = event id)."""
    redis_shards: int = 8
    stripe_ops_per_s: int = 500
    """Stripe's live-mode default is 100 requests/s (25/s per endpoint): raised on request."""
    admit_per_minute: int = 12_000

    def with_replicas(self, values: Mapping[str, int]) -> Deployment:
        """``{"payments": 30, "sections": 1}``: by pool name (``--replicas NAME=N``)."""
        changes: dict[str, int] = {}
        for name, count in values.items():
            attribute = REPLICA_OPTIONS.get(name)
            if attribute is None:
                raise ValueError(
                    f"unknown replica name {name!r}; known: {', '.join(sorted(REPLICA_OPTIONS))}"
                )
            changes[attribute] = count
        deployment = replace(self, **changes)
        deployment.check()
        return deployment

    def check(self) -> None:
        for name, value in asdict(self).items():
            if not isinstance(value, int) or value < 0:
                raise ValueError(f"{name} must be a whole number >= 0, not {value!r}")
        if self.sections < 1 or self.kafka_partitions < 1 or self.redis_shards < 1:
            raise ValueError("sections, kafka_partitions and redis_shards must be at least 1")


REPLICA_OPTIONS: dict[str, str] = {
    "gateway": "gateway_processes",
    "auth": "auth_processes",
    "waitroom": "waitroom_processes",
    "search": "search_replicas",
    "inventory": "inventory_processes",
    "booking": "booking_processes",
    "payments": "payments_processes",
    "payments-consumer": "payments_consumers",
    "booking-consumer": "booking_consumers",
    "inventory-consumer": "inventory_consumers",
    "partitions": "kafka_partitions",
    "kafka": "kafka_broker_cores",
    "sections": "sections",
    "redis": "redis_shards",
    "stripe": "stripe_ops_per_s",
    "admission": "admit_per_minute",
}
"""``--replicas NAME=N`` names → :class:`Deployment` fields."""


@dataclass(frozen=True, slots=True)
class Scenario:
    """Who comes, for what: fans, places, how many each wants, how fast they arrive."""

    fans: int = 10_000_000
    places: int = 80_000
    places_per_fan: int = 2
    arrival_minutes: float = 10.0
    seed: int = 0
    step_seconds: float = 1.0
    horizon_seconds: float = 4 * 3600.0

    def check(self) -> None:
        if self.fans < 0 or self.places < 0:
            raise ValueError("fans and places must be >= 0")
        if self.places_per_fan < 1:
            raise ValueError("places per fan must be at least 1")
        if self.arrival_minutes < 0 or self.step_seconds <= 0 or self.horizon_seconds <= 0:
            raise ValueError("arrival minutes must be >= 0, step and horizon > 0")


# ---- where keys land: Redis Cluster slots, Kafka partitions --------------------------------

EXAMPLE_EVENT = "6c1f0b8e-3d2a-4f5b-9e71-0a4d2c8b5f13"
"""The event id the key placement is computed for (any id gives a similar spread)."""


def crc16_xmodem(data: bytes) -> int:
    """CRC16-CCITT (XMODEM), as Redis Cluster hashes keys."""
    crc = 0
    for byte in data:
        crc ^= byte << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) if crc & 0x8000 else crc << 1
            crc &= 0xFFFF
    return crc


def redis_slot(key: str) -> int:
    """The Redis Cluster slot of ``key``: CRC16 of its hash tag (``{…}``) if it has one."""
    start = key.find("{")
    if start != -1:
        end = key.find("}", start + 1)
        if end > start + 1:
            key = key[start + 1 : end]
    return crc16_xmodem(key.encode()) % 16384


def kafka_murmur2(data: bytes) -> int:
    """Kafka's murmur2 (``Utils.murmur2``, also aiokafka's default partitioner), unsigned."""
    mask = 0xFFFFFFFF
    m, r = 0x5BD1E995, 24
    length = len(data)
    h = (0x9747B28C ^ length) & mask
    whole = length - length % 4
    for index in range(0, whole, 4):
        k = int.from_bytes(data[index : index + 4], "little")
        k = (k * m) & mask
        k ^= k >> r
        k = (k * m) & mask
        h = ((h * m) & mask) ^ k
    rest = length % 4
    if rest >= 3:
        h ^= data[whole + 2] << 16
    if rest >= 2:
        h ^= data[whole + 1] << 8
    if rest >= 1:
        h ^= data[whole]
        h = (h * m) & mask
    h ^= h >> 13
    h = (h * m) & mask
    h ^= h >> 15
    return h


def kafka_partition(key: str, partitions: int) -> int:
    """The partition Kafka's default partitioner gives a keyed message."""
    return (kafka_murmur2(key.encode()) & 0x7FFFFFFF) % partitions


def section_keys(sections: int, event: str = EXAMPLE_EVENT) -> tuple[list[str], list[str]]:
    """One event's Redis hash tags and Kafka keys: today's single ``{evt:<id>}`` and event
    id, or one per section (``{evt:<id>:sec:<n>}``, ``<id>:<n>``)."""
    if sections <= 1:
        return [f"{{evt:{event}}}"], [event]
    tags = [f"{{evt:{event}:sec:{n}}}" for n in range(1, sections + 1)]
    keys = [f"{event}:{n}" for n in range(1, sections + 1)]
    return tags, keys


def hottest_shard_share(sections: int, shards: int, event: str = EXAMPLE_EVENT) -> float:
    """The share of one event's Redis work on its busiest shard (shards own equal, contiguous
    slot ranges, as ``redis-cli --cluster create`` assigns them)."""
    tags, _ = section_keys(sections, event)
    load = [0] * shards
    for tag in tags:
        load[redis_slot(tag) * shards // 16384] += 1
    return max(load) / len(tags)


def busiest_consumer_share(
    sections: int, partitions: int, replicas: int, event: str = EXAMPLE_EVENT
) -> float:
    """The share of one event's event-keyed messages the busiest consumer replica gets:
    keys → partitions (murmur2), partitions → replicas (range assignment; one replica
    applies its partitions one message at a time). 1.0 when one replica does it all."""
    if replicas <= 0:
        return math.inf
    _, keys = section_keys(sections, event)
    active = min(replicas, partitions)
    per_replica, extra = divmod(partitions, active)
    owner: list[int] = []
    for replica in range(active):
        owner += [replica] * (per_replica + (1 if replica < extra else 0))
    load = [0] * active
    for key in keys:
        load[owner[kafka_partition(key, partitions)]] += 1
    return max(load) / len(keys)


# ---- pools and the steps that use them ----------------------------------------------------

CORE_MS = 1000.0
"""Milliseconds of CPU one process has per second."""


@dataclass(frozen=True, slots=True)
class Pool:
    name: str
    capacity_per_s: float
    unit: str
    sized_by: str
    gauge: bool = False
    """A level (open streams), not a rate: it is reported, never queued on."""


def build_pools(scenario: Scenario, deployment: Deployment, costs: Costs) -> dict[str, Pool]:
    d = deployment
    redis_share = hottest_shard_share(d.sections, d.redis_shards)
    inventory_lane = busiest_consumer_share(d.sections, d.kafka_partitions, d.inventory_consumers)
    booking_lane = busiest_consumer_share(d.sections, d.kafka_partitions, d.booking_consumers)

    def cores(count: float, sized_by: str) -> tuple[float, str, str]:
        return count * CORE_MS, "ms CPU/s", sized_by

    def lanes(share: float, replicas: int) -> tuple[float, str, str]:
        busiest = 0.0 if math.isinf(share) else CORE_MS / share
        return busiest, "ms CPU/s", f"{replicas} replicas, busiest gets {share:.0%} of the event"

    specs: dict[str, tuple[float, str, str]] = {
        "gateway": cores(d.gateway_processes, f"{d.gateway_processes} processes"),
        "auth": cores(d.auth_processes, f"{d.auth_processes} processes"),
        "auth-db": (costs.postgres_commits_per_s, "commits/s", "1 primary"),
        "waitroom": cores(d.waitroom_processes, f"{d.waitroom_processes} processes"),
        "search": cores(d.search_replicas, f"{d.search_replicas} replicas"),
        "inventory": cores(d.inventory_processes, f"{d.inventory_processes} processes"),
        "redis": (
            CORE_MS / redis_share,
            "ms CPU/s",
            f"{d.sections} slot group(s) on {d.redis_shards} shards, "
            f"busiest gets {redis_share:.0%} of the event",
        ),
        "booking": cores(d.booking_processes, f"{d.booking_processes} processes"),
        "payments": cores(d.payments_processes, f"{d.payments_processes} processes"),
        "stripe": (float(d.stripe_ops_per_s), "requests/s", "the account's rate limit"),
        "payments-consumer": cores(
            min(d.payments_consumers, d.kafka_partitions),
            f"{d.payments_consumers} replicas, {d.kafka_partitions} partitions",
        ),
        "booking-consumer": cores(
            min(d.booking_consumers, d.kafka_partitions),
            f"{d.booking_consumers} replicas, {d.kafka_partitions} partitions",
        ),
        "booking-sale-consumer": lanes(booking_lane, d.booking_consumers),
        "inventory-consumer": lanes(inventory_lane, d.inventory_consumers),
        "kafka": cores(d.kafka_broker_cores, f"{d.kafka_broker_cores} broker cores"),
        "booking-db": (costs.postgres_commits_per_s, "commits/s", "1 primary"),
        "payments-db": (costs.postgres_commits_per_s, "commits/s", "1 primary"),
        "inventory-db": (costs.postgres_commits_per_s, "commits/s", "1 primary"),
    }
    pools = {name: Pool(name, *spec) for name, spec in specs.items()}
    pools["gateway-streams"] = Pool(
        "gateway-streams",
        d.gateway_processes * costs.streams_per_gateway_process,
        "streams",
        f"{d.gateway_processes} processes x {costs.streams_per_gateway_process:,.0f}",
        gauge=True,
    )
    return pools


FLUID_STEPS = ("join", "sign-in")
ORDER_STEPS = ("hold", "order", "pay", "paid", "sell", "issue")
STEP_NAMES = {
    "join": "join the queue",
    "sign-in": "sign in, join",
    "hold": "hold",
    "order": "order",
    "pay": "pay",
    "paid": "payment-succeeded",
    "sell": "order-paid (sell)",
    "issue": "sale-confirmed (tickets)",
}


def step_demands(
    scenario: Scenario, deployment: Deployment, costs: Costs
) -> dict[str, dict[str, float]]:
    """What one fan (join steps) or one order (the rest) costs each pool, per step."""
    gateway = costs.gateway_request_ms
    stream = costs.stream_open_ms * costs.waiting_stream_share
    section_seats = scenario.places / max(deployment.sections, 1)
    map_reads = costs.seat_map_reads_per_fan + costs.best_available_share
    return {
        "join": {"gateway": gateway + stream, "waitroom": costs.waitroom_join_ms},
        "sign-in": {
            "gateway": 2 * gateway + stream,
            "auth": costs.login_ms,
            "auth-db": 1,
            "waitroom": costs.waitroom_join_ms,
        },
        "hold": {
            # the seat map (GET availability), then POST …/holds
            "gateway": (costs.seat_map_reads_per_fan + 1) * gateway,
            "inventory": costs.hold_ms
            + map_reads * costs.seat_map_ms_per_1000_seats * section_seats / 1000,
            "redis": costs.redis_hold_ms
            + map_reads * costs.redis_seat_map_ms_per_1000_seats * section_seats / 1000,
        },
        "order": {
            "gateway": gateway,
            "booking": costs.booking_order_ms,
            "inventory": costs.inventory_order_ms,
            "booking-db": 1,
        },
        "pay": {
            # POST /payments from the fan, then Stripe's webhook, both through the gateway;
            # payments' commits: order-created, the intent, the webhook, order-confirmed
            "gateway": 2 * gateway,
            "payments": costs.payments_ms,
            "payments-consumer": costs.payments_consumer_ms,
            "stripe": costs.stripe_ops_per_order,
            "payments-db": 4,
        },
        "paid": {
            "booking-consumer": costs.booking_payment_consumer_ms,
            "kafka": costs.broker_ms,
            "booking-db": 1,
        },
        "sell": {
            "inventory-consumer": costs.inventory_consumer_ms,
            "redis": costs.redis_sale_ms,
            "inventory-db": 1,
        },
        "issue": {"booking-sale-consumer": costs.booking_sale_consumer_ms, "booking-db": 1},
    }


# ---- the moving parts ---------------------------------------------------------------------


class Carry:
    """Whole numbers out of fractional flows, without losing the fractions: 0.4 + 0.4 +
    0.4 → 0, 0, 1."""

    __slots__ = ("fraction",)

    def __init__(self) -> None:
        self.fraction = 0.0

    def take(self, amount: float) -> int:
        self.fraction += amount
        whole = math.floor(self.fraction + 1e-9)
        self.fraction -= whole
        return whole


@dataclass(slots=True, eq=False)
class Cohort:
    """Fans of one step who do the same thing: ``orders`` fans (one order each) holding
    ``places`` places, their hold lapsing at ``deadline``."""

    orders: int
    places: int = 0
    ready: float = 0.0
    deadline: float = math.inf
    lapsed: bool = False
    settled: bool = False
    """Sold, refused or gone: its hold's deadline no longer matters."""
    queue: OrderQueue | None = None
    """The queue it waits in, if any (so a lapse can take it out)."""
    is_ready: bool = False
    dropped: bool = False

    def split(self, orders: int) -> Cohort:
        """``orders`` of these fans, with their share of the places, as a cohort of their own
        (in no queue)."""
        places = self.places * orders // self.orders if self.orders else 0
        part = Cohort(orders, places, self.ready, self.deadline, self.lapsed, self.settled)
        self.orders -= orders
        self.places -= places
        return part


class OrderQueue:
    """Cohorts waiting for one step: not ready yet (still thinking), then ready (FIFO)."""

    __slots__ = ("pending", "ready", "ready_orders", "total_orders")

    def __init__(self) -> None:
        self.pending: deque[Cohort] = deque()
        self.ready: deque[Cohort] = deque()
        self.ready_orders = 0
        self.total_orders = 0

    def add(self, cohort: Cohort) -> None:
        if cohort.orders:
            cohort.queue, cohort.is_ready = self, False
            self.pending.append(cohort)
            self.total_orders += cohort.orders

    def drop(self, cohort: Cohort) -> None:
        """Take ``cohort`` out wherever it is (it is skipped when reached)."""
        cohort.dropped = True
        self.total_orders -= cohort.orders
        if cohort.is_ready:
            self.ready_orders -= cohort.orders
        cohort.queue = None

    def advance(self, now: float) -> int:
        """Move the cohorts whose time has come to the ready line; how many orders that was."""
        moved = 0
        while self.pending and self.pending[0].ready <= now + 1e-9:
            cohort = self.pending.popleft()
            if cohort.dropped:
                continue
            cohort.is_ready = True
            self.ready.append(cohort)
            moved += cohort.orders
        self.ready_orders += moved
        return moved

    def take(self, orders: int, split: Callable[[Cohort, int], Cohort]) -> list[Cohort]:
        taken: list[Cohort] = []
        while orders > 0 and self.ready:
            head = self.ready[0]
            if head.dropped:
                self.ready.popleft()
                continue
            if head.orders <= orders:
                self.ready.popleft()
                part = head
                part.queue = None
            else:
                part = split(head, orders)
            taken.append(part)
            orders -= part.orders
            self.ready_orders -= part.orders
            self.total_orders -= part.orders
        return taken


class FluidQueue:
    """Fans as a fluid, first come first served: ``[arrived, fans]`` per step of arrival."""

    __slots__ = ("items", "total")

    def __init__(self) -> None:
        self.items: deque[list[float]] = deque()
        self.total = 0.0

    def add(self, arrived: float, fans: float) -> None:
        if fans > 0:
            self.items.append([arrived, fans])
            self.total += fans

    def take(self, fans: float) -> list[tuple[float, float]]:
        taken: list[tuple[float, float]] = []
        while fans > 1e-9 and self.items:
            head = self.items[0]
            amount = min(head[1], fans)
            taken.append((head[0], amount))
            head[1] -= amount
            fans -= amount
            self.total -= amount
            if head[1] <= 1e-9:
                self.total -= head[1]
                self.items.popleft()
        if not self.items:
            self.total = 0.0
        return taken

    def clear(self) -> float:
        gone, self.total = self.total, 0.0
        self.items.clear()
        return gone


class WaitingRoom:
    """The queue: FIFO, losing ``rate`` of its fans per second (``exp(-rate t)``).

    Every waiting fan decays alike, so each entry keeps its size at a common reference time
    and the queue's size is one multiplication: no per-step work for millions of fans."""

    __slots__ = ("base", "items", "rate", "weight")

    def __init__(self, abandon_per_second: float) -> None:
        self.rate = abandon_per_second
        self.base = 0.0
        self.items: deque[list[float]] = deque()  # [arrived, weight at base]
        self.weight = 0.0

    def _scale(self, now: float) -> float:
        return math.exp(-self.rate * (now - self.base))

    def _rebase(self, now: float) -> None:
        scale = self._scale(now)
        for item in self.items:
            item[1] *= scale
        self.weight *= scale
        self.base = now

    def add(self, arrived: float, fans: float, now: float) -> None:
        if fans <= 0:
            return
        if self.rate * (now - self.base) > 30:
            self._rebase(now)
        weight = fans / self._scale(now)
        self.items.append([arrived, weight])
        self.weight += weight

    def size(self, now: float) -> float:
        return self.weight * self._scale(now) if self.items else 0.0

    def take(self, fans: float, now: float) -> list[tuple[float, float]]:
        scale = self._scale(now)
        taken: list[tuple[float, float]] = []
        while fans > 1e-9 and self.items:
            head = self.items[0]
            amount = min(head[1] * scale, fans)
            taken.append((head[0], amount))
            head[1] -= amount / scale
            self.weight -= amount / scale
            fans -= amount
            if head[1] * scale <= 1e-9:
                self.weight -= head[1]
                self.items.popleft()
        if not self.items:
            self.weight = 0.0
        return taken

    def clear(self, now: float) -> float:
        gone = self.size(now)
        self.items.clear()
        self.weight = 0.0
        return gone


def arrival_series(scenario: Scenario, costs: Costs) -> list[float]:
    """Fans arriving in each time step: ``fans`` in all, over the arrival window, falling
    off as exp(-k t/T), with Poisson noise (normal above 1,000 a step) from the seed."""
    step = scenario.step_seconds
    window = scenario.arrival_minutes * 60
    steps = max(1, math.ceil(window / step - 1e-9))
    k = costs.arrival_front_load

    def share_by(t: float) -> float:
        if window <= 0:
            return 1.0
        x = min(t / window, 1.0)
        return x if k <= 1e-9 else (1 - math.exp(-k * x)) / (1 - math.exp(-k))

    rng = random.Random(scenario.seed)  # noqa: S311 - noise for a model, not a secret
    expected = [
        scenario.fans * (share_by((i + 1) * step) - share_by(i * step)) for i in range(steps)
    ]
    noisy = [max(0.0, _poisson(rng, mean)) for mean in expected]
    total = sum(noisy)
    if total <= 0:
        return [float(scenario.fans)] + [0.0] * (steps - 1)
    return [value * scenario.fans / total for value in noisy]


def _poisson(rng: random.Random, mean: float) -> float:
    if mean <= 0:
        return 0.0
    if mean > 1000:
        return rng.gauss(mean, math.sqrt(mean))
    # Knuth's method in chunks, so exp(-mean) never underflows
    count, left = 0, mean
    while left > 0:
        chunk = min(left, 30.0)
        left -= chunk
        limit, product = math.exp(-chunk), rng.random()
        while product > limit:
            count += 1
            product *= rng.random()
    return float(count)


# ---- results ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Sample:
    """The state at the end of one time step."""

    t: float
    arrived: float
    waiting: float
    admitted: int
    available: int
    held: int
    sold: int
    issued: int


LOAD_WINDOW_SECONDS = 10.0
"""Offered load is averaged over this long, so one lumpy step does not make a peak."""


@dataclass(slots=True)
class PoolStats:
    pool: Pool
    peak: float = 0.0
    """Highest offered load: new work per second / capacity, over LOAD_WINDOW_SECONDS
    (above 1: work came faster than the pool can do it)."""
    peak_at: float = 0.0
    first_exhausted: float | None = None
    """When demand (new work and any backlog) first reached the capacity."""
    exhausted_seconds: float = 0.0
    busy_sum: float = 0.0
    window: deque[float] = field(default_factory=deque)
    window_sum: float = 0.0

    def record(self, offered: float, demand: float, t: float, step: float) -> None:
        """``offered``: new work / capacity this step; ``demand``: all work wanting it."""
        self.window.append(offered)
        self.window_sum += offered
        if len(self.window) * step > LOAD_WINDOW_SECONDS + 1e-9:
            self.window_sum -= self.window.popleft()
        average = self.window_sum / len(self.window)
        if average > self.peak + 1e-12:
            self.peak, self.peak_at = average, t
        if demand >= 1.0 - 1e-9:
            if self.first_exhausted is None:
                self.first_exhausted = t
            self.exhausted_seconds += step
        self.busy_sum += min(demand, 1.0) * step


@dataclass(frozen=True, slots=True)
class Outcome:
    scenario: Scenario
    deployment: Deployment
    costs: Costs
    samples: list[Sample]
    pools: dict[str, PoolStats]
    sold_out_s: float | None
    held_out_s: float | None
    last_ticket_s: float | None
    first_bottleneck: str
    peak_queue: float
    peak_queue_at: float
    peak_door_backlog: float
    peak_streams: float
    wait_p50_s: float | None
    wait_p99_s: float | None
    step_wait_p99_s: dict[str, float | None]
    """How long orders ready for a step waited for it (a saturated step's queue)."""
    admitted: int
    buyers: int
    refused_at_hold: int
    lapsed_unpaid: int
    late_honoured: int
    refunded: int
    expired_places: int
    left_queue: float
    turned_away: float
    admission_rate_limited_s: float
    admission_places_limited_s: float
    end_s: float

    @property
    def sold(self) -> int:
        return self.samples[-1].sold if self.samples else 0

    def sold_by(self, share: float) -> float | None:
        """When ``share`` of the places had been sold."""
        goal = share * self.scenario.places
        return next((sample.t for sample in self.samples if sample.sold >= goal - 1e-9), None)

    @property
    def result_line(self) -> str:
        sold_out = "never" if self.sold_out_s is None else str(round(self.sold_out_s))
        return (
            f"RESULT sold_out_s={sold_out} first_bottleneck={self.first_bottleneck} "
            f"peak_queue={round(self.peak_queue)}"
        )


def weighted_percentile(samples: Sequence[tuple[float, float]], fraction: float) -> float | None:
    """The value below which ``fraction`` of the total weight lies."""
    total = sum(weight for _, weight in samples)
    if total <= 0:
        return None
    goal, running = fraction * total, 0.0
    ordered = sorted(samples)
    for value, weight in ordered:
        running += weight
        if running >= goal - 1e-9:
            return value
    return ordered[-1][0]


# ---- the simulation -----------------------------------------------------------------------


class OnSale:
    """One run: ``OnSale(scenario, deployment, costs).run()``."""

    def __init__(self, scenario: Scenario, deployment: Deployment, costs: Costs) -> None:
        scenario.check()
        deployment.check()
        self.scenario, self.deployment, self.costs = scenario, deployment, costs
        self.dt = scenario.step_seconds
        self.pools = build_pools(scenario, deployment, costs)
        self.demands = step_demands(scenario, deployment, costs)
        self.stats = {name: PoolStats(pool) for name, pool in self.pools.items()}
        self.queues = {name: OrderQueue() for name in ORDER_STEPS}
        self.door = {name: FluidQueue() for name in FLUID_STEPS}
        self.room = WaitingRoom(costs.queue_abandon_per_minute / 60)
        self.served_carry = {name: Carry() for name in ORDER_STEPS}
        self.split_carry = {name: Carry() for name in ("before-hold", "after-hold", "checkout")}
        self.deadlines: list[tuple[float, int, Cohort]] = []
        self.sequence = 0
        # places: every one is available, held or sold
        self.available = scenario.places
        self.held = 0
        self.sold = 0
        self.issued = 0
        self.outstanding = 0  # admitted, not yet at the hold step
        self.tokens = 0.0
        self.counters: dict[str, float] = {
            key: 0
            for key in (
                "arrived",
                "admitted",
                "buyers",
                "refused",
                "lapsed_unpaid",
                "late_honoured",
                "refunded",
                "expired_places",
                "turned_away",
                "rate_limited_s",
                "places_limited_s",
                "expired_orders_step",
            )
        }
        self.waits: list[tuple[float, float]] = []
        self.last_ticket: float | None = None
        self.step_waits: dict[str, list[tuple[float, float]]] = {name: [] for name in ORDER_STEPS}

    # -- bookkeeping --

    def _track(self, cohort: Cohort) -> None:
        if math.isfinite(cohort.deadline) and not cohort.settled and not cohort.lapsed:
            self.sequence += 1
            heapq.heappush(self.deadlines, (cohort.deadline, self.sequence, cohort))

    def _split(self, cohort: Cohort, orders: int) -> Cohort:
        part = cohort.split(orders)
        self._track(part)
        return part

    def _split_off(self, cohort: Cohort, share: float, carry: str) -> Cohort | None:
        """Some of ``cohort`` (``share`` of its orders, rounded with carry) as a cohort of
        their own, or None."""
        count = min(cohort.orders, self.split_carry[carry].take(cohort.orders * share))
        if count <= 0:
            return None
        return self._split(cohort, count)

    def _expire(self, now: float) -> None:
        while self.deadlines and self.deadlines[0][0] <= now + 1e-9:
            _, _, cohort = heapq.heappop(self.deadlines)
            if cohort.settled or cohort.lapsed:
                continue
            cohort.lapsed = True
            self.held -= cohort.places
            self.available += cohort.places
            self.counters["expired_places"] += cohort.places
            self.counters["expired_orders_step"] += cohort.orders
            if cohort.queue is self.queues["order"] or cohort.queue is self.queues["pay"]:
                # not paid yet: the fan is told the hold ended (order refused, 410; or
                # payment refused, 409 order-expired) and leaves; nothing reaches Stripe
                cohort.queue.drop(cohort)
                cohort.settled = True
                self.counters["lapsed_unpaid"] += cohort.orders

    # -- one time step --

    def _shares(
        self, candidates: Mapping[str, float], background: Mapping[str, float]
    ) -> tuple[dict[str, float], dict[str, float]]:
        """Processor sharing: the fraction of its demand each step gets, and each pool's
        load (demand / capacity). A step limited by one pool asks less of the others."""
        factor: dict[str, float] = {}
        load: dict[str, float] = {}
        for _ in range(3):
            demand = dict(background)
            for step, count in candidates.items():
                uses = self.demands[step]
                for pool, units in uses.items():
                    # what the step's other pools let through reaches this one
                    through = min(
                        (factor.get(other, 1.0) for other in uses if other != pool), default=1.0
                    )
                    demand[pool] = demand.get(pool, 0.0) + count * units * through
            for pool, wanted in demand.items():
                capacity = self.pools[pool].capacity_per_s * self.dt
                load[pool] = wanted / capacity if capacity > 0 else (math.inf if wanted else 0)
                factor[pool] = 1.0 if load[pool] <= 1.0 else 1.0 / load[pool]
        limit = {
            step: min((factor.get(pool, 1.0) for pool in self.demands[step]), default=1.0)
            for step in candidates
        }
        return limit, load

    def _offered(
        self, new_work: Mapping[str, float], background: Mapping[str, float]
    ) -> dict[str, float]:
        """New work this step (what became ready, and the background) / capacity."""
        demand = dict(background)
        for step, count in new_work.items():
            for pool, units in self.demands[step].items():
                demand[pool] = demand.get(pool, 0.0) + count * units
        return {
            pool: wanted / (self.pools[pool].capacity_per_s * self.dt)
            if self.pools[pool].capacity_per_s > 0
            else (math.inf if wanted else 0.0)
            for pool, wanted in demand.items()
        }

    def _background(self, arrivals: float, waiting: float) -> dict[str, float]:
        costs, dt = self.costs, self.dt
        watchers = self.queues["hold"].total_orders
        deliveries = (
            waiting * costs.waiting_stream_share / max(costs.position_update_s, 1e-9)
            + watchers
            * costs.nudges_per_s_per_inventory_process
            * self.deployment.inventory_processes
        )
        expired = self.counters["expired_orders_step"]
        self.counters["expired_orders_step"] = 0
        return {
            "gateway": deliveries * costs.stream_delivery_ms * dt,
            "search": arrivals
            * costs.search_share
            * (1 - costs.search_cache_hit)
            * costs.search_query_ms,
            "booking-sale-consumer": expired * costs.expiry_booking_ms,
            "inventory-consumer": expired * costs.expiry_inventory_ms,
        }

    def run(self) -> Outcome:
        scenario, costs, dt = self.scenario, self.costs, self.dt
        arrivals = arrival_series(scenario, costs)
        ppf = scenario.places_per_fan
        admit_per_step = self.deployment.admit_per_minute / 60 * dt
        samples: list[Sample] = []
        sold_out: float | None = None
        held_out: float | None = None
        peak_queue = peak_queue_at = peak_door = peak_streams = 0.0
        now = 0.0
        for tick in range(math.floor(scenario.horizon_seconds / dt) + 1):
            now = tick * dt
            arriving = arrivals[tick] if tick < len(arrivals) else 0.0
            self.counters["arrived"] += arriving
            if sold_out is None:
                self.door["sign-in"].add(now, arriving * costs.login_share)
                self.door["join"].add(now, arriving * (1 - costs.login_share))
            else:
                self.counters["turned_away"] += arriving
            self._expire(now)
            new_work: dict[str, float] = {
                name: float(queue.advance(now)) for name, queue in self.queues.items()
            }
            new_work["sign-in"] = arriving * costs.login_share if sold_out is None else 0.0
            new_work["join"] = arriving * (1 - costs.login_share) if sold_out is None else 0.0
            candidates: dict[str, float] = {
                name: float(self.queues[name].ready_orders) for name in ORDER_STEPS
            }
            candidates.update({name: self.door[name].total for name in FLUID_STEPS})
            background = self._background(arriving, self.room.size(now))
            limit, load = self._shares(candidates, background)

            # downstream first, so what a step passes on waits for the next time step
            self._issue(limit["issue"], now)
            self._sell(limit["sell"], now)
            self._paid(limit["paid"], now)
            self._pay(limit["pay"], now)
            self._order(limit["order"], now)
            self._hold(limit["hold"], now, ppf)
            if sold_out is None:
                self._admit(admit_per_step, now, ppf)
            for name in FLUID_STEPS:
                for arrived, fans in self.door[name].take(self.door[name].total * limit[name]):
                    self.room.add(arrived, fans, now)

            if self.sold >= scenario.places and sold_out is None:
                # the waiting room tells everyone still waiting or joining
                sold_out = now
                self.counters["turned_away"] += self.room.clear(now)
                self.counters["turned_away"] += sum(queue.clear() for queue in self.door.values())
            if self.available == 0 and held_out is None and scenario.places:
                held_out = now
            in_flight = sum(queue.total_orders for queue in self.queues.values())
            waiting = self.room.size(now)
            door = sum(queue.total for queue in self.door.values())
            streams = waiting * costs.waiting_stream_share + in_flight
            capacity = self.pools["gateway-streams"].capacity_per_s
            load["gateway-streams"] = streams / capacity if capacity else math.inf
            offered = self._offered(new_work, background)
            offered["gateway-streams"] = load["gateway-streams"]
            for name, value in load.items():
                self.stats[name].record(offered.get(name, 0.0), value, now, dt)
            if waiting > peak_queue:
                peak_queue, peak_queue_at = waiting, now
            peak_door = max(peak_door, door)
            peak_streams = max(peak_streams, streams)
            samples.append(
                Sample(
                    t=now,
                    arrived=self.counters["arrived"],
                    waiting=waiting,
                    admitted=int(self.counters["admitted"]),
                    available=self.available,
                    held=self.held,
                    sold=self.sold,
                    issued=self.issued,
                )
            )
            # done when nobody is left to arrive, wait or buy, and no hold can come back
            arrivals_done = tick + 1 >= len(arrivals)
            if (
                arrivals_done
                and in_flight == 0
                and self.held == 0
                and (sold_out is not None or (waiting < 1 and door < 1e-6))
            ):
                break
        return self._outcome(
            samples, sold_out, held_out, now, peak_queue, peak_queue_at, peak_door, peak_streams
        )

    # -- the steps --

    def _serve(self, step: str, share: float, now: float) -> list[Cohort]:
        queue = self.queues[step]
        wanted = queue.ready_orders * share
        count = queue.ready_orders if share >= 1.0 else self.served_carry[step].take(wanted)
        served = queue.take(min(count, queue.ready_orders), self._split)
        waits = self.step_waits[step]
        for cohort in served:
            waits.append((now - cohort.ready, float(cohort.orders)))
        return served

    def _admit(self, per_step: float, now: float, ppf: int) -> None:
        self.tokens = min(self.tokens + per_step, max(per_step, 1.0))
        room = self.available - self.outstanding * ppf
        by_places = math.ceil(room / ppf) if room > 0 else 0
        waiting = self.room.size(now)
        count = min(math.floor(self.tokens + 1e-9), by_places, math.floor(waiting + 1e-6))
        if waiting >= 1:
            if count == math.floor(self.tokens + 1e-9):
                self.counters["rate_limited_s"] += self.dt
            elif count == by_places:
                self.counters["places_limited_s"] += self.dt
        if count <= 0:
            return
        self.tokens -= count
        for arrived, fans in self.room.take(count, now):
            self.waits.append((now - arrived, fans))
        self.counters["admitted"] += count
        admitted = Cohort(count, ready=now + self.costs.think_admit_to_hold_s)
        self._split_off(admitted, self.costs.abandon_before_hold, "before-hold")
        self.outstanding += admitted.orders
        self.queues["hold"].add(admitted)

    def _hold(self, share: float, now: float, ppf: int) -> None:
        for cohort in self._serve("hold", share, now):
            self.outstanding -= cohort.orders
            wanted = cohort.orders * ppf
            if self.available >= wanted:
                granted_orders, places = cohort.orders, wanted
            else:
                full, rest = divmod(self.available, ppf)
                granted_orders = min(cohort.orders, full + (1 if rest else 0))
                places = self.available
            refused = cohort.orders - granted_orders
            self.counters["refused"] += refused
            if granted_orders == 0:
                continue
            held = Cohort(granted_orders, places, deadline=now + self.costs.hold_ttl_s)
            self.available -= places
            self.held += places
            self._track(held)
            # those who give up wait for their deadline in no queue
            self._split_off(held, self.costs.abandon_after_hold, "after-hold")
            held.ready = now + self.costs.think_hold_to_order_s
            self.queues["order"].add(held)

    def _order(self, share: float, now: float) -> None:
        for cohort in self._serve("order", share, now):
            self._split_off(cohort, self.costs.abandon_checkout, "checkout")
            cohort.ready = now + self.costs.think_order_to_pay_s
            self.queues["pay"].add(cohort)

    def _pay(self, share: float, now: float) -> None:
        for cohort in self._serve("pay", share, now):
            cohort.ready = now + self.costs.provider_confirm_s
            self.queues["paid"].add(cohort)

    def _paid(self, share: float, now: float) -> None:
        for cohort in self._serve("paid", share, now):
            cohort.ready = now
            self.queues["sell"].add(cohort)

    def _sell(self, share: float, now: float) -> None:
        for cohort in self._serve("sell", share, now):
            if not cohort.lapsed:
                self.held -= cohort.places
            elif self.available >= cohort.places:  # late payment, places still free
                self.available -= cohort.places
                self.counters["late_honoured"] += cohort.orders
            else:  # sale-rejected: refunded
                cohort.settled = True
                self.counters["refunded"] += cohort.orders
                continue
            cohort.settled = True
            self.sold += cohort.places
            cohort.ready = now
            self.queues["issue"].add(cohort)

    def _issue(self, share: float, now: float) -> None:
        for cohort in self._serve("issue", share, now):
            self.issued += cohort.places
            self.counters["buyers"] += cohort.orders
            self.last_ticket = now

    def _outcome(
        self,
        samples: list[Sample],
        sold_out: float | None,
        held_out: float | None,
        end: float,
        peak_queue: float,
        peak_queue_at: float,
        peak_door: float,
        peak_streams: float,
    ) -> Outcome:
        exhausted = [stats for stats in self.stats.values() if stats.first_exhausted is not None]
        if exhausted:
            first = min(exhausted, key=lambda s: (s.first_exhausted or 0.0, -s.peak))
            bottleneck = first.pool.name
        elif self.counters["rate_limited_s"] > 0:
            bottleneck = "admission"
        else:
            bottleneck = "none"
        counters = self.counters
        admitted_fans = sum(weight for _, weight in self.waits)
        left = counters["arrived"] - admitted_fans - counters["turned_away"]
        left -= self.room.size(end) + sum(queue.total for queue in self.door.values())
        return Outcome(
            scenario=self.scenario,
            deployment=self.deployment,
            costs=self.costs,
            samples=samples,
            pools=self.stats,
            sold_out_s=sold_out,
            held_out_s=held_out,
            last_ticket_s=self.last_ticket,
            first_bottleneck=bottleneck,
            peak_queue=peak_queue,
            peak_queue_at=peak_queue_at,
            peak_door_backlog=peak_door,
            peak_streams=peak_streams,
            wait_p50_s=weighted_percentile(self.waits, 0.5),
            wait_p99_s=weighted_percentile(self.waits, 0.99),
            step_wait_p99_s={
                step: weighted_percentile(waits, 0.99) for step, waits in self.step_waits.items()
            },
            admitted=int(counters["admitted"]),
            buyers=int(counters["buyers"]),
            refused_at_hold=int(counters["refused"]),
            lapsed_unpaid=int(counters["lapsed_unpaid"]),
            late_honoured=int(counters["late_honoured"]),
            refunded=int(counters["refunded"]),
            expired_places=int(counters["expired_places"]),
            left_queue=max(left, 0.0),
            turned_away=counters["turned_away"],
            admission_rate_limited_s=counters["rate_limited_s"],
            admission_places_limited_s=counters["places_limited_s"],
            end_s=end,
        )


def simulate_onsale(
    scenario: Scenario | None = None,
    deployment: Deployment | None = None,
    costs: Costs | None = None,
) -> Outcome:
    return OnSale(scenario or Scenario(), deployment or Deployment(), costs or Costs()).run()


# ---- the report ---------------------------------------------------------------------------


def clock(seconds: float | None) -> str:
    """``m:ss`` (or ``h:mm:ss``)."""
    if seconds is None:
        return "never"
    whole = round(seconds)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def table_interval(duration: float) -> int:
    """A round interval giving at most ~20 rows."""
    for every in (1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600):
        if duration / every <= 20:
            return every
    return 7200


def _count(value: float) -> str:
    return f"{round(value):,}"


def report(outcome: Outcome, every: int | None = None) -> list[str]:
    s, d = outcome.scenario, outcome.deployment
    lines = [
        f"On-sale: {_count(s.fans)} fans for {_count(s.places)} places "
        f"({s.places_per_fan} per order), arriving over {s.arrival_minutes:g} min; seed {s.seed}.",
        f"Deployment: admission {d.admit_per_minute:,}/min; gateway {d.gateway_processes}, "
        f"auth {d.auth_processes}, waitroom {d.waitroom_processes}, inventory "
        f"{d.inventory_processes}, booking {d.booking_processes}, payments "
        f"{d.payments_processes} processes; consumers payments {d.payments_consumers}, "
        f"booking {d.booking_consumers}, inventory {d.inventory_consumers}; "
        f"{d.kafka_partitions} partitions; {d.sections} section slot group(s) on "
        f"{d.redis_shards} Redis shard(s); Stripe {d.stripe_ops_per_s}/s.",
        "",
        "Sell-out curve:",
    ]
    samples = outcome.samples
    if not samples:
        return [*lines, outcome.result_line]
    end = samples[-1].t
    every = every or table_interval(end)
    header = f"{'t':>8} {'arrived':>11} {'waiting':>11} {'admitted':>9} {'held':>8} "
    lines.append(header + f"{'sold':>8} {'tickets':>8}")
    step = s.step_seconds
    chosen = [
        sample for sample in samples if round(sample.t / step) % max(1, round(every / step)) == 0
    ]
    if chosen[-1] is not samples[-1]:
        chosen.append(samples[-1])
    for sample in chosen:
        lines.append(
            f"{clock(sample.t):>8} {_count(sample.arrived):>11} {_count(sample.waiting):>11} "
            f"{sample.admitted:>9,} {sample.held:>8,} {sample.sold:>8,} {sample.issued:>8,}"
        )
    lines += [
        "",
        f"Sold out (every place sold) at {clock(outcome.sold_out_s)}"
        + (f" ({round(outcome.sold_out_s)} s)" if outcome.sold_out_s is not None else "")
        + f"; half sold at {clock(outcome.sold_by(0.5))}, 99 % at "
        + f"{clock(outcome.sold_by(0.99))}; no place left to hold from "
        + f"{clock(outcome.held_out_s)}; last tickets issued at {clock(outcome.last_ticket_s)}.",
        f"Fans: {outcome.admitted:,} admitted, {outcome.buyers:,} bought; "
        f"{_count(outcome.turned_away)} told it sold out; {_count(outcome.left_queue)} left "
        f"the queue; {outcome.refused_at_hold:,} refused at the hold; "
        f"{outcome.lapsed_unpaid:,} too late to pay; late payments honoured "
        f"{outcome.late_honoured:,}, refunded {outcome.refunded:,}; "
        f"{outcome.expired_places:,} places came back from lapsed holds.",
        f"Queue wait (arrival -> admission, admitted fans): p50 {clock(outcome.wait_p50_s)}, "
        f"p99 {clock(outcome.wait_p99_s)}. Peak waiting-room queue {_count(outcome.peak_queue)} "
        f"fans at {clock(outcome.peak_queue_at)}; at the door (joining) "
        f"{_count(outcome.peak_door_backlog)}; open streams {_count(outcome.peak_streams)} "
        f"(gateway memory ~{_gateway_memory_gib(outcome):,.0f} GiB).",
        "Waiting for a step once ready (p99): "
        + ", ".join(
            f"{STEP_NAMES[step]} {clock(wait)}" for step, wait in outcome.step_wait_p99_s.items()
        )
        + ".",
        f"Admission ran at its full rate for {clock(outcome.admission_rate_limited_s)}, held "
        f"back by the places left for {clock(outcome.admission_places_limited_s)}.",
        "",
        f"{'pool':<22} {'capacity':>16} {'peak load':>10} {'busy':>6} {'exhausted from':>15}"
        "  sized by",
    ]
    duration = max(end, step)
    for name, stats in sorted(
        outcome.pools.items(), key=lambda item: (-min(item[1].peak, 1e9), item[0])
    ):
        pool = stats.pool
        capacity = f"{pool.capacity_per_s:,.0f} {pool.unit}"
        if pool.unit == "ms CPU/s":
            capacity = f"{pool.capacity_per_s / CORE_MS:,.1f} cores"
        busy = stats.busy_sum / duration
        lines.append(
            f"{name:<22} {capacity:>16} {_ratio(stats.peak):>10} {busy:>6.0%} "
            f"{clock(stats.first_exhausted) if stats.first_exhausted is not None else '-':>15}"
            f"  {pool.sized_by}"
        )
    lines += ["", bottleneck_sentence(outcome), outcome.result_line]
    return lines


def _gateway_memory_gib(outcome: Outcome) -> float:
    costs = outcome.costs
    base = outcome.deployment.gateway_processes * costs.gateway_base_memory_mib / 1024
    return base + outcome.peak_streams * costs.stream_memory_kib / 1024 / 1024


def _ratio(load: float) -> str:
    return "inf" if math.isinf(load) else f"{load:.0%}"


def bottleneck_sentence(outcome: Outcome) -> str:
    name = outcome.first_bottleneck
    if name in outcome.pools:
        stats = outcome.pools[name]
        return (
            f"First bottleneck: {name} ({stats.pool.sized_by}): demand reached its capacity "
            f"at {clock(stats.first_exhausted)}, peaked at {_ratio(stats.peak)} of it and "
            f"stayed at or above it for {clock(stats.exhausted_seconds)}."
        )
    purchase_path = {pool for step in ORDER_STEPS for pool in _PATH_POOLS[step]}
    door = [stats for name, stats in outcome.pools.items() if name not in purchase_path]
    path = [stats for name, stats in outcome.pools.items() if name in purchase_path]
    busiest = [max(group, key=lambda stats: stats.peak) for group in (door, path) if group]
    behind = "".join(
        f"; busiest {where}: {stats.pool.name} at {_ratio(stats.peak)}"
        for where, stats in zip(("at the door", "behind it"), busiest, strict=False)
    )
    if name == "admission":
        return (
            f"First bottleneck: admission — the waiting room's "
            f"{outcome.deployment.admit_per_minute:,}/min paces the sale{behind}."
        )
    return f"First bottleneck: none — nothing ran out{behind}."


_PATH_POOLS = step_demands(Scenario(), Deployment(), Costs())
"""Which pools each step uses (the same whatever the figures)."""


def costs_table() -> list[str]:
    values = asdict(Costs())
    lines = [f"{'figure':<36} {'value':>10}  {'kind':<8}  source"]
    for name, kind, source in Costs.describe():
        lines.append(f"{name:<36} {values[name]:>10g}  {kind:<8}  {source}")
    return lines


# ---- the chart ----------------------------------------------------------------------------


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def sellout_svg(outcome: Outcome, *, width: int = 760, height: int = 380) -> str:
    """The sell-out curve as an SVG: places sold, and held or sold, against minutes."""
    left, right, top, bottom = 70, 20, 46, 52
    plot_w, plot_h = width - left - right, height - top - bottom
    samples = outcome.samples
    places = max(outcome.scenario.places, 1)
    end = max(samples[-1].t if samples else 60.0, 60.0)
    minutes = end / 60
    tick_every = next((m for m in (1, 2, 5, 10, 15, 30, 60, 120) if minutes / m <= 10), 240)
    x_max = math.ceil(minutes / tick_every) * tick_every * 60

    def x(t: float) -> float:
        return left + plot_w * t / x_max

    def y(value: float) -> float:
        return top + plot_h * (1 - value / places)

    stride = max(1, len(samples) // 600)
    picked = samples[::stride]
    if samples and picked[-1] is not samples[-1]:
        picked.append(samples[-1])

    def polyline(values: Iterable[tuple[float, float]], style: str) -> str:
        points = " ".join(f"{x(t):.1f},{y(v):.1f}" for t, v in values)
        return f'<polyline fill="none" {style} points="{points}"/>'

    s, d = outcome.scenario, outcome.deployment
    title = (
        f"{s.fans:,} fans, {s.places:,} places: sell-out curve "
        f"(admission {d.admit_per_minute:,}/min, {d.sections} sections)"
    )
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="12">',
        f'<rect width="{width}" height="{height}" fill="white"/>',
        f'<text x="{left}" y="22" font-size="14" font-weight="bold">{_escape(title)}</text>',
    ]
    for fraction in (0, 0.25, 0.5, 0.75, 1.0):
        value = places * fraction
        parts.append(
            f'<line x1="{left}" y1="{y(value):.1f}" x2="{left + plot_w}" y2="{y(value):.1f}" '
            f'stroke="#e5e5e5"/>'
        )
        parts.append(
            f'<text x="{left - 8}" y="{y(value) + 4:.1f}" text-anchor="end">{value:,.0f}</text>'
        )
    for minute in range(0, int(x_max / 60) + 1, tick_every):
        parts.append(
            f'<line x1="{x(minute * 60):.1f}" y1="{top + plot_h}" x2="{x(minute * 60):.1f}" '
            f'y2="{top + plot_h + 5}" stroke="#555"/>'
        )
        parts.append(
            f'<text x="{x(minute * 60):.1f}" y="{top + plot_h + 19}" '
            f'text-anchor="middle">{minute}</text>'
        )
    parts += [
        f'<line x1="{left}" y1="{top + plot_h}" x2="{left + plot_w}" y2="{top + plot_h}" '
        f'stroke="#555"/>',
        f'<line x1="{left}" y1="{top}" x2="{left}" y2="{top + plot_h}" stroke="#555"/>',
        f'<text x="{left + plot_w / 2:.0f}" y="{height - 12}" text-anchor="middle">'
        "minutes after the sale opened</text>",
        f'<text x="16" y="{top + plot_h / 2:.0f}" text-anchor="middle" '
        f'transform="rotate(-90 16 {top + plot_h / 2:.0f})">places</text>',
        polyline(
            ((p.t, p.held + p.sold) for p in picked),
            'stroke="#f28e2b" stroke-width="2" stroke-dasharray="6 4"',
        ),
        polyline(((p.t, p.sold) for p in picked), 'stroke="#4e79a7" stroke-width="2.5"'),
    ]
    if outcome.sold_out_s is not None:
        sx = x(outcome.sold_out_s)
        parts += [
            f'<line x1="{sx:.1f}" y1="{top}" x2="{sx:.1f}" y2="{top + plot_h}" '
            f'stroke="#999" stroke-dasharray="2 3"/>',
            f'<text x="{sx - 6:.1f}" y="{top + plot_h - 8}" text-anchor="end" fill="#555">'
            f"sold out {clock(outcome.sold_out_s)}</text>",
        ]
    legend_x, legend_y = left + plot_w - 190, top + plot_h - 60
    parts += [
        f'<rect x="{legend_x - 8}" y="{legend_y - 14}" width="196" height="42" fill="white" '
        f'stroke="#ddd"/>',
        f'<line x1="{legend_x}" y1="{legend_y - 4}" x2="{legend_x + 24}" y2="{legend_y - 4}" '
        f'stroke="#4e79a7" stroke-width="2.5"/>',
        f'<text x="{legend_x + 30}" y="{legend_y}">sold</text>',
        f'<line x1="{legend_x}" y1="{legend_y + 14}" x2="{legend_x + 24}" y2="{legend_y + 14}" '
        f'stroke="#f28e2b" stroke-width="2" stroke-dasharray="6 4"/>',
        f'<text x="{legend_x + 30}" y="{legend_y + 18}">held or sold</text>',
        "</svg>",
    ]
    return "\n".join(parts) + "\n"


# ---- the command --------------------------------------------------------------------------


def parse_replicas(values: Sequence[str]) -> dict[str, int]:
    """``["payments=30", "sections=1"]`` → ``{"payments": 30, "sections": 1}``."""
    parsed: dict[str, int] = {}
    for value in values:
        name, sep, count = value.partition("=")
        if not sep or not count.strip().isdigit():
            raise ValueError(f"--replicas wants NAME=N (a whole number), not {value!r}")
        parsed[name.strip()] = int(count)
    return parsed


def onsale_command(
    *,
    scenario: Scenario,
    replicas: Mapping[str, int],
    costs_file: Path | None,
    svg: Path | None,
    every: int | None,
    show_costs: bool,
    out: Callable[[str], None],
) -> Outcome:
    """``marquee simulate onsale``: run, print the report, write the chart. Bad input is a
    ValueError with a message for the person who typed it."""
    costs = Costs.from_json(costs_file) if costs_file is not None else Costs()
    deployment = Deployment().with_replicas(replicas)
    if show_costs:
        for line in costs_table():
            out(line)
        out("")
    outcome = simulate_onsale(scenario, deployment, costs)
    for line in report(outcome, every):
        out(line)
    if svg is not None:
        svg.parent.mkdir(parents=True, exist_ok=True)
        svg.write_text(sellout_svg(outcome), encoding="utf-8")
    return outcome
