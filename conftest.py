"""Real infrastructure for every test (see marquee_testing.fixtures), and the one place
that marks tests by folder: everything under an ``integration/`` or ``e2e/`` folder talks
to real PostgreSQL, Redis or the Kafka-protocol broker and is marked ``integration``;
``unit/`` folders need nothing running (``make test-unit``)."""

from __future__ import annotations

import pytest

pytest_plugins = ["marquee_testing.fixtures"]

INTEGRATION_FOLDERS = frozenset({"integration", "e2e"})


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if INTEGRATION_FOLDERS.intersection(item.path.parent.parts):
            item.add_marker(pytest.mark.integration)
