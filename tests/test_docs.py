"""The documentation site builds strictly, offline, and stays in step with the code.

`mkdocs build --strict` fails on a broken link or anchor (mkdocs.yml turns
every link check into a warning). The other tests hold the reference pages to
what the code has: every rpa.yml key, every provider option, every endpoint
in openapi.json, every response the actions say, every CLI command.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import BaseModel

from devtools.stack import ROOT
from rasa_rpa.cli import _parser
from rasa_rpa.config import Automation, InputSource, RpaConfig
from rasa_rpa.http.callbacks import OPENAPI_PATH
from rasa_rpa.ops.domain_snippet import RESPONSES
from rasa_rpa.registry import BUILTIN_PROVIDERS, provider_class

DOCS = ROOT / "docs"
#: The page of each built-in provider type.
PROVIDER_PAGES = {
    "local": "local.md",
    "uipath": "uipath.md",
    "sap": "sap.md",
    "automation_anywhere": "automation-anywhere.md",
    "robocorp": "robocorp.md",
    "power_automate": "power-automate.md",
    "webhook": "webhook.md",
}
#: Responses the actions say only when the domain has them (not in `domain`).
OPTIONAL_RESPONSES = (
    "utter_rpa_unknown_automation",
    "utter_rpa_missing_inputs",
    "utter_rpa_records_unavailable",
)
#: A tag that makes the browser fetch something from elsewhere.
FETCHES_ELSEWHERE = re.compile(
    r"<(?:script|link|img|iframe|source)\b[^>]*\b(?:src|href)=\"(?:https?:)?//",
    re.IGNORECASE,
)


def page(name: str) -> str:
    return (DOCS / name).read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("site")
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    built = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env=env,
        timeout=110,
    )
    assert built.returncode == 0, built.stdout + built.stderr
    return out


def test_the_site_builds_strictly(site: Path) -> None:
    assert (site / "index.html").is_file()
    assert (site / "providers" / "sap" / "index.html").is_file()
    # The API description is published with the site, the file itself.
    assert json.loads((site / "openapi.json").read_text()) == json.loads(
        OPENAPI_PATH.read_text()
    )


def test_the_pages_fetch_nothing_from_the_internet(site: Path) -> None:
    fetching = {
        str(html.relative_to(site)): found
        for html in site.rglob("*.html")
        if (found := FETCHES_ELSEWHERE.findall(html.read_text(encoding="utf-8")))
    }
    assert not fetching, fetching


def _keys(model: type[BaseModel], prefix: str) -> list[str]:
    found: list[str] = []
    for name, field in model.model_fields.items():
        key = f"{prefix}{name}"
        kind = field.annotation
        if isinstance(kind, type) and issubclass(kind, BaseModel):
            found += _keys(kind, f"{key}.")
        else:
            found.append(key)
    return found


def test_every_rpa_yml_key_is_in_the_reference() -> None:
    text = page("configuration.md")
    internal = {"base_dir", "source"}  # set by the loader, not written in rpa.yml
    keys = [k for k in _keys(RpaConfig, "") if k not in internal]
    # Maps of named entries: providers.<name>.type, automations.<name>.task ...
    assert "providers" in keys and "automations" in keys
    keys.remove("providers")
    keys.remove("automations")
    keys += ["providers.<name>.type", "providers.<name>.poll_interval"]
    keys += [f"automations.<name>.{k}" for k in Automation.model_fields]
    # `automations.<name>.inputs.<input>` documents `inputs`.
    missing = [k for k in keys if f"`{k}`" not in text and f"`{k}." not in text]
    assert not missing, f"docs/configuration.md lacks {missing}"
    for source in InputSource.model_fields:
        assert f"{source}:" in text or f"`{source}`" in text, source


@pytest.mark.parametrize("type_name", sorted(BUILTIN_PROVIDERS))
def test_every_provider_option_is_on_its_page(type_name: str) -> None:
    text = page(f"providers/{PROVIDER_PAGES[type_name]}")
    cls = provider_class(type_name)
    # poll_interval only matters where the reconciler polls.
    skip = {"type"} | (set() if cls.capabilities.poll else {"poll_interval"})
    missing = [
        name
        for name in cls.Options.model_fields
        if name not in skip and f"`{name}`" not in text
    ]
    assert not missing, f"docs/providers/{PROVIDER_PAGES[type_name]} lacks {missing}"


def test_every_endpoint_is_listed() -> None:
    text = page("callback-api.md")
    spec = json.loads(OPENAPI_PATH.read_text())
    listed = {
        f"{method.upper()} {path}"
        for path, operations in spec["paths"].items()
        for method in operations
        if method in {"get", "post", "put", "patch", "delete"}
    }
    missing = sorted(e for e in listed if f"`{e}`" not in text)
    assert not missing, f"docs/callback-api.md lacks {missing}"


def test_every_response_is_documented() -> None:
    text = page("responses.md")
    missing = [r for r in [*RESPONSES, *OPTIONAL_RESPONSES] if f"`{r}`" not in text]
    assert not missing, f"docs/responses.md lacks {missing}"


def test_every_command_is_documented() -> None:
    text = page("operations.md")
    (subcommands,) = (
        action
        for action in _parser()._actions
        if isinstance(action, argparse._SubParsersAction)
    )
    commands = subcommands.choices
    missing = [name for name in commands if f"`rasa-rpa {name}" not in text]
    assert not missing, f"docs/operations.md lacks {missing}"


def test_readme_links_lead_to_pages_that_exist() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    targets = re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", readme)
    local = [t for t in targets if not re.match(r"[a-z]+:", t)]
    assert any(t.startswith("docs/") for t in local)
    broken = [t for t in local if not (ROOT / t).exists()]
    assert not broken, f"README.md links to missing files: {broken}"


def test_nav_lists_every_page() -> None:
    # mkdocs.yml is plain YAML (no !!python tags), so safe_load reads it.
    config = yaml.safe_load((ROOT / "mkdocs.yml").read_text())

    def pages(nav: Any) -> list[str]:
        if isinstance(nav, str):
            return [nav]
        if isinstance(nav, list):
            return [p for item in nav for p in pages(item)]
        return [p for value in nav.values() for p in pages(value)]

    listed = set(pages(config["nav"]))
    written = {str(p.relative_to(DOCS)) for p in Path(DOCS).rglob("*.md")}
    assert written == listed


def test_the_reference_file_shown_is_the_reference_bots() -> None:
    text = page("configuration.md")
    shown = text.split("## The reference bot's file", 1)[1].split("```yaml\n")[1]
    assert shown.split("```", 1)[0] == (ROOT / "rpa.yml").read_text()


# -- the robot-side examples of the vendor pages ---------------------------------

#: Stands in for rpaframework's RPA.Robocorp.WorkItems (too heavy to install
#: here): the input work item comes from $STUB_WORK_ITEM, what the robot does
#: with its items goes to $STUB_RESULTS.
WORK_ITEMS_STUB = """
import json, os

def _record(**what):
    with open(os.environ["STUB_RESULTS"], "a") as out:
        out.write(json.dumps(what) + "\\n")

def get_work_item_variable(name):
    return json.loads(os.environ["STUB_WORK_ITEM"])[name]

def create_output_work_item(variables=None, files=None, save=False):
    _record(output=dict(variables or {}), saved=save)

def release_input_work_item(state, exception_type=None, code=None, message=None):
    _record(release=str(state), exception_type=exception_type, message=message)
"""


def _example(name: str, language: str) -> str:
    return page(name).split(f"```{language}\n", 1)[1].split("```", 1)[0]


@pytest.mark.parametrize("customer", ["ACME", "Nobody Inc"])
def test_the_control_room_robot_reports_to_the_conversation(
    tmp_path: Path, customer: str
) -> None:
    from rasa_rpa.fakes.base import FakeRequest, FakeServer

    stub = tmp_path / "stub" / "RPA" / "Robocorp"
    stub.mkdir(parents=True)
    for package in (stub.parent, stub):
        (package / "__init__.py").write_text("")
    (stub / "WorkItems.py").write_text(WORK_ITEMS_STUB)
    robot_file = tmp_path / "tasks.robot"
    robot_file.write_text(_example("providers/robocorp.md", "robotframework"))
    events: list[FakeRequest] = []
    api = FakeServer()
    api.route(
        "POST",
        "/rpa/v1/jobs/job-1/events",
        lambda r: (events.append(r), (202, {"recorded": True}))[1],
    )
    results = tmp_path / "results.jsonl"
    with api:
        item = {
            "customer": customer,
            "rasa_rpa_job_id": "job-1",
            "rasa_rpa_events_url": f"{api.url}/rpa/v1/jobs/job-1/events",
            "rasa_rpa_token": "the-job-token",
        }
        env = {
            **os.environ,
            "PYTHONPATH": os.pathsep.join(
                [str(tmp_path / "stub"), str(ROOT / "robot-client")]
            ),
            "STUB_WORK_ITEM": json.dumps(item),
            "STUB_RESULTS": str(results),
        }
        for key in ("RASA_RPA_EVENTS_URL", "RASA_RPA_TOKEN", "RASA_RPA_SIGNING_SECRET"):
            env.pop(key, None)
        ran = subprocess.run(
            [sys.executable, "-m", "robot", "--output", "NONE", "--report", "NONE",
             "--log", "NONE", "--console", "quiet", str(robot_file)],
            env=env, capture_output=True, text=True, timeout=60,
        )  # fmt: skip
    assert ran.returncode == 0, ran.stdout + ran.stderr
    done = [json.loads(line) for line in results.read_text().splitlines()]
    sent = [e.json() for e in events]
    assert {e.headers["authorization"] for e in events} == {"Bearer the-job-token"}
    assert sent[0]["type"] == "job.progress"
    assert sent[0]["data"] == {"progress": 10.0, "message": f"Looking up {customer}"}
    if customer == "ACME":
        assert [e["type"] for e in sent] == ["job.progress", "job.progress", "message"]
        assert done == [
            {"output": {"order_count": "3"}, "saved": True},
            {"release": "DONE", "exception_type": None, "message": None},
        ]
    else:
        assert len(sent) == 1
        assert done == [
            {
                "release": "FAILED",
                "exception_type": "BUSINESS",
                "message": "Unknown customer 'Nobody Inc'",
            }
        ]


def test_the_desktop_flow_request_body_is_a_native_event() -> None:
    from rasa_rpa.http.payloads import parse_event

    body = _example("providers/power-automate.md", "json").strip()
    # What Power Automate Desktop sends once it has replaced its %variables%.
    sent = body.replace("%rasaRpaJobId%", "job-1").replace("%OrderCount%", "3")
    assert "%" not in sent
    event = parse_event("job-1", sent.encode())
    assert event.type.value == "job.progress"
    assert event.data == {"progress": 50, "message": "Read 3 orders"}


def test_the_curl_flow_on_the_questions_page_works(action_server) -> None:
    """The page's two shell blocks, run as a robot would, get the user's answer."""
    from tests.conftest import running_job
    from tests.waiting import wait_until

    blocks = re.findall(r"```bash\n(.*?)```", page("questions.md"), re.DOTALL)
    assert len(blocks) == 2, "the page has the ask and the wait blocks"
    server = action_server()
    with running_job(server) as (job_id, sender):
        env = {
            **os.environ,
            "RASA_RPA_EVENTS_URL": server.events_url(job_id),
            "RASA_RPA_TOKEN": server.keys.mint_token(job_id, sender),
        }
        robot = subprocess.Popen(
            ["bash", "-euc", "\n".join(blocks)],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:

            def answered() -> bool:
                result = server.run_action(
                    "action_rpa_answer",
                    sender,
                    intent="rpa_answer",
                    entities=[
                        {"entity": "rpa_question_id", "value": "customer-1"},
                        {"entity": "rpa_choice", "value": "C-200"},
                    ],
                )
                return "Thanks" in result["responses"][0]["text"]

            wait_until(answered, 20, "the question asked with curl")
            out, err = robot.communicate(timeout=30)
        finally:
            robot.kill()
    assert robot.returncode == 0, err
    assert out.strip().splitlines()[-1] == "C-200"
