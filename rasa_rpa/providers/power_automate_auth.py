"""Power Automate's options, its Entra token request, and its callback URL rules.

Split from :mod:`rasa_rpa.providers.power_automate`; the caching, renewal
and 401 replay are :class:`~.auth.TokenAuth`'s.

Sources:

* Microsoft identity platform, "OAuth 2.0 client credentials flow"
  (MicrosoftDocs/entra-docs ``docs/identity-platform/v2-oauth2-client-creds-
  grant-flow.md``): ``POST https://login.microsoftonline.com/{tenant}/oauth2/
  v2.0/token``, form ``client_id``, ``scope`` ("the resource identifier ...
  affixed with the .default suffix"), ``client_secret``, ``grant_type=
  client_credentials``; the answer is ``{token_type, expires_in,
  access_token}``; an error is 400 ``{error, error_description,
  error_codes, ...}``;
* "Use OAuth authentication with Microsoft Dataverse" (learn.microsoft.com/
  power-apps/developer/data-platform/authenticate-oauth): the resource is
  the environment's organization URL, so the scope is ``<org URL>/.default``;
* Azure SDK "Troubleshoot service principal authentication" (learn.microsoft
  .com/azure/developer/java/sdk/troubleshooting-authentication-service-
  principal): AADSTS7000215 an invalid client secret, AADSTS7000222 an
  expired one, AADSTS700016 an application not found in the tenant
  (AADSTS90002 "Tenant not found." is not in that table: it is the answer
  public Entra clients handle for a wrong tenant id);
* "Work with desktop flows using code" (MicrosoftDocs/power-automate-docs
  ``articles/developer/desktop-flow-public-apis.md``), requirements for the
  callback URL: "Only the HTTPS protocol is allowed", "Access to localhost
  (loopback) isn't permitted", "IP addresses can't be used. You must use a
  named web address that requires DNS name resolution".
"""

from __future__ import annotations

import ipaddress
import time
from typing import Literal
from urllib.parse import urlsplit

import httpx
from pydantic import Field, SecretStr, model_validator

from rasa_rpa.errors import ProviderError
from rasa_rpa.providers.auth import AccessToken
from rasa_rpa.providers.http import describe_response, safe_url, send
from rasa_rpa.providers.options import (
    HttpUrl,
    OptionError,
    Required,
    StrictOptions,
    Timeout,
    reveal,
)

__all__ = [
    "LOGIN_URL",
    "PowerAutomateOptions",
    "callback_refusal",
    "fetch_token",
    "token_problem",
]

#: Microsoft Entra ID's sign-in host for the global cloud (national clouds
#: have their own, e.g. https://login.microsoftonline.us).
LOGIN_URL = "https://login.microsoftonline.com"
_APP_FIX = (
    "register an application in Microsoft Entra ID, create a client secret, "
    "and add it as an application user of the environment"
)


class PowerAutomateOptions(StrictOptions):
    """``providers.<name>`` keys of ``type: power_automate``."""

    fixes = {
        "url": "set it to the environment's organization URL, e.g. "
        "https://contoso.crm.dynamics.com",
        "tenant_id": _APP_FIX,
        "client_id": _APP_FIX,
        "client_secret": _APP_FIX,
        "connection_name": "copy connectionName from the desktop flow connection's "
        "URL in Power Automate (…&connectionName=<name>)",
        "flows": "map each task to its desktop flow's id: {<task>: <workflow id>}",
        "run_timeout": "write a duration of at most 24h, such as 30m",
    }

    #: The Dataverse organization URL of the environment.
    url: HttpUrl
    tenant_id: Required
    client_id: Required
    client_secret: SecretStr
    #: The desktop flow connection (machine or machine group) runs use.
    connection_name: Required
    #: ``reference``: connection_name is a connection reference's logical name.
    connection_type: Literal["connection", "reference"] = "connection"
    run_mode: Literal["unattended", "attended"] = "unattended"
    run_priority: str = "normal"
    #: How long a run may take (Power Automate's default is 3 hours).
    run_timeout: Timeout | None = None
    #: task -> desktop flow (workflow) id; other tasks are looked up by name.
    flows: dict[str, str] = Field(default_factory=dict)
    login_url: HttpUrl = LOGIN_URL
    #: Default: ``<url>/.default``.
    scope: str | None = None
    #: Where Power Automate posts when a run completes; must be HTTPS and a
    #: DNS name. Default: ``<public_url>/rpa/v1/providers/<name>/webhook``.
    callback_url: HttpUrl | None = None
    timeout: Timeout = 10.0

    @model_validator(mode="after")
    def _checks(self) -> PowerAutomateOptions:
        if reveal(self.client_secret) is None:
            raise OptionError("client_secret", "client_secret is empty", _APP_FIX)
        if self.run_timeout is not None and not 1 <= self.run_timeout <= 86400:
            # RunDesktopFlow: "Timeout for script execution in seconds
            # (default = 3 hours, max = 24 hours)".
            raise OptionError(
                "run_timeout",
                "must be between 1 second and 24 hours",
                self.fixes["run_timeout"],
            )
        return self

    @property
    def org_url(self) -> str:
        return self.url.rstrip("/")

    @property
    def token_url(self) -> str:
        return (
            f"{self.login_url.rstrip('/')}/{self.tenant_id.strip()}/oauth2/v2.0/token"
        )

    @property
    def token_scope(self) -> str:
        return self.scope or f"{self.org_url}/.default"


def callback_refusal(url: str) -> str | None:
    """Why Power Automate would refuse ``url`` as a callback URL, or None."""
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    if parts.scheme != "https":
        return "Power Automate only calls HTTPS callback URLs"
    try:
        ipaddress.ip_address(host)
    except ValueError:
        pass
    else:
        return "Power Automate does not call IP addresses, only DNS names"
    if host == "localhost" or host.endswith(".localhost") or "." not in host:
        return "Power Automate does not call localhost or a bare host name"
    return None


async def fetch_token(
    client: httpx.AsyncClient, provider: str, options: PowerAutomateOptions
) -> AccessToken:
    """One client-credentials request; ProviderError says why Entra said no."""
    url = options.token_url
    form = {
        "grant_type": "client_credentials",
        "client_id": options.client_id.strip(),
        "client_secret": reveal(options.client_secret) or "",
        "scope": options.token_scope,
    }
    response = await send(
        client,
        provider,
        "POST",
        url,
        what="getting a Microsoft Entra token",
        expect=(200, 400, 401, 403, 404),
        data=form,
    )
    if response.status_code != 200:
        raise ProviderError(provider, token_problem(response, options))
    try:
        body = response.json()
        value = str(body["access_token"])
        ttl = float(body.get("expires_in", 3599))
    except (ValueError, KeyError, TypeError, AttributeError):
        raise ProviderError(
            provider,
            f"{safe_url(url)} answered without an access_token: is login_url "
            f"Microsoft Entra's sign-in host ({LOGIN_URL})?",
        ) from None
    return AccessToken(value, time.time() + ttl)


def token_problem(response: httpx.Response, options: PowerAutomateOptions) -> str:
    """Why the token endpoint said no, and what to change (never a secret)."""
    try:
        body = response.json()
    except ValueError:
        body = None
    body = body if isinstance(body, dict) else {}
    error = str(body.get("error") or "")
    codes = " ".join(str(c) for c in body.get("error_codes") or [])
    said = f"Microsoft Entra answered {response.status_code}" + (
        f" {error}" if error else ""
    )
    if response.status_code == 404:
        return f"{said}: check login_url ({options.login_url})"
    if "7000215" in codes or "7000222" in codes:
        return (
            f"{said}: the client secret is wrong or has expired; create a new "
            "one for the app registration and set client_secret"
        )
    if "700016" in codes or error == "unauthorized_client":
        return (
            f"{said}: no application with client_id {options.client_id!r} in "
            f"tenant {options.tenant_id!r}; check client_id and tenant_id"
        )
    if "90002" in codes:
        return f"{said}: tenant {options.tenant_id!r} was not found; check tenant_id"
    if error in ("invalid_scope", "invalid_resource"):
        return (
            f"{said}: Entra will not issue a token for {options.token_scope!r}; "
            "url should be the environment's organization URL (scope "
            "<url>/.default)"
        )
    if error == "invalid_client":
        return f"{said}: check client_id and client_secret"
    return f"{said}: {describe_response(response)}"
