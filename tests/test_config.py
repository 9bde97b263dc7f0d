"""rpa.yml: valid files load, every mistake names the file, the key and the fix."""

from __future__ import annotations

from pathlib import Path

import pytest

from rasa_rpa.config import load_config, parse_duration
from rasa_rpa.errors import ConfigError

VALID = """
version: 1
rasa:
  url: http://127.0.0.1:5005
  token: ${TEST_RASA_TOKEN}
providers:
  local: {type: local}
automations:
  orders:
    task: collect_order_details
    intent: get_orders
    timeout: 5m
    inputs:
      customer: {entity: customer, default: ALL}
      mode: fast
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "rpa.yml"
    path.write_text(text)
    return path


def test_valid_file_loads_with_env_interpolation(tmp_path, monkeypatch):
    monkeypatch.setenv("TEST_RASA_TOKEN", "s3cret")
    config = load_config(write(tmp_path, VALID))
    assert config.rasa.token is not None
    assert config.rasa.token.get_secret_value() == "s3cret"
    orders = config.automations["orders"]
    assert orders.timeout == 300
    assert orders.inputs["mode"].value == "fast"
    assert orders.inputs["customer"].entity == "customer"
    assert config.automation_for_intent("get_orders") == ("orders", orders)
    assert config.state_dir == tmp_path.resolve() / ".rasa-rpa"


def test_secret_is_not_shown_in_repr(tmp_path, monkeypatch):
    monkeypatch.setenv("TEST_RASA_TOKEN", "s3cret-value")
    config = load_config(write(tmp_path, VALID))
    assert "s3cret-value" not in repr(config)


def test_missing_environment_variable_names_key_and_fix(tmp_path, monkeypatch):
    monkeypatch.delenv("TEST_RASA_TOKEN", raising=False)
    with pytest.raises(ConfigError) as caught:
        load_config(write(tmp_path, VALID))
    message = str(caught.value)
    assert "rpa.yml: rasa.token" in message
    assert "TEST_RASA_TOKEN is not set" in message
    assert "export TEST_RASA_TOKEN" in message


def test_default_after_colon_dash_is_used(tmp_path, monkeypatch):
    monkeypatch.delenv("TEST_RASA_TOKEN", raising=False)
    config = load_config(
        write(tmp_path, VALID.replace("${TEST_RASA_TOKEN}", "${TEST_RASA_TOKEN:-dflt}"))
    )
    assert config.rasa.token is not None
    assert config.rasa.token.get_secret_value() == "dflt"


def test_misspelled_key_is_named(tmp_path, monkeypatch):
    monkeypatch.setenv("TEST_RASA_TOKEN", "x")
    with pytest.raises(ConfigError) as caught:
        load_config(write(tmp_path, VALID.replace("timeout: 5m", "timout: 5m")))
    assert caught.value.key == "automations.orders.timout"
    assert "spelling" in caught.value.fix


def test_unknown_provider_lists_the_declared_ones(tmp_path, monkeypatch):
    monkeypatch.setenv("TEST_RASA_TOKEN", "x")
    text = VALID.replace(
        "task: collect_order_details",
        "task: collect_order_details\n    provider: uipath",
    )
    with pytest.raises(ConfigError) as caught:
        load_config(write(tmp_path, text))
    assert caught.value.key == "automations.orders.provider"
    assert "local" in caught.value.fix


def test_unknown_provider_type(tmp_path, monkeypatch):
    monkeypatch.setenv("TEST_RASA_TOKEN", "x")
    with pytest.raises(ConfigError) as caught:
        load_config(write(tmp_path, VALID.replace("{type: local}", "{type: lokal}")))
    assert caught.value.key == "providers.local.type"


def test_bad_duration(tmp_path, monkeypatch):
    monkeypatch.setenv("TEST_RASA_TOKEN", "x")
    with pytest.raises(ConfigError) as caught:
        load_config(write(tmp_path, VALID.replace("timeout: 5m", "timeout: soon")))
    assert caught.value.key == "automations.orders.timeout"
    assert "30s, 5m or 1h" in str(caught.value)


def test_max_running_defaults_to_one_and_must_be_positive(tmp_path, monkeypatch):
    monkeypatch.setenv("TEST_RASA_TOKEN", "x")
    config = load_config(write(tmp_path, VALID))
    assert config.automations["orders"].max_running == 1
    text = VALID.replace("timeout: 5m", "timeout: 5m\n    max_running: 0")
    with pytest.raises(ConfigError) as caught:
        load_config(write(tmp_path, text))
    assert caught.value.key == "automations.orders.max_running"


def test_input_with_two_sources_is_refused(tmp_path, monkeypatch):
    monkeypatch.setenv("TEST_RASA_TOKEN", "x")
    text = VALID.replace(
        "{entity: customer, default: ALL}", "{entity: customer, slot: customer}"
    )
    with pytest.raises(ConfigError) as caught:
        load_config(write(tmp_path, text))
    assert caught.value.key.startswith("automations.orders.inputs.customer")


def test_missing_file_and_bad_yaml(tmp_path):
    with pytest.raises(ConfigError, match="file not found"):
        load_config(tmp_path / "nope.yml")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(write(tmp_path, "automations: [unclosed"))


@pytest.mark.parametrize(
    ("text", "seconds"),
    [(90, 90.0), ("90s", 90.0), ("5m", 300.0), ("1h", 3600.0), ("250ms", 0.25)],
)
def test_durations(text, seconds):
    assert parse_duration(text) == seconds


def test_secret_values_include_nested_headers_and_store_password(tmp_path):
    from rasa_rpa.config import config_from_dict, secret_values

    config = config_from_dict(
        {
            "store": {"url": "postgresql://rpa:pg-pass-word@db:5432/rpa"},
            "providers": {
                "local": {"type": "local"},
                "hook": {
                    "type": "webhook",
                    "url": "http://x/",
                    "headers": {"X-Api-Key": "nested-api-key"},
                },
                # Built-in providers refuse unknown keys: token_url is UiPath's.
                "orchestrator": {
                    "type": "uipath",
                    "url": "http://x/",
                    "client_id": "c",
                    "client_secret": "s",
                    "token_url": "http://t/",
                },
            },
        },
        base_dir=tmp_path,
    )
    values = secret_values(config)
    assert "nested-api-key" in values and "pg-pass-word" in values
    assert "http://t/" not in values  # an address, not a secret


def test_short_master_key_is_a_config_error(tmp_path):
    from rasa_rpa.config import config_from_dict

    with pytest.raises(ConfigError) as caught:
        config_from_dict({"callbacks": {"secret": "short"}}, base_dir=tmp_path)
    assert caught.value.key == "callbacks.secret"
    assert "16 characters" in str(caught.value)


def test_server_request_limit_defaults_to_16_mib_and_has_a_floor(tmp_path):
    base = "version: 1\nproviders: {local: {type: local}}\n"
    assert load_config(write(tmp_path, base)).server.max_request_bytes == 16 << 20
    limit = base + "server:\n  max_request_bytes: ${TEST_MAX_REQUEST:-2000000}\n"
    assert load_config(write(tmp_path, limit)).server.max_request_bytes == 2_000_000
    with pytest.raises(ConfigError) as error:
        load_config(write(tmp_path, base + "server: {max_request_bytes: 1000}\n"))
    assert "server.max_request_bytes" in str(error.value)


# Each kind of mistake, wherever it is found (at load, or when the runtime
# builds the store and providers), names the file it is in, not "rpa.yml".
PROVIDERS = "providers:\n  p:\n"
MISTAKES = {
    "yaml": "version: [1\n",
    "not a mapping": "- version\n",
    "unknown key": "versoin: 1\n",
    "bad value": "delivery: {concurrency: 0}\n",
    "unset variable": "rasa: {token: '${I11_SURELY_UNSET}'}\n",
    "empty token": "rasa: {token: '${I11_SURELY_UNSET:-}'}\n",
    "provider type": PROVIDERS + "    type: nope\n",
    "automation provider": "automations: {a: {task: t, provider: nope}}\n",
    "store scheme": "store: {url: 'mysql://db/x'}\n",
    "store pool": "store: {url: 'postgresql://db/x?pool_size=0'}\n",
    "webhook url": PROVIDERS + "    type: webhook\n",
    "uipath url": PROVIDERS + "    type: uipath\n",
    "uipath client": PROVIDERS + "    type: uipath\n    url: https://u/o\n",
    "uipath timeout": PROVIDERS
    + "    type: uipath\n    url: https://u/o\n    client_id: i\n"
    + "    client_secret: s\n    timeout: soon\n",
    "sap keys": PROVIDERS + "    type: sap\n",
    "sap triggers": PROVIDERS
    + "    type: sap\n    service_key_url: https://s\n    client_id: i\n"
    + "    client_secret: s\n    api_key: k\n    triggers: [a]\n",
    "sap no triggers": PROVIDERS
    + "    type: sap\n    service_key_url: https://s\n    client_id: i\n"
    + "    client_secret: s\n    api_key: k\n",
    "sap timeout": PROVIDERS
    + "    type: sap\n    service_key_url: https://s\n    client_id: i\n"
    + "    client_secret: s\n    api_key: k\n    triggers: {t: https://t}\n"
    + "    timeout: soon\n",
}


@pytest.mark.parametrize("kind", MISTAKES)
def test_every_mistake_names_the_real_file_and_the_fix(tmp_path, kind):
    from rasa_rpa.runtime import Runtime

    path = tmp_path / "custom-name.yml"
    text = MISTAKES[kind]
    if not text.startswith("- "):  # a list at the top level stays one
        text = "callbacks: {secret: test-master-key-0123456789abcdef}\n" + text
    path.write_text(text)
    with pytest.raises(ConfigError) as caught:
        Runtime(load_config(path))  # building it checks the store and providers
    error = caught.value
    assert error.source == str(path), str(error)
    assert str(error).startswith(f"{path}: "), str(error)
    # (The docs page the fix may point to is called "rpa.yml reference".)
    assert "rpa.yml" not in str(error).replace("rpa.yml reference", "")
    assert error.fix, f"no fix given: {error}"


async def test_an_unknown_automation_names_the_real_file(tmp_path):
    from rasa_rpa.runtime import Runtime

    path = tmp_path / "custom-name.yml"
    path.write_text("callbacks: {secret: test-master-key-0123456789abcdef}\n")
    runtime = Runtime(load_config(path))
    await runtime.start(background=False)
    try:
        with pytest.raises(ConfigError) as caught:
            await runtime.service.start_job("nope", "c1", {})
    finally:
        await runtime.stop()
    assert caught.value.source == str(path)
    assert "custom-name.yml" in caught.value.fix
    assert "rpa.yml" not in str(caught.value)


def test_an_unknown_provider_class_names_the_file_it_was_asked_for(tmp_path):
    from rasa_rpa.registry import provider_class

    with pytest.raises(ConfigError) as caught:
        provider_class("nope", source=str(tmp_path / "custom-name.yml"))
    assert str(caught.value).startswith(f"{tmp_path / 'custom-name.yml'}: ")


def test_run_s_public_url_applies_only_where_rpa_yml_names_none(tmp_path, monkeypatch):
    from rasa_rpa.config import PUBLIC_URL_ENV

    monkeypatch.setenv("TEST_RASA_TOKEN", "t")
    monkeypatch.setenv(PUBLIC_URL_ENV, "http://127.0.0.1:5155")
    unset = load_config(write(tmp_path, VALID))
    assert unset.callbacks.public_url == "http://127.0.0.1:5155"
    (tmp_path / "named").mkdir()
    named = write(
        tmp_path / "named",
        VALID + "callbacks:\n  public_url: https://bot.example.com\n",
    )
    assert load_config(named).callbacks.public_url == "https://bot.example.com"
    monkeypatch.delenv(PUBLIC_URL_ENV)
    assert load_config(write(tmp_path, VALID)).callbacks.public_url == (
        "http://127.0.0.1:5055"
    )


def test_files_and_retention_have_sensible_defaults(tmp_path, monkeypatch):
    monkeypatch.setenv("TEST_RASA_TOKEN", "x")
    config = load_config(write(tmp_path, VALID))
    assert config.files.link_ttl == 24 * 3600
    assert "text/html" not in config.files.content_types
    assert "image/svg+xml" not in config.files.content_types
    assert config.files_url == "http://127.0.0.1:5055"  # callbacks.public_url
    retention = config.retention
    assert (retention.files, retention.delivered) == (7 * 86400, 7 * 86400)
    assert (retention.events, retention.jobs) == (30 * 86400, 90 * 86400)


def test_each_retention_period_can_be_turned_off(tmp_path, monkeypatch):
    monkeypatch.setenv("TEST_RASA_TOKEN", "x")
    text = VALID + (
        "retention: {files: off, delivered: never, events: null, jobs: 2d}\n"
        "files: {public_url: 'https://bot.example/', link_ttl: 1h, "
        "content_types: [Text/CSV, 'image/*']}\n"
    )
    config = load_config(write(tmp_path, text))
    retention = config.retention
    assert (retention.files, retention.delivered, retention.events) == (None,) * 3
    assert retention.jobs == 2 * 86400
    assert config.files.content_types == ("text/csv", "image/*")
    assert config.files_url == "https://bot.example"


@pytest.mark.parametrize(
    ("section", "key"),
    [
        ("files: {content_types: [csv]}", "files.content_types.0"),
        ("files: {link_ttl: soon}", "files.link_ttl"),
        ("files: {max_bytes: 0}", "files.max_bytes"),
        ("retention: {jobs: sometimes}", "retention.jobs"),
        ("retention: {batch: 0}", "retention.batch"),
        ("retention: {keep: 1d}", "retention.keep"),
    ],
)
def test_file_and_retention_mistakes_name_the_key(tmp_path, monkeypatch, section, key):
    monkeypatch.setenv("TEST_RASA_TOKEN", "x")
    with pytest.raises(ConfigError) as caught:
        load_config(write(tmp_path, VALID + section + "\n"))
    assert caught.value.key == key
    assert caught.value.source.endswith("rpa.yml")
