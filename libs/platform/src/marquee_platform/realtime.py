"""Real-time messages for browsers: a service publishes, the gateway streams (SSE).

A *channel* is ``user:<user id>`` (only that signed-in user receives it) or
``event:<event id>`` (anyone watching that event). Publishing is one call::

    from marquee_platform.realtime import event_channel, publish

    await publish(app.state.redis, event_channel(event.id), "availability-changed",
                  {"event_id": str(event.id), "available": 112})

What it does, atomically, in one Lua script:

1. takes the next message id from one sequence shared by every channel (``rt:sequence``).
   Ids look like Redis stream ids (``<unix ms>-<n>``) and grow across *all* channels, so a
   single SSE ``Last-Event-ID`` says exactly which messages of every channel a browser has
   seen (per-stream ids would only be ordered within their own channel);
2. ``XADD rt:<channel>`` with that id (``MAXLEN ~ max_length``, and the key expires
   ``retention_seconds`` after the last message), so a browser that reconnects can be
   sent what it missed;
3. ``PUBLISH rt:<channel>`` with ``<id>\\n<type>\\n<json data>`` for the live streams.

Because the three steps happen in one script, subscribers see a channel's messages in id
order, and every published message is also in the stream. Publishing is not transactional
with the database: register it with :func:`marquee_platform.db.after_commit` so it runs
only once the transaction committed (a lost real-time nudge costs a browser a refresh,
never data)::

    after_commit(session, lambda: publish(redis, event_channel(event_id), "seats", data))

The keys are not hash-tagged: on Redis Cluster, point
``publish`` and the gateway at a single (non-cluster) Redis for real-time messages.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from marquee_platform.lua import LuaScript

CHANNEL_PREFIX = "rt:"
"""Redis stream key and pub/sub channel of channel ``c`` are both ``rt:<c>``."""
SEQUENCE_KEY = "rt:sequence"
"""The id sequence shared by every channel. Never delete it while streams exist."""
LATEST_WINS_TYPES = frozenset({"queue-progress"})
"""Message types whose every message carries the whole state (a queue's progress): a
stream that is behind needs only the newest, so the gateway replaces an older one still
pending for the same channel instead of sending both."""
DEFAULT_MAX_LENGTH = 1000
DEFAULT_RETENTION_SECONDS = 24 * 3600

_CHANNEL = re.compile(r"^(user|event):[A-Za-z0-9_.@:-]{1,200}$")
_MESSAGE_TYPE = re.compile(r"^[a-z][a-z0-9._-]{0,63}$")
_MESSAGE_ID = re.compile(r"^(\d{1,20})-(\d{1,20})$")

PUBLISH = LuaScript(
    "realtime-publish",
    keys=("sequence", "stream"),
    args=("max_length", "retention_ms", "message_type", "payload"),
    # The sequence is global on purpose (see above), so the keys span slots.
    cluster_safe=False,
    source="""
local now = redis.call('TIME')
local ms = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
local seq = 0
local last = redis.call('GET', KEYS[1])
if last then
  local dash = string.find(last, '-', 1, true)
  local last_ms = tonumber(string.sub(last, 1, dash - 1))
  if ms <= last_ms then
    ms = last_ms
    seq = tonumber(string.sub(last, dash + 1)) + 1
  end
end
local id = string.format('%d-%d', ms, seq)
redis.call('SET', KEYS[1], id)
redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[1], id, 'type', ARGV[3], 'data', ARGV[4])
redis.call('PEXPIRE', KEYS[2], ARGV[2])
redis.call('PUBLISH', KEYS[2], id .. '\\n' .. ARGV[3] .. '\\n' .. ARGV[4])
return id
""",
)


@dataclass(frozen=True, slots=True)
class RealtimeMessage:
    """One message on a channel; ``data`` is the JSON text the publisher sent."""

    channel: str
    id: str
    type: str
    data: str

    @property
    def order(self) -> tuple[int, int]:
        return parse_message_id(self.id)


def user_channel(user_id: object) -> str:
    return f"user:{user_id}"


def event_channel(event_id: object) -> str:
    return f"event:{event_id}"


def is_valid_channel(channel: str) -> bool:
    return _CHANNEL.match(channel) is not None


def parse_message_id(message_id: str) -> tuple[int, int]:
    """``"1732000000000-3"`` → ``(1732000000000, 3)``; ValueError if it is not an id."""
    match = _MESSAGE_ID.match(message_id)
    if match is None:
        raise ValueError(f"{message_id!r} is not a real-time message id (<ms>-<n>)")
    return int(match.group(1)), int(match.group(2))


async def publish(
    redis: Any,
    channel: str,
    message_type: str,
    data: Any,
    *,
    max_length: int = DEFAULT_MAX_LENGTH,
    retention_seconds: int = DEFAULT_RETENTION_SECONDS,
) -> str:
    """Send ``data`` (anything ``json.dumps`` takes) to ``channel``; returns the message id.

    ``message_type`` becomes the SSE ``event:`` name (lower-case, e.g. ``order-paid``).
    ``redis`` is a ``redis.asyncio.Redis`` client.
    """
    if not is_valid_channel(channel):
        raise ValueError(f"{channel!r} is not a channel: use user_channel() or event_channel()")
    if not _MESSAGE_TYPE.match(message_type):
        raise ValueError(
            f"{message_type!r} is not a message type: lower-case letters, digits, '.', '_', '-'"
        )
    payload = json.dumps(data, separators=(",", ":"), ensure_ascii=False)
    message_id = await PUBLISH.run(
        redis,
        sequence=SEQUENCE_KEY,
        stream=CHANNEL_PREFIX + channel,
        max_length=max_length,
        retention_ms=retention_seconds * 1000,
        message_type=message_type,
        payload=payload,
    )
    return message_id.decode() if isinstance(message_id, bytes) else str(message_id)


def parse_published(channel: str, raw: bytes | str) -> RealtimeMessage:
    """The pub/sub payload ``publish`` sent on ``rt:<channel>``, as a message."""
    text = raw.decode() if isinstance(raw, bytes) else raw
    message_id, message_type, data = text.split("\n", 2)
    return RealtimeMessage(channel=channel, id=message_id, type=message_type, data=data)


async def read_after(
    redis: Any, channels: Sequence[str], after_id: str, *, limit_per_channel: int
) -> list[RealtimeMessage]:
    """Messages of ``channels`` with ids after ``after_id``, oldest first.

    The channels are read in one MULTI/EXEC, so the result is a consistent cut: with the
    global id order, nothing older than the newest message returned can appear later.
    """
    parse_message_id(after_id)  # refuse anything that is not an id before asking Redis
    async with redis.pipeline(transaction=True) as pipeline:
        for channel in channels:
            pipeline.xrange(CHANNEL_PREFIX + channel, min=f"({after_id}", count=limit_per_channel)
        results = await pipeline.execute()
    messages: list[RealtimeMessage] = []
    for channel, entries in zip(channels, results, strict=True):
        for entry_id, fields in entries:
            message_id = entry_id.decode() if isinstance(entry_id, bytes) else str(entry_id)
            messages.append(
                RealtimeMessage(
                    channel=channel,
                    id=message_id,
                    type=_text(fields.get(b"type", fields.get("type", b""))),
                    data=_text(fields.get(b"data", fields.get("data", b"null"))),
                )
            )
    messages.sort(key=lambda message: message.order)
    return messages


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
