"""The ``rasa-rpa`` command.

``rasa-rpa run`` starts the rasa-sdk action server for your actions package
with the plugin attached, so no ``rasa_sdk_plugins`` shim is needed. The
operator commands (``doctor``, ``jobs``, ``send-event``, ``export``,
``domain``) work from the same rpa.yml, reading the job store directly, so
they answer even while the action server is down.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import sys
import time
from collections.abc import Awaitable, Callable
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from sanic import Sanic

    from rasa_rpa.export import ProgressBar
    from rasa_rpa.models import Job, OutboxMessage
    from rasa_rpa.security import JobKeys
    from rasa_rpa.stores import JobStore

from rasa_rpa.config import CONFIG_ENV, RpaConfig, load_config
from rasa_rpa.errors import ConfigError, JobNotFound, StoreError
from rasa_rpa.logs import configure_logging

__all__ = ["build_app", "check_providers", "job_keys", "main"]
T = TypeVar("T")


def build_app(
    actions_package: str, config_path: str, cors: str = "*"
) -> Sanic[Any, Any]:
    """The action server app with rasa-rpa attached (built in every worker)."""
    from rasa_sdk.endpoint import create_app
    from rasa_sdk.executor import ActionExecutor

    from rasa_rpa.plugin import attach

    configure_logging()  # each Sanic worker is a fresh process
    executor = ActionExecutor()
    executor.register_package(actions_package)
    app: Sanic[Any, Any] = create_app(executor, cors_origins=cors)
    attach(app, config_path)
    return app


def _run(args: argparse.Namespace) -> int:
    from sanic import Sanic
    from sanic.worker.loader import AppLoader

    config_path = str(Path(args.config).resolve())
    os.environ[CONFIG_ENV] = config_path  # the actions package may read it too
    # Fail here, in the terminal, not in a worker: the file and every provider.
    check_providers(load_config(config_path))
    sys.path.insert(0, os.getcwd())
    loader = AppLoader(factory=partial(build_app, args.actions, config_path))
    app = loader.load()
    app.prepare(
        host=args.host,
        port=args.port,
        workers=args.workers,
        access_log=False,
        motd=False,
    )
    print(f"rasa-rpa: action server on http://{args.host}:{args.port}", flush=True)
    Sanic.serve(primary=app, app_loader=loader)
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="rasa-rpa", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    def command(name: str, handler: Callable[..., int], help: str) -> Any:
        sub = commands.add_parser(name, help=help, description=help)
        sub.add_argument("--config", default=os.environ.get(CONFIG_ENV, "rpa.yml"))
        sub.set_defaults(handler=handler)
        return sub

    run = command("run", _run, "start the action server with rasa-rpa")
    run.add_argument("--actions", default="actions", help="actions package")
    run.add_argument("--host", default=os.environ.get("SANIC_HOST", "127.0.0.1"))
    run.add_argument("--port", type=int, default=5055)
    run.add_argument("--workers", type=int, default=1)
    command("check-config", _check, "validate rpa.yml and build its providers")
    token = command("token", _token, "print a job's callback token (manual tests)")
    token.add_argument("job_id")
    token.add_argument("conversation_id")
    token.add_argument("--ttl", type=float, default=3600.0, help="seconds")
    fake = command("fake", _fake, "serve a fake vendor API on 127.0.0.1")
    fake.add_argument("vendor", help="uipath, sap or automation_anywhere")
    fake.add_argument("--port", type=int, default=0)
    fake.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a constructor option of the fake, e.g. webhook_secret=s3cret",
    )
    doctor = command("doctor", _doctor, "check Rasa, the domain, callbacks, vendors")
    doctor.add_argument("--domain", help="domain.yml (or folder) instead of Rasa's")
    doctor.add_argument("--json", action="store_true", help="findings as JSON")
    doctor.add_argument("--progress", action="store_true", help="always draw bars")
    domain = commands.add_parser("domain", help="print what a bot's domain needs")
    domain.add_argument("--config", help="rpa.yml: adds its automations' intents")
    domain.add_argument("--part", choices=("all", "domain", "rules"), default="all")
    domain.set_defaults(handler=_domain)
    jobs = commands.add_parser("jobs", help="list, inspect and replay jobs")
    actions = jobs.add_subparsers(dest="jobs_command", required=True)
    for name, handler, help in (
        ("list", _jobs_list, "jobs, newest first"),
        ("show", _jobs_show, "a job, its event timeline and its outbox"),
        ("replay", _jobs_replay, "send dead outbox messages to Rasa again"),
    ):
        sub = actions.add_parser(name, help=help, description=help)
        sub.add_argument("--config", default=os.environ.get(CONFIG_ENV, "rpa.yml"))
        sub.add_argument("--json", action="store_true", help="print JSON")
        sub.set_defaults(handler=handler)
        if name == "list":
            sub.add_argument("--conversation", help="only this conversation's jobs")
            sub.add_argument("--limit", type=int, default=20)
        elif name == "show":
            sub.add_argument("job_id")
        else:
            sub.add_argument("seq", type=int, nargs="*", help="outbox seq numbers")
            sub.add_argument("--all-dead", action="store_true")
    send = command("send-event", _send_event, "report an event as the job's robot")
    send.add_argument("job_id")
    send.add_argument("type", help="job.started, job.progress, message, ...")
    send.add_argument("--data", default="{}", help="the event's data as JSON")
    send.add_argument("--conversation", help="default: the job's, from the store")
    send.add_argument("--url", help="action server base URL (callbacks.public_url)")
    send.add_argument("--id", help="event id (reuse it to test deduplication)")
    send.add_argument("--retry-for", type=float, default=0.0, help="seconds")
    export = command("export", _export, "one row per job, for reports")
    export.add_argument("--format", choices=("csv", "json"), default="csv")
    export.add_argument("--output", help="file to write (default: standard output)")
    export.add_argument("--since", help="jobs created at or after this ISO time")
    export.add_argument("--progress", action="store_true", help="always draw a bar")
    return parser


def _fake(args: argparse.Namespace) -> int:
    import importlib

    import yaml

    from rasa_rpa.fakes import FAKES

    target = FAKES.get(args.vendor)
    if target is None:
        print(
            f"rasa-rpa: no fake for {args.vendor!r}; choose one of: "
            f"{', '.join(sorted(FAKES))}",
            file=sys.stderr,
        )
        return 2
    options: dict[str, Any] = {}
    for item in args.set:
        key, sep, value = item.partition("=")
        if not sep:
            print(f"rasa-rpa: --set {item!r} must be KEY=VALUE", file=sys.stderr)
            return 2
        options[key] = yaml.safe_load(value)
    module, _, name = target.partition(":")
    fake = getattr(importlib.import_module(module), name)(port=args.port, **options)
    fake.start()
    print(f"fake {args.vendor} serving on {fake.url} (Ctrl-C stops)", flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        fake.stop()
    return 0


def job_keys(config: RpaConfig) -> JobKeys:
    """The per-job key maker the action server uses (same master key)."""
    from rasa_rpa.security import JobKeys, load_or_create_master_key

    secret = config.callbacks.secret
    master = load_or_create_master_key(
        secret.get_secret_value() if secret else None, config.state_dir
    )
    return JobKeys(master, token_ttl=config.callbacks.token_ttl)


def _token(args: argparse.Namespace) -> int:
    keys = job_keys(load_config(args.config))
    print(keys.mint_token(args.job_id, args.conversation_id, ttl=args.ttl))
    return 0


def check_providers(config: RpaConfig) -> None:
    """Build every provider once, so a mistake in its options is a ConfigError now."""
    from rasa_rpa.providers import provider_class

    async def ignore(event: Any) -> None:
        return None

    async def build() -> None:
        for name, settings in config.providers.items():
            cls = provider_class(settings.type)
            await cls(name, settings, config, ignore).aclose()

    # A private loop: asyncio.run would leave the main thread marked as having
    # had one, and the server started next expects a clean slate.
    loop = asyncio.new_event_loop()
    try:
        loop.run_until_complete(build())
    finally:
        loop.close()


def _check(args: argparse.Namespace) -> int:
    config = load_config(args.config)
    check_providers(config)
    print(
        f"{args.config}: OK ({len(config.automations)} automation(s), "
        f"providers: {', '.join(sorted(config.providers))})"
    )
    return 0


def _bar(args: argparse.Namespace, label: str) -> ProgressBar | None:
    """A progress bar on stderr for long work, if stderr is a terminal or asked.

    Piped or logged output gets no bar: carriage returns would litter it.
    """
    from rasa_rpa.export import ProgressBar

    if args.progress or sys.stderr.isatty():
        return ProgressBar(sys.stderr, label)
    return None


def _doctor(args: argparse.Namespace) -> int:
    from rasa_rpa.doctor import diagnose

    bar = _bar(args, "checking")
    try:
        report = asyncio.run(
            diagnose(args.config, args.domain, progress=bar.update if bar else None)
        )
    finally:
        if bar:
            bar.close()
    print(json.dumps(report.as_dict(), indent=2) if args.json else report.render())
    return report.exit_code


def _domain(args: argparse.Namespace) -> int:
    from rasa_rpa.domain_snippet import render

    # Without --config, rpa.yml is used if there is one: its intents belong in
    # the domain too. The generic part needs no config at all.
    path = args.config or os.environ.get(CONFIG_ENV) or "rpa.yml"
    config = load_config(path) if args.config or Path(path).is_file() else None
    print(render(config, args.part), end="")
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


def _jobs_list(args: argparse.Namespace) -> int:
    from rasa_rpa.export import jobs_table

    config = load_config(args.config)
    jobs = _with_store(
        config,
        lambda s: s.list_jobs(conversation_id=args.conversation, limit=args.limit),
    )
    if args.json:
        print(json.dumps({"jobs": [job.public() for job in jobs]}, indent=2))
    else:
        print(jobs_table(jobs) if jobs else "no jobs")
    return 0


async def _timeline(
    store: JobStore, job_id: str
) -> tuple[Job, list[dict[str, Any]], list[tuple[str, OutboxMessage]]]:
    """A job, its event log and its outbox (with each message's status), by seq."""
    job = await store.get_job(job_id)
    outbox = [
        (status, message)
        for status in ("pending", "delivered", "dead")
        for message in await store.list_outbox(status=status, job_id=job_id)
    ]
    outbox.sort(key=lambda item: item[1].seq or 0)
    return job, await store.job_events(job_id), outbox


def _jobs_show(args: argparse.Namespace) -> int:
    from rasa_rpa.admin_routes import outbox_row
    from rasa_rpa.export import job_details

    config = load_config(args.config)
    job, events, outbox = _with_store(config, lambda s: _timeline(s, args.job_id))
    if args.json:  # the admin API's shapes, so scripts can use either
        messages = [{"status": s, **outbox_row(m)} for s, m in outbox]
        body = {"job": job.public(), "events": events, "outbox": messages}
        print(json.dumps(body, indent=2, default=str))
    else:
        print(job_details(job, events, outbox))
    return 0


def _jobs_replay(args: argparse.Namespace) -> int:
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


def _send_event(args: argparse.Namespace) -> int:
    from rasa_rpa.robot.client import CallbackRefused, RobotClient

    try:
        data = json.loads(args.data)
    except ValueError as exc:
        data = exc
    if not isinstance(data, dict):
        print(f"rasa-rpa: --data must be a JSON object ({data})", file=sys.stderr)
        return 2
    config = load_config(args.config)
    conversation = args.conversation
    if conversation is None:
        job = _with_store(config, lambda s: s.get_job(args.job_id))
        conversation = job.conversation_id
    token = job_keys(config).mint_token(args.job_id, conversation, ttl=600)
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


def _export(args: argparse.Namespace) -> int:
    from rasa_rpa.export import export_row, parse_since, to_csv, to_json

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


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``rasa-rpa`` command."""
    args = _parser().parse_args(argv)
    configure_logging()
    if args.handler is not _run:
        # httpx logs every request URL at INFO, and Rasa's token travels in the
        # query: an operator's terminal gets findings, not request logs.
        logging.getLogger("httpx").setLevel(logging.WARNING)
    try:
        code: int = args.handler(args)
    except ConfigError as exc:
        print(f"rasa-rpa: configuration error: {exc}", file=sys.stderr)
        return 2
    except (StoreError, JobNotFound) as exc:
        print(f"rasa-rpa: {exc}", file=sys.stderr)
        return 1
    except BrokenPipeError:
        # `rasa-rpa export | head` stopped reading: quiet exit, no traceback
        # (and none at interpreter exit, when stdout is flushed again).
        with contextlib.suppress(OSError, ValueError):
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    return code


if __name__ == "__main__":
    raise SystemExit(main())
