"""Vendor-format callbacks: the provider webhook route and the Botpress callback."""

from __future__ import annotations

import uuid

import pytest
import requests


@pytest.fixture
def server(action_server, rasa_stand_in):
    return action_server(rasa_url=rasa_stand_in.url)


@pytest.fixture
def running(server):
    sender = uuid.uuid4().hex
    job_id = server.start_job(sender, intent="wait")
    server.wait_job(job_id, sender, "running")
    yield job_id, sender
    server.run_action("action_cancel_rpa_job", sender)


def botpress(server, token, body):
    headers = {"Content-Type": "application/json"}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    return requests.post(
        f"{server.url}/api/v1/bots/___/mod/uipath/message",
        json=body,
        headers=headers,
        timeout=10,
    )


def test_botpress_callback_reaches_the_conversation(server, running, rasa_stand_in):
    job_id, sender = running
    token = server.keys.mint_token(job_id, sender)
    response = botpress(
        server,
        token,
        {
            "channel": "socketio",
            "target": sender,
            "botId": "orders-bot",
            "message": {"type": "text", "text": "Hello from UiPath"},
        },
    )
    assert response.status_code == 202, response.text
    calls = rasa_stand_in.wait_for(
        lambda calls: any(
            c.endpoint == "tracker/events"
            and c.body[0].get("text") == "Hello from UiPath"
            for c in calls
        )
    )
    assert any(c.conversation_id == sender for c in calls)


def test_botpress_callback_without_header_is_401_like_botpress(server):
    response = botpress(server, None, {"target": "x", "message": "hi"})
    assert response.status_code == 401
    assert response.json()["error"]["message"] == "Authorization header is missing"


def test_botpress_callback_for_another_conversation_is_403(server, running):
    job_id, sender = running
    token = server.keys.mint_token(job_id, sender)
    response = botpress(server, token, {"target": "someone-else", "message": "hi"})
    assert response.status_code == 403


def test_botpress_callback_with_bad_message_is_422(server, running):
    job_id, sender = running
    token = server.keys.mint_token(job_id, sender)
    response = botpress(server, token, {"target": sender, "message": {"type": "x"}})
    assert response.status_code == 422


def test_webhook_for_unknown_provider_is_404(server):
    response = requests.post(
        f"{server.url}/rpa/v1/providers/nope/webhook", json={}, timeout=10
    )
    assert response.status_code == 404
    assert "no provider named 'nope'" in response.json()["error"]["message"]


def test_provider_without_webhooks_says_so(server):
    response = requests.post(
        f"{server.url}/rpa/v1/providers/local/webhook", json={}, timeout=10
    )
    assert response.status_code == 404
    assert "receives no webhooks" in response.json()["error"]["message"]
