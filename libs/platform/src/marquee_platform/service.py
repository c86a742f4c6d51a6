"""How a service describes itself to the ``marquee`` tool and to the test fixtures.

Each service package exposes one :class:`ServiceSpec` as the entry point
``marquee.services``; ``marquee dev`` discovers services from those entry points.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib.metadata import entry_points
from pathlib import Path

from marquee_platform.settings import ServiceSettings


@dataclass(frozen=True, slots=True)
class ServiceSpec:
    name: str
    settings_class: type[ServiceSettings]
    app_factory: str
    """``module:function`` returning the FastAPI app (uvicorn ``--factory``)."""
    dev_port: int
    migrations: Path | None = None
    """The Alembic script directory; None for a service without a database."""
    consumer_factory: str | None = None
    """``module:function`` returning the service's consumer runner, if it consumes."""

    @property
    def has_database(self) -> bool:
        return self.migrations is not None


def discover_services() -> dict[str, ServiceSpec]:
    """Every installed service, ordered by dev port."""
    found: list[ServiceSpec] = []
    for entry in entry_points(group="marquee.services"):
        spec = entry.load()
        if not isinstance(spec, ServiceSpec):
            raise TypeError(f"entry point {entry.name} does not point at a ServiceSpec")
        found.append(spec)
    return {spec.name: spec for spec in sorted(found, key=lambda spec: spec.dev_port)}
