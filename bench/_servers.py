"""What the benchmarks run against: a fresh database on the project's private PostgreSQL
(scripts/postgres-local.sh) and ``openpcc run`` processes to wait for."""

from __future__ import annotations

import socket
import subprocess
import time
from pathlib import Path

import sqlalchemy as sa

ROOT = Path(__file__).resolve().parent.parent


def fresh_database(name: str, server_url: str | None = None) -> str:
    """(Re)create database ``name`` empty on ``server_url`` (default: the local cluster, started
    if needed) and return its URL."""
    if server_url is None:
        server_url = subprocess.run(
            ["bash", str(ROOT / "scripts/postgres-local.sh"), "start"],
            capture_output=True, text=True, check=True,
        ).stdout.strip().splitlines()[-1]  # fmt: skip
    base = server_url.rsplit("/", 1)[0]
    admin = sa.create_engine(base + "/postgres", isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        conn.exec_driver_sql(f"CREATE DATABASE {name}")
    admin.dispose()
    return f"{base}/{name}"


def free_port(ip: str = "127.0.0.1", *, udp: bool = False) -> int:
    """A port nothing listens on at ``ip`` right now (TCP, or UDP for SIP)."""
    kind = socket.SOCK_DGRAM if udp else socket.SOCK_STREAM
    with socket.socket(socket.AF_INET, kind) as sock:
        sock.bind((ip, 0))
        return int(sock.getsockname()[1])


def wait_listening(port: int, server: subprocess.Popen[bytes], log: Path) -> None:
    """Block until 127.0.0.1:``port`` accepts; raise with the server's log if it exits first
    or two minutes pass."""
    deadline = time.monotonic() + 120
    while True:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        if server.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(log.read_text(errors="replace"))
        time.sleep(0.1)
