"""``rasa-rpa init``: what it adds to a project, and what it never touches.

The command runs as a user runs it (``main(["init", ...])``) on real folders;
the files are then read back the way Rasa reads them.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from devtools.stack import ROOT
from rasa_rpa.cli import main
from rasa_rpa.config import load_config
from rasa_rpa.ops.domain_snippet import (
    ACTIONS,
    INTENTS,
    RESPONSES,
    SLOTS,
    domain_additions,
    rules,
)

# A domain as `rasa init` writes one: comments, two sequence styles, quotes.
USER_DOMAIN = """\
version: "3.1"

# The intents of my bot.
intents:
  - greet   # hello!
  - goodbye

responses:
  utter_greet:
  - text: "Hey! How are you?"

  # My own words for a started job.
  utter_rpa_job_started:
  - text: "On it!"

session_config:
  session_expiration_time: 60
  carry_over_slots_to_new_session: true
"""
USER_ENDPOINTS = """\
# Server which runs your custom actions.

#action_endpoint:
#  url: "http://localhost:5055/webhook"

tracker_store:
  type: SQL   # keep conversations
"""


def stock_bot(folder: Path, domain: str = USER_DOMAIN) -> Path:
    """A bot folder like `rasa init` makes: domain, data, endpoints, actions."""
    (folder / "data").mkdir(parents=True)
    (folder / "actions").mkdir()
    (folder / "domain.yml").write_text(domain)
    (folder / "config.yml").write_text("recipe: default.v1\nlanguage: en\n")
    (folder / "endpoints.yml").write_text(USER_ENDPOINTS)
    (folder / "data" / "nlu.yml").write_text(
        'version: "3.1"\nnlu:\n  - intent: greet\n    examples: |\n      - hi\n'
    )
    (folder / "data" / "rules.yml").write_text(
        'version: "3.1"\nrules:\n  - rule: greet\n    steps:\n'
        "      - intent: greet\n      - action: utter_greet\n"
    )
    (folder / "actions" / "__init__.py").write_text("")
    (folder / "actions" / "actions.py").write_text("# only comments\n")
    return folder


def snapshot(folder: Path) -> dict[str, str]:
    return {
        p.relative_to(folder).as_posix(): p.read_text()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def init(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    code = main(["init", *args])
    captured = capsys.readouterr()
    return code, captured.out + captured.err


def domain_of(folder: Path) -> dict:
    return yaml.safe_load((folder / "domain.yml").read_text())


def test_existing_project_gets_everything_and_keeps_its_own(tmp_path, capsys):
    bot = stock_bot(tmp_path / "bot")
    code, out = init(capsys, str(bot))
    assert code == 0, out
    text = (bot / "domain.yml").read_text()
    # Every line the user wrote is still there, in its order, comments included.
    lines = iter(text.splitlines())
    assert all(line in lines for line in USER_DOMAIN.splitlines())
    domain = yaml.safe_load(text)
    assert set(INTENTS) | {"run_example"} <= set(domain["intents"])
    assert domain["intents"][:2] == ["greet", "goodbye"]
    assert set(RESPONSES) <= set(domain["responses"])
    assert set(SLOTS) <= set(domain["slots"])
    assert set(ACTIONS) <= set(domain["actions"])
    assert "example_name" in domain["entities"]  # the example's input entity
    # The user's own response of the same name stays as they wrote it.
    assert domain["responses"]["utter_rpa_job_started"] == [{"text": "On it!"}]
    assert "kept yours: utter_rpa_job_started" in out
    intents = len(domain_additions(load_config(bot / "rpa.yml"))["intents"])
    assert "domain.yml" in out and f"added {intents} intents" in out
    # The user's data files are untouched; rasa-rpa's are files of their own.
    assert (bot / "data" / "nlu.yml").read_text().endswith("      - hi\n")
    nlu = yaml.safe_load((bot / "data" / "rpa_nlu.yml").read_text())["nlu"]
    assert {i["intent"] for i in nlu} == {"job_status", "cancel_job", "run_example"}
    config = load_config(bot / "rpa.yml")
    written = yaml.safe_load((bot / "data" / "rpa_rules.yml").read_text())["rules"]
    assert [r["steps"] for r in written] == [r["steps"] for r in rules(config)["rules"]]
    assert (bot / "robots" / "example.robot").is_file()
    assert "Next steps" in out and "rasa-rpa run --actions actions" in out


def test_empty_folder_becomes_a_starter_bot(tmp_path, capsys):
    bot = tmp_path / "new-bot"  # not even there yet
    code, out = init(capsys, str(bot))
    assert code == 0, out
    files = set(snapshot(bot))
    assert {
        "config.yml",
        "domain.yml",
        "credentials.yml",
        "endpoints.yml",
        "data/nlu.yml",
        "data/rules.yml",
        "data/rpa_nlu.yml",
        "data/rpa_rules.yml",
        "rpa.yml",
        "robots/example.robot",
        "actions/__init__.py",
        "actions/rasa_rpa_actions.py",
    } <= files
    domain = domain_of(bot)
    assert {"greet", "job_status", "run_example"} <= set(domain["intents"])
    endpoints = yaml.safe_load((bot / "endpoints.yml").read_text())
    assert endpoints["action_endpoint"]["url"] == "http://127.0.0.1:5055/webhook"
    assert "socketio" in yaml.safe_load((bot / "credentials.yml").read_text())
    assert load_config(bot / "rpa.yml").automations["example"].intent == "run_example"
    assert out.count("created") == len(files)


def test_a_second_run_changes_nothing_and_says_so(tmp_path, capsys):
    bot = stock_bot(tmp_path / "bot")
    assert init(capsys, str(bot))[0] == 0
    before = snapshot(bot)
    code, out = init(capsys, str(bot))
    assert code == 0
    assert snapshot(bot) == before
    assert "Nothing to change" in out
    assert "created" not in out and "added" not in out
    assert "domain.yml" in out and "unchanged" in out


def test_dry_run_prints_a_diff_and_writes_nothing(tmp_path, capsys):
    bot = stock_bot(tmp_path / "bot")
    before = snapshot(bot)
    code, out = init(capsys, str(bot), "--dry-run")
    assert code == 0
    assert snapshot(bot) == before
    assert "--- a/domain.yml\n+++ b/domain.yml\n" in out
    assert "+  - job_status\n" in out
    assert "--- /dev/null\n+++ b/rpa.yml\n" in out
    # Only additions: no line of the user's files is removed or rewritten.
    assert not [
        line for line in out.splitlines() if line.startswith("-") and line[:3] != "---"
    ]
    assert "nothing written" in out


def test_endpoints_without_action_endpoint_get_one_and_keep_comments(tmp_path, capsys):
    bot = stock_bot(tmp_path / "bot")
    assert init(capsys, str(bot))[0] == 0
    text = (bot / "endpoints.yml").read_text()
    assert text.startswith(USER_ENDPOINTS)
    endpoints = yaml.safe_load(text)
    assert endpoints["action_endpoint"] == {"url": "http://127.0.0.1:5055/webhook"}
    assert endpoints["tracker_store"] == {"type": "SQL"}


def test_an_existing_action_endpoint_stays_and_a_port_mismatch_is_told(
    tmp_path, capsys
):
    bot = stock_bot(tmp_path / "bot")
    own = 'action_endpoint:\n  url: "http://actions.internal:5056/webhook"\n'
    (bot / "endpoints.yml").write_text(own)
    code, out = init(capsys, str(bot))
    assert code == 0
    assert (bot / "endpoints.yml").read_text() == own
    assert "port 5056" in out and "rasa-rpa run --port 5056" in out


def test_a_domain_folder_gets_a_file_of_its_own(tmp_path, capsys):
    bot = tmp_path / "bot"
    (bot / "domain").mkdir(parents=True)
    base = 'version: "3.1"\nintents:\n  - greet\n  - job_status\n'
    (bot / "domain" / "base.yml").write_text(base)
    code, out = init(capsys, str(bot))
    assert code == 0, out
    assert (bot / "domain" / "base.yml").read_text() == base
    added = yaml.safe_load((bot / "domain" / "rasa_rpa.yml").read_text())
    assert "job_status" not in added["intents"]  # the folder has it already
    assert "cancel_job" in added["intents"]
    assert "domain/rasa_rpa.yml" in out
    assert init(capsys, str(bot))[1].count("unchanged") >= 5


def test_inputs_of_an_existing_rpa_yml_reach_the_domain(tmp_path, capsys):
    bot = stock_bot(tmp_path / "bot")
    (bot / "rpa.yml").write_text(
        yaml.safe_dump(
            {
                "version": 1,
                "providers": {"local": {"type": "local"}},
                "automations": {
                    "invoices": {
                        "task": "invoices",
                        "intent": "get_invoices",
                        "inputs": {
                            "customer": {"entity": "customer"},
                            "month": {"slot": "invoice_month"},
                            "fixed": "yes",
                        },
                    }
                },
            }
        )
    )
    code, out = init(capsys, str(bot))
    assert code == 0, out
    domain = domain_of(bot)
    assert {"customer", "invoice_month"} <= set(domain["entities"])
    assert domain["slots"]["invoice_month"]["mappings"] == [
        {"type": "from_entity", "entity": "invoice_month"}
    ]
    assert "get_invoices" in domain["intents"]
    # No examples for the user's own intent: init says so instead of inventing some.
    assert "intent get_invoices" in out and "no NLU examples" in out
    assert not (bot / "robots").exists()  # the user's robots are their own


def test_a_rule_of_the_user_for_the_same_intent_is_kept(tmp_path, capsys):
    bot = stock_bot(tmp_path / "bot")
    (bot / "data" / "rules.yml").write_text(
        'version: "3.1"\nrules:\n  - rule: my status\n    steps:\n'
        "      - intent: job_status\n      - action: utter_ask_later\n"
    )
    code, out = init(capsys, str(bot))
    assert code == 0
    written = yaml.safe_load((bot / "data" / "rpa_rules.yml").read_text())["rules"]
    # (the question form's own rules for status while it waits stay: they
    # answer job_status only inside the form)
    plain = [r["steps"][0].get("intent") for r in written if "condition" not in r]
    assert "job_status" not in plain
    assert "rule job_status -> utter_ask_later" in out


def test_a_flow_style_section_is_still_extended(tmp_path, capsys):
    bot = stock_bot(tmp_path / "bot", 'version: "3.1"\nintents: [greet, goodbye]\n')
    assert init(capsys, str(bot))[0] == 0
    intents = domain_of(bot)["intents"]
    assert intents[:2] == ["greet", "goodbye"] and "cancel_job" in intents


def test_a_folder_that_is_no_bot_is_left_alone(tmp_path, capsys):
    (tmp_path / "notes.txt").write_text("mine")
    code, out = init(capsys, str(tmp_path))
    assert code == 2
    assert "not a Rasa project" in out and "notes.txt" in out
    assert snapshot(tmp_path) == {"notes.txt": "mine"}


def test_broken_yaml_is_named_not_overwritten(tmp_path, capsys):
    bot = stock_bot(tmp_path / "bot", "intents: [greet\n")
    code, out = init(capsys, str(bot))
    assert code == 2
    assert "domain.yml" in out and "Traceback" not in out
    assert (bot / "domain.yml").read_text() == "intents: [greet\n"


def test_an_actions_package_that_imports_the_plugin_gets_nothing(tmp_path, capsys):
    bot = stock_bot(tmp_path / "bot")
    own = "from rasa_rpa.actions import ActionStartRpaJob  # noqa: F401\n"
    (bot / "actions" / "actions.py").write_text(own)
    assert init(capsys, str(bot))[0] == 0
    assert not (bot / "actions" / "rasa_rpa_actions.py").exists()


def test_the_written_actions_package_registers_the_plugins_actions(tmp_path, capsys):
    """rasa-sdk registers what the package imports: a stock one imports nothing."""
    bot = stock_bot(tmp_path / "bot")
    assert init(capsys, str(bot))[0] == 0
    probe = (
        "from rasa_sdk.executor import ActionExecutor; e = ActionExecutor(); "
        "e.register_package('actions'); print(sorted(e.actions))"
    )
    paths = [str(bot), str(ROOT), str(ROOT / "robot-client")]
    found = subprocess.run(
        [sys.executable, "-c", probe],
        cwd=bot,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(paths)},
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert all(name in found for name in ACTIONS), found


def test_the_example_robot_runs_on_its_own(tmp_path, capsys):
    """Outside a job the keywords only log: the robot can be tried with `robot`."""
    bot = tmp_path / "bot"
    assert init(capsys, str(bot))[0] == 0
    variables = ["--variable", "step_delay:0s", "--variable", "name:Ada"]
    robot = [sys.executable, "-m", "robot", "--outputdir", str(tmp_path / "out")]
    result = subprocess.run(
        [*robot, *variables, str(bot / "robots" / "example.robot")],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout
    assert (tmp_path / "out" / "greeting.txt").read_text() == "Hello, Ada!"


def test_one_more_automation_takes_its_rpa_yml_entry_and_examples(tmp_path, capsys):
    """After init, a new automation is an rpa.yml entry, NLU examples, a rerun."""
    bot = stock_bot(tmp_path / "bot")
    assert init(capsys, str(bot))[0] == 0
    by_hand = {
        "rpa.yml": (
            "  invoices:\n"
            "    description: your invoices\n"
            "    task: invoices\n"
            "    intent: get_invoices\n"
            "    inputs:\n"
            "      month: {entity: month}\n"
        ),
        "data/rpa_nlu.yml": (
            "  - intent: get_invoices\n"
            "    examples: |\n"
            "      - get my invoices\n"
            "      - show me the invoices\n"
            "      - invoices for [May](month)\n"
            "      - get the invoices of [June](month)\n"
        ),
    }
    for name, lines in by_hand.items():
        with (bot / name).open("a") as file:
            file.write(lines)
    code, out = init(capsys, str(bot))
    assert code == 0
    assert "no NLU examples" not in out
    domain = domain_of(bot)
    assert "get_invoices" in domain["intents"] and "month" in domain["entities"]
    rules_now = yaml.safe_load((bot / "data" / "rpa_rules.yml").read_text())["rules"]
    assert {"intent": "get_invoices"} in [r["steps"][0] for r in rules_now]
    assert "domain.yml" in out and "added 1 intent, 1 entity" in out
    assert "data/rpa_rules.yml" in out and "added 1 rule" in out
    # What a developer writes by hand: two files, this many lines (plus the robot).
    assert sum(len(lines.splitlines()) for lines in by_hand.values()) == 12


def test_a_gitignore_without_the_state_folder_is_pointed_out(tmp_path, capsys):
    bot = stock_bot(tmp_path / "bot")
    (bot / ".gitignore").write_text("models/\n")
    code, out = init(capsys, str(bot))
    assert code == 0
    assert ".gitignore: add .rasa-rpa/" in out
    assert (bot / ".gitignore").read_text() == "models/\n"
    starter = tmp_path / "starter"
    assert init(capsys, str(starter))[0] == 0
    assert ".rasa-rpa/" in (starter / ".gitignore").read_text()


def test_next_steps_give_rasas_token_once_it_is_written(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("RASA_TOKEN", raising=False)
    bot = stock_bot(tmp_path / "bot")
    out = init(capsys, str(bot), "--dry-run")[1]
    assert "--auth-token <rasa.token of rpa.yml>" in out
    assert "${RASA_TOKEN:-<generated when written>}" in out  # not a token to copy
    out = init(capsys, str(bot))[1]
    token = load_config(bot / "rpa.yml").rasa.token
    assert token is not None and len(token.get_secret_value()) == 40
    assert f"--auth-token {token.get_secret_value()}" in out
    assert f"cd {bot}" in out  # run from elsewhere: where to run the rest


def test_next_steps_name_the_shells_token_when_rpa_yml_will_read_it(
    tmp_path, capsys, monkeypatch
):
    monkeypatch.setenv("RASA_TOKEN", "from-the-shell-0123")
    bot = stock_bot(tmp_path / "bot")
    out = init(capsys, str(bot))[1]
    assert load_config(bot / "rpa.yml").rasa.token.get_secret_value() == (
        "from-the-shell-0123"
    )
    assert '--auth-token "$RASA_TOKEN"' in out
    assert "from-the-shell-0123" not in out


# A hostile or broken folder: init refuses in one line and changes nothing,
# inside the project or out of it.


def tree(folder: Path) -> dict[str, str]:
    """Everything under ``folder`` as it is on disk: links are not followed."""
    found: dict[str, str] = {}
    for top, dirs, files in os.walk(folder):
        for entry in [*dirs, *files]:
            path = Path(top) / entry
            name = path.relative_to(folder).as_posix()
            if path.is_symlink():
                found[name] = "-> " + os.readlink(path)
            elif path.is_dir():
                found[name] = "dir"
            elif path.is_file():
                # Bytes: other fixtures may leave binary files (a jobs.db) here.
                found[name] = path.read_bytes().decode("latin-1")
            else:
                found[name] = "special"
    return found


def refused(capsys, folder: Path, *args: str) -> str:
    """init's error for ``folder``: exit 2, one line, no traceback, no change."""
    before = tree(folder.parent)
    for extra in (["--dry-run"], []):
        code, out = init(capsys, str(folder / "bot"), *extra, *args)
        assert code == 2, out
        assert out.startswith("rasa-rpa init: ") and out.count("\n") == 1, out
        assert "Traceback" not in out
        assert tree(folder.parent) == before
    return out


def outside_link(tmp_path: Path, link: str, target: str) -> Path:
    """A stock bot whose ``link`` points at ``target`` under tmp/outside."""
    bot, outside = stock_bot(tmp_path / "bot"), tmp_path / "outside"
    (outside / "dir").mkdir(parents=True)
    (outside / "other_domain.yml").write_text(USER_DOMAIN)
    for name in ("domain.yml", "endpoints.yml", "data"):
        if link == name:  # the bot's own goes: the link takes its place
            os.rename(bot / name, outside / "moved")
    os.symlink(outside / target, bot / link)
    return bot


@pytest.mark.parametrize(
    ("link", "target"),
    [
        ("domain.yml", "other_domain.yml"),  # would be rewritten
        ("endpoints.yml", "x.yml"),  # dangling: would be created out there
        ("robots", "dir"),  # example.robot would land in outside/dir
        ("data", "dir"),  # rpa_nlu.yml and rpa_rules.yml too
    ],
)
def test_a_link_out_of_the_project_is_refused_before_any_write(
    tmp_path, capsys, link, target
):
    outside_link(tmp_path, link, target)
    out = refused(capsys, tmp_path)
    assert "points outside the project" in out
    assert str((tmp_path / "outside" / target).resolve()) in out


def test_a_robots_dir_outside_on_purpose_is_written_and_named(tmp_path, capsys):
    bot = stock_bot(tmp_path / "bot")
    shared = tmp_path / "shared-robots"
    text = (ROOT / "rasa_rpa/ops/templates/rpa.yml").read_text()
    text = text.replace("robots_dir: robots", "robots_dir: ../shared-robots")
    (bot / "rpa.yml").write_text(text.replace("@TOKEN@", "t" * 40))
    code, out = init(capsys, str(bot))
    assert code == 0, out
    assert (shared / "example.robot").is_file()
    assert str(shared.resolve() / "example.robot") in out


@pytest.mark.parametrize(
    ("make", "expected"),
    [
        (lambda bot: (bot / "robots").write_text("x"), "robots is a file"),
        (lambda bot: _replace(bot / "actions", file=True), "actions is a file"),
        (lambda bot: (bot / "data" / "rpa_nlu.yml").mkdir(), "rpa_nlu.yml is a dir"),
        (lambda bot: _replace(bot / "endpoints.yml"), "endpoints.yml is a dir"),
    ],
)
def test_a_file_where_a_folder_belongs_or_back_is_refused_whole(
    tmp_path, capsys, make, expected
):
    make(stock_bot(tmp_path / "bot"))
    out = refused(capsys, tmp_path)
    assert expected in out
    assert not (tmp_path / "bot" / "rpa.yml").exists()  # no fresh token written


def _replace(path: Path, file: bool = False) -> None:
    """``path`` removed and made again as a file or an empty folder."""
    if path.is_dir():
        for child in path.iterdir():
            child.unlink()
        path.rmdir()
    else:
        path.unlink()
    if file:
        path.write_text("x")
    else:
        path.mkdir()


BOMB = (
    'version: "3.1"\na: &a ["x", "x", "x", "x", "x", "x", "x", "x", "x"]\n'
    + "".join(
        f"{b}: &{b} [{', '.join(['*' + a] * 9)}]\n"
        for a, b in zip("abcdefgh", "bcdefghi", strict=True)
    )
    + "intents: *i\n"
)


def _domain_folder(bot: Path) -> Path:
    (bot / "domain.yml").unlink()
    (bot / "domain").mkdir()
    (bot / "domain" / "a.yml").write_text(USER_DOMAIN)
    return bot / "domain"


@pytest.mark.parametrize(
    ("make", "expected"),
    [
        (lambda bot: (bot / "domain.yml").write_text(BOMB), "YAML aliases"),
        (
            lambda bot: os.symlink("/dev/zero", _domain_folder(bot) / "b.yml"),
            "domain/b.yml is a device",
        ),
        (lambda bot: os.mkfifo(_domain_folder(bot) / "b.yml"), "b.yml is a FIFO"),
        (
            lambda bot: (bot / "domain.yml").write_text(
                USER_DOMAIN + "#" * (6 * 1024 * 1024)
            ),
            "domain.yml is 6 MB: init reads files of at most 5 MB",
        ),
    ],
)
def test_a_file_that_would_eat_memory_or_hang_is_refused(
    tmp_path, capsys, make, expected
):
    make(stock_bot(tmp_path / "bot"))
    assert expected in refused(capsys, tmp_path)
