"""What the benchmarks run against: a fresh database on the project's private PostgreSQL
(scripts/postgres-local.sh) and ``openpcc run`` processes to wait for."""

from __future__ import annotations

import contextlib
import os
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


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds process ``pid`` has used."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def cpu_of(pids: list[int]) -> float:
    """CPU seconds of ``pids`` together (one that ended meanwhile counts nothing)."""
    total = 0.0
    for pid in pids:
        with contextlib.suppress(FileNotFoundError, ProcessLookupError):
            total += cpu_seconds(pid)
    return total


def postgres_pids(url: str | None, database: str) -> list[int]:
    """The backends connected to ``database`` and the cluster's WAL/background writers."""
    if url is None:
        return []
    engine = sa.create_engine(url.rsplit("/", 1)[0] + "/postgres")
    try:
        with engine.connect() as conn:
            return list(conn.execute(sa.text(
                "SELECT pid FROM pg_stat_activity WHERE (datname = :db "
                "AND pid <> pg_backend_pid()) OR backend_type IN "
                "('walwriter', 'checkpointer', 'background writer')"
            ), {"db": database}).scalars())  # fmt: skip
    finally:
        engine.dispose()


def machine_busy() -> tuple[float, float]:
    """(busy, total) jiffies of the whole machine."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = values[3] + values[4]
    return sum(values) - idle, sum(values)
