"""Settings of the notifications service (environment prefix ``NOTIFICATIONS_``)."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field, SecretStr

from marquee_platform.settings import ServiceSettings


class NotificationsSettings(ServiceSettings):
    service_name: ClassVar[str] = "notifications"

    smtp_url: SecretStr = SecretStr("smtp://127.0.0.1:1025")
    """The provider, by URL: ``smtp://[user:password@]host[:port]`` (STARTTLS when the
    server offers it, ``?starttls=required`` to insist), ``smtps://…`` for implicit TLS,
    ``?timeout=<s>``. A secret: it carries the provider's password."""
    mail_from: str = "Marquee <no-reply@marquee.local>"
    public_url: str = "http://127.0.0.1:8000"
    """Where links in messages point (the gateway, or the web client in front of it)."""
    unsubscribe_secret: SecretStr = SecretStr("dev-only-unsubscribe-secret-change-me")
    """Signs one-click unsubscribe links (HMAC-SHA256). Set a long random one in production."""
    dev_outbox: bool = False
    """Serve what the development SMTP sink received (``make dev`` turns it on)."""
    send_interval_seconds: float = Field(default=0.2, gt=0)
    """How often a sender looks for due messages when it found none last time."""
    direct_concurrency: int = Field(default=4, ge=1, le=64)
    """SMTP connections for one person's own messages (orders, resets)."""
    bulk_concurrency: int = Field(default=4, ge=1, le=64)
    """SMTP connections for fan-outs (an event cancelled, reminders)."""
    bulk_per_second: float = Field(default=100.0, gt=0)
    """The most fan-out messages sent per second by one replica (a provider's rate)."""
    max_attempts: int = Field(default=10, ge=1, le=100)
    """A message the server keeps refusing (4xx, or no connection) is marked failed after
    this many attempts; backoff doubles from ``retry_base_seconds`` up to the cap."""
    retry_base_seconds: float = Field(default=2.0, gt=0)
    retry_max_seconds: float = Field(default=600.0, gt=0)
    lease_seconds: float = Field(default=60.0, ge=1)
    """A claimed message not sent by then (its sender died) is due again."""
    reminder_hours_before: int = Field(default=24, ge=1, le=720)
    """The default reminder time before an event starts (an organizer may change it)."""
