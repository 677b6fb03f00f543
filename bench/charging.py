"""OCS benchmark: full Ro sessions (CCR-I, 3 × CCR-U, CCR-T) over many subscribers against
``openpcc run`` on PostgreSQL and on SQLite, every answer durable before it is sent.

    python -m bench.charging [--db sqlite|postgres|both] [--servers N] [--parallel 4,64]
                             [--duration 5] [--subscribers 2000] [--pg-url URL]

``--servers N`` starts N ``openpcc run`` processes (own Diameter port and Origin-Host each) on
the one database; the client spreads its connections, and so its sessions, over them.

Prints CCR/s, latency p50/p99, the server processes' CPU µs per CCR and, on PostgreSQL, the CPU
µs per CCR of the benchmark database's backends plus the WAL writer, checkpointer and background
writer (shared with anything else using the cluster meanwhile), and the load client's own.
Lists (``--servers 1,2 --parallel 4,16,64``) measure every combination. The client is a raw asyncio
protocol patching pre-encoded CCRs in this process, so the server is what gets measured.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import os
import shutil
import struct
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from bench._loadgen import cer_bytes
from bench._servers import (
    cpu_of,
    cpu_seconds,
    fresh_database,
    machine_busy,
    postgres_pids,
    wait_listening,
)
from diam.constants import APP_CREDIT_CONTROL, CMD_CAPABILITIES_EXCHANGE, CMD_CREDIT_CONTROL
from diam.message import Avp, Message

ROOT = Path(__file__).resolve().parent.parent
_IDS = struct.Struct(">II")
_U32 = struct.Struct(">I")
SESSION_MARK = b"SSSSSSSSSS"
MSISDN_MARK = b"9999999999"
STEPS = 5  # CCR-I, 3 × CCR-U, CCR-T
#: OCS processes by default: the most CCR/s on this 2-core machine (see README); SQLite
#: serialises writers on its file lock, so a second process there only adds waiting.
DEFAULT_SERVERS = {"postgres": 2, "sqlite": 1}
_CLIENT_INDEX = itertools.count(1)


def template(origin_host: str, request_type: int, number: int) -> tuple[bytearray, int, int]:
    """A CCR with placeholder Session-Id and MSISDN: (bytes, their offsets) for patching."""
    mscc: list[object] = [("Service-Identifier", 1000), ("Rating-Group", 100)]
    if request_type != 3:
        mscc.insert(0, Avp.new("Requested-Service-Unit", [("CC-Time", 60)]))
    if request_type != 1:
        mscc.insert(0, Avp.new("Used-Service-Unit", [("CC-Time", 60)]))
    msg = Message.request(
        CMD_CREDIT_CONTROL,
        APP_CREDIT_CONTROL,
        [
            ("Session-Id", f"{origin_host};{SESSION_MARK.decode()}"),
            ("Origin-Host", origin_host),
            ("Origin-Realm", "bench.test"),
            ("Destination-Realm", "ocs.test"),
            ("Auth-Application-Id", APP_CREDIT_CONTROL),
            ("Service-Context-Id", "32260@3gpp.org"),
            ("CC-Request-Type", request_type),
            ("CC-Request-Number", number),
            Avp.new("Subscription-Id", [("Subscription-Id-Type", 0),
                                        ("Subscription-Id-Data", MSISDN_MARK.decode())]),
            Avp.new("Multiple-Services-Credit-Control", mscc),
            Avp.new("Service-Information", [("IMS-Information", [
                ("Role-Of-Node", 0), ("Node-Functionality", 0),
                ("Called-Party-Address", "tel:+4915112345678")])]),
        ],
    )  # fmt: skip
    wire = bytearray(msg.encode())
    return wire, wire.index(SESSION_MARK), wire.index(MSISDN_MARK)


@dataclass(slots=True)
class Stats:
    latencies: list[float] = field(default_factory=list)
    answered: int = 0
    failed: int = 0
    recording: bool = False


class SessionClient(asyncio.Protocol):
    """One connection running ``parallel`` sessions back to back."""

    def __init__(self, index: int, parallel: int, subscribers: int, stats: Stats) -> None:
        self.index, self.parallel, self.subscribers, self.stats = (
            index,
            parallel,
            subscribers,
            stats,
        )
        self.origin = f"bench-{index}"
        self.templates = [template(self.origin, t, n)
                          for n, t in enumerate((1, 2, 2, 2, 3))]  # fmt: skip
        self.pending: dict[int, tuple[int, int, float]] = {}  # h2h -> (session, step, sent)
        self.next_id = (index << 24) + 1
        self.sessions = 0
        self.buffer = b""
        self.transport: asyncio.Transport | None = None
        self.open = asyncio.get_running_loop().create_future()
        self.stopping = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.transport.write(cer_bytes(self.origin))

    def start(self) -> None:
        self.transport.write(b"".join(self._new_session() for _ in range(self.parallel)))

    def _new_session(self) -> bytes:
        self.sessions += 1
        return self._request(self.index * 10_000_000 + self.sessions, 0)

    def _request(self, session: int, step: int) -> bytes:
        wire, s_at, m_at = self.templates[step]
        ident = self.next_id
        self.next_id = (ident + 1) & 0xFFFFFFFF
        _IDS.pack_into(wire, 12, ident, ident)
        wire[s_at : s_at + 10] = b"%010d" % session
        # Each connection walks the subscribers from its own offset: concurrent sessions of
        # different connections are different subscribers (as in real traffic), not one account.
        subscriber = (self.index * 7919 + session) % self.subscribers
        wire[m_at : m_at + 10] = b"%010d" % (4917000000 + subscriber)
        self.pending[ident] = (session, step, time.perf_counter())
        return bytes(wire)

    def data_received(self, data: bytes) -> None:
        buf = self.buffer + data if self.buffer else data
        pos, size, out, now = 0, len(buf), [], time.perf_counter()
        while size - pos >= 20:
            length = int.from_bytes(buf[pos + 1 : pos + 4], "big")
            if size - pos < length:
                break
            cmd = int.from_bytes(buf[pos + 5 : pos + 8], "big")
            if cmd == CMD_CAPABILITIES_EXCHANGE:
                self.open.set_result(None)
            elif cmd == CMD_CREDIT_CONTROL:
                h2h = _U32.unpack_from(buf, pos + 12)[0]
                session, step, sent = self.pending.pop(h2h)
                if self.stats.recording:
                    self.stats.latencies.append(now - sent)
                    self.stats.answered += 1
                    if (
                        buf[pos + 4] & 0x20
                        or b"\x00\x00\x01\x0c\x40\x00\x00\x0c\x00\x00\x07\xd1"
                        not in buf[pos : pos + length]
                    ):  # Result-Code 2001
                        self.stats.failed += 1
                if not self.stopping:
                    nxt = step + 1
                    out.append(self._request(session, nxt) if nxt < STEPS else self._new_session())
            pos += length
        self.buffer = buf[pos:]
        if out:
            self.transport.write(b"".join(out))


def provisioning_file(path: Path, subscribers: int) -> None:
    spec = {
        "plans": [{"name": "bench", "tariff": "OpenPCC Demo Prepaid"}],
        "accounts": [{"name": f"a{n}", "currency": "EUR",
                      "balances": [{"name": "main", "amount": 10**9}]}
                     for n in range(subscribers)],
        "subscribers": [{"name": f"s{n}", "account": f"a{n}", "plan": "bench",
                         "msisdn": [f"{4917000000 + n:010d}"]} for n in range(subscribers)],
    }  # fmt: skip
    path.write_text(yaml.safe_dump(spec))


def analyze(url: str) -> None:
    """Table statistics as autovacuum keeps them in a running system (it would take a minute
    or more to get to a database this young). Without them the generic plans the prepared
    statements settle on while ro_sessions and ccr_outcomes are a few pages are sequential
    scans, kept as the tables grow until an ANALYZE invalidates them."""
    import sqlalchemy as sa

    engine = sa.create_engine(url, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            conn.exec_driver_sql("ANALYZE")
    finally:
        engine.dispose()


async def measure(
    ports: list[int], pids: list[int], args: argparse.Namespace, parallel: int,
    pg_url: str | None = None,
) -> dict[str, float]:  # fmt: skip
    """Run sessions over ``ports`` (connection i to server i mod N, as a CTF spreads sessions
    over the OCS peers of a realm) and measure one window."""
    loop = asyncio.get_running_loop()
    stats = Stats()
    clients = []
    for i in range(max(args.connections, len(ports))):
        index = next(_CLIENT_INDEX)  # Session-Ids stay unique over every measurement
        _, client = await loop.create_connection(
            lambda index=index: SessionClient(index, parallel, args.subscribers, stats),
            "127.0.0.1", ports[i % len(ports)],
        )  # fmt: skip
        await asyncio.wait_for(client.open, 10)
        clients.append(client)
    for client in clients:
        client.start()
    await asyncio.sleep(args.warmup)
    if pg_url is not None:
        await asyncio.to_thread(analyze, pg_url)
    pg_pids = postgres_pids(pg_url, "bench_charging")
    pg0, me0 = cpu_of(pg_pids), cpu_seconds(os.getpid())
    cpu0, busy0, t0 = cpu_of(pids), machine_busy(), time.perf_counter()
    stats.recording = True
    await asyncio.sleep(args.duration)
    stats.recording = False
    elapsed, cpu1, busy1 = time.perf_counter() - t0, cpu_of(pids), machine_busy()
    pg1, me1 = cpu_of(pg_pids), cpu_seconds(os.getpid())
    for client in clients:
        client.stopping = True
    await asyncio.sleep(0.5)
    for client in clients:
        client.transport.close()
    lat = sorted(stats.latencies)
    n = max(stats.answered, 1)
    return {
        "in_flight": parallel * len(clients),
        "ccr_per_s": stats.answered / elapsed,
        "p50_ms": lat[len(lat) // 2] * 1000 if lat else 0.0,
        "p99_ms": lat[int(len(lat) * 0.99)] * 1000 if lat else 0.0,
        "cpu_us_per_ccr": (cpu1 - cpu0) / n * 1e6,
        "pg_us_per_ccr": (pg1 - pg0) / n * 1e6,
        "client_us_per_ccr": (me1 - me0) / n * 1e6,
        "machine_busy": (busy1[0] - busy0[0]) / max(busy1[1] - busy0[1], 1),
        "failed": stats.failed,
    }


def run_config(kind: str, servers: int, args: argparse.Namespace,
               work: Path) -> list[dict[str, float]]:  # fmt: skip
    """Start ``servers`` OCS processes on a fresh database, then measure each concurrency."""
    if kind == "postgres":
        url = pg_url = fresh_database("bench_charging", args.pg_url)
    else:
        (work / "bench.db").unlink(missing_ok=True)
        url, pg_url = f"sqlite:///{work / 'bench.db'}", None
    provisioning = work / f"provisioning-{args.subscribers}.yaml"
    if not provisioning.exists():
        provisioning_file(provisioning, args.subscribers)
    ports = [args.port + i for i in range(servers)]
    procs: list[subprocess.Popen[bytes]] = []
    logs = []
    try:
        for i, port in enumerate(ports):
            # The first process migrates and provisions; the others start once it listens.
            env = dict(os.environ, OPENPCC_DATABASE_URL=url, OPENPCC_DIAMETER_HOST="127.0.0.1",
                       OPENPCC_DIAMETER_PORT=str(port), OPENPCC_DIAMETER_APPLICATIONS="ro",
                       OPENPCC_DIAMETER_ORIGIN_HOST=f"ocs{i + 1}.ocs.test",
                       OPENPCC_DIAMETER_ORIGIN_REALM="ocs.test",
                       OPENPCC_PROVISIONING=str(provisioning) if i == 0 else "",
                       OPENPCC_CDR_SINK="off",
                       OPENPCC_CHARGING_TARIFFS=str(ROOT / "examples/tariff.yaml"))  # fmt: skip
            log_path = work / f"{kind}-{i}.log"
            logs.append(open(log_path, "wb"))  # noqa: SIM115
            procs.append(subprocess.Popen(
                [sys.executable, "-m", "openpcc.cli", "run", "--log-level", "ERROR"],
                cwd=ROOT, env=env, stdout=logs[-1], stderr=logs[-1],
            ))  # fmt: skip
            wait_listening(port, procs[-1], log_path)
        pids = [p.pid for p in procs]
        return [asyncio.run(measure(ports, pids, args, parallel, pg_url))
                for parallel in args.parallel]  # fmt: skip
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            proc.wait(30)
        for log in logs:
            log.close()


def _ints(text: str) -> list[int]:
    return [int(v) for v in text.split(",") if v.strip()]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--db", choices=["sqlite", "postgres", "both"], default="both")
    parser.add_argument(
        "--servers",
        type=_ints,
        default=None,
        help="OCS processes on the one database; a list runs each (default: 2 on PostgreSQL, "
        "1 on SQLite)",
    )
    parser.add_argument("--duration", type=float, default=5.0)
    parser.add_argument("--warmup", type=float, default=1.5)
    parser.add_argument("--subscribers", type=int, default=2000)
    parser.add_argument(
        "--connections", type=int, default=4, help="client connections, spread over the servers"
    )
    parser.add_argument(
        "--parallel",
        type=_ints,
        default=[4, 64],
        help="sessions in flight per connection; a list measures each (default: a latency point, "
        "16 in flight, and a throughput point, 256)",
    )
    parser.add_argument("--port", type=int, default=13869)
    parser.add_argument(
        "--pg-url",
        default=os.environ.get("OPENPCC_BENCH_PG_URL"),
        help="a running PostgreSQL server (default: scripts/postgres-local.sh)",
    )
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-charging-"))
    try:
        kinds = ["postgres", "sqlite"] if args.db == "both" else [args.db]
        print(f"sessions: CCR-I, 3 × CCR-U, CCR-T; {args.subscribers} subscribers, "
              f"{args.connections} client connections; CPU µs per CCR")  # fmt: skip
        for kind in kinds:
            for servers in args.servers or [DEFAULT_SERVERS[kind]]:
                for r in run_config(kind, servers, args, work):
                    print(
                        f"{kind:8} servers {servers}  in flight {r['in_flight']:4.0f}  "
                        f"{r['ccr_per_s']:6.0f} CCR/s  p50 {r['p50_ms']:6.1f} ms  "
                        f"p99 {r['p99_ms']:6.1f} ms  CPU server {r['cpu_us_per_ccr']:4.0f}"
                        + (f" PG {r['pg_us_per_ccr']:4.0f}" if kind == "postgres" else "")
                        + f" client {r['client_us_per_ccr']:3.0f}  "
                        f"busy {r['machine_busy']:4.0%}  non-2001 {r['failed']}",
                        flush=True,
                    )
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
