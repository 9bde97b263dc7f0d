"""Provider options are typed models, validated when rpa.yml is loaded."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from rasa_rpa.cli import main
from rasa_rpa.config import load_config
from rasa_rpa.errors import ConfigError

UIPATH = {
    "type": "uipath",
    "url": "https://cloud.uipath.com/org/tenant/orchestrator_",
    "client_id": "app-id",
    "client_secret": "app-secret",
}


def write(tmp: Path, **providers: dict[str, Any]) -> Path:
    path = tmp / "bot" / "rpa.yml"
    path.parent.mkdir(exist_ok=True)
    path.write_text(yaml.safe_dump({"version": 1, "providers": providers}))
    return path


@pytest.mark.parametrize(
    ("change", "key", "fix"),
    [
        ({"timeout": "soon"}, "providers.uipath.timeout", "10s"),
        ({"timeout": 0}, "providers.uipath.timeout", "10s"),
        ({"url": "orchestrator.example.com"}, "providers.uipath.url", "Orchestrator"),
        ({"clientsecret": "typo"}, "providers.uipath.clientsecret", "spelling"),
        ({"client_secret": ""}, "providers.uipath.client_id", "External Application"),
    ],
)
def test_a_bad_option_stops_the_load(tmp_path, change, key, fix):
    path = write(tmp_path, uipath={**UIPATH, **change})
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert caught.value.source == str(path)
    assert caught.value.key == key
    assert fix in caught.value.fix


@pytest.mark.parametrize(
    ("entry", "key"),
    [
        ({"type": "webhook", "url": "http://h/a/../b"}, "providers.p.url"),
        ({"type": "webhook", "url": "http://h", "timeout": "x"}, "providers.p.timeout"),
        ({"type": "sap", "service_key_url": "http://h"}, "providers.p.client_id"),
        ({"type": "automation_anywhere", "url": "ftp://h"}, "providers.p.url"),
        ({"type": "local", "robots": "typo"}, "providers.p.robots"),
    ],
)
def test_every_builtin_checks_its_options_at_load(tmp_path, entry, key):
    with pytest.raises(ConfigError) as caught:
        load_config(write(tmp_path, p=entry))
    assert caught.value.key == key and caught.value.fix


def test_check_config_names_file_key_and_fix(tmp_path, capsys):
    path = write(tmp_path, uipath={**UIPATH, "timeout": "soon"})
    assert main(["check-config", "--config", str(path)]) == 2
    err = capsys.readouterr().err
    assert f"{path}: providers.uipath.timeout" in err and "Fix:" in err


def test_the_provider_gets_its_options_typed(tmp_path):
    config = load_config(write(tmp_path, uipath={**UIPATH, "timeout": "250ms"}))
    from rasa_rpa.providers.uipath import UiPathProvider

    async def ignore(event: Any) -> None:
        return None

    provider = UiPathProvider("uipath", config.providers["uipath"], config, ignore)
    assert provider.options.timeout == 0.25
    assert provider.options.secret == "app-secret"
    assert "app-secret" not in repr(provider.options)
