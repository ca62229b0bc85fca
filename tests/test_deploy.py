"""No Docker engine runs here, so check that the container files say what the README promises."""

import re

import yaml

from tests.conftest import REPO
from triage.settings import load_settings


def test_compose_runs_kafka_in_kraft_mode_postgres_and_the_worker():
    compose = yaml.safe_load((REPO / "docker-compose.yml").read_text())
    services = compose["services"]
    assert services["kafka"]["image"].startswith("apache/kafka:")
    assert "controller" in services["kafka"]["environment"]["KAFKA_PROCESS_ROLES"]  # KRaft, no ZooKeeper
    assert services["postgres"]["image"].startswith("postgres:")
    worker = services["worker"]
    assert worker["build"] == "." and worker["restart"] == "unless-stopped"
    assert set(worker["depends_on"]) == {"kafka", "postgres"}
    env = worker["environment"]
    assert env["TRIAGE_KAFKA__BOOTSTRAP_SERVERS"] == "kafka:9092"
    assert env["TRIAGE_DATABASE_URL"].startswith("postgresql+psycopg://")


def test_every_worker_variable_in_compose_is_a_valid_setting(monkeypatch, tmp_path):
    env = yaml.safe_load((REPO / "docker-compose.yml").read_text())["services"]["worker"]["environment"]
    monkeypatch.chdir(tmp_path)
    for name, value in env.items():  # ${VAR:-default} as compose reads it when VAR is unset
        monkeypatch.setenv(
            name, re.sub(r"\$\{[^}:]*(?::-([^}]*))?\}", lambda m: m.group(1) or "", str(value))
        )
    settings = load_settings()  # an unknown or malformed variable raises SettingsError
    assert settings.kafka.bootstrap_servers == "kafka:9092"
    assert settings.classifier.backend == "embedded"  # the real model, not the keyword baseline


def test_the_image_carries_and_checks_the_embedded_model():
    dockerfile = (REPO / "Dockerfile").read_text()
    assert re.search(r"^RUN python -c .*Encoder\(\)\.encode", dockerfile, re.M)
    volumes = yaml.safe_load((REPO / "docker-compose.yml").read_text())["services"]["worker"]["volumes"]
    assert "./config/categories.yaml:/app/config/categories.yaml:ro" in volumes


def test_dockerfile_runs_the_worker_as_a_non_root_user():
    dockerfile = (REPO / "Dockerfile").read_text()
    assert re.search(r"^FROM python:3\.11-slim", dockerfile, re.M)
    assert re.search(r"^USER (?!root)\w+", dockerfile, re.M)
    assert 'CMD ["triage", "run"]' in dockerfile
    assert re.search(r"^HEALTHCHECK .*\n?.*/healthz", dockerfile, re.M)


def test_compose_can_scrape_the_worker_with_prometheus():
    services = yaml.safe_load((REPO / "docker-compose.yml").read_text())["services"]
    assert services["prometheus"]["image"].startswith("prom/prometheus:")
    scrape = yaml.safe_load((REPO / "config" / "prometheus.yml").read_text())["scrape_configs"][0]
    port = services["worker"]["environment"]["TRIAGE_HTTP__PORT"]
    assert scrape["static_configs"][0]["targets"] == [f"worker:{port}"]
