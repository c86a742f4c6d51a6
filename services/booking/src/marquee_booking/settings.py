"""Settings of the booking service (environment prefix ``BOOKING_``)."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field

from marquee_platform.settings import ServiceSettings


class BookingSettings(ServiceSettings):
    service_name: ClassVar[str] = "booking"

    inventory_url: str = Field(
        default="http://127.0.0.1:8004",
        description="Where inventory answers: an order reads its hold there, as the buyer "
        "(MARQUEE_INVENTORY_URL in make dev)",
    )
    inventory_timeout_seconds: float = 3.0
    hold_margin_seconds: int = Field(
        default=10,
        description="An order is refused for a hold lapsing sooner than this: there would "
        "be no time left to pay",
    )
