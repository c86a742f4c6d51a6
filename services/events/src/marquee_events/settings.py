"""Settings of the events service (environment prefix ``EVENTS_``)."""

from __future__ import annotations

from typing import ClassVar

from marquee_platform.settings import ServiceSettings


class EventsSettings(ServiceSettings):
    service_name: ClassVar[str] = "events"
