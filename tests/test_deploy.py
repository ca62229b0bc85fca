"""What the container files promise, read from them; scripts/container-check (run by .ci/run) builds the image
and runs it and the compose file."""

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


def test_the_image_carries_and_checks_the_embedded_model_from_outside_the_app_directory():
    dockerfile = (REPO / "Dockerfile").read_text()
    check = re.search(r"^RUN python -c (?:.*\\\n)*.*Encoder\(\)\.encode", dockerfile, re.M)
    assert check
    workdirs = re.findall(r"^WORKDIR (\S+)", dockerfile[: check.start()], re.M)
    assert workdirs[-1] != "/app"  # in /app it would import a source tree there, not the installed package


def test_compose_mounts_the_config_directory_so_a_replaced_file_is_seen():
    worker = yaml.safe_load((REPO / "docker-compose.yml").read_text())["services"]["worker"]
    assert worker["volumes"] == ["./config:/app/config:ro"]
    assert worker["environment"]["TRIAGE_ROUTING_FILE"].startswith("/app/config/")
    assert worker["environment"]["TRIAGE_CLASSIFIER__CATEGORIES_FILE"].startswith("/app/config/")


def test_compose_reads_an_optional_env_file_for_every_other_setting():
    worker = yaml.safe_load((REPO / "docker-compose.yml").read_text())["services"]["worker"]
    assert worker["env_file"] == [{"path": ".env", "required": False}]


def test_the_image_installs_only_a_wheel_built_in_a_first_stage():
    dockerfile = (REPO / "Dockerfile").read_text()
    stages = re.split(r"^FROM ", dockerfile, flags=re.M)[1:]
    assert len(stages) == 2
    build, final = stages
    assert re.search(r"^RUN pip wheel .*--wheel-dir /wheels \.", build, re.M)
    assert "COPY triage" not in final and "pip install ." not in final  # no second source copy, no build/
    assert re.search(r"--mount=type=bind,from=\w+,source=/wheels.*\n.*pip install .*/wheels/\*\.whl", final)


def test_the_image_has_a_data_volume_the_worker_can_write_and_its_default_store_is_there():
    dockerfile = (REPO / "Dockerfile").read_text()
    assert re.search(r"^VOLUME /data$", dockerfile, re.M)
    assert re.search(r"TRIAGE_DATABASE_URL=sqlite:////data/triage\.db", dockerfile)
    assert re.search(r"chown triage(:triage)? /data", dockerfile)
    assert dockerfile.index("chown triage") > dockerfile.index("useradd")


def test_dockerignore_keeps_the_venv_git_and_local_stores_out_of_the_build_context():
    ignored = {
        line.strip()
        for line in (REPO / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    }
    assert {".venv", ".git", "build", "*.egg-info", "__pycache__", "*.db", ".env"} <= ignored
    dockerfile = (REPO / "Dockerfile").read_text()
    for copied in re.findall(r"^COPY (?!--)(.+) \S+$", dockerfile, re.M):  # what the build needs stays in
        assert not set(copied.split()) & ignored


def test_ci_runs_the_container_check_beside_the_tests():
    run = (REPO / ".ci" / "run").read_text()
    assert "scripts/test" in run and "scripts/container-check" in run
    check = (REPO / "scripts" / "container-check").read_text()
    # The tests' testcontainers must not find an engine: no podman API socket, no DOCKER_HOST.
    assert "system service" not in check and "DOCKER_HOST=" not in check
    assert "--format docker" in check  # the OCI format drops the HEALTHCHECK


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
