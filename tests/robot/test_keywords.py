"""The keyword library outside a rasa-rpa job only logs, so robots run standalone."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from openpyxl import load_workbook

from devtools.stack import ROOT
from rasa_rpa_robot import client as client_module, keywords


def test_order_robot_runs_without_rasa_rpa(tmp_path):
    env = {
        k: v
        for k, v in __import__("os").environ.items()
        if not k.startswith("RASA_RPA_")
    }
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "robot",
            "--outputdir",
            str(tmp_path),
            "--variable",
            "step_delay:0",
            "--console",
            "none",
            str(ROOT / "robots" / "collect_order_details.robot"),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    # The report is an Excel workbook: a header row and the 10 orders.
    sheet = load_workbook(tmp_path / "orders-ALL.xlsx").active
    assert sheet.max_row == 11
    assert [cell.value for cell in sheet[1]][:2] == ["Order", "Customer"]


def test_progress_outside_range_is_an_error(monkeypatch):
    monkeypatch.setattr(client_module, "_current", [None])
    with pytest.raises(ValueError, match="between 0 and 100"):
        keywords.report_progress(120)


def test_order_library_refuses_unknown_customers():
    sys.path.insert(0, str(ROOT / "robots"))
    try:
        import orders
    finally:
        sys.path.remove(str(ROOT / "robots"))
    book = str(Path(ROOT / "robots" / "data" / "orders.csv"))
    assert len(orders.read_orders(book, "acme")) == 3
    with pytest.raises(AssertionError, match="Unknown customer 'Nobody Inc'"):
        orders.read_orders(book, "Nobody Inc")


def test_ask_user_outside_a_job_answers_its_default_or_fails(monkeypatch):
    monkeypatch.setattr(client_module, "_current", [None])
    assert keywords.ask_user("Which customer?", "A, B", default="A") == "A"
    with pytest.raises(RuntimeError, match="needs a rasa-rpa job"):
        keywords.ask_user("Which customer?", "A, B")


@pytest.mark.parametrize(
    ("given", "choices"),
    [
        (None, []),
        ("", []),
        ("ACME Corp, ACME Ltd", ["ACME Corp", "ACME Ltd"]),
        ('[{"title": "ACME", "value": "acme"}]', [{"title": "ACME", "value": "acme"}]),
        (["ACME Corp", "ACME Ltd"], ["ACME Corp", "ACME Ltd"]),
    ],
)
def test_ask_user_takes_choices_as_text_json_or_a_list(monkeypatch, given, choices):
    asked = {}

    class Client:
        def ask(self, question, choices, **options):
            asked.update(question=question, choices=choices, **options)
            return "acme"

    monkeypatch.setattr(client_module, "_current", [Client()])
    answer = keywords.ask_user("Which?", given, timeout="1 min 30 s", free_text=True)
    assert answer == "acme"
    assert asked == {
        "question": "Which?",
        "choices": choices,
        "free_text": True,
        "timeout": 90.0,
    }


def test_order_robot_sees_which_customers_a_name_may_mean():
    sys.path.insert(0, str(ROOT / "robots"))
    try:
        import orders
    finally:
        sys.path.remove(str(ROOT / "robots"))
    book = str(Path(ROOT / "robots" / "data" / "orders.csv"))
    both = ["Umbrella Corp", "Umbrella Ltd"]
    assert orders.matching_customers(book, "umbrella") == both
    assert orders.matching_customers(book, "umbrella ltd") == ["Umbrella Ltd"]
    assert orders.matching_customers(book, "ACME") == ["ACME"]
    assert orders.matching_customers(book, "ALL") == ["ALL"]
    assert orders.matching_customers(book, "Umb") == ["Umb"]  # whole words only
    assert orders.matching_customers(book, "Nobody Inc") == ["Nobody Inc"]


def test_send_file_outside_rasa_rpa_only_logs(monkeypatch, tmp_path):
    monkeypatch.setattr(client_module, "_current", [None])
    keywords.send_file(str(tmp_path / "not-even-there.xlsx"), title="report")
