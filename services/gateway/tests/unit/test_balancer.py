"""The balancer's choices and ejections, on a fake clock: no network, milliseconds."""

from __future__ import annotations

import uuid
from collections.abc import Collection

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from prometheus_client import REGISTRY
from pydantic import ValidationError

from marquee_gateway.balancer import Balancer, Lease, Replica
from marquee_gateway.settings import GatewaySettings


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def balancer_of(
    count: int, clock: FakeClock, *, ejection: float = 1.0, max_ejection: float = 8.0
) -> Balancer:
    # A service name of its own, so the metrics of one test are not another's.
    service = f"svc-{uuid.uuid4().hex[:8]}"
    urls = [f"http://replica-{letter}" for letter in "abcdefgh"[:count]]
    return Balancer(
        service, urls, ejection_seconds=ejection, max_ejection_seconds=max_ejection, clock=clock
    )


def picked(balancer: Balancer, *, exclude: Collection[Replica] = ()) -> Replica:
    replica = balancer.pick(exclude=exclude)
    assert replica is not None
    return replica


def one_request(balancer: Balancer) -> str:
    """Pick, send and finish a request at once; the replica's URL."""
    lease = balancer.lease(picked(balancer))
    lease.record_success()
    lease.release()
    return lease.replica.url


def test_requests_to_an_idle_service_take_turns() -> None:
    balancer = balancer_of(3, FakeClock())
    urls = [one_request(balancer) for _ in range(6)]
    assert urls == ["http://replica-a", "http://replica-b", "http://replica-c"] * 2


def test_the_replica_with_fewest_outstanding_requests_is_picked() -> None:
    balancer = balancer_of(2, FakeClock())
    a, b = balancer.replicas
    held = balancer.lease(picked(balancer))  # a slow request (or a long stream)
    assert held.replica is a
    assert [one_request(balancer) for _ in range(3)] == [b.url] * 3
    assert balancer.lease(picked(balancer)).replica is b
    # One outstanding on each: a tie, so in turn (b had the last one).
    assert balancer.lease(picked(balancer)).replica is a
    assert one_request(balancer) == b.url, "two on a, one on b"
    held.release()
    assert one_request(balancer) == a.url, "one on each again: in turn"


def test_outstanding_requests_are_counted_once_per_lease_and_exported() -> None:
    balancer = balancer_of(1, FakeClock())
    replica = balancer.replicas[0]

    def gauge() -> float | None:
        return REGISTRY.get_sample_value(
            "marquee_gateway_upstream_outstanding",
            {"service": balancer.service, "replica": replica.url},
        )

    assert gauge() == 0
    leases = [balancer.lease(replica) for _ in range(3)]
    assert (replica.outstanding, gauge()) == (3, 3)
    leases[0].release()
    leases[0].release()  # a second close of the same answer changes nothing
    assert (replica.outstanding, gauge()) == (2, 2)
    for lease in leases[1:]:
        lease.release()
    assert (replica.outstanding, gauge()) == (0, 0)


def test_a_replica_that_cannot_be_reached_is_left_out_for_a_growing_while() -> None:
    clock = FakeClock()
    balancer = balancer_of(2, clock, ejection=1.0, max_ejection=4.0)
    a, b = balancer.replicas

    periods = []
    for _ in range(4):
        lease = balancer.lease(a)
        lease.record_failure("ConnectError")
        lease.release()
        periods.append(a.ejected_until - clock.now)
        assert [one_request(balancer) for _ in range(3)] == [b.url] * 3
        clock.advance(periods[-1])
    assert periods == [1.0, 2.0, 4.0, 4.0], "doubling, up to the cap"
    ejections = REGISTRY.get_sample_value(
        "marquee_gateway_upstream_ejections_total",
        {"service": balancer.service, "replica": a.url},
    )
    assert ejections == 4

    assert picked(balancer) is a, "the period is over: back in the rotation"
    trial = balancer.lease(a)
    trial.record_success()
    trial.release()
    assert a.failures_in_a_row == 0
    lease = balancer.lease(a)
    lease.record_failure("ConnectError")
    lease.release()
    assert a.ejected_until - clock.now == 1.0, "an answer starts the doubling over"


def test_a_returning_replica_gets_one_trial_request_at_a_time() -> None:
    clock = FakeClock()
    balancer = balancer_of(2, clock)
    a, b = balancer.replicas
    failed = balancer.lease(a)
    failed.record_failure("ConnectTimeout")
    failed.release()
    clock.advance(1.0)

    trial = balancer.lease(picked(balancer))
    assert trial.replica is a
    # While the trial is under way (a connect timeout takes seconds) the rest go to b.
    others = [balancer.lease(picked(balancer)) for _ in range(3)]
    assert [lease.replica for lease in others] == [b, b, b]
    trial.record_success()
    assert picked(balancer) is a, "it answered: an ordinary replica again"


def test_requests_already_sent_when_a_replica_was_ejected_do_not_count() -> None:
    clock = FakeClock()
    balancer = balancer_of(2, clock)
    a, _ = balancer.replicas
    first, second = balancer.lease(a), balancer.lease(a)
    first.record_failure("ConnectError")
    ejected_until = a.ejected_until
    second.record_failure("ConnectError")
    assert (a.failures_in_a_row, a.ejected_until) == (1, ejected_until)
    late = balancer.lease(a)
    second.record_success()  # an answer to a request sent before the ejection
    assert a.is_ejected(clock.now)
    late.record_success()  # an answer to one sent after it
    assert not a.is_ejected(clock.now)


def test_when_every_replica_is_ejected_the_one_ejected_longest_ago_is_still_tried() -> None:
    clock = FakeClock()
    balancer = balancer_of(3, clock)
    a, b, c = balancer.replicas
    for replica in (b, c, a):
        lease = balancer.lease(replica)
        lease.record_failure("ConnectError")
        lease.release()
    assert picked(balancer) is b
    assert balancer.pick(healthy_only=True) is None
    assert picked(balancer, exclude={b}) is c
    assert balancer.in_preference_order() == [b, c, a]


def test_replicas_already_tried_are_not_picked_again() -> None:
    balancer = balancer_of(2, FakeClock())
    a, b = balancer.replicas
    assert picked(balancer, exclude={a}) is b
    assert picked(balancer, exclude={a}) is b
    assert balancer.pick(exclude={a, b}) is None


def test_the_preference_order_puts_ejected_replicas_last() -> None:
    balancer = balancer_of(3, FakeClock())
    a, b, c = balancer.replicas
    lease = balancer.lease(a)
    lease.record_failure("ConnectError")
    assert balancer.in_preference_order() == [b, c, a]


steps = st.lists(
    st.tuples(
        st.sampled_from(["send", "send-healthy-only", "answer", "fail", "close", "wait"]),
        st.integers(min_value=0, max_value=100),
    ),
    max_size=60,
)


@settings(max_examples=200, deadline=None)
@given(steps)
def test_counts_stay_true_and_a_replica_is_always_found(steps: list[tuple[str, int]]) -> None:
    """Whatever happens to requests: each replica's count is its open requests, no
    ejection outlasts the cap, an available replica is never passed over for one that is
    not, and an ordinary pick always finds a replica."""
    clock = FakeClock()
    balancer = balancer_of(3, clock, ejection=0.5, max_ejection=4.0)
    open_leases: list[Lease] = []
    for action, number in steps:
        if action.startswith("send"):
            replica = balancer.pick(healthy_only=action == "send-healthy-only")
            any_available = any(r.is_available(clock.now) for r in balancer.replicas)
            if replica is None:
                assert not any_available
                continue
            if any_available:
                assert replica.is_available(clock.now), "an available replica was passed over"
            open_leases.append(balancer.lease(replica))
        elif action == "wait":
            clock.advance(number / 20)
        elif open_leases:
            lease = open_leases[number % len(open_leases)]
            if action == "answer":
                lease.record_success()
            elif action == "fail":
                lease.record_failure("ConnectError")
            else:
                lease.release()
                open_leases.remove(lease)
        for replica in balancer.replicas:
            assert replica.outstanding == sum(lease.replica is replica for lease in open_leases)
            assert replica.ejected_until - clock.now <= 4.0
        assert balancer.pick() is not None


def test_service_urls_take_one_url_or_a_list_of_replicas() -> None:
    settings = GatewaySettings(
        service_urls={"auth": "http://auth:8000", "search": ["http://s1:8000", "http://s2:8000"]}
    )
    assert settings.service_urls == {
        "auth": ["http://auth:8000"],
        "search": ["http://s1:8000", "http://s2:8000"],
    }
    assert GatewaySettings().service_urls["auth"] == ["http://127.0.0.1:8001"]


def test_service_urls_from_the_environment_in_either_form(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(
        "GATEWAY_SERVICE_URLS",
        '{"auth": "http://127.0.0.1:8001", '
        '"search": ["http://127.0.0.1:8003", "http://127.0.0.1:8103"]}',
    )
    assert GatewaySettings().service_urls == {
        "auth": ["http://127.0.0.1:8001"],
        "search": ["http://127.0.0.1:8003", "http://127.0.0.1:8103"],
    }


@pytest.mark.parametrize("urls", [[], ["http://s1:8000", "http://s1:8000"]])
def test_a_service_needs_distinct_replicas(urls: list[str]) -> None:
    with pytest.raises(ValidationError):
        GatewaySettings(service_urls={"search": urls})
