"""Standard Webhooks signatures, shared by robots (sign) and the server (verify).

``webhook-signature: v1,<base64 HMAC-SHA256 of "id.timestamp.body">`` with
``webhook-id`` and ``webhook-timestamp`` beside it, as the Standard Webhooks
specification says. Standard library only: a robot machine installs
``requests`` and this package, nothing of the server. The server wraps
:func:`verify_webhook` to turn :class:`SignatureError` into its 401.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from collections.abc import Iterable, Mapping

__all__ = [
    "SECRET_PREFIX",
    "TOLERANCE",
    "SignatureError",
    "SignedBody",
    "same_text",
    "secret_bytes",
    "sign_pieces",
    "sign_webhook",
    "signature_headers",
    "verify_webhook",
]

SECRET_PREFIX = "whsec_"
#: How far a timestamp may lie from now (seconds), as the specification advises.
TOLERANCE = 300.0


class SignatureError(ValueError):
    """A request's signature headers are missing, malformed, stale or wrong."""


def secret_bytes(secret: str) -> bytes:
    """Standard Webhooks secrets are ``whsec_`` + base64; plain strings work too."""
    if secret.startswith(SECRET_PREFIX):
        return base64.b64decode(secret[len(SECRET_PREFIX) :])
    return secret.encode()


def same_text(a: str, b: str) -> bool:
    """Constant-time equality that also copes with non-ASCII header bytes.

    Sanic hands header bytes it cannot decode over as surrogates, and
    ``hmac.compare_digest`` refuses non-ASCII ``str``: compare bytes.
    """
    return hmac.compare_digest(
        a.encode("utf-8", "surrogateescape"), b.encode("utf-8", "surrogateescape")
    )


def _is_utf8(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def sign_webhook(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    """The ``webhook-signature`` value for ``body`` (one ``v1,`` entry)."""
    to_sign = f"{msg_id}.{timestamp}.".encode() + body
    digest = hmac.new(secret_bytes(secret), to_sign, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def sign_pieces(
    secret: str, msg_id: str, timestamp: int, pieces: Iterable[bytes]
) -> str:
    """:func:`sign_webhook` for a body read in pieces (a file, never whole)."""
    mac = hmac.new(
        secret_bytes(secret), f"{msg_id}.{timestamp}.".encode(), hashlib.sha256
    )
    for piece in pieces:
        mac.update(piece)
    return "v1," + base64.b64encode(mac.digest()).decode()


def signature_headers(
    secret: str, msg_id: str, body: bytes, *, now: float | None = None
) -> dict[str, str]:
    """The three headers that sign ``body``, stamped with the current time."""
    stamp = int(time.time() if now is None else now)
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(stamp),
        "webhook-signature": sign_webhook(secret, msg_id, stamp, body),
    }


def verify_webhook(
    secrets_: Iterable[str],
    headers: Mapping[str, str],
    body: bytes,
    *,
    tolerance: float = TOLERANCE,
    now: float | None = None,
) -> str:
    """Check a Standard Webhooks request; return its ``webhook-id``.

    Any of ``secrets_`` may have signed it, and the header may carry several
    space-separated signatures (secret rotation).

    Raises:
        SignatureError: a missing header, a stale or future timestamp, or no
            matching signature. Its message names the problem, never a secret.
    """
    check = SignedBody(secrets_, headers, tolerance=tolerance, now=now)
    check.update(body)
    return check.verify()


class SignedBody:
    """The same check for a body that arrives in pieces (a file upload).

    The headers are checked at once (present, UTF-8, timestamp in the
    window), so a stale or unsigned request is refused before its body is
    read; the body is fed to :meth:`update` as it arrives, and
    :meth:`verify` says whether any secret signed it all.

    Raises:
        SignatureError: as :func:`verify_webhook`.
    """

    def __init__(
        self,
        secrets_: Iterable[str],
        headers: Mapping[str, str],
        *,
        tolerance: float = TOLERANCE,
        now: float | None = None,
    ) -> None:
        msg_id = headers.get("webhook-id")
        stamp = headers.get("webhook-timestamp")
        signature = headers.get("webhook-signature")
        if not (msg_id and stamp and signature):
            raise SignatureError(
                "webhook-id, webhook-timestamp and webhook-signature headers are "
                "required"
            )
        if not all(_is_utf8(value) for value in (msg_id, stamp, signature)):
            # Sanic hands header bytes that are not UTF-8 on as surrogates, and
            # the id is signed as UTF-8: no genuine sender can have signed them.
            raise SignatureError("webhook headers must be UTF-8 text")
        try:
            timestamp = int(stamp)
        except ValueError:
            raise SignatureError("webhook-timestamp must be unix seconds") from None
        current = time.time() if now is None else now
        if abs(current - timestamp) > tolerance:
            raise SignatureError("webhook-timestamp is outside the allowed window")
        self.msg_id = msg_id
        self._offered: list[str] = []
        for entry in signature.split():
            version, _, value = entry.partition(",")
            if version == "v1" and value:
                self._offered.append(value)
        prefix = f"{msg_id}.{timestamp}.".encode()
        self._macs = [
            hmac.new(secret_bytes(secret), prefix, hashlib.sha256)
            for secret in secrets_
        ]

    def update(self, data: bytes) -> None:
        """Feed the next piece of the body."""
        for mac in self._macs:
            mac.update(data)

    def verify(self) -> str:
        """The ``webhook-id`` once the whole body is fed, if a secret signed it."""
        for mac in self._macs:
            expected = base64.b64encode(mac.digest()).decode()
            if any(same_text(expected, value) for value in self._offered):
                return self.msg_id
        raise SignatureError("webhook-signature does not match")
