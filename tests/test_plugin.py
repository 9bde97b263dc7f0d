"""The plugin attaches through rasa-sdk's own hook (the rasa_sdk_plugins shim)."""

from __future__ import annotations

import sys

import pytest
import requests
import yaml

from devtools.stack import ROOT, Service, free_port
from tests.conftest import base_config
from tests.rawhttp import post_partly

MAX_REQUEST = 1 << 20


@pytest.fixture(scope="module")
def sdk_url(tmp_path_factory):
    """A plain `python -m rasa_sdk` server that attached the plugin via the shim."""
    tmp = tmp_path_factory.mktemp("plugin")
    port = free_port()
    config = tmp / "rpa.yml"
    config.write_text(
        yaml.safe_dump(base_config(tmp, server={"max_request_bytes": MAX_REQUEST}))
    )
    server = Service(
        "rasa_sdk",
        [sys.executable, "-m", "rasa_sdk", "--actions", "actions", "--port", str(port)],
        f"http://127.0.0.1:{port}/health",
        tmp / "sdk.log",
        cwd=ROOT,
        env={"RASA_RPA_CONFIG": str(config), "SANIC_HOST": "127.0.0.1"},
    )
    server.start(timeout=60)
    yield f"http://127.0.0.1:{port}"
    server.stop()


def test_plain_rasa_sdk_server_with_the_shim_serves_the_callback_api(sdk_url):
    health = requests.get(f"{sdk_url}/rpa/health", timeout=5)
    assert health.json()["status"] == "ok"
    actions = requests.get(f"{sdk_url}/actions", timeout=5).json()
    assert {
        "action_start_rpa_job",
        "action_rpa_job_status",
        "action_cancel_rpa_job",
    } <= {a["name"] for a in actions}


def test_server_request_limit_applies_through_the_shim(sdk_url):
    # Just over server.max_request_bytes, far under Sanic's own 100 MB.
    answer = post_partly(
        sdk_url, "/webhook", declared=MAX_REQUEST + 1, send=MAX_REQUEST // 2
    )
    assert answer.status == 413
    assert answer.json()["error"]["code"] == "too_large"
    assert answer.headers["connection"] == "close"


def test_oversized_headers_are_431(sdk_url):
    response = requests.get(
        f"{sdk_url}/rpa/health", headers={"X-Padding": "x" * 20_000}, timeout=5
    )
    assert response.status_code == 431
    assert response.json()["error"]["code"] == "headers_too_large"


def test_405_says_which_methods_are_allowed(sdk_url):
    response = requests.delete(f"{sdk_url}/rpa/health", timeout=5)
    assert response.status_code == 405
    assert response.json()["error"]["code"] == "method_not_allowed"
    assert {m.strip() for m in response.headers["Allow"].split(",")} >= {"GET"}
