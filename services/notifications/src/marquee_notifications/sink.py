"""A real SMTP server that accepts every message: the mail provider of ``make dev``, tests
and the benchmark.

It runs in the current asyncio loop (``loop.create_server``, not aiosmtpd's threaded
``Controller``), so a test, the sender under test and the store share one loop. It listens
on loopback only: it accepts mail from and to anyone, which nothing outside this machine
should be able to use. A message is stored once its DATA is complete, and only then
answered ``250``; a store that fails answers ``451`` so the sender tries again, as it would
with a real provider. :meth:`SmtpSink.refuse` makes it answer every transaction with a
temporary failure for a while, to see the sender back off and retry.

    python -m marquee_notifications.sink --host 127.0.0.1 --port 1025 \\
        --database-url postgresql+asyncpg://…/marquee_notifications

runs it until SIGTERM/SIGINT, storing into ``dev_outbox`` (what ``marquee dev`` starts).
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import ipaddress
import logging
import os
import signal
import time
import weakref
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from email.parser import BytesHeaderParser
from email.policy import default as default_policy
from types import TracebackType
from typing import Protocol, Self

from aiosmtpd.smtp import SMTP, Envelope, Session

from marquee_notifications.models import DevOutboxMessage
from marquee_platform.db import Database, DatabaseUnreachable
from marquee_platform.logging import configure_logging

logger = logging.getLogger("marquee.notifications.sink")

DATA_SIZE_LIMIT = 25 * 1024 * 1024
"""What providers commonly accept; a message with tickets and an invitation is far less."""

STOP_GRACE_SECONDS = 5.0
"""How long :meth:`SmtpSink.stop` lets a message being stored finish before it hangs up."""


@dataclass(frozen=True, slots=True)
class ReceivedMail:
    mail_from: str
    rcpt_to: tuple[str, ...]
    """The envelope's recipients (Bcc included), as the client gave them."""
    raw: bytes
    message_id: str | None
    """The Message-ID header, angle brackets included."""
    subject: str | None
    """Decoded (RFC 2047 words as text)."""
    received_at: datetime

    @classmethod
    def of(cls, mail_from: str, rcpt_to: Sequence[str], raw: bytes) -> ReceivedMail:
        message_id, subject = _headers(raw)
        return cls(
            mail_from=mail_from,
            rcpt_to=tuple(rcpt_to),
            raw=raw,
            message_id=message_id,
            subject=subject,
            received_at=datetime.now(UTC),
        )


def _headers(raw: bytes) -> tuple[str | None, str | None]:
    """The Message-ID and the decoded Subject; a header too broken to read is ``None``
    (the sink stores what it got, it does not judge it)."""
    headers = BytesHeaderParser(policy=default_policy).parsebytes(raw)

    def text(name: str) -> str | None:
        try:
            value = headers[name]
        except Exception:  # a malformed header the policy can't turn into a str
            return None
        return None if value is None else str(value).strip()

    return text("Message-ID"), text("Subject")


class MailStore(Protocol):
    async def add(self, mail: ReceivedMail) -> None: ...


class MemoryStore:
    """Everything received, in order: for tests and benchmarks."""

    def __init__(self) -> None:
        self.messages: list[ReceivedMail] = []
        self._arrived = asyncio.Condition()

    async def add(self, mail: ReceivedMail) -> None:
        async with self._arrived:
            self.messages.append(mail)
            self._arrived.notify_all()

    def to(self, address: str) -> list[ReceivedMail]:
        """What was delivered to ``address`` (case-insensitive), in order."""
        wanted = address.strip().lower()
        return [
            mail
            for mail in self.messages
            if any(recipient.lower() == wanted for recipient in mail.rcpt_to)
        ]

    def count_by_recipient(self) -> collections.Counter[str]:
        """Messages per recipient address (lower-cased, so one person counts once)."""
        return collections.Counter(
            recipient.lower() for mail in self.messages for recipient in mail.rcpt_to
        )

    async def wait_for(self, count: int, *, timeout: float = 10.0) -> list[ReceivedMail]:
        """Every message received, once there are at least ``count`` of them; a
        ``TimeoutError`` saying how many came if they do not within ``timeout`` seconds."""
        try:
            async with asyncio.timeout(timeout), self._arrived:
                await self._arrived.wait_for(lambda: len(self.messages) >= count)
        except TimeoutError:
            raise TimeoutError(
                f"{len(self.messages)} of {count} messages arrived within {timeout}s"
            ) from None
        return list(self.messages)


class DatabaseStore:
    """Rows in notifications' ``dev_outbox``: what ``make dev`` shows a developer."""

    def __init__(self, database: Database) -> None:
        self._database = database

    async def add(self, mail: ReceivedMail) -> None:
        async with self._database.transaction() as session:
            session.add(
                DevOutboxMessage(
                    received_at=mail.received_at,
                    mail_from=mail.mail_from,
                    rcpt_to=list(mail.rcpt_to),
                    message_id=mail.message_id,
                    subject=mail.subject,
                    raw=mail.raw,
                )
            )


@dataclass(frozen=True, slots=True)
class _Refusal:
    until: float
    """``time.monotonic()`` when the refusal ends."""
    reply: str


class _Handler:
    """aiosmtpd's hooks: accept any sender and recipient, store after DATA."""

    def __init__(self, sink: SmtpSink) -> None:
        self._sink = sink

    async def handle_MAIL(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        address: str,
        mail_options: list[str],
    ) -> str:
        refusal = self._sink._refusal_now()
        if refusal is not None:
            self._sink.refused += 1
            return refusal
        # A hook that answers takes over what aiosmtpd would otherwise record.
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        sink = self._sink
        # A transaction that began before a refusal window ends inside it refused too.
        refusal = sink._refusal_now()
        if refusal is not None:
            sink.refused += 1
            return refusal
        raw = envelope.original_content or b""
        mail = ReceivedMail.of(envelope.mail_from or "", envelope.rcpt_tos, raw)
        sink._storing += 1
        sink._idle.clear()
        try:
            await sink.store.add(mail)
        except Exception:
            logger.exception("could not store a message from %s", mail.mail_from)
            return "451 4.3.0 Could not store the message; try again later"
        finally:
            sink._storing -= 1
            if sink._storing == 0:
                sink._idle.set()
        sink.accepted += 1
        return f"250 OK: queued as {sink.accepted}"


class SmtpSink:
    """An SMTP server on loopback that stores every message it accepts into ``store``."""

    def __init__(
        self,
        store: MailStore,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        hostname: str = "marquee-smtp-sink",
        data_size_limit: int = DATA_SIZE_LIMIT,
    ) -> None:
        self.store = store
        self._host = _loopback(host)
        self._requested_port = port
        self._hostname = hostname
        self._data_size_limit = data_size_limit
        self._handler = _Handler(self)
        self._server: asyncio.Server | None = None
        self._connections: weakref.WeakSet[SMTP] = weakref.WeakSet()
        self._refusal: _Refusal | None = None
        self._storing = 0
        self._idle = asyncio.Event()
        self._idle.set()
        self.accepted = 0
        """Messages stored and answered ``250``."""
        self.refused = 0
        """Transactions answered with :meth:`refuse`'s code."""

    async def start(self) -> None:
        if self._server is not None:
            raise RuntimeError("the SMTP sink is already running")
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            self._new_connection, self._host, self._requested_port
        )

    def _new_connection(self) -> SMTP:
        protocol = SMTP(
            self._handler,
            data_size_limit=self._data_size_limit,
            enable_SMTPUTF8=True,
            # A fixed name: the default, socket.getfqdn(), may wait on DNS per connection.
            hostname=self._hostname,
            ident="Marquee SMTP sink (development only)",
            # AUTH is advertised only over TLS, which this never offers: no AUTH at all.
            auth_require_tls=True,
            loop=asyncio.get_running_loop(),
        )
        self._connections.add(protocol)
        return protocol

    async def stop(self) -> None:
        """Stop listening, let a message being stored finish (a few seconds at most), then
        hang up on every client still connected."""
        server, self._server = self._server, None
        if server is None:
            return
        server.close()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._idle.wait(), timeout=STOP_GRACE_SECONDS)
        for protocol in list(self._connections):
            if protocol.transport is not None:
                protocol.transport.close()
        await server.wait_closed()
        await asyncio.sleep(0)  # let connection_lost cancel each connection's handler

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.stop()

    @property
    def port(self) -> int:
        """The bound port (a free one when created with ``port=0``)."""
        if self._server is None or not self._server.sockets:
            raise RuntimeError("the SMTP sink is not running: start() it first")
        return int(self._server.sockets[0].getsockname()[1])

    @property
    def host(self) -> str:
        return self._host

    @property
    def url(self) -> str:
        """``smtp://127.0.0.1:<port>``, as ``NOTIFICATIONS_SMTP_URL`` takes it."""
        host = f"[{self._host}]" if ":" in self._host else self._host
        return f"smtp://{host}:{self.port}"

    def refuse(
        self, *, seconds: float, code: int = 451, reason: str = "4.3.2 Try again later"
    ) -> None:
        """For ``seconds`` from now, answer every MAIL FROM (and any DATA in progress) with
        ``code``: a 4xx is a temporary failure the sender must retry later, a 5xx a
        permanent one. ``seconds=0`` ends a refusal."""
        if not 400 <= code <= 599:
            raise ValueError(f"a refusal is a 4xx or 5xx reply, not {code}")
        if seconds < 0:
            raise ValueError("seconds must not be negative")
        self._refusal = _Refusal(until=time.monotonic() + seconds, reply=f"{code} {reason}")

    def _refusal_now(self) -> str | None:
        refusal = self._refusal
        if refusal is None:
            return None
        if time.monotonic() >= refusal.until:
            self._refusal = None
            return None
        return refusal.reply


def _loopback(host: str) -> str:
    """``host`` if it is a loopback address: the sink accepts mail for anyone, so it must
    never be reachable from another machine."""
    if host == "localhost":
        return "127.0.0.1"
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        raise ValueError(f"the SMTP sink listens on a loopback address, not {host!r}") from None
    if not address.is_loopback:
        raise ValueError(f"the SMTP sink listens on a loopback address only, not {host}")
    return host


# --- python -m marquee_notifications.sink -----------------------------------------------------


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m marquee_notifications.sink",
        description="Accept every message over SMTP on loopback and store it in dev_outbox "
        "(development only).",
    )
    parser.add_argument("--host", default="127.0.0.1", help="a loopback address")
    parser.add_argument("--port", type=int, default=1025)
    parser.add_argument(
        "--database-url",
        default=os.environ.get("NOTIFICATIONS_DATABASE_URL"),
        help="notifications' database, as NOTIFICATIONS_DATABASE_URL takes it "
        "(default: $NOTIFICATIONS_DATABASE_URL)",
    )
    parser.add_argument("--log-level", default="INFO")
    parser.add_argument(
        "--log-format",
        choices=("json", "text"),
        default="text"
        if os.environ.get("MARQUEE_LOG_JSON", "true").strip().lower() in ("false", "0", "no", "off")
        else "json",
        help="default: json, unless MARQUEE_LOG_JSON is false",
    )
    args = parser.parse_args(argv)
    if not args.database_url:
        parser.error("give --database-url (or set NOTIFICATIONS_DATABASE_URL)")
    try:
        _loopback(args.host)
    except ValueError as exc:
        parser.error(str(exc))
    return args


async def serve(args: argparse.Namespace) -> int:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    database = Database(args.database_url, pool_size=2, application_name="marquee-smtp-sink")
    try:
        try:
            await database.check_reachable()
        except DatabaseUnreachable as exc:
            # Said in one line, then exit: the supervisor restarts the sink with backoff.
            logger.error("the SMTP sink cannot store anything: %s", exc)
            return 1
        sink = SmtpSink(DatabaseStore(database), host=args.host, port=args.port)
        try:
            await sink.start()
        except OSError as exc:
            logger.error("could not listen on %s:%s: %s", args.host, args.port, exc)
            return 1
        logger.info("SMTP sink listening on %s, storing into dev_outbox", sink.url)
        try:
            await stop.wait()
        finally:
            await sink.stop()
        logger.info("SMTP sink stopped (%d accepted, %d refused)", sink.accepted, sink.refused)
    finally:
        await database.dispose()
    return 0


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    configure_logging("smtp-sink", level=args.log_level, json=args.log_format == "json")
    # aiosmtpd logs every connection, command and AUTH mechanism at INFO.
    logging.getLogger("mail.log").setLevel(max(logging.WARNING, logging.getLogger().level))
    raise SystemExit(asyncio.run(serve(args)))


if __name__ == "__main__":
    main()
