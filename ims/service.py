"""The IMS core assembled: SIP listener (registrar + proxy) with the P-CSCF (Rx) and S-CSCF (Ro)
roles on a Diameter client node pointed at any PCRF/OCS, plus ``install(app)`` for openpcc.app.

    service = ImsService(ImsConfig(...))
    await service.start()      # SIP on UDP+TCP, Diameter peers connected lazily
    ...
    await service.close()
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from diam.constants import APP_CREDIT_CONTROL, APP_RX, VENDOR_3GPP
from diam.identity import LocalIdentity, PeerPolicy
from diam.node import Node
from ims.call import CallHooks
from ims.links import PeerLink
from ims.pcscf import PcscfRx
from ims.proxy import CoreConfig, ImsCore
from ims.scscf import ScscfRo
from ims.sip.transaction import Timers
from schemas.settings import Settings

log = logging.getLogger("openpcc.ims")


@dataclass(frozen=True, slots=True)
class DiameterPeer:
    host: str
    port: int
    realm: str


@dataclass(frozen=True, slots=True)
class ImsConfig:
    core: CoreConfig = field(default_factory=CoreConfig)
    origin_host: str = "cscf.localdomain"
    origin_realm: str = "localdomain"
    pcrf: DiameterPeer | None = None  # None: no Rx
    ocs: DiameterPeer | None = None  # None: no Ro
    rx_mandatory: bool = True
    rx_register_aar: bool = False  # AAR for the SIP signalling path at REGISTER
    ro_service_context: str = "32260@3gpp.org"
    ro_requested_seconds: int = 60
    ro_buffer_seconds: float = 5.0
    diameter_timeout: float = 3.0
    timers: Timers = field(default_factory=Timers)


def config_from_settings(s: Settings) -> ImsConfig:
    def peer(host: str, port: int, realm: str) -> DiameterPeer | None:
        return DiameterPeer(host, port, realm) if host else None

    return ImsConfig(
        core=CoreConfig(
            domain=s.ims_domain,
            host=s.ims_sip_host,
            port=s.ims_sip_port,
            min_expires=s.ims_min_expires,
            max_expires=s.ims_max_expires,
        ),
        origin_host=s.ims_origin_host,
        origin_realm=s.ims_origin_realm,
        pcrf=peer(s.ims_pcrf_host, s.ims_pcrf_port, s.ims_pcrf_realm),
        ocs=peer(s.ims_ocs_host, s.ims_ocs_port, s.ims_ocs_realm),
        rx_mandatory=s.ims_rx_mandatory,
        rx_register_aar=s.ims_rx_register_aar,
        ro_service_context=s.ims_ro_service_context,
        ro_requested_seconds=s.ims_ro_requested_seconds,
        ro_buffer_seconds=s.ims_ro_buffer_seconds,
        diameter_timeout=s.ims_diameter_timeout_seconds,
        timers=Timers(t1=s.ims_sip_t1_ms / 1000, t2=s.ims_sip_t2_ms / 1000),
    )


class ImsService:
    def __init__(self, config: ImsConfig) -> None:
        self.config = config
        apps = set()
        if config.pcrf:
            apps.add((APP_RX, VENDOR_3GPP))
        if config.ocs:
            apps.add((APP_CREDIT_CONTROL, VENDOR_3GPP))
        identity = LocalIdentity(
            config.origin_host, config.origin_realm, applications=frozenset(apps)
        )
        self.node = Node(identity, PeerPolicy())
        links: dict[tuple[str, int], PeerLink] = {}

        def link(peer: DiameterPeer) -> PeerLink:
            key = (peer.host, peer.port)
            if key not in links:  # PCRF and OCS in one process share the connection
                links[key] = PeerLink(self.node, peer.host, peer.port, peer.realm)
            return links[key]

        self.core = ImsCore(config.core, [], config.timers)
        hooks: list[CallHooks] = self.core.hooks
        self.ro: ScscfRo | None = None
        self.rx: PcscfRx | None = None
        if config.ocs:  # S-CSCF first: no credit, no media authorization
            self.ro = ScscfRo(
                self.node,
                link(config.ocs),
                self.core.release,
                service_context=config.ro_service_context,
                requested_seconds=config.ro_requested_seconds,
                buffer=config.ro_buffer_seconds,
                timeout=config.diameter_timeout,
            )
            hooks.append(self.ro)
        if config.pcrf:
            self.rx = PcscfRx(
                self.node,
                link(config.pcrf),
                self.core.release,
                mandatory=config.rx_mandatory,
                timeout=config.diameter_timeout,
                register_aar=config.rx_register_aar,
            )
            hooks.append(self.rx)
        self.links = list(links.values())

    async def start(self) -> None:
        await self.core.start()
        if self.rx is not None:
            self.rx.signalling = (self.config.core.host, self.core.port)
        log.info(
            "event=ims_ready sip=%s:%d domain=%s rx=%s ro=%s",
            self.config.core.host,
            self.core.port,
            self.config.core.domain,
            bool(self.rx),
            bool(self.ro),
        )

    async def close(self) -> None:
        await self.core.close()
        await self.node.close()


def install(app: Any) -> ImsService | None:
    """Start the IMS core with the process when OPENPCC_IMS_ENABLED is set; its Diameter peers
    connect on the first call, so an in-process PCRF/OCS may bind after it."""
    settings: Settings = app.settings
    if not settings.ims_enabled:
        return None
    service = ImsService(config_from_settings(settings))
    app.startup.append(service.start)
    app.shutdown.append(service.close)
    return service
