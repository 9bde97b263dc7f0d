"""The fake Power Automate answers as Entra and the Dataverse Web API document."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from rasa_rpa.fakes.base import FakeRequest, FakeServer
from rasa_rpa.fakes.power_automate import FakePowerAutomate
from tests.waiting import wait_until

API = "/api/data/v9.2/"


@pytest.fixture
def pad() -> Iterator[FakePowerAutomate]:
    with FakePowerAutomate(step_delay=0.05, callback_retry_delay=0.05) as fake:
        yield fake


def token(pad: FakePowerAutomate, **changes: str) -> httpx.Response:
    form = {
        "grant_type": "client_credentials",
        "client_id": pad.client_id,
        "client_secret": pad.client_secret,
        "scope": f"{pad.url}/.default",
        **changes,
    }
    tenant = changes.pop("tenant", pad.tenant_id)
    return httpx.post(f"{pad.url}/{tenant}/oauth2/v2.0/token", data=form, timeout=5)


def dataverse(
    pad: FakePowerAutomate, method: str, path: str, **kwargs: Any
) -> httpx.Response:
    bearer = token(pad).json()["access_token"]
    headers = {"Authorization": f"Bearer {bearer}", "Accept": "application/json"}
    return httpx.request(
        method, pad.url + API + path, headers=headers, timeout=5, **kwargs
    )


def run(pad: FakePowerAutomate, flow: str = "echo", **body: Any) -> httpx.Response:
    request = {
        "runMode": "unattended",
        "runPriority": "normal",
        "connectionName": pad.connection_name,
        "inputs": json.dumps({"text": "hi"}),
        **body,
    }
    path = f"workflows({pad.flow_ids[flow]})/Microsoft.Dynamics.CRM.RunDesktopFlow"
    return dataverse(pad, "POST", path, json=request)


def test_the_token_endpoint(pad):
    good = token(pad)
    assert good.status_code == 200
    assert good.json()["token_type"] == "Bearer"
    assert good.json()["expires_in"] > 0
    for changes, status, code in [
        ({"client_secret": "x"}, 401, 7000215),
        ({"client_id": "x"}, 400, 700016),
        ({"tenant": "x"}, 400, 90002),
        ({"scope": pad.url}, 400, 1002012),
        ({"scope": "https://other.crm.dynamics.com/.default"}, 400, 500011),
    ]:
        refused = token(pad, **changes)
        assert refused.status_code == status
        assert refused.json()["error_codes"] == [code]
        assert refused.json()["error_description"].startswith(f"AADSTS{code}")


def test_dataverse_needs_a_live_token(pad):
    answer = httpx.get(pad.url + API + "WhoAmI", timeout=5)
    assert answer.status_code == 401
    assert set(dataverse(pad, "GET", "WhoAmI").json()) >= {
        "BusinessUnitId",
        "UserId",
        "OrganizationId",
    }


def test_desktop_flows_are_workflows_of_category_6(pad):
    listed = dataverse(pad, "GET", "workflows", params={"$filter": "category eq 6"})
    assert {f["name"] for f in listed.json()["value"]} == set(pad.flow_ids)
    one = dataverse(
        pad, "GET", "workflows", params={"$filter": "category eq 6 and name eq 'echo'"}
    ).json()["value"]
    assert one == [
        {"@odata.etag": 'W/"1"', "name": "echo", "workflowid": pad.flow_ids["echo"]}
    ]


def test_a_run_goes_waiting_running_succeeded_with_outputs(pad):
    pad.step_delay = 0.5
    answer = run(pad)
    assert answer.status_code == 200
    session = answer.json()["flowsessionId"]
    first = dataverse(
        pad,
        "GET",
        f"flowsessions({session})",
        params={"$select": "statuscode,statecode"},
    ).json()
    assert set(first) == {"@odata.etag", "statuscode", "statecode"}
    assert first["statuscode"] in (2, 3)
    assert pad.wait(session)["statuscode"] == 4
    outputs = dataverse(pad, "GET", f"flowsessions({session})/outputs/$value")
    assert outputs.json() == {"text": "hi"}


@pytest.mark.parametrize(
    "body",
    [
        {"runMode": "sometimes"},
        {"connectionName": "nope"},
        {"connectionType": 2},  # the connection's name is no reference's
        {"inputs": "{not json"},
        {"inputs": json.dumps(["a list"])},
        {"timeout": 86401},
        {"callbackUrl": "http://bot.example.com/hook"},
        {"callbackUrl": "https://127.0.0.1/hook"},
        {"callbackUrl": "https://localhost/hook"},
    ],
)
def test_run_requests_it_refuses(pad, body):
    answer = run(pad, **body)
    assert answer.status_code == 400
    assert set(answer.json()["error"]) == {"code", "message"}


def test_a_named_https_callback_is_taken(pad):
    assert run(pad, callbackUrl="https://bot.example.com/hook").status_code == 200


def test_seventy_runs_a_minute(pad):
    pad.runs_per_minute = 2
    assert [run(pad).status_code for _ in range(3)] == [200, 200, 429]


def test_cancel_is_204_then_refused(pad):
    session = run(pad, "collect_order_details").json()["flowsessionId"]
    path = f"flowsessions({session})/Microsoft.Dynamics.CRM.CancelDesktopFlowRun"
    assert dataverse(pad, "POST", path).status_code == 204
    assert pad.wait(session)["statuscode"] == 7
    assert dataverse(pad, "POST", path).status_code == 400


def test_the_callback_is_retried_three_times_on_a_server_error(pad):
    answers = iter([500, 408, 503, 200])
    hooks = FakeServer()
    got: list[FakeRequest] = []

    def hook(request: FakeRequest) -> tuple[int, Any]:
        got.append(request)
        return next(answers), {}

    hooks.route("POST", "/hook", hook)
    pad.insecure_callbacks = True
    with hooks:
        session = run(pad, callbackUrl=hooks.url + "/hook").json()["flowsessionId"]
        wait_until(lambda: len(got) == 4, 10, "four callback attempts")
    assert got[0].headers["x-ms-run-id"] == session
    assert got[0].headers["x-ms-workflow-id"] == pad.flow_ids["echo"]
    assert got[0].headers["user-agent"] == "EnterpriseConnectors/1.0"
    body = got[0].json()
    assert body["statuscode"] == 4 and body["flowsessionid"] == session
    assert set(body) == {
        "statuscode",
        "statecode",
        "startedon",
        "completedon",
        "flowsessionid",
    }
    assert [c["status"] for c in pad.callbacks] == [500, 408, 503, 200]
