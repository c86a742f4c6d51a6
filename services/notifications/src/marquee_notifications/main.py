"""The notifications service: app factory and its description for ``marquee``.

The app serves the API and runs the senders (two periodic loops per replica, one per
lane, sharing the work with other replicas through ``SKIP LOCKED``); the consumer
(``marquee consume --service notifications``) turns events into messages.
"""

from __future__ import annotations

from contextlib import AsyncExitStack
from pathlib import Path

from fastapi import FastAPI

from marquee_notifications import api
from marquee_notifications.handlers import Handlers
from marquee_notifications.rendering import Renderer
from marquee_notifications.sender import Sender, SmtpTarget
from marquee_notifications.settings import NotificationsSettings
from marquee_notifications.unsubscribe import UnsubscribeLinks
from marquee_platform.app import create_service_app
from marquee_platform.clock import utc_now
from marquee_platform.periodic import PeriodicTask
from marquee_platform.service import ServiceSpec


def create_app(settings: NotificationsSettings | None = None) -> FastAPI:
    settings = settings or NotificationsSettings()
    target = SmtpTarget.from_url(settings.smtp_url.get_secret_value())

    def clock_of(app: FastAPI):  # type: ignore[no-untyped-def]
        return getattr(app.state, "clock", utc_now)

    async def start_notifications(app: FastAPI, stack: AsyncExitStack) -> None:
        app.state.unsubscribe_links = UnsubscribeLinks(
            secret=settings.unsubscribe_secret.get_secret_value(), public_url=settings.public_url
        )
        app.state.handlers = Handlers(
            public_url=settings.public_url,
            reminder_hours_before=settings.reminder_hours_before,
            clock=lambda: clock_of(app)(),
        )
        renderer = Renderer(public_url=settings.public_url)
        app.state.senders = {}
        for lane, concurrency, per_second in (
            ("direct", settings.direct_concurrency, None),
            ("bulk", settings.bulk_concurrency, settings.bulk_per_second),
        ):
            sender = Sender(
                database=app.state.database,
                renderer=renderer,
                target=target,
                unsubscribe=app.state.unsubscribe_links,
                mail_from=settings.mail_from,
                lane=lane,
                concurrency=concurrency,
                per_second=per_second,
                max_attempts=settings.max_attempts,
                retry_base_seconds=settings.retry_base_seconds,
                retry_max_seconds=settings.retry_max_seconds,
                lease_seconds=settings.lease_seconds,
                clock=lambda: clock_of(app)(),
            )
            stack.push_async_callback(sender.close)
            app.state.senders[lane] = sender

    routers = [api.notifications]
    if settings.dev_outbox:
        from marquee_notifications import dev_outbox

        routers.append(dev_outbox.router)

    return create_service_app(
        settings,
        title="Marquee notifications",
        description="Every message a person should get, exactly once: account, purchase, "
        "event and queue messages by email (SMTP), with preferences, one-click "
        "unsubscribe, a rate-limited lane for fan-outs, and retries that never drop one.",
        routers=routers,
        on_startup=[start_notifications],
        periodic_tasks=[
            lambda app, lane=lane: PeriodicTask(  # type: ignore[misc]
                f"notifications-send-{lane}",
                every_seconds=settings.send_interval_seconds,
                run=app.state.senders[lane].drain,
                run_at_start=True,
            )
            for lane in ("direct", "bulk")
        ],
    )


SERVICE = ServiceSpec(
    name="notifications",
    settings_class=NotificationsSettings,
    app_factory="marquee_notifications.main:create_app",
    dev_port=8007,
    migrations=Path(__file__).parent / "migrations",
    consumer_factory="marquee_notifications.consumers:create_consumer",
)
