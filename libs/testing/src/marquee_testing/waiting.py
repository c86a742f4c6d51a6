"""The one way a test waits: poll a condition until a deadline, never sleep for it."""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Awaitable, Callable


async def wait_until(
    condition: Callable[[], bool | Awaitable[bool]],
    *,
    timeout: float,
    message: str | Callable[[], str] = "the condition",
    interval: float = 0.05,
) -> None:
    """Poll ``condition`` (sync or async) until it holds.

    At the deadline it raises ``AssertionError`` naming ``message`` (a callable is asked
    then, so it can describe the state that was reached).
    """
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if inspect.isawaitable(result):
            result = await result
        if result:
            return
        if time.monotonic() >= deadline:
            text = message() if callable(message) else message
            raise AssertionError(f"timed out after {timeout:g}s waiting for {text}")
        await asyncio.sleep(interval)
