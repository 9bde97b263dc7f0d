"""UiPath's options and its token request (client credentials or a refresh token).

Split from :mod:`rasa_rpa.providers.uipath` so that module keeps the jobs;
the caching, renewal and 401 replay are :class:`~.auth.TokenAuth`'s.
"""

from __future__ import annotations

import time
from typing import Any
from urllib.parse import urlsplit

import httpx
from pydantic import SecretStr, model_validator

from rasa_rpa.errors import ProviderError
from rasa_rpa.providers.auth import AccessToken
from rasa_rpa.providers.http import describe_response, send
from rasa_rpa.providers.options import (
    HttpUrl,
    OptionError,
    StrictOptions,
    Timeout,
    reveal,
)

__all__ = ["DEFAULT_SCOPE", "LEGACY_TOKEN_URL", "UiPathOptions", "fetch_token"]

LEGACY_TOKEN_URL = "https://account.uipath.com/oauth/token"
DEFAULT_SCOPE = "OR.Jobs OR.Folders.Read OR.Execution"
_TOKEN_SUFFIXES = ("/connect/token", "/oauth/token")
_BAD_CLIENT = {"invalid_client", "unauthorized_client", "access_denied"}
_CREDENTIALS_FIX = (
    "create an External Application in UiPath Admin and copy its App ID and "
    "App Secret"
)


class UiPathOptions(StrictOptions):
    """``providers.<name>`` keys of ``type: uipath`` (see the module docstring)."""

    fixes = {
        "url": "set it to the Orchestrator URL, e.g. "
        "https://cloud.uipath.com/<org>/<tenant>/orchestrator_",
        "client_id": _CREDENTIALS_FIX,
        "token_url": "use https://cloud.uipath.com/identity_/connect/token "
        "(or leave it out)",
    }

    url: HttpUrl
    client_id: str = ""
    client_secret: SecretStr | None = None
    refresh_token: SecretStr | None = None
    token_url: HttpUrl | None = None
    scope: str = DEFAULT_SCOPE
    folder_id: int | str | None = None
    folder_path: str | None = None
    tenant_name: str | None = None
    webhook_secret: SecretStr | None = None
    strategy: str = "ModernJobsCount"
    timeout: Timeout = 10.0

    @model_validator(mode="after")
    def _credentials(self) -> UiPathOptions:
        if not self.client_id or not (self.secret or self.legacy):
            raise OptionError(
                "client_id",
                "client_id and client_secret (or client_id and refresh_token) "
                "are required",
                _CREDENTIALS_FIX,
            )
        return self

    @property
    def secret(self) -> str | None:
        """The client secret, None when unset or empty."""
        return reveal(self.client_secret)

    @property
    def legacy(self) -> bool:
        """The legacy cloud flow (a refresh token, as the Botpress module)."""
        return reveal(self.refresh_token) is not None

    @property
    def token_endpoint(self) -> str:
        """``token_url``, or the identity server beside the Orchestrator."""
        if self.token_url:
            return self.token_url
        if self.legacy:
            return LEGACY_TOKEN_URL
        origin = urlsplit(self.url)
        return f"{origin.scheme}://{origin.netloc}/identity_/connect/token"


async def fetch_token(
    client: httpx.AsyncClient, provider: str, options: UiPathOptions
) -> AccessToken:
    """One token request; ProviderError says why the identity server said no."""
    url = options.token_endpoint
    if options.legacy:
        body = {
            "grant_type": "refresh_token",
            "client_id": options.client_id,
            "refresh_token": reveal(options.refresh_token),
        }
        tenant = {"X-UIPATH-TenantName": options.tenant_name or ""}
        extra: dict[str, Any] = {
            "json": body,
            "headers": tenant if options.tenant_name else {},
        }
    else:
        form = {
            "grant_type": "client_credentials",
            "client_id": options.client_id,
            "client_secret": options.secret or "",
            "scope": options.scope,
        }
        extra = {"data": form}
    response = await send(
        client,
        provider,
        "POST",
        url,
        what="getting a UiPath access token",
        expect=(200, 400, 401, 403, 404, 405),
        **extra,
    )
    if response.status_code != 200:
        raise ProviderError(provider, token_problem(response, url, options))
    try:
        token = response.json()
        value = str(token["access_token"])
        ttl = float(token.get("expires_in", 3600))
    except (ValueError, KeyError, TypeError, AttributeError):
        raise ProviderError(
            provider,
            f"token URL {url} answered without an access_token: it should be the "
            "identity server's /identity_/connect/token (or /oauth/token for the "
            "legacy flow)",
        ) from None
    return AccessToken(value, time.time() + ttl)


def token_problem(response: httpx.Response, url: str, options: UiPathOptions) -> str:
    """Why the token endpoint said no, and what to change (never a secret)."""
    status = response.status_code
    try:
        body = response.json()
    except ValueError:
        body = None
    error = str(body.get("error") or "") if isinstance(body, dict) else ""
    said = f"{url} answered {status}" + (f" {error}" if error else "")
    if status in (404, 405):
        if not url.rstrip("/").endswith(_TOKEN_SUFFIXES):
            return (
                f"token URL {url} looks wrong: it should end with "
                "/identity_/connect/token (or /oauth/token for the legacy flow)"
            )
        return f"{said}: check the host in token_url"
    if error == "invalid_scope":
        return (
            f"{said}: the external application is not granted the scopes "
            f"'{options.scope}'; add them in UiPath Admin > External Applications "
            "or set scope: to the ones it has"
        )
    if options.legacy and (error in _BAD_CLIENT | {"invalid_grant"} or status == 401):
        return (
            f"{said}: check client_id/refresh_token (the refresh token may have "
            "been revoked) and tenant_name"
        )
    if error in _BAD_CLIENT or status == 401:
        return (
            f"{said}: check client_id/client_secret and that the external "
            f"application has the scopes '{options.scope}'"
        )
    if error == "unsupported_grant_type":
        return f"{said}: is token_url the identity server's /connect/token?"
    return f"{said}: {describe_response(response)}"
