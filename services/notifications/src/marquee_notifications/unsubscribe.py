"""Signed one-click unsubscribe links (RFC 8058).

Every non-transactional message carries ``List-Unsubscribe: <…/unsubscribe?token=…>`` and
``List-Unsubscribe-Post: List-Unsubscribe=One-Click``: a mail client POSTs to the link and
the person is out of that kind of message, signed in or not. The token is
``<base64url(user id + "\\n" + preference)>.<base64url(HMAC-SHA256)>``: it names one
person and one preference and cannot be made for anyone else without the secret. It does
not expire (an unsubscribe link in an old message must keep working), and it can only
ever turn a preference off.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac

from marquee_platform.errors import InvalidInput

PREFERENCES = ("reminders", "announcements")


class InvalidUnsubscribeToken(InvalidInput):
    def __init__(self) -> None:
        super().__init__(
            "this unsubscribe link is not valid: use the link from the message as it is, or "
            "change your choices at GET/PUT /api/v1/notifications/preferences"
        )


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class UnsubscribeLinks:
    def __init__(self, *, secret: str, public_url: str) -> None:
        self._key = hashlib.sha256(b"marquee-unsubscribe:" + secret.encode()).digest()
        self.base = public_url.rstrip("/")

    def token(self, user_id: str, preference: str) -> str:
        assert preference in PREFERENCES, preference
        payload = f"{user_id}\n{preference}".encode()
        signature = hmac.new(self._key, payload, hashlib.sha256).digest()
        return f"{_b64(payload)}.{_b64(signature)}"

    def url(self, user_id: str, preference: str) -> str:
        return (
            f"{self.base}/api/v1/notifications/unsubscribe?token={self.token(user_id, preference)}"
        )

    def verify(self, token: str) -> tuple[str, str]:
        """The (user id, preference) the token was made for; InvalidUnsubscribeToken if
        it is malformed or was not signed with our secret."""
        try:
            payload_text, signature_text = token.split(".", 1)
            payload, signature = _unb64(payload_text), _unb64(signature_text)
            user_id, preference = payload.decode().split("\n", 1)
        except (ValueError, binascii.Error, UnicodeDecodeError):
            raise InvalidUnsubscribeToken() from None
        expected = hmac.new(self._key, payload, hashlib.sha256).digest()
        if not hmac.compare_digest(expected, signature) or preference not in PREFERENCES:
            raise InvalidUnsubscribeToken()
        return user_id, preference
