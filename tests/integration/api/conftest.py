"""Harness of the API tests: one event loop in a background thread runs the real API server
(uvicorn, ephemeral loopback port), a Diameter node with the PCRF (Gx/Rx) and the OCS (Ro) over a
fresh PostgreSQL database, plus a PGW (Gx client) and a CSCF (Ro client) connected to it. Tests
talk HTTP with httpx from the test thread and drive Diameter through ``stack.run(coro)``."""

from __future__ import annotations

import asyncio
import contextlib
import threading
import uuid
from collections.abc import Coroutine, Iterator
from dataclasses import dataclass, field
from typing import Any, TypeVar

import httpx
import pytest
import sqlalchemy as sa
from sqlalchemy.engine import make_url

from api.auth import create_key
from api.context import ApiContext, Endpoint
from api.server import ApiServer
from charging.config import OcsConfig
from charging.provisioning import apply as apply_charging
from charging.ro import OcsApplication
from diam.constants import (
    APP_CREDIT_CONTROL,
    APP_GX,
    APP_RX,
    CMD_ABORT_SESSION,
    CMD_CREDIT_CONTROL,
    CMD_RE_AUTH,
    VENDOR_3GPP,
)
from diam.identity import LocalIdentity, PeerPolicy
from diam.message import Message
from diam.metrics import Metrics
from diam.node import Node
from diam.peer import Peer
from openpcc.credit import LedgerCredit
from openpcc.database import create_engine, upgrade
from policy import provisioning as policy_provisioning
from policy.service import Pcrf, PcrfConfig
from schemas.api import Role
from schemas.settings import Settings
from tests.fixtures.ocs import provisioning, test_plan

T = TypeVar("T")
REALM = "openpcc.test"
SERVER_HOST, PGW_HOST = "pcc.openpcc.test", "pgw.openpcc.test"
CSCF_HOST, CSCF_REALM = "cscf.test", "test"  # as tests.fixtures.ocs.ccr() writes them
UE_IP = "10.45.0.7"
PROFILE = {
    "name": "prepaid-data",
    "apns": [
        {
            "apn": "internet",
            "qci": 9,
            "arp": {"priority": 8},
            "ambr": {"ul": 50_000_000, "dl": 100_000_000},
            "on_credit_exhausted": {"action": "throttle", "ambr": {"ul": 64_000, "dl": 64_000}},
        }
    ],
}


class LoopThread:
    """An asyncio loop running in a daemon thread."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = 30.0) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)
        self.loop.close()


class Pgw:
    """A PCEF on our diam node: Gx CCRs out, RARs recorded and answered 2001."""

    def __init__(self) -> None:
        apps = frozenset({(APP_GX, VENDOR_3GPP)})
        self.node = Node(LocalIdentity(PGW_HOST, REALM, applications=apps), PeerPolicy())
        self.node.add_route(APP_GX, CMD_RE_AUTH, self._on_rar)
        self.rars: list[Message] = []
        self.got_rar = asyncio.Event()
        self.peer: Peer | None = None

    async def _on_rar(self, request: Message, _peer: Peer) -> Message:
        self.rars.append(request)
        self.got_rar.set()
        return request.answer(2001)

    async def ccr(self, session_id: str, kind: int, number: int, *avps: Any) -> Message:
        request = Message.request(
            CMD_CREDIT_CONTROL,
            APP_GX,
            [
                ("Session-Id", session_id),
                ("Auth-Application-Id", APP_GX),
                ("Destination-Realm", REALM),
                ("CC-Request-Type", kind),
                ("CC-Request-Number", number),
                *avps,
            ],
        )
        return await self.node.request(request, peer=self.peer, timeout=5)

    async def attach(self, session_id: str, msisdn: str, imsi: str) -> Message:
        return await self.ccr(
            session_id,
            1,
            0,
            ("Subscription-Id", [("Subscription-Id-Type", 0), ("Subscription-Id-Data", msisdn)]),
            ("Subscription-Id", [("Subscription-Id-Type", 1), ("Subscription-Id-Data", imsi)]),
            ("Framed-IP-Address", bytes(int(p) for p in UE_IP.split("."))),
            ("IP-CAN-Type", 5),
            ("RAT-Type", 1004),
            ("Called-Station-Id", "internet"),
        )

    async def next_rar(self, timeout: float = 5.0) -> Message:
        await asyncio.wait_for(self.got_rar.wait(), timeout)
        self.got_rar.clear()
        return self.rars[-1]


class Cscf:
    """A credit-control client (S-CSCF): records RAR/ASR and answers them."""

    def __init__(self) -> None:
        apps = frozenset({(APP_CREDIT_CONTROL, VENDOR_3GPP), (APP_CREDIT_CONTROL, 0)})
        self.node = Node(LocalIdentity(CSCF_HOST, CSCF_REALM, applications=apps), PeerPolicy())
        self.requests: list[Message] = []
        for cmd in (CMD_RE_AUTH, CMD_ABORT_SESSION):
            self.node.add_route(APP_CREDIT_CONTROL, cmd, self._on_request)
        self.peer: Peer | None = None

    async def _on_request(self, request: Message, _peer: Peer) -> Message:
        self.requests.append(request)
        return request.answer(2001)

    async def send(self, msg: Message) -> Message:
        return await self.node.request(msg, peer=self.peer, timeout=10)


@dataclass
class Stack:
    url: str
    engine: sa.Engine
    loop: LoopThread
    base_url: str
    keys: dict[Role, str]
    pcrf: Pcrf
    ocs: OcsApplication
    node: Node
    pgw: Pgw
    cscf: Cscf
    server: ApiServer
    clients: dict[Role, httpx.Client] = field(default_factory=dict)

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = 30.0) -> T:
        return self.loop.run(coro, timeout)

    def http(self, role: Role = Role.ADMIN) -> httpx.Client:
        if role not in self.clients:
            self.clients[role] = httpx.Client(
                base_url=self.base_url,
                headers={"Authorization": f"Bearer {self.keys[role]}"},
                timeout=15,
            )
        return self.clients[role]

    def subscriber(self, name: str, msisdn: str, imsi: str, money: int, **extra: Any) -> None:
        """Create an account (EUR, balance 'main') and a subscriber through the API."""
        r = self.http().post(
            "/api/v1/accounts",
            json={"name": name, "currency": "EUR", "balances": [{"name": "main", "amount": money}]},
        )
        assert r.status_code == 201, r.text
        body = {
            "name": name,
            "account": name,
            "plan": "prepaid",
            "msisdn": [msisdn],
            "imsi": [imsi],
            **extra,
        }
        r = self.http().post("/api/v1/subscribers", json=body)
        assert r.status_code == 201, r.text


@contextlib.contextmanager
def _database(server_url: str) -> Iterator[str]:
    name = f"api_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(
        make_url(server_url).set(drivername="postgresql+psycopg"),
        isolation_level="AUTOCOMMIT",
        poolclass=sa.pool.NullPool,
    )
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    try:
        yield (
            make_url(server_url)
            .set(drivername="postgresql+psycopg", database=name)
            .render_as_string(hide_password=False)
        )
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


async def _start(stack_args: dict[str, Any], engine: sa.Engine, settings: Settings) -> Any:
    apps = frozenset(
        {(APP_GX, VENDOR_3GPP), (APP_RX, VENDOR_3GPP), (APP_CREDIT_CONTROL, VENDOR_3GPP)}
    )
    metrics = Metrics()
    node = Node(LocalIdentity(SERVER_HOST, REALM, applications=apps), PeerPolicy(), metrics=metrics)
    pcrf = Pcrf(
        node, engine, PcrfConfig(rar_timeout=2.0, af_timeout=1.0), charging=LedgerCredit(engine)
    )
    await pcrf.start()
    ocs = OcsApplication(
        engine, OcsConfig(tariffs={"Test": test_plan()}, node_id="api.test"), sweep_interval=0
    )
    ocs.install(node.router, [node])
    await ocs.start()
    bound = await node.listen("127.0.0.1", 0)
    ctx = ApiContext(
        settings,
        engine,
        metrics,
        nodes=lambda: [Endpoint("pcc", node, bound)],
        ocs=ocs,
        pcrf=pcrf,
    )
    server = ApiServer(ctx, "127.0.0.1", 0)
    host, port = await server.start()
    pgw, cscf = Pgw(), Cscf()
    pgw.peer = await pgw.node.connect("127.0.0.1", bound[1])
    cscf.peer = await cscf.node.connect("127.0.0.1", bound[1])
    stack_args.update(
        node=node,
        pcrf=pcrf,
        ocs=ocs,
        server=server,
        pgw=pgw,
        cscf=cscf,
        base_url=f"http://{host}:{port}",
    )


async def _stop(stack: Stack) -> None:
    await stack.pgw.node.close()
    await stack.cscf.node.close()
    await stack.server.stop()
    await stack.node.close()
    await stack.ocs.stop()
    await stack.pcrf.stop()


@pytest.fixture(scope="module")
def stack(postgres_server_url: str) -> Iterator[Stack]:
    """The whole API stack over a database of its own (shared by the tests of a module)."""
    with _database(postgres_server_url) as url:
        engine = create_engine(url)
        upgrade(engine)
        apply_charging(engine, provisioning())
        policy_provisioning.apply(
            engine, policy_provisioning.PolicyProvisioning.model_validate({"profiles": [PROFILE]})
        )
        keys = {role: create_key(engine, f"test-{role.value}", role) for role in Role}
        loop = LoopThread()
        args: dict[str, Any] = {}
        loop.run(_start(args, engine, Settings(api_key_cache_seconds=0.0)))
        stack = Stack(url=url, engine=engine, loop=loop, keys=keys, **args)
        try:
            yield stack
        finally:
            for client in stack.clients.values():
                client.close()
            loop.run(_stop(stack))
            loop.close()
            engine.dispose()
