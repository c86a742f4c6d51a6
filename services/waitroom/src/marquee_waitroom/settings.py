"""Settings of the waitroom service (environment prefix ``WAITROOM_``)."""

from __future__ import annotations

from typing import ClassVar

from marquee_platform.settings import ServiceSettings


class WaitroomSettings(ServiceSettings):
    service_name: ClassVar[str] = "waitroom"
