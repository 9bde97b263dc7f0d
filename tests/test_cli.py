"""The rasa-rpa command: config checks, tokens, clear errors."""

from __future__ import annotations

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
    assert "OK (4 automation(s)" in capsys.readouterr().out


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
    assert "automation_anywhere" in capsys.readouterr().err
