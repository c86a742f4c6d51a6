"""Who may do what: organizers manage their own venues and events, admins anything."""

from __future__ import annotations

from dataclasses import dataclass

from marquee_platform.errors import PermissionDenied


@dataclass(frozen=True, slots=True)
class Actor:
    """Who is asking, as the domain needs to know it."""

    user_id: str
    is_organizer: bool = False
    is_admin: bool = False


def authorize_management(actor: Actor, *, owner_id: str | None, action: str) -> None:
    """Let organizers manage their own things and admins anything; refuse everyone else.

    ``action`` says what was tried, in words ("edit event 'Rock night'"), so the refusal
    names it. ``owner_id`` None means there is no owner yet (creating something).
    """
    if actor.is_admin:
        return
    if not actor.is_organizer:
        raise PermissionDenied(
            f"You can't {action}: that needs the organizer role, and your account doesn't have it.",
            code="organizer-role-required",
            action=action,
        )
    if owner_id is not None and owner_id != actor.user_id:
        raise PermissionDenied(
            f"You can't {action}: it belongs to another organizer. Only its organizer or an "
            "admin can do that.",
            code="not-the-owner",
            action=action,
        )


def can_manage(actor: Actor | None, owner_id: str) -> bool:
    return actor is not None and (actor.is_admin or actor.user_id == owner_id)
