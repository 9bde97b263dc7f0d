"""``make bench``: every figure of issue #5 next to its baseline, as a table and JSON.

python -m benchmarks            # full counts, each figure the median of 3 runs
python -m benchmarks --smoke    # small counts, one run (part of `make test`)
python -m benchmarks --only P1,P4 --runs 5
python -m benchmarks --only P7 --soak-seconds 120

P7, the soak, runs once whatever --runs says: it lasts ten minutes.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from benchmarks import p1, p6, scenarios, soak, withrasa
from benchmarks.harness import combine, drop_pg_schema
from devtools.stack import ROOT

FULL = {
    "p1": 20000,
    "p2": 200,
    "p3": 500,
    "p4": 10000,
    "p5_jobs": 100000,
    "p5_lookups": 2000,
    "p6_jobs": 200,
    "p6_updates": 10,
    "soak_seconds": 600,
}
SMOKE = {
    "p1": 600,
    "p2": 10,
    "p3": 40,
    "p4": 500,
    "p5_jobs": 1000,
    "p5_lookups": 200,
    "p6_jobs": 10,
    "p6_updates": 3,
    "soak_seconds": 18,
}
#: Concurrencies P6's direct baseline tries; its best counts.
P6_CONCURRENCY = {"full": (4, 8, 16, 32), "smoke": (8,)}
PG_URL = "postgresql://postgres@127.0.0.1:5432/test?schema=rpa_bench_{}"


def machine() -> dict[str, Any]:
    """Where the figures come from."""
    return {
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "system": platform.platform(),
        "at": time.strftime("%Y-%m-%d %H:%M:%S"),
    }


def run(only: set[str], counts: dict[str, int], tmp: Path) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    if "P1" in only:
        rows += p1.p1_callbacks(tmp / "p1-sqlite", counts["p1"], floors=True)
        schema = uuid.uuid4().hex[:10]
        try:
            rows += p1.p1_callbacks(
                tmp / "p1-pg", counts["p1"], PG_URL.format(schema), "PostgreSQL", 0.2
            )
        finally:
            drop_pg_schema(f"rpa_bench_{schema}")
    if only & {"P2", "P6"}:
        # One Rasa for both: it takes a minute to start.
        with withrasa.rasa_stack(tmp / "rasa") as stack:
            if "P2" in only:
                rows += withrasa.p2_measure(stack, counts["p2"])
            if "P6" in only:
                smoke = counts["p6_jobs"] < FULL["p6_jobs"]
                rows += p6.p6_fan_in(
                    stack,
                    tmp / "p6",
                    counts["p6_jobs"],
                    counts["p6_updates"],
                    P6_CONCURRENCY["smoke" if smoke else "full"],
                )
    if "P3" in only:
        rows += scenarios.p3_start_action(tmp / "p3", counts["p3"])
    if "P4" in only:
        rows += scenarios.p4_drain(tmp / "p4", counts["p4"])
    if "P5" in only:
        rows += scenarios.p5_many_jobs(
            tmp / "p5", counts["p5_jobs"], counts["p5_lookups"]
        )
    return rows


def _ok(result: dict[str, Any]) -> str:
    return "yes" if result["ok"] else "NO"


def table(rows: list[dict[str, Any]]) -> str:
    lines = [
        f"{'id':<4} {'measure':<62} {'value':>10} {'baseline':>10} "
        f"{'unit':<8} {'score':>9} {'target':>12}  ok  {'score min..max':>20}"
    ]
    for r in rows:
        if "value" not in r:
            lines.append(
                f"{r['id']:<4} {r['measure']:<62} {'':>10} {'':>10} "
                f"{'':<8} {'':>9} {'':>12}  {'yes' if r['ok'] else 'NO'}"
            )
            continue
        target = {"ratio": "(explains)", "shows": "(shows)"}.get(
            r["compare"], f"{r['compare']} {r['target']}"
        )
        lines.append(
            f"{r['id']:<4} {r['measure'][:62]:<62} {r['value']:>10} {r['baseline']:>10}"
            f" {r['unit']:<8} {r['score']:>9} {target:>12}  {_ok(r):<3}"
            + (
                f" {r['score_min']:>9}..{r['score_max']:<9}"
                if r.get("runs", 1) > 1
                else ""
            )
        )
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks")
    parser.add_argument("--smoke", action="store_true", help="small counts")
    parser.add_argument("--only", default="P1,P2,P3,P4,P5,P6,P7")
    parser.add_argument("--out", default=str(ROOT / "bench-results" / "latest.json"))
    parser.add_argument(
        "--runs",
        type=int,
        default=None,
        help="runs per figure, reported as the median with min..max"
        " (default 3, 1 with --smoke)",
    )
    parser.add_argument(
        "--soak-seconds",
        type=int,
        default=None,
        help="how long P7 (the soak, one run) lasts (default 600, 18 with --smoke)",
    )
    args = parser.parse_args()
    runs = args.runs or (1 if args.smoke else 3)
    counts = dict(SMOKE if args.smoke else FULL)
    if args.soak_seconds is not None:
        counts["soak_seconds"] = args.soak_seconds
    only = {item.strip().upper() for item in args.only.split(",")}
    tmp = Path(tempfile.mkdtemp(prefix="rasa-rpa-bench-"))
    try:
        rows = combine([run(only, counts, tmp / f"run{n}") for n in range(runs)])
        if "P7" in only:
            # Once, not once per run: it is long, and its figures are slopes
            # over its own second half, not one sample among several.
            rows += soak.p7_soak(tmp / "soak", counts["soak_seconds"])
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(table(rows))
    if "P7" in only:
        print(f"\nP7 (the soak) ran once, for {counts['soak_seconds']:g} s"
              + (f"; the other figures are medians of {runs} runs" if runs > 1 else "")
              + ("; too short for its slopes to mean anything (the full soak"
                 f" is {FULL['soak_seconds']} s)"
                 if counts["soak_seconds"] < FULL["soak_seconds"] / 2 else "")
              + ".")  # fmt: skip
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(
        json.dumps(
            {
                "machine": machine(),
                "smoke": args.smoke,
                "runs": runs,
                "counts": counts,
                "results": rows,
            },
            indent=2,
        )
    )
    print(f"\nJSON: {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
