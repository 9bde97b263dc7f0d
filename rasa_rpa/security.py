"""Credentials bound to one job: signing secrets and bearer tokens.

Robots prove who they are in one of two ways:

* **Standard Webhooks signatures** (``webhook-id``, ``webhook-timestamp``,
  ``webhook-signature: v1,<base64 HMAC-SHA256 of "id.timestamp.body">``).
  Each job gets its own secret, derived from the master key and the job id,
  so a robot holding job A's secret cannot sign for job B. Integration-wide
  secrets from ``callbacks.webhook_secrets`` are accepted too.
* **Bearer tokens** (a JWT) for robots that can only set a header. The token
  names the job, its conversation, an audience and an expiry.

Comparisons are constant-time, and nothing here logs or returns a secret.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import jwt

from rasa_rpa.config import RpaConfig
from rasa_rpa.errors import AuthenticationFailed, ConfigError, Forbidden

__all__ = [
    "TOKEN_AUDIENCE",
    "JobCredentials",
    "JobKeys",
    "TokenClaims",
    "keys_for",
    "load_or_create_master_key",
    "same_text",
    "sign_webhook",
    "verify_webhook",
]

TOKEN_AUDIENCE = "rasa-rpa:callback"
#: Per-job secrets kept derived at once (a few hundred KB at most).
_SECRET_CACHE = 4096
_SECRET_PREFIX = "whsec_"


def _secret_bytes(secret: str) -> bytes:
    """Standard Webhooks secrets are ``whsec_`` + base64; plain strings work too."""
    if secret.startswith(_SECRET_PREFIX):
        return base64.b64decode(secret[len(_SECRET_PREFIX) :])
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
    digest = hmac.new(_secret_bytes(secret), to_sign, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def verify_webhook(
    secrets_: Iterable[str],
    headers: Mapping[str, str],
    body: bytes,
    *,
    tolerance: float = 300.0,
    now: float | None = None,
) -> str:
    """Check a Standard Webhooks request; return its ``webhook-id``.

    Any of ``secrets_`` may have signed it, and the header may carry several
    space-separated signatures (secret rotation). Raises AuthenticationFailed
    on a missing header, a stale or future timestamp, or no matching signature.
    """
    msg_id = headers.get("webhook-id")
    stamp = headers.get("webhook-timestamp")
    signature = headers.get("webhook-signature")
    if not (msg_id and stamp and signature):
        raise AuthenticationFailed(
            "webhook-id, webhook-timestamp and webhook-signature headers are required"
        )
    if not all(_is_utf8(value) for value in (msg_id, stamp, signature)):
        # Sanic hands header bytes that are not UTF-8 on as surrogates, and
        # the id is signed as UTF-8: no genuine sender can have signed them.
        raise AuthenticationFailed("webhook headers must be UTF-8 text")
    try:
        timestamp = int(stamp)
    except ValueError:
        raise AuthenticationFailed("webhook-timestamp must be unix seconds") from None
    current = time.time() if now is None else now
    if abs(current - timestamp) > tolerance:
        raise AuthenticationFailed("webhook-timestamp is outside the allowed window")
    offered = []
    for entry in signature.split():
        version, _, value = entry.partition(",")
        if version == "v1" and value:
            offered.append(value)
    for secret in secrets_:
        expected = sign_webhook(secret, msg_id, timestamp, body)[3:]
        if any(same_text(expected, value) for value in offered):
            return msg_id
    raise AuthenticationFailed("webhook-signature does not match")


@dataclass(frozen=True)
class TokenClaims:
    """What a verified per-job token says."""

    job_id: str
    conversation_id: str
    expires_at: float


@dataclass(frozen=True)
class JobCredentials:
    """Everything a robot needs to call back for one job."""

    job_id: str
    events_url: str
    signing_secret: str
    token: str


class JobKeys:
    """Mints and checks per-job credentials from one master key."""

    def __init__(self, master_key: str, *, token_ttl: float = 86400.0) -> None:
        if len(master_key) < 16:
            raise ValueError("the master key must be at least 16 characters")
        self._key = master_key.encode()
        #: Kept so the runtime can hide it from logs; never logged itself.
        self.master_key = master_key
        # Separate 32-byte keys for tokens and secrets: one never helps forge the other.
        self._token_key = hmac.new(self._key, b"token-key", hashlib.sha256).digest()
        self._token_ttl = token_ttl
        # A batch robot calls back for the same job again and again: derive
        # its secret once. In memory only, bounded, cleared when full.
        self._secrets: dict[str, str] = {}

    def signing_secret(self, job_id: str) -> str:
        """The Standard Webhooks secret for ``job_id`` (derived, never stored)."""
        secret = self._secrets.get(job_id)
        if secret is None:
            raw = hmac.new(self._key, b"job-secret:" + job_id.encode(), hashlib.sha256)
            secret = _SECRET_PREFIX + base64.b64encode(raw.digest()).decode()
            if len(self._secrets) >= _SECRET_CACHE:
                self._secrets.clear()
            self._secrets[job_id] = secret
        return secret

    def mint_token(
        self, job_id: str, conversation_id: str, *, ttl: float | None = None
    ) -> str:
        """A bearer token good for ``job_id`` in ``conversation_id`` only."""
        now = int(time.time())
        claims = {
            "sub": job_id,
            "conv": conversation_id,
            "aud": TOKEN_AUDIENCE,
            "iat": now,
            "exp": now + int(ttl if ttl is not None else self._token_ttl),
        }
        token: str = jwt.encode(claims, self._token_key, algorithm="HS256")
        return token

    def verify_token(self, token: str, job_id: str) -> TokenClaims:
        """Check ``token`` and that it was minted for ``job_id``."""
        claims = self.identify(token)
        if not same_text(claims.job_id, job_id):
            raise Forbidden("this token belongs to another job")
        return claims

    def identify(self, token: str) -> TokenClaims:
        """Check ``token`` and say which job it opens (for callers that name no job)."""
        try:
            claims = jwt.decode(
                token,
                self._token_key,
                algorithms=["HS256"],
                audience=TOKEN_AUDIENCE,
                options={"require": ["sub", "conv", "exp", "aud"]},
            )
        except jwt.ExpiredSignatureError:
            raise AuthenticationFailed("the job token has expired") from None
        except (jwt.InvalidTokenError, UnicodeError):  # forged, or not even ASCII
            raise AuthenticationFailed("the job token is not valid") from None
        return TokenClaims(
            str(claims["sub"]), str(claims["conv"]), float(claims["exp"])
        )

    def credentials(
        self, job_id: str, conversation_id: str, public_url: str
    ) -> JobCredentials:
        """The bundle handed to a provider when it starts ``job_id``."""
        return JobCredentials(
            job_id=job_id,
            events_url=f"{public_url.rstrip('/')}/rpa/v1/jobs/{job_id}/events",
            signing_secret=self.signing_secret(job_id),
            token=self.mint_token(job_id, conversation_id),
        )


def load_or_create_master_key(configured: str | None, state_dir: Path) -> str:
    """The configured key, or one generated once and kept in the state directory.

    A generated key survives restarts, so tokens handed to running robots stay
    valid; the file is created readable by its owner only.
    """
    if configured:
        return configured
    path = state_dir / "master.key"
    if path.exists():
        return _read_key(path)
    state_dir.mkdir(parents=True, exist_ok=True)
    key = secrets.token_urlsafe(32)
    try:
        # O_EXCL: two workers starting together agree on whichever key won.
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return _read_key(path)
    with os.fdopen(fd, "w") as file:
        file.write(key)
    return key


def _read_key(path: Path, attempts: int = 50) -> str:
    """The key another worker is writing right now (wait for it briefly)."""
    for _ in range(attempts):
        key = path.read_text().strip()
        if key:
            return key
        time.sleep(0.02)
    raise ConfigError(
        str(path),
        "",
        "the master key file is empty",
        "delete it (a new key is made) or set callbacks.secret",
    )


def keys_for(config: RpaConfig) -> JobKeys:
    """The key maker for ``config``: the action server and the CLI share it."""
    secret = config.callbacks.secret
    master = load_or_create_master_key(
        secret.get_secret_value() if secret else None, config.state_dir
    )
    return JobKeys(master, token_ttl=config.callbacks.token_ttl)
