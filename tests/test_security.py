"""Per-job credentials: signatures and tokens open one job only."""

from __future__ import annotations

import time

import pytest

from rasa_rpa.errors import AuthenticationFailed, Forbidden
from rasa_rpa.security import (
    JobKeys,
    load_or_create_master_key,
    sign_webhook,
    verify_webhook,
)

BODY = b'{"id":"e1","type":"job.started"}'


def headers(
    secret: str, *, msg_id: str = "e1", stamp: int | None = None, body: bytes = BODY
) -> dict[str, str]:
    stamp = int(time.time()) if stamp is None else stamp
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(stamp),
        "webhook-signature": sign_webhook(secret, msg_id, stamp, body),
    }


@pytest.fixture
def keys() -> JobKeys:
    return JobKeys("a-master-key-of-enough-length")


def test_valid_signature_returns_the_message_id(keys):
    secret = keys.signing_secret("job-a")
    assert verify_webhook([secret], headers(secret), BODY) == "e1"


def test_signature_of_another_job_is_refused(keys):
    other = keys.signing_secret("job-b")
    with pytest.raises(AuthenticationFailed, match="does not match"):
        verify_webhook([keys.signing_secret("job-a")], headers(other), BODY)


def test_tampered_body_is_refused(keys):
    secret = keys.signing_secret("job-a")
    with pytest.raises(AuthenticationFailed):
        verify_webhook([secret], headers(secret), BODY.replace(b"started", b"failed"))


@pytest.mark.parametrize("skew", [-301, 301])
def test_timestamp_outside_five_minutes_is_refused(keys, skew):
    secret = keys.signing_secret("job-a")
    with pytest.raises(AuthenticationFailed, match="window"):
        verify_webhook([secret], headers(secret, stamp=int(time.time()) + skew), BODY)


def test_missing_header_is_refused(keys):
    secret = keys.signing_secret("job-a")
    sent = headers(secret)
    del sent["webhook-id"]
    with pytest.raises(AuthenticationFailed, match="required"):
        verify_webhook([secret], sent, BODY)


def test_several_signatures_allow_rotation(keys):
    new = keys.signing_secret("job-a")
    sent = headers("whsec_b2xkLXNlY3JldC1vbGQtc2VjcmV0")
    sent["webhook-signature"] += " garbage v1," + headers(new)["webhook-signature"][3:]
    assert verify_webhook([new], sent, BODY) == "e1"


def test_token_opens_its_job_only(keys):
    token = keys.mint_token("job-a", "conv-1")
    claims = keys.verify_token(token, "job-a")
    assert claims.conversation_id == "conv-1"
    with pytest.raises(Forbidden):
        keys.verify_token(token, "job-b")


def test_expired_token_is_refused(keys):
    token = keys.mint_token("job-a", "conv-1", ttl=-10)
    with pytest.raises(AuthenticationFailed, match="expired"):
        keys.verify_token(token, "job-a")


def test_token_from_another_key_is_refused(keys):
    token = JobKeys("another-master-key-entirely").mint_token("job-a", "conv-1")
    with pytest.raises(AuthenticationFailed, match="not valid"):
        keys.verify_token(token, "job-a")


def test_generated_master_key_is_kept_private_and_stable(tmp_path):
    first = load_or_create_master_key(None, tmp_path)
    assert load_or_create_master_key(None, tmp_path) == first
    assert (tmp_path / "master.key").stat().st_mode & 0o077 == 0
    assert load_or_create_master_key("configured-key", tmp_path) == "configured-key"


def test_operator_token_is_short_lived_and_no_job_token(keys):
    token = keys.mint_operator_token()
    keys.verify_operator_token(token)
    with pytest.raises(AuthenticationFailed, match=r"another callbacks\.secret"):
        JobKeys("another-master-key-0123456789").verify_operator_token(token)
    with pytest.raises(AuthenticationFailed):
        keys.verify_token(token, "job-1")  # it opens no job
    with pytest.raises(AuthenticationFailed):
        keys.verify_operator_token(keys.mint_token("job-1", "conv-1"))
    with pytest.raises(AuthenticationFailed, match="expired"):
        keys.verify_operator_token(keys.mint_operator_token(ttl=-5))


def test_fingerprints_tell_values_apart_and_show_none(tmp_path):
    from rasa_rpa.config import config_from_dict
    from rasa_rpa.security import fingerprints

    def of(token, master="m" * 32):
        raw = {"version": 1, "rasa": {"token": token}, "admin": {"token": "adm"}}
        config = config_from_dict(raw, base_dir=tmp_path)
        return fingerprints(config, JobKeys(master))

    first = of("rasa-token-1")
    assert first == of("rasa-token-1")
    assert first["rasa.token"] != of("rasa-token-2")["rasa.token"]
    assert first["admin.token"] == of("rasa-token-2")["admin.token"]
    assert first["rasa.jwt_secret"] is None
    assert first["callbacks.webhook_secrets"] is None
    assert len(first["rasa.token"]) == 8 and int(first["rasa.token"], 16) >= 0
    # Keyed with the master key: without it, a fingerprint says nothing.
    assert of("rasa-token-1", master="n" * 32)["rasa.token"] != first["rasa.token"]
    assert "rasa-token-1" not in repr(first)
