"""Settings for a service: one class per service with its own environment prefix.

Every infrastructure piece is chosen by URL. A service reads ``<SERVICE>_<FIELD>`` first
(``BOOKING_DATABASE_URL``) and falls back to the shared ``MARQUEE_<FIELD>``
(``MARQUEE_KAFKA_BOOTSTRAP``) so an operator sets the common pieces once.
"""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field, SecretStr
from pydantic_settings import (
    BaseSettings,
    EnvSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

SHARED_PREFIX = "MARQUEE_"


class ServiceSettings(BaseSettings):
    """What every service needs; a service subclasses it and sets ``service_name``."""

    service_name: ClassVar[str] = "service"

    model_config = SettingsConfigDict(extra="ignore", env_nested_delimiter="__")

    database_url: str = Field(
        default="postgresql+asyncpg://postgres@127.0.0.1:5432/marquee",
        description="The service's own PostgreSQL database (SQLAlchemy async URL)",
    )
    read_database_url: str | None = Field(
        default=None, description="A replica for read-only sessions; the primary if unset"
    )
    database_pool_size: int = 10
    redis_url: str = "redis://127.0.0.1:6379/0"
    redis_pool_size: int = 100
    kafka_bootstrap: str = "127.0.0.1:9092"
    jwks_url: str = "http://127.0.0.1:8001/.well-known/jwks.json"
    jwt_issuer: str = "marquee-auth"
    jwt_audience: str = "marquee"
    log_level: str = "INFO"
    log_json: bool = True
    otlp_endpoint: str | None = Field(
        default=None, description="OTLP/HTTP traces endpoint; spans are only propagated if unset"
    )
    idempotency_key_ttl_hours: int = 24
    inbox_retention_days: int = Field(
        default=14, description="Longer than Kafka retention: older redeliveries re-apply"
    )
    maintenance_interval_seconds: float = 3600.0
    internal_token: SecretStr | None = Field(
        default=None, description="Shared secret for service-to-service calls, if any"
    )

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        own_prefix = f"{cls.service_name.upper()}_"
        return (
            init_settings,
            EnvSettingsSource(settings_cls, env_prefix=own_prefix, case_sensitive=False),
            EnvSettingsSource(settings_cls, env_prefix=SHARED_PREFIX, case_sensitive=False),
            file_secret_settings,
        )
