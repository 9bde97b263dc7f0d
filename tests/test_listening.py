"""Where `rasa-rpa run` tells robots to call back, and where the doctor finds it."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from rasa_rpa.config import config_from_dict
from rasa_rpa.listening import (
    SERVER_FILE,
    connect_url,
    is_loopback,
    public_url_for,
    recorded_server,
    server_recorded,
)


def config(tmp_path, **callbacks):
    raw = {"version": 1, "callbacks": callbacks} if callbacks else {"version": 1}
    return config_from_dict(raw, source="/bot/rpa.yml", base_dir=tmp_path)


@pytest.mark.parametrize(
    ("host", "url"),
    [
        ("127.0.0.1", "http://127.0.0.1:5155"),
        ("0.0.0.0", "http://127.0.0.1:5155"),
        ("::", "http://127.0.0.1:5155"),
        ("::1", "http://[::1]:5155"),
        ("bot.internal", "http://bot.internal:5155"),
    ],
)
def test_connect_url(host, url):
    assert connect_url(host, 5155) == url


def test_without_a_public_url_robots_get_the_servers_own_port(tmp_path):
    url, notes = public_url_for(config(tmp_path), "127.0.0.1", 5155)
    assert url == "http://127.0.0.1:5155"
    assert notes == [
        "robots call back at http://127.0.0.1:5155 (callbacks.public_url is not set)"
    ]
    url, notes = public_url_for(config(tmp_path), "0.0.0.0", 5155)
    assert url == "http://127.0.0.1:5155"
    assert "robots on other machines" in notes[1] and "/bot/rpa.yml" in notes[1]


def test_a_loopback_public_url_on_another_port_is_kept_and_flagged(tmp_path):
    mine = config(tmp_path, public_url="http://localhost:5055")
    url, [note] = public_url_for(mine, "127.0.0.1", 5155)
    assert url is None  # what rpa.yml says stands
    assert note.startswith("WARNING: callbacks.public_url in /bot/rpa.yml")
    assert "listens on port 5155" in note and "to port 5055" in note
    assert "Set callbacks.public_url to http://127.0.0.1:5155" in note


@pytest.mark.parametrize(
    "public",
    ["http://127.0.0.1:5155", "https://bot.example.com", "http://10.0.0.5:8080"],
)
def test_other_public_urls_are_used_as_written(tmp_path, public):
    url, [note] = public_url_for(config(tmp_path, public_url=public), "0.0.0.0", 5155)
    assert url is None
    assert note == f"robots call back at {public} (callbacks.public_url)"


def test_is_loopback():
    assert is_loopback("http://127.0.0.1:5055") and is_loopback("http://[::1]:1")
    assert is_loopback("http://localhost/x") and is_loopback("")
    assert not is_loopback("https://bot.example.com")


def test_the_server_leaves_its_address_while_it_runs(tmp_path):
    mine = config(tmp_path)
    assert recorded_server(mine) is None
    with server_recorded(mine, "http://127.0.0.1:5155", "http://127.0.0.1:5155"):
        assert recorded_server(mine) == "http://127.0.0.1:5155"
        record = json.loads((mine.state_dir / SERVER_FILE).read_text())
        assert record["pid"] == os.getpid()
    assert not (mine.state_dir / SERVER_FILE).exists()


def test_the_address_of_a_server_that_died_is_ignored(tmp_path):
    mine = config(tmp_path)
    gone = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    )
    mine.state_dir.mkdir(parents=True)
    record = {"url": "http://127.0.0.1:5155", "pid": int(gone.stdout)}
    (mine.state_dir / SERVER_FILE).write_text(json.dumps(record))
    assert recorded_server(mine) is None
    (mine.state_dir / SERVER_FILE).write_text("{not json")
    assert recorded_server(mine) is None
