"""Tickets after the sale: a transfer revokes the old barcode and issues a new one to
the recipient; a door device scanning offline uploads later, the first scan wins and
every conflict is reported; the scanner kit verifies barcodes offline."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

from marquee_booking import barcodes
from marquee_contracts import CloudEvent
from marquee_contracts.auth import USER_REGISTERED
from marquee_contracts.booking import TICKET_CANCELLED, TICKET_ISSUED, TICKET_TRANSFERRED
from marquee_testing.events import Clock
from marquee_testing.fixtures import TokenIssuer
from marquee_testing.inventory import published_event
from marquee_testing.saga import Saga, bodies

from .helpers import confirm, fan, first_seats, placed_order, start_payment

ORGANIZER = "organizer-1"


async def bought(
    saga: Saga, event_id: uuid.UUID, headers: dict[str, str], seats: list[str]
) -> list[dict[str, Any]]:
    placed = await placed_order(
        saga, event_id, headers, seats=[{"seat_id": seat} for seat in seats]
    )
    await confirm(saga, await start_payment(saga, placed["order_id"], headers))
    await saga.pump()
    tickets = await saga.booking.client.get(
        f"/api/v1/orders/{placed['order_id']}/tickets", headers=headers
    )
    found: list[dict[str, Any]] = tickets.json()
    assert len(found) == len(seats), found
    return found


async def register(saga: Saga, user_id: str, email: str) -> None:
    await saga.booking.runner.apply(
        CloudEvent(
            source="/marquee/auth",
            type=USER_REGISTERED.name,
            data={"user_id": user_id, "email": email, "registered_at": "2026-12-01T00:00:00Z"},
        ),
        topic=USER_REGISTERED.name,
    )


async def test_a_transfer_revokes_the_old_barcode_and_issues_a_new_one(
    saga: Saga, token_issuer: TokenIssuer
) -> None:
    event = published_event(rows=1, seats_per_row=3)
    await saga.publish(event.message)
    _, alice = fan(token_issuer)
    bob_id, bob = fan(token_issuer)
    await register(saga, bob_id, "Bob@Example.com")
    [ticket] = await bought(saga, event.event_id, alice, first_seats(event, 1))

    unknown = await saga.booking.client.post(
        f"/api/v1/tickets/{ticket['ticket_id']}/transfer",
        json={"email": "nobody@example.com"},
        headers=alice,
    )
    assert unknown.status_code == 409
    assert unknown.json()["type"].endswith("/unknown-recipient")

    moved = await saga.booking.client.post(
        f"/api/v1/tickets/{ticket['ticket_id']}/transfer",
        json={"email": "bob@example.com"},
        headers=alice,
    )
    assert moved.status_code == 201, moved.text
    carried = await saga.pump()
    assert len(bodies(carried, TICKET_TRANSFERRED.name)) == 1
    assert [m["user_id"] for m in bodies(carried, TICKET_ISSUED.name)] == [bob_id]
    assert bodies(carried, TICKET_CANCELLED.name) == []  # the seat stays sold

    assert (
        await saga.booking.client.get(f"/api/v1/tickets/{ticket['ticket_id']}/qr", headers=alice)
    ).status_code == 409
    bobs = (await saga.booking.client.get("/api/v1/users/me/tickets", headers=bob)).json()
    [new] = bobs["items"]
    assert new["seat_id"] == ticket["seat_id"]
    assert barcodes.read_barcode(new["barcode"]).version == 1
    organizer = token_issuer.headers(ORGANIZER, ("organizer",))
    scan = f"/api/v1/events/{event.event_id}/checkins"
    old = await saga.booking.client.post(
        scan, json={"barcode": ticket["barcode"]}, headers=organizer
    )
    assert old.json()["result"] == "revoked"
    assert "transferred" in old.json()["detail"]
    assert (
        await saga.booking.client.post(scan, json={"barcode": new["barcode"]}, headers=organizer)
    ).json()["result"] == "valid"
    again = await saga.booking.client.post(
        f"/api/v1/tickets/{new['ticket_id']}/transfer",
        json={"email": "bob@example.com"},
        headers=bob,
    )
    assert again.json()["type"].endswith("/ticket-already-used")


async def test_offline_scans_first_scan_wins_and_conflicts_are_reported(
    saga: Saga, token_issuer: TokenIssuer, clock: Clock
) -> None:
    event = published_event(rows=1, seats_per_row=3)
    await saga.publish(event.message)
    _, alice = fan(token_issuer)
    first, second = await bought(saga, event.event_id, alice, first_seats(event, 2))
    organizer = token_issuer.headers(ORGANIZER, ("organizer",))
    kit = (
        await saga.booking.client.get(
            f"/api/v1/events/{event.event_id}/scanner-kit", headers=organizer
        )
    ).json()
    public_key = barcodes.parse_public_key_text(kit["public_key"])
    # The device verifies offline with the kit alone.
    assert barcodes.verify_barcode(first["barcode"], public_key).ticket_id == uuid.UUID(
        first["ticket_id"]
    )
    other = published_event(rows=1, seats_per_row=1)
    await saga.publish(other.message)
    [elsewhere] = await bought(saga, other.event_id, alice, first_seats(other, 1))

    # Online at the main gate now; the side door scanned the same ticket 10 minutes ago.
    online = await saga.booking.client.post(
        f"/api/v1/events/{event.event_id}/checkins",
        json={"barcode": first["barcode"], "gate": "Main"},
        headers=organizer,
    )
    assert online.json()["result"] == "valid"
    upload = {
        "device_id": "side-door-1",
        "scans": [
            {
                "scan_id": "1",
                "barcode": first["barcode"],
                "gate": "Side",
                "scanned_at": (clock() - timedelta(minutes=10)).isoformat(),
            },
            {
                "scan_id": "2",
                "barcode": second["barcode"],
                "gate": "Side",
                "scanned_at": (clock() - timedelta(minutes=9)).isoformat(),
            },
            {
                "scan_id": "3",
                "barcode": second["barcode"],
                "gate": "Side",
                "scanned_at": (clock() - timedelta(minutes=8)).isoformat(),
            },
            {
                "scan_id": "4",
                "barcode": elsewhere["barcode"],
                "gate": "Side",
                "scanned_at": (clock() - timedelta(minutes=7)).isoformat(),
            },
            {
                "scan_id": "5",
                "barcode": "not a ticket",
                "gate": "Side",
                "scanned_at": (clock() - timedelta(minutes=6)).isoformat(),
            },
        ],
    }
    path = f"/api/v1/events/{event.event_id}/checkins/offline"
    answered = await saga.booking.client.post(path, json=upload, headers=organizer)
    assert answered.status_code == 200, answered.text
    results = {item["scan_id"]: item["result"] for item in answered.json()["results"]}
    assert results == {
        "1": "valid",
        "2": "valid",
        "3": "already_used",
        "4": "other_event",
        "5": "forged",
    }
    # The side door's earlier scan won: the main gate's is now the conflict.
    later = await saga.booking.client.post(
        f"/api/v1/events/{event.event_id}/checkins",
        json={"barcode": first["barcode"]},
        headers=organizer,
    )
    assert later.json()["result"] == "already_used"
    assert later.json()["first_scan"]["gate"] == "Side"
    # Uploading the same scans again changes nothing.
    replayed = await saga.booking.client.post(path, json=upload, headers=organizer)
    assert {item["scan_id"]: item["result"] for item in replayed.json()["results"]} == results
