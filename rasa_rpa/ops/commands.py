"""The operator commands of ``rasa-rpa``: doctor, domain, jobs, send-event, export.

They work from rpa.yml and read the job store directly, so they answer even
while the action server is down. :mod:`rasa_rpa.cli` wires them to the
command line.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from rasa_rpa.models import Job, OutboxMessage
    from rasa_rpa.ops.tables import ProgressBar
    from rasa_rpa.stores import JobStore

from rasa_rpa import strictjson
from rasa_rpa.config import RpaConfig, find_config_path, load_config
from rasa_rpa.errors import InvalidPayload, StoreError
from rasa_rpa.security import keys_for

__all__ = [
    "doctor_command",
    "domain_command",
    "export_command",
    "init_command",
    "jobs_discard_command",
    "jobs_list_command",
    "jobs_replay_command",
    "jobs_show_command",
    "send_event_command",
]
T = TypeVar("T")


def _bar(args: argparse.Namespace, label: str) -> ProgressBar | None:
    """A progress bar on stderr for long work, if stderr is a terminal or asked.

    Piped or logged output gets no bar: carriage returns would litter it.
    """
    from rasa_rpa.ops.tables import ProgressBar

    if args.progress or sys.stderr.isatty():
        return ProgressBar(sys.stderr, label)
    return None


def doctor_command(args: argparse.Namespace) -> int:
    from rasa_rpa.ops.doctor import diagnose

    bar = _bar(args, "checking")
    try:
        report = asyncio.run(
            diagnose(
                args.config,
                args.domain,
                progress=bar.update if bar else None,
                server=args.server,
            )
        )
    finally:
        if bar:
            bar.close()
    print(json.dumps(report.as_dict(), indent=2) if args.json else report.render())
    return report.exit_code


def domain_command(args: argparse.Namespace) -> int:
    from rasa_rpa.ops.domain_snippet import render

    # Without --config, rpa.yml is used if there is one: its intents belong in
    # the domain too. The generic part needs no config at all.
    path = find_config_path(args.config)
    config = load_config(path) if args.config or path.is_file() else None
    print(render(config, args.part), end="")
    return 0


def init_command(args: argparse.Namespace) -> int:
    from rasa_rpa.ops.init import InitError, next_steps, plan

    try:
        result = plan(Path(args.path), Path(args.config) if args.config else None)
        if not args.dry_run:
            result.write()
    except InitError as exc:
        print(f"rasa-rpa init: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:  # a folder init cannot list, say: no traceback
        where = f": {exc.filename}" if exc.filename else ""
        print(f"rasa-rpa init: {exc.strerror or exc}{where}", file=sys.stderr)
        return 2
    if args.dry_run:
        print(result.diff(), end="")
        print(f"rasa-rpa init --dry-run: {result.root} (nothing written)")
    else:
        print(f"rasa-rpa init: {result.root}")
    print(result.summary())
    print()
    print(next_steps(result, written=not args.dry_run))
    return 0


def _with_store(config: RpaConfig, work: Callable[[JobStore], Awaitable[T]]) -> T:
    """Run ``work`` against the configured store, opened for this command only."""
    from rasa_rpa.stores import open_store

    async def run() -> T:
        store = open_store(config.store.url, config.base_dir, source=config.source)
        path = getattr(store, "path", None)
        if isinstance(path, Path) and not path.exists():
            # Opening would create an empty store: say where we looked instead.
            raise StoreError(
                f"no job store at {path}: run from the bot's folder or pass "
                "--config with its rpa.yml"
            )
        await store.open()
        try:
            return await work(store)
        finally:
            await store.close()

    return asyncio.run(run())


def jobs_list_command(args: argparse.Namespace) -> int:
    from rasa_rpa.ops.tables import jobs_table

    config = load_config(args.config)
    jobs = _with_store(
        config,
        lambda s: s.list_jobs(conversation_id=args.conversation, limit=args.limit),
    )
    if args.json:
        print(strictjson.dumps({"jobs": [job.public() for job in jobs]}, indent=2))
    else:
        print(jobs_table(jobs) if jobs else "no jobs")
    return 0


async def _timeline(
    store: JobStore, wanted: str
) -> tuple[Job, list[dict[str, Any]], list[tuple[str, OutboxMessage]]]:
    """A job, its event log and its outbox (with each message's status), by seq."""
    from rasa_rpa.stores import find_job

    job = await find_job(store, wanted)
    job_id = job.id
    outbox = [
        (status, message)
        for status in ("pending", "delivered", "dead", "discarded")
        for message in await store.list_outbox(status=status, job_id=job_id)
    ]
    outbox.sort(key=lambda item: item[1].seq or 0)
    return job, await store.job_events(job_id), outbox


def jobs_show_command(args: argparse.Namespace) -> int:
    from rasa_rpa.ops.tables import job_details

    config = load_config(args.config)
    job, events, outbox = _with_store(config, lambda s: _timeline(s, args.job_id))
    if args.json:  # the admin API's shapes, so scripts can use either
        messages = [{"status": s, **m.public()} for s, m in outbox]
        body = {"job": job.public(), "events": events, "outbox": messages}
        print(strictjson.dumps(body, indent=2, default=str))
    else:
        print(job_details(job, events, outbox))
    return 0


def jobs_replay_command(args: argparse.Namespace) -> int:
    if not args.seq and not args.all_dead:
        print("rasa-rpa: name outbox seq numbers or pass --all-dead", file=sys.stderr)
        return 2

    async def replay(store: JobStore) -> dict[int, bool]:
        seqs = list(args.seq)
        if args.all_dead:
            dead = await store.list_outbox(status="dead", limit=1_000_000)
            seqs += [m.seq for m in reversed(dead) if m.seq is not None]
        return {seq: await store.replay(seq, time.time()) for seq in seqs}

    config = load_config(args.config)
    done = _with_store(config, replay)
    replayed = [seq for seq, ok in done.items() if ok]
    if args.json:
        missing = [seq for seq, ok in done.items() if not ok]
        print(json.dumps({"replayed": replayed, "not_found": missing}))
    else:
        for seq, ok in done.items():
            print(f"seq {seq}: " + ("queued again" if ok else "not dead or delivered"))
        print(
            f"{len(replayed)} message(s) queued; the running action server "
            f"sends them within {config.delivery.poll_interval:g}s"
        )
    return 0 if all(done.values()) else 1


def jobs_discard_command(args: argparse.Namespace) -> int:
    """Set dead messages aside for good, once the operator has confirmed it.

    They stay in the store (``jobs show`` lists them as discarded) but no
    longer count as dead and are never replayed. Asking first, because
    nothing brings them back: a script says --yes, and a script that does
    not is refused rather than left waiting for an answer it cannot give.
    """
    if not args.seq and not args.all_dead:
        print("rasa-rpa: name outbox seq numbers or pass --all-dead", file=sys.stderr)
        return 2
    config = load_config(args.config)

    async def dead_seqs(store: JobStore) -> list[int]:
        dead = await store.list_outbox(status="dead", limit=1_000_000)
        return [m.seq for m in reversed(dead) if m.seq is not None]

    dead = _with_store(config, dead_seqs)
    wanted = dead if args.all_dead else list(dict.fromkeys(args.seq))
    known = set(dead)  # once: a set per element made this quadratic
    chosen = [seq for seq in wanted if seq in known]
    missing = [seq for seq in wanted if seq not in known]
    if chosen and not args.yes and not _confirmed(len(chosen)):
        return 2 if not sys.stdin.isatty() else 1

    async def discard(store: JobStore) -> dict[int, bool]:
        return {seq: await store.discard(seq, time.time()) for seq in chosen}

    done = _with_store(config, discard) if chosen else {}
    discarded = [seq for seq, ok in done.items() if ok]
    missing += [seq for seq, ok in done.items() if not ok]  # replayed meanwhile
    if args.json:
        print(json.dumps({"discarded": discarded, "not_found": missing}))
    else:
        for seq in wanted:
            print(f"seq {seq}: " + ("discarded" if seq in discarded else "not dead"))
        print(
            f"{len(discarded)} message(s) discarded: never delivered, still listed "
            "by `rasa-rpa jobs show <job>`"
        )
    return 1 if missing else 0


def _confirmed(count: int) -> bool:
    """Ask on the terminal; refuse outright when there is no one to ask."""
    noun = "message" if count == 1 else "messages"
    if not sys.stdin.isatty():
        print(
            f"rasa-rpa: not discarding {count} dead {noun} without a confirmation, "
            "and standard input is not a terminal: pass --yes to discard them",
            file=sys.stderr,
        )
        return False
    sys.stderr.write(
        f"Discard {count} dead {noun} to Rasa? They will never be delivered. [y/N] "
    )
    sys.stderr.flush()
    if sys.stdin.readline().strip().lower() in ("y", "yes"):
        return True
    print("rasa-rpa: nothing discarded", file=sys.stderr)
    return False


def send_event_command(args: argparse.Namespace) -> int:
    from rasa_rpa_robot.client import CallbackRefused, RobotClient

    try:
        data = strictjson.loads(args.data)  # the server refuses NaN: say so here
    except (ValueError, InvalidPayload) as exc:
        data = exc
    if not isinstance(data, dict):
        print(f"rasa-rpa: --data must be a JSON object ({data})", file=sys.stderr)
        return 2
    config = load_config(args.config)
    conversation = args.conversation
    if conversation is None:
        job = _with_store(config, lambda s: s.get_job(args.job_id))
        conversation = job.conversation_id
    token = keys_for(config).mint_token(args.job_id, conversation, ttl=600)
    base = (args.url or config.callbacks.public_url).rstrip("/")
    url = f"{base}/rpa/v1/jobs/{args.job_id}/events"
    client = RobotClient(url, token=token, retry_for=args.retry_for)
    try:
        answer = client.send(args.type, data, event_id=args.id)
    except CallbackRefused as exc:
        print(
            f"rasa-rpa: {url} refused the event (HTTP {exc.status}):", file=sys.stderr
        )
        print(exc.body, file=sys.stderr)
        return 1
    except ConnectionError as exc:
        print(f"rasa-rpa: {exc}: is the action server running?", file=sys.stderr)
        return 1
    finally:
        client.close()
    print(json.dumps(answer))
    return 0


def export_command(args: argparse.Namespace) -> int:
    from rasa_rpa.ops.export import export_row, parse_since, to_csv, to_json

    try:
        since = parse_since(args.since) if args.since else None
    except ValueError as exc:
        print(f"rasa-rpa: {exc}", file=sys.stderr)
        return 2
    bar = _bar(args, "exporting")

    async def rows(store: JobStore) -> list[dict[str, Any]]:
        jobs = await store.list_jobs(limit=10_000_000)
        jobs = [j for j in jobs if since is None or j.created_at >= since]
        jobs.sort(key=lambda j: j.created_at)
        found = []
        for done, job in enumerate(jobs, start=1):
            found.append(export_row(job, len(await store.job_events(job.id))))
            if bar:
                bar.update(done, len(jobs), job.id[:8])
        return found

    try:
        exported = _with_store(load_config(args.config), rows)
    finally:
        if bar:
            bar.close()
    write = to_csv if args.format == "csv" else to_json
    if args.output:
        with open(args.output, "w", encoding="utf-8", newline="") as out:
            write(exported, out)
        print(
            f"rasa-rpa: {len(exported)} job(s) written to {args.output}",
            file=sys.stderr,
        )
    else:
        write(exported, sys.stdout)
    return 0
