"""The plugin attaches through rasa-sdk's own hook (the rasa_sdk_plugins shim)."""

from __future__ import annotations

import sys

import requests
import yaml

from devtools.stack import ROOT, Service, free_port
from tests.conftest import base_config


def test_plain_rasa_sdk_server_with_the_shim_serves_the_callback_api(tmp_path):
    port = free_port()
    config = tmp_path / "rpa.yml"
    config.write_text(yaml.safe_dump(base_config(tmp_path)))
    server = Service(
        "rasa_sdk",
        [sys.executable, "-m", "rasa_sdk", "--actions", "actions", "--port", str(port)],
        f"http://127.0.0.1:{port}/health",
        tmp_path / "sdk.log",
        cwd=ROOT,
        env={"RASA_RPA_CONFIG": str(config), "SANIC_HOST": "127.0.0.1"},
    )
    server.start(timeout=60)
    try:
        health = requests.get(f"http://127.0.0.1:{port}/rpa/health", timeout=5)
        assert health.json()["status"] == "ok"
        actions = requests.get(f"http://127.0.0.1:{port}/actions", timeout=5).json()
        assert {
            "action_start_rpa_job",
            "action_rpa_job_status",
            "action_cancel_rpa_job",
        } <= {a["name"] for a in actions}
    finally:
        server.stop()
