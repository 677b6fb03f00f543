"""Gx/Rx session state: an in-memory index (Session-Id, UE IPv4, UE IPv6 prefix) over the
``policy_gx_sessions`` / ``policy_rx_sessions`` tables, and the fair-use counters.

Every change is durable before the Diameter answer that reports it is sent: writes go through a
group-commit writer (one transaction, one fsync, for every change queued while the previous commit
ran) on a worker thread, so the event loop never blocks on the disk and throughput comes from
batching rather than from skipping durability.

Sessions held by this process (``served_by`` = our Origin-Host) are cached; a lookup that misses
the cache falls back to the database, so an AAR reaching another OpenPCC process sharing the
database still finds the Gx session (and its PCEF) bound to the UE's address.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from policy.decision import Ambr, Decision, MonitoringGrant
from policy.models import GxSession, RxSession
from policy.qos import (
    Arp,
    FlowStatus,
    FlowUsage,
    MediaComponent,
    MediaSubComponent,
    MediaType,
    PccRule,
)
from policy.writer import Delete, GroupCommitWriter, Upsert

log = logging.getLogger("openpcc.policy")

GX = GxSession.__table__
RX = RxSession.__table__
# Looked up once: Table.c attribute access goes through SQLAlchemy's __getattr__ (~1 µs).
_GX_ID, _RX_ID, _RX_GX = GX.c.session_id, RX.c.session_id, RX.c.gx_session_id


@dataclass(slots=True)
class GxState:
    session_id: str
    subscriber_id: int
    profile: str
    imsi: str | None
    msisdn: str | None
    apn: str
    ue_ipv4: str | None
    ue_ipv6_prefix: str | None
    pcef_host: str
    pcef_realm: str
    served_by: str
    decision: Decision | None = None
    event_triggers: frozenset[int] = frozenset()
    rat_type: int | None = None
    ip_can_type: int | None = None
    origin_state_id: int | None = None  # the PCEF's, at CCR-I (RFC 6733 §8.16)
    # Rules whose removal the PCEF never confirmed (RAR unanswered): removed again at the next
    # RAR or CCA, so an unreachable PGW does not keep a dead call's bearer.
    stale_rules: frozenset[str] = frozenset()
    rx_sessions: set[str] = field(default_factory=set)
    lock: asyncio.Lock = field(default_factory=asyncio.Lock, repr=False, compare=False)

    def row(self) -> dict[str, Any]:
        state = {
            "profile": self.profile,
            "imsi": self.imsi,
            "msisdn": self.msisdn,
            "decision": _decision_json(self.decision),
            "event_triggers": sorted(self.event_triggers),
            "rat_type": self.rat_type,
            "ip_can_type": self.ip_can_type,
            "origin_state_id": self.origin_state_id,
            "stale_rules": sorted(self.stale_rules),
        }
        return {
            "session_id": self.session_id,
            "subscriber_id": self.subscriber_id,
            "apn": self.apn,
            "ue_ipv4": self.ue_ipv4,
            "ue_ipv6_prefix": self.ue_ipv6_prefix,
            "pcef_host": self.pcef_host,
            "pcef_realm": self.pcef_realm,
            "served_by": self.served_by,
            "state": state,
        }

    @classmethod
    def from_row(cls, row: Any, rx_sessions: set[str]) -> GxState:
        state = row.state
        return cls(
            session_id=row.session_id,
            subscriber_id=row.subscriber_id,
            profile=state["profile"],
            imsi=state.get("imsi"),
            msisdn=state.get("msisdn"),
            apn=row.apn,
            ue_ipv4=row.ue_ipv4,
            ue_ipv6_prefix=row.ue_ipv6_prefix,
            pcef_host=row.pcef_host,
            pcef_realm=row.pcef_realm,
            served_by=row.served_by,
            decision=_decision_from(state.get("decision")),
            event_triggers=frozenset(state.get("event_triggers", ())),
            rat_type=state.get("rat_type"),
            ip_can_type=state.get("ip_can_type"),
            origin_state_id=state.get("origin_state_id"),
            stale_rules=frozenset(state.get("stale_rules", ())),
            rx_sessions=rx_sessions,
        )


@dataclass(slots=True)
class RxState:
    session_id: str
    gx_session_id: str
    af_host: str
    af_realm: str
    components: dict[int, MediaComponent] = field(default_factory=dict)
    rules: tuple[str, ...] = ()
    specific_actions: frozenset[int] = frozenset()
    icid: bytes | None = None
    # The PCC rules last derived from ``components`` (not stored: None after a restart, when
    # they are derived again), so a modification compares without deriving the old ones anew.
    derived: tuple[PccRule, ...] | None = field(default=None, compare=False, repr=False)

    def row(self) -> dict[str, Any]:
        state = {
            "components": [_component_json(c) for c in self.components.values()],
            "rules": list(self.rules),
            "specific_actions": sorted(self.specific_actions),
            "icid": self.icid.hex() if self.icid is not None else None,
        }
        return {
            "session_id": self.session_id,
            "gx_session_id": self.gx_session_id,
            "af_host": self.af_host,
            "af_realm": self.af_realm,
            "state": state,
        }

    @classmethod
    def from_row(cls, row: Any) -> RxState:
        state = row.state
        comps = [_component_from(c) for c in state.get("components", ())]
        icid = state.get("icid")
        return cls(
            session_id=row.session_id,
            gx_session_id=row.gx_session_id,
            af_host=row.af_host,
            af_realm=row.af_realm,
            components={c.number: c for c in comps},
            rules=tuple(state.get("rules", ())),
            specific_actions=frozenset(state.get("specific_actions", ())),
            icid=bytes.fromhex(icid) if icid else None,
        )


class SessionStore:
    """Index + durable store of Gx and Rx sessions (see the module docstring)."""

    def __init__(self, engine: Engine, origin_host: str, commit_interval: float = 0.0) -> None:
        self.engine = engine
        self.origin_host = origin_host
        self.writer = GroupCommitWriter(engine, commit_interval)
        self._gx: dict[str, GxState] = {}
        self._rx: dict[str, RxState] = {}
        self._by_ipv4: dict[str, str] = {}
        self._by_ipv6: dict[str, str] = {}

    async def load(self) -> None:
        """Rebuild the cache from the sessions this node serves (after a restart)."""

        def read(conn: Connection) -> tuple[list[Any], list[Any]]:
            gx = conn.execute(sa.select(GX).where(GX.c.served_by == self.origin_host)).all()
            ids = [r.session_id for r in gx]
            rx = conn.execute(sa.select(RX).where(RX.c.gx_session_id.in_(ids))).all() if ids else []
            return gx, rx

        gx_rows, rx_rows = await asyncio.to_thread(self._read, read)
        rx_by_gx: dict[str, set[str]] = {}
        for row in rx_rows:
            self._rx[row.session_id] = RxState.from_row(row)
            rx_by_gx.setdefault(row.gx_session_id, set()).add(row.session_id)
        for row in gx_rows:
            self._index(GxState.from_row(row, rx_by_gx.get(row.session_id, set())))
        log.info("event=policy_sessions_loaded gx=%d rx=%d", len(self._gx), len(self._rx))

    def _read(self, fn: Callable[[Connection], Any]) -> Any:
        with self.engine.connect() as conn:
            return fn(conn)

    # --- Gx ------------------------------------------------------------------------------

    def gx(self, session_id: str) -> GxState | None:
        return self._gx.get(session_id)

    def gx_of_subscriber(self, subscriber_id: int) -> list[GxState]:
        return [s for s in self._gx.values() if s.subscriber_id == subscriber_id]

    def all_gx(self) -> list[GxState]:
        return list(self._gx.values())

    async def find_gx(self, ipv4: str | None, ipv6: str | None, apn: str | None) -> GxState | None:
        """The IP-CAN session bound to the UE address (TS 29.213 binding mechanism), APN-checked."""
        sid = self._by_ipv4.get(ipv4) if ipv4 else None
        if sid is None and ipv6:
            sid = self._by_ipv6.get(_slash64(ipv6))
        state = self._gx.get(sid) if sid else None
        if state is None:
            state = await self._find_gx_in_database(ipv4, ipv6)
        if state is not None and apn and state.apn.lower() != apn.lower():
            return None
        return state

    async def find_gx_by_id(self, session_id: str) -> GxState | None:
        """A Gx session served by another process sharing the database."""
        state = self._gx.get(session_id)
        if state is not None:
            return state

        def read(conn: Connection) -> tuple[Any, list[str]] | None:
            row = conn.execute(sa.select(GX).where(GX.c.session_id == session_id)).first()
            if row is None:
                return None
            rx = conn.execute(sa.select(RX.c.session_id).where(RX.c.gx_session_id == session_id))
            return row, list(rx.scalars())

        found = await asyncio.to_thread(self._read, read)
        return None if found is None else GxState.from_row(found[0], set(found[1]))

    async def _find_gx_in_database(self, ipv4: str | None, ipv6: str | None) -> GxState | None:
        def read(conn: Connection) -> tuple[Any, list[str]] | None:
            if ipv4:
                cond = GX.c.ue_ipv4 == ipv4
            elif ipv6:
                cond = GX.c.ue_ipv6_prefix == _slash64(ipv6)
            else:
                return None
            row = conn.execute(
                sa.select(GX).where(cond).order_by(GX.c.updated_at.desc()).limit(1)
            ).first()
            if row is None:
                return None
            rx = conn.execute(
                sa.select(RX.c.session_id).where(RX.c.gx_session_id == row.session_id)
            ).scalars()
            return row, list(rx)

        found = await asyncio.to_thread(self._read, read)
        return None if found is None else GxState.from_row(found[0], set(found[1]))

    async def save_gx(self, state: GxState) -> None:
        if state.served_by == self.origin_host:
            self._index(state)
        await self.writer.run(Upsert(GX, _GX_ID, state.row()))

    async def delete_gx(self, state: GxState) -> list[RxState]:
        """Forget the IP-CAN session and every Rx session bound to it (returned)."""
        self._gx.pop(state.session_id, None)
        if state.ue_ipv4 and self._by_ipv4.get(state.ue_ipv4) == state.session_id:
            del self._by_ipv4[state.ue_ipv4]
        if state.ue_ipv6_prefix and self._by_ipv6.get(state.ue_ipv6_prefix) == state.session_id:
            del self._by_ipv6[state.ue_ipv6_prefix]
        cached = {s: self._rx.pop(s) for s in list(state.rx_sessions) if s in self._rx}
        sid = state.session_id

        # AF sessions another process bound to this IP-CAN session are only in the database:
        # DELETE … RETURNING hands them back (SQLite ≥ 3.35, PostgreSQL).
        rows = await self.writer.run(Delete(GX, _GX_ID, sid, _RX_GX))
        others = [RxState.from_row(r) for r in rows if r.session_id not in cached]
        return [*cached.values(), *others]

    def _index(self, state: GxState) -> None:
        self._gx[state.session_id] = state
        if state.ue_ipv4:
            self._by_ipv4[state.ue_ipv4] = state.session_id
        if state.ue_ipv6_prefix:
            self._by_ipv6[state.ue_ipv6_prefix] = state.session_id

    # --- Rx ------------------------------------------------------------------------------

    def cached_rx(self, session_id: str) -> RxState | None:
        return self._rx.get(session_id)

    def serves(self, ipv4: str | None, ipv6: str | None, apn: str | None) -> bool:
        """Whether this process holds the Gx session bound to the address (then every AF
        session bound to it is in the cache too, and a miss means a new AF session)."""
        sid = self._by_ipv4.get(ipv4) if ipv4 else None
        if sid is None and ipv6:
            sid = self._by_ipv6.get(_slash64(ipv6))
        state = self._gx.get(sid) if sid else None
        return state is not None and (not apn or state.apn.lower() == apn.lower())

    async def rx(self, session_id: str) -> RxState | None:
        state = self._rx.get(session_id)
        if state is not None:
            return state

        def read(conn: Connection) -> Any:
            return conn.execute(sa.select(RX).where(RX.c.session_id == session_id)).first()

        row = await asyncio.to_thread(self._read, read)
        return None if row is None else RxState.from_row(row)

    def rx_of(self, gx: GxState) -> list[RxState]:
        return [self._rx[s] for s in sorted(gx.rx_sessions) if s in self._rx]

    async def save_rx(self, gx: GxState, rx: RxState) -> None:
        """Persist the Rx session (bound to ``gx``, whose own row does not change)."""
        gx.rx_sessions.add(rx.session_id)
        if gx.served_by == self.origin_host:
            self._rx[rx.session_id] = rx
        await self.writer.run(Upsert(RX, _RX_ID, rx.row()))

    async def delete_rx(self, gx: GxState | None, rx: RxState) -> None:
        self._rx.pop(rx.session_id, None)
        if gx is not None:
            gx.rx_sessions.discard(rx.session_id)
        await self.writer.run(Delete(RX, _RX_ID, rx.session_id))


def _slash64(address: str) -> str:
    """Index key of an IPv6 address or prefix: its /64 (TS 23.401 §5.3.1.2.2 prefix per PDN)."""
    return str(ipaddress.IPv6Network(address.split("/")[0] + "/64", strict=False))


def _decision_json(d: Decision | None) -> dict[str, Any] | None:
    if d is None:
        return None
    return {
        "qci": d.qci,
        "arp": [d.arp.priority_level, d.arp.preemption_capability, d.arp.preemption_vulnerability],
        "ambr": [d.ambr.ul, d.ambr.dl],
        "rules": sorted(d.predefined_rules),
        "bases": sorted(d.rule_bases),
        "monitoring": [[g.monitoring_key, g.octets] for g in d.monitoring],
        "reasons": list(d.reasons),
        "online": d.online,
        "offline": d.offline,
    }


def _decision_from(data: dict[str, Any] | None) -> Decision | None:
    if data is None:
        return None
    return Decision(
        qci=data["qci"],
        arp=Arp(*data["arp"]),
        ambr=Ambr(*data["ambr"]),
        predefined_rules=frozenset(data["rules"]),
        rule_bases=frozenset(data["bases"]),
        monitoring=tuple(MonitoringGrant(k, o) for k, o in data["monitoring"]),
        reasons=tuple(data["reasons"]),
        online=data["online"],
        offline=data["offline"],
    )


def _component_json(c: MediaComponent) -> dict[str, Any]:
    """What ``dataclasses.asdict`` gives, without its deep copies (the AAR hot path)."""
    subs = [
        {
            "flow_number": s.flow_number,
            "flow_descriptions": list(s.flow_descriptions),
            "flow_usage": _int(s.flow_usage),
            "flow_status": _int(s.flow_status),
            "max_ul": s.max_ul,
            "max_dl": s.max_dl,
        }
        for s in c.sub_components
    ]
    return {
        "number": c.number,
        "media_type": _int(c.media_type),
        "max_ul": c.max_ul,
        "max_dl": c.max_dl,
        "min_ul": c.min_ul,
        "min_dl": c.min_dl,
        "rr": c.rr,
        "rs": c.rs,
        "flow_status": _int(c.flow_status),
        "codec_data": list(c.codec_data),
        "sub_components": subs,
    }


def _int(value: int | None) -> int | None:
    return None if value is None else int(value)


def _component_from(data: dict[str, Any]) -> MediaComponent:
    subs = tuple(
        MediaSubComponent(
            flow_number=s["flow_number"],
            flow_descriptions=tuple(s["flow_descriptions"]),
            flow_usage=_maybe(FlowUsage, s["flow_usage"]),
            flow_status=_maybe(FlowStatus, s["flow_status"]),
            max_ul=s["max_ul"],
            max_dl=s["max_dl"],
        )
        for s in data["sub_components"]
    )
    return MediaComponent(
        **{
            **data,
            "media_type": _maybe(MediaType, data["media_type"]),
            "flow_status": _maybe(FlowStatus, data["flow_status"]),
            "codec_data": tuple(data["codec_data"]),
            "sub_components": subs,
        }
    )


def _maybe(kind: Any, value: int | None) -> Any:
    return None if value is None else kind(value)
