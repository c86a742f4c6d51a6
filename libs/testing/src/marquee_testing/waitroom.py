"""Helpers for tests of the waiting room against real inventory state."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from marquee_contracts import REGISTRY
from marquee_inventory.store import HoldStore
from marquee_platform.consumer import Delivery
from marquee_platform.db import Database
from marquee_testing.inventory import changed_snapshot, published_event
from marquee_waitroom import handlers
from marquee_waitroom.admission import Supply, SupplyReader


def store_supply(hold_store: HoldStore) -> SupplyReader:
    """Inventory's supply read straight from its store on the same Redis: the numbers its
    ``GET …/supply`` serves, without an inventory process in between."""

    async def read(event_id: uuid.UUID) -> Supply:
        supply = await hold_store.supply(event_id)
        return Supply(
            available=supply.available,
            live_holds=supply.live_holds,
            ticket_types={
                tt: counts["available"] for tt, counts in supply.general_admission.items()
            },
        )

    return read


def delivered(topic: str, data: Any) -> Delivery:
    """An inventory message as the consumer runner hands it to a handler."""
    event = REGISTRY.event(topic, data, source="/marquee/inventory", subject=str(data.event_id))
    return Delivery(event=event, data=data, topic=topic, partition=0, offset=0, headers={})


async def known_event(database_url: str, *, organizer: str = "organizer-1") -> uuid.UUID:
    """The waitroom learns an event as its consumer would, from the catalog snapshot."""
    event = published_event(organizer_id=organizer)
    database = Database(database_url, pool_size=1)
    try:
        async with database.transaction() as session:
            await handlers.apply_event_changed(session, changed_snapshot(event, version=4))
    finally:
        await database.dispose()
    return event.event_id


def onsale_body(opens: datetime, starts: datetime, **changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "queue_opens_at": opens.isoformat(),
        "sale_starts_at": starts.isoformat(),
        "adaptive": False,
        "max_active": 2,
        "admission_window_seconds": 120,
        "grace_seconds": 300,
    }
    body.update(changes)
    return body
