"""Who is calling: roles and the verified principal (no web framework, no crypto).

Domain code (auth's own included) imports :class:`Role` from here, so it is defined once.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum


class Role(StrEnum):
    CUSTOMER = "customer"
    ORGANIZER = "organizer"
    ADMIN = "admin"


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling, as proven by a verified access token."""

    user_id: str
    roles: frozenset[Role]
    token_id: str
    expires_at: datetime
    issued_at: datetime | None = None

    @property
    def is_admin(self) -> bool:
        return Role.ADMIN in self.roles

    def has_role(self, role: Role | str) -> bool:
        """Whether the token carries ``role`` itself (admin does not imply other roles here;
        :func:`require_roles` is where admin is let through everything)."""
        return Role(role) in self.roles


RevocationCheck = Callable[[Principal], Awaitable[bool]]
"""``async def is_revoked(principal) -> bool``: e.g. the user was deleted after sign-in."""
