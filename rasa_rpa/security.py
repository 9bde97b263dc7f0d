"""Credentials bound to one job: signing secrets and bearer tokens.

Robots prove who they are in one of two ways:

* **Standard Webhooks signatures** (``webhook-id``, ``webhook-timestamp``,
  ``webhook-signature: v1,<base64 HMAC-SHA256 of "id.timestamp.body">``),
  signed and checked by :mod:`rasa_rpa_robot.signing`, which robots share.
  Each job gets its own secret, derived from the master key and the job id,
  so a robot holding job A's secret cannot sign for job B. Integration-wide
  secrets from ``callbacks.webhook_secrets`` are accepted too.
* **Bearer tokens** (a JWT) for robots that can only set a header. The token
  names the job, its conversation, an audience and an expiry.

Download links for files robots send (:mod:`rasa_rpa.files`) are signed
with a key of their own derived from the master key.

The same master key also mints short-lived **operator tokens** (another key,
another audience: never a job's), with which ``rasa-rpa doctor`` reads the
running server's own state, and **fingerprints** of the other credentials, so
the doctor can tell which of them differ from the server's without either
side ever sending one.

Comparisons are constant-time, and nothing here logs or returns a secret.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import secrets
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import jwt

from rasa_rpa.config import RpaConfig
from rasa_rpa.errors import AuthenticationFailed, ConfigError, Forbidden
from rasa_rpa_robot import signing
from rasa_rpa_robot.signing import SECRET_PREFIX, TOLERANCE, same_text, sign_webhook

__all__ = [
    "OPERATOR_AUDIENCE",
    "TOKEN_AUDIENCE",
    "JobCredentials",
    "JobKeys",
    "TokenClaims",
    "fingerprints",
    "keys_for",
    "load_or_create_master_key",
    "same_text",
    "sign_webhook",
    "verify_webhook",
]

TOKEN_AUDIENCE = "rasa-rpa:callback"
OPERATOR_AUDIENCE = "rasa-rpa:operator"
#: Longest an operator token may live (the doctor's last a minute).
MAX_OPERATOR_TTL = 600.0
#: Per-job secrets kept derived at once (a few hundred KB at most).
_SECRET_CACHE = 4096


def verify_webhook(
    secrets_: Iterable[str],
    headers: Mapping[str, str],
    body: bytes,
    *,
    tolerance: float = TOLERANCE,
    now: float | None = None,
) -> str:
    """Check a Standard Webhooks request; return its ``webhook-id``.

    The check itself is the robot distribution's (one copy, standard library
    only); here its refusal becomes the server's 401 with the same words.

    Raises:
        AuthenticationFailed: a missing header, a stale or future timestamp,
            or no matching signature.
    """
    try:
        return signing.verify_webhook(
            secrets_, headers, body, tolerance=tolerance, now=now
        )
    except signing.SignatureError as exc:
        raise AuthenticationFailed(str(exc)) from None


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
        self._operator_key = hmac.new(
            self._key, b"operator-key", hashlib.sha256
        ).digest()
        self._link_key = hmac.new(self._key, b"file-link-key", hashlib.sha256).digest()
        self._token_ttl = token_ttl
        # A batch robot calls back for the same job again and again: derive
        # its secret once. In memory only, bounded, cleared when full.
        self._secrets: dict[str, str] = {}

    def signing_secret(self, job_id: str) -> str:
        """The Standard Webhooks secret for ``job_id`` (derived, never stored)."""
        secret = self._secrets.get(job_id)
        if secret is None:
            raw = hmac.new(self._key, b"job-secret:" + job_id.encode(), hashlib.sha256)
            secret = SECRET_PREFIX + base64.b64encode(raw.digest()).decode()
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

    def mint_operator_token(self, *, ttl: float = 60.0) -> str:
        """A short-lived token for the server's operator routes (the doctor's)."""
        now = int(time.time())
        claims = {"aud": OPERATOR_AUDIENCE, "iat": now, "exp": now + int(ttl)}
        token: str = jwt.encode(claims, self._operator_key, algorithm="HS256")
        return token

    def verify_operator_token(self, token: str) -> None:
        """Check an operator token; AuthenticationFailed when it is not one of ours."""
        try:
            claims = jwt.decode(
                token,
                self._operator_key,
                algorithms=["HS256"],
                audience=OPERATOR_AUDIENCE,
                options={"require": ["exp", "aud", "iat"]},
            )
        except jwt.ExpiredSignatureError:
            raise AuthenticationFailed("the operator token has expired") from None
        except jwt.InvalidSignatureError:
            raise AuthenticationFailed(
                "the operator token is not valid: it was minted with another "
                "callbacks.secret (or .rasa-rpa/master.key) than this server's"
            ) from None
        except (jwt.InvalidTokenError, UnicodeError):
            raise AuthenticationFailed(
                "send 'Authorization: Bearer <admin token>' or run `rasa-rpa doctor`"
            ) from None
        # A leaked token must not open the routes for good: however it was
        # minted, it lives at most MAX_OPERATOR_TTL.
        if float(claims["exp"]) - float(claims["iat"]) > MAX_OPERATOR_TTL:
            raise AuthenticationFailed("the operator token lives too long")

    def link_signature(self, file_id: str, expires: int) -> str:
        """The signature of a download link: binds the file and the expiry.

        A key of its own: a link never helps forge a token or a callback.
        URL-safe base64 without padding (43 characters).
        """
        message = f"file:{file_id}:{expires}".encode("utf-8", "surrogateescape")
        digest = hmac.new(self._link_key, message, hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()

    def fingerprint(self, key: str, value: str) -> str:
        """8 hex characters that tell two values of ``key`` apart, and nothing more.

        Keyed with the master key: whoever reads a fingerprint without that
        key learns nothing about the value, not even by guessing weak ones.
        """
        message = f"fingerprint:{key}\x00{value}".encode()
        return hmac.new(self._key, message, hashlib.sha256).hexdigest()[:8]

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


def fingerprints(config: RpaConfig, keys: JobKeys) -> dict[str, str | None]:
    """A fingerprint of each credential in ``config`` by its key; None when unset.

    A provider's fingerprint covers all its options (URLs, ids and secrets
    alike), so a difference there means "not the same vendor account".
    """
    single = {
        "rasa.token": config.rasa.token,
        "rasa.jwt_secret": config.rasa.jwt_secret,
        "admin.token": config.admin.token,
    }
    found = {
        key: keys.fingerprint(key, value.get_secret_value()) if value else None
        for key, value in single.items()
    }
    webhook = "\x00".join(
        sorted(s.get_secret_value() for s in config.callbacks.webhook_secrets)
    )
    key = "callbacks.webhook_secrets"
    found[key] = keys.fingerprint(key, webhook) if webhook else None
    # The whole URL: a token or password in it is shown to nobody (the
    # diagnostics show it without them), but a difference is still found.
    found["rasa.url"] = keys.fingerprint("rasa.url", config.rasa.url)
    for name, settings in sorted(config.providers.items()):
        options = json.dumps(settings.model_dump(), sort_keys=True, default=str)
        found[f"providers.{name}"] = keys.fingerprint(f"providers.{name}", options)
    return found


def keys_for(config: RpaConfig) -> JobKeys:
    """The key maker for ``config``: the action server and the CLI share it."""
    secret = config.callbacks.secret
    master = load_or_create_master_key(
        secret.get_secret_value() if secret else None, config.state_dir
    )
    return JobKeys(master, token_ttl=config.callbacks.token_ttl)
