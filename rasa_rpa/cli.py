"""The ``rasa-rpa`` command.

``rasa-rpa run`` starts the rasa-sdk action server for your actions package
with the plugin attached, so no ``rasa_sdk_plugins`` shim is needed.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sanic import Sanic

from rasa_rpa.config import CONFIG_ENV, load_config
from rasa_rpa.errors import ConfigError

__all__ = ["build_app", "main"]


def build_app(
    actions_package: str, config_path: str, cors: str = "*"
) -> Sanic[Any, Any]:
    """The action server app with rasa-rpa attached (built in every worker)."""
    from rasa_sdk.endpoint import create_app
    from rasa_sdk.executor import ActionExecutor

    from rasa_rpa.plugin import attach

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
    load_config(config_path)  # fail here, in the terminal, not in a worker
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
    run = commands.add_parser("run", help="start the action server with rasa-rpa")
    run.add_argument("--actions", default="actions", help="actions package")
    run.add_argument("--config", default=os.environ.get(CONFIG_ENV, "rpa.yml"))
    run.add_argument("--host", default=os.environ.get("SANIC_HOST", "127.0.0.1"))
    run.add_argument("--port", type=int, default=5055)
    run.add_argument("--workers", type=int, default=1)
    run.set_defaults(handler=_run)
    check = commands.add_parser("check-config", help="validate rpa.yml")
    check.add_argument("--config", default=os.environ.get(CONFIG_ENV, "rpa.yml"))
    check.set_defaults(handler=_check)
    token = commands.add_parser(
        "token", help="print a callback credential for a job (manual tests)"
    )
    token.add_argument("job_id")
    token.add_argument("conversation_id")
    token.add_argument("--config", default=os.environ.get(CONFIG_ENV, "rpa.yml"))
    token.add_argument("--ttl", type=float, default=3600.0, help="seconds")
    token.set_defaults(handler=_token)
    fake = commands.add_parser(
        "fake", help="serve a fake vendor API on 127.0.0.1 for development"
    )
    fake.add_argument("vendor", help="uipath, sap or automation_anywhere")
    fake.add_argument("--port", type=int, default=0)
    fake.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a constructor option of the fake, e.g. webhook_secret=s3cret",
    )
    fake.set_defaults(handler=_fake)
    return parser


def _fake(args: argparse.Namespace) -> int:
    import importlib
    import time

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


def _token(args: argparse.Namespace) -> int:
    from rasa_rpa.security import JobKeys, load_or_create_master_key

    config = load_config(args.config)
    secret = config.callbacks.secret
    master = load_or_create_master_key(
        secret.get_secret_value() if secret else None, config.state_dir
    )
    keys = JobKeys(master)
    print(keys.mint_token(args.job_id, args.conversation_id, ttl=args.ttl))
    return 0


def _check(args: argparse.Namespace) -> int:
    config = load_config(args.config)
    print(
        f"{args.config}: OK ({len(config.automations)} automation(s), "
        f"providers: {', '.join(sorted(config.providers))})"
    )
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``rasa-rpa`` command."""
    args = _parser().parse_args(argv)
    logging.basicConfig(
        level=os.environ.get("RASA_RPA_LOG_LEVEL", "INFO"),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        code: int = args.handler(args)
    except ConfigError as exc:
        print(f"rasa-rpa: configuration error: {exc}", file=sys.stderr)
        return 2
    return code


if __name__ == "__main__":
    raise SystemExit(main())
