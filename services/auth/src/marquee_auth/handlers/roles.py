"""Roles: admins grant and revoke organizer; operators make admins."""

from __future__ import annotations

import uuid
from datetime import datetime

from marquee_auth.domain import GRANTABLE_ROLES, check_password, field_error, normalize_email
from marquee_auth.handlers.shared import ordered_roles
from marquee_auth.models import User
from marquee_auth.passwords import PasswordHasher
from marquee_auth.repository import UserRepository
from marquee_contracts.auth import ROLE_CHANGED, USER_REGISTERED, RoleChanged, UserRegistered
from marquee_platform.clock import Clock
from marquee_platform.errors import Gone, NotFound
from marquee_platform.outbox import Outbox
from marquee_platform.security import Role


async def change_role(
    user_id: uuid.UUID,
    role: str,
    *,
    grant: bool,
    changed_by: uuid.UUID | None,
    users: UserRepository,
    outbox: Outbox,
    clock: Clock,
) -> User:
    """Grant or revoke ``role`` (idempotent: no event when nothing changes). The user's
    tokens carry the new roles from their next refresh."""
    if role not in GRANTABLE_ROLES:
        grantable = ", ".join(sorted(GRANTABLE_ROLES))
        raise field_error(
            "role",
            [
                f"Only these roles can be granted or revoked here: {grantable}. "
                "Admins are made by an operator with 'marquee auth create-admin'."
            ],
            code="role-not-grantable",
        )
    user = await users.get(user_id, for_update=True)
    if user is None:
        raise NotFound(f"There is no user {user_id}.", code="user-not-found")
    if user.deleted_at is not None:
        raise Gone(f"User {user_id} deleted their account.", code="account-deleted")
    return await _set_role(
        user, role, grant=grant, changed_by=changed_by, outbox=outbox, now=clock()
    )


async def _set_role(
    user: User,
    role: str,
    *,
    grant: bool,
    changed_by: uuid.UUID | None,
    outbox: Outbox,
    now: datetime,
) -> User:
    roles = set(user.roles)
    if (role in roles) == grant:
        return user
    roles = roles | {role} if grant else roles - {role}
    user.roles = ordered_roles(roles)
    user.updated_at = now
    await outbox.add(
        ROLE_CHANGED.name,
        RoleChanged(
            user_id=user.id,
            role=role,
            change="granted" if grant else "revoked",
            roles=user.roles,
            changed_by=changed_by,
            changed_at=now,
        ),
        key=user.id,
    )
    return user


async def create_admin(
    email: str,
    password: str,
    *,
    users: UserRepository,
    outbox: Outbox,
    hasher: PasswordHasher,
    clock: Clock,
) -> tuple[User, bool]:
    """Make ``email`` an admin: a new, verified account, or an existing one promoted (its
    password is then left alone). Returns the user and whether it was created."""
    email = normalize_email(email)
    now = clock()
    await users.lock_email(email)
    user = await users.by_email(email, for_update=True)
    if user is not None:
        await _set_role(user, Role.ADMIN, grant=True, changed_by=None, outbox=outbox, now=now)
        return user, False
    check_password(password, email=email)
    user = User(
        id=uuid.uuid4(),
        email=email,
        email_verified_at=now,  # an operator vouches for the address
        password_hash=await hasher.hash(password),
        password_changed_at=now,
        roles=[Role.CUSTOMER.value],
        created_at=now,
        updated_at=now,
    )
    users.add(user)
    await users.flush()
    await outbox.add(
        USER_REGISTERED.name,
        UserRegistered(user_id=user.id, email=email, locale=None, registered_at=now),
        key=user.id,
    )
    await _set_role(user, Role.ADMIN, grant=True, changed_by=None, outbox=outbox, now=now)
    return user, True
