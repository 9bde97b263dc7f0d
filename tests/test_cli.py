"""The rasa-rpa command: config checks, tokens, clear errors."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import pytest
import yaml

from rasa_rpa.cli import main
from rasa_rpa.security import JobKeys
from tests.conftest import MASTER_KEY, base_config


def write(tmp_path, **overrides):
    path = tmp_path / "rpa.yml"
    path.write_text(yaml.safe_dump(base_config(tmp_path, **overrides)))
    return str(path)


def test_check_config_ok(tmp_path, capsys):
    assert main(["check-config", "--config", write(tmp_path)]) == 0
    assert "OK (5 automation(s)" in capsys.readouterr().out


def test_config_error_exits_2_and_names_the_key(tmp_path, capsys):
    path = write(tmp_path, store={"uri": "sqlite:///x.db"})
    assert main(["check-config", "--config", path]) == 2
    err = capsys.readouterr().err
    assert "store.uri" in err
    assert "Fix:" in err


def test_token_opens_the_named_job(tmp_path, capsys):
    assert main(["token", "job-1", "conv-1", "--config", write(tmp_path)]) == 0
    token = capsys.readouterr().out.strip()
    claims = JobKeys(MASTER_KEY).verify_token(token, "job-1")
    assert claims.conversation_id == "conv-1"


def test_fake_command_serves_the_vendor_api(tmp_path):
    import subprocess
    import sys

    import requests

    from devtools.stack import free_port, wait_http

    port = free_port()
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "rasa_rpa.cli",
            "fake",
            "sap",
            "--port",
            str(port),
            "--set",
            "api_key=dev-key",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        wait_http(f"http://127.0.0.1:{port}/oauth/token", 20, process)
        refused = requests.post(f"http://127.0.0.1:{port}/oauth/token", timeout=5)
        assert refused.status_code in (400, 401)
    finally:
        process.terminate()
        process.wait(10)


def test_fake_command_lists_vendors(capsys):
    assert main(["fake", "nope"]) == 2
    err = capsys.readouterr().err
    for name in ("automation_anywhere", "robocorp", "power-automate"):
        assert name in err


@pytest.mark.parametrize(
    "name, fake",
    [
        ("robocorp", "FakeRobocorp"),
        ("power-automate", "FakePowerAutomate"),
        ("power_automate", "FakePowerAutomate"),
        ("automation-anywhere", "FakeControlRoom"),
    ],
)
def test_fake_names_match_with_dash_or_underscore(name, fake):
    from rasa_rpa.fakes import fake_target

    assert str(fake_target(name)).endswith(f":{fake}")


def test_fake_power_automate_serves_entra_and_dataverse():
    import subprocess
    import sys

    import requests

    from devtools.stack import free_port, wait_http

    port = free_port()
    process = subprocess.Popen(
        [
            *(sys.executable, "-m", "rasa_rpa.cli", "fake", "power-automate"),
            *("--port", str(port), "--set", "tenant_id=contoso"),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        url = f"http://127.0.0.1:{port}"
        wait_http(f"{url}/api/data/v9.2/WhoAmI", 20, process)
        assert requests.get(f"{url}/api/data/v9.2/WhoAmI", timeout=5).status_code == 401
        refused = requests.post(f"{url}/contoso/oauth2/v2.0/token", timeout=5)
        assert refused.status_code == 400
        assert refused.json()["error"] == "unsupported_grant_type"
    finally:
        process.terminate()
        process.wait(10)


# -- check-config builds providers ---------------------------------------------


def test_check_config_builds_providers(tmp_path, capsys):
    providers = {"uipath": {"type": "uipath", "client_id": "x", "client_secret": "y"}}
    path = write(tmp_path, providers=providers, automations={})
    assert main(["check-config", "--config", path]) == 2
    err = capsys.readouterr().err
    assert "providers.uipath.url" in err and "Fix:" in err


def test_token_and_send_event_share_one_key_maker(tmp_path):
    from rasa_rpa.cli import job_keys
    from rasa_rpa.config import load_config

    keys = job_keys(load_config(write(tmp_path)))
    token = keys.mint_token("job-1", "conv-1")
    assert JobKeys(MASTER_KEY).verify_token(token, "job-1").conversation_id == "conv-1"


# -- jobs ------------------------------------------------------------------------


def seeded(tmp_path, count=4, dead=False):
    import asyncio

    from tests.ops.test_export import seed

    asyncio.run(seed(tmp_path / "jobs.db", count, dead=dead))
    return write(tmp_path)


def test_jobs_list(tmp_path, capsys):
    path = seeded(tmp_path)
    assert main(["jobs", "list", "--config", path]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split()[:4] == ["JOB", "REF", "AUTOMATION", "STATE"]
    assert [line.split()[0] for line in lines[1:]] == [
        "job-003",
        "job-002",
        "job-001",
        "job-000",
    ]
    assert "boom" in lines[-1]
    args = ["jobs", "list", "--config", path, "--conversation", "conv-1", "--json"]
    assert main([*args, "--limit", "1"]) == 0
    jobs = json.loads(capsys.readouterr().out)["jobs"]
    assert [(j["id"], j["conversation_id"]) for j in jobs] == [("job-003", "conv-1")]


def test_jobs_show_timeline_and_outbox(tmp_path, capsys):
    path = seeded(tmp_path, count=1, dead=True)
    assert main(["jobs", "show", "job-000", "--config", path]) == 0
    out = capsys.readouterr().out
    assert "state         failed" in out
    assert "events (2)" in out and "job.started" in out and "job.failed" in out
    assert "dead" in out and "Rasa answered 400: bad" in out
    assert "EXTERNAL_rpa_job_running" in out
    assert main(["jobs", "show", "job-000", "--config", path, "--json"]) == 0
    body = json.loads(capsys.readouterr().out)
    assert body["job"]["state"] == "failed"
    assert [e["type"] for e in body["events"]] == ["job.started", "job.failed"]
    statuses = {m["status"] for m in body["outbox"]}
    assert statuses == {"dead", "pending"}


def test_jobs_show_finds_a_job_by_the_reference_the_user_was_shown(tmp_path, capsys):
    import asyncio

    from rasa_rpa.models import Job, new_job_id
    from rasa_rpa.stores.sqlite import SQLiteJobStore
    from rasa_rpa.variables import job_ref

    path = seeded(tmp_path, count=1)
    job = Job(new_job_id(), "orders", "local", "conv-9")

    async def add() -> None:
        store = SQLiteJobStore(tmp_path / "jobs.db")
        await store.open()
        await store.create_job(job)
        await store.close()

    asyncio.run(add())
    ref = job_ref(job.id)
    for typed in (ref, ref.lower().replace("-", "")):
        assert main(["jobs", "show", typed, "--config", path]) == 0
        assert f"job {job.id} (reference {ref})" in capsys.readouterr().out
    assert main(["jobs", "list", "--config", path]) == 0
    assert ref in capsys.readouterr().out
    other = "ZZZ-ZZZ" if ref != "ZZZ-ZZZ" else "000-000"
    assert main(["jobs", "show", other, "--config", path]) == 1
    assert f"'{other}' does not exist" in capsys.readouterr().err


def test_jobs_show_unknown_job(tmp_path, capsys):
    path = seeded(tmp_path, count=1)
    assert main(["jobs", "show", "nope", "--config", path]) == 1
    assert "'nope' does not exist" in capsys.readouterr().err


def test_jobs_without_a_store_say_where_they_looked(tmp_path, capsys):
    assert main(["jobs", "list", "--config", write(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert "no job store at" in err and "jobs.db" in err
    assert not (tmp_path / "jobs.db").exists()  # not created by looking


def test_jobs_replay(tmp_path, capsys):
    import asyncio

    from rasa_rpa.stores.sqlite import SQLiteJobStore

    path = seeded(tmp_path, count=1, dead=True)

    async def dead_seqs():
        store = SQLiteJobStore(tmp_path / "jobs.db")
        await store.open()
        try:
            return [m.seq for m in await store.list_outbox(status="dead")]
        finally:
            await store.close()

    [seq] = asyncio.run(dead_seqs())
    assert main(["jobs", "replay", str(seq), "--config", path]) == 0
    assert f"seq {seq}: queued again" in capsys.readouterr().out
    assert asyncio.run(dead_seqs()) == []
    # Pending now, so not dead: nothing to replay, and the exit code says so.
    assert main(["jobs", "replay", str(seq), "--config", path, "--json"]) == 1
    assert json.loads(capsys.readouterr().out) == {"replayed": [], "not_found": [seq]}
    assert main(["jobs", "replay", "--config", path]) == 2


def test_jobs_replay_all_dead(tmp_path, capsys):
    path = seeded(tmp_path, count=3, dead=True)
    assert main(["jobs", "replay", "--all-dead", "--config", path]) == 0
    assert "1 message(s) queued" in capsys.readouterr().out


# -- send-event -----------------------------------------------------------------


def test_send_event_acts_as_the_robot(tmp_path, action_server, capsys):
    import asyncio

    from devtools.stack import free_port
    from rasa_rpa.models import Job
    from rasa_rpa.stores.sqlite import SQLiteJobStore

    server = action_server()

    async def add_job():
        store = SQLiteJobStore(tmp_path / "jobs.db")
        await store.open()
        try:
            await store.create_job(Job("job-s", "idle", "testbots", "conv-s"))
        finally:
            await store.close()

    asyncio.run(add_job())
    config = ["--config", str(server.config_path)]
    progress = ["send-event", "job-s", "job.progress", *config, "--id", "step-1"]
    data = ["--data", '{"progress": 40, "message": "Half way"}']
    assert main([*progress, *data]) == 0
    answer = json.loads(capsys.readouterr().out)
    assert answer["state"] == "running" and answer["applied"] is True
    assert main([*progress, *data]) == 0  # same id: acknowledged, not applied
    assert json.loads(capsys.readouterr().out)["duplicate"] is True
    assert server.job("job-s", "conv-s")["progress"] == 40

    bad = [
        "send-event",
        "job-s",
        "job.progress",
        *config,
        "--data",
        '{"progress": 400}',
    ]
    assert main(bad) == 1
    err = capsys.readouterr().err
    assert "HTTP 422" in err and '"invalid_event"' in err

    other = ["send-event", "job-x", "job.started", *config, "--conversation", "c"]
    assert main(other) == 1
    assert "HTTP 404" in capsys.readouterr().err
    assert main(["send-event", "job-x", "job.started", *config]) == 1
    assert "does not exist" in capsys.readouterr().err
    assert main(["send-event", "job-s", "message", *config, "--data", "{nope"]) == 2
    down = ["--url", f"http://127.0.0.1:{free_port()}"]
    assert main(["send-event", "job-s", "job.started", *config, *down]) == 1
    assert "is the action server running" in capsys.readouterr().err


# -- domain ---------------------------------------------------------------------


def printed_domain(capsys, *args):
    assert main(["domain", *args]) == 0
    domain, rules = yaml.safe_load_all(capsys.readouterr().out)
    return domain, rules


def test_domain_prints_everything_the_doctor_requires(tmp_path, monkeypatch, capsys):
    from rasa_rpa.ops import domain_snippet as needs

    monkeypatch.chdir(tmp_path)  # no rpa.yml here: the generic part only
    monkeypatch.delenv("RASA_RPA_CONFIG", raising=False)
    domain, rules = printed_domain(capsys)
    assert needs.check_domain(domain, "printed") == []
    assert set(needs.INTENTS) <= set(domain["intents"])
    assert set(needs.RESPONSES) <= set(domain["responses"])
    assert set(needs.ACTIONS) <= set(domain["actions"])
    assert set(needs.SLOTS) <= set(domain["slots"])
    assert {"EXTERNAL_rpa_job_expired", "cancel_job"} <= set(domain["intents"])
    steps = [
        [s.get("intent") or s.get("action") for s in r["steps"]] for r in rules["rules"]
    ]
    assert ["EXTERNAL_rpa_job_failed", "utter_rpa_job_failed"] in steps
    assert ["job_status", "action_rpa_job_status"] in steps
    # A file the robot sent: its intent, rule, response and variables' slots.
    assert ["EXTERNAL_rpa_job_file", "utter_rpa_job_file"] in steps
    [file_text] = domain["responses"]["utter_rpa_job_file"]
    assert "({rpa_file_url})" in file_text["text"]
    for name in ("rpa_file_title", "rpa_file_name", "rpa_file_size", "rpa_file_url"):
        assert name in domain["entities"]
        assert domain["slots"][name]["mappings"] == [
            {"type": "from_entity", "entity": name}
        ]


def test_domain_names_stay_in_step_with_the_code():
    from rasa_rpa.actions import JOB_SLOT
    from rasa_rpa.lifecycle import INTENT_PREFIX
    from rasa_rpa.models import JobState
    from rasa_rpa.ops import domain_snippet as needs

    assert needs.JOB_SLOT == JOB_SLOT
    for state in JobState:
        if state is not JobState.PENDING:  # pending is never news
            assert INTENT_PREFIX + state.value in needs.INTENTS
            assert f"utter_rpa_job_{state.value}" in needs.RESPONSES


def test_reference_bot_contains_everything_printed(capsys):
    from devtools.stack import ROOT

    domain, rules = printed_domain(capsys, "--config", str(ROOT / "rpa.yml"))
    reference = yaml.safe_load((ROOT / "domain.yml").read_text())
    assert "get_orders" in domain["intents"]  # the automation's intent
    for key in ("intents", "entities", "actions", "responses"):
        missing = set(domain[key]) - set(reference[key])
        assert not missing, f"domain.yml lacks {key} {missing}"
    for name, slot in domain["slots"].items():
        assert reference["slots"][name] == slot, name
    reference_rules = yaml.safe_load((ROOT / "data" / "rules.yml").read_text())
    reference_steps = [rule["steps"] for rule in reference_rules["rules"]]
    for rule in rules["rules"]:
        assert rule["steps"] in reference_steps, rule


def test_domain_parts(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("RASA_RPA_CONFIG", raising=False)
    assert main(["domain", "--part", "rules"]) == 0
    [only] = list(yaml.safe_load_all(capsys.readouterr().out))
    assert list(only) == ["version", "rules"]


def test_run_stops_on_a_provider_mistake_before_serving(tmp_path, monkeypatch, capsys):
    from rasa_rpa.config import CONFIG_ENV

    monkeypatch.setenv(CONFIG_ENV, "restored-after-the-test")
    providers = {"n8n": {"type": "webhook"}}  # no url
    path = write(tmp_path, providers=providers, automations={})
    assert main(["run", "--config", path, "--port", "1"]) == 2
    assert "providers.n8n.url" in capsys.readouterr().err


HOSTILE_CONV = "evil\n1999-01-01 08:00:00 CRITICAL FORGED\x1b[31mred\x00\r\x9b2J"


def test_jobs_tables_print_control_characters_escaped(tmp_path, capsys):
    import asyncio

    from rasa_rpa.models import EventType, Job, JobEvent
    from rasa_rpa.stores.sqlite import SQLiteJobStore

    async def seed_hostile() -> None:
        store = SQLiteJobStore(tmp_path / "jobs.db")
        await store.open()
        try:
            # The user chooses the conversation id; a robot writes the error.
            await store.create_job(Job("job-1", "a", "p", HOSTILE_CONV))
            await store.record_event(
                # (NUL aside: the store refuses it in an error.)
                JobEvent(
                    "e1",
                    "job-1",
                    EventType.FAILED,
                    {"error": HOSTILE_CONV.replace("\x00", "")},
                )
            )
        finally:
            await store.close()

    asyncio.run(seed_hostile())
    path = write(tmp_path)
    assert main(["jobs", "list", "--config", path]) == 0
    listed = capsys.readouterr().out
    assert main(["jobs", "show", "job-1", "--config", path]) == 0
    shown = capsys.readouterr().out
    for out in (listed, shown):
        assert not any(c in out for c in "\x1b\x00\r\x9b"), repr(out)
        assert not any(line.startswith("1999") for line in out.splitlines())
    assert "evil\\n1999-01-01" in listed and "FORGED\\x1b[31mred\\x00" in shown
    assert "error         evil\\n1999-01-01" in shown


# -- jobs discard: both stores, with a confirmation ----------------------------


class Terminal:
    """Standard input as a person at a terminal: answers the prompt once."""

    def __init__(self, answer: str) -> None:
        self.answer = answer
        self.asked = 0

    def isatty(self) -> bool:
        return True

    def readline(self) -> str:
        self.asked += 1
        return self.answer


@pytest.fixture(params=["sqlite", "postgres"])
def dead_store(request, tmp_path):
    """rpa.yml over a store (SQLite, or a PostgreSQL schema of its own) holding
    three dead messages and a pending one; yields (config path, dead seqs)."""
    import asyncio
    import secrets

    from rasa_rpa.models import EventType, Job, JobEvent
    from rasa_rpa.stores import open_store

    schema = f"rpa_cli_{secrets.token_hex(6)}"
    url = (
        f"sqlite:///{tmp_path / 'jobs.db'}"
        if request.param == "sqlite"
        else f"postgresql://postgres@127.0.0.1:5432/test?schema={schema}"
    )

    async def seed() -> list[int]:
        store = open_store(url, tmp_path)
        await store.open()
        try:
            for n in range(3):
                job = Job(f"job-{n}", "collect_order_details", "local", f"conv-{n}")
                await store.create_job(job)
                await store.record_event(JobEvent("s", job.id, EventType.STARTED))
            heads = await store.claim_due(time.time() + 60, limit=10, lease=30)
            for head in heads:
                await store.mark_dead(head.seq, "Rasa answered 400: bad", time.time())
            await store.record_event(JobEvent("p", "job-0", EventType.PROGRESS))
            return sorted(m.seq for m in heads)
        finally:
            await store.close()

    async def drop() -> None:
        import asyncpg

        conn = await asyncpg.connect("postgresql://postgres@127.0.0.1:5432/test")
        try:
            await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        finally:
            await conn.close()

    seqs = asyncio.run(seed())
    yield write(tmp_path, store={"url": url}), seqs
    if request.param == "postgres":
        asyncio.run(drop())


def outbox_of(path, status):
    import asyncio

    from rasa_rpa.config import load_config
    from rasa_rpa.stores import open_store

    async def listed():
        config = load_config(path)
        store = open_store(config.store.url, config.base_dir)
        await store.open()
        try:
            return sorted(m.seq for m in await store.list_outbox(status=status))
        finally:
            await store.close()

    return asyncio.run(listed())


def test_jobs_discard_asks_first_and_keeps_them_listed(dead_store, monkeypatch, capsys):
    path, seqs = dead_store
    monkeypatch.setattr(sys, "stdin", Terminal("n\n"))
    assert main(["jobs", "discard", "--all-dead", "--config", path]) == 1
    err = capsys.readouterr().err
    assert "Discard 3 dead messages to Rasa? They will never be delivered. [y/N]" in err
    assert "nothing discarded" in err
    assert outbox_of(path, "dead") == seqs  # a no keeps them

    terminal = Terminal("y\n")
    monkeypatch.setattr(sys, "stdin", terminal)
    assert main(["jobs", "discard", "--all-dead", "--config", path]) == 0
    out = capsys.readouterr().out
    assert terminal.asked == 1
    assert all(f"seq {seq}: discarded" in out for seq in seqs)
    assert "3 message(s) discarded" in out
    assert outbox_of(path, "dead") == []
    assert outbox_of(path, "discarded") == seqs
    # Never replayed, and the job's timeline still shows them.
    assert main(["jobs", "replay", str(seqs[0]), "--config", path]) == 1
    capsys.readouterr()
    assert main(["jobs", "show", "job-0", "--config", path, "--json"]) == 0
    statuses = {
        m["seq"]: m["status"] for m in json.loads(capsys.readouterr().out)["outbox"]
    }
    assert statuses[seqs[0]] == "discarded"
    assert main(["jobs", "show", "job-0", "--config", path]) == 0
    assert "discarded" in capsys.readouterr().out


def test_jobs_discard_with_yes_asks_nothing(dead_store, monkeypatch, capsys):
    path, seqs = dead_store
    terminal = Terminal("n\n")
    monkeypatch.setattr(sys, "stdin", terminal)
    pending = outbox_of(path, "pending")
    args = ["jobs", "discard", str(seqs[1]), *map(str, pending), "--yes", "--json"]
    assert main([*args, "--config", path]) == 1  # the pending one is not dead
    assert terminal.asked == 0
    body = json.loads(capsys.readouterr().out)
    assert body == {"discarded": [seqs[1]], "not_found": pending}
    assert outbox_of(path, "dead") == [seqs[0], seqs[2]]
    assert outbox_of(path, "pending") == pending


def test_jobs_discard_without_a_terminal_refuses_without_yes(
    dead_store, monkeypatch, capsys
):
    import io

    path, seqs = dead_store
    monkeypatch.setattr(sys, "stdin", io.StringIO("y\n"))  # piped, not typed
    assert main(["jobs", "discard", str(seqs[0]), "--config", path]) == 2
    err = capsys.readouterr().err
    assert "not discarding 1 dead message without a confirmation" in err
    assert "pass --yes" in err
    assert outbox_of(path, "dead") == seqs
    assert main(["jobs", "discard", "--config", path]) == 2  # names nothing


# -- run --port: robots are told the server's own port ----------------------------


def test_run_on_another_port_tells_robots_that_port(tmp_path, rasa_stand_in):
    """rpa.yml names no callbacks.public_url: robots call back where the server is.

    (Before, they were told :5055 whatever --port said: the job ended on the
    robot's exit code, and everything it reported was lost.)
    """
    import uuid

    from devtools.stack import free_port
    from tests.conftest import ActionServer, kill_robots_of

    port = free_port()
    config = base_config(tmp_path, callbacks={"secret": MASTER_KEY})
    config["rasa"] = {**config["rasa"], "url": rasa_stand_in.url}
    config["callbacks"] = {"secret": MASTER_KEY}  # no public_url
    server = ActionServer(tmp_path, config, port)
    try:
        server.start()
        sender = uuid.uuid4().hex
        job_id = server.start_job(sender, intent="env")
        outputs = server.wait_job(job_id, sender, "succeeded")["outputs"]
        assert outputs["has_path"] != "absent"  # reported by the robot itself
        expected = f"http://127.0.0.1:{port} (callbacks.public_url is not set)"
        assert f"rasa-rpa: robots call back at {expected}" in server.log()
    finally:
        server.stop()
        kill_robots_of(tmp_path)


def test_run_on_a_busy_port_says_so_in_one_line(tmp_path):
    import socket

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "rasa_rpa.cli",
                "run",
                "--config",
                write(tmp_path),
                "--port",
                str(port),
            ],
            capture_output=True,
            text=True,
            timeout=60,
            cwd=tmp_path,
        )
    assert done.returncode == 1
    assert done.stderr.strip().splitlines() == [
        f"rasa-rpa: cannot listen on 127.0.0.1:{port}: Address already in use. "
        "Stop what uses it, or pass --port."
    ]


def test_a_missing_rpa_yml_says_where_it_looked_and_how_to_point_elsewhere(
    tmp_path, capsys, monkeypatch
):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("RASA_RPA_CONFIG", raising=False)
    assert main(["jobs", "list"]) == 2
    err = capsys.readouterr().err
    assert f"file not found (looked in {tmp_path.resolve()})" in err
    assert "--config FILE" in err and "rasa-rpa init" in err


@pytest.mark.parametrize(
    ("option", "value"),
    [
        ("--port", "70000"),
        ("--port", "0"),
        ("--port", "-1"),
        ("--workers", "0"),
        ("--workers", "-1"),
        ("--port", "http"),
    ],
)
def test_run_refuses_a_port_or_worker_count_it_cannot_use(
    tmp_path, capsys, option, value
):
    with pytest.raises(SystemExit) as exit:
        main(["run", "--config", write(tmp_path), option, value])
    assert exit.value.code == 2
    err = capsys.readouterr().err
    assert f"argument {option}: {value!r} is not" in err
    assert "Traceback" not in err
