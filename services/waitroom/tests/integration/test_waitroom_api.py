"""The waitroom's HTTP API on real PostgreSQL and Redis: on-sale configuration and who may
do it, joining, standing, admission tokens and their JWKS, fairness, and polling limits."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import httpx
import jwt
import pytest
from fastapi import FastAPI
from sqlalchemy import text

from marquee_contracts.waitroom import ADMISSION_AUDIENCE, ADMISSION_ISSUER
from marquee_platform.db import Database
from marquee_testing.events import People
from marquee_testing.waitroom import known_event, onsale_body
from marquee_waitroom.admission import AdmissionEngine
from marquee_waitroom.verify import verify

ORGANIZER = "organizer-1"


async def test_an_organizer_sets_up_an_onsale_and_fans_queue_get_admitted_and_can_check_it(
    client: httpx.AsyncClient,
    waitroom_app: FastAPI,
    waitroom_database_url: str,
    people: People,
    clock: Any,
) -> None:
    event_id = await known_event(waitroom_database_url)
    base = f"/api/v1/waitroom/events/{event_id}"
    opens = (clock() + timedelta(minutes=5)).replace(microsecond=0)
    starts = opens + timedelta(minutes=30)

    created = await client.put(
        f"{base}/onsale", json=onsale_body(opens, starts), headers=people.organizer()
    )
    assert created.status_code == 201, created.text
    commitment = created.json()["seed_commitment"]
    assert len(commitment) == 64
    assert created.json()["state"] == "scheduled"
    again = await client.put(
        f"{base}/onsale", json=onsale_body(opens, starts), headers=people.organizer()
    )
    assert again.status_code == 200
    assert again.json()["seed_commitment"] == commitment, "the seed is drawn once"

    early = await client.post(f"{base}/queue", headers=people.customer("fan-1"))
    assert early.status_code == 409
    assert early.json()["type"].endswith("/queue-not-open")
    assert early.json()["opens_at"] == opens.isoformat()

    clock.jump_to(opens + timedelta(seconds=1))
    moved = await client.put(
        f"{base}/onsale",
        json=onsale_body(opens, starts + timedelta(hours=1)),
        headers=people.organizer(),
    )
    assert moved.status_code == 409
    assert moved.json()["type"].endswith("/onsale-started")
    widened = await client.put(
        f"{base}/onsale", json=onsale_body(opens, starts, max_active=3), headers=people.organizer()
    )
    assert widened.status_code == 200, widened.text

    fans = [f"fan-{n}" for n in range(5)]
    tickets = {}
    for fan in fans:
        joined = await client.post(f"{base}/queue", headers=people.customer(fan))
        assert joined.status_code == 201, joined.text
        assert joined.json()["status"] == "pre-queue"
        tickets[fan] = joined.json()["ticket"]
    rejoined = await client.post(f"{base}/queue", headers=people.customer(fans[0]))
    assert rejoined.status_code == 200
    assert rejoined.json()["ticket"] == tickets[fans[0]], "one place per account"

    sealed = (await client.get(f"{base}/queue/fairness")).json()
    assert sealed == {**sealed, "revealed": False, "seed": None, "seed_commitment": commitment}

    # Fans keep their page open: it asks where they stand now and then (the grace period
    # restarts each time), so nobody is passed over as away.
    clock.jump_to(starts - timedelta(seconds=30))
    for fan in fans:
        standing = await client.get(f"{base}/queue/me", headers=people.customer(fan))
        assert standing.json()["status"] == "pre-queue"
        assert standing.json()["pre_queue"] == 5
    clock.jump_to(starts)
    engine: AdmissionEngine = waitroom_app.state.admission_engine
    outcome = await engine.admit_event(event_id)
    assert outcome.shuffled == 5
    assert len(outcome.admitted) == 3, "max_active=3"

    fairness = (await client.get(f"{base}/queue/fairness")).json()
    assert fairness["revealed"] is True
    assert sorted(fairness["pre_queue"]) == sorted(tickets.values())
    verdict = verify(
        seed_hex=fairness["seed"],
        commitment=commitment,
        pre_queue=fairness["pre_queue"],
        order=fairness["order"],
    )
    assert verdict.fair, verdict.problems

    jwks = (await client.get("/api/v1/waitroom/.well-known/jwks.json")).json()
    keys = {key["kid"]: jwt.PyJWK(key) for key in jwks["keys"]}
    places = {
        fan: (await client.get(f"{base}/queue/me", headers=people.customer(fan))).json()
        for fan in fans
    }
    by_number = sorted(places.items(), key=lambda item: item[1]["number"])
    assert [place["number"] for _, place in by_number] == [1, 2, 3, 4, 5]
    assert [fairness["order"].index(place["ticket"]) + 1 for _, place in by_number] == [
        1,
        2,
        3,
        4,
        5,
    ], "numbers follow the published order"
    for fan, place in by_number[:3]:
        assert place["status"] == "admitted"
        token = place["admission_token"]
        header = jwt.get_unverified_header(token)
        claims = jwt.decode(
            token,
            keys[header["kid"]].key,
            algorithms=["EdDSA"],
            audience=ADMISSION_AUDIENCE,
            issuer=ADMISSION_ISSUER,
            leeway=clock.offset,
        )
        assert claims["sub"] == fan
        assert claims["evt"] == str(event_id)
        assert claims["jti"] == place["ticket"]
        same = (await client.get(f"{base}/queue/me", headers=people.customer(fan))).json()
        assert same["admission_token"] == token, "re-reading never makes a new admission"
    fourth, fifth = by_number[3][1], by_number[4][1]
    assert (fourth["status"], fourth["ahead"], fourth["admission_token"]) == ("waiting", 0, None)
    assert (fifth["status"], fifth["ahead"]) == ("waiting", 1)

    late = await client.post(f"{base}/queue", headers=people.customer("fan-late"))
    assert late.status_code == 201
    assert (late.json()["status"], late.json()["number"], late.json()["ahead"]) == (
        "waiting",
        6,
        2,
    )

    async with Database(waitroom_database_url, pool_size=1).transaction() as session:
        announced = (
            await session.execute(
                text("SELECT count(*) FROM outbox WHERE topic = 'waitroom.onsale-configured.v1'")
            )
        ).scalar_one()
    assert announced == 3, "each configuration is announced (inventory turns the gate on)"


@pytest.mark.parametrize(
    ("who", "status"),
    [
        ("organizer-2", 404),
        ("customer", 404),
        ("admin", 201),
        ("nobody", 401),
    ],
)
async def test_only_the_events_organizer_or_an_admin_sets_up_its_onsale(
    client: httpx.AsyncClient,
    waitroom_database_url: str,
    people: People,
    clock: Any,
    who: str,
    status: int,
) -> None:
    event_id = await known_event(waitroom_database_url)
    headers = {
        "organizer-2": people.organizer("organizer-2"),
        "customer": people.customer("customer-1"),
        "admin": people.admin(),
        "nobody": {},
    }[who]
    opens = (clock() + timedelta(minutes=5)).replace(microsecond=0)
    answer = await client.put(
        f"/api/v1/waitroom/events/{event_id}/onsale",
        json=onsale_body(opens, opens + timedelta(minutes=5)),
        headers=headers,
    )
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"].startswith(
        "application/problem+json" if status >= 400 else "application/json"
    )


@pytest.mark.parametrize(
    ("changes", "fix"),
    [
        ({"sale_starts_at": "2020-01-01T00:00:00+00:00"}, "sale_starts_at"),
        ({"queue_opens_at": "2020-01-01T00:00:00+00:00"}, "queue_opens_at"),
        ({"max_active": None}, "max_active"),
        ({"admission_window_seconds": 5}, "admission_window_seconds"),
        ({"surprise": 1}, "surprise"),
    ],
)
async def test_a_bad_onsale_is_a_problem_that_says_what_to_fix(
    client: httpx.AsyncClient,
    waitroom_database_url: str,
    people: People,
    clock: Any,
    changes: dict[str, Any],
    fix: str,
) -> None:
    event_id = await known_event(waitroom_database_url)
    opens = (clock() + timedelta(minutes=5)).replace(microsecond=0)
    answer = await client.put(
        f"/api/v1/waitroom/events/{event_id}/onsale",
        json=onsale_body(opens, opens + timedelta(minutes=5), **changes),
        headers=people.organizer(),
    )
    assert answer.status_code == 422, answer.text
    assert answer.headers["content-type"].startswith("application/problem+json")
    assert fix in answer.text


async def test_polling_too_often_is_slowed_not_served_faster(
    client: httpx.AsyncClient,
    waitroom_database_url: str,
    people: People,
    clock: Any,
) -> None:
    event_id = await known_event(waitroom_database_url)
    base = f"/api/v1/waitroom/events/{event_id}"
    opens = (clock() + timedelta(minutes=5)).replace(microsecond=0)
    await client.put(
        f"{base}/onsale",
        json=onsale_body(opens, opens + timedelta(minutes=5)),
        headers=people.organizer(),
    )
    clock.jump_to(opens)
    fan = people.customer("fan-poller")
    assert (await client.post(f"{base}/queue", headers=fan)).status_code == 201
    answers = [(await client.get(f"{base}/queue/me", headers=fan)) for _ in range(31)]
    assert [answer.status_code for answer in answers[:30]] == [200] * 30
    assert answers[30].status_code == 429
    assert int(answers[30].headers["retry-after"]) >= 1
    assert answers[30].json()["type"].endswith("/rate-limited")
    nobody = await client.get(f"{base}/queue/me", headers=people.customer("fan-absent"))
    assert nobody.status_code == 404
    assert nobody.json()["type"].endswith("/not-in-queue")
