"""Harness of the PCRF tests: a real PCRF on a loopback socket, a PGW built on our diam node and a
P-CSCF built on python-diameter's encoder over a raw TCP socket (Kamailio-shaped AARs), plus a
capture of every message for the tshark check."""

from __future__ import annotations

import asyncio
import ipaddress
import shutil
import struct
import subprocess
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from diameter.message import Message as PyMessage
from diameter.message.avp import Avp as PyAvp
from diameter.message.commands import (
    AaRequest,
    AbortSessionAnswer,
    CapabilitiesExchangeRequest,
    SessionTerminationRequest,
)
from diameter.message.constants import (
    AVP_AUTH_APPLICATION_ID,
    AVP_AUTH_GRACE_PERIOD,
    AVP_AUTHORIZATION_LIFETIME,
    AVP_FRAMED_IP_ADDRESS,
    AVP_FRAMED_IPV6_PREFIX,
    AVP_SESSION_TIMEOUT,
    AVP_SUBSCRIPTION_ID,
    AVP_SUBSCRIPTION_ID_DATA,
    AVP_SUBSCRIPTION_ID_TYPE,
    AVP_TGPP_AF_APPLICATION_IDENTIFIER,
    AVP_TGPP_CODEC_DATA,
    AVP_TGPP_FLOW_DESCRIPTION,
    AVP_TGPP_FLOW_NUMBER,
    AVP_TGPP_FLOW_STATUS,
    AVP_TGPP_FLOW_USAGE,
    AVP_TGPP_MAX_REQUESTED_BANDWIDTH_DL,
    AVP_TGPP_MAX_REQUESTED_BANDWIDTH_UL,
    AVP_TGPP_MEDIA_COMPONENT_DESCRIPTION,
    AVP_TGPP_MEDIA_COMPONENT_NUMBER,
    AVP_TGPP_MEDIA_SUB_COMPONENT,
    AVP_TGPP_MEDIA_TYPE,
    AVP_TGPP_MIN_REQUESTED_BANDWIDTH_DL,
    AVP_TGPP_MIN_REQUESTED_BANDWIDTH_UL,
    AVP_TGPP_RR_BANDWIDTH,
    AVP_TGPP_RS_BANDWIDTH,
    AVP_TGPP_RX_REQUEST_TYPE,
    AVP_TGPP_SPECIFIC_ACTION,
    AVP_VENDOR_ID,
    AVP_VENDOR_SPECIFIC_APPLICATION_ID,
    VENDOR_TGPP,
)

from diam.constants import APP_GX, APP_RX, CMD_CREDIT_CONTROL, CMD_RE_AUTH, VENDOR_3GPP
from diam.identity import LocalIdentity, PeerPolicy
from diam.message import Message
from diam.node import Node
from diam.peer import Peer
from openpcc.database import create_engine, upgrade
from policy import provisioning
from policy.decision import ChargingState, SubscriberRef
from policy.service import Pcrf, PcrfConfig

REALM = "openpcc.test"
PCRF_HOST, PGW_HOST, PCSCF_HOST = "pcrf.openpcc.test", "pgw.openpcc.test", "pcscf.openpcc.test"
IMSI, MSISDN, UE_IP = "001010000000001", "491700000001", "10.45.0.2"
REMOTE_IP = "192.0.2.10"

POLICY = {
    "profiles": [
        {
            "name": "volte",
            "apns": [
                {
                    "apn": "ims",
                    "qci": 5,
                    "arp": {"priority": 1},
                    "ambr": {"ul": 256_000, "dl": 256_000},
                    "predefined_rules": ["ims-signalling"],
                },
                {
                    "apn": "internet",
                    "qci": 9,
                    "arp": {"priority": 8},
                    "ambr": {"ul": 50_000_000, "dl": 100_000_000},
                    "predefined_rules": ["default-internet"],
                    "allowances": [
                        {
                            "monitoring_key": "fair-use",
                            "octets": 1_000_000,
                            "throttled": {"ul": 1_000_000, "dl": 1_000_000},
                        }
                    ],
                    "time_variants": [
                        {
                            "name": "night",
                            "start": "12:00:00",
                            "end": "12:00:02",
                            "ambr": {"ul": 2_000_000, "dl": 4_000_000},
                        }
                    ],
                    "on_credit_exhausted": {
                        "action": "redirect",
                        "redirect_rules": ["redirect-topup"],
                    },
                },
            ],
        }
    ],
    "subscribers": [{"imsi": IMSI, "msisdn": MSISDN, "profile": "volte"}],
}


class Wire:
    """Every message seen by the test clients, in order, for text2pcap + tshark."""

    def __init__(self) -> None:
        self.packets: list[tuple[str, bytes]] = []  # ("pgw"/"pcscf" → pcrf is "o", back is "i")

    def add(self, direction: str, data: bytes) -> None:
        self.packets.append((direction, data))

    def tshark(self, tmp_path: Path, *fields: str) -> tuple[str, list[list[str]]]:
        """(verbose decode, one row of ``fields`` per Diameter message)."""
        dump = tmp_path / "capture.txt"
        with dump.open("w") as out:
            for direction, data in self.packets:
                out.write(f"{direction}\n")
                for offset in range(0, len(data), 16):
                    chunk = data[offset : offset + 16]
                    out.write(f"{offset:06x} {' '.join(f'{b:02x}' for b in chunk)}\n")
        pcap = tmp_path / "capture.pcap"
        subprocess.run(
            ["text2pcap", "-q", "-D", "-T", "40000,3868", "-4", "127.0.0.2,127.0.0.1",
             str(dump), str(pcap)],
            check=True,
        )  # fmt: skip
        base = ["tshark", "-n", "-r", str(pcap), "-d", "tcp.port==3868,diameter",
                "-o", "tcp.analyze_sequence_numbers:FALSE"]  # fmt: skip
        verbose = subprocess.run([*base, "-V"], capture_output=True, text=True, check=True).stdout
        args = [*base, "-T", "fields", "-E", "separator=|", "-E", "aggregator=,", "-Y", "diameter"]
        for f in fields:
            args += ["-e", f]
        rows = subprocess.run(args, capture_output=True, text=True, check=True).stdout
        return verbose, [line.split("|") for line in rows.splitlines()]


class Pgw:
    """The PCEF: our own diam node as a client; answers RARs as told and records them."""

    def __init__(self, wire: Wire) -> None:
        identity = LocalIdentity(PGW_HOST, REALM, applications=frozenset({(APP_GX, VENDOR_3GPP)}))
        self.node = Node(identity, PeerPolicy())
        self.node.add_route(APP_GX, CMD_RE_AUTH, self._on_rar)
        self.wire = wire
        self.rars: asyncio.Queue[Message] = asyncio.Queue()
        self.raa: Callable[[Message], Message] = lambda rar: rar.answer(2001)
        self.delay = 0.0  # seconds before the RAA: beyond the PCRF's timeout = a silent PCEF
        self.origin_state_id = 1  # RFC 6733 §8.16: incremented when the PGW restarts
        self.peer: Peer | None = None
        self.numbers: dict[str, int] = {}

    async def connect(self, port: int) -> None:
        self.peer = await self.node.connect("127.0.0.1", port)

    async def _on_rar(self, request: Message, peer: Peer) -> Message:
        self.wire.add("i", request.encode())
        if self.delay:
            await asyncio.sleep(self.delay)
        answer = self.raa(request).add(("Origin-Host", PGW_HOST), ("Origin-Realm", REALM))
        self.wire.add("o", answer.encode())
        await self.rars.put(request)
        return answer

    async def ccr(self, session_id: str, kind: int, *avps: Any) -> Message:
        number = self.numbers.get(session_id, -1) + 1
        self.numbers[session_id] = number
        request = Message.request(
            CMD_CREDIT_CONTROL,
            APP_GX,
            [
                ("Session-Id", session_id),
                ("Auth-Application-Id", APP_GX),
                ("Destination-Realm", REALM),
                ("CC-Request-Type", kind),
                ("CC-Request-Number", number),
                ("Origin-State-Id", self.origin_state_id),
                *avps,
            ],
        )
        answer = await self.node.request(request, peer=self.peer, timeout=5)
        self.wire.add("o", request.encode())
        self.wire.add("i", answer.encode())
        return answer

    async def attach(self, session_id: str, apn: str = "ims", ue_ip: str = UE_IP) -> Message:
        return await self.ccr(
            session_id,
            1,
            ("Subscription-Id", [("Subscription-Id-Type", 0), ("Subscription-Id-Data", MSISDN)]),
            ("Subscription-Id", [("Subscription-Id-Type", 1), ("Subscription-Id-Data", IMSI)]),
            ("Supported-Features", [("Vendor-Id", VENDOR_3GPP), ("Feature-List-ID", 1),
                                    ("Feature-List", 3)]),
            ("Network-Request-Support", 1),
            _ue_address(ue_ip),
            ("IP-CAN-Type", 5),  # 3GPP-EPS
            ("RAT-Type", 1004),  # EUTRAN
            ("Called-Station-Id", apn),
        )  # fmt: skip

    async def next_rar(self, timeout: float = 5.0) -> Message:
        return await asyncio.wait_for(self.rars.get(), timeout)


def _ue_address(ue_ip: str) -> tuple[str, bytes]:
    """Framed-IP-Address, or Framed-IPv6-Prefix for "prefix/len" (RFC 3162 §2.3)."""
    if "/" in ue_ip:
        net = ipaddress.IPv6Network(ue_ip)
        return ("Framed-IPv6-Prefix", bytes([0, net.prefixlen]) + net.network_address.packed)
    return ("Framed-IP-Address", ipaddress.IPv4Address(ue_ip).packed)


class Pcscf:
    """A Kamailio-like P-CSCF on python-diameter's codec over a raw socket."""

    def __init__(self, wire: Wire) -> None:
        self.wire = wire
        self.reader: asyncio.StreamReader
        self.writer: asyncio.StreamWriter
        self.pending: dict[int, asyncio.Future[PyMessage]] = {}
        self.requests: asyncio.Queue[PyMessage] = asyncio.Queue()
        self.hop = 0x1000
        self.task: asyncio.Task[None] | None = None

    async def connect(self, port: int) -> None:
        self.reader, self.writer = await asyncio.open_connection("127.0.0.1", port)
        cer = CapabilitiesExchangeRequest()
        self._identity(cer)
        cer.host_ip_address = ["127.0.0.1"]
        cer.vendor_id = 0
        cer.product_name = "Kamailio"
        cer.supported_vendor_id = [VENDOR_3GPP]
        cer.append_avp(_vsai(APP_RX))
        self.task = asyncio.create_task(self._read())
        cea = await self.send(cer)
        assert cea.result_code == 2001

    def _identity(self, msg: PyMessage) -> None:
        msg.origin_host = PCSCF_HOST.encode()
        msg.origin_realm = REALM.encode()

    async def _read(self) -> None:
        while True:
            try:
                head = await self.reader.readexactly(20)
                length = int.from_bytes(head[1:4], "big")
                data = head + await self.reader.readexactly(length - 20)
            except (asyncio.IncompleteReadError, ConnectionError):
                return
            self.wire.add("i", data)
            msg = PyMessage.from_bytes(data)
            if msg.header.is_request:
                await self.requests.put(msg)
            else:
                future = self.pending.pop(msg.header.hop_by_hop_identifier, None)
                if future is not None:
                    future.set_result(msg)

    async def send(self, msg: PyMessage, app: int = APP_RX) -> PyMessage:
        if msg.header.command_code != 257:
            msg.header.application_id = app
        self.hop += 1
        msg.header.hop_by_hop_identifier = self.hop
        msg.header.end_to_end_identifier = self.hop
        future: asyncio.Future[PyMessage] = asyncio.get_running_loop().create_future()
        self.pending[self.hop] = future
        self.write(msg)
        return await asyncio.wait_for(future, 5)

    def write(self, msg: PyMessage) -> None:
        data = msg.as_bytes()
        self.wire.add("o", data)
        self.writer.write(data)

    async def aar(
        self,
        session_id: str,
        *components: PyAvp,
        ue_ip: str = UE_IP,
        request_type: int | None = None,
        actions: tuple[int, ...] = (2, 3, 4, 6, 8, 9, 12),
    ) -> PyMessage:
        """An AAR as Kamailio ims_qos builds it (shared notes ims-peers.md); ``request_type``
        adds the Rx-Request-Type other P-CSCFs send."""
        aar = AaRequest()
        aar.session_id = session_id
        aar.auth_application_id = APP_RX
        self._identity(aar)
        aar.destination_realm = REALM.encode()
        aar.append_avp(_vsai(APP_RX))
        aar.append_avp(PyAvp.new(AVP_TGPP_AF_APPLICATION_IDENTIFIER, VENDOR_TGPP, b"IMS Services"))
        if request_type is not None:
            aar.append_avp(PyAvp.new(AVP_TGPP_RX_REQUEST_TYPE, VENDOR_TGPP, request_type))
        for comp in components:
            aar.append_avp(comp)
        aar.append_avp(
            PyAvp.new(AVP_SUBSCRIPTION_ID, value=[
                PyAvp.new(AVP_SUBSCRIPTION_ID_TYPE, value=2),
                PyAvp.new(AVP_SUBSCRIPTION_ID_DATA, value="sip:alice@ims.openpcc.test"),
            ])
        )  # fmt: skip
        ip = ipaddress.ip_address(ue_ip)
        if ip.version == 4:
            aar.append_avp(PyAvp.new(AVP_FRAMED_IP_ADDRESS, value=ip.packed))
        else:  # Kamailio: the SDP c= address as a /128 prefix
            aar.append_avp(PyAvp.new(AVP_FRAMED_IPV6_PREFIX, value=b"\x00\x80" + ip.packed))
        for action in actions:
            aar.append_avp(PyAvp.new(AVP_TGPP_SPECIFIC_ACTION, VENDOR_TGPP, action))
        aar.append_avp(PyAvp.new(AVP_AUTH_GRACE_PERIOD, value=0))
        aar.append_avp(PyAvp.new(AVP_SESSION_TIMEOUT, value=3600))
        aar.append_avp(PyAvp.new(AVP_AUTHORIZATION_LIFETIME, value=3600))
        # ETSI Reservation-Priority (458, vendor 13019): unknown to python-diameter, raw bytes.
        aar.append_avp(PyAvp(458, 13019, struct.pack(">I", 0), flags=0xC0))
        return await self.send(aar)

    async def str_(self, session_id: str) -> PyMessage:
        request = SessionTerminationRequest()
        request.session_id = session_id
        self._identity(request)
        request.destination_realm = REALM.encode()
        request.auth_application_id = APP_RX
        request.termination_cause = 1  # DIAMETER_LOGOUT
        return await self.send(request)

    async def next_request(self, timeout: float = 5.0) -> PyMessage:
        return await asyncio.wait_for(self.requests.get(), timeout)

    def answer_asa(self, asr: PyMessage) -> None:
        asa = AbortSessionAnswer()
        asa.header.hop_by_hop_identifier = asr.header.hop_by_hop_identifier
        asa.header.end_to_end_identifier = asr.header.end_to_end_identifier
        asa.session_id = asr.session_id
        self._identity(asa)
        asa.result_code = 2001
        asa.header.application_id = APP_RX
        self.write(asa)

    async def close(self) -> None:
        if self.task is not None:
            self.task.cancel()
        self.writer.close()


def _vsai(app: int) -> PyAvp:
    return PyAvp.new(AVP_VENDOR_SPECIFIC_APPLICATION_ID, value=[
        PyAvp.new(AVP_VENDOR_ID, value=VENDOR_TGPP),
        PyAvp.new(AVP_AUTH_APPLICATION_ID, value=app),
    ])  # fmt: skip


def audio_component(
    number: int = 1, ue_ip: str = UE_IP, bandwidth: int = 41_000, port: int = 49152
) -> PyAvp:
    """AMR-WB + telephone-event audio, Min = Max, RTP and RTCP flows (Kamailio ims_qos)."""
    codec = (
        "m=audio {port} RTP/AVP 116 118\na=rtpmap:116 AMR-WB/16000/1\n"
        "a=fmtp:116 mode-change-capability=2;max-red=0\na=rtpmap:118 telephone-event/16000\n"
        "a=ptime:20\na=maxptime:240"
    )

    def sub(flow: int, rport: int, lport: int, usage: int) -> PyAvp:
        return PyAvp.new(AVP_TGPP_MEDIA_SUB_COMPONENT, VENDOR_TGPP, [
            PyAvp.new(AVP_TGPP_FLOW_NUMBER, VENDOR_TGPP, flow),
            PyAvp.new(AVP_TGPP_FLOW_DESCRIPTION, VENDOR_TGPP,
                      f"permit out 17 from {REMOTE_IP} {rport} to {ue_ip} {lport}".encode()),
            PyAvp.new(AVP_TGPP_FLOW_DESCRIPTION, VENDOR_TGPP,
                      f"permit in 17 from {ue_ip} {lport} to {REMOTE_IP} {rport}".encode()),
            PyAvp.new(AVP_TGPP_FLOW_USAGE, VENDOR_TGPP, usage),
        ])  # fmt: skip

    return PyAvp.new(AVP_TGPP_MEDIA_COMPONENT_DESCRIPTION, VENDOR_TGPP, [
        PyAvp.new(AVP_TGPP_MEDIA_COMPONENT_NUMBER, VENDOR_TGPP, number),
        sub(1, 50000, port, 0),
        sub(2, 50001, port + 1, 1),
        PyAvp.new(AVP_TGPP_MEDIA_TYPE, VENDOR_TGPP, 0),
        PyAvp.new(AVP_TGPP_MAX_REQUESTED_BANDWIDTH_UL, VENDOR_TGPP, bandwidth),
        PyAvp.new(AVP_TGPP_MAX_REQUESTED_BANDWIDTH_DL, VENDOR_TGPP, bandwidth),
        PyAvp.new(AVP_TGPP_MIN_REQUESTED_BANDWIDTH_UL, VENDOR_TGPP, bandwidth),
        PyAvp.new(AVP_TGPP_MIN_REQUESTED_BANDWIDTH_DL, VENDOR_TGPP, bandwidth),
        PyAvp.new(AVP_TGPP_RR_BANDWIDTH, VENDOR_TGPP, 2_000),
        PyAvp.new(AVP_TGPP_RS_BANDWIDTH, VENDOR_TGPP, 600),
        PyAvp.new(AVP_TGPP_CODEC_DATA, VENDOR_TGPP,
                  "uplink\noffer\n" + codec.format(port=port)),
        PyAvp.new(AVP_TGPP_CODEC_DATA, VENDOR_TGPP,
                  "downlink\nanswer\n" + codec.format(port=50000)),
        PyAvp.new(AVP_TGPP_FLOW_STATUS, VENDOR_TGPP, 2),
    ])  # fmt: skip


def component(
    number: int,
    media_type: int | None = None,
    flows: tuple[tuple[int, tuple[str, ...], int], ...] = (),
    bandwidth: int | None = None,
    flow_status: int | None = None,
) -> PyAvp:
    """A Media-Component-Description with only the given parts (for modifications)."""
    children = [PyAvp.new(AVP_TGPP_MEDIA_COMPONENT_NUMBER, VENDOR_TGPP, number)]
    for flow, descriptions, usage in flows:
        children.append(PyAvp.new(AVP_TGPP_MEDIA_SUB_COMPONENT, VENDOR_TGPP, [
            PyAvp.new(AVP_TGPP_FLOW_NUMBER, VENDOR_TGPP, flow),
            *(PyAvp.new(AVP_TGPP_FLOW_DESCRIPTION, VENDOR_TGPP, d.encode()) for d in descriptions),
            PyAvp.new(AVP_TGPP_FLOW_USAGE, VENDOR_TGPP, usage),
        ]))  # fmt: skip
    if media_type is not None:
        children.append(PyAvp.new(AVP_TGPP_MEDIA_TYPE, VENDOR_TGPP, media_type))
    if bandwidth is not None:
        for code in (AVP_TGPP_MAX_REQUESTED_BANDWIDTH_UL, AVP_TGPP_MAX_REQUESTED_BANDWIDTH_DL):
            children.append(PyAvp.new(code, VENDOR_TGPP, bandwidth))
    if flow_status is not None:
        children.append(PyAvp.new(AVP_TGPP_FLOW_STATUS, VENDOR_TGPP, flow_status))
    return PyAvp.new(AVP_TGPP_MEDIA_COMPONENT_DESCRIPTION, VENDOR_TGPP, children)


class Charging:
    """The charging state the PCRF sees (what the OCS wiring would answer)."""

    def __init__(self) -> None:
        self.exhausted: set[str] = set()

    async def charging_state(self, subscriber: SubscriberRef) -> ChargingState:
        return ChargingState(exhausted=subscriber.imsi in self.exhausted)


@dataclass
class Harness:
    url: str
    tmp_path: Path
    clock: Callable[[], datetime] | None = None
    config: PcrfConfig = field(default_factory=lambda: PcrfConfig(rar_timeout=1.0, af_timeout=0.5))
    wire: Wire = field(default_factory=Wire)
    charging: Charging = field(default_factory=Charging)

    async def start(self) -> Harness:
        self.engine = create_engine(self.url)
        await asyncio.to_thread(upgrade, self.engine)
        spec = provisioning.PolicyProvisioning.model_validate(POLICY)
        await asyncio.to_thread(provisioning.apply, self.engine, spec)
        await self._start_pcrf()
        self.pgw = Pgw(self.wire)
        await self.pgw.connect(self.port)
        self.pcscf = Pcscf(self.wire)
        await self.pcscf.connect(self.port)
        return self

    async def _start_pcrf(self) -> None:
        apps = frozenset({(APP_GX, VENDOR_3GPP), (APP_RX, VENDOR_3GPP)})
        self.node = Node(LocalIdentity(PCRF_HOST, REALM, applications=apps), PeerPolicy())
        self.pcrf = Pcrf(self.node, self.engine, self.config, charging=self.charging,
                         clock=self.clock)  # fmt: skip
        await self.pcrf.start()
        _, self.port = await self.node.listen("127.0.0.1", 0)

    async def restart_pcrf(self) -> None:
        """Stop the PCRF process (sockets closed, memory gone) and start a new one on the same
        database; both clients reconnect."""
        await self.pcscf.close()  # python-diameter's socket does not answer DPR
        await self.pcrf.stop()
        await self.node.close()
        await self._start_pcrf()
        await self.pgw.connect(self.port)
        self.pcscf = Pcscf(self.wire)
        await self.pcscf.connect(self.port)

    async def stop(self) -> None:
        await self.pcscf.close()
        await self.pgw.node.close()
        await self.pcrf.stop()
        await self.node.close()
        self.engine.dispose()


@pytest.fixture
def harness(tmp_path: Path) -> Callable[..., Harness]:
    """A PCRF harness on SQLite; each one made gets a database of its own."""
    count = iter(range(1_000))

    def make(**kwargs: Any) -> Harness:
        return Harness(f"sqlite:///{tmp_path / f'openpcc-{next(count)}.db'}", tmp_path, **kwargs)

    return make


@pytest.fixture
def any_harness(database_url: str, tmp_path: Path) -> Callable[..., Harness]:
    """Like ``harness``, once on SQLite and once on PostgreSQL."""

    def make(**kwargs: Any) -> Harness:
        return Harness(database_url, tmp_path, **kwargs)

    return make


@pytest.fixture
def needs_tshark() -> None:
    if not (shutil.which("tshark") and shutil.which("text2pcap")):
        pytest.skip("tshark/text2pcap not installed")


@pytest.fixture
def audio() -> Callable[..., PyAvp]:
    return audio_component


@pytest.fixture
def kit() -> SimpleNamespace:
    """The harness parts, for tests that assemble their own PCRF (e.g. via openpcc.app)."""
    return SimpleNamespace(Pgw=Pgw, Pcscf=Pcscf, Wire=Wire, POLICY=POLICY, component=component)
