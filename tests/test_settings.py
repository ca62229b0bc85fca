import re

import pytest

from tests.conftest import REPO
from triage.settings import SettingsError, load_settings


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch, tmp_path):
    for name in list(__import__("os").environ):
        if name.startswith("TRIAGE_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)  # no config/triage.yaml and no .env here


def test_defaults_match_the_contract():
    settings = load_settings()
    assert settings.kafka.input_topic == "support.messages"
    assert settings.kafka.results_topic == "support.triaged"
    assert settings.kafka.dlq_topic == "support.messages.dlq"
    assert settings.worker.max_body_bytes == 64 * 1024
    assert settings.database_url.startswith("sqlite:///")
    assert str(settings.routing_file) == "config/routing.yaml"
    assert settings.classifier.backend == "embedded"  # offline, no key


def test_environment_variables_nest_with_double_underscore(monkeypatch):
    monkeypatch.setenv("TRIAGE_KAFKA__BOOTSTRAP_SERVERS", "broker-1:9092,broker-2:9092")
    monkeypatch.setenv("TRIAGE_KAFKA__SESSION_TIMEOUT_MS", "2000")
    monkeypatch.setenv("TRIAGE_WORKER__CONCURRENCY", "64")
    monkeypatch.setenv("TRIAGE_DATABASE_URL", "postgresql+psycopg://u@db:5432/triage")
    settings = load_settings()
    assert settings.kafka.bootstrap_servers == "broker-1:9092,broker-2:9092"
    assert settings.kafka.session_timeout_ms == 2000
    assert settings.worker.concurrency == 64
    assert settings.database_url == "postgresql+psycopg://u@db:5432/triage"


def test_yaml_file_is_read_and_environment_wins(monkeypatch, tmp_path):
    config = tmp_path / "custom.yaml"
    config.write_text("kafka:\n  group_id: from-yaml\n  input_topic: yaml-in\n")
    monkeypatch.setenv("TRIAGE_CONFIG", str(config))
    monkeypatch.setenv("TRIAGE_KAFKA__GROUP_ID", "from-env")
    settings = load_settings()
    assert (settings.kafka.group_id, settings.kafka.input_topic) == ("from-env", "yaml-in")


@pytest.mark.parametrize(
    ("name", "value", "expected"),
    [
        (
            "TRIAGE_KAFKA__SESSION_TIMEOUT_MS",
            "soon",
            "TRIAGE_KAFKA__SESSION_TIMEOUT_MS (kafka.session_timeout_ms)",
        ),
        ("TRIAGE_WORKER__CONCURRENCY", "0", "TRIAGE_WORKER__CONCURRENCY (worker.concurrency)"),
        ("TRIAGE_KAFKA__BOOTSTRAP_SERVERS", "localhost", "'localhost' is not host:port"),
        ("TRIAGE_DATABASE_URL", "mysql://x", "TRIAGE_DATABASE_URL (database_url)"),
        ("TRIAGE_DATABASE_URL", "sqlite://", "in-memory SQLite database is not shared between threads"),
        ("TRIAGE_CLASSIFIER__BACKEND", "magic", "TRIAGE_CLASSIFIER__BACKEND"),
    ],
)
def test_a_wrong_value_is_one_line_naming_the_setting(monkeypatch, name, value, expected):
    monkeypatch.setenv(name, value)
    with pytest.raises(SettingsError) as caught:
        load_settings()
    assert expected in str(caught.value)
    assert "\n" not in str(caught.value)


def test_unknown_key_in_yaml_is_refused(monkeypatch, tmp_path):
    config = tmp_path / "typo.yaml"
    config.write_text("kafka:\n  grup_id: x\n")
    monkeypatch.setenv("TRIAGE_CONFIG", str(config))
    with pytest.raises(SettingsError, match=re.escape("kafka.grup_id")):
        load_settings()


def test_missing_config_file_named_by_env_is_an_error(monkeypatch):
    monkeypatch.setenv("TRIAGE_CONFIG", "/nonexistent/triage.yaml")
    with pytest.raises(SettingsError, match=re.escape("/nonexistent/triage.yaml")):
        load_settings()


def test_outside_a_checkout_the_packaged_example_routing_is_used(tmp_path):
    settings = load_settings()  # cwd is tmp_path: no config/routing.yaml here
    assert settings.routing_path().read_text() == (REPO / "config" / "routing.yaml").read_text()


def test_an_explicit_routing_file_is_used_as_given(monkeypatch, tmp_path):
    monkeypatch.setenv("TRIAGE_ROUTING_FILE", str(tmp_path / "missing.yaml"))
    assert load_settings().routing_path() == tmp_path / "missing.yaml"


def test_the_packaged_routing_tree_is_the_repository_example():
    packaged = REPO / "triage" / "defaults" / "routing.yaml"
    assert packaged.read_text() == (REPO / "config" / "routing.yaml").read_text()


@pytest.mark.parametrize(
    ("name", "value", "expected"),
    [
        (
            "TRIAGE_KAFKA__CLIENT",
            '{"security_protocol": "SASL_SSL"',
            "invalid setting: TRIAGE_KAFKA__CLIENT: not valid JSON (Expecting ',' delimiter",
        ),
        ("TRIAGE_LLM__PRICES", "{bad", "invalid setting: TRIAGE_LLM__PRICES: not valid JSON"),
        (
            "TRIAGE_CLASSIFIER__CATEGORIES",
            '["billing", ',
            "invalid setting: TRIAGE_CLASSIFIER__CATEGORIES (classifier.categories): Input should be a valid",
        ),
    ],
)
def test_a_malformed_json_setting_is_blamed_on_its_variable(monkeypatch, name, value, expected):
    monkeypatch.setenv(name, value)
    with pytest.raises(SettingsError) as caught:
        load_settings()
    assert str(caught.value).startswith(expected)
    assert "triage.yaml" not in str(caught.value)


@pytest.mark.parametrize("value", ["billing, outage", '["billing", "outage"]', "billing,outage,"])
def test_a_list_setting_takes_json_or_commas(monkeypatch, value):
    monkeypatch.setenv("TRIAGE_CLASSIFIER__CATEGORIES", value)
    assert load_settings().classifier.categories == ["billing", "outage"]


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("postgresql://u:p@db:5432/triage", "postgresql+psycopg://u:p@db:5432/triage"),
        ("postgres://u@db/triage", "postgresql+psycopg://u@db/triage"),
        ("postgresql+psycopg://u@db/triage", "postgresql+psycopg://u@db/triage"),
    ],
)
def test_postgresql_urls_use_psycopg_3(monkeypatch, url, expected):
    monkeypatch.setenv("TRIAGE_DATABASE_URL", url)
    assert load_settings().database_url == expected


@pytest.mark.parametrize("url", ["mysql://u@db/triage", "postgresql+psycopg2://u@db/x", "triage.db"])
def test_other_database_urls_are_refused_clearly(monkeypatch, url):
    monkeypatch.setenv("TRIAGE_DATABASE_URL", url)
    with pytest.raises(
        SettingsError, match=r"TRIAGE_DATABASE_URL \(database_url\): must start with sqlite:///"
    ):
        load_settings()


def test_a_yaml_settings_file_that_does_not_parse_is_one_line_with_its_line(monkeypatch, tmp_path):
    config = tmp_path / "bad.yaml"
    config.write_text("kafka:\n  group_id: [1, 2\n")
    monkeypatch.setenv("TRIAGE_CONFIG", str(config))
    with pytest.raises(
        SettingsError, match=rf"^cannot read settings from {re.escape(str(config))}:3: expected"
    ):
        load_settings()
