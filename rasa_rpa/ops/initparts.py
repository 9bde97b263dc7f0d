"""The parts ``rasa-rpa init`` adds to a project, one function each.

Each function looks at the project as the plan will leave it (files planned
by an earlier part included), works out what is missing, and plans only that.
What the user already has is never changed: an entry of the same name stays
as written and is reported as kept.
"""

from __future__ import annotations

import itertools
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import yaml

from rasa_rpa.ops.domain_snippet import (
    DOMAIN_VERSION,
    domain_additions,
    load_domain_file,
    rules,
)
from rasa_rpa.ops.initfiles import read_text
from rasa_rpa.ops.yamledit import Additions, YamlEditError, add_entries, load

if TYPE_CHECKING:
    from rasa_rpa.config import RpaConfig
    from rasa_rpa.ops.init import Plan

__all__ = [
    "action_port",
    "add_actions",
    "add_domain",
    "add_endpoint",
    "add_nlu",
    "add_robots",
    "add_rules",
    "check_gitignore",
    "find_domain",
    "template",
]

TEMPLATES = Path(__file__).with_name("templates")
#: The comment above each group of entries init adds to a user's file.
NOTE = "rasa-rpa (added by `rasa-rpa init`)"
EMPTY = f'version: "{DOMAIN_VERSION}"\n'
#: Intents the plugin's own actions answer: they need NLU examples.
USER_INTENTS = ("job_status", "cancel_job")
ACTIONS_MODULE = "rasa_rpa_actions.py"
#: Where `rasa-rpa run` listens unless told otherwise.
ACTION_SERVER_PORT = 5055
_SECTIONS = ("intents", "entities", "slots", "forms", "responses", "actions")
_ONE = {"entities": "entity"}


def template(name: str) -> str:
    """A file shipped under rasa_rpa/ops/templates."""
    return (TEMPLATES / name).read_text(encoding="utf-8")


def _count(number: int, plural: str) -> str:
    one = _ONE.get(plural, plural.removesuffix("s"))
    return f"{number} {one if number == 1 else plural}"


def find_domain(root: Path) -> Path | None:
    """The project's domain: domain.yml (or .yaml), or a domain/ folder."""
    for name in ("domain.yml", "domain.yaml", "domain"):
        if (root / name).exists():
            return root / name
    return None


def _names(items: Any) -> set[str]:
    """The names in a domain section: a list of names or ``{name: ...}``, or a map."""
    if isinstance(items, dict):
        return {str(key) for key in items}
    found: set[str] = set()
    for item in items if isinstance(items, list) else []:
        if isinstance(item, dict):
            found.update(str(key) for key in item)
        else:
            found.add(str(item))
    return found


def _parse(plan: Plan, path: Path) -> Any:
    try:
        return yaml.safe_load(plan.read(path) or "")
    except yaml.YAMLError as exc:
        raise yaml.YAMLError(f"{plan.name(path)}: not valid YAML ({exc})") from None


def _added(plan: Plan, path: Path, text: str, additions: Additions) -> str:
    """``text`` of ``path`` with ``additions``; a mistake names the file."""
    try:
        return add_entries(text, additions, note=NOTE)
    except YamlEditError as exc:
        raise YamlEditError(f"{plan.name(path)}: {exc}") from None


def add_domain(plan: Plan, domain: Path) -> None:
    """The domain entries the plugin and rpa.yml's automations need."""
    if domain.is_dir():
        try:
            have = load_domain_file(domain, read=plan.read)
        except (ValueError, yaml.YAMLError) as exc:
            raise yaml.YAMLError(f"{plan.name(domain)}: {exc}") from None
        target = domain / "rasa_rpa.yml"  # a file of its own in the folder
    else:
        have, target = _parse(plan, domain) or {}, domain
    if not isinstance(have, dict):
        raise yaml.YAMLError(f"{plan.name(domain)}: the top level is not a mapping")
    wanted = domain_additions(plan.config)
    additions: dict[str, Any] = {}
    kept: list[str] = []
    for key in _SECTIONS:
        ours, theirs = wanted[key], have.get(key)
        if isinstance(ours, dict):
            current = theirs if isinstance(theirs, dict) else {}
            new: Any = {k: v for k, v in ours.items() if k not in current}
            kept += [k for k, v in ours.items() if k in current and current[k] != v]
        else:
            new = [name for name in ours if name not in _names(theirs)]
        if new:
            additions[key] = new
    text = plan.read(target)
    if text is None and not additions:
        return
    added = ", ".join(_count(len(new), key) for key, new in additions.items())
    new_text = _added(plan, target, text or EMPTY, additions)
    plan.put(target, new_text, added=f"added {added}" if added else "", kept=kept)


def _data_files(plan: Plan) -> list[Path]:
    """Rasa's training data files (data/), planned ones included."""
    folder = plan.root / "data"
    found = set(folder.glob("**/*.yml")) | set(folder.glob("**/*.yaml"))
    found |= {c.path for c in plan.changes if c.path.is_relative_to(folder)}
    return sorted(found)


def _data(plan: Plan, key: str) -> list[dict[str, Any]]:
    """Every item of ``key`` (nlu, rules) across the training data."""
    items: list[dict[str, Any]] = []
    for path in _data_files(plan):
        data = _parse(plan, path)
        if isinstance(data, dict) and isinstance(data.get(key), list):
            items += [item for item in data[key] if isinstance(item, dict)]
    return items


def add_nlu(plan: Plan) -> None:
    """English examples for status, cancel and the example automation's intent."""
    target = plan.root / "data" / "rpa_nlu.yml"
    examples = {item["intent"]: item for item in load(template("rpa_nlu.yml"))["nlu"]}
    have = {
        str(item.get("intent")) for item in _data(plan, "nlu") if item.get("examples")
    }
    wanted = list(USER_INTENTS)
    for name, automation in plan.config.automations.items():
        intent = automation.intent
        if intent and intent not in wanted:
            wanted.append(intent)
            if intent not in have and intent not in examples:
                plan.notes.append(
                    f"intent {intent} (rpa.yml automations.{name}) has no NLU "
                    f"examples yet: add some to {plan.name(target)}"
                )
    new = [examples[i] for i in wanted if i not in have and i in examples]
    text = plan.read(target)
    if text is None and not new:
        return
    intents = ", ".join(item["intent"] for item in new)
    added = f"added examples for {intents}" if new else ""
    plan.put(target, _added(plan, target, text or EMPTY, {"nlu": new}), added)


def add_rules(plan: Plan) -> None:
    """Start, status, cancel and news rules, unless a rule answers the intent."""
    target = plan.root / "data" / "rpa_rules.yml"
    answers: dict[str, str] = {}
    for rule in _data(plan, "rules"):
        steps = [step for step in rule.get("steps") or [] if isinstance(step, dict)]
        # The first user turn of the rule, and what the bot does after it.
        for step, following in itertools.pairwise(steps):
            if "intent" in step:
                if "action" in following:
                    answers.setdefault(str(step["intent"]), str(following["action"]))
                break
    named = {str(rule.get("rule")) for rule in _data(plan, "rules")}
    new: list[dict[str, Any]] = []
    kept: list[str] = []
    for rule in rules(plan.config)["rules"]:
        steps = rule["steps"]
        if "condition" in rule or len(steps) != 2 or "intent" not in steps[0]:
            # A rule of the question form: known by its name, not one answer.
            if rule["rule"] not in named:
                new.append(rule)
            continue
        intent, action = steps[0]["intent"], steps[1]["action"]
        if intent not in answers:
            new.append(rule)
        elif answers[intent] != action:
            kept.append(f"rule {intent} -> {answers[intent]}")
    text = plan.read(target)
    if text is None and not new:
        return
    added = f"added {_count(len(new), 'rules')}" if new else ""
    new_text = _added(plan, target, text or EMPTY, {"rules": new})
    plan.put(target, new_text, added, kept)


def add_robots(plan: Plan) -> None:
    """robots/example.robot, for an automation that runs it and finds it missing."""
    config = plan.config
    for automation in config.automations.values():
        provider = config.providers.get(automation.provider)
        if provider is None or provider.type != "local":
            continue
        if automation.task.removesuffix(".robot") != "example":
            continue
        folder = (provider.model_extra or {}).get("robots_dir") or "robots"
        path = config.resolve_path(str(folder)) / "example.robot"
        if not Path(os.path.normpath(path)).is_relative_to(plan.root):
            # rpa.yml's robots_dir says outside: allowed, shown resolved.
            path = path.resolve()
            plan.outside.add(path)
        current = plan.read(path)
        plan.put(path, template("example.robot") if current is None else current)


def action_port(config: RpaConfig) -> int:
    """The action server's port: callbacks.public_url's when that is local."""
    parts = urlsplit(config.callbacks.public_url)
    if parts.hostname in ("127.0.0.1", "localhost", "::1") and parts.port:
        return parts.port
    return ACTION_SERVER_PORT


def add_endpoint(plan: Plan) -> None:
    """Rasa's action_endpoint, if endpoints.yml has none; an existing one stays."""
    path = plan.root / "endpoints.yml"
    port = action_port(plan.config)
    text = plan.read(path)
    data = _parse(plan, path)
    current = data.get("action_endpoint") if isinstance(data, dict) else None
    if isinstance(current, dict) and current.get("url"):
        found = urlsplit(str(current["url"]))
        used = found.port or (443 if found.scheme == "https" else 80)
        if used != port:
            plan.notes.append(
                f"endpoints.yml: action_endpoint points at port {used}, but "
                f"rasa-rpa's action server is set up for {port}: start it with "
                f"`rasa-rpa run --port {used}` and set callbacks.public_url in "
                "rpa.yml to match, or change the url"
            )
        plan.put(path, text or "")
        return
    url = f"http://127.0.0.1:{port}/webhook"
    new = _added(plan, path, text or "", {"action_endpoint": {"url": url}})
    plan.put(path, new, added=f"added action_endpoint {url}")


def _imports_plugin(plan: Plan, path: Path) -> bool:
    """Whether the actions package (or module) already imports the plugin's actions."""
    files = [path] if path.is_file() else sorted(path.glob("**/*.py"))
    for file in files:
        text = read_text(file, plan.name(file)) or ""
        if "rasa_rpa.actions" in text or "from rasa_rpa import actions" in text:
            return True
    return False


def add_actions(plan: Plan) -> None:
    """The import that registers the plugin's actions in the actions package.

    rasa-sdk registers every Action subclass imported once the package is
    loaded; a stock bot's actions/actions.py holds only comments, so nothing
    would import rasa-rpa's three.
    """
    package, module = plan.root / "actions", plan.root / "actions.py"
    target = package / ACTIONS_MODULE
    if package.is_dir():
        current = plan.read(target)
        if current is not None:
            plan.put(target, current)  # from an earlier run: shown as unchanged
        elif not _imports_plugin(plan, package):
            plan.put(target, template("rasa_rpa_actions.py.txt"))
    elif module.is_file():
        if not _imports_plugin(plan, module):
            plan.notes.append(
                "actions.py: add `from rasa_rpa.actions import ActionCancelRpaJob, "
                "ActionRpaJobStatus, ActionStartRpaJob` so rasa-sdk registers "
                "rasa-rpa's actions"
            )
    else:
        plan.put(package / "__init__.py", '"""The bot\'s custom actions."""\n')
        plan.put(target, template("rasa_rpa_actions.py.txt"))


def check_gitignore(plan: Plan) -> None:
    """A note if git would pick up .rasa-rpa/ (the job store and the master key)."""
    path = plan.root / ".gitignore"
    text = plan.read(path)
    if text is None:
        return
    ignored = {line.strip().strip("/") for line in text.splitlines()}
    if not ignored & {".rasa-rpa", ".rasa-rpa/*", "*"}:
        plan.notes.append(
            ".gitignore: add .rasa-rpa/ (rasa-rpa's job store and its generated "
            "master key must not be committed)"
        )
