"""Who may call what: preferences are one's own, an event's settings its organizer's,
the message lists an admin's; bad input is a problem+json that says what to fix."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import httpx
import pytest

from marquee_contracts.auth import PASSWORD_CHANGED, PasswordChanged
from marquee_platform.consumer import ConsumerRunner
from marquee_testing.events import People
from marquee_testing.notifications import apply, event_snapshot, publish_snapshot, register

pytestmark = pytest.mark.integration


async def test_preferences_are_ones_own_and_only_what_is_given_changes(
    client: httpx.AsyncClient, people: People
) -> None:
    ada, bo = people.customer("ada"), people.customer("bo")
    assert (await client.get("/api/v1/notifications/preferences")).status_code == 401
    first = await client.get("/api/v1/notifications/preferences", headers=ada)
    assert first.json() == {"reminders": True, "announcements": True, "transactional": "always"}
    changed = await client.put(
        "/api/v1/notifications/preferences", json={"reminders": False}, headers=ada
    )
    assert changed.json()["reminders"] is False
    assert changed.json()["announcements"] is True
    assert (await client.get("/api/v1/notifications/preferences", headers=bo)).json()[
        "reminders"
    ] is True
    refused = await client.put(
        "/api/v1/notifications/preferences", json={"transactional": False}, headers=ada
    )
    assert refused.status_code == 422
    assert refused.headers["content-type"] == "application/problem+json"
    assert "transactional" in refused.text


@pytest.mark.parametrize(
    ("caller", "method", "path", "expected"),
    [
        # An event's settings: its organizer and admins; anyone else is told it is unknown.
        ("organizer-1", "GET", "/events/{event}/settings", 200),
        ("organizer-1", "PUT", "/events/{event}/settings", 200),
        ("organizer-2", "GET", "/events/{event}/settings", 404),
        ("organizer-2", "PUT", "/events/{event}/settings", 404),
        ("customer", "PUT", "/events/{event}/settings", 404),
        ("admin", "PUT", "/events/{event}/settings", 200),
        ("anonymous", "GET", "/events/{event}/settings", 401),
        # Messages of everyone: admins only.
        ("customer", "GET", "/admin/messages", 403),
        ("organizer-1", "GET", "/admin/messages", 403),
        ("admin", "GET", "/admin/messages", 200),
        ("anonymous", "GET", "/admin/messages", 401),
        ("organizer-1", "POST", "/admin/messages/{message}/retry", 403),
        # One's own messages.
        ("customer", "GET", "/users/me/messages", 200),
        ("anonymous", "GET", "/users/me/messages", 401),
    ],
)
async def test_who_may_call_what(
    client: httpx.AsyncClient,
    runner: ConsumerRunner,
    people: People,
    caller: str,
    method: str,
    path: str,
    expected: int,
) -> None:
    snapshot = event_snapshot(organizer_id="organizer-1")
    await publish_snapshot(runner, snapshot)
    headers = {
        "organizer-1": people.organizer("organizer-1"),
        "organizer-2": people.organizer("organizer-2"),
        "customer": people.customer("customer-1"),
        "admin": people.admin(),
        "anonymous": {},
    }[caller]
    url = "/api/v1/notifications" + path.format(event=snapshot.event_id, message=uuid.uuid4())
    body = {"reminder_hours_before": 48} if method == "PUT" else None
    response = await client.request(method, url, json=body, headers=headers)
    assert response.status_code == expected, response.text


async def test_a_person_sees_their_own_messages_and_no_one_elses(
    client: httpx.AsyncClient, runner: ConsumerRunner, people: People
) -> None:
    ada, bo = str(uuid.uuid4()), str(uuid.uuid4())
    for user_id in (ada, bo):
        await register(runner, user_id, f"{user_id}@example.org")
        await apply(
            runner,
            PASSWORD_CHANGED.name,
            PasswordChanged(
                user_id=uuid.UUID(user_id), changed_at=datetime.now(UTC), reason="changed"
            ),
        )
    mine = await client.get("/api/v1/notifications/users/me/messages", headers=people.customer(ada))
    assert mine.status_code == 200, mine.text
    [item] = mine.json()["items"]
    assert item["kind"] == "password-changed"
    assert "to_address" not in item


async def test_bad_input_is_a_problem_that_says_what_to_fix(
    client: httpx.AsyncClient, runner: ConsumerRunner, people: People
) -> None:
    snapshot = event_snapshot(organizer_id="organizer-1")
    await publish_snapshot(runner, snapshot)
    organizer = people.organizer("organizer-1")
    cases = [
        ("PUT", f"/events/{snapshot.event_id}/settings", {"reminder_hours_before": 0}),
        ("PUT", f"/events/{snapshot.event_id}/settings", {"reminder_hours_before": "soon"}),
        ("PUT", "/events/not-a-uuid/settings", {"reminder_hours_before": 24}),
        ("GET", "/admin/messages?status=lost", None),
        ("POST", "/unsubscribe?token=garbage", None),
        ("GET", "/unsubscribe?token=" + "A" * 2000, None),
    ]
    for method, path, body in cases:
        headers = people.admin() if "admin" in path else organizer
        response = await client.request(
            method, "/api/v1/notifications" + path, json=body, headers=headers
        )
        assert response.status_code == 422, (path, response.status_code, response.text)
        assert response.headers["content-type"] == "application/problem+json", path
        assert response.json()["detail"], path
