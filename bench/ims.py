"""Call attempts per second through the whole chain and the setup delay OpenPCC adds.

SIPp UAC → IMS core (P-CSCF/S-CSCF) → OCS (Ro CCR-I) → forward → SIPp UAS answers → PCRF (Rx AAR →
Gx RAR → PGW simulator installs the QCI 1 bearer → AAA) → 200 to the UAC; BYE → STR (bearer
removed) and CCR-T. The IMS core runs in this process; the PCRF and OCS too (``--topology
single``: their own Diameter listeners on loopback) or each in its own ``openpcc run`` process
(``--topology split``, the scale-out shape), over one database (SQLite WAL + group commit, or
``--db postgres``: the project's private PostgreSQL). The PGW simulator runs in another Python
process (``--pcef inproc`` keeps it here), SIPp UAC and UAS in two more. The setup delay is
SIPp's INVITE→200 response time; the UAS answers at once, so it is what the chain adds. With
``--topology split`` the PCRF and OCS processes take other ``OPENPCC_*`` settings from this
environment (e.g. ``OPENPCC_CHARGING_GROUP_COMMIT_MS=3``).

Calls go between ``--ues`` caller/callee pairs (default 50), each UE with its own account, its own
IP-CAN session at the PGW simulator and its own media address in the SDP (bench/sipp/*_many.xml),
as traffic from many subscribers is. With one pair every call's Rx AAR/STR queues behind the
others' Gx RAR on the same two IP-CAN sessions (the PCRF serializes RARs per session), which
measures that queue, not the chain: ``--ues 1`` shows it.

CPU per call is measured per process (this one: all threads; PCRF/OCS processes; the PGW
process; both SIPps).
``--profile`` samples this process with py-spy during the load and charges each sample to a
component (bench._profile); py-spy costs CPU itself, so take throughput from a run without it.

python -m bench.ims [--rate 50] [--calls 150] [--hold-ms 500] [--pcef process|inproc] [--profile]
                    [--topology single|split] [--db sqlite|postgres] [--ues 50]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import shutil
import statistics
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

from bench._ims_servers import InProcess, ServerProcesses
from bench._profile import Sampler
from bench._servers import cpu_of, free_port, fresh_database, machine_busy, postgres_pids
from bench.node import run_loop
from charging.provisioning import apply as apply_charging
from diam.message import Message
from diam.metrics import Metrics
from ims.ladder import diameter_label
from ims.pcef import PcefSimulator
from ims.proxy import CoreConfig
from ims.service import DiameterPeer, ImsConfig, ImsService
from ims.sip.headers import Headers
from ims.sip.message import Request, new_branch, new_tag
from ims.sip.transaction import Target
from ims.sip.transport import UDP_BUFFER_BYTES
from ims.sip.uri import parse_uri
from openpcc.app import GC_MIDDLE_THRESHOLD_SIP, GC_YOUNG_THRESHOLD_SIP, tune_gc
from openpcc.database import create_engine, upgrade
from policy import provisioning as policy_provisioning
from rating.loader import load_plan
from schemas.provisioning import ProvisioningFile

ROOT = Path(__file__).resolve().parents[1]
SCENARIOS = ROOT / "bench" / "sipp"
DOMAIN = "ims.test"
MAX_UES = 156  # callee media addresses 10.2.0.100-255 (bench/sipp/uas_many.xml)


def ue_pairs(count: int) -> list[tuple[tuple[str, str, str], tuple[str, str, str]]]:
    """(caller, callee) UEs as (IMSI, MSISDN, media/UE IP); pair i: caller i calls callee i.
    Callees are DE_MOBILE numbers (+491511234NNN) answering from 10.2.0.NNN."""
    return [
        (
            (f"00101000{1000000 + i}", f"4917000{10000 + i}", f"10.1.{i // 200}.{i % 200 + 1}"),
            (f"00101000{2000000 + i}", f"491511234{100 + i}", f"10.2.0.{100 + i}"),
        )
        for i in range(count)
    ]


async def _register(core: ImsService, user: str, contact: str) -> None:
    headers = Headers()
    headers.add("Via", core.core.endpoint.via("UDP", new_branch()))
    headers.add("From", f"<sip:{user}@{DOMAIN}>;tag={new_tag()}")
    headers.add("To", f"<sip:{user}@{DOMAIN}>")
    headers.add("Call-ID", f"bench-{user}")
    headers.add("CSeq", "1 REGISTER")
    headers.add("Contact", f"<{contact}>")
    headers.add("Expires", "3600")
    request = Request("REGISTER", parse_uri(f"sip:{DOMAIN}"), headers)
    assert core.core.registrar is not None
    response = core.core.registrar.handle(request, Target("UDP", "127.0.0.1", 5060))
    assert response.status == 200, response


class _PcefProcess:
    """bench._ims_pcef in a child process: attach, answer RARs, report CPU and bearers."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc

    @classmethod
    async def start(
        cls, pcrf_port: int, uvloop: bool, ues: list[tuple[str, str, str]]
    ) -> _PcefProcess:
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "bench._ims_pcef",
            "--uvloop" if uvloop else "--asyncio",
            str(pcrf_port),
            *(":".join(ue) for ue in ues),
            cwd=ROOT,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.DEVNULL,
        )
        self = cls(proc)
        if await self._line() != "ready":
            raise RuntimeError("PGW simulator process did not start")
        return self

    async def _line(self) -> str:
        assert self.proc.stdout is not None
        return (await asyncio.wait_for(self.proc.stdout.readline(), 30)).decode().strip()

    async def cpu(self) -> float:
        assert self.proc.stdin is not None
        self.proc.stdin.write(b"cpu\n")
        return float(await self._line())

    async def finish(self) -> dict[str, Any]:
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        result: dict[str, Any] = json.loads(await self._line())
        await self.proc.wait()
        return result


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


async def run(
    rate: int,
    calls: int,
    hold_ms: int,
    workdir: Path,
    *,
    pcef_process: bool,
    profile: bool,
    uvloop: bool,
    split: bool,
    database_url: str,
    ues: int = 1,
) -> dict[str, Any]:
    pairs = ue_pairs(ues)
    callers = [caller for caller, _ in pairs]
    everyone = [ue for pair in pairs for ue in pair]
    engine = create_engine(database_url)
    upgrade(engine)
    plan = load_plan(str(ROOT / "examples" / "tariff.yaml"))
    apply_charging(
        engine,
        ProvisioningFile.model_validate(
            {
                "plans": [{"name": "prepaid", "tariff": plan.name}],
                "accounts": [
                    {
                        "name": f"caller{i}",
                        "currency": "EUR",
                        "balances": [{"name": "main", "amount": 10**9}],
                    }
                    for i in range(ues)
                ],
                "subscribers": [
                    {
                        "name": f"caller{i}",
                        "account": f"caller{i}",
                        "plan": "prepaid",
                        "msisdn": [msisdn],
                    }
                    for i, (_, msisdn, _) in enumerate(callers)
                ],
            }
        ),
    )
    policy_provisioning.apply(
        engine,
        policy_provisioning.PolicyProvisioning.model_validate(
            {
                "profiles": [
                    {
                        "name": "volte",
                        "apns": [
                            {
                                "apn": "ims",
                                "qci": 5,
                                "arp": {"priority": 1},
                                "ambr": {"ul": 256_000, "dl": 256_000},
                            }
                        ],
                    }
                ],
                "subscribers": [
                    {"imsi": imsi, "msisdn": msisdn, "profile": "volte"}
                    for imsi, msisdn, _ in everyone
                ],
            }
        ),
    )
    engine.dispose()
    servers: InProcess | ServerProcesses = (
        ServerProcesses(database_url, workdir) if split else InProcess(database_url, plan)
    )
    pcrf_port, ocs_port = await servers.start()
    try:
        ims = ImsService(
            ImsConfig(
                core=CoreConfig(domain=DOMAIN, host="127.0.0.1", port=0),
                origin_host="cscf.bench",
                origin_realm="bench",
                pcrf=DiameterPeer("127.0.0.1", pcrf_port, "bench"),
                ocs=DiameterPeer("127.0.0.1", ocs_port, "bench"),
            )
        )
        await ims.start()
        pcef: PcefSimulator | None = None
        child: _PcefProcess | None = None
        sampler = Sampler(workdir / "py-spy.txt") if profile else None
        try:
            if pcef_process:
                child = await _PcefProcess.start(pcrf_port, uvloop, everyone)
            else:
                pcef = PcefSimulator("pgw.bench", "bench", "127.0.0.1", pcrf_port, "bench")
                for imsi, msisdn, ip in everyone:
                    await pcef.attach(imsi, msisdn, ip)
            uas_port = free_port("127.0.0.2", udp=True)
            for (_, caller, _), (_, callee, _) in pairs:
                await _register(ims, f"+{callee}", f"sip:+{callee}@127.0.0.2:{uas_port}")
                await _register(ims, f"+{caller}", f"sip:+{caller}@127.0.0.1:5999")
            calls_file = workdir / "calls.csv"  # SIPp injection file: caller;callee;caller's IP
            calls_file.write_text(
                "SEQUENTIAL\n" + "".join(f"+{a[1]};+{b[1]};{a[2]}\n" for a, b in pairs)
            )
            # as `openpcc run` with the IMS core, once started
            tune_gc(GC_YOUNG_THRESHOLD_SIP, GC_MIDDLE_THRESHOLD_SIP)
            core = f"127.0.0.1:{ims.core.port}"
            timeout = str(int(calls / rate + hold_ms / 1000 + 30))
            common = [
                "-t",
                "u1",
                "-m",
                str(calls),
                "-timeout",
                f"{timeout}s",
                "-nostdin",
                "-buff_size",  # as the IMS core's UDP socket (ims.sip.transport)
                str(UDP_BUFFER_BYTES),
            ]
            uas = await asyncio.create_subprocess_exec(
                "sipp",
                core,
                "-sf",
                str(SCENARIOS / "uas_many.xml"),
                "-i",
                "127.0.0.2",
                "-mi",
                "127.0.0.2",
                "-p",
                str(uas_port),
                *common,
                cwd=workdir,
                stdout=asyncio.subprocess.DEVNULL,
                stderr=asyncio.subprocess.DEVNULL,
            )
            await asyncio.sleep(0.3)
            if sampler is not None:
                await sampler.start()
            postgres = database_url if database_url.startswith("postgresql") else None
            pg_pids = await asyncio.to_thread(postgres_pids, postgres, "bench_ims")
            pg_started, busy_started = cpu_of(pg_pids), machine_busy()
            started = time.monotonic()
            cpu_started = time.process_time()
            kernel_started = os.times().system
            sipp_started = _children_cpu()
            pcef_started = await child.cpu() if child is not None else 0.0
            servers_started = servers.cpu()
            load_started = os.getloadavg()[0]
            uac = await asyncio.create_subprocess_exec(
                "sipp",
                core,
                "-sf",
                str(SCENARIOS / "uac_many.xml"),
                "-i",
                "127.0.0.1",
                "-mi",
                "127.0.0.1",
                "-p",
                str(free_port("127.0.0.1", udp=True)),
                "-r",
                str(rate),
                "-l",
                str(rate * 4),
                "-d",
                str(hold_ms),
                "-inf",
                str(calls_file),
                "-trace_rtt",
                "-rtt_freq",
                "1",
                "-trace_err",
                *common,
                cwd=workdir,
                stdout=asyncio.subprocess.DEVNULL,
                stderr=asyncio.subprocess.DEVNULL,
            )
            await uac.wait()
            elapsed = time.monotonic() - started
            cpu = time.process_time() - cpu_started
            kernel = os.times().system - kernel_started
            pcef_cpu = await child.cpu() - pcef_started if child is not None else 0.0
            servers_cpu = {name: s - servers_started[name] for name, s in servers.cpu().items()}
            pg_cpu, busy = cpu_of(pg_pids) - pg_started, machine_busy()
            load = os.getloadavg()[0]
            await asyncio.wait_for(uas.wait(), 30)
            sipp_cpu = _children_cpu() - sipp_started  # both SIPps (PGW and py-spy not reaped yet)
            components = await sampler.stop() if sampler is not None else None
            delays, span = _rtts(workdir)
            if child is not None:
                bearers_left = (await child.finish())["bearers_left"]
                child = None
            else:
                assert pcef is not None
                bearers_left = sum(len(s.bearers) for s in pcef.sessions.values())
            causes = Counter(call.end_cause for call in ims.core.ended)
            return {
                "calls": float(calls),
                "successful": float(len(delays)),
                "attempts_per_s": calls / max(elapsed - hold_ms / 1000, 1e-9),
                "setups_per_s": (len(delays) - 1) / span if span else float("nan"),
                "setup_p50_ms": statistics.median(delays) if delays else float("nan"),
                "setup_p99_ms": _percentile(delays, 99),
                "uac_exit": float(uac.returncode or 0),
                "bearers_left": float(bearers_left),
                "causes": dict(causes),
                "diameter": _latencies([ims.node.metrics, *([pcef.node.metrics] if pcef else [])]),
                "cpu_us_per_call": {
                    ("OpenPCC (IMS core)" if split else "OpenPCC (IMS core + PCRF + OCS)")
                    + ("" if pcef_process else " + PGW sim"): cpu,
                    **servers_cpu,
                    **({"PGW simulator process": pcef_cpu} if pcef_process else {}),
                    "SIPp UAC + UAS": sipp_cpu,
                    **({"PostgreSQL (backends, WAL writer)": pg_cpu} if pg_pids else {}),
                },
                "machine_busy": (busy[0] - busy_started[0]) / max(busy[1] - busy_started[1], 1),
                "components": components,
                "load": (load_started, load),
                "kernel_s": kernel,
            }
        finally:
            await ims.close()
            if pcef is not None:
                await pcef.close()
            if child is not None:
                child.proc.kill()
                await child.proc.wait()
    finally:
        await servers.close()


def _latencies(registries: list[Metrics]) -> dict[str, tuple[float, float, float]]:
    """Request → answer time per Diameter command the IMS core (and an in-process PGW) sent, from
    the nodes' own latency histograms (no per-message observer on the IMS core's hot path):
    count, mean ms and the upper bound (ms) of the bucket holding the 99th percentile."""
    out: dict[str, tuple[float, float, float]] = {}
    for metrics in registries:
        for key, series in metrics.series.items():
            direction, application, command, _result = key
            if direction != "out" or not series.count:
                continue
            label = diameter_label(Message(command, application, 0))  # "Rx AAA None"
            name = label.rsplit(" ", 1)[0]
            cumulative = metrics.cumulative(key)
            p99 = next(bound for bound, n in cumulative if n >= 0.99 * series.count)
            count, total, worst = out.get(name, (0.0, 0.0, 0.0))
            out[name] = (count + series.count, total + series.total, max(worst, p99))
    return {
        name: (count, total / count * 1000, worst * 1000)
        for name, (count, total, worst) in sorted(out.items())
    }


def _rtts(workdir: Path) -> tuple[list[float], float]:
    """SIPp's INVITE → 200 times (ms, sorted) and the seconds from the first 200 to the last."""
    values: list[float] = []
    dates: list[float] = []
    for path in workdir.glob("uac_*_rtt.csv"):
        for line in path.read_text().splitlines()[1:]:
            parts = line.split(";")  # date_ms;response_time;rtd_no
            if len(parts) >= 2:
                try:
                    dates.append(float(parts[0]))
                    values.append(float(parts[1]))
                except ValueError:
                    continue
    span = (max(dates) - min(dates)) / 1000 if len(dates) > 1 else 0.0
    return sorted(values), span


def _percentile(values: list[float], pct: float) -> float:
    if not values:
        return float("nan")
    index = min(len(values) - 1, max(0, round(pct / 100 * len(values)) - 1))
    return values[index]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=int, default=50, help="call attempts per second")
    parser.add_argument("--calls", type=int, default=150, help="calls in total")
    parser.add_argument("--hold-ms", type=int, default=500, help="call length")
    parser.add_argument(
        "--pcef", choices=("process", "inproc"), default="process", help="PGW simulator"
    )
    parser.add_argument(
        "--profile", action="store_true", help="charge this process's CPU to components (py-spy)"
    )
    parser.add_argument(
        "--profile-raw", type=Path, help="with --profile: keep py-spy's raw samples in this file"
    )
    parser.add_argument(
        "--no-uvloop", action="store_true", help="default asyncio loop (openpcc run uses uvloop)"
    )
    parser.add_argument(
        "--topology",
        choices=("single", "split"),
        default="single",
        help="PCRF and OCS in this process, or each its own `openpcc run` process",
    )
    parser.add_argument("--db", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument(
        "--ues",
        type=int,
        default=50,
        help=f"caller/callee UE pairs (1-{MAX_UES}), each with its own IP-CAN session and account",
    )
    args = parser.parse_args()
    if shutil.which("sipp") is None:
        print("sipp not installed (Debian package sip-tester): skipped")
        return
    if not 1 <= args.ues <= MAX_UES:
        parser.error(f"--ues must be 1-{MAX_UES}")
    if args.profile and not Sampler.available():
        print("--profile needs py-spy in the venv (pip install py-spy)")
        return
    with tempfile.TemporaryDirectory(prefix="bench-ims-") as tmp:
        database_url = (
            fresh_database("bench_ims") if args.db == "postgres" else f"sqlite:///{tmp}/bench.db"
        )
        result = run_loop(
            run(
                args.rate,
                args.calls,
                args.hold_ms,
                Path(tmp),
                pcef_process=args.pcef == "process",
                profile=args.profile,
                uvloop=not args.no_uvloop,
                split=args.topology == "split",
                database_url=database_url,
                ues=args.ues,
            ),
            not args.no_uvloop,
        )
        if args.profile_raw is not None and (Path(tmp) / "py-spy.txt").exists():
            shutil.copyfile(Path(tmp) / "py-spy.txt", args.profile_raw)
    print(
        f"offered {args.rate} calls/s, {args.calls} calls, hold {args.hold_ms} ms, "
        f"{args.ues} caller/callee pairs; topology {args.topology}, {args.db}"
    )
    print(
        f"successful calls        {result['successful']:.0f}/{result['calls']:.0f}"
        f"  (SIPp UAC exit {result['uac_exit']:.0f})"
    )
    print(
        f"call attempts/s         {result['attempts_per_s']:.1f}  (to the UAC's end: a failed"
        " call waits for its timeout)"
    )
    print(f"completed setups/s      {result['setups_per_s']:.1f}  (first to last 200 OK)")
    print(
        f"setup delay p50 / p99   {result['setup_p50_ms']:.1f} / "
        f"{result['setup_p99_ms']:.1f} ms  (INVITE → 200, UAS answers at once)"
    )
    print(f"dedicated bearers left  {result['bearers_left']:.0f}")
    print(f"call end causes (last 1000 calls) {result['causes']}")
    print(f"load average            {result['load'][0]:.1f} → {result['load'][1]:.1f}"
          f" ({os.cpu_count()} CPUs)")  # fmt: skip
    print(f"machine busy            {result['machine_busy']:.0%} while the calls ran")
    print("CPU per call, by process (all threads):")
    for name, seconds in result["cpu_us_per_call"].items():
        print(f"  {name:<40}{seconds * 1e6 / args.calls:8.0f} µs")
    first_name = next(iter(result["cpu_us_per_call"]))
    print(f"    {first_name}: in the kernel {result['kernel_s'] * 1e6 / args.calls:8.0f} µs")
    total = sum(result["cpu_us_per_call"].values()) * 1e6 / args.calls
    cores = os.cpu_count() or 1
    budget = cores * 1e6 / 200
    print(f"  sum of the processes above              {total:8.0f} µs"
          f"  ({cores} cores at the 200 calls/s goal allow {budget:.0f} µs)")  # fmt: skip
    components = result["components"]
    if components:
        own = result["cpu_us_per_call"]
        first = next(iter(own))
        cpu = own[first] * 1e6 / args.calls
        # A sample is 1/RATE s of a thread holding the GIL; the rest of the CPU ran without it.
        rows = [(name, n * 1e6 / Sampler.RATE / args.calls) for name, n in components.items()]
        held = sum(us for _, us in rows)
        if held > cpu:  # sampler and clock disagree: charge shares of the measured CPU instead
            rows = [(name, us * cpu / held) for name, us in rows]
        kernel = result["kernel_s"] * 1e6 / args.calls
        rows.append(("kernel (loopback sockets, epoll, fsync)", min(kernel, max(cpu - held, 0.0))))
        rows.append(("outside the GIL, user (SQLite engine; gaps)", max(cpu - held - kernel, 0.0)))
        print(f"{first}, by component (py-spy samples of the GIL holder):")
        for name, us in sorted(rows, key=lambda row: -row[1]):
            print(f"  {name:<44}{us:8.0f} µs  {us / cpu:6.1%}")
    print("Diameter request → answer as the IMS core (and an in-process PGW) see it:")
    for name, (count, mean, p99) in result["diameter"].items():
        print(f"  {name:<10}{count:8.0f}  mean {mean:6.1f} ms  p99 ≤ {p99:g} ms")


if __name__ == "__main__":
    main()
