"""Reading an order from booking, as the buyer, when they start paying for it.

Used only when ``booking.order-created.v1`` has not reached payments yet (the buyer is
quicker than the relay): the buyer is waiting, so booking is asked directly with the
buyer's own token, and booking's ownership check decides.
"""

from __future__ import annotations

import uuid
from datetime import datetime

import httpx

from marquee_payments.handlers import OrderToPay
from marquee_platform.errors import NotFound, Unavailable


class BookingClient:
    def __init__(
        self,
        base_url: str,
        *,
        timeout_seconds: float = 3.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._client = httpx.AsyncClient(
            base_url=base_url.rstrip("/"), timeout=timeout_seconds, transport=transport
        )

    async def aclose(self) -> None:
        await self._client.aclose()

    async def order(self, order_id: uuid.UUID, *, authorization: str) -> OrderToPay:
        try:
            response = await self._client.get(
                f"/api/v1/orders/{order_id}", headers={"Authorization": authorization}
            )
        except httpx.HTTPError as error:
            raise Unavailable(
                "Booking cannot be reached to read the order; try again in a moment.",
                code="booking-unavailable",
            ) from error
        if response.status_code == 404:
            raise NotFound(f"There is no order {order_id} of yours.", code="order-not-found")
        if response.status_code != 200:
            raise Unavailable(
                f"Booking answered {response.status_code} reading the order; try again.",
                code="booking-unavailable",
            )
        body = response.json()
        return OrderToPay(
            order_id=uuid.UUID(body["order_id"]),
            user_id=body["user_id"],
            event_id=uuid.UUID(body["event_id"]),
            status=body["status"],
            total_minor=int(body["total_minor"]),
            fees_minor=int(body["fees_minor"]),
            currency=body["currency"],
            expires_at=datetime.fromisoformat(body["expires_at"]),
        )
