"""Keywords of the collect_order_details robot: read the order book, write a report.

The report is an Excel workbook (openpyxl, the reference-bot extra in
pyproject.toml), which the robot sends to the user with ``Send File``.
"""

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
    """Write the orders with their totals to an Excel workbook; return its path."""
    from openpyxl import Workbook
    from openpyxl.styles import Font

    safe = "".join(c if c.isalnum() else "-" for c in customer).strip("-") or "ALL"
    path = Path(folder) / f"orders-{safe}.xlsx"
    book = Workbook()
    sheet = book.active
    sheet.title = "Orders"
    sheet.append(["Order", "Customer", "Product", "Quantity", "Total"])
    for cell in sheet[1]:
        cell.font = Font(bold=True)
    for order in orders:
        quantity = int(order["quantity"])
        total = round(quantity * float(order["unit_price"]), 2)
        sheet.append(
            [order["order_id"], order["customer"], order["product"], quantity, total]
        )
        sheet.cell(row=sheet.max_row, column=5).number_format = "#,##0.00"
    for column, width in zip("ABCDE", (10, 18, 24, 10, 12)):
        sheet.column_dimensions[column].width = width
    sheet.freeze_panes = "A2"
    book.save(path)
    return str(path.resolve())
