"""Wiring: the Diameter nodes built from Settings, the domains' routes, the process lifecycle.

``build_app(settings)`` makes one :class:`~diam.node.Node` per listener (each with its own
Origin-Host/Realm and applications) sharing one router and one metrics registry, then calls each
module of :data:`DOMAIN_MODULES`: a domain exposes ``install(app: App) -> None`` and adds its
handlers with ``app.router.add_route(APP_GX, CMD_CREDIT_CONTROL, handler)``. ``serve(app)`` binds
the listeners, logs readiness and runs until SIGINT/SIGTERM, then sends DPR to every peer.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import importlib
import logging
import signal
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.engine import Engine

from diam.identity import LocalIdentity, PeerPolicy, applications_from_names, firmware_revision
from diam.metrics import Metrics
from diam.node import Node
from diam.router import Router
from diam.tls import TlsConfig
from openpcc import __version__
from openpcc.credit import LedgerCredit
from openpcc.database import create_engine, upgrade
from schemas.settings import DiameterListener, DiameterTls, Settings

logger = logging.getLogger("openpcc")

# Modules exposing ``install(app)``; PCRF (policy/) and OCS (charging/) register here.
DOMAIN_MODULES: tuple[str, ...] = (
    "policy.service",
    "charging.service",
    "charging.cdr.service",
    "ims.service",  # SIP listener (OPENPCC_IMS_ENABLED) with its Rx/Ro clients
    "api.server",  # management API, console and /metrics (OPENPCC_API_*), last: uses the above
)


@dataclass(slots=True)
class Listener:
    """One Diameter listener: where it binds and the node (identity) behind it."""

    host: str
    port: int
    node: Node
    connect: tuple[tuple[str, int], ...] = ()  # peers this identity keeps connected to
    bound: tuple[str, int] | None = None


@dataclass(slots=True)
class App:
    settings: Settings
    router: Router = field(default_factory=Router)
    metrics: Metrics = field(default_factory=Metrics)
    listeners: list[Listener] = field(default_factory=list)
    # Async hooks a domain adds in install(): run before the listeners bind / after they close.
    startup: list[Callable[[], Awaitable[None]]] = field(default_factory=list)
    shutdown: list[Callable[[], Awaitable[None]]] = field(default_factory=list)
    # What each domain's install() returned (e.g. the Pcrf, the OcsApplication), by module name.
    services: dict[str, Any] = field(default_factory=dict)
    _engine: Engine | None = None

    def database(self) -> Engine:
        """The process's Engine on OPENPCC_DATABASE_URL, migrated to head on first use."""
        if self._engine is None:
            self._engine = create_engine(self.settings.database_url)
            upgrade(self._engine)
        return self._engine

    @property
    def nodes(self) -> list[Node]:
        return [listener.node for listener in self.listeners]

    def node_for(self, app_id: int) -> Node:
        """The first node serving ``app_id`` (e.g. to send a Gx RAR from the PCRF identity)."""
        for node in self.nodes:
            if app_id in node.identity.application_ids:
                return node
        raise LookupError(f"no Diameter listener serves application {app_id}")


def listener_specs(settings: Settings) -> list[DiameterListener]:
    """OPENPCC_DIAMETER_LISTENERS, or the single default listener from the flat settings."""
    if settings.diameter_listeners:
        specs = list(settings.diameter_listeners)
    else:
        specs = [
            DiameterListener(
                host=settings.diameter_host,
                port=settings.diameter_port,
                origin_host=settings.diameter_origin_host,
                origin_realm=settings.diameter_origin_realm,
                applications=settings.diameter_applications.split(","),
                connect=[a.strip() for a in settings.diameter_connect.split(",") if a.strip()],
                tls=default_tls(settings),
            )
        ]
    seen: set[tuple[str, int]] = set()
    for spec in specs:
        if spec.port and (spec.host, spec.port) in seen:
            raise ValueError(f"two Diameter listeners on {spec.host}:{spec.port}")
        seen.add((spec.host, spec.port))
    return specs


def default_tls(settings: Settings) -> DiameterTls | None:
    """The default listener's TLS from the flat OPENPCC_DIAMETER_TLS_* settings (None: plain)."""
    if not settings.diameter_tls_cert:
        return None
    return DiameterTls(
        cert=settings.diameter_tls_cert,
        key=settings.diameter_tls_key,
        ca=settings.diameter_tls_ca,
        require_client_cert=settings.diameter_tls_require_client_cert,
        min_version=settings.diameter_tls_min_version,
        ciphers=settings.diameter_tls_ciphers,
        verify_origin_host=settings.diameter_tls_verify_origin_host,
    )


def parse_address(text: str, default_port: int = 3868) -> tuple[str, int]:
    """``host``, ``host:port``, ``[v6]:port`` -> (host, port)."""
    text = text.strip()
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        port = rest.removeprefix(":")
    elif text.count(":") == 1:
        host, _, port = text.partition(":")
    else:
        host, port = text, ""
    if not host:
        raise ValueError(f"bad Diameter peer address {text!r}")
    return host, int(port) if port else default_port


def build_app(settings: Settings | None = None) -> App:
    """Nodes from settings, then every domain's routes."""
    app = App(settings if settings is not None else Settings())
    s = app.settings
    host_ips = tuple(ip.strip() for ip in s.diameter_host_ip_addresses.split(",") if ip.strip())
    for spec in listener_specs(s):
        identity = LocalIdentity(
            origin_host=spec.origin_host,
            origin_realm=spec.origin_realm,
            host_ip_addresses=host_ips,
            vendor_id=s.diameter_vendor_id,
            product_name="OpenPCC",
            firmware_revision=firmware_revision(__version__),
            applications=applications_from_names(spec.applications),
        )
        policy = PeerPolicy.parse(spec.peers if spec.peers is not None else s.diameter_peers)
        node = Node(
            identity,
            policy,
            app.router,
            metrics=app.metrics,
            watchdog=s.diameter_watchdog_seconds,
            max_in_flight=s.diameter_max_in_flight,
            request_timeout=s.diameter_request_timeout_seconds,
            tls=TlsConfig(**spec.tls.model_dump()) if spec.tls is not None else None,
        )
        connect = tuple(parse_address(address) for address in spec.connect)
        app.listeners.append(Listener(spec.host, spec.port, node, connect))
    for name in DOMAIN_MODULES:
        extra = {"charging": LedgerCredit(app.database())} if name == "policy.service" else {}
        app.services[name] = importlib.import_module(name).install(app, **extra)
    return app


#: Allocations between young-generation collections (CPython's default 700 made the cyclic
#: collector ~25 % of the server's CPU under CCR load; the CCR path creates few cycles).
GC_YOUNG_THRESHOLD = 20_000
#: The same with the IMS core in the process. A SIP call's transactions keep its messages
#: alive for up to 64·T1, so nearly every young object survives its first pass: at 20,000 a
#: young pass took ~15 ms and a middle one (ten passes' survivors) ~150 ms, every call set up
#: meanwhile waiting. At 4,000 the longest pause is ~40 ms, for no more CPU (bench.ims at 200
#: calls/s, 30 s runs: setup p99 56-84 ms instead of 184-368 ms).
GC_YOUNG_THRESHOLD_SIP = 4_000
#: And a middle pass every 4 young ones instead of 10: it walks the survivors of the young passes
#: since the last one, which the lingering transactions keep, so its pause scales with their
#: number (bench.ims at 200 calls/s, alternating runs: longest middle pass 51-53 -> 32-33 ms,
#: the same collector time in all).
GC_MIDDLE_THRESHOLD_SIP = 4


def tune_gc(young_threshold: int = GC_YOUNG_THRESHOLD, middle_threshold: int | None = None) -> None:
    """What start-up loaded (tariffs, provisioning, SQLAlchemy metadata) lives as long as the
    process: collect once, then move the survivors out of the collector's reach (``freeze``) so
    its full passes stay short; and collect the young generation less often (process-wide: the
    young threshold is only ever raised), the middle one as often as ``middle_threshold`` says."""
    gc.collect()
    gc.freeze()
    young, middle, old = gc.get_threshold()
    gc.set_threshold(max(young, young_threshold), middle_threshold or middle, old)


async def serve(
    app: App,
    *,
    stop: asyncio.Event | None = None,
    on_ready: Callable[[App], None] | None = None,
) -> None:
    """Bind every listener, run until ``stop`` is set or SIGINT/SIGTERM, then close cleanly."""
    stop = stop if stop is not None else asyncio.Event()
    loop = asyncio.get_running_loop()
    installed: list[signal.Signals] = []
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            loop.add_signal_handler(sig, stop.set)
            installed.append(sig)
    try:
        for hook in app.startup:
            await hook()
        if app.services.get("ims.service"):
            tune_gc(GC_YOUNG_THRESHOLD_SIP, GC_MIDDLE_THRESHOLD_SIP)
        else:
            tune_gc(GC_YOUNG_THRESHOLD)
        for listener in app.listeners:
            listener.bound = await listener.node.listen(listener.host, listener.port)
        for listener in app.listeners:
            for host, port in listener.connect:
                listener.node.keep_connected(host, port, tc=app.settings.diameter_tc_seconds)
        logger.info(
            "event=ready version=%s diameter=%s",
            __version__,
            ",".join(
                f"{lst.node.identity.origin_host}@{lst.bound[0]}:{lst.bound[1]}"
                for lst in app.listeners
                if lst.bound
            ),
        )
        if on_ready is not None:
            on_ready(app)
        await stop.wait()
        logger.info("event=stopping")
    finally:
        await asyncio.gather(*(node.close() for node in app.nodes), return_exceptions=True)
        for hook in app.shutdown:
            await hook()
        for sig in installed:
            loop.remove_signal_handler(sig)
    logger.info("event=stopped")


def run(settings: Settings | None = None) -> int:
    """Build and serve on uvloop when importable (else the default loop); 0 on a clean stop."""
    app = build_app(settings)
    try:
        import uvloop
    except ImportError:
        asyncio.run(serve(app))
    else:
        uvloop.run(serve(app))
    return 0
