"""Management API benchmark: balance lookups and top-ups against ``openpcc run`` on PostgreSQL,
first alone, then while a Ro charging load runs (full sessions CCR-I, 3 × CCR-U, CCR-T).

    python -m bench.api [--lookups 500] [--topups 50] [--ccr 1000] [--duration 8]

Open-loop load at fixed rates (latency counted from each request's scheduled time, so a stalled
server cannot hide behind a slow client), HTTP/1.1 keep-alive over raw sockets, and the CCR load
in its own process. Prints achieved rates and p50/p99 per kind. Goal: balance lookup p99 <= 20 ms
at 500 req/s alongside 1,000 CCR/s.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing as mp
import os
import subprocess
import sys
import tempfile
import time
from collections import deque
from pathlib import Path
from typing import Any

from api.auth import generate_key, hash_key
from bench._loadgen import cer_bytes
from bench._servers import free_port, fresh_database, wait_listening
from bench.charging import STEPS, provisioning_file, template
from diam.constants import CMD_CAPABILITIES_EXCHANGE, CMD_CREDIT_CONTROL, CMD_RE_AUTH
from diam.message import Message

ROOT = Path(__file__).resolve().parent.parent
TICK = 0.005


def _pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * q))] * 1000


# -- HTTP load ---------------------------------------------------------------------------------


class HttpConnection:
    """One keep-alive HTTP/1.1 connection: one request at a time."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    async def request(self, raw: bytes) -> int:
        self.writer.write(raw)
        head = await self.reader.readuntil(b"\r\n\r\n")
        status = int(head[9:12])
        length = 0
        for line in head.split(b"\r\n"):
            if line[:15].lower() == b"content-length:":
                length = int(line[15:])
        await self.reader.readexactly(length)
        return status


def _raw(method: str, path: str, key: str, body: dict[str, Any] | None = None) -> bytes:
    data = json.dumps(body).encode() if body is not None else b""
    head = (
        f"{method} {path} HTTP/1.1\r\nHost: bench\r\nAuthorization: Bearer {key}\r\n"
        f"Content-Length: {len(data)}\r\n"
        + ("Content-Type: application/json\r\n" if body is not None else "")
        + "\r\n"
    )
    return head.encode() + data


async def http_load(
    port: int, key: str, rates: dict[str, float], duration: float, accounts: int
) -> dict[str, dict[str, float]]:
    """Fixed-rate open loop per kind; a request waits for a free connection (counted)."""
    idle: deque[HttpConnection] = deque()
    for _ in range(48):
        idle.append(HttpConnection(*await asyncio.open_connection("127.0.0.1", port)))
    available = asyncio.Event()
    available.set()
    lat: dict[str, list[float]] = {k: [] for k in rates}
    errors: dict[str, int] = dict.fromkeys(rates, 0)
    tasks: set[asyncio.Task[None]] = set()
    counter = 0

    async def one(kind: str, scheduled: float, raw: bytes) -> None:
        while not idle:
            available.clear()
            await available.wait()
        conn = idle.popleft()
        try:
            status = await conn.request(raw)
        except (OSError, asyncio.IncompleteReadError):
            errors[kind] += 1
            return  # the connection is gone: not returned to the pool
        finally:
            available.set()
        idle.append(conn)
        lat[kind].append(time.perf_counter() - scheduled)
        if status != 200:
            errors[kind] += 1

    start = time.perf_counter()
    sent = dict.fromkeys(rates, 0)
    while (now := time.perf_counter()) - start < duration:
        for kind, rate in rates.items():
            due = int((now - start) * rate)
            while sent[kind] < due:
                sent[kind] += 1
                counter += 1
                account = f"a{counter % accounts}"
                scheduled = start + sent[kind] / rate
                if kind == "lookup":
                    raw = _raw("GET", f"/api/v1/accounts/{account}", key)
                else:
                    raw = _raw(
                        "POST",
                        f"/api/v1/accounts/{account}/topups",
                        key,
                        {"amount": 100, "reason": "bench"},
                    )
                task = asyncio.create_task(one(kind, scheduled, raw))
                tasks.add(task)
                task.add_done_callback(tasks.discard)
        await asyncio.sleep(TICK)
    elapsed = time.perf_counter() - start
    if tasks:
        await asyncio.wait(tasks, timeout=30)
    for conn in idle:
        conn.writer.close()
    return {
        kind: {
            "per_s": len(v) / elapsed,
            "p50_ms": _pct(v, 0.5),
            "p99_ms": _pct(v, 0.99),
            "errors": errors[kind],
        }
        for kind, v in lat.items()
    }


# -- CCR load (own process) --------------------------------------------------------------------


class PacedRo(asyncio.Protocol):
    """Full Ro sessions over one connection; a request goes out only when the pacer allows."""

    def __init__(self, index: int, subscribers: int) -> None:
        self.origin, self.index, self.subscribers = f"bench-api-{index}", index, subscribers
        self.templates = [template(self.origin, t, n) for n, t in enumerate((1, 2, 2, 2, 3))]
        self.ready: deque[tuple[int, int]] = deque()
        self.pending: dict[int, tuple[int, int, float]] = {}
        self.sessions, self.next_id, self.buffer = 0, (index << 24) + 1, b""
        self.latencies: list[float] = []
        self.failed = 0
        self.open = asyncio.get_running_loop().create_future()
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.transport.write(cer_bytes(self.origin))

    def send(self, count: int) -> None:
        out = []
        for _ in range(count):
            if self.ready:
                session, step = self.ready.popleft()
            else:
                self.sessions += 1
                session, step = self.index * 10_000_000 + self.sessions, 0
            wire, s_at, m_at = self.templates[step]
            ident = self.next_id
            self.next_id = (ident + 1) & 0xFFFFFFFF
            wire[12:20] = ident.to_bytes(4, "big") * 2
            wire[s_at : s_at + 10] = b"%010d" % session
            wire[m_at : m_at + 10] = b"%010d" % (4917000000 + session % self.subscribers)
            self.pending[ident] = (session, step, time.perf_counter())
            out.append(bytes(wire))
        if out and self.transport is not None:
            self.transport.write(b"".join(out))

    def data_received(self, data: bytes) -> None:
        buf = self.buffer + data if self.buffer else data
        pos, now = 0, time.perf_counter()
        while len(buf) - pos >= 20:
            length = int.from_bytes(buf[pos + 1 : pos + 4], "big")
            if len(buf) - pos < length:
                break
            cmd = int.from_bytes(buf[pos + 5 : pos + 8], "big")
            if cmd == CMD_CAPABILITIES_EXCHANGE:
                self.open.set_result(None)
            elif cmd == CMD_RE_AUTH and buf[pos + 4] & 0x80:  # after a top-up: RAA as a CSCF
                rar = Message.decode(buf[pos : pos + length])
                raa = rar.answer(2001, ("Origin-Host", self.origin), ("Origin-Realm", "bench.test"))
                self.transport.write(raa.encode())
            elif cmd == CMD_CREDIT_CONTROL:
                h2h = int.from_bytes(buf[pos + 12 : pos + 16], "big")
                session, step, sent = self.pending.pop(h2h)
                self.latencies.append(now - sent)
                if (
                    b"\x00\x00\x01\x0c\x40\x00\x00\x0c\x00\x00\x07\xd1"
                    not in buf[pos : pos + length]
                ):
                    self.failed += 1
                if step + 1 < STEPS:
                    self.ready.append((session, step + 1))
            pos += length
        self.buffer = buf[pos:]


async def ccr_load(port: int, rate: float, duration: float, subscribers: int) -> dict[str, float]:
    loop = asyncio.get_running_loop()
    clients = []
    for i in range(4):
        _, client = await loop.create_connection(
            lambda i=i: PacedRo(i + 1, subscribers), "127.0.0.1", port
        )
        await asyncio.wait_for(client.open, 10)
        clients.append(client)
    start, sent = time.perf_counter(), 0
    while (now := time.perf_counter()) - start < duration:
        due = int((now - start) * rate)
        while sent < due:
            clients[sent % len(clients)].send(1)
            sent += 1
        await asyncio.sleep(TICK)
    elapsed = time.perf_counter() - start
    await asyncio.sleep(1.0)
    lat = [x for c in clients for x in c.latencies]
    for c in clients:
        c.transport.close()
    return {
        "per_s": len(lat) / elapsed,
        "p50_ms": _pct(lat, 0.5),
        "p99_ms": _pct(lat, 0.99),
        "errors": sum(c.failed for c in clients),
    }


def _ccr_process(port: int, rate: float, duration: float, subscribers: int, out: Any) -> None:
    out.put(asyncio.run(ccr_load(port, rate, duration, subscribers)))


# -- orchestration -----------------------------------------------------------------------------


def _print(title: str, results: dict[str, dict[str, float]]) -> None:
    print(f"\n{title}")
    print(f"  {'load':<16}{'achieved/s':>12}{'p50 ms':>10}{'p99 ms':>10}{'errors':>8}")
    for kind, r in results.items():
        print(
            f"  {kind:<16}{r['per_s']:>12.0f}{r['p50_ms']:>10.2f}{r['p99_ms']:>10.2f}"
            f"{int(r['errors']):>8}"
        )


def _start(env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "openpcc.cli", "run", "--log-level", "ERROR"],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=out,
        )


def _cpu(pid: int) -> tuple[float, float]:
    """User and kernel CPU seconds of a process so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    tick = os.sysconf("SC_CLK_TCK")
    return int(fields[11]) / tick, int(fields[12]) / tick


def _spy(pid: int, out: Path, duration: float) -> subprocess.Popen[bytes]:
    """py-spy on the server for the measured phase: GIL-holding samples only, raw stacks."""
    exe = str(Path(sys.executable).parent / "py-spy")
    options = ["-d", str(int(duration)), "-r", "250", "--gil", "--nonblocking", "-f", "raw"]
    spy = subprocess.Popen(
        [exe, "record", "-p", str(pid), *options, "-o", str(out)],
        stdout=subprocess.DEVNULL,
        stderr=out.with_suffix(".err").open("wb"),
    )
    time.sleep(0.5)  # attached
    return spy


def _gil_split(raw: Path, duration: float) -> str:
    """How busy the process's GIL was and who held it, from py-spy's ``--gil`` raw samples."""
    parts = dict.fromkeys(("API", "Diameter/OCS", "other on the loop", "worker threads"), 0)
    for line in raw.read_text().splitlines():
        stack, _, n = line.rpartition(" ")
        if not n.isdigit():
            continue  # a stack py-spy split over lines
        # The API's writes run in worker threads under api/ frames, other threads are the
        # OCS's group commit; on the loop, SQL is the API's reads (greenlets rooted at the
        # route's function, or psycopg resuming a lookup's query: the OCS does its SQL in its
        # threads).
        thread = stack.startswith("Thread._bootstrap")
        if any(m in stack for m in ("uvicorn/", "fastapi/", "starlette/", "(api/")) or (
            not thread and ("(sqlalchemy/" in stack or "(psycopg/" in stack)
        ):
            part = "API"
        elif thread:
            part = "worker threads"
        elif "(diam/" in stack or "(charging/" in stack:
            part = "Diameter/OCS"
        else:
            part = "other on the loop"
        parts[part] += int(n)
    total = sum(parts.values())
    shares = ", ".join(f"{k} {v / max(total, 1):.0%}" for k, v in parts.items())
    return f"held {total / (250 * int(duration)):.0%} of the time: {shares}"


def _loaded_phase(
    args: argparse.Namespace,
    key: str,
    api_port: int,
    diameter_port: int,
    api_pid: int,
    phase: str,
) -> tuple[dict[str, dict[str, float]], dict[str, float]]:
    """HTTP load on ``api_port`` while the Ro load runs against ``diameter_port``."""
    rates = {"lookup": args.lookups, "topup": args.topups}
    queue: Any = mp.get_context("fork").Queue()
    ccr = mp.get_context("fork").Process(
        target=_ccr_process,
        args=(diameter_port, args.ccr, args.duration + 2.0, args.subscribers, queue),
    )
    ccr.start()
    time.sleep(1.5)  # the charging load ramps up first
    spy = None
    if args.profile:
        out = args.profile.with_name(f"{args.profile.stem}-{phase}{args.profile.suffix}")
        spy = _spy(api_pid, out, args.duration)
    loaded = asyncio.run(http_load(api_port, key, rates, args.duration, args.subscribers))
    if spy is not None:
        spy.wait(30)
        print(f"  GIL ({phase}): {_gil_split(out, args.duration)}")
    result = queue.get(timeout=60)
    ccr.join(30)
    return loaded, result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--lookups", type=float, default=500, help="balance lookups/s")
    parser.add_argument("--topups", type=float, default=50, help="top-ups/s")
    parser.add_argument("--ccr", type=float, default=1000, help="CCR/s of the charging load")
    parser.add_argument("--duration", type=float, default=5.0, help="seconds per phase")
    parser.add_argument("--subscribers", type=int, default=1000)
    parser.add_argument(
        "--topology",
        choices=["embedded", "separate", "both", "none"],
        default="both",
        help="API in the charging node's process, on a second node sharing PostgreSQL, both, or "
        "none (the API-alone phase only)",
    )
    parser.add_argument(
        "--profile",
        type=Path,
        help="py-spy (--gil, raw format) the API's process during each measured phase into this "
        "file (the loaded phases into NAME-embedded.raw, NAME-separate.raw)",
    )
    args = parser.parse_args()

    key = generate_key()
    api_port, diameter_port, mgmt_api, mgmt_diameter = (free_port() for _ in range(4))
    with tempfile.TemporaryDirectory(prefix="bench-api-") as tmp:
        work = Path(tmp)
        provisioning = work / "provisioning.yaml"
        provisioning_file(provisioning, args.subscribers)
        env = dict(
            os.environ,
            OPENPCC_DATABASE_URL=fresh_database("bench_api"),
            OPENPCC_DIAMETER_HOST="127.0.0.1",
            OPENPCC_DIAMETER_PORT=str(diameter_port),
            OPENPCC_DIAMETER_APPLICATIONS="ro",
            OPENPCC_PROVISIONING=str(provisioning),
            OPENPCC_CDR_SINK="off",
            OPENPCC_CHARGING_TARIFFS=str(ROOT / "examples/tariff.yaml"),
            OPENPCC_API_PORT=str(api_port),
            OPENPCC_API_KEYS=json.dumps(
                [{"name": "bench", "role": "operator", "sha256": hash_key(key)}]
            ),
        )
        servers = [_start(env, work / "charging.log")]
        try:
            wait_listening(api_port, servers[0], work / "charging.log")
            wait_listening(diameter_port, servers[0], work / "charging.log")
            rates = {"lookup": args.lookups, "topup": args.topups}
            asyncio.run(http_load(api_port, key, rates, 1.0, args.subscribers))  # warm-up
            spy = _spy(servers[0].pid, args.profile, args.duration) if args.profile else None
            user0, kernel0 = _cpu(servers[0].pid)
            alone = asyncio.run(http_load(api_port, key, rates, args.duration, args.subscribers))
            user1, kernel1 = _cpu(servers[0].pid)
            if spy is not None:
                spy.wait(30)
                print(f"  GIL (API alone): {_gil_split(args.profile, args.duration)}")
            _print("API alone (PostgreSQL)", alone)
            requests = sum(r["per_s"] for r in alone.values()) * args.duration
            user, kernel = (
                (b - a) / max(requests, 1) * 1e6 for a, b in ((user0, user1), (kernel0, kernel1))
            )
            per_request = user + kernel
            print(
                f"  server CPU per request: {per_request:.0f} µs (user {user:.0f}, kernel "
                f"{kernel:.0f}; one core serves ~{1e6 / per_request:.0f} requests/s of this mix)"
            )
            offered = f"{args.ccr:.0f} CCR/s offered"
            results = []
            if args.topology in ("embedded", "both"):
                loaded, ccr = _loaded_phase(
                    args, key, api_port, diameter_port, servers[0].pid, "embedded"
                )
                _print(f"API in the charging node's process, {offered}", {**loaded, "ccr": ccr})
                results.append(("embedded", loaded, ccr))
            if args.topology in ("separate", "both"):
                # A management node: same database, its Diameter listener serves no charging.
                mgmt = dict(
                    env,
                    OPENPCC_API_PORT=str(mgmt_api),
                    OPENPCC_PROVISIONING="",
                    OPENPCC_DIAMETER_PORT=str(mgmt_diameter),
                    OPENPCC_DIAMETER_APPLICATIONS="rx",
                )
                servers.append(_start(mgmt, work / "management.log"))
                wait_listening(mgmt_api, servers[-1], work / "management.log")
                asyncio.run(http_load(mgmt_api, key, rates, 1.0, args.subscribers))
                loaded, ccr = _loaded_phase(
                    args, key, mgmt_api, diameter_port, servers[-1].pid, "separate"
                )
                _print(
                    f"API on a second node (shared PostgreSQL), {offered}", {**loaded, "ccr": ccr}
                )
                results.append(("separate", loaded, ccr))
            for name, loaded, ccr in results:
                met = loaded["lookup"]["p99_ms"] <= 20 and ccr["per_s"] >= 0.95 * args.ccr
                print(
                    f"goal ({name}: lookup p99 <= 20 ms at {args.lookups:.0f}/s alongside "
                    f"{args.ccr:.0f} CCR/s): {'met' if met else 'NOT met'}"
                )
            print(f"load average during the run: {os.getloadavg()[0]:.1f} ({os.cpu_count()} CPUs)")
        finally:
            for server in servers:
                server.terminate()
                server.wait(30)
    return 0


if __name__ == "__main__":
    sys.exit(main())
