"""Which service answers a public path: the gateway's routing table.

A path names its service by default: ``/api/v1/<service>/<rest>`` goes to ``<service>``
at the same path. A few public paths, chosen by the product, live outside their service's
prefix; :data:`PUBLIC_ROUTES` sends each to the service that serves it. Its rules are
checked in order, before the default rule, and the first that matches wins:

1. ``/api/v1/orders`` → booking
2. ``/api/v1/users/me/orders`` → booking
3. ``/api/v1/users/me/tickets`` → booking
4. ``/api/v1/tickets`` → booking
5. ``/api/v1/events/{event_id}/(orders|orders.csv|sales-settings|staff|promo-codes|``
   ``checkins|scanner-kit)`` → booking (an event's orders, sales settings, door staff,
   promo codes and check-in)
6. the default rule: ``/api/v1/<service>`` → ``<service>``

A rule is a path template matched one segment at a time: a literal segment, ``{name}``
(any one segment) or ``(a|b|c)`` (one of these). A rule covers its path and everything
below it (``/api/v1/orders`` also ``/api/v1/orders/{order_id}/refunds``), never a longer
segment (``/api/v1/orders-archive`` goes by the default rule). Everything else under
``/api/v1/events/`` (the event itself, its ticket types, reviews, status…) keeps going to
events by the default rule.

Every request is matched, so the rules are compiled into one regular expression whose
alternatives keep the table's order.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

API_PREFIX = "/api/v1/"

_SEGMENT_PARAMETER = re.compile(r"\{[A-Za-z_][A-Za-z0-9_]*\}")
_SEGMENT_CHOICE = re.compile(r"\(([^()/|]+(?:\|[^()/|]+)*)\)")
_SEGMENT_LITERAL = re.compile(r"[^{}()|/]+")


@dataclass(frozen=True, slots=True)
class RouteRule:
    """Paths matching ``template`` (and everything below them) go to ``service``."""

    template: str
    service: str


@dataclass(frozen=True, slots=True)
class Route:
    """Where a request goes: the service's name and the path to ask it for."""

    service: str
    path: str


PUBLIC_ROUTES: tuple[RouteRule, ...] = (
    RouteRule("/api/v1/orders", "booking"),
    RouteRule("/api/v1/users/me/orders", "booking"),
    RouteRule("/api/v1/users/me/tickets", "booking"),
    RouteRule("/api/v1/tickets", "booking"),
    RouteRule(
        "/api/v1/events/{event_id}/"
        "(orders|orders.csv|sales-settings|staff|promo-codes|checkins|scanner-kit)",
        "booking",
    ),
)
"""Public paths outside their service's ``/api/v1/<service>/`` prefix (see above)."""


def _segment_pattern(segment: str, template: str) -> str:
    if _SEGMENT_PARAMETER.fullmatch(segment):
        return "[^/]+"
    choice = _SEGMENT_CHOICE.fullmatch(segment)
    if choice:
        return "(?:" + "|".join(re.escape(option) for option in choice[1].split("|")) + ")"
    if _SEGMENT_LITERAL.fullmatch(segment):
        return re.escape(segment)
    raise ValueError(
        f"the route {template!r} has a segment {segment!r} that is neither a literal, "
        "a {parameter} nor a (choice|of|literals)"
    )


def _rule_pattern(template: str) -> str:
    if not template.startswith(API_PREFIX):
        raise ValueError(f"the route {template!r} must start with {API_PREFIX}")
    segments = template.removeprefix("/").split("/")
    return "/" + "/".join(_segment_pattern(segment, template) for segment in segments)


class RoutingTable:
    """The rules of a table, checked in order, then the default ``/api/v1/<service>`` rule."""

    __slots__ = ("_regex", "_services", "rules")

    def __init__(self, rules: Sequence[RouteRule]) -> None:
        self.rules = tuple(rules)
        self._services = tuple(rule.service for rule in self.rules)
        # One capturing group per rule (the rest are non-capturing), so the group that
        # matched says which rule did; alternatives are tried left to right.
        alternatives = "|".join(f"({_rule_pattern(rule.template)})" for rule in self.rules)
        self._regex = re.compile(rf"(?:{alternatives})(?:/.*)?\Z", re.DOTALL) if rules else None

    def resolve(self, path: str) -> Route | None:
        """Where ``path`` goes, or ``None`` if it is not under ``/api/v1/<something>``."""
        if self._regex is not None:
            matched = self._regex.match(path)
            if matched is not None and matched.lastindex is not None:
                return Route(self._services[matched.lastindex - 1], path)
        if not path.startswith(API_PREFIX):
            return None
        service, _, rest = path.removeprefix(API_PREFIX).partition("/")
        if not service:
            return None
        # As ever: the service's own prefix, then the rest (``/api/v1/events/`` asks
        # events for ``/api/v1/events``).
        return Route(service, f"{API_PREFIX}{service}/{rest}" if rest else f"{API_PREFIX}{service}")

    def service_for(self, path: str) -> str | None:
        """The service ``path`` (a path or an OpenAPI path template) is routed to."""
        route = self.resolve(path)
        return route.service if route else None


DEFAULT_ROUTING = RoutingTable(PUBLIC_ROUTES)
