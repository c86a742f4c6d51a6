"""Settings of the inventory service (environment prefix ``INVENTORY_``)."""

from __future__ import annotations

from typing import ClassVar

from marquee_platform.settings import ServiceSettings


class InventorySettings(ServiceSettings):
    service_name: ClassVar[str] = "inventory"
