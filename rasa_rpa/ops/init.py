"""``rasa-rpa init``: add rasa-rpa to a Rasa project, or create a starter bot.

In a Rasa project (a domain.yml or a domain/ folder) it adds what the plugin
needs, from :mod:`rasa_rpa.ops.domain_snippet` so there is one list of it:
the domain's intents, entities, slots, responses and actions; NLU examples
and rules in files of their own (data/rpa_nlu.yml, data/rpa_rules.yml); an
rpa.yml with an example automation and its robot; Rasa's action_endpoint;
and the import that registers the plugin's actions in the actions package.
In an empty folder it first writes a small starter bot.

It only adds. What the user has stays as written, comments included (see
:mod:`rasa_rpa.ops.yamledit`), and what is already there is not added again,
so a second run changes nothing. The whole change is planned in memory first:
``--dry-run`` prints it as a diff, a real run writes it.

The folder is not trusted (see :mod:`rasa_rpa.ops.initfiles`): files are read
only if regular, small and free of YAML alias bombs, and a plan that would
write through a link out of the project, into a directory or below a file is
refused whole, in one line, before anything is written.
"""

from __future__ import annotations

import difflib
import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from rasa_rpa.config import RpaConfig, config_from_dict, load_config
from rasa_rpa.ops import initparts
from rasa_rpa.ops.initfiles import InitError, check_targets, read_text
from rasa_rpa.ops.yamledit import YamlEditError

__all__ = ["FileChange", "InitError", "Plan", "plan"]

#: The starter bot: file in the project -> template under templates/starter.
STARTER = {
    "config.yml": "config.yml",
    "domain.yml": "domain.yml",
    "data/nlu.yml": "nlu.yml",
    "data/rules.yml": "rules.yml",
    "credentials.yml": "credentials.yml",
    "endpoints.yml": "endpoints.yml",
    ".gitignore": "gitignore",
}
#: What may be in a folder that still counts as empty (a re-run included).
_EMPTY_ENOUGH = {"rpa.yml", "robots"}


@dataclass
class FileChange:
    """One file init creates or adds to, before and after."""

    path: Path
    before: str | None
    after: str
    #: What was added, e.g. "added 8 intents, 3 actions".
    added: str = ""
    #: The user's own entries that stay as they are, though rasa-rpa has its own.
    kept: list[str] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return self.before != self.after

    def summary(self) -> str:
        if self.before is None:
            status = "created"
        elif self.changed:
            status = self.added or "changed"
        else:
            status = "unchanged"
        return f"{status}; kept yours: {', '.join(self.kept)}" if self.kept else status


@dataclass
class Plan:
    """Everything one run of init would do, computed before anything is written."""

    root: Path
    config: RpaConfig
    scaffold: bool = False
    config_path: Path = Path("rpa.yml")
    changes: list[FileChange] = field(default_factory=list)
    #: Things the user should know or do (an action_endpoint elsewhere, ...).
    notes: list[str] = field(default_factory=list)
    #: The Rasa token written into a new rpa.yml, for the next steps.
    new_token: str | None = None
    #: Files that may be written outside ``root``: rpa.yml or --config say so.
    outside: set[Path] = field(default_factory=set)

    def read(self, path: Path) -> str | None:
        """``path`` as it will be: planned content, else the file, else None.

        Raises:
            InitError: the file is no regular file, too big, or an alias bomb.
        """
        for change in self.changes:
            if change.path == path:
                return change.after
        return read_text(path, self.name(path))

    def put(
        self, path: Path, text: str, added: str = "", kept: list[str] | None = None
    ) -> None:
        """Plan ``path`` to hold ``text`` (a second put replaces the first)."""
        for change in self.changes:
            if change.path == path:
                change.after, change.added = text, added or change.added
                change.kept += kept or []
                return
        before = read_text(path, self.name(path))
        self.changes.append(FileChange(path, before, text, added, list(kept or [])))

    def name(self, path: Path) -> str:
        """``path`` as shown to the user: relative to the project if inside it."""
        try:
            return path.relative_to(self.root).as_posix()
        except ValueError:
            return str(path)

    @property
    def changed(self) -> list[FileChange]:
        return [change for change in self.changes if change.changed]

    def diff(self) -> str:
        """The planned change as a unified diff (new files against /dev/null)."""
        out: list[str] = []
        for change in self.changed:
            name = self.name(change.path)
            before = (change.before or "").splitlines(keepends=True)
            out += difflib.unified_diff(
                before,
                change.after.splitlines(keepends=True),
                "/dev/null" if change.before is None else f"a/{name}",
                f"b/{name}",
            )
        text = "".join(line if line.endswith("\n") else line + "\n" for line in out)
        if self.new_token:
            # A dry run's token is never written: the real run draws another.
            text = text.replace(self.new_token, "<generated when written>")
        return text

    def summary(self) -> str:
        """One line per file: created, what was added, or unchanged."""
        width = max((len(self.name(c.path)) for c in self.changes), default=0)
        lines = [f"  {self.name(c.path):<{width}}  {c.summary()}" for c in self.changes]
        if not self.changed:
            lines.append(
                "Nothing to change: the project has everything rasa-rpa needs."
            )
        return "\n".join(lines)

    def check(self) -> None:
        """Refuse the run if any planned write cannot or must not happen.

        Called before the first write, so a hostile or broken folder (a link
        out of the project, a file where a folder belongs) changes nothing.
        """
        paths = [change.path for change in self.changed]
        check_targets(self.root, paths, self.outside, self.name)

    def write(self) -> None:
        """Write every changed file (folders as needed), once all are checked.

        Raises:
            InitError: a write failed all the same (a full disk, a race); the
                message names the file and what was written before it.
        """
        self.check()
        done: list[str] = []
        for change in self.changed:
            try:
                change.path.parent.mkdir(parents=True, exist_ok=True)
                change.path.write_text(change.after, encoding="utf-8")
            except OSError as exc:
                written = ", ".join(done) or "nothing"
                raise InitError(
                    f"{self.name(change.path)}: could not write it "
                    f"({exc.strerror}); written before it: {written}"
                ) from None
            done.append(self.name(change.path))


def plan(root: Path, config_path: Path | None = None) -> Plan:
    """What init would change in ``root``; nothing is written.

    Raises:
        InitError: ``root`` is neither a Rasa project nor an empty folder.
        ConfigError: an existing rpa.yml is wrong (named by file and key).
    """
    root = root.resolve()
    if root.exists() and not root.is_dir():
        raise InitError(f"{root} is a file, not a folder")
    domain = initparts.find_domain(root)
    scaffold = domain is None
    if scaffold and root.is_dir():
        others = sorted(
            p.name
            for p in root.iterdir()
            if not p.name.startswith(".") and p.name not in _EMPTY_ENOUGH
        )
        if others:
            raise InitError(
                f"{root} has no domain.yml or domain/ folder, so it is not a Rasa "
                f"project, and it is not empty ({', '.join(others[:5])}). Run "
                "`rasa-rpa init` in your bot's folder, or in an empty folder for "
                "a starter bot."
            )
    given = config_path is not None
    path = (config_path or root / "rpa.yml").resolve()
    if not given and not path.is_relative_to(root):
        # rpa.yml is a link out of the project: read it, never write it.
        path = root / "rpa.yml"
    shown = str(path) if given else "rpa.yml"
    text_or_none = read_text(path, shown)
    if text_or_none is not None:
        result = Plan(root, load_config(path), scaffold=scaffold, config_path=path)
        text = text_or_none
    else:
        token = secrets.token_hex(20)
        text = initparts.template("rpa.yml").replace("@TOKEN@", token)
        config = config_from_dict(
            yaml.safe_load(text), source=str(path), base_dir=path.parent
        )
        result = Plan(root, config, scaffold, path, new_token=token)
    if given:
        result.outside.add(path)  # --config names it: wherever it is
    if scaffold:
        for name, source in STARTER.items():
            if not os.path.lexists(root / name):
                result.put(root / name, initparts.template(f"starter/{source}"))
    result.put(path, text)
    try:
        initparts.add_robots(result)
        initparts.add_domain(result, initparts.find_domain(root) or root / "domain.yml")
        initparts.add_nlu(result)
        initparts.add_rules(result)
        initparts.add_endpoint(result)
        initparts.add_actions(result)
        initparts.check_gitignore(result)
    except (YamlEditError, yaml.YAMLError) as exc:
        raise InitError(str(exc)) from None
    result.check()
    return result


def next_steps(result: Plan, cwd: Path | None = None, written: bool = True) -> str:
    """What to run now: train, Rasa, the action server, and why two environments.

    The token init generated for a new rpa.yml is shown once it is written:
    Rasa must be started with it. (A dry run's would never exist.)
    """
    token = result.new_token if written else None
    if token and os.environ.get("RASA_TOKEN"):
        # rpa.yml reads ${RASA_TOKEN:-...}: the shell's value wins over ours.
        token = '"$RASA_TOKEN"'
    token = token or "<rasa.token of rpa.yml>"
    options = ""
    if result.config_path != result.root / "rpa.yml":
        options += f" --config {result.config_path}"
    port = initparts.action_port(result.config)
    lines = [
        "Next steps. Rasa and rasa-rpa's action server run in two environments:",
        "Rasa 3.6 pins rasa-sdk 3.6 and an old pydantic, which rasa-rpa cannot use.",
        "",
    ]
    if (cwd or Path.cwd()).resolve() != result.root:
        lines += [f"  cd {result.root}"]
    lines += [
        "  1. Train the bot, in Rasa's environment:",
        "       rasa train",
        "  2. Start Rasa with its HTTP API on, and the token rpa.yml has (rasa.token):",
        f"       rasa run --enable-api --auth-token {token}",
        "  3. Start the action server with rasa-rpa, in rasa-rpa's environment:",
        "       rasa-rpa run --actions actions"
        + options
        + (f" --port {port}" if port != initparts.ACTION_SERVER_PORT else ""),
        "  4. Check the set-up while both run:",
        f"       rasa-rpa doctor{options}",
    ]
    if "example" in result.config.automations:
        lines += [
            '  5. Say "run the example robot for Ada". The robot\'s news is kept in',
            "     the conversation's tracker and pushed to channels that can push,",
            "     such as socketio for a web chat widget (credentials.yml).",
        ]
    if result.notes:
        lines[:0] = ["Notes:", *(f"  - {note}" for note in result.notes), ""]
    return "\n".join(lines)
