"""Hands activated tariff uploads to this process's OCS: at start-up (so a restart keeps them)
and when a scheduled ``activate_at`` passes. The OCS rates new grants with the live plan of each
name; sessions already granted keep the reservation they hold."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import MutableMapping
from datetime import UTC, datetime

import sqlalchemy as sa

from api.context import ApiContext
from api.models import TariffUpload
from rating.loader import TariffFileError, load_plan_text

log = logging.getLogger("openpcc.api")
uploads = TariffUpload.__table__


def live_sources(ctx: ApiContext, now: datetime) -> dict[str, tuple[int, str]]:
    """For each plan name, the (upload id, YAML) of its newest activation at or before ``now``."""
    query = (
        sa.select(uploads.c.id, uploads.c.name, uploads.c.source)
        .where(uploads.c.activate_at <= now)
        .order_by(uploads.c.activate_at, uploads.c.id)
    )
    with ctx.engine.connect() as conn:
        return {name: (upload_id, source) for upload_id, name, source in conn.execute(query)}


class Activator:
    """Keeps ``ocs.config.tariffs`` in step with the activated uploads."""

    def __init__(self, ctx: ApiContext, interval: float = 15.0) -> None:
        self.ctx = ctx
        self.interval = interval
        self.applied: dict[str, int] = {}
        self._task: asyncio.Task[None] | None = None

    def apply_due(self, now: datetime | None = None) -> list[str]:
        """Load every newly live upload into the OCS; returns the plan names changed."""
        ocs = self.ctx.ocs
        if ocs is None or not isinstance(ocs.config.tariffs, MutableMapping):
            return []
        changed = []
        for name, (upload_id, source) in live_sources(self.ctx, now or datetime.now(UTC)).items():
            if self.applied.get(name) == upload_id:
                continue
            try:
                ocs.config.tariffs[name] = load_plan_text(source, f"upload-{upload_id}.yaml")
            except TariffFileError as exc:  # validated on upload; a newer rating may disagree
                log.error("event=tariff_activation_failed upload=%d error=%s", upload_id, exc)
                continue
            self.applied[name] = upload_id
            changed.append(name)
            log.info("event=tariff_activated name=%s upload=%d", name, upload_id)
        return changed

    async def _run(self) -> None:
        while True:
            await asyncio.to_thread(self.apply_due)
            await asyncio.sleep(self.interval)

    def start(self) -> None:
        if self._task is None and self.ctx.ocs is not None:
            self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
