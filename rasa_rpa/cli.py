"""The ``rasa-rpa`` command.

``rasa-rpa run`` starts the rasa-sdk action server for your actions package
with the plugin attached, so no ``rasa_sdk_plugins`` shim is needed. The
operator commands (``doctor``, ``jobs``, ``send-event``, ``export``,
``domain``) work from the same rpa.yml, reading the job store directly, so
they answer even while the action server is down. ``rasa-rpa init`` adds
the plugin to a bot's own files (see rasa_rpa.ops.init).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import sys
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from sanic import Sanic

    from rasa_rpa.security import JobKeys

from rasa_rpa.config import (
    CONFIG_ENV,
    DEFAULT_CONFIG,
    PUBLIC_URL_ENV,
    RpaConfig,
    load_config,
)
from rasa_rpa.errors import ConfigError, JobNotFound, StoreError
from rasa_rpa.logs import configure_logging
from rasa_rpa.ops.commands import (
    doctor_command,
    domain_command,
    export_command,
    init_command,
    jobs_discard_command,
    jobs_list_command,
    jobs_replay_command,
    jobs_show_command,
    send_event_command,
)
from rasa_rpa.security import keys_for

__all__ = ["build_app", "check_providers", "job_keys", "main", "serve"]
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
    serve(partial(build_app, args.actions), args)
    return 0


def serve(factory: Callable[[str], Sanic[Any, Any]], args: argparse.Namespace) -> None:
    """Serve ``factory(config_path)`` with Sanic's worker manager, as ``run`` does.

    ``factory`` is called in every worker, so it must be importable (a
    module-level function, or a partial of one).
    """
    from sanic import Sanic
    from sanic.worker.loader import AppLoader

    from rasa_rpa.listening import (
        connect_url,
        port_taken,
        public_url_for,
        server_recorded,
    )

    config_path = str(Path(args.config).resolve())
    os.environ[CONFIG_ENV] = config_path  # the actions package may read it too
    # Fail here, in the terminal, not in a worker: the file and every provider.
    config = load_config(config_path)
    check_providers(config)
    taken = port_taken(args.host, args.port)
    if taken:
        print(
            f"rasa-rpa: {taken}. Stop what uses it, or pass --port.",
            file=sys.stderr,
            flush=True,
        )
        raise SystemExit(1)
    public_url, notes = public_url_for(config, args.host, args.port)
    if public_url is not None:  # rpa.yml names none: the workers use ours
        os.environ[PUBLIC_URL_ENV] = public_url
    sys.path.insert(0, os.getcwd())
    loader = AppLoader(factory=partial(factory, config_path))
    app = loader.load()
    app.prepare(
        host=args.host,
        port=args.port,
        workers=args.workers,
        access_log=False,
        motd=False,
    )
    print(f"rasa-rpa: action server on http://{args.host}:{args.port}", flush=True)
    for note in notes:
        print(f"rasa-rpa: {note}", file=sys.stderr, flush=True)
    own = connect_url(args.host, args.port)
    with server_recorded(config, own, public_url or config.callbacks.public_url):
        Sanic.serve(primary=app, app_loader=loader)


def _bounded(low: int, high: int, what: str) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = low - 1
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(
                f"{text!r} is not {what} ({low}-{high})"
            )
        return value

    return parse


#: 0 would leave robots told to call back to port 0: a port is given.
_port = _bounded(1, 65535, "a TCP port")
_workers = _bounded(1, 64, "a number of worker processes")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="rasa-rpa",
        description="Start RPA jobs from a Rasa conversation. `rasa-rpa run` serves "
        "the action server with the plugin; the other commands set up a bot and "
        "operate the plugin from the same rpa.yml.",
    )
    commands = parser.add_subparsers(dest="command", required=True)

    def command(name: str, handler: Callable[..., int], help: str) -> Any:
        sub = commands.add_parser(name, help=help, description=help)
        sub.add_argument(
            "--config",
            default=os.environ.get(CONFIG_ENV, DEFAULT_CONFIG),
            help=f"rpa.yml to read (default: ${CONFIG_ENV}, else ./rpa.yml)",
        )
        sub.set_defaults(handler=handler)
        return sub

    run = command("run", _run, "start the action server with rasa-rpa")
    run.add_argument("--actions", default="actions", help="actions package")
    run.add_argument(
        "--host",
        default=os.environ.get("SANIC_HOST", "127.0.0.1"),
        help="interface to listen on (0.0.0.0 in a container; default $SANIC_HOST "
        "or 127.0.0.1)",
    )
    run.add_argument(
        "--port",
        type=_port,
        default=5055,
        help="port (robots call back here unless rpa.yml sets callbacks.public_url)",
    )
    run.add_argument(
        "--workers", type=_workers, default=1, help="Sanic worker processes (1-64)"
    )
    command("check-config", _check, "validate rpa.yml and build its providers")
    token = command("token", _token, "print a job's callback token (manual tests)")
    token.add_argument("job_id")
    token.add_argument("conversation_id")
    token.add_argument("--ttl", type=float, default=3600.0, help="seconds")
    fake = command("fake", _fake, "serve a fake vendor API on 127.0.0.1")
    fake.add_argument(
        "vendor",
        help="uipath, sap, automation_anywhere, robocorp or power-automate",
    )
    fake.add_argument("--port", type=int, default=0)
    fake.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a constructor option of the fake, e.g. webhook_secret=s3cret",
    )
    doctor = command(
        "doctor", doctor_command, "check Rasa, the domain, callbacks, vendors"
    )
    doctor.add_argument("--domain", help="domain.yml (or folder) instead of Rasa's")
    doctor.add_argument("--json", action="store_true", help="findings as JSON")
    doctor.add_argument("--progress", action="store_true", help="always draw bars")
    doctor.add_argument("--server", help="the running action server's base URL")
    init = commands.add_parser(
        "init",
        help="add rasa-rpa to a Rasa project, or create a starter bot",
        description="Add what rasa-rpa needs to the Rasa project in PATH (or a "
        "starter bot, if PATH is empty). It only adds: your own content stays.",
    )
    init.add_argument("path", nargs="?", default=".", metavar="PATH")
    init.add_argument("--dry-run", action="store_true", help="diff, write nothing")
    init.add_argument(
        "--config", metavar="FILE", help="rpa.yml to read or create (PATH/rpa.yml)"
    )
    init.set_defaults(handler=init_command)
    domain = commands.add_parser("domain", help="print what a bot's domain needs")
    domain.add_argument("--config", help="rpa.yml: adds its automations' intents")
    domain.add_argument("--part", choices=("all", "domain", "rules"), default="all")
    domain.set_defaults(handler=domain_command)
    jobs = commands.add_parser("jobs", help="list, inspect and replay jobs")
    actions = jobs.add_subparsers(dest="jobs_command", required=True)
    for name, handler, help in (
        ("list", jobs_list_command, "jobs, newest first"),
        ("show", jobs_show_command, "a job, its event timeline and its outbox"),
        ("replay", jobs_replay_command, "send dead outbox messages to Rasa again"),
        ("discard", jobs_discard_command, "set dead outbox messages aside for good"),
    ):
        sub = actions.add_parser(name, help=help, description=help)
        sub.add_argument(
            "--config",
            default=os.environ.get(CONFIG_ENV, DEFAULT_CONFIG),
            help=f"rpa.yml to read (default: ${CONFIG_ENV}, else ./rpa.yml)",
        )
        sub.add_argument("--json", action="store_true", help="print JSON")
        sub.set_defaults(handler=handler)
        if name == "list":
            sub.add_argument("--conversation", help="only this conversation's jobs")
            sub.add_argument("--limit", type=int, default=20)
        elif name == "show":
            sub.add_argument(
                "job_id", help="its id, or the reference users see (7K3-Q9X)"
            )
        else:
            sub.add_argument("seq", type=int, nargs="*", help="outbox seq numbers")
            sub.add_argument("--all-dead", action="store_true")
        if name == "discard":
            sub.add_argument("--yes", action="store_true", help="do not ask first")
    send = command(
        "send-event", send_event_command, "report an event as the job's robot"
    )
    send.add_argument("job_id")
    send.add_argument("type", help="job.started, job.progress, message, ...")
    send.add_argument("--data", default="{}", help="the event's data as JSON")
    send.add_argument("--conversation", help="default: the job's, from the store")
    send.add_argument("--url", help="action server base URL (callbacks.public_url)")
    send.add_argument("--id", help="event id (reuse it to test deduplication)")
    send.add_argument("--retry-for", type=float, default=0.0, help="seconds")
    export = command("export", export_command, "one row per job, for reports")
    export.add_argument("--format", choices=("csv", "json"), default="csv")
    export.add_argument("--output", help="file to write (default: standard output)")
    export.add_argument("--since", help="jobs created at or after this ISO time")
    export.add_argument("--progress", action="store_true", help="always draw a bar")
    return parser


def _fake(args: argparse.Namespace) -> int:
    import importlib

    import yaml

    from rasa_rpa.fakes import FAKES, fake_target

    target = fake_target(args.vendor)
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
    return keys_for(config)


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
            cls = provider_class(settings.type, source=config.source)
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
