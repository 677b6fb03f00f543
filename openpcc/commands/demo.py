"""``openpcc demo``: everything in one process on loopback — PCRF and OCS on a Diameter
listener, the IMS core (P-CSCF/S-CSCF) as their Rx/Ro client, the PGW simulator on Gx — then two
UEs attach, register and talk for a few seconds. Prints the SIP/Diameter ladder, the dedicated
bearer during the call, the balances before and after, and the CDR.

openpcc demo [--seconds N] [--workdir DIR]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
import tempfile
from pathlib import Path
from typing import Any, TextIO

import sqlalchemy as sa
import yaml

from charging.models import Account, Balance, CdrOutbox
from ims.ladder import Ladder
from ims.pcef import PcefSimulator
from ims.proxy import CoreConfig
from ims.service import DiameterPeer, ImsConfig, ImsService
from ims.sip.transaction import Target
from ims.ua import UserAgent
from openpcc.app import build_app, serve
from schemas.settings import Settings

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
DOMAIN = "ims.openpcc.local"
REALM = "localdomain"
# (name, IMSI, MSISDN, UE IP) of the two demo subscribers of examples/provisioning.yaml
UES = (
    ("alice", "001010000000001", "491700000001", "127.0.0.1"),
    ("bob", "001010000000002", "491700000002", "127.0.0.2"),
)
# Used when the provisioning file has no `policy:` section: VoLTE on APN "ims" for every
# subscriber with an IMSI and an MSISDN.
VOLTE_PROFILE = {
    "name": "volte",
    "apns": [
        {
            "apn": "ims",
            "qci": 5,
            "arp": {"priority": 1},
            "ambr": {"ul": 256_000, "dl": 256_000},
            "predefined_rules": ["ims-signalling"],
        }
    ],
}


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("demo", help="a VoLTE call through OpenPCC, end to end")
    parser.add_argument("--seconds", type=float, default=3.0, help="call length (default 3)")
    parser.add_argument("--workdir", help="database and CDR files here (default: a temp dir)")
    parser.set_defaults(func=_demo)


def _demo(args: argparse.Namespace) -> int:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s %(message)s")
    if args.workdir:
        return asyncio.run(run_demo(Path(args.workdir), args.seconds, sys.stdout))
    with tempfile.TemporaryDirectory(prefix="openpcc-demo-") as tmp:
        return asyncio.run(run_demo(Path(tmp), args.seconds, sys.stdout))


def demo_policy(workdir: Path) -> str:
    """The policy file: examples/provisioning.yaml when it has a `policy:` section, else a VoLTE
    profile for every subscriber with an IMSI and an MSISDN (the charging provisioning file
    admits no `policy:` key, so the PCRF reads a file of its own)."""
    source = EXAMPLES / "provisioning.yaml"
    data = yaml.safe_load(source.read_text()) or {}
    if data.get("policy"):
        return str(source)
    subscribers = [
        {"imsi": s["imsi"][0], "msisdn": s["msisdn"][0], "profile": "volte"}
        for s in data.get("subscribers", [])
        if s.get("imsi") and s.get("msisdn")
    ]
    path = workdir / "policy.yaml"
    path.write_text(
        yaml.safe_dump(
            {"policy": {"profiles": [VOLTE_PROFILE], "subscribers": subscribers}}, sort_keys=False
        )
    )
    return str(path)


def balances(engine: sa.Engine, account: str) -> list[tuple[str, int, int]]:
    a, b = Account.__table__, Balance.__table__
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(b.c.name, b.c.amount, b.c.reserved)
            .join(a, a.c.id == b.c.account_id)
            .where(a.c.name == account)
            .order_by(b.c.name)
        ).all()
    return [(r.name, int(r.amount), int(r.reserved)) for r in rows]


def cdrs(engine: sa.Engine) -> list[dict[str, Any]]:
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(CdrOutbox.__table__.c.payload).order_by(CdrOutbox.__table__.c.id)
        ).all()
    return [json.loads(r.payload) for r in rows]


async def run_demo(workdir: Path, seconds: float, out: TextIO) -> int:
    settings = Settings(
        database_url=f"sqlite:///{workdir / 'demo.db'}",
        diameter_host="127.0.0.1",
        diameter_port=0,
        diameter_origin_realm=REALM,
        provisioning=str(EXAMPLES / "provisioning.yaml"),
        policy_provisioning=demo_policy(workdir),
        charging_tariffs=str(EXAMPLES / "tariff.yaml"),
        cdr_sink="file",
        cdr_dir=str(workdir / "cdr"),
        ims_enabled=False,
    )
    app = build_app(settings)
    ready, stop = asyncio.Event(), asyncio.Event()
    server = asyncio.ensure_future(serve(app, stop=stop, on_ready=lambda _a: ready.set()))
    await asyncio.wait(
        [server, asyncio.ensure_future(ready.wait())], return_when=asyncio.FIRST_COMPLETED
    )
    if server.done():
        server.result()
        return 1
    bound = app.listeners[0].bound
    assert bound is not None
    peer = DiameterPeer("127.0.0.1", bound[1], REALM)
    ims = ImsService(
        ImsConfig(
            core=CoreConfig(domain=DOMAIN, host="127.0.0.1", port=0),
            origin_host=f"cscf.{REALM}",
            origin_realm=REALM,
            pcrf=peer,
            ocs=peer,
        )
    )
    pcef = PcefSimulator(f"pgw.{REALM}", REALM, "127.0.0.1", bound[1], REALM)
    ladder = Ladder({ip: name for name, _, _, ip in UES})
    ladder.attach(ims, pcef)
    agents: list[UserAgent] = []
    try:
        await ims.start()
        engine = app.database()
        before = {name: balances(engine, name) for name, *_ in UES}
        for _name, imsi, msisdn, ip in UES:
            await pcef.attach(imsi, msisdn, ip)
        for _name, _imsi, msisdn, ip in UES:
            ua = UserAgent(f"+{msisdn}", Target("UDP", "127.0.0.1", ims.core.port), DOMAIN, ip=ip)
            await ua.start()
            agents.append(ua)
            await ua.register()
        alice = agents[0]
        leg = await alice.call(f"sip:+{UES[1][2]}@{DOMAIN}")
        if leg.final is None or leg.final.status != 200:
            out.write(f"call failed: {leg.final}\n{ladder.render()}\n")
            return 1
        sessions = [pcef.by_ip(ip) for *_, ip in UES]
        during = {
            name: dict(s.bearers)
            for (name, *_), s in zip(UES, sessions, strict=True)
            if s is not None
        }
        await asyncio.sleep(seconds)
        await alice.bye(leg)
        await pcef.wait_for(lambda: all(s is not None and not s.bearers for s in sessions))
        for _ in range(100):  # the CCR-T commits asynchronously to the BYE's 200
            if cdrs(engine):
                break
            await asyncio.sleep(0.05)
        for session in sessions:
            if session is not None:
                await pcef.detach(session)
        after = {name: balances(engine, name) for name, *_ in UES}
        _report(out, ladder, during, before, after, cdrs(engine))
        return 0
    finally:
        for ua in agents:
            await ua.close()
        await ims.close()
        await pcef.close()
        stop.set()
        await server


def _report(
    out: TextIO,
    ladder: Ladder,
    during: dict[str, Any],
    before: dict[str, Any],
    after: dict[str, Any],
    records: list[dict[str, Any]],
) -> None:
    out.write("== ladder (SIP ──▶, Diameter ══▶, PGW bearer events ··) ==\n")
    out.write(ladder.render() + "\n\n== dedicated bearers during the call ==\n")
    for name, bearers in during.items():
        for bearer in bearers.values():
            out.write(
                f"{name}: rule {bearer.rule} QCI {bearer.qci} GBR UL/DL "
                f"{bearer.gbr_ul}/{bearer.gbr_dl} bit/s, MBR {bearer.mbr_ul}/"
                f"{bearer.mbr_dl}\n"
            )
            for direction, flow in bearer.flows:
                out.write(f"    {direction:<9} {flow}\n")
    out.write("\n== balances (name: amount/reserved, minor units) ==\n")
    for name in before:
        for (bal, amount, reserved), (_, new, new_reserved) in zip(
            before[name], after[name], strict=True
        ):
            out.write(f"{name}.{bal}: {amount}/{reserved} -> {new}/{new_reserved}\n")
    out.write("\n== CDR ==\n")
    for record in records:
        out.write(json.dumps(record, indent=2) + "\n")
