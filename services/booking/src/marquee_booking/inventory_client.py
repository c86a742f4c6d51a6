"""Reading a hold from inventory, as the buyer, while they wait for their order.

The one synchronous call booking makes: the buyer has just held places and is waiting on
the order, so the hold is read from inventory (which checks it is theirs) instead of
waiting for ``inventory.hold-created.v1`` to arrive. The buyer's own bearer token is sent
on, so inventory's ownership check is the one that decides: booking never sees a hold
that is not the caller's.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import quote

import httpx

from marquee_booking.domain import HoldNotFound, Place
from marquee_platform.errors import Unavailable


@dataclass(frozen=True, slots=True)
class Hold:
    hold_id: str
    event_id: uuid.UUID
    user_id: str
    places: tuple[Place, ...]
    expires_at: datetime


class InventoryClient:
    def __init__(
        self,
        base_url: str,
        *,
        timeout_seconds: float = 3.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._client = httpx.AsyncClient(
            base_url=base_url.rstrip("/"),
            timeout=timeout_seconds,
            transport=transport,
            limits=httpx.Limits(max_connections=200, max_keepalive_connections=50),
        )

    async def aclose(self) -> None:
        await self._client.aclose()

    async def hold(self, event_id: uuid.UUID, hold_id: str, *, authorization: str) -> Hold:
        """The caller's live hold; :class:`HoldNotFound` if it is not theirs or has ended."""
        path = f"/api/v1/inventory/events/{event_id}/holds/{quote(hold_id, safe='')}"
        try:
            response = await self._client.get(path, headers={"Authorization": authorization})
        except httpx.HTTPError as error:
            raise Unavailable(
                "Inventory cannot be reached to read the hold; try again in a moment.",
                code="inventory-unavailable",
            ) from error
        if response.status_code == 404:
            raise HoldNotFound(hold_id)
        if response.status_code != 200:
            raise Unavailable(
                f"Inventory answered {response.status_code} reading the hold; try again in a "
                "moment.",
                code="inventory-unavailable",
            )
        body = response.json()
        if body.get("hold_id") != hold_id or body.get("event_id") != str(event_id):
            raise HoldNotFound(hold_id)  # never another hold than the one named
        places = tuple(
            Place(ticket_type_id=uuid.UUID(seat["ticket_type_id"]), seat_id=seat["seat_id"])
            for seat in body["seats"]
        ) + tuple(
            Place(ticket_type_id=uuid.UUID(quantity["ticket_type_id"]), seat_id=None)
            for quantity in body["general_admission"]
            for _ in range(int(quantity["quantity"]))
        )
        return Hold(
            hold_id=body["hold_id"],
            event_id=uuid.UUID(body["event_id"]),
            user_id=body["user_id"],
            places=places,
            expires_at=datetime.fromisoformat(body["expires_at"]),
        )
