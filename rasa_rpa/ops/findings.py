"""What the doctor's checks report: a :class:`Finding` each, in a :class:`Report`.

Kept apart from the checks so each group of them (:mod:`rasa_rpa.ops.doctor`
for the files, Rasa and the vendors, :mod:`rasa_rpa.ops.live` for the running
server) files its verdicts the same way.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

__all__ = ["Finding", "Report", "Status"]

Status = Literal["ok", "warning", "error"]


@dataclass(frozen=True)
class Finding:
    """One check's verdict: what was found (the cause) and how to fix it."""

    check: str
    status: Status
    message: str
    fix: str = ""


@dataclass
class Report:
    """Every finding, in the order the checks ran."""

    findings: list[Finding] = field(default_factory=list)

    def add(self, check: str, status: Status, message: str, fix: str = "") -> None:
        """Record one finding."""
        self.findings.append(Finding(check, status, message, fix))

    def count(self, status: Status) -> int:
        """How many findings have ``status``."""
        return sum(1 for f in self.findings if f.status == status)

    @property
    def exit_code(self) -> int:
        """0 when nothing is broken (warnings allowed), 1 otherwise."""
        return 1 if self.count("error") else 0

    def as_dict(self) -> dict[str, Any]:
        """The report for ``--json``."""
        return {
            "ok": self.exit_code == 0,
            "errors": self.count("error"),
            "warnings": self.count("warning"),
            "findings": [asdict(f) for f in self.findings],
        }

    def render(self) -> str:
        """The report for a terminal: one line per finding, the fix below it."""
        labels = {"ok": "ok", "warning": "WARN", "error": "ERROR"}
        lines = []
        for f in self.findings:
            lines.append(f"{labels[f.status]:<6} {f.check:<24} {f.message}")
            if f.fix and f.status != "ok":
                lines.append(f"{'':<31} fix: {f.fix}")
        lines.append(
            f"{self.count('error')} error(s), {self.count('warning')} warning(s), "
            f"{self.count('ok')} ok"
        )
        return "\n".join(lines)
