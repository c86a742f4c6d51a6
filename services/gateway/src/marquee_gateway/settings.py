"""Settings of the gateway service (environment prefix ``GATEWAY_``)."""

from __future__ import annotations

from typing import ClassVar

from marquee_platform.settings import ServiceSettings


class GatewaySettings(ServiceSettings):
    service_name: ClassVar[str] = "gateway"
