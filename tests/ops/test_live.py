"""How the doctor words the running server's state (the state itself is read
from real servers in tests/ops/test_doctor.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rasa_rpa.config import config_from_dict
from rasa_rpa.ops.findings import Report
from rasa_rpa.ops.live import _credentials, _outbox
from rasa_rpa.security import JobKeys, fingerprints

KEYS = JobKeys("m" * 32)


def message(seq: int, error: str) -> dict[str, Any]:
    return {
        "seq": seq,
        "job_id": f"job-{seq}",
        "conversation_id": "c",
        "call": "trigger_intent EXTERNAL_rpa_job_running",
        "attempts": 3,
        "last_error": error,
        "created_at": 0.0,
    }


def test_failing_messages_are_errors_with_a_fix_read_from_their_error(
    tmp_path: Path,
) -> None:
    config = config_from_dict({"version": 1}, source="bot/rpa.yml", base_dir=tmp_path)
    report = Report()
    failing = [
        message(1, "Rasa refused our credentials (HTTP 401): check rasa.token"),
        message(2, "Rasa unreachable: ClientConnectorError"),
        *(message(n, "Rasa answered 500: boom") for n in range(3, 9)),
    ]
    dead = [message(20, "Rasa answered 404: The intent 'x' does not exist")]
    counts = {"pending": 8, "delivered": 0, "dead": 1, "discarded": 0}
    _outbox(config, report, {"failing": failing, "dead": dead, "counts": counts})
    shown = [f for f in report.findings if f.check == "outbox.failing"]
    assert len(shown) == 6 and all(f.status == "error" for f in shown)
    assert "job job-1" in shown[0].message and "3 time(s)" in shown[0].message
    assert "rasa.token" in shown[0].fix and "bot/rpa.yml" in shown[0].fix
    assert "start Rasa, or correct rasa.url" in shown[1].fix
    assert "delivery.max_age" in shown[2].fix
    assert shown[-1].message.startswith("3 more failing")
    [gone] = [f for f in report.findings if f.check == "outbox.dead"]
    assert gone.status == "warning"
    assert "jobs replay 20" in gone.fix and "jobs discard 20" in gone.fix
    assert report.exit_code == 1


def test_each_differing_credential_is_named(tmp_path: Path) -> None:
    def load(**raw: Any) -> Any:
        return config_from_dict({"version": 1, **raw}, base_dir=tmp_path)

    server = load(rasa={"url": "http://rasa:5005", "token": "a"})
    body = {
        "rasa_url": server.rasa.url,
        "jwt_method": "HS256",
        "fingerprints": fingerprints(server, KEYS),
    }
    report = Report()
    _credentials(server, report, KEYS, body)
    assert [(f.check, f.status) for f in report.findings] == [
        ("server.credentials", "ok")
    ]
    ours = load(
        rasa={"url": "http://localhost:5005", "jwt_secret": "j"},
        admin={"token": "adm"},
    )
    report = Report()
    _credentials(ours, report, KEYS, body)
    found = {f.check: (f.status, f.message) for f in report.findings}
    assert found["server.rasa.url"][0] == "error"
    assert "http://rasa:5005" in found["server.rasa.url"][1]
    assert "the running server has none" in found["server.rasa.jwt_secret"][1]
    assert "does not set" in found["server.rasa.token"][1]
    assert found["server.admin.token"][0] == "warning"  # costs no delivery
