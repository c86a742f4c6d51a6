"""FastAPI dependencies: the caller, roles required, ownership."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from marquee_platform.errors import PermissionDenied, Unauthenticated
from marquee_platform.security.principal import Principal, Role
from marquee_platform.security.verification import TokenVerifier, _invalid

_bearer_scheme = HTTPBearer(
    auto_error=False,
    description="An access token from the auth service: `Authorization: Bearer <token>`.",
)


def _verifier_of(request: Request) -> TokenVerifier:
    verifier: TokenVerifier | None = getattr(request.app.state, "token_verifier", None)
    if verifier is None:
        raise RuntimeError(
            "no app.state.token_verifier; build the app with create_service_app "
            "(its lifespan creates one) or set it in the test"
        )
    return verifier


async def _optional_user(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer_scheme)],
) -> Principal | None:
    """The caller if they sent a token; a token that is sent must be valid.

    A bad token is rejected even where signing in is optional, so a client with an expired
    token learns to refresh instead of silently seeing the anonymous view.
    """
    if credentials is None:
        if request.headers.get("authorization"):
            raise _invalid(
                "The Authorization header must be 'Bearer <access token>'; "
                "other schemes are not accepted."
            )
        request.state.principal = None
        return None
    principal = await _verifier_of(request).verify(credentials.credentials)
    request.state.principal = principal
    return principal


async def _current_user(
    principal: Annotated[Principal | None, Depends(_optional_user)],
) -> Principal:
    if principal is None:
        raise Unauthenticated(
            "Sign in first: send 'Authorization: Bearer <access token>' with this request.",
            code="authentication-required",
        )
    return principal


OptionalUser = Annotated[Principal | None, Depends(_optional_user)]
CurrentUser = Annotated[Principal, Depends(_current_user)]


def require_roles(*roles: Role | str) -> Callable[[Principal], Awaitable[Principal]]:
    """A dependency letting through callers with any of ``roles`` (admins always).

    Use as ``dependencies=[Depends(require_roles("organizer"))]`` or as a parameter
    ``organizer: Annotated[Principal, Depends(require_roles(Role.ORGANIZER))]``.
    A misspelt role fails at import time, not at request time.
    """
    if not roles:
        raise ValueError("require_roles needs at least one role")
    wanted = frozenset(Role(role) for role in roles)
    wanted_text = " or ".join(sorted(wanted))

    async def require(principal: CurrentUser) -> Principal:
        if principal.is_admin or principal.roles & wanted:
            return principal
        have = ", ".join(sorted(principal.roles)) or "no roles"
        raise PermissionDenied(
            f"This needs the {wanted_text} role; your account has {have}. "
            "Ask an admin if you need it."
        )

    require.__name__ = f"require_{'_or_'.join(sorted(wanted))}"
    return require


def ensure_owner(principal: Principal, owner_id: object, *, what: str) -> None:
    """Refuse unless ``principal`` owns the thing (``owner_id``) or is an admin.

    Services call this after loading the thing, whatever the gateway already checked.
    """
    if principal.is_admin or str(owner_id) == principal.user_id:
        return
    raise PermissionDenied(f"You can only change your own {what}.")
