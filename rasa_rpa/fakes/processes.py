"""What the fakes' "robots" do: scripted processes with real inputs and outputs.

Every fake runs the same catalogue, so a bot behaves the same whichever
vendor it is pointed at. ``collect_order_details`` mirrors the local robot:
it counts a customer's orders and fails for a customer it does not know.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

__all__ = ["PROCESSES", "ProcessFailed", "run_process"]

ORDERS = {"ACME": 3, "Globex": 2, "Initech": 2, "Umbrella Corp": 1, "Umbrella Ltd": 2}


class ProcessFailed(Exception):
    """The scripted process failed; the message is what the vendor reports."""


def _collect_order_details(inputs: dict[str, Any]) -> dict[str, Any]:
    customer = str(inputs.get("customer") or "ALL")
    if customer.upper() == "ALL":
        count = sum(ORDERS.values())
    else:
        known = {name.lower(): n for name, n in ORDERS.items()}
        if customer.lower() not in known:
            raise ProcessFailed(f"Unknown customer '{customer}': not in the order book")
        count = known[customer.lower()]
    safe = "".join(c if c.isalnum() else "-" for c in customer)
    return {"order_count": count, "report_path": f"/reports/orders-{safe}.csv"}


def _echo(inputs: dict[str, Any]) -> dict[str, Any]:
    return dict(inputs)


def _always_fails(inputs: dict[str, Any]) -> dict[str, Any]:
    raise ProcessFailed(str(inputs.get("reason") or "the process failed"))


PROCESSES: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
    "collect_order_details": _collect_order_details,
    "echo": _echo,
    "always_fails": _always_fails,
}


def run_process(name: str, inputs: dict[str, Any]) -> dict[str, Any]:
    """Outputs of process ``name``; ProcessFailed if it fails."""
    return PROCESSES[name](inputs)
