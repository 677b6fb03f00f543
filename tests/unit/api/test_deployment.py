"""docker-compose.yml and the Dockerfile (no Docker engine here: checked as data): PostgreSQL,
KRaft Kafka and two OpenPCC nodes sharing them, every OPENPCC_ variable a real setting."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from schemas.settings import Settings

ROOT = Path(__file__).resolve().parents[3]


def _compose() -> dict[str, Any]:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text(encoding="utf-8"))


def test_compose_runs_two_nodes_on_shared_postgres_and_kafka() -> None:
    services = _compose()["services"]
    assert set(services) == {"postgres", "kafka", "openpcc-1", "openpcc-2"}
    assert services["postgres"]["image"].startswith("postgres:")
    kafka = services["kafka"]
    assert kafka["image"].startswith("apache/kafka:")
    assert kafka["environment"]["KAFKA_PROCESS_ROLES"] == "broker,controller"  # KRaft
    assert "ZOOKEEPER" not in str(kafka)
    nodes = [services["openpcc-1"], services["openpcc-2"]]
    hosts, exporters, ports = set(), set(), []
    for node in nodes:
        assert node["build"] == "."
        env = node["environment"]
        assert env["OPENPCC_DATABASE_URL"].startswith("postgresql+psycopg://")
        assert "@postgres:5432/" in env["OPENPCC_DATABASE_URL"]
        assert env["OPENPCC_KAFKA_BOOTSTRAP"] == "kafka:9092"
        assert env["OPENPCC_API_HOST"] == "0.0.0.0"
        hosts.add(env["OPENPCC_DIAMETER_ORIGIN_HOST"])
        exporters.add(env["OPENPCC_CDR_EXPORTER_ID"])
        ports += [p.split(":")[0] for p in node["ports"]]
        Settings.model_validate({k.removeprefix("OPENPCC_").lower(): v for k, v in env.items()})
    assert len(hosts) == 2 and len(exporters) == 2, "each node needs its own identity"
    assert len(ports) == len(set(ports)), "host ports must not clash"
    assert services["openpcc-1"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert services["openpcc-2"]["depends_on"]["openpcc-1"]["condition"] == "service_healthy"


def test_every_openpcc_variable_is_a_setting() -> None:
    fields = {f"OPENPCC_{name.upper()}" for name in Settings.model_fields}
    for node in ("openpcc-1", "openpcc-2"):
        env = _compose()["services"][node]["environment"]
        unknown = {k for k in env if k.startswith("OPENPCC_")} - fields
        assert not unknown, f"{node}: not settings: {unknown}"


def test_dockerfile_installs_the_project_on_python_311_slim() -> None:
    text = (ROOT / "Dockerfile").read_text(encoding="utf-8")
    assert text.splitlines()[1] == "FROM python:3.11-slim"
    assert "pip install --no-cache-dir -e ." in text
    assert 'CMD ["openpcc", "run"]' in text and "EXPOSE 3868 8080" in text
    assert ".venv" in (ROOT / ".dockerignore").read_text(encoding="utf-8")
