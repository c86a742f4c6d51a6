"""Helpers for tests of the waiting room against real inventory state."""

from __future__ import annotations

import uuid
from typing import Any

from marquee_contracts import REGISTRY
from marquee_inventory.store import HoldStore
from marquee_platform.consumer import Delivery
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
