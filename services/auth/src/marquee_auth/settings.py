"""Settings of the auth service (environment prefix ``AUTH_``)."""

from __future__ import annotations

from typing import ClassVar

from marquee_platform.settings import ServiceSettings


class AuthSettings(ServiceSettings):
    service_name: ClassVar[str] = "auth"
