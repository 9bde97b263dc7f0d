"""Standard Webhooks signing, shared by the robot and the server (stdlib only)."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from rasa_rpa import security
from rasa_rpa.errors import AuthenticationFailed
from rasa_rpa_robot import signing
from rasa_rpa_robot.signing import (
    SignatureError,
    same_text,
    sign_webhook,
    verify_webhook,
)

FILE = Path(signing.__file__)
SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
BODY = b'{"test": 2432232314}'


def signed(msg_id: str = "e1", stamp: int | None = None) -> dict[str, str]:
    stamp = int(time.time()) if stamp is None else stamp
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(stamp),
        "webhook-signature": sign_webhook(SECRET, msg_id, stamp, BODY),
    }


def test_signature_matches_the_standard_webhooks_example():
    # The worked example of the Standard Webhooks specification.
    signature = sign_webhook(SECRET, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, BODY)
    assert signature == "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="


def test_verify_returns_the_message_id():
    assert verify_webhook([SECRET], signed("m-7"), BODY) == "m-7"


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        (lambda h: h.pop("webhook-id"), "required"),
        (lambda h: h.update({"webhook-timestamp": "soon"}), "unix seconds"),
        (lambda h: h.update({"webhook-timestamp": "1"}), "window"),
        (lambda h: h.update({"webhook-signature": "v1,AAAA"}), "does not match"),
        # Sanic hands bytes that are not UTF-8 on as surrogates.
        (lambda h: h.update({"webhook-id": "e\udcff"}), "UTF-8"),
    ],
)
def test_bad_signatures_raise_signature_error(change, reason):
    headers = signed()
    change(headers)
    with pytest.raises(SignatureError, match=reason):
        verify_webhook([SECRET], headers, BODY)


def test_server_keeps_its_error_and_words():
    """The server's wrapper answers 401 with the same words as before."""
    headers = signed()
    headers["webhook-signature"] = "v1,AAAA"
    with pytest.raises(AuthenticationFailed, match="webhook-signature does not match"):
        security.verify_webhook([SECRET], headers, BODY)
    assert security.sign_webhook is sign_webhook  # one copy of the primitive
    assert security.same_text is same_text


def test_same_text_copes_with_surrogates():
    assert same_text("a\udcff", "a\udcff")
    assert not same_text("a\udcff", "a\udcfe")


def test_signing_needs_the_standard_library_only():
    # Loaded from its file alone (the package's __init__ brings requests):
    # whatever else it pulls in must be standard library.
    code = (
        "import importlib.util, sys; before = set(sys.modules); "
        f"spec = importlib.util.spec_from_file_location('signing', {str(FILE)!r}); "
        "module = importlib.util.module_from_spec(spec); "
        "spec.loader.exec_module(module); "
        "new = {m.split('.')[0] for m in set(sys.modules) - before}; "
        "print(sorted(new - set(sys.stdlib_module_names)))"
    )
    result = subprocess.run(
        [sys.executable, "-I", "-c", code], capture_output=True, text=True, timeout=30
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"
