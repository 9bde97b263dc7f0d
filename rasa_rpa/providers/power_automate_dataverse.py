"""The Dataverse Web API calls of the Power Automate provider.

Split from :mod:`rasa_rpa.providers.power_automate`, which keeps the
provider contract. Everything here is one environment's Web API
(``<organization URL>/api/data/v9.2/``) as an application: the Entra token
comes from :mod:`.power_automate_auth` through :class:`~.auth.TokenAuth`,
and a refusal is told in plain words with its fix.

Sources: "Work with desktop flows using code" (MicrosoftDocs/power-automate-
docs ``articles/developer/desktop-flow-public-apis.md``): desktop flows are
``workflows`` rows with ``category eq 6``; runs are ``flowsessions`` rows;
"Triggering a desktop flow run with an account having "User" privileges
will work. However, canceling the run and querying the status needs "Owner"
privileges"; errors are ``{"error": {"code", "message"}}``. The WhoAmI
function (learn.microsoft.com/power-apps/developer/data-platform/webapi/
reference/whoamiresponse) answers ``{BusinessUnitId, UserId,
OrganizationId}`` for the caller.
"""

from __future__ import annotations

import re
from typing import Any

import httpx

from rasa_rpa.errors import ProviderError
from rasa_rpa.providers.auth import AccessToken, TokenAuth
from rasa_rpa.providers.http import LazyClient, describe_response, send
from rasa_rpa.providers.power_automate_auth import PowerAutomateOptions, fetch_token
from rasa_rpa.providers.power_automate_records import SELECT

__all__ = ["API", "NOT_SET_UP", "Dataverse", "as_object"]

API = "/api/data/v9.2/"
_GUID = re.compile(r"^[0-9a-fA-F]{8}-([0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}$")
#: What the user hears about a flow that is not where rpa.yml says.
NOT_SET_UP = "it is not set up correctly"


class Dataverse:
    """One environment's Web API, called as the configured application."""

    def __init__(self, provider: str, options: PowerAutomateOptions) -> None:
        self.provider = provider
        self.options = options
        self.api = options.org_url + API
        self.auth = TokenAuth(self._fetch_token)
        self._pool = LazyClient(options.timeout)
        #: Desktop flow name -> workflow id, looked up once.
        self._flows: dict[str, str] = {}

    @property
    def client(self) -> httpx.AsyncClient:
        """One connection pool per provider (see LazyClient)."""
        return self._pool.get()

    async def _fetch_token(self) -> AccessToken:
        return await fetch_token(self.client, self.provider, self.options)

    async def call(
        self,
        method: str,
        path: str,
        *,
        what: str,
        expect: tuple[int, ...] = (200,),
        **kwargs: Any,
    ) -> httpx.Response:
        """One Web API call; ``self.auth`` renews the token once on a 401."""
        response = await send(
            self.client,
            self.provider,
            method,
            self.api + path,
            what=what,
            expect=(*expect, 401, 403),
            headers={
                "Accept": "application/json",
                "OData-MaxVersion": "4.0",
                "OData-Version": "4.0",
            },
            auth=self.auth,
            **kwargs,
        )
        if response.status_code == 401:
            raise ProviderError(
                self.provider,
                f"{what}: Dataverse refused a fresh token (401): add the app "
                "registration as an application user of the environment at "
                f"{self.options.org_url} (Power Platform admin center), and "
                "check that url is that environment's organization URL",
            )
        if response.status_code == 403 and 403 not in expect:
            raise ProviderError(
                self.provider,
                f"{what}: Dataverse answered 403 ({describe_response(response)}):"
                " add the app registration as an application user of the "
                "environment, with a security role that may run desktop flows "
                "(reading and cancelling a run needs its owner's rights)",
            )
        return response

    async def who_am_i(self) -> dict[str, Any]:
        """The application user as Dataverse knows it (proves the token works)."""
        return as_object(await self.call("GET", "WhoAmI", what="checking the app user"))

    async def flow_id(self, task: str) -> str:
        """The desktop flow's workflow id: from ``flows``, the task itself if it
        is an id, or looked up by name (once)."""
        wanted = self.options.flows.get(task, task)
        if _GUID.match(wanted):
            return wanted
        if wanted in self._flows:
            return self._flows[wanted]
        quoted = wanted.replace("'", "''")
        response = await self.call(
            "GET",
            "workflows",
            what=f"looking up desktop flow {wanted!r}",
            params={
                "$filter": f"category eq 6 and name eq '{quoted}'",
                "$select": "name,workflowid",
            },
        )
        rows = as_object(response).get("value")
        found = (
            [f for f in rows if isinstance(f, dict)] if isinstance(rows, list) else []
        )
        if not found:
            raise ProviderError(
                self.provider,
                f"unknown desktop flow {wanted!r} in {self.options.org_url}",
                user_message=NOT_SET_UP,
            )
        if len(found) > 1:
            raise ProviderError(
                self.provider,
                f"several desktop flows are named {wanted!r}: map task {task!r} "
                "to one id under flows:",
                user_message=NOT_SET_UP,
            )
        self._flows[wanted] = str(found[0]["workflowid"])
        return self._flows[wanted]

    def forget_flow(self, task: str) -> None:
        """Look the task's flow up again next time (it was deleted, re-created)."""
        self._flows.pop(self.options.flows.get(task, task), None)

    async def session(self, ref: str) -> dict[str, Any]:
        """The flow session's status columns."""
        response = await self.call(
            "GET",
            f"flowsessions({ref})",
            what="checking the desktop flow run",
            params={"$select": SELECT},
        )
        return as_object(response)

    async def outputs(self, ref: str) -> dict[str, Any]:
        """A finished run's output variables."""
        response = await self.call(
            "GET",
            f"flowsessions({ref})/outputs/$value",
            what="reading the desktop flow's outputs",
            expect=(200, 204, 404),  # GUESS: a run without outputs may say so
        )
        return as_object(response)

    async def aclose(self) -> None:
        await self._pool.aclose()


def as_object(response: httpx.Response) -> dict[str, Any]:
    """The answer's JSON object; {} for anything else."""
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}
