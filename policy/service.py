"""The PCRF assembled: store, catalog, scheduler, Gx and Rx applications on a Diameter node.

pcrf = Pcrf(node, engine, PcrfConfig(...), charging=source)
await pcrf.start()      # load persisted sessions and profiles, re-arm timers, add routes
...
await pcrf.subscriber_changed(imsi="001010000000001")   # e.g. from the OCS on FUI / top-up
await pcrf.stop()
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Protocol
from zoneinfo import ZoneInfo

from sqlalchemy.engine import Engine

from diam.constants import APP_GX, APP_RX
from diam.node import Node
from policy import provisioning
from policy.catalog import PolicyCatalog
from policy.decision import ChargingStateSource, NoCharging
from policy.gx import GxApp
from policy.qos import Arp, QosConfig
from policy.rx import RxApp
from policy.scheduler import Scheduler
from policy.store import SessionStore
from schemas.settings import Settings


@dataclass(frozen=True, slots=True)
class PcrfConfig:
    timezone: str = "UTC"
    rar_timeout: float = 2.0  # Gx RAR → RAA; the AAA waits for it
    af_timeout: float = 2.0  # Rx RAR/ASR to the AF (Kamailio never answers an Rx RAR)
    # Group commits start at least this far apart (seconds): at 1,000 calls/s each commit then
    # serves ~4 writes instead of ~1.3, for at most 2 ms more on an AAA/STA/CCA.
    commit_interval: float = 0.002
    qos: QosConfig = field(default_factory=QosConfig)


def config_from_settings(settings: Settings) -> PcrfConfig:
    """PcrfConfig from the ``policy_*`` settings."""
    s = settings
    return PcrfConfig(
        timezone=s.policy_timezone,
        rar_timeout=s.policy_rar_timeout_seconds,
        af_timeout=s.policy_af_timeout_seconds,
        qos=QosConfig(
            audio_arp=_dedicated_arp(s.policy_voice_arp_priority),
            video_arp=_dedicated_arp(s.policy_video_arp_priority),
            signalling_arp=_dedicated_arp(s.policy_signalling_arp_priority),
            max_gbr_ul=s.policy_max_gbr_ul or None,
            max_gbr_dl=s.policy_max_gbr_dl or None,
        ),
    )


def _dedicated_arp(priority: int) -> Arp:
    """IMS bearers may pre-empt others and may not be pre-empted (GSMA IR.92 practice)."""
    return Arp(priority, preemption_capability=True, preemption_vulnerability=False)


class Pcrf:
    def __init__(
        self,
        node: Node,
        engine: Engine,
        config: PcrfConfig = PcrfConfig(),
        *,
        charging: ChargingStateSource | None = None,
        clock: Callable[[], datetime] | None = None,
        rx_node: Node | None = None,
    ) -> None:
        """``node`` serves Gx (and sends the RARs to PCEFs); ``rx_node`` serves Rx when another
        listener identity does (default: the same node)."""
        zone = ZoneInfo(config.timezone)
        self.clock = clock if clock is not None else (lambda: datetime.now(zone))
        self.node = node
        self.store = SessionStore(engine, node.identity.origin_host, config.commit_interval)
        self.catalog = PolicyCatalog(engine, self.store.writer)
        self.scheduler = Scheduler(self.clock)
        self.gx = GxApp(
            node,
            self.store,
            self.catalog,
            charging if charging is not None else NoCharging(),
            self.scheduler,
            self.clock,
            config.rar_timeout,
        )
        self.rx = RxApp(
            rx_node or node, self.store, self.gx, self.scheduler, config.qos, config.af_timeout
        )

    async def start(self) -> None:
        await self.catalog.reload()
        await self.store.load()
        self.gx.resume()
        self.gx.register()
        self.rx.register()

    async def stop(self) -> None:
        await self.scheduler.close()
        await self.store.writer.close()

    async def reload_policies(self) -> None:
        """After provisioning changed profiles: use them at the next decision."""
        await self.catalog.reload()

    async def subscriber_changed(self, imsi: str | None = None, msisdn: str | None = None) -> None:
        """The subscriber's charging state or profile changed: re-decide and push by RAR."""
        await self.gx.subscriber_changed(imsi, msisdn)


class _App(Protocol):
    """What openpcc.app.App offers a domain's install() (no import of openpcc here)."""

    settings: Settings
    startup: list[Callable[[], Awaitable[None]]]
    shutdown: list[Callable[[], Awaitable[None]]]

    def node_for(self, app_id: int) -> Node: ...

    def database(self) -> Engine: ...


def install(app: _App, charging: ChargingStateSource | None = None) -> Pcrf | None:
    """Wire the PCRF into the process: Gx/Rx on the listeners advertising them, the policy
    section of the provisioning file applied at start-up, the subscriber's credit read through
    ``charging`` (openpcc passes its ledger-backed source; None = credit never runs out).
    Returns the Pcrf (for the API: ``subscriber_changed`` after a top-up), None when no
    listener serves Gx."""
    try:
        node = app.node_for(APP_GX)
    except LookupError:
        return None
    try:
        rx_node = app.node_for(APP_RX)
    except LookupError:
        rx_node = node
    engine = app.database()
    pcrf = Pcrf(
        node, engine, config_from_settings(app.settings), charging=charging, rx_node=rx_node
    )

    async def start() -> None:
        name = app.settings.policy_provisioning or app.settings.provisioning
        path = Path(name) if name else None
        if path is not None and path.is_file():
            spec = provisioning.load(path)
            await asyncio.to_thread(provisioning.apply, engine, spec)
        await pcrf.start()

    app.startup.append(start)
    app.shutdown.append(pcrf.stop)
    return pcrf
