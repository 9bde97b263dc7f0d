"""The Robocorp / Sema4.ai Control Room provider against its fake over loopback."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import pytest

from rasa_rpa.config import RpaConfig
from rasa_rpa.errors import ProviderError, ProviderUnavailable
from rasa_rpa.fakes.base import FakeServer
from rasa_rpa.fakes.robocorp import FakeRobocorp
from rasa_rpa.models import EventType, Job, JobEvent, new_job_id
from rasa_rpa.providers.base import StartRequest
from rasa_rpa.providers.robocorp import BUSY, RobocorpProvider
from rasa_rpa.security import JobKeys
from tests.providers.polling import until

KEYS = JobKeys("r" * 32)


@pytest.fixture
def room() -> Iterator[FakeRobocorp]:
    with FakeRobocorp(step_delay=0.05) as fake:
        yield fake


@pytest.fixture
def receiver() -> Iterator[FakeServer]:
    """Stands in for our action server's events API."""
    server = FakeServer()
    server.route("POST", "/rpa/v1/jobs/(?P<job_id>[^/]+)/events", lambda r: (202, {}))
    with server:
        yield server


@pytest.fixture
async def build(
    make_config: Callable[..., RpaConfig], room: FakeRobocorp
) -> AsyncIterator[Callable[..., RobocorpProvider]]:
    """Factory for providers pointed at ``room``; all are closed after the test."""
    made: list[RobocorpProvider] = []

    def make(**options: Any) -> RobocorpProvider:
        config = make_config(providers={"rc": room.provider_options(**options)})

        async def report(event: JobEvent) -> None:
            return None

        provider = RobocorpProvider("rc", config.providers["rc"], config, report)
        made.append(provider)
        return provider

    yield make
    for provider in made:
        await provider.aclose()


def request(
    task: str = "collect_order_details",
    public_url: str = "http://127.0.0.1:9",
    **inputs: Any,
) -> StartRequest:
    job = Job(new_job_id(), "orders", "rc", "conv-1", inputs=inputs)
    return StartRequest(
        job=job,
        task=task,
        inputs=inputs,
        credentials=KEYS.credentials(job.id, "conv-1", public_url),
        timeout=60,
    )


async def started(provider: RobocorpProvider, start: StartRequest) -> Job:
    ref = await provider.start(start)
    return start.job.evolve(provider_ref=ref)




def starts(room: FakeRobocorp) -> list[Any]:
    return [r for r in room.server.requests if r.path.endswith("/process-runs")]


async def test_a_run_carries_the_inputs_and_the_job_context(build, room, receiver):
    room.step_delay = 0.5  # long enough for a poll to see the run in progress
    provider = build()
    start = request(public_url=receiver.url, customer="ACME")
    job = await started(provider, start)
    call = starts(room)[-1]
    assert call.headers["authorization"] == f"RC-WSKEY {room.api_key}"
    process = room.process_ids["collect_order_details"]
    assert call.path == (
        f"/api/v1/workspaces/{room.workspace_id}/processes/{process}/process-runs"
    )
    body = call.json()
    assert body["type"] == "with_payloads"
    assert body["payloads"] == [
        {
            "customer": "ACME",
            "rasa_rpa_job_id": job.id,
            "rasa_rpa_conversation_id": "conv-1",
            "rasa_rpa_events_url": start.credentials.events_url,
            "rasa_rpa_token": start.credentials.token,
        }
    ]
    running = await until(provider, job, EventType.STARTED)
    assert running.id == f"robocorp:{job.provider_ref}:job.started"
    done = await until(provider, job, EventType.SUCCEEDED)
    assert done.data == {
        "outputs": {"order_count": 3, "report_path": "/reports/orders-ACME.csv"}
    }
    # The robot reported progress to the events API with the job's token.
    progress = [r for r in receiver.requests if r.path.endswith("/events")]
    assert progress[0].path == f"/rpa/v1/jobs/{job.id}/events"
    assert progress[0].headers["authorization"] == f"Bearer {start.credentials.token}"


async def test_a_failed_work_item_fails_the_job_with_its_message(build, room):
    provider = build()
    job = await started(provider, request(customer="Nobody Inc"))
    failed = await until(provider, job, EventType.FAILED)
    assert failed.data == {
        "error": "Unknown customer 'Nobody Inc': not in the order book"
    }
    assert room.runs[job.provider_ref].record()["state"] == "unresolved"


async def test_a_mapped_process_starts_without_listing_processes(build, room):
    provider = build(processes={"orders": room.process_ids["echo"]})
    job = await started(provider, request(task="orders", text="hi"))
    assert not [r for r in room.server.requests if r.path.endswith("/processes")]
    done = await until(provider, job, EventType.SUCCEEDED)
    assert done.data["outputs"]["text"] == "hi"


async def test_names_are_looked_up_once(build, room):
    provider = build()
    await provider.start(request(customer="ACME"))
    await provider.start(request(customer="Globex"))
    lists = [r for r in room.server.requests if r.path.endswith("/processes")]
    assert len(lists) == 1


async def test_unknown_process_is_told_plainly(build, room):
    provider = build()
    with pytest.raises(ProviderError) as caught:
        await provider.start(request(task="no_such_process"))
    assert "unknown process 'no_such_process'" in caught.value.message
    assert caught.value.user_message == "it is not set up correctly"
    assert caught.value.job_id


async def test_a_busy_control_room_is_unavailable_with_a_plain_message(build, room):
    provider = build()
    room.busy = True
    with pytest.raises(ProviderUnavailable) as caught:
        await provider.start(request(customer="ACME"))
    assert "409" in caught.value.message
    assert caught.value.user_message == BUSY


async def test_a_wrong_key_is_told_without_the_key(build, room):
    provider = build(api_key="wrong-rc-key-42")
    with pytest.raises(ProviderError) as caught:
        await provider.start(request(customer="ACME"))
    assert "refused the API key" in caught.value.message
    assert "wrong-rc-key-42" not in str(caught.value)
    assert not isinstance(caught.value, ProviderUnavailable)


async def test_another_workspace_names_workspace_id(build, room):
    provider = build(workspace_id="someone-elses")
    with pytest.raises(ProviderError, match="workspace_id"):
        await provider.start(request(customer="ACME"))


async def test_server_errors_are_unavailable(build, room):
    provider = build()
    room.fail_next_requests(1, status=503)
    with pytest.raises(ProviderUnavailable, match="503"):
        await provider.start(request(customer="ACME"))


async def test_cancel_stops_the_run_and_its_end_reads_cancelled(build, room):
    provider = build()
    job = await started(provider, request(customer="ACME"))
    await provider.cancel(job)
    stop = [r for r in room.server.requests if r.path.endswith("/stop")][-1]
    assert stop.json()["set_remaining_work_items_as_done"] is False
    assert stop.json()["terminate_ongoing_activity_runs"] is True
    assert job.id in stop.json()["reason"]
    final = room.wait(str(job.provider_ref))
    assert final["state"] == "unresolved"  # what a stopped run leaves (GUESS)
    events = await provider.poll(job)
    assert [e.type for e in events] == [EventType.CANCELLED]


async def test_cancelling_a_finished_run_is_no_error(build, room):
    provider = build()
    job = await started(provider, request(task="echo"))
    room.wait(str(job.provider_ref))
    await provider.cancel(job)  # the stop is refused; the run ended anyway
    assert (await provider.poll(job))[0].type is EventType.SUCCEEDED


async def test_doctor_finds_the_workspace_and_each_process(build, room):
    provider = build()
    found = await provider.diagnose(["collect_order_details", "ghost"])
    assert [d.status for d in found] == ["ok", "ok", "error"]
    assert "'Fake workspace'" in found[0].message
    assert found[2].task == "ghost"
    assert "processes:" in found[2].fix


async def test_doctor_says_which_setting_is_wrong(build, room):
    with pytest.raises(ProviderError, match="check url"):
        await build(url=room.url + "/process-v1").diagnose([])
    with pytest.raises(ProviderError, match="refused the API key"):
        await build(api_key="nope").diagnose([])


def test_an_empty_key_is_refused_at_load(make_config, room):
    from rasa_rpa.errors import ConfigError

    with pytest.raises(ConfigError) as caught:
        make_config(providers={"rc": room.provider_options(api_key="")})
    assert caught.value.key == "providers.rc.api_key"
    assert "API keys" in caught.value.fix


def test_the_key_is_a_secret_the_logs_hide(make_config, room):
    from rasa_rpa.config import secret_values

    config = make_config(providers={"rc": room.provider_options()})
    assert room.api_key in secret_values(config)
