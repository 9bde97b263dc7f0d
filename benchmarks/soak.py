"""P7, the soak: 200 callbacks/s for 10 minutes with retention on.

Robots (:mod:`benchmarks.soak_load`) start jobs, report progress, sometimes
a file, then a result, on a fixed schedule, into ``rasa-rpa run`` on SQLite
with the instant Rasa stand-in (so every message is delivered, and so
prunable). Retention keeps finished things only ``keep`` seconds (30 s in
the full run) and prunes every few seconds, so the store reaches a steady
size within the first minute and pruning runs a hundred times.

Every second the soak samples the worker's RSS (``/proc``), the store's
size on disk (database and WAL) and its rows. Flat is judged over the second
half of the run (the first is warm-up), by least-squares slopes:

* worker RSS: at most 0.5 MB/min. At 200 callbacks/s (some 2,400 jobs a
  minute) that is about 220 bytes kept per job, about what one small dict
  entry keyed by a job id costs: so anything kept per job and never dropped
  shows (the rate limiter's buckets, 250-300 bytes a job, read 0.74 MB/min
  before they were forgotten once full again), while one allocator step of
  1 MB in the middle of the half reads as 0.3 MB/min and stays under it;
* store size and rows: at most 2% of their level per minute (10% over the
  half). A kind of row retention forgot would grow by more than its own level
  every ``keep`` seconds, hundreds of percent a minute;
* store size at the end at most 1.1 x its size after warm-up: SQLite reuses
  the pages pruning frees, and its WAL file stays at its high-water mark, so
  neither grows once the store holds a steady ``keep`` seconds of jobs.

It runs once however many runs the other figures take: it is long.
"""

from __future__ import annotations

import queue as queues
import re
import sqlite3
import statistics
import time
from collections import Counter
from pathlib import Path
from typing import Any

from benchmarks.harness import Row, percentile, row, with_instant
from benchmarks.soak_load import Plan, Sent, run_soak_load
from rasa_rpa.stores.retention import KINDS

__all__ = ["p7_soak"]

#: Callbacks a job sends on average (started, 3 progress, result; a file on
#: one job in 20): sets how many jobs run at once for a given job length.
PER_JOB = 5.05
#: Tables sampled, by the name the report gives them.
TABLES = {"jobs": "jobs", "events": "job_events", "outbox": "outbox", "files": "files"}
_PRUNED = re.compile(
    r"retention: pruned (\d+) files, (\d+) delivered, (\d+) events, (\d+) jobs"
)
_WORKER = re.compile(r"Starting worker \[(\d+)\]")


def settings(seconds: float) -> dict[str, float]:
    """Retention, pruning and job length for a soak of ``seconds``.

    30 s kept and pruning every 5 s in the full run (reconciler every 2 s, its
    default); scaled down for a short smoke run so that it prunes too.
    """
    keep = min(30.0, seconds / 6)
    every = min(5.0, keep / 6)
    return {
        "keep": keep,
        "every": every,
        "reconciler": min(2.0, every),
        "job_seconds": min(10.0, seconds / 8),
        # Well under the prune period, so the sawtooth pruning draws in the
        # row counts is sampled, not aliased into a slow drift.
        "sample_every": min(1.0, max(0.5, seconds / 200)),
    }


def p7_soak(tmp: Path, seconds: float, rate: float = 200.0) -> list[Row]:
    """P7: ``rate`` callbacks/s for ``seconds`` with retention on; the slopes."""
    knobs = settings(seconds)
    keep = f"{knobs['keep']:g}s"
    extra = {
        "retention": {
            "files": keep,
            "delivered": keep,
            "events": keep,
            "jobs": keep,
            "interval": f"{knobs['every']:g}s",
        },
        "reconciler": {"interval": f"{knobs['reconciler']:g}s"},
    }
    slots = max(10, round(rate * knobs["job_seconds"] / PER_JOB))
    db = tmp / "jobs.db"
    with with_instant(tmp, extra=extra) as port:
        workers = [int(p) for p in _WORKER.findall((tmp / "actions.log").read_text())]
        process, results = run_soak_load(Plan(port, rate, seconds, slots))
        reader = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
        try:
            samples, sent = _sample_until_done(
                reader, db, workers, results, knobs["sample_every"]
            )
            process.join(30)
            drained = _drain(reader, db, workers)
        finally:
            reader.close()
    log = (tmp / "actions.log").read_text(errors="replace")
    pruned = dict.fromkeys(KINDS, 0)
    for match in _PRUNED.finditer(log):
        for kind, count in zip(KINDS, match.groups(), strict=True):
            pruned[kind] += int(count)
    restarted = sorted(set(int(p) for p in _WORKER.findall(log)) - set(workers))
    return _report(
        seconds, rate, slots, knobs, samples, sent, pruned, drained, restarted
    )


def _sample_until_done(
    reader: sqlite3.Connection,
    db: Path,
    workers: list[int],
    results: Any,
    every: float,
) -> tuple[list[dict[str, Any]], Sent]:
    """Samples every ``every`` s until the robots report what they sent."""
    samples: list[dict[str, Any]] = []
    started = time.time()
    while True:
        samples.append(_sample(reader, db, workers))
        wait = started + len(samples) * every - time.time()
        try:
            sent: Sent = results.get(timeout=max(0.01, wait))
        except queues.Empty:
            continue
        return samples, sent


def _drain(reader: sqlite3.Connection, db: Path, workers: list[int]) -> dict[str, Any]:
    """After the schedule: how long the outbox takes to empty (at most 60 s)."""
    started = time.time()
    while True:
        sample = _sample(reader, db, workers)
        if sample["pending"] == 0 or time.time() - started > 60:
            return {"seconds": round(time.time() - started, 2), **sample}
        time.sleep(0.1)


def _sample(reader: sqlite3.Connection, db: Path, workers: list[int]) -> dict[str, Any]:
    rows = {
        kind: int(reader.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0])
        for kind, table in TABLES.items()
    }
    pending = reader.execute(
        "SELECT COUNT(*) FROM outbox"
        " WHERE delivered_at IS NULL AND discarded_at IS NULL"
    ).fetchone()[0]
    wal = db.with_name(db.name + "-wal")
    return {
        "t": time.time(),
        "rss_mb": sum(_rss_mb(pid) for pid in workers),
        "db_mb": db.stat().st_size / 1e6,
        "wal_mb": (wal.stat().st_size if wal.exists() else 0) / 1e6,
        "rows": rows,
        "pending": int(pending),
    }


def _rss_mb(pid: int) -> float:
    """VmRSS of ``pid`` in MB (0 if it is gone)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0.0
    for line in status.splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def slope(points: list[tuple[float, float]]) -> float:
    """Least-squares slope of (unix time, value) points, per minute."""
    if len(points) < 2:
        return 0.0
    ts = [t / 60 for t, _ in points]
    vs = [v for _, v in points]
    mean_t, mean_v = statistics.fmean(ts), statistics.fmean(vs)
    spread = sum((t - mean_t) ** 2 for t in ts)
    if not spread:
        return 0.0
    return (
        sum((t - mean_t) * (v - mean_v) for t, v in zip(ts, vs, strict=True)) / spread
    )


def _store_mb(sample: dict[str, Any]) -> float:
    return float(sample["db_mb"] + sample["wal_mb"])


def _rows(sample: dict[str, Any]) -> int:
    return sum(sample["rows"].values())


def _windows(sent: Sent, count: int) -> list[dict[str, Any]]:
    """Per slice of the schedule: rate sent, latency p50/p99, lag p99."""
    first, last = sent.due[0], sent.due[-1]
    width = (last - first) / count or 1.0
    out: list[dict[str, Any]] = []
    for n in range(count):
        lo, hi = first + n * width, first + (n + 1) * width
        picked = [
            k
            for k, due in enumerate(sent.due)
            if lo <= due < hi or (n == count - 1 and due == hi)
        ]
        if not picked:
            continue
        latency = [(sent.answered[k] - sent.sent[k]) * 1000 for k in picked]
        lag = [(sent.sent[k] - sent.due[k]) * 1000 for k in picked]
        out.append(
            {
                "from_s": round(lo - first, 1),
                "sent_per_s": round(len(picked) / width, 1),
                "p50_ms": round(percentile(latency, 50), 2),
                "p99_ms": round(percentile(latency, 99), 2),
                "lag_p99_ms": round(percentile(lag, 99), 2),
                "non_2xx": sum(1 for k in picked if not 200 <= sent.status[k] < 300),
            }
        )
    return out


def _row(measure: str, *values: Any) -> Row:
    """A P7 row: run once, whatever ``--runs`` says."""
    return row("P7", measure, *values, runs=1)


def _report(
    seconds: float,
    rate: float,
    slots: int,
    knobs: dict[str, float],
    samples: list[dict[str, Any]],
    sent: Sent,
    pruned: dict[str, int],
    drained: dict[str, Any],
    restarted: list[int],
) -> list[Row]:
    first, last = sent.due[0], sent.due[-1]
    half = first + (last - first) / 2
    during = [s for s in samples if first <= s["t"] <= last + knobs["sample_every"]]
    settled = [s for s in during if s["t"] >= half]
    warm = settled[0]
    end = settled[-1]
    rss_slope = slope([(s["t"], s["rss_mb"]) for s in settled])
    size_slope = slope([(s["t"], _store_mb(s)) for s in settled])
    rows_slope = slope([(s["t"], _rows(s)) for s in settled])
    rows_level = statistics.fmean(_rows(s) for s in settled)
    kinds = {
        kind: {
            "slope_per_min": round(
                slope([(s["t"], s["rows"][kind]) for s in settled]), 1
            ),
            "mean": round(statistics.fmean(s["rows"][kind] for s in settled), 1),
        }
        for kind in TABLES
    }
    statuses = Counter(sent.status)
    total = len(sent.due)
    ok_2xx = sum(n for status, n in statuses.items() if 200 <= status < 300)
    achieved = (total - 1) / (sent.sent[-1] - sent.sent[0])
    lag = [(s - d) * 1000 for s, d in zip(sent.sent, sent.due, strict=True)]
    latency = [(a - s) * 1000 for a, s in zip(sent.answered, sent.sent, strict=True)]
    mid = total // 2
    note = f"1 run, {seconds:g} s"
    series = {
        "runs": 1,
        "seconds": seconds,
        "settings": {**knobs, "slots": slots, "rate": rate},
        "samples": [{**s, "t": round(s["t"] - first, 2)} for s in samples],
        "windows": _windows(sent, 20),
        "rows_by_kind_2nd_half": kinds,
        "rss_at_start_mb": during[0]["rss_mb"] if during else 0.0,
        "pruned": pruned,
        "drained": {**drained, "t": round(drained["t"] - first, 2)},
        "starts": {
            "count": len(sent.starts),
            "p50_ms": round(statistics.median(sent.starts) * 1000, 2),
            "failures": sent.start_failures,
            "callbacks_resent": sent.retried,
            "starved": sent.starved,
        },
    }
    check = {
        "id": "P7",
        "measure": f"P7 check: {ok_2xx}/{total} callbacks 2xx ({dict(statuses)}),"
        f" {sent.retried} resent on a fresh connection,"
        f" lag p99 {percentile(lag, 99):.1f} ms max {max(lag):.0f} ms,"
        f" {len(sent.starts)} jobs started, pruned {pruned},"
        f" outbox drained in {drained['seconds']:.1f} s"
        + (f", worker restarted as {restarted}" if restarted else ""),
        # Every callback answered, every kind pruned, nothing stuck.
        "ok": ok_2xx == total
        and all(pruned.values())
        and drained["pending"] == 0
        and not restarted,
    }
    return [
        _row(f"soak ({note}): callbacks/s sent vs the schedule",
             achieved, rate, "req/s", "ratio>=", 0.98) | series,
        _row("soak: worker RSS slope, 2nd half (baseline: MB then)",
             rss_slope, warm["rss_mb"], "MB/min", "value<=", 0.5),
        _row("soak: store size slope, 2nd half (baseline: MB then)",
             size_slope, _store_mb(warm), "MB/min", "ratio<=", 0.02),
        _row("soak: store size (db+WAL) at end vs after warm-up",
             _store_mb(end), _store_mb(warm), "MB", "ratio<=", 1.1),
        _row("soak: store rows slope, 2nd half (baseline: mean rows)",
             rows_slope, rows_level, "rows/min", "ratio<=", 0.02),
        _row("soak: callback p50, 2nd half vs 1st half",
             statistics.median(latency[mid:]), statistics.median(latency[:mid]),
             "ms", "shows", 0.0),
        _row("soak: callback p99, 2nd half vs 1st half",
             percentile(latency[mid:], 99), percentile(latency[:mid], 99),
             "ms", "shows", 0.0),
        check,
    ]  # fmt: skip
