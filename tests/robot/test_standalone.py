"""The robot distribution stands alone: a virtualenv with only rasa-rpa-robot.

A robot machine that only reports progress must not need the server (rasa-sdk,
Sanic, pydantic, PyJWT...). This test builds one fresh virtualenv with
``pip install ./robot-client`` (``requests`` is its only dependency), checks
that nothing server-side can be imported there, and sends a signed event and
a token-authenticated event from it to a running action server.
"""

from __future__ import annotations

import json
import os
import subprocess
import textwrap
import uuid
import venv
from pathlib import Path

from devtools.stack import ROOT

ROBOT_CLIENT = ROOT / "robot-client"
#: What only the server needs; none of it may come with the robot side.
# What the import-linter contract forbids the robot side, checked for real here.
SERVER_SIDE = (
    "rasa_rpa",
    "sanic",
    "rasa_sdk",
    "pydantic",
    "jwt",
    "yaml",
    "httpx",
    "aiohttp",
    "asyncpg",
    "prometheus_client",
)

# Runs inside the isolated venv: it may import nothing but rasa_rpa_robot.
SENDER = textwrap.dedent(
    """
    import importlib, json, sys
    from rasa_rpa_robot import RobotClient

    url, secret, token, names = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4:]
    importable = []
    for name in names:
        try:
            importlib.import_module(name)
        except ImportError:
            continue
        importable.append(name)
    signed = RobotClient(url, signing_secret=secret, retry_for=5)
    tokened = RobotClient(url, token=token, retry_for=5)
    print(json.dumps({
        "importable": importable,
        "signed": signed.send("job.progress", {"progress": 40, "message": "half"}),
        "token": tokened.send("message", {"text": "from a bare robot"}),
    }))
    """
)


def clean_env() -> dict[str, str]:
    """The environment without anything that would leak the worktree in."""
    drop = ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", "PIP_REQUIRE_VIRTUALENV")
    return {k: v for k, v in os.environ.items() if k not in drop}


def robot_venv(folder: Path) -> Path:
    """A fresh venv holding rasa-rpa-robot and what pip resolves for it."""
    venv.EnvBuilder(with_pip=True).create(folder)
    python = folder / "bin" / "python"
    result = subprocess.run(
        [
            str(python),
            "-m",
            "pip",
            "install",
            "-q",
            "--disable-pip-version-check",
            str(ROBOT_CLIENT),
        ],
        env=clean_env(),
        cwd=folder,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return python


def test_robot_side_alone_reaches_the_server(tmp_path, action_server):
    python = robot_venv(tmp_path / "venv")
    server = action_server()
    sender = uuid.uuid4().hex
    job_id = server.start_job(sender, intent="wait")  # a robot that idles
    server.wait_job(job_id, sender, "running")
    token = server.keys.mint_token(job_id, sender)
    script = tmp_path / "send.py"
    script.write_text(SENDER)
    result = subprocess.run(
        [
            str(python),
            str(script),
            server.events_url(job_id),
            server.keys.signing_secret(job_id),
            token,
            *SERVER_SIDE,
        ],
        env=clean_env(),
        cwd=tmp_path,  # not the repository: its packages must not be found
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    answer = json.loads(result.stdout)
    assert answer["importable"] == [], "server-side code in the robot's venv"
    assert answer["signed"]["state"] == "running"
    assert answer["signed"].get("duplicate") is not True
    assert answer["token"]["state"] == "running"
    # The server recorded both: the progress and the message are in the job.
    job = server.job(job_id, sender)
    assert job["progress"] == 40, job
