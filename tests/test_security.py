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
