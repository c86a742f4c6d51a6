"""The sold-out waitlist on real PostgreSQL and Redis, with real inventory state: an event
sells out, fans join, refunded tickets and an expired hold bring places back, offers go to
the next fans in order, untaken offers pass on, a party of two is not skipped forever by
single returns, and a taken offer ends in a sale.

Inventory's side runs its own code on the same Redis and its own PostgreSQL (sales,
refunds, the hold sweeper); the inventory → waitroom Kafka hop is the waitroom's consumer
handlers called with the messages inventory publishes (the broker path has its tests)."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

import httpx
from fastapi import FastAPI

from marquee_contracts.inventory import HOLD_CREATED, SALE_CONFIRMED, HoldCreated, SaleConfirmed
from marquee_inventory.store import HeldPlaces, HoldStore
from marquee_platform.db import Database
from marquee_testing.events import People
from marquee_testing.inventory import (
    Catalog,
    changed_snapshot,
    order_paid,
    published_event,
    ticket_cancelled,
)
from marquee_testing.waitroom import delivered, store_supply
from marquee_waitroom import handlers, waitlist
from marquee_waitroom.admission import AdmissionEngine
from marquee_waitroom.consumers import WaitroomConsumers
from marquee_waitroom.waitlist import WaitlistOffers

PLACES = 3


async def test_returned_places_go_to_the_waitlist_in_order_and_parties_are_not_starved(
    client: httpx.AsyncClient,
    waitroom_app: FastAPI,
    waitroom_database: Database,
    hold_store: HoldStore,
    catalog: Catalog,
    people: People,
    clock: Any,
) -> None:
    event = await catalog.publish(
        published_event(sections=0, general_admission=PLACES, max_per_order=4)
    )
    event_id, standing = event.event_id, event.general_admission
    assert standing is not None
    async with waitroom_database.transaction() as session:
        await handlers.apply_event_changed(session, changed_snapshot(event, version=4))
    supply = store_supply(hold_store)
    engine: AdmissionEngine = waitroom_app.state.admission_engine
    engine.supply = supply
    offers: WaitlistOffers = waitroom_app.state.waitlist_offers
    offers.supply = supply
    consumers = WaitroomConsumers(waitroom_app.state.queue_store, clock)
    base = f"/api/v1/waitroom/events/{event_id}"

    opens = (clock() + timedelta(minutes=1)).replace(microsecond=0)
    answer = await client.put(
        f"{base}/onsale",
        json={
            "queue_opens_at": opens.isoformat(),
            "sale_starts_at": (opens + timedelta(minutes=1)).isoformat(),
            "adaptive": True,
        },
        headers=people.organizer(),
    )
    assert answer.status_code == 201, answer.text

    async def hold(user: str, quantity: int) -> HeldPlaces:
        held = await hold_store.hold(
            event_id,
            hold_id=uuid.uuid4().hex,
            user_id=user,
            seats=(),
            general_admission=[(standing, quantity)],
            now=clock(),
        )
        async with waitroom_database.transaction() as session:
            await consumers.on_hold_created(
                delivered(
                    HOLD_CREATED.name,
                    HoldCreated(
                        hold_id=held.hold_id,
                        event_id=event_id,
                        user_id=user,
                        seats=[],
                        general_admission=[{"ticket_type_id": standing, "quantity": quantity}],
                        expires_at=held.expires_at,
                        created_at=clock(),
                    ),
                ),
                session,
            )
        return held

    async def buy(held: HeldPlaces) -> uuid.UUID:
        order_id = uuid.uuid4()
        paid = order_paid(
            {
                "hold_id": held.hold_id,
                "event_id": str(event_id),
                "user_id": held.user_id,
                "seats": [],
                "general_admission": [
                    {"ticket_type_id": str(tt), "quantity": q} for tt, q in held.general_admission
                ],
            },
            order_id=order_id,
        )
        assert await catalog.sell(paid, clock=clock) == "confirmed"
        async with waitroom_database.transaction() as session:
            await consumers.on_sale_confirmed(
                delivered(
                    SALE_CONFIRMED.name,
                    SaleConfirmed(
                        order_id=order_id,
                        hold_id=held.hold_id,
                        event_id=event_id,
                        user_id=held.user_id,
                        seats=[],
                        general_admission=paid.general_admission,
                        confirmed_at=clock(),
                    ),
                ),
                session,
            )
        return order_id

    async def refund(order_id: uuid.UUID) -> None:
        cancelled = ticket_cancelled(
            order_id=order_id, event_id=event_id, seat_id=None, ticket_type_id=standing
        )
        assert await catalog.cancel_ticket(cancelled, clock=clock)

    async def offer_round() -> set[str]:
        return {offer.user_id for offer in await offers.offer_event(event_id)}

    async def place(user: str) -> dict[str, Any]:
        answer = await client.get(f"{base}/waitlist/me", headers=people.customer(user))
        assert answer.status_code == 200, answer.text
        body: dict[str, Any] = answer.json()
        return body

    # The sale: three fans buy the three places; the queue sees the event sold out.
    clock.jump_to(opens + timedelta(minutes=1))
    orders = [await buy(await hold(f"buyer-{n}", 1)) for n in range(PLACES)]
    await engine.admit_event(event_id)
    assert (await client.get(f"{base}/onsale")).json()["state"] == "sold-out"

    # The waitlist: a party of two first, then single fans, in this order.
    line = [("party", 2), ("w1", 1), ("w2", 1), ("w3", 1), ("w4", 1)]
    for user, quantity in line:
        joined = await client.post(
            f"{base}/waitlist",
            json={"ticket_type_id": str(standing), "quantity": quantity},
            headers=people.customer(user),
        )
        assert joined.status_code == 201, joined.text
    assert (await place("w3"))["ahead"] == 3
    assert await offer_round() == set(), "nothing came back yet"

    # A refund brings one place back: the party of two does not fit, w1 gets the offer.
    await refund(orders[0])
    assert await offer_round() == {"w1"}
    offered = await place("w1")
    assert offered["state"] == "offered"
    assert offered["admission_token"]
    assert await offer_round() == set(), "the place is w1's while the offer lasts"

    # w1 lets it lapse: it passes on to w2, who holds it ...
    clock.jump_to(datetime.fromisoformat(offered["offer_expires_at"]) + timedelta(seconds=1))
    assert await offer_round() == {"w2"}
    assert (await place("w1"))["state"] == "expired"
    held_by_w2 = await hold("w2", 1)
    # ... which expires unpaid (inventory's sweeper): the place is back, but w2's offer still
    # runs, so it waits for w2 ...
    clock.jump_to(held_by_w2.expires_at + timedelta(seconds=1))
    assert await hold_store.expire_due(event_id, now=clock()) == 1
    assert await offer_round() == set()
    w2 = await place("w2")
    assert w2["state"] == "offered"
    # ... until the offer lapses and the place passes to w3.
    clock.jump_to(datetime.fromisoformat(w2["offer_expires_at"]) + timedelta(seconds=1))
    assert await offer_round() == {"w3"}
    assert (await place("w2"))["state"] == "expired"

    # w3 lets it lapse too. The party has now been passed over three times: the place is
    # kept for it rather than offered to w4 behind it.
    clock.jump_to(clock() + timedelta(seconds=offers.offer_seconds + 1))
    assert await offer_round() == set()
    assert (await place("w4"))["state"] == "waiting"
    assert (await place("party"))["state"] == "waiting"

    # A second refund: now the party of two fits, gets the offer, holds and buys.
    await refund(orders[1])
    assert await offer_round() == {"party"}
    party = await place("party")
    assert party["state"] == "offered"
    await buy(await hold("party", 2))
    assert (await place("party"))["state"] == "bought"
    assert (await place("w4"))["state"] == "waiting"

    lengths = await client.get(f"{base}/waitlist", headers=people.organizer())
    assert lengths.status_code == 200
    assert lengths.json()["ticket_types"] == [
        {"ticket_type_id": str(standing), "waiting": 1, "offered": 0, "places_wanted": 1}
    ]
    other = await client.get(f"{base}/waitlist", headers=people.organizer("organizer-2"))
    assert other.status_code == 404
    assert waitlist.PASS_LIMIT == 3
