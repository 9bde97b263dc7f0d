"""Robocorp / Sema4.ai Control Room: start process runs, poll them, stop them.

A job is one process run, started with one input work item whose payload
holds the inputs and the job's context (``rasa_rpa_job_id``,
``rasa_rpa_conversation_id``, ``rasa_rpa_events_url``, ``rasa_rpa_token``),
so a Robot Framework or Python robot reads them as work-item variables and
reports progress to our callback API itself (docs/providers/robocorp.md has
a robot). Control Room tells us the run's state when polled; outputs are the
payloads of the run's output work items, and a failure's reason is the
exception its failed work item was released with.

Calls (Control Room API v1; sources in :mod:`.robocorp_records`):

* ``POST /workspaces/{ws}/processes/{process}/process-runs`` with
  ``{"type": "with_payloads", "payloads": [<payload>]}`` answers 200
  ``{"started": true, "id": "<process run id>"}`` (400, 403, 409 otherwise);
* ``GET /workspaces/{ws}/process-runs/{id}`` answers the run and its
  ``state``;
* ``GET /workspaces/{ws}/outputs?process_run_id=`` and
  ``GET /workspaces/{ws}/work-items?process_run_id=`` list its output and
  work items;
* ``POST /workspaces/{ws}/process-runs/{id}/stop`` with
  ``{"set_remaining_work_items_as_done", "terminate_ongoing_activity_runs",
  "reason"}`` answers ``{"accepted": true}``;
* ``GET /workspaces/{ws}`` and ``GET /workspaces/{ws}/processes`` let
  ``rasa-rpa doctor`` check the key and find each task's process.

Every call carries ``Authorization: RC-WSKEY <api key>``: a workspace key,
so there is no token to renew. Control Room also offers signed webhooks
(``x-rc-signature``), but their event bodies are not documented in a form
we could check, so this provider polls (``poll_interval``) and does not take
webhooks.

rpa.yml::

    providers:
      robocorp:
        type: robocorp
        # url: https://cloud.robocorp.com/api/v1    (the default)
        workspace_id: ${RC_WORKSPACE_ID}
        api_key: ${RC_API_KEY}
        processes: {collect_order_details: <process id>}   # or use the name
        poll_interval: 5s
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import httpx

from rasa_rpa.errors import ProviderError, ProviderUnavailable
from rasa_rpa.logs import job_fields
from rasa_rpa.models import EventType, Job, JobEvent
from rasa_rpa.providers.base import (
    Capabilities,
    Diagnosis,
    Provider,
    StartRequest,
    diagnose_tasks,
)
from rasa_rpa.providers.http import LazyClient, describe_response, send
from rasa_rpa.providers.options import reveal
from rasa_rpa.providers.robocorp_records import (
    RUN_STATES,
    RobocorpOptions,
    event_id,
    failure_reason,
    outputs_of,
)

__all__ = ["RUN_STATES", "RobocorpOptions", "RobocorpProvider"]

log = logging.getLogger(__name__)

#: What the user hears when Control Room will not take another run now.
BUSY = "the automation system is busy right now; please try again in a little while"
#: Pages of a list followed at most (the process list of a workspace is short).
MAX_PAGES = 20
FIXES = {
    "unknown process": "create the process in Control Room, or map the task to "
    "its process id under processes:",
    "several processes": "map the task to one process id under processes:",
}


class RobocorpProvider(Provider):
    """Runs Control Room processes through the Control Room API."""

    type_name = "robocorp"

    Options = RobocorpOptions
    options: RobocorpOptions
    capabilities = Capabilities(poll=True, cancel=True)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.base = f"{self.options.url.rstrip('/')}/workspaces/{self.workspace}"
        self._headers = {
            "Authorization": f"RC-WSKEY {reveal(self.options.api_key)}",
            "Accept": "application/json",
        }
        #: task -> process id, learnt from the process list.
        self._found: dict[str, str] = {}
        #: Runs we asked Control Room to stop (their end means "cancelled").
        self._stopped: set[str] = set()
        self._pool = LazyClient(self.options.timeout)

    @property
    def workspace(self) -> str:
        return self.options.workspace_id.strip()

    @property
    def client(self) -> httpx.AsyncClient:
        """One connection pool per provider (see LazyClient)."""
        return self._pool.get()

    # -- calls -----------------------------------------------------------------

    async def _call(
        self,
        method: str,
        path: str,
        *,
        what: str,
        expect: tuple[int, ...] = (200,),
        **kwargs: Any,
    ) -> httpx.Response:
        """One Control Room call; a refused key is told as such, in plain words."""
        response = await send(
            self.client,
            self.name,
            method,
            f"{self.base}{path}",
            what=what,
            expect=(*expect, 401, 403),
            headers=self._headers,
            **kwargs,
        )
        if response.status_code == 401:
            raise ProviderError(
                self.name,
                f"{what}: Control Room refused the API key (401: "
                f"{describe_response(response)}): check api_key of "
                f"providers.{self.name} in {self.config.source}",
            )
        if response.status_code == 403 and 403 not in expect:
            raise ProviderError(
                self.name,
                f"{what}: Control Room answered 403 ({describe_response(response)}):"
                f" the API key belongs to another workspace than {self.workspace!r}"
                " or lacks the permission for this call; check workspace_id and "
                "the key's permissions",
            )
        return response

    async def _list(self, path: str, what: str, **params: Any) -> list[Any]:
        """Every item of a paginated list (``{"data", "has_more", "next"}``)."""
        response = await self._call("GET", path, what=what, params=params)
        items: list[Any] = []
        for _ in range(MAX_PAGES):
            body = _json(response)
            data = body.get("data")
            items += data if isinstance(data, list) else []
            following = body.get("next")
            # GUESS: ``next`` is the URL of the following page (the OpenAPI
            # names it a string); a value that is not one ends the list.
            if not body.get("has_more") or not isinstance(following, str):
                break
            if not following.startswith(("http://", "https://")):
                break
            response = await send(
                self.client, self.name, "GET", following, what=what,
                headers=self._headers,
            )  # fmt: skip
        return items

    async def _lookup(self, task: str) -> str:
        """The process id of ``task``: its ``processes`` entry, or a process
        of the workspace with that name or id (looked up once)."""
        wanted = self.options.processes.get(task, task)
        if wanted in self._found:
            return self._found[wanted]
        listed = await self._list("/processes", "listing the workspace's processes")
        processes = [p for p in listed if isinstance(p, dict)]
        matches = [p for p in processes if p.get("id") == wanted]
        matches = matches or [p for p in processes if p.get("name") == wanted]
        if not matches:
            raise ProviderError(
                self.name,
                f"unknown process {wanted!r} in workspace {self.workspace!r}",
                user_message="it is not set up correctly",
            )
        if len(matches) > 1:
            raise ProviderError(
                self.name,
                f"several processes are named {wanted!r} in workspace "
                f"{self.workspace!r}: map task {task!r} to one process id",
                user_message="it is not set up correctly",
            )
        self._found[wanted] = str(matches[0]["id"])
        return self._found[wanted]

    async def _process_id(self, task: str) -> str:
        """A mapped task starts without a lookup (the key may not list processes)."""
        mapped = self.options.processes.get(task)
        return mapped if mapped else await self._lookup(task)

    # -- doctor ----------------------------------------------------------------

    async def diagnose(self, tasks: Sequence[str]) -> list[Diagnosis]:
        """Read the workspace with the key, then find each task's process."""
        response = await self._call(
            "GET", "", what="reading the workspace", expect=(200, 404)
        )
        if response.status_code == 404:
            raise ProviderError(
                self.name,
                f"{self.base} answered 404: check url (the Control Room API, "
                "e.g. https://cloud.robocorp.com/api/v1) and workspace_id",
            )
        name = _json(response).get("name") or self.workspace
        ok = Diagnosis(
            "ok", f"robocorp: Control Room accepts the API key for workspace {name!r}"
        )
        return [ok, *await diagnose_tasks(self.type_name, tasks, self._lookup, FIXES)]

    # -- the contract ----------------------------------------------------------

    async def start(self, request: StartRequest) -> str | None:
        job, creds = request.job, request.credentials
        payload = {
            **request.inputs,
            "rasa_rpa_job_id": job.id,
            "rasa_rpa_conversation_id": job.conversation_id,
            "rasa_rpa_events_url": creds.events_url,
            "rasa_rpa_token": creds.token,
        }
        try:
            process = await self._process_id(request.task)
            response = await self._call(
                "POST",
                f"/processes/{process}/process-runs",
                what=f"starting process {request.task!r}",
                expect=(200, 201, 400, 404, 409),
                json={"type": "with_payloads", "payloads": [payload]},
            )
        except ProviderError as exc:
            exc.job_id = exc.job_id or job.id
            raise
        said = describe_response(response)
        if response.status_code == 409:
            # Documented as a possible answer; Control Room will not take
            # another run of this process now (e.g. no worker free to take it).
            raise ProviderUnavailable(
                self.name,
                f"Control Room refused to start process {request.task!r} now "
                f"(409: {said})",
                job_id=job.id,
                user_message=BUSY,
            )
        if response.status_code == 404:
            self._found.pop(
                self.options.processes.get(request.task, request.task), None
            )
            raise ProviderError(
                self.name,
                f"unknown process {request.task!r} in workspace {self.workspace!r}"
                f" (404: {said})",
                job_id=job.id,
                user_message="it is not set up correctly",
            )
        if response.status_code == 400:
            raise ProviderError(
                self.name,
                f"Control Room refused the run of {request.task!r} (400: {said})",
                job_id=job.id,
            )
        run_id = _json(response).get("id")
        if not isinstance(run_id, str) or not run_id:
            raise ProviderError(
                self.name,
                "Control Room started no process run (no id in its answer)",
                job_id=job.id,
            )
        return run_id

    async def _run(self, ref: str) -> dict[str, Any]:
        response = await self._call(
            "GET", f"/process-runs/{ref}", what="checking the process run"
        )
        return _json(response)

    async def poll(self, job: Job) -> list[JobEvent]:
        ref = job.provider_ref
        if not ref:
            return []
        state = str((await self._run(ref)).get("state") or "")
        kind = RUN_STATES.get(state)
        if ref in self._stopped and kind in (
            EventType.SUCCEEDED,
            EventType.FAILED,
        ):
            kind = EventType.CANCELLED  # it ended because we stopped it
        if kind is None:
            return []
        data: dict[str, Any] = {}
        if kind is EventType.SUCCEEDED:
            items = await self._list(
                "/outputs", "reading the run's outputs", process_run_id=ref
            )
            data = {"outputs": outputs_of(items)}
        elif kind is EventType.FAILED:
            items = await self._list(
                "/work-items", "reading the run's work items", process_run_id=ref
            )
            data = {"error": failure_reason(items)}
        elif kind is EventType.CANCELLED:
            data = {"reason": "the process run was stopped in Control Room"}
        return [
            JobEvent(event_id(ref, kind), job.id, kind, data, source="robocorp-poll")
        ]

    async def cancel(self, job: Job) -> None:
        """Stop the process run; an already finished run needs no stop."""
        ref = job.provider_ref
        if not ref:
            return
        body = {
            "set_remaining_work_items_as_done": False,
            "terminate_ongoing_activity_runs": True,
            "reason": f"cancelled from the conversation (rasa-rpa job {job.id})",
        }
        response = await self._call(
            "POST",
            f"/process-runs/{ref}/stop",
            what="stopping the process run",
            expect=(200, 400, 404, 409),
            json=body,
        )
        if response.status_code == 200 and _json(response).get("accepted", True):
            self._stopped.add(ref)
            return
        state = (await self._run(ref)).get("state")
        if state in ("completed", "unresolved", "stopping"):
            log.info(
                "%s: run %s is %s already; nothing to stop",
                self.name,
                ref,
                state,
                extra=job_fields(job),
            )
            return
        raise ProviderError(
            self.name,
            f"Control Room did not stop process run {ref} "
            f"({response.status_code}: {describe_response(response)})",
            job_id=job.id,
        )

    async def aclose(self) -> None:
        await self._pool.aclose()


def _json(response: httpx.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}
