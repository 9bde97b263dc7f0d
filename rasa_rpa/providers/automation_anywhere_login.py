"""Automation Anywhere's options and its Control Room login (v2, then v1).

Split from :mod:`rasa_rpa.providers.automation_anywhere`; the caching,
renewal before the JWT's ``exp`` and the 401 replay are
:class:`~.auth.TokenAuth`'s.
"""

from __future__ import annotations

from typing import Any

import httpx
from pydantic import Field, SecretStr, model_validator

from rasa_rpa.errors import ProviderError
from rasa_rpa.providers.auth import AccessToken
from rasa_rpa.providers.automation_anywhere_values import token_expiry
from rasa_rpa.providers.http import describe_response, send
from rasa_rpa.providers.options import (
    HttpUrl,
    OptionError,
    Required,
    StrictOptions,
    Timeout,
    reveal,
)

__all__ = [
    "AUTH_PATHS",
    "CONVERSATION_INPUT",
    "AutomationAnywhereOptions",
    "ControlRoomLogin",
]

#: Login endpoints, newest first: v1 stops working from Automation 360 v.33.
AUTH_PATHS = ("/v2/authentication", "/v1/authentication")
#: The botInput name the conversation id goes under unless configured.
CONVERSATION_INPUT = "rasaRpaConversationId"
_LOGIN_FIX = "set username and api_key (or password) of a Control Room user"


class AutomationAnywhereOptions(StrictOptions):
    """``providers.<name>`` keys of ``type: automation_anywhere``."""

    fixes = {
        "url": "set it to the Control Room's base URL, e.g. "
        "https://example.my.automationanywhere.digital",
        "username": _LOGIN_FIX,
        "api_key": _LOGIN_FIX,
        "stop_wait": "write a duration such as 10s",
    }

    url: HttpUrl
    username: Required
    api_key: SecretStr | None = None
    password: SecretStr | None = None
    run_as_user_ids: list[int] = Field(default_factory=list)
    pool_ids: list[int | str] = Field(default_factory=list)
    #: task -> botId (a task may also be the numeric botId itself).
    bots: dict[str, int | str] = Field(default_factory=dict)
    conversation_input: str = CONVERSATION_INPUT
    callback_url: HttpUrl | None = None
    stop_wait: Timeout = 10.0
    timeout: Timeout = 10.0

    @model_validator(mode="after")
    def _secret(self) -> AutomationAnywhereOptions:
        if reveal(self.api_key) is None and reveal(self.password) is None:
            raise OptionError(
                "api_key", "api_key (or password) is required", _LOGIN_FIX
            )
        return self


class ControlRoomLogin:
    """The token request: ``POST /v2/authentication``, ``/v1`` on older rooms."""

    def __init__(self, provider: str, options: AutomationAnywhereOptions) -> None:
        self.provider = provider
        self.options = options
        self.url = options.url.rstrip("/")
        #: The login path this Control Room answers (learnt at first login).
        self.path: str | None = None

    async def __call__(self, client: httpx.AsyncClient) -> AccessToken:
        """Log in with the API key (or password); the JWT's ``exp`` says how long."""
        body: dict[str, Any] = {"username": self.options.username}
        api_key = reveal(self.options.api_key)
        if api_key:
            body["apiKey"] = api_key
        else:
            body["password"] = reveal(self.options.password)
        paths = (self.path,) if self.path else AUTH_PATHS
        for path in paths:
            response = await send(
                client,
                self.provider,
                "POST",
                f"{self.url}{path}",
                what="logging in to the Control Room",
                expect=(200, 201, 401, 404, 405),
                json=body,
            )
            if response.status_code not in (404, 405):
                self.path = path
                break
        else:
            raise ProviderError(
                self.provider,
                f"url does not look like a Control Room: {self.url}{paths[0]} "
                "not found",
            )
        if response.status_code == 401:
            raise ProviderError(
                self.provider,
                f"the Control Room refused the login ({describe_response(response)}):"
                " check username and api_key (API key generation must be allowed"
                " for the user)",
            )
        try:
            token = response.json().get("token")
        except (ValueError, AttributeError):
            token = None
        if not isinstance(token, str) or not token:
            raise ProviderError(
                self.provider, f"{self.url}{path} answered without a token"
            )
        return AccessToken(token, token_expiry(token))
