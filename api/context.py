"""What the API serves from: the database, the Diameter nodes and metrics, and (when this process
runs them) the OCS and the PCRF. Built by openpcc/ wiring or by tests; every domain object is
optional so the API also runs as a pure management node."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sqlalchemy.engine import Engine

from charging.ro import OcsApplication
from diam.metrics import Metrics
from diam.node import Node
from policy.service import Pcrf
from schemas.settings import Settings

if TYPE_CHECKING:
    from api.db import AsyncDatabase


@dataclass(frozen=True, slots=True)
class Endpoint:
    """A Diameter node of this process and where it listens (None: not bound, or client only)."""

    label: str
    node: Node
    bound: tuple[str, int] | None


@dataclass(slots=True)
class ApiContext:
    settings: Settings
    engine: Engine
    metrics: Metrics = field(default_factory=Metrics)
    #: The Diameter nodes; a callable so listeners bound later are seen.
    nodes: Callable[[], list[Endpoint]] = lambda: []
    ocs: OcsApplication | None = None
    pcrf: Pcrf | None = None
    #: Extra readiness checks by name: return (ok, detail).
    checks: dict[str, Callable[[], tuple[bool, str]]] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)
    #: The async database of the serving loop (PostgreSQL), set by the API server.
    aio: AsyncDatabase | None = None
