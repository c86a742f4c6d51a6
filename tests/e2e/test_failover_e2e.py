"""Failover end to end: replicas of everything, one of each kind SIGKILLed in turn while
fans sign up and organizers publish, and nobody notices.

``marquee dev --replicas`` runs two replicas of every built service, two gateway processes
on one port, two consumers per group and two relays (one active, one standing by). Fans
register, verify their address from the emailed token, sign in and read their account;
an organizer publishes events and waits until search finds them; all through the gateway,
all the time. Meanwhile one gateway process, one replica of each service, one consumer
of each group and the active relay are SIGKILLed in turn, each only once the platform has
recovered from the last (the supervisor restarts it and the gateway's /readyz reports
every replica back) and flows have run on both sides of the kill.

What must hold, with a client that behaves as a browser does (it resends a request when
its connection to a dying gateway process breaks, and resends a POST that carries an
Idempotency-Key):
- no GET ever answers 5xx: the gateway hides a dying replica from idempotent requests;
- every request with an Idempotency-Key succeeds in the end, every flow completes;
- no event is lost or applied twice: every published event is searchable exactly once,
  every registered fan's verification email arrives.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiokafka import AIOKafkaConsumer

from marquee_contracts import CloudEvent
from marquee_testing.devstack import DevPlatform, running_dev_platform
from marquee_testing.waiting import wait_until

pytestmark = [pytest.mark.timeout(900), pytest.mark.failover]

BUILT = ("auth", "events", "search", "inventory", "booking", "payments")
REPLICAS = {**dict.fromkeys(BUILT, 2), "gateway": 2, "relay": 2}
PASSWORD = "correct horse battery staple"
RECOVERED_WITHIN = 90.0
SEARCHABLE_WITHIN = 60.0
CONNECTION_LOST = (httpx.RemoteProtocolError, httpx.ReadError, httpx.WriteError, httpx.ConnectError)


@dataclass
class Tally:
    """What the browser-like client saw."""

    get_5xx: list[str] = field(default_factory=list)
    keyed_post_failed: list[str] = field(default_factory=list)
    resent_after_lost_connection: int = 0
    resent_keyed_post_after_5xx: int = 0
    interrupted_non_idempotent: int = 0
    requests: Counter[str] = field(default_factory=Counter)


class Browser:
    """Requests through the gateway, resent the way a browser and our SPA resend them."""

    def __init__(self, gateway: str, tally: Tally) -> None:
        self.client = httpx.AsyncClient(base_url=gateway, timeout=30, trust_env=False)
        self.tally = tally

    async def close(self) -> None:
        await self.client.aclose()

    async def send(
        self, method: str, path: str, *, keyed: bool = False, **kwargs: Any
    ) -> httpx.Response:
        """``keyed``: a POST with an Idempotency-Key (the same key on every attempt)."""
        headers = dict(kwargs.pop("headers", {}))
        if keyed:
            headers["Idempotency-Key"] = str(uuid.uuid4())
        idempotent = method in ("GET", "HEAD", "PUT", "DELETE") or keyed
        for attempt in range(1, 7):
            self.tally.requests[method] += 1
            try:
                response = await self.client.request(method, path, headers=headers, **kwargs)
            except CONNECTION_LOST:
                # The gateway process holding this connection died: a browser resends an
                # idempotent request on a new connection.
                if not idempotent or attempt == 6:
                    raise
                self.tally.resent_after_lost_connection += 1
                continue
            if response.status_code >= 500 and method == "GET":
                self.tally.get_5xx.append(f"{path}: {response.status_code} {response.text[:200]}")
            if response.status_code in (502, 503, 504) and keyed and attempt < 6:
                # The service may have done it before dying: the key makes resending safe.
                self.tally.resent_keyed_post_after_5xx += 1
                continue
            if keyed and response.status_code >= 500:
                self.tally.keyed_post_failed.append(f"{path}: {response.status_code}")
            return response
        raise AssertionError("unreachable")

    async def post_once_more_if_interrupted(self, path: str, **kwargs: Any) -> httpx.Response:
        """A POST without an Idempotency-Key (sign-in, verification): a person whose
        request broke off tries again; counted, and the caller judges the answer."""
        for _ in range(3):
            try:
                response = await self.send("POST", path, **kwargs)
            except CONNECTION_LOST:
                self.tally.interrupted_non_idempotent += 1
                continue
            if response.status_code not in (502, 503, 504):
                return response
            self.tally.interrupted_non_idempotent += 1
        raise AssertionError(f"POST {path} kept failing")


class EmailInbox:
    """Every verification token auth sends, read from its topic as notifications would."""

    def __init__(self, bootstrap: str) -> None:
        self.tokens: dict[str, str] = {}
        self.events: Counter[str] = Counter()
        self._consumer = AIOKafkaConsumer(
            "auth.email-verification-requested.v1",
            bootstrap_servers=bootstrap,
            group_id=None,
            auto_offset_reset="earliest",
            fetch_max_wait_ms=50,
        )
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> EmailInbox:
        await self._consumer.start()
        self._task = asyncio.create_task(self._read())
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._task is not None
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        await self._consumer.stop()

    async def _read(self) -> None:
        while True:
            batch = await self._consumer.getmany(timeout_ms=200)
            for records in batch.values():
                for record in records:
                    assert record.value is not None
                    event = CloudEvent.from_json_bytes(record.value)
                    self.events[event.id] += 1
                    self.tokens[str(event.data["email"])] = str(event.data["token"])

    async def token_for(self, email: str) -> str:
        await wait_until(lambda: email in self.tokens, timeout=60, message=f"mail to {email}")
        return self.tokens[email]


@dataclass
class Flows:
    browser: Browser
    inbox: EmailInbox
    organizer: dict[str, str]
    word: str
    fans: list[str] = field(default_factory=list)
    published: list[str] = field(default_factory=list)
    rounds: int = 0

    async def fan_signs_up(self) -> None:
        email = f"fan-{uuid.uuid4().hex[:10]}@example.org"
        registered = await self.browser.send(
            "POST",
            "/api/v1/auth/register",
            keyed=True,
            json={"email": email, "password": PASSWORD, "name": "Fan"},
        )
        assert registered.status_code == 201, registered.text
        token = await self.inbox.token_for(email)
        verified = await self.browser.post_once_more_if_interrupted(
            "/api/v1/auth/verify-email", json={"token": token}
        )
        tokens = await self.sign_in(email)
        me = await self.browser.send("GET", "/api/v1/auth/me", headers=bearer(tokens))
        assert me.status_code == 200, me.text
        # A verification resent after its first attempt went through is refused as used;
        # either way the address is verified.
        assert verified.status_code in (200, 400, 409, 410, 422), verified.text
        assert me.json()["email_verified"] is True
        self.fans.append(email)

    async def sign_in(self, email: str) -> dict[str, Any]:
        response = await self.browser.post_once_more_if_interrupted(
            "/api/v1/auth/login", json={"email": email, "password": PASSWORD}
        )
        assert response.status_code == 200, response.text
        tokens: dict[str, Any] = response.json()
        return tokens

    async def organizer_publishes(self) -> None:
        tag = f"ev{uuid.uuid4().hex[:8]}"
        event_id = await publish_event(self.browser, self.organizer, self.word, tag=tag)
        detail = await self.browser.send("GET", f"/api/v1/events/{event_id}")
        assert detail.status_code == 200, detail.text

        async def searchable() -> bool:
            # By the event's own tag: every event of the run shares the word, and after a
            # hundred rounds a new one need not be on the first page of the word's results
            # (which is how this test once failed with nothing lost).
            found = await self.browser.send(
                "GET", "/api/v1/search/events", params={"q": tag, "limit": 10}
            )
            assert found.status_code == 200, found.text
            return any(item["event_id"] == event_id for item in found.json()["items"])

        await wait_until(searchable, timeout=SEARCHABLE_WITHIN, message=f"{event_id} searchable")
        self.published.append(event_id)

    async def run_until(self, stop: asyncio.Event, flow: Callable[[], Awaitable[None]]) -> None:
        while not stop.is_set():
            await flow()
            self.rounds += 1


def bearer(tokens: dict[str, Any]) -> dict[str, str]:
    return {"Authorization": f"Bearer {tokens['access_token']}"}


async def publish_event(browser: Browser, organizer: dict[str, str], word: str, *, tag: str) -> str:
    async def post(path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        response = await browser.send("POST", path, keyed=True, json=body, headers=organizer)
        assert response.status_code in (200, 201), response.text
        result: dict[str, Any] = response.json()
        return result

    venue = await post(
        "/api/v1/events/venues",
        {
            "name": "Olympia",
            "address": "28 Boulevard des Capucines",
            "city": "Paris",
            "country": "FR",
            "location": {"latitude": 48.8702, "longitude": 2.3283},
            "time_zone": "Europe/Paris",
            "capacity": 100,
            "seating_map": {
                "sections": [],
                "general_admission": [{"name": "Floor", "capacity": 100}],
            },
        },
    )
    starts = datetime.now(UTC).replace(microsecond=0) + timedelta(days=30)
    event = await post(
        "/api/v1/events",
        {
            "venue_id": venue["id"],
            "name": f"{word} night {tag}",
            "description": "A band plays while replicas die.",
            "category": "concert",
            "starts_at": starts.isoformat(),
            "ends_at": (starts + timedelta(hours=3)).isoformat(),
            "sale_starts_at": datetime.now(UTC).isoformat(),
            "sale_ends_at": starts.isoformat(),
            "max_tickets_per_order": 6,
        },
    )
    await post(
        f"/api/v1/events/{event['id']}/ticket-types",
        {
            "name": "Floor",
            "price_minor": 3_000,
            "currency": "EUR",
            "general_admission_area": "Floor",
            "quantity": 100,
            "max_per_order": 6,
        },
    )
    await post(f"/api/v1/events/{event['id']}/publish")
    return str(event["id"])


async def make_organizer(
    platform: DevPlatform, browser: Browser, inbox: EmailInbox
) -> dict[str, str]:
    admin_email = f"admin-{uuid.uuid4().hex[:8]}@example.org"
    made = await asyncio.to_thread(
        subprocess.run,
        [
            *(sys.executable, "-m", "marquee_cli", "auth", "create-admin"),
            *("--email", admin_email, "--password", PASSWORD),
        ],
        env={**os.environ, "AUTH_DATABASE_URL": platform.database_url("auth")},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert made.returncode == 0, made.stdout + made.stderr
    flows = Flows(browser, inbox, {}, "")
    admin = await flows.sign_in(admin_email)
    await flows.fan_signs_up()
    organizer_email = flows.fans[-1]
    organizer = await flows.sign_in(organizer_email)
    granted = await browser.send(
        "POST",
        f"/api/v1/auth/users/{organizer['user_id']}/roles/organizer",
        keyed=True,
        headers=bearer(admin),
    )
    assert granted.status_code == 200, granted.text
    return bearer(await flows.sign_in(organizer_email))


Recovered = Callable[[dict[str, Any], int], bool]
"""Whether the gateway's readiness report shows a kind recovered, the restarted process
having the given pid."""


def service_back(service: str) -> Recovered:
    def check(checks: dict[str, Any], pid: int) -> bool:
        entry = checks.get(f"service:{service}", {})
        return bool(entry.get("status") == "up" and entry.get("detail", {}).get("up") == 2)

    return check


def consumers_back(group: str) -> Recovered:
    """Both replicas report in and the restarted one (``pid``) holds partitions: the
    group has rebalanced, not merely outlived the killed replica's last report."""

    def check(checks: dict[str, Any], pid: int) -> bool:
        entry = checks.get(f"consumer:{group}", {})
        detail = entry.get("detail", {})
        mine = [
            replica
            for instance, replica in detail.get("by_replica", {}).items()
            if instance.endswith(f":{pid}")
        ]
        return bool(
            entry.get("status") == "up"
            and detail.get("replicas") == 2
            and mine
            and mine[0]["partitions"] > 0
        )

    return check


def relays_back(checks: dict[str, Any], pid: int) -> bool:
    relays = [entry for name, entry in checks.items() if name.startswith("relay:")]
    return bool(relays) and all(
        entry.get("status") == "up" and entry.get("detail", {}).get("standby") == 1
        for entry in relays
    )


def gateways_back(checks: dict[str, Any], pid: int) -> bool:
    """Restarted (checked by the caller) and answering: this report came through one."""
    return bool(checks)


KILLS: list[tuple[str, Recovered]] = [
    ("gateway-1", gateways_back),
    *((f"{service}-1", service_back(service)) for service in BUILT),
    *(
        (f"{group}-consumer-1", consumers_back(group))
        for group in ("events", "search", "inventory", "booking", "payments")
    ),
    ("relay", relays_back),
]


@pytest.fixture
async def platform(tmp_path: Path, postgres_url: str, redis_url: str) -> AsyncIterator[DevPlatform]:
    async with running_dev_platform(
        tmp_path,
        postgres_url=postgres_url,
        redis_url=redis_url,
        replicas=REPLICAS,
        # Every fan here comes from 127.0.0.1; the limits have their own tests.
        env={"GATEWAY_RATE_LIMITS_ENABLED": "false", "MARQUEE_LOG_JSON": "false"},
    ) as running:
        yield running


async def test_replicas_die_one_kind_at_a_time_and_no_fan_or_event_notices(
    platform: DevPlatform,
) -> None:
    tally = Tally()
    browser = Browser(platform.gateway, tally)
    killed: list[tuple[str, int]] = []
    workers: list[asyncio.Task[None]] = []
    try:
        async with EmailInbox(platform.kafka_bootstrap) as inbox:
            organizer = await make_organizer(platform, browser, inbox)
            word = f"fail{uuid.uuid4().hex[:8]}"
            fans = Flows(browser, inbox, organizer, word)
            catalog = Flows(browser, inbox, organizer, word)
            stop = asyncio.Event()
            workers += [
                asyncio.create_task(fans.run_until(stop, fans.fan_signs_up)),
                asyncio.create_task(fans.run_until(stop, fans.fan_signs_up)),
                asyncio.create_task(catalog.run_until(stop, catalog.organizer_publishes)),
            ]

            def rounds() -> int:
                return fans.rounds + catalog.rounds

            def flows_alive() -> bool:
                """True while every flow is mid-round (they loop without pause); a flow
                that failed fails the test here, with its own error."""
                for worker in workers:
                    if worker.done():
                        worker.result()
                        return False
                return True

            def progressed(beyond: int) -> Callable[[], bool]:
                return lambda: flows_alive() and rounds() > beyond

            async with httpx.AsyncClient(trust_env=False) as probe:
                for name, recovered in KILLS:
                    before = rounds()
                    await wait_until(
                        progressed(before),
                        timeout=120,
                        message=f"a flow round before killing {name}",
                    )
                    target = await active_relay(platform, probe) if name == "relay" else name
                    pid = platform.pids()[target]
                    assert flows_alive(), "every flow is running as the replica dies"
                    os.killpg(pid, signal.SIGKILL)
                    killed.append((target, pid))

                    async def back(
                        check: Recovered = recovered,
                        target: str = target,
                        pid: int = pid,
                    ) -> bool:
                        # Restarted, and reported back: a killed worker's report lives on
                        # for a few seconds, so its replica count alone proves nothing.
                        flows_alive()
                        restarted = platform.pids().get(target, pid)
                        if restarted == pid:
                            return False
                        try:
                            return check(await platform.readiness(probe), restarted)
                        except (httpx.HTTPError, ValueError, KeyError):
                            return False

                    await wait_until(
                        back,
                        timeout=RECOVERED_WITHIN,
                        interval=0.25,
                        message=f"{target} back after its SIGKILL",
                    )
                    assert platform.pids()[target] != pid, f"{target} was restarted"
                after_last_kill = rounds()
                await wait_until(
                    progressed(after_last_kill + 2),
                    timeout=120,
                    message="flows after the last kill",
                )
            stop.set()
            await asyncio.gather(*workers)
            workers.clear()
            await wait_until(
                lambda: all(email in inbox.tokens for email in fans.fans),
                timeout=30,
                message="every fan's mail",
            )
            duplicated_mail = {event_id for event_id, count in inbox.events.items() if count > 1}
            indexed = await every_search_result(browser, word)
    finally:
        for worker in workers:
            worker.cancel()
        await asyncio.gather(*workers, return_exceptions=True)
        await browser.close()

    print(
        f"\nkilled {[k[0] for k in killed]}; {fans.rounds} sign-ups, {catalog.rounds} events "
        f"published; requests {dict(tally.requests)}; resent after a lost connection "
        f"{tally.resent_after_lost_connection}, keyed POSTs resent after a 5xx "
        f"{tally.resent_keyed_post_after_5xx}, interrupted sign-ins/verifications "
        f"{tally.interrupted_non_idempotent}; duplicate deliveries of mail events "
        f"{len(duplicated_mail)}"
    )
    assert len(killed) == len(KILLS), killed
    for target, pid in killed:
        assert f"{target}: exited with code -9" in platform.log(tail=10**7), (
            f"{target} (pid {pid}) died of the SIGKILL"
        )
    assert not tally.get_5xx, tally.get_5xx
    assert not tally.keyed_post_failed, tally.keyed_post_failed
    assert fans.rounds >= len(killed)
    assert catalog.rounds >= 3
    found = Counter(indexed)
    assert sorted(found) == sorted(catalog.published), "every published event is searchable"
    assert all(count == 1 for count in found.values()), "and indexed once"


async def every_search_result(browser: Browser, word: str) -> list[str]:
    """Every event id a search for ``word`` finds, page after page."""
    found: list[str] = []
    params: dict[str, Any] = {"q": word, "limit": 100}
    while True:
        page = await browser.send("GET", "/api/v1/search/events", params=params)
        assert page.status_code == 200, page.text
        body = page.json()
        found += [item["event_id"] for item in body["items"]]
        if not body.get("next_cursor") or not body["items"]:
            return found
        params = {**params, "cursor": body["next_cursor"]}


async def active_relay(platform: DevPlatform, probe: httpx.AsyncClient) -> str:
    """The supervised relay process that is active for the events database."""
    checks = await platform.readiness(probe)
    active = checks[f"relay:{platform.prefix}_events"]["detail"]["active"]
    pid = int(active.rsplit(":", 1)[1])
    return next(name for name, child in platform.pids().items() if child == pid)
