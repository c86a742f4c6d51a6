"""Seat state in Redis: one Lua script per operation, every key of an event in one slot.

Keys of event E share the hash tag ``{evt:E}`` (``T`` below), so each script touches one
Redis Cluster slot and runs atomically:

======================  ==============================================================
``T:meta``              hash: ``version`` (of the catalog snapshot), ``status``, ``ttl_ms``,
                        ``max_total`` (tickets per order), ``mode`` (``direct`` or
                        ``queued``: high demand),
                        ``av`` (availability version, the ETag), ``seats_free``
``T:seats``             hash: seat id → ``a`` (available), ``h:<hold>``, ``s:<ref>`` (sold)
``T:seatcat``           hash: seat id → price category
``T:cattt``             hash: price category → the seated ticket type that sells it
``T:tt``                hash: ticket type id → JSON ``{kind, cat, cap, start, end, min, max}``
``T:ga``                hash: ``<ticket type>:held`` and ``<ticket type>:sold`` counts
``T:hold:<id>``         hash: ``user``, ``expires``, ``seats`` and ``ga`` (JSON)
``T:deadlines``         sorted set: hold id by deadline (ms) — the sweeper's work list
``T:user:<user>``       hash: ticket type id → places the user holds now; ``*`` → all
``T:claimed``           hash: hold id → order id, for holds already turned into a sale
``T:idem:<user>:<key>``  string: ``<hold id> <request hash>`` for an Idempotency-Key (24 h)
``T:log``               stream: hold-created/released/expired, sale-claimed, forwarded
                        to Kafka at least once by :mod:`marquee_inventory.forwarder`
``T:gate``              hash: ``required`` (``1``: holds need a waiting-room admission
                        token) and ``configured_at`` (µs since the epoch, of the
                        ``waitroom.onsale-configured.v1`` it reflects); absent: no gate
======================  ==============================================================

``T:meta`` is written last by :data:`INSTALL`: while it is missing the event's state is
not in Redis (never loaded, flushed, a failover to an empty replica), every script answers
``missing`` and the service rebuilds it from PostgreSQL, where sold places live.

``T:gate`` is not part of that state: it is written after the gate's commit even while
the event is not loaded (the waitroom may configure it first), by :data:`SET_GATE` and by
:data:`INSTALL` from PostgreSQL, each only over an older ``configured_at``. So whichever
of a rebuild and a gate change lands last, the newer gate stays; and because INSTALL
writes it with ``T:meta`` in one step, a loaded state always carries its gate (the hold
path reads both at once, see :meth:`~marquee_inventory.store.HoldStore.admission_required`).

A script answers a flat list ``{outcome, ...}``; Python turns it into results or errors.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from marquee_platform.lua import LuaScript, decode, hash_tag, tagged_key


def event_tag(event_id: uuid.UUID | str) -> str:
    return hash_tag("evt", event_id)


@dataclass(frozen=True, slots=True)
class EventKeys:
    tag: str

    @classmethod
    def of(cls, event_id: uuid.UUID | str) -> EventKeys:
        return cls(event_tag(event_id))

    def key(self, *parts: object) -> str:
        return tagged_key(self.tag, *parts)

    @property
    def meta(self) -> str:
        return self.key("meta")

    @property
    def seats(self) -> str:
        return self.key("seats")

    @property
    def seatcat(self) -> str:
        return self.key("seatcat")

    @property
    def cattt(self) -> str:
        return self.key("cattt")

    @property
    def tt(self) -> str:
        return self.key("tt")

    @property
    def ga(self) -> str:
        return self.key("ga")

    @property
    def deadlines(self) -> str:
        return self.key("deadlines")

    @property
    def claimed(self) -> str:
        return self.key("claimed")

    @property
    def log(self) -> str:
        return self.key("log")

    @property
    def gate(self) -> str:
        return self.key("gate")

    def hold(self, hold_id: str) -> str:
        return self.key("hold", hold_id)

    def user(self, user_id: str) -> str:
        return self.key("user", user_id)

    def all_static(self) -> list[str]:
        return [self.meta, self.seats, self.seatcat, self.cattt, self.tt, self.ga]

    def for_script(self, script: LuaScript, **special: str) -> dict[str, str]:
        """The keys ``script`` declares, by name: this event's key of that name (``meta``,
        ``seats`` …) unless given in ``special`` (``hold=keys.hold(hold_id)``)."""
        return {
            name: special[name] if name in special else getattr(self, name) for name in script.keys
        }


# Shared Lua: releasing one hold (used by release and expire). Puts each seat back to
# available only if this hold still has it, returns its places, forgets the hold.
_RELEASE_HOLD_FN = """
local function release_hold(hold_key, hold_id, seats_key, ga_key, deadlines_key, meta_key,
                            user_prefix)
  local hold = redis.call('HMGET', hold_key, 'user', 'seats', 'ga')
  if not hold[1] then return nil end
  local seats = cjson.decode(hold[2])
  local ga = cjson.decode(hold[3])
  local freed = 0
  local user_key = user_prefix .. hold[1]
  for _, pair in ipairs(seats) do
    if redis.call('HGET', seats_key, pair[1]) == 'h:' .. hold_id then
      redis.call('HSET', seats_key, pair[1], 'a')
      freed = freed + 1
    end
    redis.call('HINCRBY', user_key, pair[2], -1)
    redis.call('HINCRBY', user_key, '*', -1)
  end
  for _, pair in ipairs(ga) do
    redis.call('HINCRBY', ga_key, pair[1] .. ':held', -pair[2])
    redis.call('HINCRBY', user_key, pair[1], -pair[2])
    redis.call('HINCRBY', user_key, '*', -pair[2])
  end
  if tonumber(redis.call('HGET', user_key, '*') or '0') <= 0 then
    redis.call('DEL', user_key)
  end
  redis.call('HINCRBY', meta_key, 'seats_free', freed)
  redis.call('HINCRBY', meta_key, 'av', 1)
  redis.call('DEL', hold_key)
  redis.call('ZREM', deadlines_key, hold_id)
  return {hold[1], hold[2], hold[3]}
end
"""

# Shared Lua: the admission gate, newer wins. ``configured`` is µs since the epoch (exact
# in a Lua number: below 2^53 until the year 2255); ``required`` '' writes nothing.
_SET_GATE_FN = """
local function set_gate(gate_key, required, configured)
  if required == '' then return 0 end
  local stored = redis.call('HGET', gate_key, 'configured_at')
  if stored and tonumber(stored) >= tonumber(configured) then return 0 end
  redis.call('HSET', gate_key, 'required', required, 'configured_at', configured)
  return 1
end
"""

HOLD = LuaScript(
    "inventory-hold",
    keys=(
        "meta",
        "seats",
        "seatcat",
        "cattt",
        "tt",
        "ga",
        "hold",
        "deadlines",
        "user",
        "log",
        "idempotency",
    ),
    args=("hold_id", "user_id", "now_ms", "seats_json", "ga_json", "request_hash", "queued"),
    source="""
-- All or nothing: every check runs before the first write.
if redis.call('EXISTS', KEYS[1]) == 0 then return {'missing'} end
-- Idempotency-Key (in Redis, so a hold never waits on PostgreSQL): the same key and body
-- answer the hold made the first time; the same key with another body is refused.
if ARGV[6] ~= '' then
  local seen = redis.call('GET', KEYS[11])
  if seen then
    local sep = string.find(seen, ' ', 1, true)
    if string.sub(seen, sep + 1) ~= ARGV[6] then return {'idempotency-mismatch'} end
    return {'replay', string.sub(seen, 1, sep - 1)}
  end
end
local meta = redis.call('HMGET', KEYS[1], 'status', 'ttl_ms', 'max_total', 'mode')
if meta[1] ~= 'selling' then return {'closed', meta[1]} end
-- High demand: requests go through the queue (first come, first served), not this race.
if meta[4] == 'queued' and ARGV[7] ~= '1' then return {'queue'} end
local now = tonumber(ARGV[3])
local wanted_seats = cjson.decode(ARGV[4])
local wanted_ga = cjson.decode(ARGV[5])
local per_type = {}
local order = {}
local total = 0
local types = {}
local function ticket_type(id)
  if types[id] == nil then
    local raw = redis.call('HGET', KEYS[5], id)
    if not raw then return nil end
    types[id] = cjson.decode(raw)
  end
  return types[id]
end
local function count(id, n)
  if per_type[id] == nil then per_type[id] = 0; table.insert(order, id) end
  per_type[id] = per_type[id] + n
  total = total + n
end
local taken = {}
local seats = {}
for _, request in ipairs(wanted_seats) do
  local seat = request[1]
  local state = redis.call('HGET', KEYS[2], seat)
  if not state then return {'unknown-seat', seat} end
  local category = redis.call('HGET', KEYS[3], seat)
  local tt_id = request[2]
  if tt_id == '' then
    tt_id = redis.call('HGET', KEYS[4], category)
    if not tt_id then return {'no-ticket-type', seat, category} end
  end
  local tt = ticket_type(tt_id)
  if not tt then return {'unknown-ticket-type', tt_id} end
  if tt['kind'] ~= 'seated' or tt['cat'] ~= category then
    return {'wrong-ticket-type', seat, tt_id}
  end
  if state ~= 'a' then table.insert(taken, seat) end
  table.insert(seats, {seat, tt_id})
  count(tt_id, 1)
end
local shortfall = {}
for _, request in ipairs(wanted_ga) do
  local tt = ticket_type(request[1])
  if not tt then return {'unknown-ticket-type', request[1]} end
  if tt['kind'] ~= 'general_admission' then return {'wrong-ticket-type', '', request[1]} end
  local held = tonumber(redis.call('HGET', KEYS[6], request[1] .. ':held') or '0')
  local sold = tonumber(redis.call('HGET', KEYS[6], request[1] .. ':sold') or '0')
  local left = tt['cap'] - held - sold
  if left < request[2] then table.insert(shortfall, request[1]); table.insert(shortfall, left) end
  count(request[1], request[2])
end
if total == 0 then return {'empty'} end
for _, id in ipairs(order) do
  local tt = ticket_type(id)
  if tt['start'] and now < tt['start'] then return {'not-yet', id, tt['start']} end
  if tt['end'] and now >= tt['end'] then return {'ended', id, tt['end']} end
  local already = tonumber(redis.call('HGET', KEYS[9], id) or '0')
  if already + per_type[id] > tt['max'] then return {'over-cap', id, tt['max'], already} end
  if per_type[id] < tt['min'] then return {'under-min', id, tt['min']} end
end
local already_total = tonumber(redis.call('HGET', KEYS[9], '*') or '0')
if already_total + total > tonumber(meta[3]) then
  return {'over-event-cap', meta[3], already_total}
end
if #taken > 0 or #shortfall > 0 then
  return {'unavailable', cjson.encode(taken), cjson.encode(shortfall),
          redis.call('HGET', KEYS[1], 'seats_free')}
end
-- Every check passed: hold everything.
local expires = now + tonumber(meta[2])
local hold_ref = 'h:' .. ARGV[1]
for _, pair in ipairs(seats) do redis.call('HSET', KEYS[2], pair[1], hold_ref) end
for _, request in ipairs(wanted_ga) do
  redis.call('HINCRBY', KEYS[6], request[1] .. ':held', request[2])
end
for _, id in ipairs(order) do redis.call('HINCRBY', KEYS[9], id, per_type[id]) end
redis.call('HINCRBY', KEYS[9], '*', total)
local seats_json = cjson.encode(seats)
if #seats == 0 then seats_json = '[]' end
local ga_json = ARGV[5]
redis.call('HSET', KEYS[7], 'user', ARGV[2], 'expires', expires, 'seats', seats_json,
           'ga', ga_json, 'created', now)
redis.call('ZADD', KEYS[8], expires, ARGV[1])
if #seats > 0 then redis.call('HINCRBY', KEYS[1], 'seats_free', -#seats) end  -- '-0' is no integer
local av = redis.call('HINCRBY', KEYS[1], 'av', 1)
if ARGV[6] ~= '' then
  redis.call('SET', KEYS[11], ARGV[1] .. ' ' .. ARGV[6], 'PX', 86400000)
end
redis.call('XADD', KEYS[10], '*', 'type', 'hold-created', 'hold', ARGV[1], 'user', ARGV[2],
           'seats', seats_json, 'ga', ga_json, 'at', now, 'expires', expires)
-- The seats as held (with the ticket types resolved here): the hold key may be gone by
-- the time the caller could read it back (a flush, a failover).
return {'ok', expires, av, seats_json}
""",
)

RELEASE = LuaScript(
    "inventory-release",
    keys=("meta", "seats", "ga", "hold", "deadlines", "log"),
    args=("hold_id", "user_id", "now_ms", "user_prefix"),
    source=_RELEASE_HOLD_FN
    + """
local owner = redis.call('HGET', KEYS[4], 'user')
if not owner then
  if redis.call('EXISTS', KEYS[1]) == 0 then return {'missing'} end
  return {'not-found'}
end
if ARGV[2] ~= '' and owner ~= ARGV[2] then return {'not-found'} end
local released = release_hold(KEYS[4], ARGV[1], KEYS[2], KEYS[3], KEYS[5], KEYS[1], ARGV[4])
redis.call('XADD', KEYS[6], '*', 'type', 'hold-released', 'hold', ARGV[1], 'user', released[1],
           'seats', released[2], 'ga', released[3], 'at', ARGV[3])
return {'ok', released[2], released[3]}
""",
)

EXPIRE_DUE = LuaScript(
    "inventory-expire-due",
    keys=("meta", "seats", "ga", "deadlines", "log"),
    args=("now_ms", "limit", "hold_prefix", "user_prefix"),
    source=_RELEASE_HOLD_FN
    + """
local due = redis.call('ZRANGEBYSCORE', KEYS[4], '-inf', ARGV[1], 'LIMIT', 0, ARGV[2])
local expired = {}
for _, hold_id in ipairs(due) do
  local released = release_hold(ARGV[3] .. hold_id, hold_id, KEYS[2], KEYS[3], KEYS[4],
                                KEYS[1], ARGV[4])
  if released then
    redis.call('XADD', KEYS[5], '*', 'type', 'hold-expired', 'hold', hold_id,
               'user', released[1], 'seats', released[2], 'ga', released[3], 'at', ARGV[1])
    table.insert(expired, hold_id)
    table.insert(expired, released[2])
  else
    redis.call('ZREM', KEYS[4], hold_id)
  end
end
local next_deadline = redis.call('ZRANGE', KEYS[4], 0, 0, 'WITHSCORES')
return {next_deadline[2] or '', unpack(expired)}
""",
)

CLAIM_SALE = LuaScript(
    "inventory-claim-sale",
    keys=("meta", "seats", "ga", "tt", "hold", "deadlines", "claimed", "log"),
    args=("hold_id", "order_id", "user_id", "seats_json", "ga_json", "now_ms", "user_prefix"),
    source="""
-- Turn a paid hold into sold places. Idempotent: a hold already claimed answers 'ok'.
if redis.call('EXISTS', KEYS[1]) == 0 then return {'missing'} end
if redis.call('HGET', KEYS[7], ARGV[1]) then return {'ok', 'already'} end
local seats = cjson.decode(ARGV[4])
local ga = cjson.decode(ARGV[5])
local hold_ref = 'h:' .. ARGV[1]
local live = redis.call('HGET', KEYS[5], 'user') == ARGV[3]
local taken = {}
for _, pair in ipairs(seats) do
  local state = redis.call('HGET', KEYS[2], pair[1])
  if not state then return {'unknown', pair[1]} end
  if not (state == 'a' or (live and state == hold_ref)) then table.insert(taken, pair[1]) end
end
local held_here = {}
if live then
  for _, pair in ipairs(cjson.decode(redis.call('HGET', KEYS[5], 'ga'))) do
    held_here[pair[1]] = pair[2]
  end
end
for _, pair in ipairs(ga) do
  local raw = redis.call('HGET', KEYS[4], pair[1])
  if not raw then return {'unknown', pair[1]} end
  local cap = cjson.decode(raw)['cap']
  local held = tonumber(redis.call('HGET', KEYS[3], pair[1] .. ':held') or '0')
  local sold = tonumber(redis.call('HGET', KEYS[3], pair[1] .. ':sold') or '0')
  local mine = math.min(held_here[pair[1]] or 0, pair[2])
  if cap - held - sold + mine < pair[2] then table.insert(taken, pair[1]) end
end
if #taken > 0 then return {'taken', cjson.encode(taken)} end
local newly_sold = 0
for _, pair in ipairs(seats) do
  if redis.call('HGET', KEYS[2], pair[1]) == 'a' then newly_sold = newly_sold + 1 end
  redis.call('HSET', KEYS[2], pair[1], 's:' .. ARGV[2])
end
if live then
  -- The hold's own seats were already counted as not free; its places leave 'held'.
  local user_key = ARGV[7] .. ARGV[3]
  local hold_seats = cjson.decode(redis.call('HGET', KEYS[5], 'seats'))
  for _, pair in ipairs(hold_seats) do
    redis.call('HINCRBY', user_key, pair[2], -1)
    redis.call('HINCRBY', user_key, '*', -1)
    if redis.call('HGET', KEYS[2], pair[1]) == hold_ref then
      -- held but not in the order: free again
      redis.call('HSET', KEYS[2], pair[1], 'a')
      redis.call('HINCRBY', KEYS[1], 'seats_free', 1)
    end
  end
  for id, quantity in pairs(held_here) do
    redis.call('HINCRBY', KEYS[3], id .. ':held', -quantity)
    redis.call('HINCRBY', user_key, id, -quantity)
    redis.call('HINCRBY', user_key, '*', -quantity)
  end
  if tonumber(redis.call('HGET', user_key, '*') or '0') <= 0 then redis.call('DEL', user_key) end
  redis.call('DEL', KEYS[5])
  redis.call('ZREM', KEYS[6], ARGV[1])
end
for _, pair in ipairs(ga) do redis.call('HINCRBY', KEYS[3], pair[1] .. ':sold', pair[2]) end
redis.call('HSET', KEYS[7], ARGV[1], ARGV[2])
if newly_sold > 0 then redis.call('HINCRBY', KEYS[1], 'seats_free', -newly_sold) end
redis.call('HINCRBY', KEYS[1], 'av', 1)
redis.call('XADD', KEYS[8], '*', 'type', 'sale-claimed', 'hold', ARGV[1], 'order', ARGV[2],
           'at', ARGV[6])
return {'ok', 'claimed'}
""",
)

RETURN_PLACE = LuaScript(
    "inventory-return-place",
    keys=("meta", "seats", "ga"),
    args=("seat_id", "ticket_type_id", "sold_ref"),
    source="""
-- A refunded or cancelled ticket frees its place (a seat sold under another order, or not
-- sold at all, is left alone: the call is idempotent).
if redis.call('EXISTS', KEYS[1]) == 0 then return {'missing'} end
if ARGV[1] ~= '' then
  if redis.call('HGET', KEYS[2], ARGV[1]) ~= 's:' .. ARGV[3] then return {'ok', 0} end
  redis.call('HSET', KEYS[2], ARGV[1], 'a')
  redis.call('HINCRBY', KEYS[1], 'seats_free', 1)
else
  if tonumber(redis.call('HGET', KEYS[3], ARGV[2] .. ':sold') or '0') <= 0 then
    return {'ok', 0}
  end
  redis.call('HINCRBY', KEYS[3], ARGV[2] .. ':sold', -1)
end
redis.call('HINCRBY', KEYS[1], 'av', 1)
return {'ok', 1}
""",
)

SET_META = LuaScript(
    "inventory-set-meta",
    keys=("meta", "tt", "cattt"),
    args=("version", "status", "ttl_ms", "max_total", "mode", "types_json", "categories_json"),
    source="""
-- Later catalog changes (status, sale windows, caps, capacity, new ticket types) apply in
-- place; seats and holds are untouched. Nothing to do while the state is not loaded.
if redis.call('EXISTS', KEYS[1]) == 0 then return {'missing'} end
redis.call('HSET', KEYS[1], 'version', ARGV[1], 'status', ARGV[2], 'ttl_ms', ARGV[3],
           'max_total', ARGV[4], 'mode', ARGV[5])
redis.call('DEL', KEYS[2], KEYS[3])
for id, tt in pairs(cjson.decode(ARGV[6])) do redis.call('HSET', KEYS[2], id, cjson.encode(tt)) end
for category, id in pairs(cjson.decode(ARGV[7])) do redis.call('HSET', KEYS[3], category, id) end
redis.call('HINCRBY', KEYS[1], 'av', 1)
return {'ok'}
""",
)

SET_GATE = LuaScript(
    "inventory-set-gate",
    keys=("gate",),
    args=("gate_required", "gate_configured_us"),
    source=_SET_GATE_FN
    + """
-- Whether the event's state is loaded or not: the gate may come before the event.
return {'ok', set_gate(KEYS[1], ARGV[1], ARGV[2])}
""",
)

INSTALL = LuaScript(
    "inventory-install",
    keys=("meta", "seats", "seatcat", "cattt", "tt", "ga", "deadlines", "claimed", "gate"),
    args=(
        "force",
        "version",
        "status",
        "ttl_ms",
        "max_total",
        "mode",
        "types_json",
        "categories_json",
        "sold_ga_json",
        "claimed_json",
        "hold_prefix",
        "seats_blob",
        "gate_required",
        "gate_configured_us",
    ),
    source=_SET_GATE_FN
    + """
-- Load (or reload) an event from PostgreSQL's truth. Without 'force' it does nothing when
-- the state is already there (two replicas rebuilding at once install it once). Live holds
-- are kept where their seats are not sold; everything else comes from the arguments.
if ARGV[1] ~= '1' and redis.call('EXISTS', KEYS[1]) == 1 then return {'present'} end
local live = {}
for _, hold_id in ipairs(redis.call('ZRANGE', KEYS[7], 0, -1)) do
  if redis.call('EXISTS', ARGV[11] .. hold_id) == 1 then live['h:' .. hold_id] = true end
end
local old = {}
if redis.call('EXISTS', KEYS[2]) == 1 then
  local flat = redis.call('HGETALL', KEYS[2])
  for i = 1, #flat, 2 do old[flat[i]] = flat[i + 1] end
end
redis.call('DEL', KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[8])
-- seats_blob: "seat\\tcategory\\tsold_ref\\n" per seat (sold_ref empty when not sold)
local free = 0
local batch_seats, batch_cats = {}, {}
local function flush()
  if #batch_seats > 0 then
    redis.call('HSET', KEYS[2], unpack(batch_seats))
    redis.call('HSET', KEYS[3], unpack(batch_cats))
    batch_seats, batch_cats = {}, {}
  end
end
local line = '([^\\t\\n]+)\\t([^\\t\\n]*)\\t([^\\t\\n]*)\\n'
for seat, category, sold in string.gmatch(ARGV[12], line) do
  local state = 'a'
  if sold ~= '' then
    state = 's:' .. sold
  elseif old[seat] and live[old[seat]] then
    state = old[seat]
  else
    free = free + 1
  end
  table.insert(batch_seats, seat); table.insert(batch_seats, state)
  table.insert(batch_cats, seat); table.insert(batch_cats, category)
  if #batch_seats >= 2000 then flush() end
end
flush()
for id, tt in pairs(cjson.decode(ARGV[7])) do redis.call('HSET', KEYS[5], id, cjson.encode(tt)) end
for category, id in pairs(cjson.decode(ARGV[8])) do redis.call('HSET', KEYS[4], category, id) end
-- General admission: sold from PostgreSQL, held recounted from the live holds.
local held = {}
for _, hold_id in ipairs(redis.call('ZRANGE', KEYS[7], 0, -1)) do
  local raw = redis.call('HGET', ARGV[11] .. hold_id, 'ga')
  if raw then
    for _, pair in ipairs(cjson.decode(raw)) do held[pair[1]] = (held[pair[1]] or 0) + pair[2] end
  else
    redis.call('ZREM', KEYS[7], hold_id)
  end
end
redis.call('DEL', KEYS[6])
for id, sold in pairs(cjson.decode(ARGV[9])) do redis.call('HSET', KEYS[6], id .. ':sold', sold) end
for id, count in pairs(held) do redis.call('HSET', KEYS[6], id .. ':held', count) end
for hold_id, order_id in pairs(cjson.decode(ARGV[10])) do
  redis.call('HSET', KEYS[8], hold_id, order_id)
end
-- The gate in the same step as T:meta: a loaded state is never seen without its gate.
set_gate(KEYS[9], ARGV[13], ARGV[14])
local av = tonumber(redis.call('HGET', KEYS[1], 'av') or '0') + 1
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], 'version', ARGV[2], 'status', ARGV[3], 'ttl_ms', ARGV[4],
           'max_total', ARGV[5], 'mode', ARGV[6], 'av', av, 'seats_free', free)
return {'installed', free}
""",
)


def seats_blob(rows: Iterable[tuple[str, str, str | None]]) -> str:
    """``seat\\tcategory\\tsold_ref\\n`` lines for :data:`INSTALL`."""
    return "".join(f"{seat}\t{category}\t{sold or ''}\n" for seat, category, sold in rows)


def as_json(value: Any) -> str:
    """JSON for a script argument; an empty list stays a list (cjson would make ``{}``)."""
    return json.dumps(value, separators=(",", ":"))


def reply(raw: Any) -> list[Any]:
    decoded = decode(raw)
    assert isinstance(decoded, list)
    return decoded


def hold_keys(
    keys: EventKeys, hold_id: str, user_id: str, idempotency_key: str | None
) -> dict[str, str]:
    digest = hashlib.sha256(idempotency_key.encode()).hexdigest()[:32] if idempotency_key else "-"
    return keys.for_script(
        HOLD,
        hold=keys.hold(hold_id),
        user=keys.user(user_id),
        idempotency=keys.key("idem", user_id, digest),
    )


def seat_pairs(seats: Sequence[tuple[str, uuid.UUID | None]]) -> str:
    return as_json([[seat, str(tt) if tt else ""] for seat, tt in seats])


def ga_pairs(quantities: Sequence[tuple[uuid.UUID, int]]) -> str:
    return as_json([[str(tt), quantity] for tt, quantity in quantities])
