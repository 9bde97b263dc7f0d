"""The local provider runs real Robot Framework robots that report back."""

from __future__ import annotations

import io
import json
import os
import uuid
from pathlib import Path

import pytest
import requests
from openpyxl import load_workbook

from devtools.stack import ROOT
from rasa_rpa.providers.local import MAX_ARG_BYTES, argv_problem, describe_exit
from tests.waiting import descendants, pid_gone, wait_until

ADMIN = "test-admin-token"


def intents(rasa, sender):
    return [
        c.body["name"] for c in rasa.calls_for(sender) if c.endpoint == "trigger_intent"
    ]


@pytest.fixture
def server(action_server, rasa_stand_in):
    # These tests count every message a robot's keywords send. Coalescing
    # (on by default) rightly drops a progress update a newer one overtook
    # while it waited, which happens here whenever two arrive close together.
    return action_server(
        rasa_url=rasa_stand_in.url, delivery={"coalesce_progress": False}
    )


def test_order_robot_reports_progress_and_sends_its_report(server, rasa_stand_in):
    sender = uuid.uuid4().hex
    job_id = server.start_job(
        sender, entities=[{"entity": "customer", "value": "ACME"}]
    )
    job = server.wait_job(job_id, sender, "succeeded")
    assert job["inputs"]["customer"] == "ACME"
    # No server path among the outputs: the report travels as a file.
    assert job["outputs"] == {"order_count": 3}
    rasa_stand_in.wait_for(
        lambda _: "EXTERNAL_rpa_job_succeeded" in intents(rasa_stand_in, sender)
    )
    assert intents(rasa_stand_in, sender) == [
        "EXTERNAL_rpa_job_running",
        "EXTERNAL_rpa_job_progress",
        "EXTERNAL_rpa_job_progress",
        "EXTERNAL_rpa_job_progress",
        "EXTERNAL_rpa_job_file",
        "EXTERNAL_rpa_job_succeeded",
    ]
    [sent] = file_news(rasa_stand_in, sender)
    assert sent["rpa_file_title"] == "order report"
    assert sent["rpa_file_name"] == "orders-ACME.xlsx"
    assert sent["rpa_file_size"].endswith(" KB")
    download = requests.get(sent["rpa_file_url"], timeout=10)
    assert download.status_code == 200
    sheet = load_workbook(io.BytesIO(download.content)).active
    rows = list(sheet.iter_rows(min_row=2, values_only=True))
    assert [row[1] for row in rows] == ["ACME"] * 3
    progress = [
        c.body["entities"].get("rpa_progress") for c in rasa_stand_in.calls_for(sender)
    ]
    assert progress[1:4] == [10, 50, 90]


def file_news(rasa, sender):
    return [
        c.body["entities"]
        for c in rasa.calls_for(sender)
        if c.endpoint == "trigger_intent" and c.body["name"] == "EXTERNAL_rpa_job_file"
    ]


def test_output_files_are_sent_after_success_from_the_run_folder_only(
    action_server, rasa_stand_in
):
    server = action_server(
        rasa_url=rasa_stand_in.url,
        providers={
            "filebots": {
                "type": "local",
                "robots_dir": str(ROOT / "tests" / "robots"),
                "files": {
                    "report_path": "order summary",
                    "relative_path": "same summary",
                    "escape_path": "a file of the server's",
                    "no_such_output": "nothing",
                },
            }
        },
        automations={
            "report": {"provider": "filebots", "task": "report", "intent": "report"}
        },
    )
    sender = uuid.uuid4().hex
    job_id = server.start_job(sender, intent="report")
    server.wait_job(job_id, sender, "succeeded")
    rasa_stand_in.wait_for(lambda _: len(file_news(rasa_stand_in, sender)) >= 2)
    sent = {n["rpa_file_title"]: n for n in file_news(rasa_stand_in, sender)}
    # The one outside the job's run folder never leaves the machine.
    assert set(sent) == {"order summary", "same summary"}
    link = sent["order summary"]["rpa_file_url"]
    assert requests.get(link, timeout=10).text == "customer,orders\nACME,3\n"
    # After the news of success, which the robot's listener sent first.
    assert intents(rasa_stand_in, sender)[-3:] == [
        "EXTERNAL_rpa_job_succeeded",
        "EXTERNAL_rpa_job_file",
        "EXTERNAL_rpa_job_file",
    ]
    assert "escape_path names no file in the job's run folder" in server.log()


def test_unknown_customer_fails_with_the_keywords_message(server, rasa_stand_in):
    sender = uuid.uuid4().hex
    job_id = server.start_job(
        sender, entities=[{"entity": "customer", "value": "Nobody Inc"}]
    )
    job = server.wait_job(job_id, sender, "failed")
    assert job["error"].startswith("Unknown customer 'Nobody Inc'")
    calls = rasa_stand_in.wait_for(
        lambda _: "EXTERNAL_rpa_job_failed" in intents(rasa_stand_in, sender)
    )
    failed = [c for c in calls if c.conversation_id == sender][-1]
    assert "Nobody Inc" in failed.body["entities"]["rpa_error"]


def test_every_keyword_reaches_the_conversation(server, rasa_stand_in):
    sender = uuid.uuid4().hex
    job_id = server.start_job(sender, intent="chat")
    job = server.wait_job(job_id, sender, "succeeded")
    assert job["outputs"] == {"invoice_total": "99.5"}
    rasa_stand_in.wait_for(
        lambda _: "EXTERNAL_rpa_job_succeeded" in intents(rasa_stand_in, sender)
    )
    calls = rasa_stand_in.calls_for(sender)
    bot = next(
        c
        for c in calls
        if c.endpoint == "tracker/events" and c.body[0]["event"] == "bot"
    )
    assert bot.body[0]["text"] == "Looking at 2 invoices"
    assert bot.body[0]["data"]["buttons"] == [
        {"title": "Stop", "payload": "/cancel_job"}
    ]
    slot = next(
        c
        for c in calls
        if c.endpoint == "tracker/events" and c.body[0]["event"] == "slot"
    )
    [slot_event] = slot.body
    assert (slot_event["name"], slot_event["value"]) == ("invoice_count", "2")
    assert slot_event["metadata"]["rpa_delivery_id"].startswith(job_id)
    progress = [
        c.body["entities"]
        for c in calls
        if c.endpoint == "trigger_intent"
        and c.body["name"] == "EXTERNAL_rpa_job_progress"
    ]
    # one per finished task (2 tasks: 50 %) and the explicit Report Progress 75
    assert [p["rpa_progress"] for p in progress] == [50, 75]


def test_failing_task_reports_the_fail_message(server):
    sender = uuid.uuid4().hex
    job_id = server.start_job(
        sender, intent="chat", entities=[{"entity": "fail", "value": "yes"}]
    )
    job = server.wait_job(job_id, sender, "failed")
    assert job["error"] == "Invoice INV-7 is locked by another user"


def test_cancel_stops_the_robot_process(action_server, rasa_stand_in):
    server = action_server(rasa_url=rasa_stand_in.url, admin={"token": ADMIN})
    sender = uuid.uuid4().hex
    job_id = server.start_job(sender, intent="wait")
    server.wait_job(job_id, sender, "running")
    pid = _robot_pid(job_id)
    result = server.run_action("action_cancel_rpa_job", sender)
    assert "stopping" in result["responses"][0]["text"]
    assert server.job(job_id, sender)["state"] == "cancelled"
    _wait_gone(pid)
    rasa_stand_in.wait_for(
        lambda _: "EXTERNAL_rpa_job_cancelled" in intents(rasa_stand_in, sender)
    )
    # The dying robot's exit code, reported as "failed" once the provider has
    # seen it exit, is recorded and changes nothing.
    exit_event = wait_until(
        lambda: next(
            (e for e in timeline(server, job_id) if e["source"] == "local-exit"), None
        ),
        10,
        "the robot's exit code is recorded",
    )
    assert (exit_event["type"], exit_event["applied"]) == ("job.failed", False)
    assert server.job(job_id, sender)["state"] == "cancelled"


def test_job_past_its_timeout_expires_and_is_stopped(action_server, rasa_stand_in):
    server = action_server(
        rasa_url=rasa_stand_in.url,
        automations={
            "idle": {
                "provider": "testbots",
                "task": "idle",
                "intent": "wait",
                "timeout": "2s",
            }
        },
    )
    sender = uuid.uuid4().hex
    job_id = server.start_job(sender, intent="wait")
    server.wait_job(job_id, sender, "running")
    pid = _robot_pid(job_id)
    job = server.wait_job(job_id, sender, "expired", timeout=15)
    assert "timeout" in job["error"]
    _wait_gone(pid)
    rasa_stand_in.wait_for(
        lambda _: "EXTERNAL_rpa_job_expired" in intents(rasa_stand_in, sender)
    )


def test_unknown_task_tells_the_user(server):
    sender = uuid.uuid4().hex
    result = server.run_action("action_start_rpa_job", sender, intent="missing")
    reply = result["responses"][0]["text"]
    assert reply == (
        "Sorry, I couldn't start your missing job: its robot is not installed here."
    )
    job_id = result["events"][0]["value"]
    # The user (and the status action) read plain words; the task and path
    # are for the operator, in the log and the job's event log.
    assert server.job(job_id, sender)["error"] == "its robot is not installed here"
    assert "unknown task 'does_not_exist'" in server.log()


@pytest.mark.parametrize(
    ("code", "words"),
    [
        (0, "all tasks passed"),
        (2, "2 task(s) failed"),
        (252, "invalid robot data"),
        (-9, "killed by signal 9"),
    ],
)
def test_exit_codes_in_words(code, words):
    assert words in describe_exit(code)


def _robot_pid(job_id: str) -> int:
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                cmdline = (entry / "cmdline").read_bytes()
            except OSError:
                continue
            if b"robot" in cmdline and job_id.encode() in cmdline:
                return int(entry.name)
    raise AssertionError(f"no robot process for {job_id}")


def _wait_gone(pid: int, timeout: float = 10) -> None:
    wait_until(lambda: pid_gone(pid), timeout, f"robot process {pid} ended")


def timeline(server, job_id: str) -> list[dict]:
    """The job's recorded events, from the admin API."""
    response = requests.get(
        f"{server.url}/rpa/v1/jobs/{job_id}/events",
        timeout=10,
        headers={"Authorization": f"Bearer {ADMIN}"},
    )
    response.raise_for_status()
    return list(response.json()["events"])


def test_robots_see_only_an_allow_list_of_the_server_environment(
    action_server, rasa_stand_in, monkeypatch
):
    monkeypatch.setenv("RASA_TOKEN", "server-only-secret")
    monkeypatch.setenv("ROBOT_EXTRA", "shared on purpose")
    server = action_server(
        rasa_url=rasa_stand_in.url,
        providers={
            "testbots": {
                "type": "local",
                "robots_dir": str(Path(__file__).parent.parent / "robots"),
                "env_passthrough": ["ROBOT_EXTRA"],
            }
        },
    )
    sender = uuid.uuid4().hex
    job_id = server.start_job(sender, intent="env")
    outputs = server.wait_job(job_id, sender, "succeeded")["outputs"]
    assert outputs["rasa_token"] == "absent"
    assert outputs["has_path"] != "absent"
    assert outputs["passed"] == "shared on purpose"


def test_a_reused_pid_is_never_signalled(tmp_path):
    from rasa_rpa.providers.local import _runs_job

    assert _runs_job(os.getpid(), "not-a-job-of-this-process") is False
    assert _runs_job(2**22 + 12345, "any") is False  # no such process


@pytest.mark.parametrize(
    ("argument", "problem"),
    [
        ("customer:ACME\x00x", "NUL byte"),
        ("customer:\ud800", "lone surrogate"),
        ("customer:" + "x" * MAX_ARG_BYTES, "bytes long"),
    ],
)
def test_what_a_command_line_cannot_carry_is_named(argument, problem):
    assert problem in (argv_problem(argument) or "")


def test_ordinary_text_fits_on_a_command_line():
    assert argv_problem("customer:M\u00fcller & S\u00f6hne; 'quoted'") is None


PYFAIL = {
    "pyfail": {
        "provider": "testbots",
        "task": "pyfail",
        "intent": "pyfail",
        "inputs": {"mode": {"entity": "mode", "default": "exception"}},
    }
}


def _pyfail(action_server, rasa_stand_in, mode: str):
    server = action_server(
        rasa_url=rasa_stand_in.url, admin={"token": ADMIN}, automations=PYFAIL
    )
    sender = uuid.uuid4().hex
    job_id = server.start_job(
        sender, intent="pyfail", entities=[{"entity": "mode", "value": mode}]
    )
    return server, sender, job_id


def test_a_python_exception_reaches_the_user_as_plain_words(
    action_server, rasa_stand_in
):
    server, sender, job_id = _pyfail(action_server, rasa_stand_in, "exception")
    job = server.wait_job(job_id, sender, "failed")
    assert job["error"] == "the robot stopped on an unexpected error"
    calls = rasa_stand_in.wait_for(
        lambda _: "EXTERNAL_rpa_job_failed" in intents(rasa_stand_in, sender)
    )
    failed = [c for c in calls if c.conversation_id == sender][-1]
    assert "orders.csv" not in json.dumps(failed.body)
    status = server.run_action("action_rpa_job_status", sender)
    assert "secret/dir" not in json.dumps(status)
    # The operator still reads what happened, in the job's event log.
    [event] = [
        e
        for e in timeline(server, job_id)
        if e["source"] == "robot" and e["type"] == "job.failed"
    ]
    assert event["data"]["detail"].startswith("FileNotFoundError: ")
    assert "/nonexistent/secret/dir/orders.csv" in event["data"]["detail"]


def test_a_robots_own_credentials_never_reach_the_store_or_rasa(
    action_server, rasa_stand_in
):
    server, sender, job_id = _pyfail(action_server, rasa_stand_in, "token")
    job = server.wait_job(job_id, sender, "failed")
    secret = server.keys.signing_secret(job_id)
    assert job["error"] == "Token is [redacted] and secret is [redacted]"
    calls = rasa_stand_in.wait_for(
        lambda _: "EXTERNAL_rpa_job_failed" in intents(rasa_stand_in, sender)
    )
    sent = json.dumps([c.body for c in calls if c.conversation_id == sender])
    assert "eyJ" not in sent and secret not in sent
    store = (server.tmp.parent / "jobs.db").read_bytes()
    assert secret.encode() not in store and b"eyJ" not in store


def test_chat_text_keeps_its_links_but_loses_credentials(action_server, rasa_stand_in):
    server, sender, job_id = _pyfail(action_server, rasa_stand_in, "chat")
    job = server.wait_job(job_id, sender, "succeeded")
    assert job["outputs"] == {"secret": "[redacted]"}
    calls = rasa_stand_in.wait_for(
        lambda _: any(
            c.endpoint == "tracker/events" for c in rasa_stand_in.calls_for(sender)
        )
    )
    [bot] = [
        c.body[0]
        for c in calls
        if c.conversation_id == sender
        and c.endpoint == "tracker/events"
        and c.body[0]["event"] == "bot"
    ]
    assert bot["text"] == "Token [redacted] at https://erp.example/orders?page=2"


def test_cancel_stops_the_robots_whole_process_tree(action_server, rasa_stand_in):
    # Robot Framework's Process library starts each child in a session of
    # its own, out of reach of a signal to the robot's process group; this
    # child also ignores SIGTERM, so only a SIGKILL to it ends it.
    server = action_server(
        rasa_url=rasa_stand_in.url,
        automations={
            "spawner": {"provider": "testbots", "task": "spawner", "intent": "spawn"}
        },
    )
    sender = uuid.uuid4().hex
    job_id = server.start_job(sender, intent="spawn")
    server.wait_job(job_id, sender, "running")
    pid = _robot_pid(job_id)
    tree = wait_until(
        lambda: (found := descendants(pid)) and len(found) >= 2 and found,
        10,
        "the robot's child and grandchild run",
    )
    server.run_action("action_cancel_rpa_job", sender)
    assert server.job(job_id, sender)["state"] == "cancelled"
    wait_until(
        lambda: all(pid_gone(p) for p in {pid, *tree}),
        15,
        f"robot {pid} and its descendants {sorted(tree)} ended",
    )
