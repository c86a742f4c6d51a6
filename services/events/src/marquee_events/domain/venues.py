"""Venues: where they are, how many they hold, and when their seating map is frozen."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from marquee_events.domain.problems import Problem, check_name, invalid
from marquee_events.domain.seating import MAX_CAPACITY, MAX_NAME_LENGTH
from marquee_events.iso_codes import COUNTRY_CODES
from marquee_platform.errors import Conflict

MAX_ADDRESS_LENGTH = 300
_TIME_ZONE_NAME = re.compile(r"[A-Za-z0-9_+-]+(?:/[A-Za-z0-9_+-]+)*")


@lru_cache(maxsize=1024)
def is_time_zone(name: str) -> bool:
    """Whether ``name`` is an IANA time zone this machine knows (``Europe/Paris``)."""
    if not _TIME_ZONE_NAME.fullmatch(name):
        return False
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        return False
    return True


@dataclass(frozen=True, slots=True)
class VenueDetails:
    name: str
    address: str
    city: str
    country: str
    latitude: float
    longitude: float
    time_zone: str
    capacity: int


def validate_venue_details(details: VenueDetails) -> VenueDetails:
    """Normalize a venue's fields (trimmed, country upper case) or raise naming each bad one."""
    problems: list[Problem] = []
    check_name(problems, "name", details.name, what="name", max_length=MAX_NAME_LENGTH)
    check_name(problems, "address", details.address, what="address", max_length=MAX_ADDRESS_LENGTH)
    check_name(problems, "city", details.city, what="city", max_length=MAX_NAME_LENGTH)
    country = details.country.strip().upper()
    if country not in COUNTRY_CODES:
        problems.append(
            Problem(
                "country",
                f"'{details.country[:10]}' is not an ISO 3166-1 alpha-2 country code "
                "(two letters, such as FR or US)",
            )
        )
    if not -90.0 <= details.latitude <= 90.0:  # also false for NaN
        problems.append(
            Problem("location.latitude", f"{details.latitude} is not between -90 and 90")
        )
    if not -180.0 <= details.longitude <= 180.0:
        problems.append(
            Problem("location.longitude", f"{details.longitude} is not between -180 and 180")
        )
    if not is_time_zone(details.time_zone):
        problems.append(
            Problem(
                "time_zone",
                f"'{details.time_zone[:60]}' is not an IANA time zone (such as Europe/Paris "
                "or America/New_York)",
            )
        )
    if not 1 <= details.capacity <= MAX_CAPACITY:
        problems.append(
            Problem("capacity", f"{details.capacity} must be between 1 and {MAX_CAPACITY}")
        )
    if problems:
        raise invalid(problems, what="venue")
    return replace(
        details,
        name=details.name.strip(),
        address=details.address.strip(),
        city=details.city.strip(),
        country=country,
    )


# ---- venues in use ----------------------------------------------------------------------


class SeatingMapInUse(Conflict):
    code = "seating-map-in-use"
    title = "The seating map is in use"


def check_seating_replaceable(live_event_names: Sequence[str]) -> None:
    """A venue's seating map (and so its capacity) is frozen while one of its events is
    published, on sale or sold out: inventory was built from it."""
    if live_event_names:
        shown = ", ".join(f"'{name}'" for name in live_event_names[:5])
        more = f" and {len(live_event_names) - 5} more" if len(live_event_names) > 5 else ""
        raise SeatingMapInUse(
            f"The seating map and capacity can't change while events at this venue are "
            f"published or on sale ({shown}{more}); wait until they are completed or "
            "cancelled, or create a new venue.",
            events=list(live_event_names[:50]),
        )
