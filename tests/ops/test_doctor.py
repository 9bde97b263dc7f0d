"""``rasa-rpa doctor``: each misconfiguration is found, with its cause and its fix.

Everything is real HTTP on 127.0.0.1: a small Rasa built on FakeServer (it
serves ``/``, ``/status`` and ``/domain`` like Rasa 3.6, or not, to play an
API that is off), a stand-in action server for ``/rpa/health``, and the
vendor fakes for the provider checks.
"""

from __future__ import annotations

import copy
import json
import sqlite3
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
import yaml

from devtools.stack import ROOT, free_port
from rasa_rpa.cli import main
from rasa_rpa.config import RpaConfig
from rasa_rpa.fakes.automation_anywhere import FakeControlRoom
from rasa_rpa.fakes.base import FakeRequest, FakeServer, Reply
from rasa_rpa.fakes.power_automate import FakePowerAutomate
from rasa_rpa.fakes.robocorp import FakeRobocorp
from rasa_rpa.fakes.sap import FakeSapIrpa
from rasa_rpa.fakes.uipath import FakeOrchestrator
from rasa_rpa.ops.doctor import Finding, Report, diagnose
from rasa_rpa.providers.base import Diagnosis, Provider
from rasa_rpa.testing import RasaStandIn
from tests.conftest import (
    MASTER_KEY,
    TOKEN,
    ActionServer,
    base_config,
    kill_robots_of,
)
from tests.waiting import async_wait_until

DOMAIN: dict[str, Any] = yaml.safe_load((ROOT / "domain.yml").read_text())


class FakeRasa:
    """Rasa's HTTP API as far as the doctor asks: hello, status and domain."""

    def __init__(self, *, api: bool = True, model: bool = True) -> None:
        self.domain: dict[str, Any] = copy.deepcopy(DOMAIN)
        self.model = model
        self.server = FakeServer()
        self.server.route("GET", "/", lambda r: (200, "Hello from Rasa: 3.6.21"))
        if api:  # without --enable-api Rasa serves only "/"
            self.server.route("GET", "/status", self._guard(self._status))
            self.server.route("GET", "/domain", self._guard(self._domain))

    def _guard(self, handler: Any) -> Any:
        def guarded(request: FakeRequest) -> Reply:
            if request.query.get("token") != TOKEN:
                return 401, {"reason": "NotAuthenticated"}
            if not self.model:
                return 409, {"reason": "Conflict", "message": "No agent loaded."}
            reply: Reply = handler(request)
            return reply

        return guarded

    def _status(self, request: FakeRequest) -> Reply:
        return 200, {"model_file": "model.tar.gz", "num_active_training_jobs": 0}

    def _domain(self, request: FakeRequest) -> Reply:
        assert request.headers.get("accept") == "application/json"
        return 200, self.domain

    @property
    def url(self) -> str:
        return self.server.url


@pytest.fixture
def rasa() -> Iterator[FakeRasa]:
    fake = FakeRasa()
    with fake.server:
        yield fake


@pytest.fixture
def action_server() -> Iterator[FakeServer]:
    """What `rasa-rpa run` answers at /rpa/health."""
    server = FakeServer()
    server.route(
        "GET",
        "/rpa/health",
        lambda r: (200, {"status": "ok", "outbox": {"pending": 0, "dead": 0}}),
    )
    with server:
        yield server


def config(tmp: Path, rasa_url: str, public_url: str, **overrides: Any) -> str:
    """A sound rpa.yml in ``tmp`` (one local robot), with ``overrides`` on top."""
    data: dict[str, Any] = {
        "version": 1,
        "rasa": {"url": rasa_url, "token": TOKEN, "timeout": 5},
        "callbacks": {"public_url": public_url, "secret": MASTER_KEY},
        "store": {"url": f"sqlite:///{tmp / 'jobs.db'}"},
        "providers": {"local": {"type": "local", "robots_dir": str(ROOT / "robots")}},
        "automations": {
            "collect_order_details": {
                "provider": "local",
                "task": "collect_order_details",
                "intent": "get_orders",
            }
        },
    }
    data.update(overrides)
    path = tmp / "rpa.yml"
    path.write_text(yaml.safe_dump(data))
    return str(path)


async def run(path: str, domain: str | None = None) -> Report:
    return await diagnose(path, domain)


def find(report: Report, check: str, status: str, *words: str) -> Finding:
    """The finding for ``check`` with ``status`` whose message has ``words``."""
    for finding in report.findings:
        if finding.check == check and finding.status == status:
            if all(w in finding.message for w in words):
                assert finding.fix or status == "ok", f"{finding} names no fix"
                return finding
    raise AssertionError(f"no {status} {check} {words}:\n{report.render()}")


def errors(report: Report) -> list[Finding]:
    return [f for f in report.findings if f.status == "error"]


@pytest.fixture
def sound(tmp_path: Path, rasa: FakeRasa, action_server: FakeServer) -> str:
    return config(tmp_path, rasa.url, action_server.url)


async def test_a_sound_setup_passes(sound: str) -> None:
    report = await run(sound)
    assert errors(report) == [], report.render()
    assert report.exit_code == 0
    find(report, "rasa.reachable", "ok", "Rasa 3.6.21 answers at")
    checks = {f.check for f in report.findings if f.status == "ok"}
    assert {"config", "rasa.api", "domain", "callbacks.public_url"} <= checks


async def test_config_error_is_reported_with_key_and_fix(tmp_path: Path) -> None:
    path = tmp_path / "rpa.yml"
    path.write_text(yaml.safe_dump({"version": 1, "store": {"uri": "x"}}))
    report = await run(str(path))
    finding = find(report, "config", "error", "store.uri")
    assert "remove the key" in finding.fix
    assert report.exit_code == 1


async def test_rasa_down(tmp_path: Path, action_server: FakeServer) -> None:
    down = f"http://127.0.0.1:{free_port()}"
    report = await run(config(tmp_path, down, action_server.url))
    finding = find(report, "rasa.reachable", "error", down)
    assert "rasa.url" in finding.fix
    # The domain file next to rpa.yml is not there: the doctor says so.
    find(report, "domain", "warning", "not checked")


async def test_api_disabled(tmp_path: Path, action_server: FakeServer) -> None:
    with FakeRasa(api=False).server as server:
        report = await run(config(tmp_path, server.url, action_server.url))
    finding = find(report, "rasa.api", "error", "404", "API is off")
    assert "--enable-api" in finding.fix


async def test_wrong_rasa_token(
    tmp_path: Path, rasa: FakeRasa, action_server: FakeServer
) -> None:
    rasa_settings = {"url": rasa.url, "token": "not-the-token"}
    path = config(tmp_path, rasa.url, action_server.url, rasa=rasa_settings)
    report = await run(path)
    finding = find(report, "rasa.token", "error", "does not match", "--auth-token")
    assert "--auth-token" in finding.fix
    assert "not-the-token" not in report.render()


async def test_rasa_without_a_model(tmp_path: Path, action_server: FakeServer) -> None:
    with FakeRasa(model=False).server as server:
        report = await run(config(tmp_path, server.url, action_server.url))
    find(report, "rasa.model", "warning", "without a trained model")


async def test_missing_external_intent(rasa: FakeRasa, sound: str) -> None:
    rasa.domain["intents"].remove("EXTERNAL_rpa_job_failed")
    report = await run(sound)
    finding = find(report, "domain.intents", "error", "EXTERNAL_rpa_job_failed")
    assert "rasa-rpa domain" in finding.fix
    assert "Rasa's domain" in finding.message  # read from GET /domain
    # The running Rasa may serve an older model than domain.yml: say so.
    assert "train and restart Rasa" in finding.fix


async def test_missing_news_response_is_an_error(rasa: FakeRasa, sound: str) -> None:
    del rasa.domain["responses"]["utter_rpa_job_progress"]
    del rasa.domain["responses"]["utter_rpa_no_job"]
    report = await run(sound)
    find(report, "domain.responses", "error", "utter_rpa_job_progress")
    # The actions speak plain English without their own responses: a warning.
    find(report, "domain.responses", "warning", "utter_rpa_no_job")


async def test_missing_action(rasa: FakeRasa, sound: str) -> None:
    rasa.domain["actions"].remove("action_cancel_rpa_job")
    report = await run(sound)
    find(report, "domain.actions", "error", "action_cancel_rpa_job")


async def test_missing_slot_and_unmapped_slot(rasa: FakeRasa, sound: str) -> None:
    del rasa.domain["slots"]["rpa_job_id"]
    rasa.domain["slots"]["rpa_error"]["mappings"] = [{"type": "custom"}]
    report = await run(sound)
    find(report, "domain.slots", "error", "rpa_job_id")
    find(report, "domain.slots", "warning", "rpa_error", "not filled")


async def test_automation_intent_not_in_domain(rasa: FakeRasa, sound: str) -> None:
    rasa.domain["intents"].remove("get_orders")
    report = await run(sound)
    finding = find(report, "automations.collect_order_details", "error", "get_orders")
    assert "automations.collect_order_details.intent" in finding.fix


@pytest.mark.skipif(
    "handover" not in RpaConfig.model_fields, reason="no hand-over in rpa.yml"
)
async def test_handover_intent_not_in_domain(
    tmp_path: Path, rasa: FakeRasa, action_server: FakeServer
) -> None:
    rasa.domain["intents"].remove("EXTERNAL_handover_to_human")
    handover = {"intent": "EXTERNAL_handover_to_human"}
    path = config(tmp_path, rasa.url, action_server.url, handover=handover)
    report = await run(path)
    find(report, "handover.intent", "error", "EXTERNAL_handover_to_human")


async def test_domain_file_is_checked_when_named(
    tmp_path: Path, action_server: FakeServer
) -> None:
    domain = copy.deepcopy(DOMAIN)
    domain["intents"].remove("job_status")
    file = tmp_path / "domain.yml"
    file.write_text(yaml.safe_dump(domain))
    down = f"http://127.0.0.1:{free_port()}"
    report = await run(config(tmp_path, down, action_server.url), str(file))
    finding = find(report, "domain.intents", "error", "job_status")
    assert str(file) in finding.message


async def test_robot_file_missing(
    tmp_path: Path, rasa: FakeRasa, action_server: FakeServer
) -> None:
    automations = {"orders": {"task": "no_such_robot", "intent": "get_orders"}}
    report = await run(
        config(tmp_path, rasa.url, action_server.url, automations=automations)
    )
    finding = find(report, "automations.orders", "error", "no_such_robot.robot")
    assert "automations.orders.task" in finding.fix


async def test_robots_dir_missing(
    tmp_path: Path, rasa: FakeRasa, action_server: FakeServer
) -> None:
    providers = {"local": {"type": "local", "robots_dir": "nowhere"}}
    report = await run(
        config(tmp_path, rasa.url, action_server.url, providers=providers)
    )
    finding = find(report, "providers.local", "error", str(tmp_path / "nowhere"))
    assert "robots_dir" in finding.fix


async def test_no_server_running_is_said_and_offline_checks_go_on(
    tmp_path: Path, rasa: FakeRasa
) -> None:
    public = f"http://127.0.0.1:{free_port()}"
    path = config(tmp_path, rasa.url, public)
    report = await run(path)
    find(report, "server", "warning", "no action server answers at", public)
    # Robots could not call back: an error, whose fix names the key and file.
    finding = find(
        report, "callbacks.public_url", "error", "/rpa/health", "not running"
    )
    assert f"callbacks.public_url in {path}" in finding.fix
    assert report.exit_code == 1
    find(report, "rasa.api", "ok")  # the rest was checked all the same
    find(report, "providers.local", "ok", "robot file(s) found")


async def test_callback_url_without_the_plugin(tmp_path: Path, rasa: FakeRasa) -> None:
    with FakeServer() as other:  # answers 404 to everything
        path = config(tmp_path, rasa.url, other.url)
        report = await run(path)
    finding = find(report, "callbacks.public_url", "error", "404", "rasa-rpa")
    assert "rasa-rpa run" in finding.fix
    assert f"callbacks.public_url in {path}" in finding.fix
    assert report.exit_code == 1


async def test_dead_outbox_messages_are_reported(
    tmp_path: Path, rasa: FakeRasa
) -> None:
    server = FakeServer()
    server.route("GET", "/rpa/health", lambda r: (200, {"outbox": {"dead": 2}}))
    with server:
        report = await run(config(tmp_path, rasa.url, server.url))
    finding = find(report, "outbox", "warning", "2 message(s)")
    assert "replay --all-dead" in finding.fix


async def test_loopback_callback_with_remote_robots(
    tmp_path: Path, rasa: FakeRasa, action_server: FakeServer
) -> None:
    providers = {
        "local": {"type": "local", "robots_dir": str(ROOT / "robots")},
        "n8n": {"type": "webhook", "url": "https://automation.example.com/{task}"},
    }
    path = config(tmp_path, rasa.url, action_server.url, providers=providers)
    report = await run(path)
    find(report, "callbacks.public_url", "warning", "n8n", "cannot call back")
    find(report, "providers.n8n", "ok", "url is set")


# -- vendors -----------------------------------------------------------------


def uipath_config(
    tmp: Path, rasa: FakeRasa, health: FakeServer, fake: FakeOrchestrator, **extra: Any
) -> str:
    entry = {
        "type": "uipath",
        "url": fake.orchestrator_url,
        "client_id": "fake-client",
        "client_secret": "fake-secret",
        "folder_id": 1,
        **extra,
    }
    automations = {"orders": {"provider": "uipath", "task": "collect_order_details"}}
    return config(
        tmp,
        rasa.url,
        health.url,
        providers={"uipath": entry},
        automations=automations,
    )


@pytest.fixture
def orchestrator() -> Iterator[FakeOrchestrator]:
    with FakeOrchestrator(step_delay=0.05) as fake:
        yield fake


async def test_uipath_sound(
    tmp_path: Path, rasa: FakeRasa, action_server: FakeServer, orchestrator: Any
) -> None:
    report = await run(uipath_config(tmp_path, rasa, action_server, orchestrator))
    assert errors(report) == [], report.render()
    find(report, "providers.uipath", "ok", "accepts the credentials")
    find(report, "automations.orders", "ok", "collect_order_details")


async def test_uipath_bad_client_secret(
    tmp_path: Path, rasa: FakeRasa, action_server: FakeServer, orchestrator: Any
) -> None:
    path = uipath_config(
        tmp_path, rasa, action_server, orchestrator, client_secret="s3cret-WRONG"
    )
    report = await run(path)
    find(report, "providers.uipath", "error", "client_id/client_secret")
    assert "s3cret-WRONG" not in report.render()
    assert "s3cret-WRONG" not in json.dumps(report.as_dict())


async def test_uipath_wrong_token_url(
    tmp_path: Path, rasa: FakeRasa, action_server: FakeServer, orchestrator: Any
) -> None:
    wrong = orchestrator.url + "/identity_/wrong"
    path = uipath_config(tmp_path, rasa, action_server, orchestrator, token_url=wrong)
    report = await run(path)
    find(report, "providers.uipath", "error", "looks wrong", "/connect/token")


async def test_uipath_unknown_process(tmp_path: Path, rasa: FakeRasa) -> None:
    health = FakeServer()
    health.route("GET", "/rpa/health", lambda r: (200, {"outbox": {}}))
    with FakeOrchestrator(processes=["something_else"]) as fake, health:
        report = await run(uipath_config(tmp_path, rasa, health, fake))
    finding = find(report, "automations.orders", "error", "unknown process")
    assert "publish" in finding.fix


async def test_provider_option_mistake(
    tmp_path: Path, rasa: FakeRasa, action_server: FakeServer
) -> None:
    providers = {
        "local": {"type": "local", "robots_dir": str(ROOT / "robots")},
        "uipath": {"type": "uipath", "client_id": "x", "client_secret": "y"},
    }
    report = await run(
        config(tmp_path, rasa.url, action_server.url, providers=providers)
    )
    finding = find(report, "providers.uipath", "error", "providers.uipath.url")
    assert "Orchestrator URL" in finding.fix


def sap_config(
    tmp: Path, rasa: FakeRasa, health: FakeServer, fake: FakeSapIrpa, **extra: Any
) -> str:
    entry = {
        "type": "sap",
        "service_key_url": fake.url,
        "client_id": "sb-fake-client",
        "client_secret": "fake-secret",
        "api_key": "fake-api-key",
        "triggers": {
            "collect_order_details": fake.trigger_url("collect_order_details")
        },
        **extra,
    }
    automations = {
        "orders": {"provider": "sap", "task": "collect_order_details"},
        "other": {"provider": "sap", "task": "not_triggered"},
    }
    return config(
        tmp, rasa.url, health.url, providers={"sap": entry}, automations=automations
    )


async def test_sap_bad_secret_and_missing_trigger(
    tmp_path: Path, rasa: FakeRasa, action_server: FakeServer
) -> None:
    with FakeSapIrpa() as fake:
        good = await run(sap_config(tmp_path, rasa, action_server, fake))
        bad = await run(
            sap_config(tmp_path, rasa, action_server, fake, client_secret="nope-9")
        )
    find(good, "providers.sap", "ok", "accepts the credentials")
    find(good, "automations.orders", "ok")
    finding = find(good, "automations.other", "error", "no API trigger")
    assert "triggers" in finding.fix
    find(bad, "providers.sap", "error", "401", "clientid/clientsecret")
    assert "nope-9" not in bad.render()


async def test_automation_anywhere_bad_key_and_unknown_bot(
    tmp_path: Path, rasa: FakeRasa, action_server: FakeServer
) -> None:
    with FakeControlRoom() as fake:
        entry = {
            "type": "automation_anywhere",
            "url": fake.url,
            "username": "rasa-bot",
            "api_key": "fake-api-key",
            "bots": {"collect_order_details": fake.bot_ids["collect_order_details"]},
        }
        automations = {
            "orders": {"provider": "aa", "task": "collect_order_details"},
            "ghost": {"provider": "aa", "task": "ghost"},
        }
        good = await run(
            config(
                tmp_path,
                rasa.url,
                action_server.url,
                providers={"aa": entry},
                automations=automations,
            )
        )
        entry["api_key"] = "wrong-key-77"
        bad = await run(
            config(
                tmp_path,
                rasa.url,
                action_server.url,
                providers={"aa": entry},
                automations=automations,
            )
        )
    find(good, "automations.orders", "ok")
    find(good, "automations.ghost", "error", "unknown bot")
    find(bad, "providers.aa", "error", "refused the login")
    assert "wrong-key-77" not in bad.render()


async def test_vendor_unreachable(
    tmp_path: Path, rasa: FakeRasa, action_server: FakeServer
) -> None:
    gone = f"http://127.0.0.1:{free_port()}"
    providers = {
        "local": {"type": "local", "robots_dir": str(ROOT / "robots")},
        "uipath": {
            "type": "uipath",
            "url": gone + "/org/tenant/orchestrator_",
            "client_id": "a",
            "client_secret": "b",
        },
    }
    report = await run(
        config(tmp_path, rasa.url, action_server.url, providers=providers)
    )
    finding = find(report, "providers.uipath", "error", "cannot reach")
    assert "network" in finding.fix


async def test_robocorp_key_workspace_and_processes(
    tmp_path: Path, rasa: FakeRasa, action_server: FakeServer
) -> None:
    automations = {
        "orders": {"provider": "rc", "task": "collect_order_details"},
        "ghost": {"provider": "rc", "task": "ghost"},
    }

    async def doctor(**changes: Any) -> Report:
        entry = fake.provider_options(**changes)
        providers = {"rc": entry}
        return await run(
            config(
                tmp_path,
                rasa.url,
                action_server.url,
                providers=providers,
                automations=automations,
            )
        )

    with FakeRobocorp() as fake:
        good = await doctor()
        bad_key = await doctor(api_key="rc-key-WRONG-5")
        elsewhere = await doctor(workspace_id="another-workspace")
    find(good, "providers.rc", "ok", "accepts the API key")
    find(good, "automations.orders", "ok", "collect_order_details")
    ghost = find(good, "automations.ghost", "error", "unknown process 'ghost'")
    assert "processes:" in ghost.fix
    find(bad_key, "providers.rc", "error", "refused the API key", "api_key")
    assert "rc-key-WRONG-5" not in bad_key.render()
    find(elsewhere, "providers.rc", "error", "workspace_id")


async def test_power_automate_app_callback_and_flows(
    tmp_path: Path, rasa: FakeRasa, action_server: FakeServer
) -> None:
    automations = {
        "orders": {"provider": "pa", "task": "collect_order_details"},
        "ghost": {"provider": "pa", "task": "Ghost flow"},
    }

    async def doctor(**changes: Any) -> Report:
        providers = {"pa": fake.provider_options(**changes)}
        return await run(
            config(
                tmp_path,
                rasa.url,
                action_server.url,
                providers=providers,
                automations=automations,
            )
        )

    with FakePowerAutomate() as fake:
        good = await doctor()
        bad_secret = await doctor(client_secret="pa-secret-WRONG-7")
        refused = await doctor(callback_url="https://192.0.2.7/hook")
        fake.app_user = False
        no_user = await doctor()
    find(good, "providers.pa", "ok", "accept the application")
    # The test's public URL is http://127.0.0.1: Power Automate would not call it.
    polled = find(good, "providers.pa", "warning", "no callback", "polling")
    assert "HTTPS" in polled.fix
    find(good, "automations.orders", "ok")
    ghost = find(good, "automations.ghost", "error", "unknown desktop flow")
    assert "flows:" in ghost.fix
    find(bad_secret, "providers.pa", "error", "client secret is wrong")
    assert "pa-secret-WRONG-7" not in bad_secret.render()
    find(refused, "providers.pa", "error", "callback_url", "IP addresses")
    find(no_user, "providers.pa", "error", "application user")


# -- the command ---------------------------------------------------------------


def test_command_exit_codes_json_and_progress(
    tmp_path: Path,
    rasa: FakeRasa,
    action_server: FakeServer,
    capsys: pytest.CaptureFixture[str],
) -> None:
    providers = {
        "local": {"type": "local", "robots_dir": str(ROOT / "robots")},
        "more": {"type": "local", "robots_dir": str(ROOT / "tests" / "robots")},
    }
    path = config(tmp_path, rasa.url, action_server.url, providers=providers)
    assert main(["doctor", "--config", path, "--json", "--progress"]) == 0
    captured = capsys.readouterr()
    body = json.loads(captured.out)
    assert body["ok"] is True and body["errors"] == 0
    assert "checking [" in captured.err and "2/2" in captured.err
    assert TOKEN not in captured.out + captured.err

    rasa.domain["actions"].remove("action_start_rpa_job")
    assert main(["doctor", "--config", path]) == 1
    out = capsys.readouterr().out
    assert "ERROR  domain.actions" in out
    assert "fix: add them under actions:" in out
    assert "checking [" not in capsys.readouterr().err  # not a terminal


# -- providers are checked through their public diagnose() ----------------------


class _Diagnosed(Provider):
    """A third-party provider: the doctor knows it only by its diagnose()."""

    type_name = "diagnosed"

    async def start(self, request: Any) -> str | None:
        return None

    async def diagnose(self, tasks: Sequence[str]) -> list[Diagnosis]:
        return [
            Diagnosis("ok", "diagnosed: signed in"),
            *(Diagnosis("error", f"no robot for {t}", "", t) for t in tasks),
        ]


async def test_a_provider_is_checked_through_its_diagnose(
    tmp_path: Path,
    rasa: FakeRasa,
    action_server: FakeServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from rasa_rpa import registry

    builtins = {**registry.BUILTIN_PROVIDERS, "diagnosed": f"{__name__}:_Diagnosed"}
    monkeypatch.setattr(registry, "BUILTIN_PROVIDERS", builtins)
    providers = {"d": {"type": "diagnosed"}}
    automations = {"a": {"provider": "d", "task": "t1"}}
    path = config(
        tmp_path,
        rasa.url,
        action_server.url,
        providers=providers,
        automations=automations,
    )
    report = await run(path)
    find(report, "providers.d", "ok", "signed in")
    finding = find(report, "automations.a", "error", "no robot for t1")
    assert finding.fix == "correct automations.a.task"


# -- the running server's own state -------------------------------------------
#
# Real action servers (`rasa-rpa run`) on 127.0.0.1, with robots, delivering to
# a Rasa stand-in that accepts TOKEN only; the doctor checks the bot's domain
# file (the stand-in serves no domain).

DOMAIN_FILE = str(ROOT / "domain.yml")
TOKEN_VARIABLE = "RPA_DOCTOR_TEST_RASA_TOKEN"
STALE = "stale-token-4711"


@pytest.fixture(scope="module")
def rasa_api() -> Iterator[RasaStandIn]:
    with RasaStandIn(token=TOKEN) as stand_in:
        yield stand_in


def start_server(
    folder: Path, rasa_api: RasaStandIn, public_url: str | None = None, **env: str
) -> ActionServer:
    """`rasa-rpa run` on a free port, reading rasa.token from the environment."""
    port = free_port()
    data = base_config(folder)
    data["rasa"] = {
        **data["rasa"],
        "url": rasa_api.url,
        "token": f"${{{TOKEN_VARIABLE}}}",
    }
    data["callbacks"] = {
        **data["callbacks"],
        "public_url": public_url or f"http://127.0.0.1:{port}",
    }
    server = ActionServer(folder, data, port)
    server.service.env.update({TOKEN_VARIABLE: TOKEN, **env})
    return server.start()


@pytest.fixture(scope="module")
def stale_server(
    tmp_path_factory: pytest.TempPathFactory, rasa_api: RasaStandIn
) -> Iterator[ActionServer]:
    """Started from a shell whose token variable held an old value."""
    folder = tmp_path_factory.mktemp("stale")
    server = start_server(folder, rasa_api, **{TOKEN_VARIABLE: STALE})
    yield server
    server.stop()
    kill_robots_of(folder)


def failing_deliveries(server: ActionServer) -> int:
    with sqlite3.connect(server.tmp / "jobs.db") as db:
        [(count,)] = db.execute(
            "SELECT COUNT(*) FROM outbox WHERE attempts > 0 AND delivered_at IS NULL"
        ).fetchall()
    return int(count)


async def test_the_running_servers_stale_token_and_failing_deliveries(
    stale_server: ActionServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The doctor runs in a shell with the right token; the server has another.

    Read from the files alone, everything looks right (Rasa accepts the
    doctor's token). Only the server's own state shows why nothing arrives.
    """
    monkeypatch.setenv(TOKEN_VARIABLE, TOKEN)
    stale_server.start_job(uuid.uuid4().hex, intent="chat")
    await async_wait_until(
        lambda: failing_deliveries(stale_server), 30, "a delivery failing"
    )
    path = str(stale_server.config_path)
    report = await diagnose(path, DOMAIN_FILE)
    find(report, "rasa.api", "ok", "accepts our credentials")
    find(report, "server", "ok", stale_server.url, path)
    token = find(
        report, "server.rasa.token", "error", "differs from the one the running"
    )
    assert "restart the action server" in token.fix
    failing = find(report, "outbox.failing", "error", "Rasa refused our credentials")
    assert "EXTERNAL_rpa_job_running" in failing.message
    assert "rasa.token" in failing.fix
    find(report, "callbacks.public_url", "ok", "tested from the server itself")
    assert report.exit_code == 1
    shown = report.render() + json.dumps(report.as_dict())
    assert STALE not in shown and TOKEN not in shown and MASTER_KEY not in shown


async def test_same_credentials_and_no_failures_are_said_too(
    tmp_path: Path, rasa_api: RasaStandIn, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(TOKEN_VARIABLE, TOKEN)
    server = start_server(tmp_path, rasa_api)
    try:
        sender = uuid.uuid4().hex
        job_id = server.start_job(sender, intent="chat")
        server.wait_job(job_id, sender, "succeeded")
        report = await diagnose(str(server.config_path), DOMAIN_FILE)
    finally:
        server.stop()
        kill_robots_of(tmp_path)
    find(report, "server.credentials", "ok", "the Rasa URL and credentials of")
    find(report, "outbox", "ok", "no message to Rasa is failing or dead")
    live = ("server", "outbox", "callbacks")
    assert not [f for f in errors(report) if f.check.startswith(live)], report.render()


async def test_a_doctor_with_another_master_key_says_it_is_not_the_servers(
    tmp_path: Path, stale_server: ActionServer, rasa: FakeRasa
) -> None:
    secret = {"public_url": stale_server.url, "secret": "another-key-0123456789abc"}
    path = config(tmp_path, rasa.url, stale_server.url, callbacks=secret)
    report = await diagnose(path, DOMAIN_FILE, server=stale_server.url)
    finding = find(report, "server", "error", "does not know this rpa.yml's key")
    assert "--config" in finding.fix
    assert not [f for f in report.findings if f.check.startswith("outbox.")]


async def test_an_unreachable_public_url_is_tested_from_the_server_itself(
    tmp_path: Path, rasa_api: RasaStandIn, monkeypatch: pytest.MonkeyPatch
) -> None:
    """rpa.yml points robots at a port where nothing listens.

    The doctor finds the server where `rasa-rpa run` left its address, and
    the server's own call to its public URL fails: robots would never be heard.
    """
    monkeypatch.setenv(TOKEN_VARIABLE, TOKEN)
    elsewhere = f"http://127.0.0.1:{free_port()}"
    server = start_server(tmp_path, rasa_api, public_url=elsewhere)
    try:
        report = await diagnose(str(server.config_path), DOMAIN_FILE)
        log = server.log()
    finally:
        server.stop()
        kill_robots_of(tmp_path)
    find(report, "server", "ok", server.url)
    finding = find(
        report,
        "callbacks.public_url",
        "error",
        f"nothing answers at {elsewhere}",
        "tested from the action server itself",
    )
    assert f"callbacks.public_url in {server.config_path}" in finding.fix
    assert server.url in finding.fix  # where it does listen
    assert report.exit_code == 1
    # `rasa-rpa run` said so when it started, too.
    assert (
        f"WARNING: callbacks.public_url in {server.config_path} is {elsewhere}" in log
    )
    assert f"listens on port {server.port}" in log
