"""The house rules a reader relies on: small modules (the layering itself is
checked by import-linter's contracts in pyproject.toml)."""

from __future__ import annotations

import subprocess

from devtools.stack import ROOT

MAX_LINES = 400


def test_no_library_module_is_over_400_lines() -> None:
    tracked = subprocess.run(
        ["git", "ls-files", "rasa_rpa/*.py", "robot-client/*.py"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    assert tracked, "git ls-files found no modules"
    long = {
        path: lines
        for path in tracked
        if (lines := len((ROOT / path).read_text().splitlines())) > MAX_LINES
    }
    assert not long, f"split these modules (over {MAX_LINES} lines): {long}"
