"""Who may call which waitroom endpoint, table-driven: an organizer manages only their own
event's on-sale and waitlist (another's is a 404, so its id is not confirmed), a fan sees
only their own place, and the public parts are public."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import httpx

from marquee_testing.events import People
from marquee_testing.waitroom import known_event, onsale_body

CALLERS = ("organizer-1", "organizer-2", "fan-1", "fan-2", "admin", "anonymous")


def headers_of(people: People, caller: str) -> dict[str, str]:
    return {
        "organizer-1": people.organizer("organizer-1"),
        "organizer-2": people.organizer("organizer-2"),
        "fan-1": people.customer("fan-1"),
        "fan-2": people.customer("fan-2"),
        "admin": people.admin(),
        "anonymous": {},
    }[caller]


# (method, path, who gets what): fan-1 has joined the queue, nobody else has.
MATRIX: list[tuple[str, str, dict[str, int]]] = [
    (
        "PUT",
        "/onsale",
        {"organizer-1": 200, "organizer-2": 404, "fan-1": 404, "admin": 200, "anonymous": 401},
    ),
    ("GET", "/onsale", dict.fromkeys(CALLERS, 200)),
    ("GET", "/queue/fairness", dict.fromkeys(CALLERS, 200)),
    (
        "GET",
        "/queue/me",
        {"fan-1": 200, "fan-2": 404, "organizer-1": 404, "admin": 404, "anonymous": 401},
    ),
    (
        "GET",
        "/waitlist",
        {"organizer-1": 200, "organizer-2": 404, "fan-1": 404, "admin": 200, "anonymous": 401},
    ),
    ("GET", "/waitlist/me", {"fan-1": 404, "fan-2": 404, "anonymous": 401}),
    ("DELETE", "/waitlist/me", {"fan-2": 404, "anonymous": 401}),
]


async def test_who_may_call_what(
    client: httpx.AsyncClient, waitroom_database_url: str, people: People, clock: Any
) -> None:
    """One on-sale, one fan in its queue, every (endpoint, caller) pair asked in turn: one
    join in all, so the per-account and per-address join limits (shared Redis) stay out of
    it. Each pair is its own check; the failures are reported together."""
    event_id = await known_event(waitroom_database_url, organizer="organizer-1")
    base = f"/api/v1/waitroom/events/{event_id}"
    opens = (clock() + timedelta(minutes=5)).replace(microsecond=0)
    body = onsale_body(opens, opens + timedelta(minutes=30))
    created = await client.put(f"{base}/onsale", json=body, headers=people.organizer())
    assert created.status_code == 201, created.text
    clock.jump_to(opens + timedelta(seconds=1))
    fans = {"fan-1": f"fan-{uuid.uuid4().hex[:8]}", "fan-2": f"fan-{uuid.uuid4().hex[:8]}"}
    joined = await client.post(f"{base}/queue", headers=people.customer(fans["fan-1"]))
    assert joined.status_code == 201, joined.text

    wrong = []
    for method, path, table in MATRIX:
        for caller, status in table.items():
            headers = (
                people.customer(fans[caller]) if caller in fans else headers_of(people, caller)
            )
            answer = await client.request(
                method, base + path, json=body if method == "PUT" else None, headers=headers
            )
            if answer.status_code != status:
                wrong.append(f"{method} {path} as {caller}: {answer.status_code}, not {status}")
            elif status >= 400 and not answer.headers["content-type"].startswith(
                "application/problem+json"
            ):
                wrong.append(f"{method} {path} as {caller}: not problem+json")
            elif (
                path == "/queue/me"
                and status == 200
                and answer.json()["ticket"] != joined.json()["ticket"]
            ):
                wrong.append(f"{method} {path} as {caller}: someone else's place")
    assert not wrong, "\n".join(wrong)


async def test_an_unknown_event_is_the_same_404_as_someone_elses(
    client: httpx.AsyncClient, people: People
) -> None:
    unknown = await client.get(
        f"/api/v1/waitroom/events/{uuid.uuid4()}/waitlist", headers=people.organizer("organizer-2")
    )
    assert unknown.status_code == 404
    assert unknown.json()["type"].endswith("/event-not-found")
