"""Keywords of the collect_order_details robot: read the order book, write a report."""

from __future__ import annotations

import csv
from pathlib import Path

ROBOT_LIBRARY_SCOPE = "GLOBAL"


def _customers(book: str) -> list[str]:
    with Path(book).open(newline="", encoding="utf-8") as file:
        return list(dict.fromkeys(order["customer"] for order in csv.DictReader(file)))


def matching_customers(book: str, customer: str = "ALL") -> list[str]:
    """The customers ``customer`` may mean, for the robot to ask when several.

    ALL, or a name in the book (in any case), means itself. Otherwise every
    customer whose name begins with it as whole words: "Umbrella" means
    "Umbrella Corp" and "Umbrella Ltd". A name that fits none is returned
    as it is, and Read Orders reports it unknown.
    """
    if customer.upper() == "ALL":
        return [customer]
    names = _customers(book)
    wanted = " ".join(customer.split()).lower()
    exact = [name for name in names if name.lower() == wanted]
    if exact:
        return exact
    found = [name for name in names if name.lower().startswith(wanted + " ")]
    return found or [customer]


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
