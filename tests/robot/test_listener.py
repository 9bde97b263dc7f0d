"""What the listener tells the user when a robot fails."""

from __future__ import annotations

import pytest

from rasa_rpa_robot.listener import is_exception_text


@pytest.mark.parametrize(
    "message",
    [
        "FileNotFoundError: [Errno 2] No such file or directory: '/srv/x.csv'",
        "KeyError",
        "ConnectionRefusedError: [Errno 111] Connection refused",
        "ReadTimeout: HTTPConnectionPool(host='erp', port=80): Read timed out.",
        "Several failures occurred:\n\n1) ok words\n\n2) ValueError: bad",
        "Setup failed:\nPermissionError: [Errno 13] Permission denied: '/etc/x'",
    ],
)
def test_python_exceptions_are_recognised(message):
    assert is_exception_text(message)


@pytest.mark.parametrize(
    "message",
    [
        "Unknown customer 'Nobody Inc'",
        "Invoice INV-7 is locked by another user",
        "Customer: none given",
        "the robot failed",
    ],
)
def test_a_robots_own_words_stay(message):
    assert not is_exception_text(message)
