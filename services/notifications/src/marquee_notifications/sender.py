"""Sending what is due: claim, render, hand to SMTP, record.

**Claiming.** A sender claims due messages of one lane with ``FOR UPDATE SKIP LOCKED``
and marks them ``sending`` with a lease (``next_attempt_at`` moves to the lease's end), so
any number of replicas share the work and a message claimed by a replica that died is
due again when its lease ends.

**Once.** A message is marked ``sent`` after the SMTP server accepted it (``250`` after
the data), with the few accepted before it on the same connection (``record_every``, 8:
one statement for eight messages instead of eight transactions). SMTP has no idempotent
submission, so there is a window that no client can close: killed between the server's
``250`` and that record, a sender leaves the message claimed, and it goes again when the
lease ends — with the same ``Message-ID`` (:attr:`Message.message_id_header`), which mail
stores use to recognise a copy. At most ``record_every`` messages per SMTP connection can
be in that window at a crash; everything else goes exactly once, and nothing is ever
dropped: a message is only ever ``sent`` after a ``250``.

**Failures.** A 4xx answer or no connection is retried with exponential backoff (capped)
up to ``max_attempts``, then ``failed``; a 5xx answer (the address does not exist) fails
at once; a template that cannot render fails with the reason. Failed messages are listed
for admins (``GET /api/v1/notifications/admin/messages?status=failed``), who may retry
them. Nothing here blocks the consumer: a dead SMTP server only delays.

**Lanes.** ``direct`` (one person's own order, reset link…) and ``bulk`` (fan-outs) are
claimed by separate loops with their own connections; ``bulk`` is paced at
``bulk_per_second`` per replica, so a 50,000-holder cancellation drains at the provider's
rate while order confirmations keep going out at once.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from email import charset, encoders, policy
from email.header import Header
from email.mime.base import MIMEBase
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText
from email.utils import format_datetime, parseaddr
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import aiosmtplib
from prometheus_client import Counter, Histogram
from sqlalchemy import select, text, update

from marquee_notifications.handlers import ticket_context
from marquee_notifications.kinds import PREFERENCE_OF_KIND, REMINDER
from marquee_notifications.models import (
    Holding,
    Message,
    NotificationEvent,
    Preferences,
    Recipient,
    message_id_header,
)
from marquee_notifications.rendering import Rendered, Renderer, TemplateProblem
from marquee_notifications.unsubscribe import UnsubscribeLinks
from marquee_platform.clock import Clock, utc_now
from marquee_platform.db import Database
from marquee_platform.faults import crash_point

logger = logging.getLogger(__name__)

SENT = Counter(
    "marquee_notifications_messages_total",
    "Messages by kind, lane and what became of them",
    ["kind", "lane", "outcome"],
)
DELAY = Histogram(
    "marquee_notifications_delay_seconds",
    "From a message's creation (or its scheduled time) to the SMTP server's acceptance",
    ["lane"],
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 300, 900, 3600),
)

_UTF8 = charset.Charset("utf-8")
_UTF8.body_encoding = charset.QP  # readable in a raw message, and compact for text
_UTF8.header_encoding = charset.QP

_WIRE = policy.compat32.clone(max_line_length=None)
"""Headers as written (a List-Unsubscribe URL is one token: folding it would put a space in
front of it); bodies are quoted-printable or base64, so every line stays short."""

RECORD_EVERY = 8
"""Accepted messages recorded as sent in one statement, per connection: the most that a
crash can leave accepted and unrecorded on one connection (each goes again, same ID)."""

UNKNOWN_ADDRESS_ATTEMPTS = 5
"""A message to an account whose address notifications has not learnt yet waits this many
attempts (auth's ``user-registered`` may be on its way) before it is skipped."""


@dataclass(frozen=True, slots=True)
class SmtpTarget:
    """Where and how to submit mail, from a URL (``smtp://user:pw@host:port?…``)."""

    hostname: str
    port: int
    username: str | None
    password: str | None
    use_tls: bool
    start_tls: bool | None
    timeout: float

    @classmethod
    def from_url(cls, url: str) -> SmtpTarget:
        parts = urlsplit(url)
        if parts.scheme not in ("smtp", "smtps") or not parts.hostname:
            raise ValueError("the SMTP URL must look like smtp://[user:password@]host[:port]")
        query = {key: values[-1] for key, values in parse_qs(parts.query).items()}
        implicit_tls = parts.scheme == "smtps"
        start_tls: bool | None = None  # aiosmtplib: STARTTLS when the server offers it
        if query.get("starttls") == "required":
            start_tls = True
        elif query.get("starttls") == "off":
            start_tls = False
        return cls(
            hostname=parts.hostname,
            port=parts.port or (465 if implicit_tls else 25),
            username=unquote(parts.username) if parts.username else None,
            password=unquote(parts.password) if parts.password else None,
            use_tls=implicit_tls,
            start_tls=False if implicit_tls else start_tls,
            timeout=float(query.get("timeout", 30)),
        )

    def client(self) -> aiosmtplib.SMTP:
        return aiosmtplib.SMTP(
            hostname=self.hostname,
            port=self.port,
            username=self.username,
            password=self.password,
            use_tls=self.use_tls,
            start_tls=self.start_tls,
            timeout=self.timeout,
        )


class TemporaryFailure(Exception):
    """Try again later (a 4xx answer, no connection)."""


class PermanentFailure(Exception):
    """Never going to work (a 5xx answer)."""


class Connection:
    """One SMTP connection, opened on first use and again after it broke."""

    def __init__(self, target: SmtpTarget) -> None:
        self.target = target
        self._client: aiosmtplib.SMTP | None = None

    async def send(self, sender: str, recipient: str, raw: bytes) -> None:
        try:
            if self._client is None or not self._client.is_connected:
                self._client = self.target.client()
                await self._client.connect()
            await self._client.sendmail(sender, [recipient], raw)
        except aiosmtplib.SMTPRecipientsRefused as error:
            codes = [refusal.code for refusal in error.recipients]
            if codes and all(400 <= code < 500 for code in codes):
                raise TemporaryFailure(str(error)) from error
            raise PermanentFailure(str(error)) from error
        except aiosmtplib.SMTPResponseException as error:
            # The transaction is over either way; a fresh one starts with RSET or anew.
            await self._reset()
            if 400 <= error.code < 500:
                raise TemporaryFailure(f"{error.code} {error.message}") from error
            raise PermanentFailure(f"{error.code} {error.message}") from error
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as error:
            await self.close()
            raise TemporaryFailure(f"{type(error).__name__}: {error}") from error

    async def _reset(self) -> None:
        if self._client is None or not self._client.is_connected:
            return
        try:
            await self._client.rset()
        except (aiosmtplib.SMTPException, OSError, TimeoutError):
            await self.close()

    async def close(self) -> None:
        client, self._client = self._client, None
        if client is None:
            return
        try:
            if client.is_connected:
                await client.quit()
        except (aiosmtplib.SMTPException, OSError, TimeoutError):
            client.close()


class Pace:
    """At most ``per_second`` sends, shared by a lane's connections (a leaky bucket)."""

    def __init__(self, per_second: float | None) -> None:
        self.interval = 0.0 if not per_second else 1.0 / per_second
        self._next = 0.0
        self._lock = asyncio.Lock()

    async def wait(self) -> None:
        if not self.interval:
            return
        async with self._lock:
            now = time.monotonic()
            slot = max(self._next, now)
            self._next = slot + self.interval
        if slot > now:
            await asyncio.sleep(slot - now)


@dataclass(frozen=True, slots=True)
class Claimed:
    id: uuid.UUID
    kind: str
    lane: str
    user_id: str | None
    to_address: str | None
    locale: str | None
    event_id: uuid.UUID | None
    context: Mapping[str, Any]
    attempts: int
    transactional: bool
    due_since: datetime

    @property
    def message_id_header(self) -> str:
        return message_id_header(self.id)

    def updates_when_sent(self) -> dict[str, Any]:
        """What else changes once it is sent: nothing kept of a deleted account, and no
        credential (a verification or reset link) kept for us; the mailbox has it."""
        if self.context.get("erase_after_send"):
            return {"to_address": None, "context": {}}
        if "link" in self.context and self.kind in ("verify-email", "password-reset"):
            return {"context": {**self.context, "link": "(sent)"}}
        return {}


_CLAIM = text(
    """
    UPDATE messages AS m
       SET status = 'sending', attempts = m.attempts + 1, next_attempt_at = :lease_until
      FROM (SELECT id, next_attempt_at FROM messages
             WHERE lane = :lane AND status IN ('pending', 'sending') AND next_attempt_at <= :now
             ORDER BY next_attempt_at
             LIMIT :batch
               FOR UPDATE SKIP LOCKED) AS due
     WHERE m.id = due.id
 RETURNING m.id, m.kind, m.lane, m.user_id, m.to_address, m.locale, m.event_id, m.context,
           m.attempts, m.transactional, due.next_attempt_at AS due_since
    """
)


class Sender:
    """Sends the due messages of one lane, with ``concurrency`` SMTP connections."""

    def __init__(
        self,
        *,
        database: Database,
        renderer: Renderer,
        target: SmtpTarget,
        unsubscribe: UnsubscribeLinks,
        mail_from: str,
        lane: str,
        concurrency: int,
        per_second: float | None = None,
        max_attempts: int = 10,
        retry_base_seconds: float = 2.0,
        retry_max_seconds: float = 600.0,
        lease_seconds: float = 60.0,
        batch: int = 20,
        record_every: int = RECORD_EVERY,
        clock: Clock = utc_now,
    ) -> None:
        self.database = database
        self.renderer = renderer
        self.unsubscribe = unsubscribe
        self.mail_from = mail_from
        self.envelope_from = parseaddr(mail_from)[1] or mail_from
        self.lane = lane
        self.max_attempts = max_attempts
        self.retry_base_seconds = retry_base_seconds
        self.retry_max_seconds = retry_max_seconds
        self.lease = timedelta(seconds=lease_seconds)
        self.batch = batch
        self.record_every = record_every
        self.clock = clock
        self.pace = Pace(per_second)
        self.connections = [Connection(target) for _ in range(concurrency)]

    async def drain(self, *, max_seconds: float = 5.0) -> int:
        """Send what is due until nothing is, or for about ``max_seconds``; how many went."""
        deadline = time.monotonic() + max_seconds
        counts = await asyncio.gather(
            *(self._work(connection, deadline) for connection in self.connections)
        )
        return sum(counts)

    async def close(self) -> None:
        for connection in self.connections:
            await connection.close()

    async def _work(self, connection: Connection, deadline: float) -> int:
        sent = 0
        while time.monotonic() < deadline:
            claimed = await self.claim()
            if not claimed:
                break
            context = await self._load_context(claimed)
            accepted: list[Claimed] = []
            try:
                for message in claimed:
                    sent += await self._deliver(connection, message, context, accepted)
                    if len(accepted) >= self.record_every:
                        await self._record_sent(accepted)
            finally:
                # (Cancelled or failing here, what was accepted and not recorded goes again
                # after its lease: a copy with the same Message-ID, never a loss.)
                if accepted:
                    await self._record_sent(accepted)
        return sent

    async def claim(self, batch: int | None = None) -> list[Claimed]:
        now = self.clock()
        async with self.database.transaction() as session:
            rows = (
                await session.execute(
                    _CLAIM,
                    {
                        "lane": self.lane,
                        "now": now,
                        "lease_until": now + self.lease,
                        "batch": batch or self.batch,
                    },
                )
            ).mappings()
            return [Claimed(**row) for row in rows]

    async def _load_context(self, claimed: Sequence[Claimed]) -> _SendContext:
        users = {message.user_id for message in claimed if message.user_id}
        events = {message.event_id for message in claimed if message.event_id}
        async with self.database.reading() as session:
            recipients = {
                recipient.user_id: recipient
                for recipient in (
                    await session.execute(select(Recipient).where(Recipient.user_id.in_(users)))
                ).scalars()
            }
            preferences = {
                preference.user_id: preference
                for preference in (
                    await session.execute(select(Preferences).where(Preferences.user_id.in_(users)))
                ).scalars()
            }
            found_events = {
                event.event_id: event
                for event in (
                    await session.execute(
                        select(NotificationEvent).where(NotificationEvent.event_id.in_(events))
                    )
                ).scalars()
            }
            wanted_tickets = {
                uuid.UUID(ticket_id)
                for message in claimed
                for ticket_id in message.context.get("ticket_ids", ())
            }
            tickets = {}
            if wanted_tickets:
                tickets = {
                    holding.ticket_id: holding
                    for holding in (
                        await session.execute(
                            select(Holding).where(Holding.ticket_id.in_(wanted_tickets))
                        )
                    ).scalars()
                }
            reminded = [m for m in claimed if m.kind == REMINDER and m.user_id]
            holding: set[tuple[str, uuid.UUID]] = set()
            if reminded:
                rows = await session.execute(
                    select(Holding.user_id, Holding.event_id)
                    .where(
                        Holding.active,
                        Holding.user_id.in_({m.user_id for m in reminded}),
                        Holding.event_id.in_({m.event_id for m in reminded}),
                    )
                    .group_by(Holding.user_id, Holding.event_id)
                )
                holding = {(user_id, event_id) for user_id, event_id in rows.all()}
        return _SendContext(recipients, preferences, found_events, holding, tickets)

    async def _deliver(
        self,
        connection: Connection,
        message: Claimed,
        known: _SendContext,
        accepted: list[Claimed],
    ) -> int:
        verdict = self._why_not(message, known)
        if isinstance(verdict, _Retry):
            await self._retry(message, verdict.reason)
            return 0
        if verdict is not None:
            await self._finish(message, "skipped", reason=verdict)
            return 0
        address = message.to_address or known.recipients[message.user_id or ""].email
        assert address is not None
        recipient = known.recipients.get(message.user_id or "")
        locale = message.locale or (recipient.locale if recipient else None)
        unsubscribe_url = None
        if not message.transactional and message.user_id:
            unsubscribe_url = self.unsubscribe.url(
                message.user_id, PREFERENCE_OF_KIND[message.kind]
            )
        try:
            # Off the event loop: a confirmation's PDF takes a tenth of a second or more.
            raw = await asyncio.to_thread(
                self._render_and_compose,
                message,
                known.context_of(message),
                address,
                locale,
                unsubscribe_url,
            )
        except TemplateProblem as problem:
            logger.error(
                "message %s (%s) cannot be rendered: %s", message.id, message.kind, problem
            )
            await self._finish(message, "failed", reason=f"template: {problem}")
            return 0
        if self.lane == "bulk":
            await self.pace.wait()
        crash_point("notifications.claimed-not-sent")
        try:
            await connection.send(self.envelope_from, address, raw)
        except TemporaryFailure as failure:
            await self._retry(message, f"smtp: {failure}")
            return 0
        except PermanentFailure as failure:
            await self._finish(message, "failed", reason=f"smtp refused: {failure}")
            return 0
        crash_point("notifications.accepted-not-recorded")  # the one window SMTP leaves
        if message.updates_when_sent():
            await self._finish(message, "sent")  # its own changes go with it
        else:
            accepted.append(message)  # recorded with the next few (record_every)
        return 1

    def _why_not(self, message: Claimed, known: _SendContext) -> str | _Retry | None:
        """Why this message must not go (now), or None to send it."""
        if message.user_id is not None and message.to_address is None:
            recipient = known.recipients.get(message.user_id)
            if recipient is None:
                if message.attempts < UNKNOWN_ADDRESS_ATTEMPTS:
                    return _Retry("no address known for this account yet")
                return "no address known for this account"
            if recipient.deleted or not recipient.email:
                return "the account was deleted"
        if not message.transactional and message.user_id is not None:
            preference = PREFERENCE_OF_KIND.get(message.kind)
            chosen = known.preferences.get(message.user_id)
            if preference and chosen is not None and not getattr(chosen, preference):
                return f"the person turned {preference} off"
        missing = [
            t for t in message.context.get("ticket_ids", ()) if uuid.UUID(t) not in known.tickets
        ]
        if missing:
            # booking's ticket-issued and order-confirmed are two topics: either may come
            # first. The confirmation waits for its tickets (and is retried, never dropped).
            return _Retry(f"tickets not seen yet: {', '.join(missing)}")
        if message.kind == REMINDER:
            event = known.events.get(message.event_id) if message.event_id else None
            starts_at = event.starts_at if event is not None else None
            if starts_at is not None and starts_at <= self.clock():
                return "the event has started"
            if (message.user_id, message.event_id) not in known.holding:
                return "the person holds no ticket for the event any more"
        return None

    def _render_and_compose(
        self,
        message: Claimed,
        context: Mapping[str, Any],
        address: str,
        locale: str | None,
        unsubscribe_url: str | None,
    ) -> bytes:
        rendered = self.renderer.render(
            message.kind,
            {**context, "recipient_email": address},
            locale=locale,
            unsubscribe_url=unsubscribe_url,
        )
        return self.compose(message, address, rendered, unsubscribe_url)

    def compose(
        self, message: Claimed, address: str, rendered: Rendered, unsubscribe_url: str | None
    ) -> bytes:
        """The message as it goes on the wire. Built with the email package's MIME classes
        (compat32), which do a third of the work of its ``EmailMessage`` API per message:
        at thousands of messages a minute that is the sender's main cost."""
        body = MIMEMultipart("alternative")
        # A Charset instance is what MIMEText hands to set_payload (typeshed says str only).
        body.attach(MIMEText(rendered.text, "plain", _UTF8))  # type: ignore[arg-type]
        body.attach(MIMEText(rendered.html, "html", _UTF8))  # type: ignore[arg-type]
        root = body
        if rendered.attachments:
            root = MIMEMultipart("mixed")
            root.attach(body)
            for attachment in rendered.attachments:
                maintype, subtype = attachment.content_type.split("/", 1)
                part = MIMEBase(maintype, subtype)
                part.set_payload(attachment.data)
                encoders.encode_base64(part)
                part.add_header("Content-Disposition", "attachment", filename=attachment.filename)
                root.attach(part)
        root["From"] = self.mail_from
        root["To"] = address if address.isascii() else Header(address, "utf-8").encode()
        root["Subject"] = (
            rendered.subject
            if rendered.subject.isascii()
            else Header(rendered.subject, "utf-8").encode()
        )
        root["Date"] = format_datetime(self.clock())
        root["Message-ID"] = message.message_id_header
        root["X-Marquee-Kind"] = message.kind
        if not message.transactional:
            root["Auto-Submitted"] = "auto-generated"
        if unsubscribe_url is not None:
            # RFC 8058: a mail client may unsubscribe with one POST, no page in between.
            root["List-Unsubscribe"] = f"<{unsubscribe_url}>"
            root["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
        return root.as_bytes(policy=_WIRE)

    async def _record_sent(self, accepted: list[Claimed]) -> None:
        """Mark what the server accepted as sent, in one statement; empties ``accepted``."""
        now = self.clock()
        batch, accepted[:] = list(accepted), []
        async with self.database.transaction() as session:
            await session.execute(
                update(Message)
                .where(Message.id.in_([message.id for message in batch]))
                .values(status="sent", last_error=None, sent_at=now)
            )
        for message in batch:
            SENT.labels(message.kind, message.lane, "sent").inc()
            DELAY.labels(message.lane).observe(max(0.0, (now - message.due_since).total_seconds()))

    async def _finish(self, message: Claimed, status: str, *, reason: str | None = None) -> None:
        now = self.clock()
        values: dict[str, Any] = {"status": status, "last_error": reason}
        if status == "sent":
            values.update(sent_at=now, **message.updates_when_sent())
        async with self.database.transaction() as session:
            await session.execute(update(Message).where(Message.id == message.id).values(**values))
        SENT.labels(message.kind, message.lane, status).inc()
        if status == "sent":
            DELAY.labels(message.lane).observe(max(0.0, (now - message.due_since).total_seconds()))

    async def _retry(self, message: Claimed, reason: str) -> None:
        if message.attempts >= self.max_attempts:
            logger.error(
                "message %s (%s) failed after %d attempts: %s",
                message.id,
                message.kind,
                message.attempts,
                reason,
            )
            await self._finish(
                message, "failed", reason=f"gave up after {message.attempts}: {reason}"
            )
            return
        backoff = min(self.retry_max_seconds, self.retry_base_seconds * 2 ** (message.attempts - 1))
        logger.warning(
            "message %s (%s) attempt %d: %s; again in %.0fs",
            message.id,
            message.kind,
            message.attempts,
            reason,
            backoff,
        )
        async with self.database.transaction() as session:
            await session.execute(
                update(Message)
                .where(Message.id == message.id)
                .values(
                    status="pending",
                    last_error=reason,
                    next_attempt_at=self.clock() + timedelta(seconds=backoff),
                )
            )
        SENT.labels(message.kind, message.lane, "retried").inc()


@dataclass(frozen=True, slots=True)
class _Retry:
    reason: str


@dataclass(frozen=True, slots=True)
class _SendContext:
    recipients: Mapping[str, Recipient]
    preferences: Mapping[str, Preferences]
    events: Mapping[uuid.UUID, NotificationEvent]
    holding: set[tuple[str, uuid.UUID]]
    tickets: Mapping[uuid.UUID, Holding]

    def context_of(self, message: Claimed) -> dict[str, Any]:
        """What the template gets: the message's own context, and its tickets (with their
        barcodes) where it names them."""
        context = dict(message.context)
        ticket_ids = context.pop("ticket_ids", None)
        if ticket_ids is not None:
            event = self.events.get(message.event_id) if message.event_id else None
            context["tickets"] = [
                ticket_context(self.tickets[uuid.UUID(ticket_id)], event)
                for ticket_id in ticket_ids
            ]
        return context
