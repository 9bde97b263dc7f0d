"""The reference bot's order automation switched by configuration to vendor fakes."""

from __future__ import annotations

import pytest

from rasa_rpa.fakes.power_automate import FakePowerAutomate
from rasa_rpa.fakes.robocorp import FakeRobocorp
from rasa_rpa.fakes.sap import FakeSapIrpa
from rasa_rpa.fakes.uipath import FakeOrchestrator
from tests.e2e.stack import Stack

pytestmark = pytest.mark.e2e


def test_order_report_through_uipath_orchestrator(stack: Stack):
    webhook = f"{stack.actions_url}/rpa/v1/providers/uipath/webhook"
    with FakeOrchestrator(
        webhook_url=webhook, webhook_secret="uipath-hook-secret", step_delay=1.0
    ) as orchestrator:
        settings = {
            "type": "uipath",
            "url": orchestrator.orchestrator_url,
            "token_url": orchestrator.token_url,
            "client_id": "fake-client",
            "client_secret": "fake-secret",
            "folder_id": 1,
            "webhook_secret": "uipath-hook-secret",
            "poll_interval": 2,
        }
        with stack.order_automation_on("uipath", settings):
            sender = stack.new_sender()
            stack.say(sender, "get orders for customer ACME")
            stack.inbox.wait_text(
                sender, r"OK, I started your order details report job"
            )
            stack.inbox.wait_text(sender, r"robot is now working")
            stack.inbox.wait_text(sender, r"Progress: 50% - Processing in UiPath")
            done = stack.inbox.wait_text(
                sender, r"Your order details report \(\w{3}-\w{3}\) is ready"
            )
            assert done.endswith("is ready: 3 orders.")
            failing = stack.new_sender()
            stack.say(failing, "get orders for customer Nobody Inc")
            failed = stack.inbox.wait_text(failing, r"failed")
            assert "Unknown customer 'Nobody Inc'" in failed


def test_order_report_through_sap_build_process_automation(stack: Stack):
    notifier = f"{stack.actions_url}/rpa/v1/providers/sap/webhook"
    with FakeSapIrpa(notifier_url=notifier, step_delay=1.0) as sap:
        with stack.order_automation_on("sap", sap.provider_options()):
            sender = stack.new_sender()
            stack.say(sender, "get orders for customer Globex")
            stack.inbox.wait_text(
                sender, r"OK, I started your order details report job"
            )
            stack.inbox.wait_text(sender, r"robot is now working")
            stack.inbox.wait_text(sender, r"Progress: 50% - Processing in SAP")
            done = stack.inbox.wait_text(
                sender, r"Your order details report \(\w{3}-\w{3}\) is ready"
            )
            assert "2 orders" in done
            failing = stack.new_sender()
            stack.say(failing, "get orders for customer Nobody Inc")
            failed = stack.inbox.wait_text(failing, r"failed")
            assert "Unknown customer 'Nobody Inc'" in failed


def test_order_report_through_robocorp_control_room(stack: Stack):
    """Polled: the process run's state, its output work item, its failed item."""
    with FakeRobocorp(step_delay=1.0) as control_room:
        settings = control_room.provider_options(poll_interval=1)
        with stack.order_automation_on("robocorp", settings):
            sender = stack.new_sender()
            stack.say(sender, "get orders for customer ACME")
            stack.inbox.wait_text(
                sender, r"OK, I started your order details report job"
            )
            stack.inbox.wait_text(sender, r"Progress: 50% - Processing in Robocorp")
            done = stack.inbox.wait_text(
                sender, r"Your order details report \(\w{3}-\w{3}\) is ready"
            )
            assert done.endswith("is ready: 3 orders.")
            failing = stack.new_sender()
            stack.say(failing, "get orders for customer Nobody Inc")
            failed = stack.inbox.wait_text(failing, r"failed")
            assert "Unknown customer 'Nobody Inc'" in failed


def test_order_report_through_power_automate_desktop_flows(stack: Stack):
    """The completion callback through the real webhook route, Dataverse re-read."""
    callback = f"{stack.actions_url}/rpa/v1/providers/power_automate/webhook"
    # The service calls back only to HTTPS with a DNS name; the action
    # server here is plain HTTP on loopback, so the fake is told to allow it.
    with FakePowerAutomate(step_delay=1.0, insecure_callbacks=True) as pad:
        settings = pad.provider_options(callback_url=callback, poll_interval="1h")
        with stack.order_automation_on("power_automate", settings):
            sender = stack.new_sender()
            stack.say(sender, "get orders for customer Initech")
            stack.inbox.wait_text(
                sender, r"OK, I started your order details report job"
            )
            stack.inbox.wait_text(
                sender, r"Progress: 50% - Processing in Power Automate"
            )
            done = stack.inbox.wait_text(
                sender, r"Your order details report \(\w{3}-\w{3}\) is ready"
            )
            assert "2 orders" in done
            assert [c["status"] for c in pad.callbacks] == [202]
            failing = stack.new_sender()
            stack.say(failing, "get orders for customer Nobody Inc")
            failed = stack.inbox.wait_text(failing, r"failed")
            assert "Unknown customer 'Nobody Inc'" in failed
