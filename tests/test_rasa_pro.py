"""Rasa Pro: rasa-rpa installs into Rasa Pro's own environment, and works there.

rasa-pro 3.21.0 pins rasa-sdk 3.21.0 and Sanic 25.12 and needs Python 3.11 or
later, so a Rasa Pro user can keep rasa-rpa next to Rasa and start the action
server with plain ``rasa run actions``. Running Rasa Pro itself needs a
licence, so these tests stop short of it:

- pip resolves rasa-pro 3.21.0 together with this project (a dry run, about
  20 s with a warm pip cache, 30 s without);
- a throwaway virtualenv with what that resolution picked, rasa-sdk 3.21.0
  and its Sanic included, runs ``python -m rasa_sdk --actions actions``
  (what ``rasa run actions`` calls once the licence is checked) with the
  bot's ``rasa_sdk_plugins`` shim, and a real job goes through it.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import uuid
import venv
from pathlib import Path
from typing import Any

import pytest
import requests

from devtools.stack import ROOT, Service, free_port
from rasa_rpa import __version__
from rasa_rpa.testing import RasaStandIn
from tests.conftest import ActionServer, base_config, kill_robots_of
from tests.robot.test_standalone import clean_env

pytestmark = [pytest.mark.pypi, pytest.mark.timeout(600)]

RASA_PRO = "rasa-pro==3.21.0"
#: rasa-pro 3.21.0's own pin.
RASA_SDK = "3.21.0"
PROJECT = ("rasa-rpa", "rasa-rpa-robot")
SHOW_VERSIONS = (
    "import importlib.metadata as m, json; "
    "print(json.dumps({n: m.version(n) for n in ('rasa-sdk', 'sanic', 'pydantic')}))"
)
RESOLVE_TIMEOUT = 240  # s; the dry run takes 20 to 30 s here
INSTALL_TIMEOUT = 300  # s; the virtualenv takes about 25 s with a warm cache


def python_for_rasa_pro() -> str:
    """An interpreter rasa-pro installs on (3.11 or later): this one, or another."""
    if sys.version_info >= (3, 11):
        return sys.executable
    for name in ("python3.11", "python3.12", "python3.13"):
        found = shutil.which(name)
        if found:
            return found
    pytest.fail(
        "rasa-pro 3.21.0 needs Python 3.11 or later, and neither this "
        f"interpreter ({sys.version.split()[0]}) nor python3.11/3.12/3.13 on "
        "PATH is one: install Python 3.11 to run this check"
    )


def pip(python: str | Path, *args: str, timeout: float, what: str) -> None:
    """Run pip; fail with pip's own last words, or when it takes too long."""
    command = [str(python), "-m", "pip", *args]
    try:
        result = subprocess.run(
            command,
            cwd=ROOT,
            env=clean_env(),
            capture_output=True,
            text=True,
            timeout=timeout,
        )
    except subprocess.TimeoutExpired:
        pytest.fail(
            f"{what} did not finish within {timeout}s: is the package index "
            f"reachable? ({' '.join(command)})"
        )
    if result.returncode != 0:
        pytest.fail(
            f"{what} failed (pip exited {result.returncode}): rasa-rpa's "
            f"dependencies no longer fit {RASA_PRO}; pip said:\n{pip_said(result)}"
        )


def pip_said(result: subprocess.CompletedProcess[str]) -> str:
    """pip's errors and its account of a conflict, without its progress lines."""
    errors = [line for line in result.stderr.splitlines() if line.startswith("ERROR")]
    start = result.stdout.find("The conflict is caused by")
    conflict = result.stdout[start:].strip() if start >= 0 else ""
    return "\n".join([*errors[-20:], conflict[-3000:]]).strip() or result.stderr[-3000:]


@pytest.fixture(scope="module")
def resolution(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """What pip would install for rasa-pro 3.21.0 plus this project: name -> version.

    ``--ignore-installed`` resolves from scratch, as for an empty environment,
    whatever the running one holds; ``--dry-run`` installs nothing.
    """
    report = tmp_path_factory.mktemp("resolution") / "report.json"
    pip(
        python_for_rasa_pro(),
        "install",
        "--dry-run",
        "--ignore-installed",
        "--disable-pip-version-check",
        "--report",
        str(report),
        RASA_PRO,
        "./robot-client",
        ".",
        timeout=RESOLVE_TIMEOUT,
        what=f"pip's resolution of {RASA_PRO} with rasa-rpa",
    )
    installs: list[dict[str, Any]] = json.loads(report.read_text())["install"]
    return {
        item["metadata"]["name"].lower(): item["metadata"]["version"]
        for item in installs
    }


def test_rasa_pro_and_rasa_rpa_resolve_into_one_environment(resolution):
    assert resolution.get("rasa-pro") == "3.21.0"
    assert resolution.get("rasa-sdk") == RASA_SDK, resolution.get("rasa-sdk")
    assert resolution.get("rasa-rpa") == __version__
    assert resolution.get("rasa-rpa-robot") == __version__
    assert resolution.get("sanic", "").startswith("25.12."), resolution.get("sanic")


@pytest.fixture(scope="module")
def rasa_pro_like_venv(resolution, tmp_path_factory) -> Path:
    """A virtualenv holding rasa-rpa with exactly the versions Rasa Pro's would.

    Everything the resolution picked is a constraint, so rasa-sdk 3.21.0 and
    its Sanic, pydantic and aiohttp are those of a Rasa Pro environment;
    rasa-pro itself (and its share of the 200-odd packages) is left out.
    """
    folder = tmp_path_factory.mktemp("rasa-pro-like")
    constraints = folder / "constraints.txt"
    constraints.write_text(
        "".join(
            f"{name}=={version}\n"
            for name, version in sorted(resolution.items())
            if name not in PROJECT
        )
    )
    venv.EnvBuilder(with_pip=True).create(folder / "venv")
    python = folder / "venv" / "bin" / "python"
    pip(
        python,
        "install",
        "--quiet",
        "--disable-pip-version-check",
        "-c",
        str(constraints),
        f"rasa-sdk=={RASA_SDK}",
        "./robot-client",
        ".",
        timeout=INSTALL_TIMEOUT,
        what="installing rasa-rpa with Rasa Pro's versions into a virtualenv",
    )
    installed = subprocess.run(
        [str(python), "-c", SHOW_VERSIONS],
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert json.loads(installed.stdout) == {
        name: resolution[name] for name in ("rasa-sdk", "sanic", "pydantic")
    }
    return python


def rasa_sdk_server(python: Path, folder: Path, rasa_url: str) -> ActionServer:
    """``python -m rasa_sdk --actions actions`` in the repository, with its shim."""
    port = free_port()
    config = base_config(folder)
    config["rasa"] = {**config["rasa"], "url": rasa_url}
    config["callbacks"] = {
        **config["callbacks"],
        "public_url": f"http://127.0.0.1:{port}",
    }
    server = ActionServer(folder, config, port)
    # The repository is the bot's folder: actions/ and rasa_sdk_plugins/ are
    # found there; everything else comes from the virtualenv.
    server.service = Service(
        "rasa_sdk",
        [str(python), "-m", "rasa_sdk", "--actions", "actions", "--port", str(port)],
        f"{server.url}/rpa/health",
        folder / "actions.log",
        cwd=ROOT,
        env={
            "PYTHONPATH": "",
            "RASA_RPA_CONFIG": str(server.config_path),
            "SANIC_HOST": "127.0.0.1",
        },
    )
    return server


def test_plain_rasa_sdk_3_21_0_runs_the_plugin_through_the_shim(
    rasa_pro_like_venv: Path, tmp_path: Path, rasa_stand_in: RasaStandIn
):
    server = rasa_sdk_server(rasa_pro_like_venv, tmp_path, rasa_stand_in.url)
    server.start()
    try:
        actions = requests.get(f"{server.url}/actions", timeout=5).json()
        assert "action_start_rpa_job" in {action["name"] for action in actions}
        # A real job: the robot runs, calls back, and its news reaches Rasa.
        sender = uuid.uuid4().hex
        job_id = server.start_job(sender, intent="chat")
        server.wait_job(job_id, sender, "succeeded")
        rasa_stand_in.wait_for(
            lambda calls: any(
                call.conversation_id == sender
                and "EXTERNAL_rpa_job_succeeded" in json.dumps(call.body)
                for call in calls
            )
        )
    finally:
        server.stop()
        kill_robots_of(tmp_path)
