"""The purchase saga in-process (``marquee_testing.saga``) and its clock."""

from __future__ import annotations

import pytest

from marquee_testing.events import Clock

# Fixtures, imported rather than listed in pytest_plugins: pytest refuses pytest_plugins
# in a conftest below the rootdir once it is collected from a parent (`pytest services`).
from marquee_testing.saga import payments_overrides, saga  # noqa: F401


@pytest.fixture
def clock() -> Clock:
    return Clock()
