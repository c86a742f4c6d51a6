"""The queue in Redis: one Lua script per operation, every key of an event in one slot.

Keys of event E share the hash tag ``{wr:E}`` (``T`` below), so each script touches one
Redis Cluster slot and runs atomically:

=================  ====================================================================
``T:cfg``          hash: ``opens``, ``starts`` (ms), ``window`` (ms an admitted fan has to
                   hold), ``grace`` (ms a fan may be away and keep their place),
                   ``max_active`` (0 = no fixed limit), ``adaptive`` (0/1), ``state``
                   (``pre`` → ``closed`` → ``open`` ⇄ ``sold-out``), ``pre_count``,
                   ``waitlist`` (places the sold-out waitlist waits for)
``T:acct``         hash: account → queue ticket (one place per account)
``T:tix``          hash: ticket → ``<account>|<joined ms>``
``T:seen``         hash: ticket → when its fan was last seen (ms)
``T:pre``          list: the pre-queue's tickets in arrival order (frozen at the start)
``T:num``          hash: ticket → its number in the final order (1 = first)
``T:line``         sorted set: waiting tickets by number — the queue proper
``T:seq``          counter: arrivals after the start, numbered after the pre-queue
``T:adm``          hash: ticket → ``<admitted ms>|<expires ms>|<number>``, kept for good:
                   a ticket in it is never admitted again
``T:active``       sorted set: admitted tickets occupying a shopper's slot, by the end of
                   that slot (admission window, extended while their hold lives)
``T:pending``      sorted set: admitted tickets that have not held yet, by window end
``T:gone``         hash: ticket → ``<reason>|<ms>`` (``away``: absent past the grace
                   period when their turn came)
``T:admits``       sorted set: ticket by admission time, the last five minutes: the rate
``T:log``          stream: admission-granted entries, forwarded to Kafka at least once
=================  ====================================================================

A fan's state is exactly one of: in ``T:pre`` without a number (waiting for the
shuffle), in ``T:line`` (waiting, numbered), in ``T:adm`` (admitted), in ``T:gone``.
Admission pops the head of ``T:line`` and writes ``T:adm`` in the same script, so a crash
of the waitroom at any moment leaves every fan either still waiting or admitted once.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from marquee_platform.lua import LuaScript, decode, hash_tag, tagged_key

_KEY_NAMES = (
    "cfg",
    "acct",
    "tix",
    "seen",
    "pre",
    "num",
    "line",
    "seq",
    "adm",
    "active",
    "pending",
    "gone",
    "admits",
    "log",
)


@dataclass(frozen=True, slots=True)
class QueueKeys:
    tag: str

    @classmethod
    def of(cls, event_id: uuid.UUID | str) -> QueueKeys:
        return cls(hash_tag("wr", event_id))

    def named(self, *names: str) -> dict[str, str]:
        return {name: tagged_key(self.tag, name) for name in names}

    def all(self) -> list[str]:
        return list(self.named(*_KEY_NAMES).values())


_CLOSE_PRE_QUEUE = """
local function close_pre_queue(cfg, pre)
  local state = redis.call('HGET', cfg, 'state')
  if state == 'pre' then
    local count = redis.call('LLEN', pre)
    redis.call('HSET', cfg, 'state', 'closed', 'pre_count', count)
    return count
  end
  return tonumber(redis.call('HGET', cfg, 'pre_count') or '0')
end
"""

CONFIGURE = LuaScript(
    "waitroom-configure",
    keys=("cfg",),
    args=("opens", "starts", "window", "grace", "max_active", "adaptive"),
    source="""
redis.call('HSET', KEYS[1], 'opens', ARGV[1], 'starts', ARGV[2], 'window', ARGV[3],
  'grace', ARGV[4], 'max_active', ARGV[5], 'adaptive', ARGV[6])
if not redis.call('HGET', KEYS[1], 'state') then
  redis.call('HSET', KEYS[1], 'state', 'pre', 'pre_count', 0)
end
return redis.call('HGET', KEYS[1], 'state')
""",
)

JOIN = LuaScript(
    "waitroom-join",
    keys=("cfg", "acct", "tix", "seen", "pre", "num", "line", "seq"),
    args=("account", "ticket", "now"),
    source=_CLOSE_PRE_QUEUE
    + """
local cfg = redis.call('HMGET', KEYS[1], 'state', 'opens', 'starts')
if not cfg[1] then return {'unknown'} end
local existing = redis.call('HGET', KEYS[2], ARGV[1])
if existing then
  redis.call('HSET', KEYS[4], existing, ARGV[3])
  return {'existing', existing}
end
local now = tonumber(ARGV[3])
if now < tonumber(cfg[2]) then return {'not-open', cfg[2]} end
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
redis.call('HSET', KEYS[3], ARGV[2], ARGV[1] .. '|' .. ARGV[3])
redis.call('HSET', KEYS[4], ARGV[2], ARGV[3])
if now < tonumber(cfg[3]) then
  redis.call('RPUSH', KEYS[5], ARGV[2])
  return {'joined', ARGV[2]}
end
local number = close_pre_queue(KEYS[1], KEYS[5]) + redis.call('INCR', KEYS[8])
redis.call('HSET', KEYS[6], ARGV[2], number)
redis.call('ZADD', KEYS[7], number, ARGV[2])
return {'joined', ARGV[2]}
""",
)

CLOSE = LuaScript(
    "waitroom-close-pre-queue",
    keys=("cfg", "pre"),
    args=("now",),
    source=_CLOSE_PRE_QUEUE
    + """
local starts = redis.call('HGET', KEYS[1], 'starts')
if not starts then return {'unknown', 0} end
if tonumber(ARGV[1]) < tonumber(starts) then return {'pre', 0} end
local count = close_pre_queue(KEYS[1], KEYS[2])
return {redis.call('HGET', KEYS[1], 'state'), count}
""",
)

# Numbers the shuffled pre-queue (only while closed: admission has not started, so
# placing again after a crash writes the same numbers) and opens admission when told to.
PLACE = LuaScript(
    "waitroom-place",
    keys=("cfg", "num", "line"),
    args=("placed", "open"),
    source="""
if redis.call('HGET', KEYS[1], 'state') ~= 'closed' then return 0 end
local placed = cjson.decode(ARGV[1])
for i = 1, #placed, 2 do
  redis.call('HSET', KEYS[2], placed[i], placed[i + 1])
  redis.call('ZADD', KEYS[3], placed[i + 1], placed[i])
end
if ARGV[2] == '1' then redis.call('HSET', KEYS[1], 'state', 'open') end
return #placed / 2
""",
)

ADMIT = LuaScript(
    "waitroom-admit",
    keys=("cfg", "line", "seen", "tix", "adm", "active", "pending", "gone", "admits", "log"),
    args=("now", "budget", "scan_limit", "event"),
    source="""
local cfg = redis.call('HMGET', KEYS[1], 'state', 'window', 'grace')
if cfg[1] ~= 'open' then return {0} end
local now = tonumber(ARGV[1])
local budget = tonumber(ARGV[2])
local limit = tonumber(ARGV[3])
local window = tonumber(cfg[2])
local grace = tonumber(cfg[3])
local out = {0}
local admitted, scanned = 0, 0
while admitted < budget and scanned < limit do
  local head = redis.call('ZPOPMIN', KEYS[2])
  if #head == 0 then break end
  scanned = scanned + 1
  local ticket, number = head[1], head[2]
  local seen = tonumber(redis.call('HGET', KEYS[3], ticket) or '0')
  if redis.call('HEXISTS', KEYS[5], ticket) == 1 then
    -- already admitted: never twice (cannot happen unless a key was edited by hand)
  elseif now - seen > grace then
    redis.call('HSET', KEYS[8], ticket, 'away|' .. now)
    out[1] = out[1] + 1
  else
    local expires = now + window
    redis.call('HSET', KEYS[5], ticket, now .. '|' .. expires .. '|' .. number)
    redis.call('ZADD', KEYS[6], expires, ticket)
    redis.call('ZADD', KEYS[7], expires, ticket)
    redis.call('ZADD', KEYS[9], now, ticket)
    local who = redis.call('HGET', KEYS[4], ticket)
    local account = string.sub(who, 1, string.find(who, '|', 1, true) - 1)
    redis.call('XADD', KEYS[10], '*', 'type', 'admission-granted', 'event', ARGV[4],
      'ticket', ticket, 'account', account, 'number', number,
      'admitted', now, 'expires', expires)
    table.insert(out, ticket)
    table.insert(out, account)
    table.insert(out, number)
    table.insert(out, now)
    table.insert(out, expires)
    admitted = admitted + 1
  end
end
return out
""",
)

SWEEP = LuaScript(
    "waitroom-sweep",
    keys=("active", "pending", "admits"),
    args=("now", "rate_window"),
    source="""
local freed = redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', tonumber(ARGV[1]) - tonumber(ARGV[2]))
return freed
""",
)

# A hold by an admitted fan: no longer pending; the slot lasts while the hold does.
HOLD_SEEN = LuaScript(
    "waitroom-hold-seen",
    keys=("acct", "adm", "active", "pending"),
    args=("account", "until"),
    source="""
local ticket = redis.call('HGET', KEYS[1], ARGV[1])
if not ticket or redis.call('HEXISTS', KEYS[2], ticket) == 0 then return 0 end
redis.call('ZREM', KEYS[4], ticket)
local current = tonumber(redis.call('ZSCORE', KEYS[3], ticket) or '0')
if tonumber(ARGV[2]) > current then redis.call('ZADD', KEYS[3], ARGV[2], ticket) end
return 1
""",
)

# A hold ended (released, expired) or became a sale ('done'): the slot lasts no longer
# than the admission window, or ends now.
HOLD_ENDED = LuaScript(
    "waitroom-hold-ended",
    keys=("acct", "adm", "active", "pending"),
    args=("account", "now", "done"),
    source="""
local ticket = redis.call('HGET', KEYS[1], ARGV[1])
if not ticket then return 0 end
local admission = redis.call('HGET', KEYS[2], ticket)
if not admission then return 0 end
local expires = tonumber(string.match(admission, '^%d+|(%d+)|'))
if ARGV[3] == '1' or expires <= tonumber(ARGV[2]) then
  redis.call('ZREM', KEYS[3], ticket)
  redis.call('ZREM', KEYS[4], ticket)
else
  redis.call('ZADD', KEYS[3], expires, ticket)
end
return 1
""",
)

SET_STATE = LuaScript(
    "waitroom-set-state",
    keys=("cfg",),
    args=("from", "to"),
    source="""
if redis.call('HGET', KEYS[1], 'state') ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[1], 'state', ARGV[2])
return 1
""",
)

ME = LuaScript(
    "waitroom-me",
    keys=("cfg", "acct", "seen", "pre", "num", "line", "adm", "gone"),
    args=("account", "now", "touch"),
    source="""
local ticket = redis.call('HGET', KEYS[2], ARGV[1])
if not ticket then return {'none'} end
if ARGV[3] == '1' then redis.call('HSET', KEYS[3], ticket, ARGV[2]) end
local state = redis.call('HGET', KEYS[1], 'state')
local admission = redis.call('HGET', KEYS[7], ticket)
if admission then return {'admitted', ticket, state, admission} end
local gone = redis.call('HGET', KEYS[8], ticket)
if gone then return {'gone', ticket, state, gone} end
local number = redis.call('HGET', KEYS[5], ticket)
if not number then return {'pre-queue', ticket, state, redis.call('LLEN', KEYS[4])} end
local ahead = redis.call('ZCOUNT', KEYS[6], '-inf', '(' .. number)
return {'waiting', ticket, state, number, ahead}
""",
)

STATS = LuaScript(
    "waitroom-stats",
    keys=("cfg", "pre", "line", "adm", "active", "pending", "admits", "gone"),
    args=("since",),
    source="""
local cfg = redis.call('HMGET', KEYS[1], 'state', 'max_active', 'adaptive', 'pre_count',
  'waitlist')
local head = redis.call('ZRANGE', KEYS[3], 0, 0, 'WITHSCORES')
return {cfg[1] or '', cfg[2] or '0', cfg[3] or '0', cfg[4] or '0',
  redis.call('LLEN', KEYS[2]), redis.call('ZCARD', KEYS[3]), head[2] or '0',
  redis.call('HLEN', KEYS[4]), redis.call('ZCARD', KEYS[5]), redis.call('ZCARD', KEYS[6]),
  redis.call('ZCOUNT', KEYS[7], ARGV[1], '+inf'), redis.call('HLEN', KEYS[8]), cfg[5] or '0'}
""",
)


@dataclass(frozen=True, slots=True)
class OnSaleTimes:
    opens_ms: int
    starts_ms: int
    window_ms: int
    grace_ms: int
    max_active: int
    adaptive: bool


@dataclass(frozen=True, slots=True)
class Admitted:
    ticket: str
    account: str
    number: int
    admitted_ms: int
    expires_ms: int


@dataclass(frozen=True, slots=True)
class AdmitResult:
    admitted: list[Admitted]
    skipped_away: int


@dataclass(frozen=True, slots=True)
class QueueStats:
    state: str
    max_active: int
    adaptive: bool
    pre_count: int
    pre_queue: int
    """Tickets in the pre-queue list (all of them, once closed)."""
    waiting: int
    """Numbered tickets still in line."""
    head: int
    """The number of the first fan in line (0 when nobody waits)."""
    admitted: int
    active: int
    pending: int
    admitted_recently: int
    gone: int
    waitlist_reserved: int = 0
    """Places the sold-out waitlist waits for: the queue leaves them alone."""


@dataclass(frozen=True, slots=True)
class Place:
    """Where one account stands. ``status`` is ``none``, ``pre-queue`` (joined before the
    start; numbered at the shuffle), ``waiting``, ``admitted`` or ``gone``."""

    status: str
    ticket: str | None = None
    state: str | None = None
    number: int | None = None
    ahead: int | None = None
    pre_queue: int | None = None
    admitted_ms: int | None = None
    expires_ms: int | None = None
    gone_reason: str | None = None


class QueueStore:
    """The Redis side of every event's queue."""

    def __init__(self, redis: Any, *, index_prefix: str = "waitroom") -> None:
        self.redis = redis
        self.onsales_key = f"{index_prefix}:onsales"
        """Set of event ids with an on-sale in Redis: the admission loop's work list."""

    async def _run(self, script: LuaScript, event_id: uuid.UUID, **args: Any) -> Any:
        keys = QueueKeys.of(event_id).named(*script.keys)
        return decode(await script.run(self.redis, **keys, **args))

    async def configure(self, event_id: uuid.UUID, times: OnSaleTimes) -> str:
        state = await self._run(
            CONFIGURE,
            event_id,
            opens=times.opens_ms,
            starts=times.starts_ms,
            window=times.window_ms,
            grace=times.grace_ms,
            max_active=times.max_active,
            adaptive=1 if times.adaptive else 0,
        )
        await self.redis.sadd(self.onsales_key, str(event_id))
        return str(state)

    async def config(self, event_id: uuid.UUID) -> OnSaleTimes:
        key = QueueKeys.of(event_id).named("cfg")["cfg"]
        raw = decode(
            await self.redis.hmget(
                key, "opens", "starts", "window", "grace", "max_active", "adaptive"
            )
        )
        if raw[0] is None:
            raise LookupError(f"event {event_id} has no on-sale in Redis")
        return OnSaleTimes(
            opens_ms=int(raw[0]),
            starts_ms=int(raw[1]),
            window_ms=int(raw[2]),
            grace_ms=int(raw[3]),
            max_active=int(raw[4]),
            adaptive=raw[5] == "1",
        )

    async def set_waitlist_reserve(self, event_id: uuid.UUID, places: int) -> None:
        key = QueueKeys.of(event_id).named("cfg")["cfg"]
        if await self.redis.exists(key):
            await self.redis.hset(key, "waitlist", places)

    async def remove(self, event_id: uuid.UUID) -> None:
        await self.redis.srem(self.onsales_key, str(event_id))
        await self.redis.delete(*QueueKeys.of(event_id).all())

    async def onsale_events(self) -> list[uuid.UUID]:
        members = await self.redis.smembers(self.onsales_key)
        return sorted(uuid.UUID(decode(member)) for member in members)

    async def join(self, event_id: uuid.UUID, account: str, ticket: str, now_ms: int) -> list[str]:
        return list(await self._run(JOIN, event_id, account=account, ticket=ticket, now=now_ms))

    async def close_pre_queue(self, event_id: uuid.UUID, now_ms: int) -> tuple[str, int]:
        state, count = await self._run(CLOSE, event_id, now=now_ms)
        return str(state), int(count)

    async def pre_queue(self, event_id: uuid.UUID) -> list[str]:
        key = QueueKeys.of(event_id).named("pre")["pre"]
        return [decode(ticket) for ticket in await self.redis.lrange(key, 0, -1)]

    async def place(
        self, event_id: uuid.UUID, numbered: Sequence[tuple[str, int]], *, open_after: bool
    ) -> int:
        flat: list[Any] = []
        for ticket, number in numbered:
            flat.extend((ticket, number))
        return int(
            await self._run(
                PLACE, event_id, placed=json.dumps(flat), open="1" if open_after else "0"
            )
        )

    async def admit(
        self, event_id: uuid.UUID, *, now_ms: int, budget: int, scan_limit: int = 2000
    ) -> AdmitResult:
        if budget <= 0:
            return AdmitResult([], 0)
        reply = await self._run(
            ADMIT,
            event_id,
            now=now_ms,
            budget=budget,
            scan_limit=scan_limit,
            event=str(event_id),
        )
        items = reply[1:]
        admitted = [
            Admitted(
                ticket=items[i],
                account=items[i + 1],
                number=int(items[i + 2]),
                admitted_ms=int(items[i + 3]),
                expires_ms=int(items[i + 4]),
            )
            for i in range(0, len(items), 5)
        ]
        return AdmitResult(admitted, int(reply[0]))

    async def sweep(self, event_id: uuid.UUID, *, now_ms: int, rate_window_ms: int) -> int:
        return int(await self._run(SWEEP, event_id, now=now_ms, rate_window=rate_window_ms))

    async def hold_seen(self, event_id: uuid.UUID, account: str, *, until_ms: int) -> bool:
        return bool(await self._run(HOLD_SEEN, event_id, account=account, until=until_ms))

    async def hold_ended(
        self, event_id: uuid.UUID, account: str, *, now_ms: int, sold: bool
    ) -> bool:
        return bool(
            await self._run(
                HOLD_ENDED, event_id, account=account, now=now_ms, done="1" if sold else "0"
            )
        )

    async def set_state(self, event_id: uuid.UUID, *, from_state: str, to_state: str) -> bool:
        return bool(await self._run(SET_STATE, event_id, **{"from": from_state, "to": to_state}))

    async def me(self, event_id: uuid.UUID, account: str, *, now_ms: int, touch: bool) -> Place:
        reply = await self._run(
            ME, event_id, account=account, now=now_ms, touch="1" if touch else "0"
        )
        status = reply[0]
        if status == "none":
            return Place("none")
        ticket, state = reply[1], reply[2]
        if status == "admitted":
            admitted, expires, number = reply[3].split("|")
            return Place(
                status,
                ticket,
                state,
                number=int(number),
                ahead=0,
                admitted_ms=int(admitted),
                expires_ms=int(expires),
            )
        if status == "gone":
            return Place(status, ticket, state, gone_reason=reply[3].split("|")[0])
        if status == "pre-queue":
            return Place(status, ticket, state, pre_queue=int(reply[3]))
        return Place(status, ticket, state, number=int(reply[3]), ahead=int(reply[4]))

    async def stats(self, event_id: uuid.UUID, *, since_ms: int) -> QueueStats | None:
        reply = await self._run(STATS, event_id, since=since_ms)
        if not reply[0]:
            return None
        return QueueStats(
            state=reply[0],
            max_active=int(reply[1]),
            adaptive=reply[2] == "1",
            pre_count=int(reply[3]),
            pre_queue=int(reply[4]),
            waiting=int(reply[5]),
            head=int(float(reply[6])),
            admitted=int(reply[7]),
            active=int(reply[8]),
            pending=int(reply[9]),
            admitted_recently=int(reply[10]),
            gone=int(reply[11]),
            waitlist_reserved=int(reply[12]),
        )

    async def log_entries(
        self, event_id: uuid.UUID, *, count: int
    ) -> list[tuple[str, dict[str, str]]]:
        key = QueueKeys.of(event_id).named("log")["log"]
        entries = await self.redis.xrange(key, count=count)
        return [
            (decode(entry_id), {decode(k): decode(v) for k, v in fields.items()})
            for entry_id, fields in entries
        ]

    async def trim_log(self, event_id: uuid.UUID, entry_ids: Sequence[str]) -> None:
        if entry_ids:
            key = QueueKeys.of(event_id).named("log")["log"]
            await self.redis.xdel(key, *entry_ids)
