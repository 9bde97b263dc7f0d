"""The runtime: what one worker builds from the config, starts and stops."""

from __future__ import annotations

import pytest

from rasa_rpa.errors import RpaError
from rasa_rpa.models import Job
from rasa_rpa.providers.local import LocalRobotProvider
from rasa_rpa.providers.webhook import WebhookProvider
from rasa_rpa.runtime import Runtime, current_runtime

HOOK = {"hook": {"type": "webhook", "url": "http://127.0.0.1:9/start"}}


def test_providers_are_built_from_the_config(make_config):
    config = make_config(providers=HOOK)
    runtime = Runtime(config)
    providers = runtime.service.providers
    assert set(providers) == {"local", "testbots", "hook"}
    assert type(providers["local"]) is LocalRobotProvider
    assert type(providers["hook"]) is WebhookProvider
    hook = providers["hook"]
    assert (hook.name, hook.config, hook.settings) == (
        "hook",
        config,
        config.providers["hook"],
    )
    # What a provider reports goes through the job service, like a callback.
    assert hook.report == runtime.service.record


async def test_start_runs_everything_and_stop_releases_it(make_config):
    runtime = Runtime(make_config(providers=HOOK))
    await runtime.start()
    try:
        # No module global: outside a request no runtime is "current".
        with pytest.raises(RpaError, match="not running"):
            current_runtime()
        assert runtime.dispatcher._task is not None
        assert runtime.reconciler._task is not None
        assert not runtime.dispatcher._task.done()
        assert not runtime.reconciler._task.done()
        job = Job(id="j1", automation="idle", provider="testbots", conversation_id="c")
        await runtime.store.create_job(job)
        assert (await runtime.store.get_job("j1")).conversation_id == "c"
    finally:
        await runtime.stop()
    assert runtime.dispatcher._task.done() and runtime.reconciler._task.done()
    assert runtime.service.providers["hook"]._client.is_closed


async def test_a_failing_start_closes_what_was_built(make_config, tmp_path):
    # The store's folder cannot be made: a file stands where it should be.
    (tmp_path / "taken").write_text("")
    runtime = Runtime(
        make_config(providers=HOOK, store={"url": f"sqlite:///{tmp_path}/taken/j.db"})
    )
    with pytest.raises(OSError):
        await runtime.start()
    # The plugin never got a runtime to stop: start itself must not leak.
    assert runtime.service.providers["hook"]._client.is_closed
