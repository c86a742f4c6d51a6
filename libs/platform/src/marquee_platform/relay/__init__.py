"""The transactional-outbox relay: carries committed outbox rows to Kafka.

Two modes (design.md, "Events between services"):

* **cdc** streams outbox inserts from PostgreSQL's logical replication (``pgoutput``) and
  advances its replication slot only past transactions the broker fully acknowledged;
* **polling** claims unpublished rows with ``FOR UPDATE SKIP LOCKED``, for servers where
  ``wal_level`` is not ``logical``.

``auto`` picks CDC where it can. Either way delivery is at-least-once: a crash at any
instant loses nothing but may send rows again, so consumers deduplicate on the event id.
Run it with :func:`run_relay` or ``python -m marquee_platform.relay``.
"""

from marquee_platform.relay.common import (
    RelayConfigError,
    RelayMode,
    RelayOptions,
    slot_name_for,
)
from marquee_platform.relay.runner import resolve_mode, run_relay

__all__ = [
    "RelayConfigError",
    "RelayMode",
    "RelayOptions",
    "resolve_mode",
    "run_relay",
    "slot_name_for",
]
