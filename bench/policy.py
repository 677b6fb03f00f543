"""PCRF benchmark: Gx CCR-I/CCR-T pairs per second, and AAR → Gx RAR → RAA → AAA round trips
(p50/p99) at a fixed call rate.

    python -m bench.policy [--duration 3] [--window 64] [--calls-per-second 1000] [--db URL]

The PCRF runs in a subprocess (uvloop when importable, the garbage-collector tuning of
`openpcc run`) on a fresh SQLite file (WAL, synchronous=FULL: every answer is durable) unless
--db gives a PostgreSQL URL. This process plays the PGW: for the Gx pairs a lean raw protocol
(bench._gx_pgw; in the closed loop each answer waits for the generator's turn), for the calls
our diam node (sends the CCR-Is, answers RARs); and the P-CSCF (sends AARs and STRs). Both
report the CPU each side used per request (the PCRF's split into user and kernel time): the load
generator's must stay well below one core, or it, not the PCRF, is what limits the figures.
"""

from __future__ import annotations

import argparse
import asyncio
import ipaddress
import os
import signal
import subprocess
import sys
import tempfile
import time
from typing import Any

from bench._gx_pgw import GxPgw
from diam.constants import APP_GX, APP_RX, CMD_AA, CMD_CREDIT_CONTROL, CMD_RE_AUTH, VENDOR_3GPP
from diam.identity import LocalIdentity, PeerPolicy
from diam.message import Avp, Message
from diam.node import Node

REALM = "bench.test"
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
IMSI = "001010000000001"
POLICY = {
    "profiles": [
        {
            "name": "volte",
            "apns": [{"apn": "ims", "qci": 5, "arp": {"priority": 1},
                      "ambr": {"ul": 256_000, "dl": 256_000},
                      "predefined_rules": ["ims-signalling"]}],
        }
    ],
    "subscribers": [{"imsi": IMSI, "profile": "volte"}],
}  # fmt: skip


async def serve(url: str) -> None:
    from openpcc.app import tune_gc
    from openpcc.database import create_engine, upgrade
    from policy import provisioning
    from policy.service import Pcrf, PcrfConfig

    engine = create_engine(url)
    upgrade(engine)
    provisioning.apply(engine, provisioning.PolicyProvisioning.model_validate(POLICY))
    apps = frozenset({(APP_GX, VENDOR_3GPP), (APP_RX, VENDOR_3GPP)})
    node = Node(LocalIdentity("pcrf.bench.test", REALM, applications=apps), PeerPolicy(),
                max_in_flight=8192)  # fmt: skip
    pcrf = Pcrf(node, engine, PcrfConfig())
    await pcrf.start()
    tune_gc()  # as `openpcc run` does at start-up
    _, port = await node.listen("127.0.0.1", 0)
    print(f"PORT {port}", flush=True)
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    await stop.wait()
    await pcrf.stop()
    await node.close(0.5)


def ccr(session_id: str, kind: int, number: int, ue: int) -> Message:
    avps: list[Any] = [
        ("Session-Id", session_id),
        ("Auth-Application-Id", APP_GX),
        ("Destination-Realm", REALM),
        ("CC-Request-Type", kind),
        ("CC-Request-Number", number),
    ]
    if kind == 1:
        avps += [
            ("Subscription-Id", [("Subscription-Id-Type", 1), ("Subscription-Id-Data", IMSI)]),
            ("Framed-IP-Address", ipaddress.IPv4Address(0x0A000000 + ue).packed),
            ("Called-Station-Id", "ims"),
        ]
    return Message.request(CMD_CREDIT_CONTROL, APP_GX, avps)


def aar(session_id: str, ue: int) -> Message:
    ip = ipaddress.IPv4Address(0x0A000000 + ue)
    flows = [
        ("Flow-Number", 1),
        ("Flow-Description", f"permit out 17 from 192.0.2.10 50000 to {ip} 49152"),
        ("Flow-Description", f"permit in 17 from {ip} 49152 to 192.0.2.10 50000"),
    ]
    mcd = [
        ("Media-Component-Number", 1),
        ("Media-Sub-Component", flows),
        ("Media-Type", 0),
        ("Max-Requested-Bandwidth-UL", 41_000),
        ("Max-Requested-Bandwidth-DL", 41_000),
        ("Flow-Status", 2),
    ]
    return Message.request(CMD_AA, APP_RX, [
        ("Session-Id", session_id),
        ("Auth-Application-Id", APP_RX),
        ("Destination-Realm", REALM),
        ("Framed-IP-Address", ip.packed),
        Avp.new("Media-Component-Description", mcd),
    ])  # fmt: skip


def cpu_seconds(pid: int) -> tuple[float, float]:
    """(user, system) CPU of the PCRF process (all its threads), from /proc."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) / CLOCK_TICKS, int(fields[12]) / CLOCK_TICKS


class Meter:
    """CPU of the PCRF (user and kernel: sockets, epoll, fsync) and of this process, and the
    PCRF's run-queue wait, over one phase of the benchmark."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.start = time.perf_counter()
        self.cpu = cpu_seconds(pid)
        self.own = time.process_time()
        self.waited = runqueue_seconds(pid)

    def report(self, requests: int, unit: str) -> str:
        elapsed = time.perf_counter() - self.start
        user, system = (b - a for a, b in zip(self.cpu, cpu_seconds(self.pid), strict=True))
        cpu = user + system
        own = time.process_time() - self.own
        waited = runqueue_seconds(self.pid) - self.waited
        return (f"PCRF CPU {cpu / requests * 1e6:,.0f} µs per {unit} (kernel "
                f"{system / requests * 1e6:,.0f}; {cpu / elapsed:.0%} of a core, "
                f"{waited / elapsed:.0%} waiting for one), load generator {own / elapsed:.0%} "
                f"of a core")  # fmt: skip


def runqueue_seconds(pid: int) -> float:
    """Time the PCRF's main thread spent runnable but waiting for a CPU (other processes on a
    shared machine): when it is a large share of the interval, the figures measure the machine."""
    with open(f"/proc/{pid}/schedstat") as f:
        return int(f.read().split()[1]) / 1e9


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


async def load(port: int, duration: float, window: int, rate: int, pid: int) -> None:
    async def raa(request: Message, peer: Any) -> Message:
        return request.answer(2001)

    pgw = Node(LocalIdentity("pgw.bench.test", REALM,
                             applications=frozenset({(APP_GX, VENDOR_3GPP)})), PeerPolicy(),
               max_in_flight=8192)  # fmt: skip
    pgw.add_route(APP_GX, CMD_RE_AUTH, raa)
    rx_apps = frozenset({(APP_RX, VENDOR_3GPP)})
    pcscf = Node(LocalIdentity("pcscf.bench.test", REALM, applications=rx_apps), PeerPolicy())
    gx_peer = await pgw.connect("127.0.0.1", port)
    rx_peer = await pcscf.connect("127.0.0.1", port)

    # 1. Gx CCR-I/CCR-T pairs, `window` sessions in flight, from a lean PGW (bench._gx_pgw).
    _, gx_load = await asyncio.get_running_loop().create_connection(
        lambda: GxPgw("pgw-gx.bench.test", REALM, IMSI, window), "127.0.0.1", port
    )
    await asyncio.wait_for(gx_load.open, 5)
    meter = Meter(pid)
    gx_load.run(duration)
    await gx_load.done
    elapsed = time.perf_counter() - meter.start
    gx_load.close()
    result = gx_load.result
    assert result.failures == 0, f"{result.failures} Gx answers without Result-Code 2001"
    done = result.pairs
    print(f"gx: {done / elapsed:,.0f} CCR-I/CCR-T pairs/s = {2 * done / elapsed:,.0f} Gx "
          f"requests/s (window {window}, {elapsed:.1f} s), p50 "
          f"{percentile(result.latencies, 0.5) * 1000:.2f} ms, p99 "
          f"{percentile(result.latencies, 0.99) * 1000:.2f} ms; "
          f"{meter.report(2 * done, 'Gx request')}")  # fmt: skip

    # 2. Calls: AAR → RAR → RAA → AAA, then STR → RAR → RAA → STA, at `rate` calls/s.
    sessions = 200
    for n in range(sessions):
        await pgw.request(ccr(f"pgw.bench.test;call;{n}", 1, 0, 500_000 + n), peer=gx_peer)
    latencies: list[float] = []
    failures = 0
    tasks: list[asyncio.Task[None]] = []

    async def call(i: int) -> None:
        nonlocal failures
        sid = f"pcscf.bench.test;{i}"
        t0 = time.perf_counter()
        answer = await pcscf.request(aar(sid, 500_000 + i % sessions), peer=rx_peer)
        latencies.append(time.perf_counter() - t0)
        if answer.get("Result-Code") != 2001:
            failures += 1
        str_ = Message.request(275, APP_RX, [("Session-Id", sid), ("Auth-Application-Id", APP_RX),
                                             ("Destination-Realm", REALM),
                                             ("Termination-Cause", 1)])  # fmt: skip
        await pcscf.request(str_, peer=rx_peer)

    meter = Meter(pid)
    start = meter.start
    total = int(rate * duration)
    for i in range(total):
        target = start + i / rate
        delay = target - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(call(i)))
    await asyncio.gather(*tasks)
    elapsed = time.perf_counter() - start
    print(f"rx: {total / elapsed:,.0f} calls/s offered {rate}/s; AAR→RAR→RAA→AAA "
          f"p50 {percentile(latencies, 0.5) * 1000:.2f} ms, "
          f"p99 {percentile(latencies, 0.99) * 1000:.2f} ms, failures {failures}; "
          f"{meter.report(total, 'call (AAR+RAR+STR+RAR)')}")  # fmt: skip
    await pgw.close(0.5)
    await pcscf.close(0.5)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--duration", type=float, default=3.0)
    parser.add_argument("--window", type=int, default=64)
    parser.add_argument("--calls-per-second", type=int, default=1000)
    parser.add_argument("--db", default="")
    parser.add_argument("--serve", default="", help=argparse.SUPPRESS)
    args = parser.parse_args()
    runner = _runner()
    if args.serve:
        runner(serve(args.serve))
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        url = args.db or f"sqlite:///{tmp}/bench.db"
        server = subprocess.Popen(
            [sys.executable, "-m", "bench.policy", "--serve", url],
            stdout=subprocess.PIPE, text=True, env={**os.environ, "PYTHONWARNINGS": "ignore"},
        )  # fmt: skip
        try:
            assert server.stdout is not None
            line = server.stdout.readline()
            port = int(line.split()[1])
            runner(load(port, args.duration, args.window, args.calls_per_second, server.pid))
        finally:
            server.send_signal(signal.SIGTERM)
            server.wait(timeout=10)
    return 0


def _runner() -> Any:
    try:
        import uvloop
    except ImportError:
        return asyncio.run
    return uvloop.run


if __name__ == "__main__":
    sys.exit(main())
