"""Keywords of the collect_order_details robot: read the order book, write a report."""

from __future__ import annotations

import csv
from pathlib import Path

ROBOT_LIBRARY_SCOPE = "GLOBAL"


def read_orders(book: str, customer: str = "ALL") -> list[dict[str, str]]:
    """Orders of ``customer`` (every order for ALL); an unknown customer fails."""
    with Path(book).open(newline="", encoding="utf-8") as file:
        orders = list(csv.DictReader(file))
    if customer.upper() == "ALL":
        return orders
    known = {order["customer"].lower(): order["customer"] for order in orders}
    if customer.lower() not in known:
        raise AssertionError(
            f"Unknown customer '{customer}': not in the order book "
            f"(known: {', '.join(sorted(set(known.values())))})"
        )
    return [o for o in orders if o["customer"].lower() == customer.lower()]


def write_report(orders: list[dict[str, str]], folder: str, customer: str) -> str:
    """Write the orders with their totals to a CSV file; return its path."""
    safe = "".join(c if c.isalnum() else "-" for c in customer).strip("-") or "ALL"
    path = Path(folder) / f"orders-{safe}.csv"
    with path.open("w", newline="", encoding="utf-8") as file:
        writer = csv.writer(file)
        writer.writerow(["order_id", "customer", "product", "quantity", "total"])
        for order in orders:
            total = int(order["quantity"]) * float(order["unit_price"])
            writer.writerow([order["order_id"], order["customer"], order["product"],
                             order["quantity"], f"{total:.2f}"])
    return str(path.resolve())
