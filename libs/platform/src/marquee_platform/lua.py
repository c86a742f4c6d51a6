"""The one way to run a Redis Lua script.

Declare a script once, at module level, naming its keys and arguments::

    from marquee_platform.lua import LuaScript, hash_tag

    COUNT_IN_WINDOW = LuaScript(
        "count-in-window",
        keys=("counter",),
        args=("window_ms",),
        source='''
    local count = redis.call('INCR', KEYS[1])
    if count == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
    return count
    ''',
    )

    count = await COUNT_IN_WINDOW.run(redis, counter=f"{hash_tag('auth:a', digest)}:n",
                                      window_ms=60_000)

``run`` sends ``EVALSHA`` (the script body crosses the network once per server, not once
per call) and, when the server answers ``NOSCRIPT`` (a restart, a failover, ``SCRIPT
FLUSH``), loads the script and tries again. Every key and argument is passed by name, so a
call can't swap two of them, and a missing or unknown name fails before Redis is asked.

Keys are ``KEYS[1..n]`` and arguments ``ARGV[1..m]`` in the order declared. A script that
must run on Redis Cluster touches keys of one hash slot only: build per-event keys with
:func:`hash_tag` (``{evt:123}``), and ``run`` refuses keys of two slots unless the script
is declared ``cluster_safe=False``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from redis.crc import key_slot
from redis.exceptions import NoScriptError

LuaArgument = str | int | float | bytes


def hash_tag(kind: str, identifier: object) -> str:
    """``{kind:identifier}``: keys that start with the same tag share one Cluster slot.

    ``hash_tag("evt", event_id)`` → ``{evt:6c1f…}``; an event's seats, holds and stream
    all begin with it, so one Lua script can touch them atomically.
    """
    text = str(identifier)
    if "{" in text or "}" in text or "{" in kind or "}" in kind:
        raise ValueError("a hash tag can't contain braces")
    return "{" + kind + ":" + text + "}"


def tagged_key(tag: str, *parts: object) -> str:
    """``tagged_key("{evt:1}", "seat", 7)`` → ``{evt:1}:seat:7``."""
    if not (tag.startswith("{") and tag.endswith("}")):
        raise ValueError(f"{tag!r} is not a hash tag; make one with hash_tag()")
    return ":".join([tag, *(str(part) for part in parts)])


@dataclass(frozen=True)
class LuaScript:
    """A Lua script with named keys and arguments, run by SHA with a reload on NOSCRIPT."""

    name: str
    source: str
    keys: Sequence[str] = ()
    args: Sequence[str] = ()
    cluster_safe: bool = True
    """When true (the default), every call's keys must fall in one Cluster hash slot."""
    sha: str = field(init=False)

    def __post_init__(self) -> None:
        names = [*self.keys, *self.args]
        if len(set(names)) != len(names):
            raise ValueError(f"script {self.name}: a key and an argument share a name")
        digest = hashlib.sha1(self.source.encode(), usedforsecurity=False).hexdigest()
        object.__setattr__(self, "sha", digest)

    def bind(self, **values: Any) -> tuple[list[str], list[LuaArgument]]:
        """The ``KEYS`` and ``ARGV`` lists for these named values, in declared order."""
        unknown = set(values) - set(self.keys) - set(self.args)
        missing = [name for name in (*self.keys, *self.args) if name not in values]
        if unknown or missing:
            raise TypeError(
                f"script {self.name} takes keys {list(self.keys)} and arguments "
                f"{list(self.args)}; missing {missing}, unknown {sorted(unknown)}"
            )
        keys = [str(values[name]) for name in self.keys]
        if self.cluster_safe and len({key_slot(key.encode()) for key in keys}) > 1:
            raise ValueError(
                f"script {self.name}: keys {keys} span several Redis Cluster slots; "
                "give them one hash tag (marquee_platform.lua.hash_tag)"
            )
        args = [_argument(self.name, name, values[name]) for name in self.args]
        return keys, args

    async def run(self, redis: Any, **values: Any) -> Any:
        """Run on ``redis`` (a ``redis.asyncio.Redis``) with keys and arguments by name."""
        keys, args = self.bind(**values)
        return await self.run_positional(redis, keys, args)

    async def run_positional(
        self, redis: Any, keys: Sequence[str], args: Sequence[LuaArgument]
    ) -> Any:
        """Run with ready-made ``KEYS``/``ARGV`` lists (from :meth:`bind`)."""
        try:
            return await redis.evalsha(self.sha, len(keys), *keys, *args)
        except NoScriptError:
            loaded = await redis.script_load(self.source)
            if loaded != self.sha and _text(loaded) != self.sha:
                raise RuntimeError(f"Redis hashed script {self.name} differently") from None
            return await redis.evalsha(self.sha, len(keys), *keys, *args)


def _argument(script: str, name: str, value: Any) -> LuaArgument:
    if isinstance(value, bool) or not isinstance(value, str | int | float | bytes):
        raise TypeError(
            f"script {script}: argument {name} must be str, int, float or bytes, "
            f"not {type(value).__name__}"
        )
    return value


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def decode(value: Any) -> Any:
    """A script's reply with bytes turned into text, recursively (lists and maps too)."""
    if isinstance(value, bytes):
        return value.decode()
    if isinstance(value, list):
        return [decode(item) for item in value]
    if isinstance(value, Mapping):
        return {decode(key): decode(item) for key, item in value.items()}
    return value
