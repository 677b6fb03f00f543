"""The CDR exporter wired into the OpenPCC process: ``install(app)`` (in openpcc.app's
DOMAIN_MODULES, after ``charging.service``) starts the exporter as a background task on the
process's database when a listener serves Ro/Gy: to Kafka when OPENPCC_KAFKA_BOOTSTRAP is set,
else to the rotating JSON-lines files under OPENPCC_CDR_DIR (``make run``)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from charging.cdr.exporter import run_in_thread
from charging.cdr.setup import build_exporter, sink_kind
from diam.constants import APP_CREDIT_CONTROL
from schemas.settings import Settings

log = logging.getLogger("openpcc.cdr")


def install(app: Any) -> None:
    """Add the exporter's start/stop hooks to an ``openpcc.app.App`` running the OCS."""
    if not any(APP_CREDIT_CONTROL in node.identity.application_ids for node in app.nodes):
        return
    settings: Settings = app.settings
    exporter = build_exporter(settings, app.database())
    if exporter is None:
        log.warning("event=cdr_export_off (OPENPCC_CDR_SINK=off): CDRs stay in the outbox")
        return
    task: asyncio.Task[None] | None = None

    async def start() -> None:
        nonlocal task
        task = asyncio.create_task(run_in_thread(exporter), name="cdr-exporter")
        target = settings.kafka_topic if sink_kind(settings) == "kafka" else settings.cdr_dir
        log.info("event=cdr_export_started sink=%s target=%s", exporter.sink.name, target)

    async def stop() -> None:
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    app.startup.append(start)
    app.shutdown.append(stop)
