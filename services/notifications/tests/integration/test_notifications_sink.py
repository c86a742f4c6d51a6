"""The development SMTP sink over real SMTP on loopback (aiosmtplib as the client), and the
dev outbox that shows what it stored in a real notifications database, through the app as
``marquee dev`` runs it (``NOTIFICATIONS_DEV_OUTBOX=true``)."""

from __future__ import annotations

import asyncio
import contextlib
import email
import email.utils
import os
import signal
import socket
import sys
import time
from email.message import EmailMessage
from email.policy import default as default_policy
from typing import Any

import aiosmtplib
import httpx
import pytest
from sqlalchemy import select

from marquee_notifications.models import DevOutboxMessage
from marquee_notifications.sink import DatabaseStore, MemoryStore, ReceivedMail, SmtpSink
from marquee_platform.db import Database

SENDER = "no-reply@marquee.test"
VERIFY_LINK = "https://marquee.test/verify?token=abc123&next=%2Fevents"
PDF = b"%PDF-1.4\n" + bytes(range(256)) * 8 + b"\n%%EOF\n"


def simple_message(
    to: str, *, subject: str = "Your order", message_id: str | None = None
) -> EmailMessage:
    message = EmailMessage()
    message["From"] = f"Marquee <{SENDER}>"
    message["To"] = to
    message["Subject"] = subject
    message["Message-ID"] = message_id or email.utils.make_msgid(domain="notifications.marquee")
    message.set_content("Hello.\n")
    return message


def verification_message(to: str, *, subject: str) -> EmailMessage:
    """As notifications writes one: text and HTML alternatives, an attachment, one-click
    unsubscribe headers."""
    message = simple_message(to, subject=subject)
    message.set_content(f"Welcome!\n\nConfirm your address: {VERIFY_LINK}.\n")
    message.add_alternative(
        "<!DOCTYPE html><html><body><p>Welcome!</p>"
        f'<p><a href="{VERIFY_LINK.replace("&", "&amp;")}">Confirm your address</a></p>'
        '<script>parent.document.title = "owned"</script></body></html>',
        subtype="html",
    )
    message.add_attachment(PDF, maintype="application", subtype="pdf", filename="tickets.pdf")
    message["List-Unsubscribe"] = "<https://marquee.test/unsubscribe/t0k3n>"
    message["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    return message


async def send(sink: SmtpSink, message: EmailMessage, *recipients: str) -> str:
    """The server's last answer (to the DATA)."""
    _, answer = await aiosmtplib.send(
        message,
        hostname="127.0.0.1",
        port=sink.port,
        sender=SENDER,
        recipients=list(recipients) or None,
        timeout=10,
    )
    return answer


async def send_or_code(sink: SmtpSink, message: EmailMessage) -> str | int:
    """The server's answer to the DATA, or the code it refused the message with."""
    try:
        return await send(sink, message)
    except aiosmtplib.SMTPResponseException as refused:
        return refused.code


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    return {"dev_outbox": True}  # as marquee dev runs the service


async def test_a_message_arrives_with_its_message_id_subject_and_envelope(
    sink: SmtpSink, mailbox: MemoryStore
) -> None:
    message = simple_message("Ada <ada@example.com>", subject="Tickets for Café Zoë — Friday")
    answer = await send(sink, message, "Ada@Example.com", "grace@example.com")

    assert answer == "OK: queued as 1"
    [mail] = await mailbox.wait_for(1)
    assert isinstance(mail, ReceivedMail)
    assert mail.mail_from == SENDER
    assert mail.rcpt_to == ("Ada@Example.com", "grace@example.com")
    assert mail.message_id == message["Message-ID"]
    assert mail.subject == "Tickets for Café Zoë — Friday", "decoded from its encoded words"
    parsed = email.message_from_bytes(mail.raw, policy=default_policy)
    assert parsed.get_content().strip() == "Hello."
    assert mailbox.to("ada@example.com") == [mail]
    assert mailbox.to("nobody@example.com") == []
    assert mailbox.count_by_recipient() == {"ada@example.com": 1, "grace@example.com": 1}
    assert (sink.accepted, sink.refused) == (1, 0)


async def test_a_refusal_answers_451_until_its_window_has_passed(
    sink: SmtpSink, mailbox: MemoryStore
) -> None:
    window = 0.5
    sink.refuse(seconds=window)
    refused_at = time.monotonic()
    message = simple_message("ada@example.com")

    with pytest.raises(aiosmtplib.SMTPResponseException) as refused:
        await send(sink, message)
    assert refused.value.code == 451
    assert "Try again later" in refused.value.message
    assert mailbox.messages == []

    # As a sender retrying would: again and again until the server takes it.
    deadline = refused_at + window + 5
    answer = await send_or_code(sink, message)
    while answer == 451 and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
        answer = await send_or_code(sink, message)
    assert time.monotonic() - refused_at >= window
    assert isinstance(answer, str), f"still refused ({answer}) long after the window"
    assert answer.startswith("OK: queued as")
    assert [mail.message_id for mail in mailbox.messages] == [message["Message-ID"]]
    assert sink.refused >= 1
    assert sink.accepted == 1


async def test_a_refusal_that_begins_during_a_transaction_refuses_its_data(
    sink: SmtpSink, mailbox: MemoryStore
) -> None:
    client = aiosmtplib.SMTP(hostname="127.0.0.1", port=sink.port, timeout=10)
    async with client:
        await client.mail(SENDER)
        await client.rcpt("ada@example.com")
        sink.refuse(seconds=30, code=452, reason="4.3.1 Insufficient system storage")
        with pytest.raises(aiosmtplib.SMTPDataError) as refused:
            await client.data(simple_message("ada@example.com").as_bytes())
        assert refused.value.code == 452
    sink.refuse(seconds=0)
    await send(sink, simple_message("ada@example.com"))
    assert len(mailbox.messages) == 1


async def test_a_store_that_fails_answers_a_temporary_failure_and_counts_nothing() -> None:
    class BrokenStore:
        async def add(self, mail: ReceivedMail) -> None:
            raise ConnectionRefusedError("the database is down")

    async with SmtpSink(BrokenStore()) as sink:
        with pytest.raises(aiosmtplib.SMTPDataError) as refused:
            await send(sink, simple_message("ada@example.com"))
    assert refused.value.code == 451
    assert sink.accepted == 0


async def test_the_sink_listens_on_loopback_only_and_offers_no_auth(
    sink: SmtpSink,
) -> None:
    assert sink.url == f"smtp://127.0.0.1:{sink.port}"
    for host in ("0.0.0.0", "::", "192.0.2.10", "mail.example.com"):
        with pytest.raises(ValueError, match="loopback"):
            SmtpSink(MemoryStore(), host=host)

    outward = _outward_address()
    if outward is not None:  # this machine's address on its network, if it has one
        with pytest.raises((ConnectionRefusedError, TimeoutError)):
            socket.create_connection((outward, sink.port), timeout=2).close()

    client = aiosmtplib.SMTP(hostname="127.0.0.1", port=sink.port, timeout=10)
    async with client:
        await client.ehlo()
        assert not client.supports_extension("auth")
        assert client.supports_extension("size")


def _outward_address() -> str | None:
    """The local address a packet to the internet would leave from (a UDP "connect" sends
    nothing); None when there is no such route or it is loopback."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("192.0.2.1", 9))
        except OSError:
            return None
        address: str = probe.getsockname()[0]
    return None if address.startswith("127.") or address == "0.0.0.0" else address


async def test_stopping_hangs_up_on_connected_clients(
    sink: SmtpSink,
) -> None:
    client = aiosmtplib.SMTP(hostname="127.0.0.1", port=sink.port, timeout=10)
    await client.connect()
    try:
        await client.ehlo()
        async with asyncio.timeout(5):
            await sink.stop()
        with pytest.raises(aiosmtplib.SMTPException):
            await client.noop()
    finally:
        with contextlib.suppress(aiosmtplib.SMTPException):
            await client.quit()
        client.close()


async def test_the_dev_outbox_shows_what_the_sink_stored(
    database: Database, client: httpx.AsyncClient
) -> None:
    async with SmtpSink(DatabaseStore(database)) as sink:
        welcome = verification_message("New.Person@Example.com", subject="<b>x</b> Welcome")
        await send(sink, welcome)
        await send(sink, simple_message("someone.else@example.com", subject="Reminder"))

    answer = await client.get("/api/v1/notifications/dev/outbox")
    assert answer.status_code == 200, answer.text
    items = answer.json()["items"]
    assert [item["subject"] for item in items] == ["Reminder", "<b>x</b> Welcome"], "newest first"
    item = items[1]
    assert item["from"] == SENDER
    assert item["to"] == ["New.Person@Example.com"]
    assert item["message_id"] == welcome["Message-ID"]
    assert VERIFY_LINK in item["links"]
    assert "https://marquee.test/unsubscribe/t0k3n" not in item["links"], "headers are not bodies"
    assert "Confirm your address" in item["text"]
    assert "<a href=" in item["html"]
    assert item["attachments"] == [
        {"filename": "tickets.pdf", "content_type": "application/pdf", "size": len(PDF)}
    ]
    assert item["list_unsubscribe"] == "<https://marquee.test/unsubscribe/t0k3n>"
    assert item["list_unsubscribe_post"] == "List-Unsubscribe=One-Click"

    mine = await client.get(
        "/api/v1/notifications/dev/outbox", params={"to": "new.person@example.COM"}
    )
    assert [found["id"] for found in mine.json()["items"]] == [item["id"]]
    one = await client.get("/api/v1/notifications/dev/outbox", params={"limit": 1})
    assert [found["subject"] for found in one.json()["items"]] == ["Reminder"]
    for bad in ("0", "501", "many"):
        invalid = await client.get("/api/v1/notifications/dev/outbox", params={"limit": bad})
        assert invalid.status_code == 422
        assert invalid.headers["content-type"] == "application/problem+json"

    raw = await client.get(f"/api/v1/notifications/dev/outbox/{item['id']}/raw")
    assert raw.status_code == 200
    assert raw.headers["content-type"] == "message/rfc822"
    async with database.reading() as session:
        stored = await session.scalar(
            select(DevOutboxMessage.raw).where(DevOutboxMessage.id == item["id"])
        )
    assert raw.content == stored
    assert email.message_from_bytes(raw.content, policy=default_policy)["Subject"] == (
        "<b>x</b> Welcome"
    )
    missing = await client.get("/api/v1/notifications/dev/outbox/999999/raw")
    assert missing.status_code == 404
    assert missing.headers["content-type"] == "application/problem+json"
    assert missing.json()["status"] == 404

    page = await client.get(
        "/api/v1/notifications/dev/mail", params={"to": "new.person@example.com"}
    )
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    body = page.text
    assert f'<a href="{VERIFY_LINK.replace("&", "&amp;")}"' in body, "the link is clickable"
    assert "&lt;b&gt;x&lt;/b&gt; Welcome" in body
    assert "<b>x</b>" not in body, "a subject is text, never markup"
    assert "<script>" not in body, "the HTML body stays inside the frame's srcdoc, escaped"
    assert "&lt;script&gt;" in body
    assert '<iframe sandbox="allow-popups allow-popups-to-escape-sandbox"' in body
    assert "allow-scripts" not in body
    assert "Reminder" not in body, "filtered to one recipient"
    assert "tickets.pdf" in body


async def test_python_m_sink_stores_into_dev_outbox_and_stops_on_sigterm(
    database: Database,
) -> None:
    url = database.write_engine.url.render_as_string(hide_password=False)
    with socket.socket() as probe:  # a free port, released for the sink to take
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    process = await asyncio.create_subprocess_exec(
        *(sys.executable, "-m", "marquee_notifications.sink"),
        *("--host", "127.0.0.1", "--port", str(port), "--database-url", url),
        *("--log-format", "text"),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    assert process.stdout is not None
    try:
        listening = f"listening on smtp://127.0.0.1:{port}"
        output = ""
        async with asyncio.timeout(30):
            while listening not in output:
                line = await process.stdout.readline()
                assert line, f"the sink exited before listening: {output}"
                output += line.decode()

        message = simple_message("dev@example.com", subject="From make dev")
        await aiosmtplib.send(message, hostname="127.0.0.1", port=port, timeout=10)
        async with database.reading() as session:
            subjects = list(await session.scalars(select(DevOutboxMessage.subject)))
        assert subjects == ["From make dev"], "stored before the 250"

        process.send_signal(signal.SIGTERM)
        async with asyncio.timeout(15):
            rest = (await process.stdout.read()).decode()
            code = await process.wait()
        assert code == 0, rest
        assert "stopped (1 accepted, 0 refused)" in rest
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
