"""What the development SMTP sink received, for a developer to read (``make dev`` only).

Under ``/api/v1/notifications/dev``: the messages as JSON (``/outbox``), one message as
sent (``/outbox/{id}/raw``) and a page to read them in a browser (``/mail``), which is
where a new account in development finds its verification link. The app includes this
router only when ``NOTIFICATIONS_DEV_OUTBOX`` is true; without it these paths are a 404.
Anyone may call them: they exist only in development, where every message is the
developer's own test mail.
"""

from __future__ import annotations

import email
import re
from dataclasses import dataclass, field
from datetime import datetime
from email.message import EmailMessage, Message
from email.policy import default as default_policy
from html import escape
from html.parser import HTMLParser
from typing import Annotated

from fastapi import Query, Response
from fastapi.responses import HTMLResponse
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import Select, func, select

from marquee_notifications.models import DevOutboxMessage
from marquee_platform.errors import NotFound
from marquee_platform.http import ReadSessionDep
from marquee_platform.http import router as transactional_router

router = transactional_router(prefix="/api/v1/notifications/dev", tags=["development"])

Recipient = Annotated[
    str | None,
    Query(
        min_length=1,
        max_length=320,
        description="Only messages to this address (an envelope recipient; any case)",
    ),
]
Limit = Annotated[int, Query(ge=1, le=500, description="At most this many, newest first")]


# ---- reading a message ----------------------------------------------------------------------

_URL = re.compile(r"https?://[^\s<>\"'`\x00-\x1f\x7f]+", re.IGNORECASE)
_TRAILING = ".,;:!?)]}'\""
"""Punctuation that ends a sentence around a URL in prose rather than the URL itself."""


def _urls_in_text(text: str) -> list[str]:
    return [match.group(0).rstrip(_TRAILING) for match in _URL.finditer(text)]


class _LinkCollector(HTMLParser):
    """Every http(s) URL of an HTML body: in ``href`` and ``src``, and in its text."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.urls: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for name, value in attrs:
            if name in ("href", "src") and value and _URL.fullmatch(value.strip()):
                self.urls.append(value.strip())

    def handle_data(self, data: str) -> None:
        self.urls.extend(_urls_in_text(data))


def _urls_in_html(html: str) -> list[str]:
    collector = _LinkCollector()
    collector.feed(html)
    collector.close()
    return collector.urls


@dataclass(frozen=True, slots=True)
class Attachment:
    filename: str | None
    content_type: str
    size: int
    """Bytes once decoded (not the base64 on the wire)."""


@dataclass(frozen=True, slots=True)
class ReadableMail:
    """A raw message as a person reads it: its bodies, links and attachments."""

    text: str | None
    html: str | None
    links: list[str] = field(default_factory=list)
    attachments: list[Attachment] = field(default_factory=list)
    list_unsubscribe: str | None = None
    list_unsubscribe_post: str | None = None

    @classmethod
    def parse(cls, raw: bytes) -> ReadableMail:
        message = email.message_from_bytes(raw, policy=default_policy)
        assert isinstance(message, EmailMessage)  # what policy.default makes
        text_part = message.get_body(preferencelist=("plain",))
        html_part = message.get_body(preferencelist=("html",))
        text = _content(text_part) if text_part is not None else None
        html = _content(html_part) if html_part is not None else None
        links = [*_urls_in_text(text or ""), *_urls_in_html(html or "")]
        attachments = [
            Attachment(
                filename=part.get_filename(),
                content_type=part.get_content_type(),
                size=len(part.get_payload(decode=True) or b""),
            )
            for part in message.walk()
            if not part.is_multipart() and part is not text_part and part is not html_part
        ]
        return cls(
            text=text,
            html=html,
            links=list(dict.fromkeys(links)),
            attachments=attachments,
            list_unsubscribe=_header(message, "List-Unsubscribe"),
            list_unsubscribe_post=_header(message, "List-Unsubscribe-Post"),
        )


def _content(part: Message) -> str:
    try:
        content = part.get_content()  # type: ignore[attr-defined]
    except (LookupError, ValueError):  # an unknown charset, a broken encoding
        payload = part.get_payload(decode=True)
        content = payload.decode("utf-8", "replace") if isinstance(payload, bytes) else ""
    return content if isinstance(content, str) else content.decode("utf-8", "replace")


def _header(message: Message, name: str) -> str | None:
    try:
        value = message[name]
    except Exception:  # a header too malformed for the policy to read
        return None
    return None if value is None else str(value)


# ---- responses ------------------------------------------------------------------------------


class AttachmentRead(BaseModel):
    filename: str | None
    content_type: str
    size: int = Field(description="Bytes, decoded")


class OutboxMessageRead(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    id: int
    received_at: datetime
    mail_from: str = Field(alias="from", description="The envelope sender (MAIL FROM)")
    to: list[str] = Field(description="The envelope recipients (RCPT TO), Bcc included")
    message_id: str | None
    subject: str | None
    text: str | None
    html: str | None
    links: list[str] = Field(description="Every http(s) URL in the text and HTML bodies")
    attachments: list[AttachmentRead]
    list_unsubscribe: str | None
    list_unsubscribe_post: str | None

    @classmethod
    def of(cls, row: DevOutboxMessage, mail: ReadableMail) -> OutboxMessageRead:
        return cls(
            id=row.id,
            received_at=row.received_at,
            mail_from=row.mail_from,
            to=list(row.rcpt_to),
            message_id=row.message_id,
            subject=row.subject,
            text=mail.text,
            html=mail.html,
            links=mail.links,
            attachments=[
                AttachmentRead(
                    filename=attachment.filename,
                    content_type=attachment.content_type,
                    size=attachment.size,
                )
                for attachment in mail.attachments
            ],
            list_unsubscribe=mail.list_unsubscribe,
            list_unsubscribe_post=mail.list_unsubscribe_post,
        )


class OutboxPage(BaseModel):
    items: list[OutboxMessageRead]


# ---- queries --------------------------------------------------------------------------------


def _newest(to: str | None, limit: int) -> Select[DevOutboxMessage]:
    statement = select(DevOutboxMessage).order_by(DevOutboxMessage.id.desc()).limit(limit)
    if to is not None:
        recipients = (
            func.jsonb_array_elements_text(DevOutboxMessage.rcpt_to)
            .table_valued("value")
            .alias("recipient")
        )
        statement = statement.where(
            select(recipients.c.value)
            .where(func.lower(recipients.c.value) == to.strip().lower())
            .exists()
        )
    return statement


async def _messages(
    session: ReadSessionDep, to: str | None, limit: int
) -> list[tuple[DevOutboxMessage, ReadableMail]]:
    rows = (await session.scalars(_newest(to, limit))).all()
    return [(row, ReadableMail.parse(row.raw)) for row in rows]


# ---- routes ---------------------------------------------------------------------------------


@router.get(
    "/outbox",
    summary="What the development SMTP sink received, newest first (anyone; development only)",
    response_model=OutboxPage,
)
async def list_outbox(
    session: ReadSessionDep, to: Recipient = None, limit: Limit = 50
) -> OutboxPage:
    """Each message with its bodies, every link in them, its attachments and its
    List-Unsubscribe headers: a test reads a verification link from here.

    **Who may call:** anyone: this exists only in development (``NOTIFICATIONS_DEV_OUTBOX``).
    """
    messages = await _messages(session, to, limit)
    return OutboxPage(items=[OutboxMessageRead.of(row, mail) for row, mail in messages])


@router.get(
    "/outbox/{outbox_id}/raw",
    summary="One message exactly as the sink received it (anyone; development only)",
    response_class=Response,
    responses={
        200: {"content": {"message/rfc822": {}}},
        404: {"description": "The sink received no message with this id"},
    },
)
async def raw_message(outbox_id: int, session: ReadSessionDep) -> Response:
    """The bytes of the DATA, as ``message/rfc822`` (a mail client opens the file).

    **Who may call:** anyone: this exists only in development (``NOTIFICATIONS_DEV_OUTBOX``).
    """
    row = await session.get(DevOutboxMessage, outbox_id)
    if row is None:
        raise NotFound(
            f"The development outbox has no message {outbox_id}; "
            "GET /api/v1/notifications/dev/outbox lists those it has.",
            code="no-such-dev-message",
        )
    return Response(
        row.raw,
        media_type="message/rfc822",
        headers={
            "Content-Disposition": f'inline; filename="message-{row.id}.eml"',
            "X-Content-Type-Options": "nosniff",
        },
    )


@router.get(
    "/mail",
    summary="A page to read what the development SMTP sink received (anyone; development only)",
    response_class=HTMLResponse,
)
async def mail_page(
    session: ReadSessionDep, to: Recipient = None, limit: Limit = 50
) -> HTMLResponse:
    """Newest first: when, to whom, the subject, the text body with its links to click and
    the HTML body in a sandboxed frame (no scripts run).

    **Who may call:** anyone: this exists only in development (``NOTIFICATIONS_DEV_OUTBOX``).
    """
    messages = await _messages(session, to, limit)
    return HTMLResponse(
        _render_page(messages, to=to, limit=limit),
        headers={
            # Defence in depth: the page itself has no script, and a message's HTML is
            # shown only inside a sandboxed frame without allow-scripts.
            "Content-Security-Policy": "script-src 'none'; object-src 'none'; base-uri 'none'",
            # A verification link carries a token: opening it must not send this page's
            # URL along, nor the token onward.
            "Referrer-Policy": "no-referrer",
            "Cache-Control": "no-store",
        },
    )


# ---- the page -------------------------------------------------------------------------------

_STYLE = """
body { font: 14px/1.45 system-ui, sans-serif; margin: 0 auto; max-width: 60rem;
       padding: 1rem; color: #1d1d1f; background: #f6f6f8; }
h1 { font-size: 1.3rem; }
form { margin: 0 0 1rem; }
input[name=to] { width: 20rem; padding: .25rem; }
article { background: #fff; border: 1px solid #ddd; border-radius: 6px;
          padding: .75rem 1rem; margin: 0 0 1rem; }
article h2 { font-size: 1.05rem; margin: .2rem 0 .4rem; }
dl { display: grid; grid-template-columns: max-content 1fr; gap: .1rem .75rem; margin: 0; }
dt { color: #666; }
dd { margin: 0; overflow-wrap: anywhere; }
pre { white-space: pre-wrap; overflow-wrap: anywhere; background: #fafafa;
      border: 1px solid #eee; padding: .5rem; }
iframe { width: 100%; height: 28rem; border: 1px solid #eee; background: #fff; }
.empty { color: #666; }
"""


def _linkify(text: str) -> str:
    """``text`` escaped, each http(s) URL in it a link."""
    pieces: list[str] = []
    position = 0
    for match in _URL.finditer(text):
        url = match.group(0).rstrip(_TRAILING)
        end = match.start() + len(url)
        pieces.append(escape(text[position : match.start()]))
        pieces.append(_link(url))
        position = end
    pieces.append(escape(text[position:]))
    return "".join(pieces)


def _link(url: str) -> str:
    return f'<a href="{escape(url)}" target="_blank" rel="noreferrer noopener">{escape(url)}</a>'


def _render_message(row: DevOutboxMessage, mail: ReadableMail) -> str:
    subject = escape(row.subject) if row.subject else "<em>(no subject)</em>"
    details = [
        ("received", escape(row.received_at.strftime("%Y-%m-%d %H:%M:%S %Z"))),
        ("from", escape(row.mail_from)),
        ("to", escape(", ".join(row.rcpt_to))),
    ]
    if row.message_id:
        details.append(("message-id", escape(row.message_id)))
    if mail.links:
        details.append(("links", "<br>".join(_link(url) for url in mail.links)))
    if mail.attachments:
        details.append(
            (
                "attachments",
                "<br>".join(
                    escape(
                        f"{attachment.filename or '(unnamed)'} "
                        f"({attachment.content_type}, {attachment.size} bytes)"
                    )
                    for attachment in mail.attachments
                ),
            )
        )
    if mail.list_unsubscribe:
        details.append(("list-unsubscribe", escape(mail.list_unsubscribe)))
    details.append(("raw", f'<a href="outbox/{row.id}/raw">message-{row.id}.eml</a>'))
    parts = [
        f'<article id="message-{row.id}">',
        f"<h2>{subject}</h2>",
        "<dl>" + "".join(f"<dt>{name}</dt><dd>{value}</dd>" for name, value in details) + "</dl>",
    ]
    if mail.text is not None:
        parts.append(f"<pre>{_linkify(mail.text)}</pre>")
    if mail.html is not None:
        # srcdoc is an attribute: escape() with quote=True keeps the document inside it.
        # No allow-scripts and no allow-same-origin: the message runs nothing and reaches
        # nothing of this page; links with target=_blank may open a tab of their own.
        parts.append(
            "<details open><summary>HTML</summary>"
            f'<iframe sandbox="allow-popups allow-popups-to-escape-sandbox" '
            f'referrerpolicy="no-referrer" title="HTML body of message {row.id}" '
            f'srcdoc="{escape(mail.html, quote=True)}"></iframe></details>'
        )
    parts.append("</article>")
    return "\n".join(parts)


def _render_page(
    messages: list[tuple[DevOutboxMessage, ReadableMail]], *, to: str | None, limit: int
) -> str:
    listing = "\n".join(_render_message(row, mail) for row, mail in messages)
    if not messages:
        listing = '<p class="empty">No mail yet' + (f" to {escape(to)}" if to else "") + ".</p>"
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="referrer" content="no-referrer">
<title>Marquee dev mail</title>
<style>{_STYLE}</style>
</head>
<body>
<h1>Mail sent in development</h1>
<form method="get">
<label>To <input name="to" type="email" value="{escape(to or "")}"
  placeholder="someone@example.com"></label>
<input type="hidden" name="limit" value="{limit}">
<button type="submit">Filter</button> <a href="mail">all</a>
</form>
{listing}
</body>
</html>
"""
