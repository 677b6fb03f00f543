"""A fresh benchmark database on the project's private PostgreSQL (scripts/postgres-local.sh)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import sqlalchemy as sa

ROOT = Path(__file__).resolve().parent.parent


def fresh_database(name: str) -> str:
    """Start the local cluster if needed, (re)create database ``name`` empty, return its URL."""
    server_url = subprocess.run(
        ["bash", str(ROOT / "scripts/postgres-local.sh"), "start"],
        capture_output=True, text=True, check=True,
    ).stdout.strip().splitlines()[-1]  # fmt: skip
    admin = sa.create_engine(server_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        conn.exec_driver_sql(f"CREATE DATABASE {name}")
    admin.dispose()
    return server_url.rsplit("/", 1)[0] + "/" + name
