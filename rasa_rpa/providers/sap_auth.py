"""SAP's options and its OAuth token request (client credentials, HTTP Basic).

Split from :mod:`rasa_rpa.providers.sap`; the caching, renewal and 401
replay are :class:`~.auth.TokenAuth`'s.
"""

from __future__ import annotations

import time

import httpx
from pydantic import Field, SecretStr, model_validator

from rasa_rpa.errors import ProviderError
from rasa_rpa.providers.auth import AccessToken
from rasa_rpa.providers.http import describe_response, send
from rasa_rpa.providers.options import (
    HttpUrl,
    OptionError,
    Required,
    StrictOptions,
    Timeout,
    reveal,
)

__all__ = ["TOKEN_PATH", "SapOptions", "fetch_token", "token_base"]

TOKEN_PATH = "/oauth/token"


def token_base(url: str) -> tuple[str, bool]:
    """The service key's ``url``, and whether the token URL was pasted instead."""
    base = url.strip().split("?", 1)[0].rstrip("/")
    if base.endswith(TOKEN_PATH):
        return base[: -len(TOKEN_PATH)], True
    return base, False


_KEY_FIX = (
    "copy url, clientid and clientsecret from the BTP service key and the API "
    "key from Control Tower"
)


class SapOptions(StrictOptions):
    """``providers.<name>`` keys of ``type: sap`` (see the module docstring)."""

    fixes = {
        "service_key_url": _KEY_FIX,
        "client_id": _KEY_FIX,
        "client_secret": _KEY_FIX,
        "api_key": _KEY_FIX,
        "triggers": "map each task to its API trigger URL: {<task>: <URL>}",
    }

    service_key_url: HttpUrl
    client_id: Required
    client_secret: SecretStr
    api_key: SecretStr
    triggers: dict[str, str] = Field(default_factory=dict)
    trigger_url_template: str | None = None
    #: SAP has no public cancel API: a URL of the customer's own, if any.
    cancel_url_template: str | None = None
    timeout: Timeout = 10.0

    @model_validator(mode="after")
    def _complete(self) -> SapOptions:
        for key in ("client_secret", "api_key"):
            if reveal(getattr(self, key)) is None:
                raise OptionError(key, "is required", _KEY_FIX)
        if not self.triggers and not self.trigger_url_template:
            raise OptionError(
                "triggers",
                "no API triggers are configured",
                "add triggers: {<task>: <API trigger URL>} or trigger_url_template",
            )
        return self


async def fetch_token(
    client: httpx.AsyncClient, provider: str, options: SapOptions, token_url: str
) -> AccessToken:
    """Client credentials with HTTP Basic, as the BTP service key's UAA wants."""
    response = await send(
        client,
        provider,
        "POST",
        token_url,
        what="getting an OAuth token",
        expect=(200, 400, 401),
        params={"grant_type": "client_credentials"},
        auth=(options.client_id, reveal(options.client_secret) or ""),
    )
    if response.status_code != 200:
        raise ProviderError(
            provider,
            f"getting an OAuth token: {token_url} answered "
            f"{response.status_code}: {describe_response(response)}: check "
            "clientid/clientsecret from the BTP service key",
        )
    try:
        body = response.json()
        value = str(body["access_token"])
        ttl = float(body.get("expires_in", 3600))
    except (ValueError, KeyError, TypeError):
        raise ProviderError(
            provider,
            f"{token_url} answered without an access_token: is "
            "service_key_url the service key's url?",
        ) from None
    return AccessToken(value, time.time() + ttl)
