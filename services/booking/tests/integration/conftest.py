"""The purchase saga in-process (``marquee_testing.saga``) and the people who use it."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

import pytest

from marquee_testing.events import Clock
from marquee_testing.fixtures import DatabaseFactory, TokenIssuer
from marquee_testing.saga import Saga, running_saga


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def payments_overrides() -> dict[str, object]:
    """Payments settings a test module changes (override this fixture in the module)."""
    return {}


@pytest.fixture
async def saga(
    payments_overrides: dict[str, object],
    make_database: DatabaseFactory,
    redis_url: str,
    kafka_bootstrap: str,
    token_issuer: TokenIssuer,
    unique_name: Callable[[str], str],
    clock: Clock,
) -> AsyncIterator[Saga]:
    async with running_saga(
        make_database=make_database,
        redis_url=redis_url,
        kafka_bootstrap=kafka_bootstrap,
        token_issuer=token_issuer,
        unique_name=unique_name,
        clock=clock,
        payments_overrides=payments_overrides,
    ) as running:
        yield running
