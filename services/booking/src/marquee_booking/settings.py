"""Settings of the booking service (environment prefix ``BOOKING_``)."""

from __future__ import annotations

from typing import ClassVar

from marquee_platform.settings import ServiceSettings


class BookingSettings(ServiceSettings):
    service_name: ClassVar[str] = "booking"
