"""One async function per command. Dependencies come as keyword arguments; nothing here
commits (the caller owns the transaction) and every event goes through the outbox.

One module per part of the service; this package offers them all, so callers write
``from marquee_auth import handlers`` and ``handlers.sign_in(...)``.
"""

from __future__ import annotations

from marquee_auth.handlers.passwords import change_password, request_password_reset, reset_password
from marquee_auth.handlers.profile import (
    change_email,
    delete_account,
    export_account,
    get_profile,
    update_profile,
)
from marquee_auth.handlers.registration import register, resend_verification, verify_email
from marquee_auth.handlers.roles import change_role, create_admin
from marquee_auth.handlers.sessions import (
    RefreshRefused,
    TokenPair,
    refresh_session,
    sign_in,
    sign_out,
    sign_out_everywhere,
)
from marquee_auth.handlers.signing_keys import (
    KeyMaintenance,
    maintain_signing_keys,
    prune_expired,
    rotate_signing_keys,
)

__all__ = [
    "KeyMaintenance",
    "RefreshRefused",
    "TokenPair",
    "change_email",
    "change_password",
    "change_role",
    "create_admin",
    "delete_account",
    "export_account",
    "get_profile",
    "maintain_signing_keys",
    "prune_expired",
    "refresh_session",
    "register",
    "request_password_reset",
    "resend_verification",
    "reset_password",
    "rotate_signing_keys",
    "sign_in",
    "sign_out",
    "sign_out_everywhere",
    "update_profile",
    "verify_email",
]
