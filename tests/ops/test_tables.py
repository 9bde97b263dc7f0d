"""The operator's tables and the progress bar (rasa_rpa.ops.tables)."""

from __future__ import annotations

import io

from rasa_rpa.ops.tables import ProgressBar, table


def test_table_aligns_columns() -> None:
    text = table(("A", "LONGER"), [("xxxx", None), ("y", "z")])
    lines = text.splitlines()
    assert lines[0] == "A     LONGER"
    assert lines[1] == "xxxx"
    assert lines[2] == "y     z"


def test_progress_bar_redraws_in_place_and_ends_the_line() -> None:
    stream = io.StringIO()
    bar = ProgressBar(stream, "work", width=10, every=60)
    bar.update(0, 4)
    bar.update(1, 4)  # throttled: drawn less than `every` ago
    bar.update(4, 4)  # the last step is always drawn
    bar.close()
    text = stream.getvalue()
    assert text.count("\r") == 2
    assert "[----------] 0/4" in text and "[##########] 4/4" in text
    assert text.endswith("\n")
