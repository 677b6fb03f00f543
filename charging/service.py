"""The OCS wired into the OpenPCC process: ``install(app)`` (listed in openpcc.app's
DOMAIN_MODULES) reads the settings, migrates and provisions the database, loads the tariffs and
routes Ro/Gy CCRs of every listener serving application 4 to one :class:`OcsApplication`."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from charging.cdr.partial import PartialRecordPolicy
from charging.config import OcsConfig
from charging.provisioning import apply_file
from charging.ro import OcsApplication
from diam.constants import APP_CREDIT_CONTROL
from rating.loader import load_plan
from rating.plan import Plan
from schemas.settings import Settings

log = logging.getLogger("openpcc.charging")


def load_tariffs(paths: str) -> dict[str, Plan]:
    """Tariff plans by name from comma-separated tariff files."""
    plans: dict[str, Plan] = {}
    for path in (p.strip() for p in paths.split(",")):
        if path:
            plan = load_plan(path)
            plans[plan.name] = plan
    return plans


def config_from_settings(settings: Settings, node_id: str) -> OcsConfig:
    s = settings
    return OcsConfig(
        tariffs=load_tariffs(s.charging_tariffs),
        node_id=s.charging_node_id or node_id,
        validity_time=s.charging_validity_time_seconds,
        sweep_grace=s.charging_sweep_grace_seconds,
        quota_holding_time=s.charging_quota_holding_time_seconds,
        threshold_percent=s.charging_threshold_percent,
        default_seconds=s.charging_default_seconds,
        default_octets=s.charging_default_octets,
        failure_handling=s.charging_failure_handling,
        partial=PartialRecordPolicy.from_settings(s),
    )


def install(app: Any) -> OcsApplication | None:
    """Add the OCS to an ``openpcc.app.App`` when one of its listeners serves Ro/Gy; returns it
    (the API re-authorises sessions through it after a top-up)."""
    nodes = [n for n in app.nodes if APP_CREDIT_CONTROL in n.identity.application_ids]
    if not nodes:
        return None
    settings: Settings = app.settings
    engine = app.database()
    if settings.provisioning:
        path = Path(settings.provisioning)
        if path.is_file():
            report = apply_file(engine, path)
            log.info("event=provisioned file=%s created=%s updated=%s", path, report.created,
                     report.updated)  # fmt: skip
        else:
            log.warning("event=provisioning_missing file=%s", path)
    # One writer by default on every backend: a second one halves the batches (so doubles the
    # per-batch cost per CCR) and contends for the GIL; on 2 cores CPU, not the database round
    # trip, is what limits throughput (bench.charging: 425+261 vs 887+677 µs server+PostgreSQL
    # CPU per CCR at 16 in flight).
    writers = settings.charging_writers or 1
    ocs = OcsApplication(
        engine,
        config_from_settings(settings, nodes[0].identity.origin_host),
        window=settings.charging_group_commit_ms / 1000,
        max_batch=settings.charging_group_commit_max,
        writers=writers,
        sweep_interval=settings.charging_sweep_interval_seconds,
    )
    ocs.install(app.router, nodes)
    app.startup.append(ocs.start)
    app.shutdown.append(ocs.stop)
    return ocs
