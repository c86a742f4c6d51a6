"""Which replica of a service answers a request: one :class:`Balancer` per service, holding
the replicas ``service_urls`` lists for it.

**Picking.** The replica answering the fewest requests right now (least outstanding
requests) gets the next one; a request is outstanding from the moment its replica is
picked until its answer's body is closed, so a long stream counts for its whole life.
Ties go in turn (round robin), so an idle service's requests alternate evenly.

**Passive ejection.** A replica that could not be reached (the connection was refused or
timed out as it was opened, or a freshly opened connection died under the request) is
left out of the rotation for ``ejection_seconds``; each further failure in a row doubles
that, up to ``max_ejection_seconds``, and the first answer it gives resets it. When the
period ends the replica is back on trial: it is picked again like any other, but with only
one request at a time until one gets an answer (so a burst does not all wait on a replica
that is still down). If every replica is left out, a request still goes to the one left
out longest ago rather than failing without trying. Only requests sent after the latest
ejection count: those already on their way to a replica when it was ejected neither eject
it again nor bring it back.

Which failures eject a replica, and which requests are sent again elsewhere, is decided
by :mod:`marquee_gateway.upstream`. Balancers live on one event loop: nothing here awaits,
so no lock is needed.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field

from prometheus_client import Gauge

from marquee_gateway.metrics import UPSTREAM_EJECTIONS, UPSTREAM_OUTSTANDING

logger = logging.getLogger(__name__)

_LONGEST_DOUBLING = 32
"""More doublings than any cap needs; stops ``2 ** failures`` from overflowing a float."""


@dataclass(eq=False)
class Replica:
    """One replica of a service and what the balancer knows of it."""

    url: str
    position: int
    """Its place in the service's list (the round-robin order)."""
    outstanding: int = 0
    failures_in_a_row: int = 0
    ejected_until: float = 0.0
    ejection_number: int = 0
    """Which ejection (counted across the service) left it out last; 0 if none has."""
    generation: int = 0
    """Bumped at each ejection: a request sent before it has no say in the replica's state."""
    trial: Lease | None = None
    """The one request sent to it since its ejection ended, until that request is over."""
    outstanding_gauge: Gauge = field(repr=False, kw_only=True)

    def is_ejected(self, now: float) -> bool:
        return now < self.ejected_until

    def is_available(self, now: float) -> bool:
        """Neither ejected nor busy with its trial request."""
        on_trial = self.failures_in_a_row > 0 and self.trial is not None
        return not self.is_ejected(now) and not on_trial


class Lease:
    """One request's use of a replica: counted as outstanding until :meth:`release`, and
    able to report how the replica did (:meth:`record_success`, :meth:`record_failure`)."""

    def __init__(self, balancer: Balancer, replica: Replica) -> None:
        self.replica = replica
        self._balancer = balancer
        self._generation = replica.generation
        self._released = False

    @property
    def is_current(self) -> bool:
        """Whether the replica has not been ejected since this request was sent to it."""
        return self._generation == self.replica.generation

    def record_success(self) -> None:
        """The replica answered (whatever the status): it is reachable."""
        self._balancer._record_success(self)

    def record_failure(self, reason: str) -> None:
        """The replica could not be reached: leave it out for a while."""
        self._balancer._record_failure(self, reason)

    def release(self) -> None:
        """The request is over (its answer closed, or it failed). Only the first call counts."""
        if not self._released:
            self._released = True
            self._balancer._release(self)


class Balancer:
    """The replicas of one service (see the module docstring for the policy)."""

    def __init__(
        self,
        service: str,
        urls: Collection[str],
        *,
        ejection_seconds: float = 1.0,
        max_ejection_seconds: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not urls:
            raise ValueError(f"the {service} service needs at least one replica URL")
        self.service = service
        self.replicas = tuple(
            Replica(
                url=url,
                position=position,
                outstanding_gauge=UPSTREAM_OUTSTANDING.labels(service, url),
            )
            for position, url in enumerate(urls)
        )
        for replica in self.replicas:
            replica.outstanding_gauge.set(0)
        self._ejection_seconds = ejection_seconds
        self._max_ejection_seconds = max_ejection_seconds
        self._clock = clock
        self._next_position = 0
        self._ejections = 0

    def pick(
        self, *, exclude: Collection[Replica] = (), healthy_only: bool = False
    ) -> Replica | None:
        """The replica for the next request, among those not in ``exclude``: the least
        busy of those available (not ejected, no trial under way), in turn on ties. If none
        is available, the one ejected longest ago, unless ``healthy_only``. ``None`` if
        there is no candidate."""
        candidates = [replica for replica in self.replicas if replica not in exclude]
        if not candidates:
            return None
        now = self._clock()
        healthy = [replica for replica in candidates if replica.is_available(now)]
        if not healthy:
            if healthy_only:
                return None
            return min(candidates, key=lambda replica: replica.ejection_number)
        count = len(self.replicas)
        start = self._next_position
        chosen = min(
            healthy,
            key=lambda replica: (replica.outstanding, (replica.position - start) % count),
        )
        self._next_position = (chosen.position + 1) % count
        return chosen

    def lease(self, replica: Replica) -> Lease:
        """Count a request as outstanding on ``replica`` until the lease is released."""
        replica.outstanding += 1
        replica.outstanding_gauge.set(replica.outstanding)
        lease = Lease(self, replica)
        if replica.failures_in_a_row > 0 and replica.trial is None:
            replica.trial = lease
        return lease

    def in_preference_order(self) -> list[Replica]:
        """Every replica, best first: those not ejected in their listed order, then the
        ejected ones, ejected longest ago first (for one-off fetches like OpenAPI)."""
        now = self._clock()
        healthy = [replica for replica in self.replicas if not replica.is_ejected(now)]
        ejected = [replica for replica in self.replicas if replica.is_ejected(now)]
        return healthy + sorted(ejected, key=lambda replica: replica.ejection_number)

    def _release(self, lease: Lease) -> None:
        replica = lease.replica
        replica.outstanding -= 1
        replica.outstanding_gauge.set(replica.outstanding)
        if replica.trial is lease:
            replica.trial = None

    def _record_success(self, lease: Lease) -> None:
        replica = lease.replica
        if not lease.is_current or replica.failures_in_a_row == 0:
            return
        replica.trial = None
        logger.info(
            "replica %s of %s answered again after %d failed connection(s)",
            replica.url,
            self.service,
            replica.failures_in_a_row,
        )
        replica.failures_in_a_row = 0
        replica.ejected_until = 0.0

    def _record_failure(self, lease: Lease, reason: str) -> None:
        replica = lease.replica
        if not lease.is_current:
            return  # another request that failed the same way has already ejected it
        replica.failures_in_a_row += 1
        doublings = min(replica.failures_in_a_row - 1, _LONGEST_DOUBLING)
        period = min(self._ejection_seconds * 2**doublings, self._max_ejection_seconds)
        replica.ejected_until = self._clock() + period
        self._ejections += 1
        replica.ejection_number = self._ejections
        replica.generation += 1
        UPSTREAM_EJECTIONS.labels(self.service, replica.url).inc()
        logger.warning(
            "replica %s of %s left out for %.1f s (%s; %d failure(s) in a row)",
            replica.url,
            self.service,
            period,
            reason,
            replica.failures_in_a_row,
        )


def balancers_for(
    service_urls: Mapping[str, Collection[str]],
    *,
    ejection_seconds: float,
    max_ejection_seconds: float,
) -> dict[str, Balancer]:
    """One balancer per service, by name."""
    return {
        service: Balancer(
            service,
            urls,
            ejection_seconds=ejection_seconds,
            max_ejection_seconds=max_ejection_seconds,
        )
        for service, urls in service_urls.items()
    }
