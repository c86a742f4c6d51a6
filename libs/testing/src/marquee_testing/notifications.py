"""Helpers for tests and benchmarks of the notifications service: the events that cause
messages, built as their producers build them, parsing what the SMTP sink received, and
the notifications app as a process of its own (for crash tests and the benchmark)."""

from __future__ import annotations

import email
import email.policy
import os
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from marquee_contracts import REGISTRY, CloudEvent
from marquee_contracts.auth import USER_REGISTERED, UserRegistered
from marquee_contracts.booking import TICKET_ISSUED, TicketIssued
from marquee_contracts.catalog import EVENT_CHANGED, EventChanged, EventVenue
from marquee_platform.consumer import ConsumerRunner
from marquee_platform.faults import ENVIRONMENT_VARIABLE
from marquee_testing.localinfra import die_with_parent, free_port, stop_process, wait_for_port
from marquee_testing.waiting import wait_until


def cloud_event(topic: str, data: BaseModel, *, subject: str | None = None) -> CloudEvent:
    owner = topic.split(".", 1)[0]
    return REGISTRY.event(topic, data, source=f"/marquee/{owner}", subject=subject)


async def apply(runner: ConsumerRunner, topic: str, data: BaseModel) -> CloudEvent:
    """Apply one event through the consumer's apply-once path; the envelope it carried."""
    event = cloud_event(topic, data)
    await runner.apply(event, topic=topic)
    return event


def event_snapshot(
    *,
    event_id: uuid.UUID | None = None,
    version: int = 1,
    name: str = "The Night Owls",
    starts_at: datetime | None = None,
    time_zone: str = "Europe/Paris",
    venue_name: str = "Salle Pleyel",
    status: str = "on_sale",
    organizer_id: str = "organizer-1",
    ticket_types: Sequence[Any] = (),
) -> EventChanged:
    starts = starts_at or datetime.now(UTC).replace(microsecond=0) + timedelta(days=10)
    now = datetime.now(UTC)
    return EventChanged(
        event_id=event_id or uuid.uuid4(),
        version=version,
        deleted=False,
        public=status != "draft",
        status=status,
        organizer_id=organizer_id,
        name=name,
        description="",
        category="concert",
        tags=[],
        image_urls=[],
        starts_at=starts,
        ends_at=starts + timedelta(hours=3),
        time_zone=time_zone,
        venue=EventVenue(
            id=uuid.uuid5(uuid.NAMESPACE_URL, f"venue:{venue_name}"),
            name=venue_name,
            address="252 Rue du Faubourg Saint-Honoré",
            city="Paris",
            country="FR",
            latitude=48.877,
            longitude=2.301,
            time_zone=time_zone,
        ),
        price_range=None,
        ticket_types=list(ticket_types),
        sale_starts_at=None,
        sale_ends_at=None,
        high_demand=False,
        max_tickets_per_order=10,
        created_at=now,
        updated_at=now,
        published_at=now,
    )


async def register(runner: ConsumerRunner, user_id: str, email_address: str) -> None:
    await apply(
        runner,
        USER_REGISTERED.name,
        UserRegistered(
            user_id=uuid.UUID(user_id), email=email_address, registered_at=datetime.now(UTC)
        ),
    )


async def issue_ticket(
    runner: ConsumerRunner,
    *,
    event_id: uuid.UUID,
    user_id: str,
    order_id: uuid.UUID | None = None,
    barcode: str | None = None,
) -> TicketIssued:
    issued = TicketIssued(
        ticket_id=uuid.uuid4(),
        order_id=order_id or uuid.uuid4(),
        event_id=event_id,
        user_id=user_id,
        issued_at=datetime.now(UTC),
        seat_id=None,
        ticket_type_id=None,
        barcode=barcode,
    )
    await apply(runner, TICKET_ISSUED.name, issued)
    return issued


async def publish_snapshot(runner: ConsumerRunner, snapshot: EventChanged) -> None:
    await apply(runner, EVENT_CHANGED.name, snapshot)


def parse(raw: bytes) -> EmailMessage:
    message = email.message_from_bytes(raw, policy=email.policy.default)
    assert isinstance(message, EmailMessage)
    return message


def text_body(message: EmailMessage) -> str:
    part = message.get_body(preferencelist=("plain",))
    assert part is not None, "the message has no text/plain body"
    return str(part.get_content())


def attachments(message: EmailMessage) -> dict[str, bytes]:
    found: dict[str, bytes] = {}
    for part in message.iter_attachments():
        content = part.get_content()
        found[part.get_filename() or "?"] = (
            content if isinstance(content, bytes) else str(content).encode()
        )
    return found


def qr_codes(pdf: bytes) -> list[str]:
    """The text of every QR code in a PDF, page by page (rendered, then decoded)."""
    import pypdfium2
    import zxingcpp

    document = pypdfium2.PdfDocument(pdf)
    found = []
    for index in range(len(document)):
        image = document[index].render(scale=2).to_pil()
        found += [result.text for result in zxingcpp.read_barcodes(image)]
    return found


async def mail_to(
    mailbox: Any, address: str, kind: str, *, timeout: float = 30.0, count: int = 1
) -> list[EmailMessage]:
    """The messages of ``kind`` (X-Marquee-Kind) the sink received for ``address``, once
    there are ``count`` of them; fails after ``timeout`` seconds."""

    def found() -> list[EmailMessage]:
        return [
            message
            for mail in mailbox.to(address)
            if (message := parse(mail.raw))["X-Marquee-Kind"] == kind
        ]

    await wait_until(
        lambda: len(found()) >= count,
        timeout=timeout,
        message=lambda: f"{count} {kind} message(s) to {address} (have {len(found())})",
    )
    return found()


def recipients(messages: Iterable[Any]) -> list[str]:
    return sorted(address for message in messages for address in message.rcpt_to)


class NotificationsProcess:
    """The notifications app (API and senders) as its own process, by uvicorn."""

    def __init__(
        self,
        database_url: str,
        smtp_url: str,
        log: Path,
        *,
        settings: Mapping[str, str] | None = None,
    ) -> None:
        self.port = free_port()
        self.log = log
        self.env = {
            **os.environ,
            "NOTIFICATIONS_DATABASE_URL": database_url,
            "NOTIFICATIONS_SMTP_URL": smtp_url,
            "NOTIFICATIONS_LOG_JSON": "false",
            "NOTIFICATIONS_SEND_INTERVAL_SECONDS": "0.05",
            # A claimed message whose sender died is due again after this:
            "NOTIFICATIONS_LEASE_SECONDS": "2",
            "NOTIFICATIONS_JWKS_URL": "http://127.0.0.1:9/.well-known/jwks.json",
            **(settings or {}),
        }
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, crash_at: str | None = None) -> None:
        env = dict(self.env)
        env.pop(ENVIRONMENT_VARIABLE, None)
        if crash_at:
            env[ENVIRONMENT_VARIABLE] = crash_at
        with self.log.open("ab") as out:
            command = [
                sys.executable, "-m", "uvicorn", "--factory",
                "marquee_notifications.main:create_app",
                "--host", "127.0.0.1", "--port", str(self.port),
                "--no-access-log", "--log-level", "warning",
            ]  # fmt: skip
            self.process = subprocess.Popen(
                command,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=die_with_parent(),
            )
        wait_for_port("127.0.0.1", self.port, timeout=60, process=self.process)

    def kill(self) -> None:
        assert self.process is not None
        os.killpg(self.process.pid, signal.SIGKILL)
        assert self.process.wait(timeout=10) == -signal.SIGKILL

    async def wait_dead(self, timeout: float) -> int:
        """Its return code once it died (the sink shares this loop: never block it)."""
        process = self.process
        assert process is not None
        await wait_until(lambda: process.poll() is not None, timeout=timeout, message="its death")
        return process.returncode

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            stop_process(self.process)
