"""The fake Control Room answers as the documented Control Room API does."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from rasa_rpa.fakes.robocorp import FakeRobocorp


@pytest.fixture
def room() -> Iterator[FakeRobocorp]:
    with FakeRobocorp(step_delay=0.05) as fake:
        yield fake


def call(room: FakeRobocorp, method: str, path: str, **kwargs: Any) -> httpx.Response:
    headers = {"Authorization": f"RC-WSKEY {room.api_key}", **kwargs.pop("headers", {})}
    url = f"{room.api_url}/workspaces/{room.workspace_id}{path}"
    return httpx.request(method, url, headers=headers, timeout=5, **kwargs)


def test_every_call_needs_the_workspace_key(room):
    for headers in ({}, {"Authorization": "Bearer x"}, {"Authorization": "RC-WSKEY x"}):
        answer = httpx.get(
            f"{room.api_url}/workspaces/{room.workspace_id}", headers=headers, timeout=5
        )
        assert answer.status_code == 401
        assert set(answer.json()["error"]) == {"code", "message"}
    other = httpx.get(
        f"{room.api_url}/workspaces/other",
        headers={"Authorization": f"RC-WSKEY {room.api_key}"},
        timeout=5,
    )
    assert other.status_code == 403


def test_workspace_and_processes(room):
    assert call(room, "GET", "").json()["id"] == room.workspace_id
    listed = call(room, "GET", "/processes").json()
    assert listed["has_more"] is False
    assert {p["name"] for p in listed["data"]} == set(room.process_ids)
    assert {"id", "name", "created_at"} <= set(listed["data"][0])


def test_a_run_with_payloads_goes_to_completed_with_outputs(room):
    pid = room.process_ids["collect_order_details"]
    body = {"type": "with_payloads", "payloads": [{"customer": "Globex"}]}
    started = call(room, "POST", f"/processes/{pid}/process-runs", json=body)
    assert started.status_code == 200
    assert started.json()["started"] is True
    run_id = started.json()["id"]
    record = call(room, "GET", f"/process-runs/{run_id}").json()
    assert record["state"] in ("new", "in_progress")
    assert record["process"] == {"id": pid, "name": "collect_order_details"}
    assert room.wait(run_id)["state"] == "completed"
    outputs = call(room, "GET", "/outputs", params={"process_run_id": run_id}).json()
    assert outputs["data"][0]["payload"]["order_count"] == 2
    items = call(room, "GET", "/work-items", params={"process_run_id": run_id}).json()
    assert [i["state"] for i in items["data"]] == ["done"]
    assert "payload" not in items["data"][0]  # WorkItemWithoutDataResource


def test_a_failing_robot_leaves_the_run_unresolved(room):
    pid = room.process_ids["always_fails"]
    body = {"type": "with_payloads", "payloads": [{"reason": "out of paper"}]}
    run_id = call(room, "POST", f"/processes/{pid}/process-runs", json=body).json()[
        "id"
    ]
    assert room.wait(run_id)["state"] == "unresolved"
    items = call(
        room, "GET", "/work-items", params={"process_run_id": run_id, "state": "failed"}
    ).json()["data"]
    assert items[0]["exception"]["message"] == "out of paper"
    assert items[0]["exception"]["type"] in (
        "application",
        "business",
        "orchestrator",
        "unspecified",
    )


@pytest.mark.parametrize(
    "body",
    [
        {"type": "with_everything"},
        {"type": "with_payloads"},
        {"type": "with_payloads", "payloads": []},
        {"type": "with_work_item_ids", "work_item_ids": "x"},
        ["not", "an", "object"],
    ],
)
def test_bodies_it_cannot_read_are_400(room, body):
    pid = room.process_ids["echo"]
    answer = call(room, "POST", f"/processes/{pid}/process-runs", json=body)
    assert answer.status_code == 400
    assert answer.json()["error"]["message"]


def test_no_body_starts_one_empty_work_item(room):
    pid = room.process_ids["echo"]
    answer = call(room, "POST", f"/processes/{pid}/process-runs")
    assert answer.status_code == 200
    assert room.runs[answer.json()["id"]].payloads == [{}]


def test_stop_needs_its_two_flags_and_stops_once(room):
    pid = room.process_ids["collect_order_details"]
    body = {"type": "with_payloads", "payloads": [{}]}
    run_id = call(room, "POST", f"/processes/{pid}/process-runs", json=body).json()[
        "id"
    ]
    assert (
        call(room, "POST", f"/process-runs/{run_id}/stop", json={}).status_code == 400
    )
    flags = {
        "set_remaining_work_items_as_done": False,
        "terminate_ongoing_activity_runs": True,
    }
    stopped = call(room, "POST", f"/process-runs/{run_id}/stop", json=flags)
    assert stopped.json() == {"accepted": True}
    assert call(room, "GET", f"/process-runs/{run_id}").json()["state"] in (
        "stopping",
        "unresolved",
    )
    room.wait(run_id)
    again = call(room, "POST", f"/process-runs/{run_id}/stop", json=flags)
    assert again.status_code == 400


def test_busy_unknown_and_missing(room):
    room.busy = True
    pid = room.process_ids["echo"]
    assert (
        call(room, "POST", f"/processes/{pid}/process-runs", json={}).status_code == 409
    )
    assert (
        call(room, "POST", "/processes/nope/process-runs", json={}).status_code == 404
    )
    assert call(room, "GET", "/process-runs/nope").status_code == 404
