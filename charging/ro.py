"""The Ro/Gy credit-control application on a Diameter node (application 4, command 272).

``OcsApplication`` parses each CCR (charging.ccr), hands it to the group committer
(charging.batcher) and answers only once the batch holding its outcome has committed. It also
sends Re-Auth-Requests after a top-up (RFC 4006 §5.5) and runs the no-leak sweep: sessions idle
past their Validity-Time plus a grace are closed, their holds released and a CDR written.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from sqlalchemy.engine import Connection, Engine

from charging import store
from charging.accounts import LiveSession, TopUpResult, top_up
from charging.batcher import GroupCommitter
from charging.ccr import CreditControlRequest, parse
from charging.config import OcsConfig
from charging.ledger import Cause, Ledger
from charging.models import utcnow
from charging.processor import Processor
from charging.unit_of_work import BatchContext
from diam.constants import APP_CREDIT_CONTROL, CMD_CREDIT_CONTROL, CMD_RE_AUTH, ResultCode
from diam.errors import DiameterError
from diam.message import Message
from diam.node import Node
from diam.router import Router
from schemas.cdr import CauseForRecordClosing

log = logging.getLogger("openpcc.charging")

#: Re-Auth-Request-Type AUTHORIZE_ONLY (RFC 6733 §8.12).
AUTHORIZE_ONLY = 0


@dataclass(slots=True)
class _CcrWork:
    processor: Processor
    request: Message
    ccr: CreditControlRequest

    def run(self, conn: Connection, ledger: Ledger, ctx: BatchContext) -> Message:
        return self.processor.process(conn, ledger, ctx, self.request, self.ccr)

    def fail(self, exc: BaseException) -> Message:
        log.error("session_id=%s ccr failed: %r", self.ccr.session_id, exc)
        return self.request.answer(
            ResultCode.UNABLE_TO_COMPLY,
            ("Auth-Application-Id", APP_CREDIT_CONTROL),
            ("CC-Request-Type", int(self.ccr.request_type)),
            ("CC-Request-Number", self.ccr.request_number),
        )


@dataclass(slots=True)
class _SweepWork:
    processor: Processor
    session_id: str
    account_id: int

    def run(self, conn: Connection, ledger: Ledger, ctx: BatchContext) -> bool:
        state = ctx.states.get(self.session_id)
        if state is None or state.row["state"] != "open" or state.row["expires_at"] >= ctx.now:
            return False  # answered or closed meanwhile
        self.processor.close(
            ledger, ctx, state, self.processor.config.tariffs.get(state.subscription.tariff),
            cause=CauseForRecordClosing.ABNORMAL_RELEASE,
            close_cause="swept: idle past validity",
            journal_cause=Cause("expire-session", self.session_id),
        )  # fmt: skip
        return True

    def fail(self, exc: BaseException) -> bool:
        log.error("session_id=%s sweep failed: %r", self.session_id, exc)
        return False


@dataclass(slots=True)
class _Batch:
    """The batch protocol of charging.batcher for CCRs and sweeps."""

    processor: Processor

    def context(self, now: datetime) -> BatchContext:
        return BatchContext(now)

    def lock_keys(self, conn: Connection, ctx: BatchContext, works: list[Any]) -> list[int]:
        ccrs = [w.ccr for w in works if isinstance(w, _CcrWork)]
        sweeps = [w for w in works if isinstance(w, _SweepWork)]
        keys = self.processor.lock_keys(conn, ctx, ccrs, [w.session_id for w in sweeps])
        return keys + [w.account_id for w in sweeps]

    def load(self, conn: Connection, ledger: Ledger, ctx: BatchContext, accounts: list[int],
             works: list[Any]) -> None:  # fmt: skip
        sids = [w.ccr.session_id if isinstance(w, _CcrWork) else w.session_id for w in works]
        ccrs = [w.ccr for w in works if isinstance(w, _CcrWork)]
        self.processor.load(conn, ledger, ctx, accounts, sids, ccrs)

    def flush(self, conn: Connection, ledger: Ledger, ctx: BatchContext) -> None:
        self.processor.flush(conn, ledger, ctx)


class OcsApplication:
    """The OCS: Ro/Gy over the durable ledger (see the module docstring)."""

    def __init__(
        self,
        engine: Engine,
        config: OcsConfig,
        *,
        window: float = 0.001,
        max_batch: int = 256,
        writers: int = 1,
        sweep_interval: float = 30.0,
        sweep_batch: int = 200,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.engine = engine
        self.config = config
        self.processor = Processor(config)
        self.committer = GroupCommitter(
            engine,
            _Batch(self.processor),
            window=window,
            max_batch=max_batch,
            writers=writers,
            clock=clock,
        )
        self.clock = clock
        self.sweep_interval = sweep_interval
        self.sweep_batch = sweep_batch
        self.nodes: list[Node] = []
        self._scheduler: AsyncIOScheduler | None = None
        self._sweeping = asyncio.Lock()  # held by a scheduled sweep while it runs

    def install(self, router: Router, nodes: list[Node]) -> None:
        """Route CCRs to this application; ``nodes`` are used to send Re-Auth-Requests."""
        router.add_route(APP_CREDIT_CONTROL, CMD_CREDIT_CONTROL, self.handle)
        self.nodes = list(nodes)

    async def start(self) -> None:
        """Start the group committer and the sweep (call inside the running event loop)."""
        self.committer.start()
        if self._scheduler is None and self.sweep_interval > 0:
            self._scheduler = AsyncIOScheduler()
            self._scheduler.add_job(
                self._scheduled_sweep,
                "interval",
                seconds=self.sweep_interval,
                max_instances=1,
                coalesce=True,
                next_run_time=utcnow(),
            )
            self._scheduler.start()

    async def stop(self) -> None:
        """Stop sweeping (a sweep under way finishes first: shutting the scheduler down would
        cancel it mid-batch), then finish what is queued."""
        if self._scheduler is not None:
            self._scheduler.pause()
            async with self._sweeping:
                self._scheduler.shutdown(wait=False)
            self._scheduler = None
        await self.committer.close()

    async def _scheduled_sweep(self) -> None:
        async with self._sweeping:
            await self.sweep()

    async def handle(self, request: Message, _peer: Any) -> Message:
        """CCR → CCA, answered only after its outcome is durable."""
        ccr = parse(request)
        return await self.committer.submit(_CcrWork(self.processor, request, ccr))

    # -- no-leak sweep -------------------------------------------------------------------------
    async def sweep(self, now: datetime | None = None) -> int:
        """Close every open session idle past its expiry; returns how many were closed."""
        moment = now or self.clock()

        def expired() -> list[tuple[str, int]]:
            with self.engine.connect() as conn:
                return store.expired_sessions(conn, moment, self.sweep_batch)

        due = await asyncio.to_thread(expired)
        await asyncio.to_thread(self.expire_balances, moment)
        results = await asyncio.gather(
            *(self.committer.submit(_SweepWork(self.processor, sid, acct)) for sid, acct in due)
        )
        closed = sum(1 for r in results if r)
        if closed:
            log.info("event=sweep closed=%d", closed)
        return closed

    def expire_balances(self, now: datetime) -> int:
        """Remove the unreserved remainder of buckets past their validity (journalled
        ``expire``); returns how many buckets were touched."""
        with self.engine.begin() as conn:
            ledger = Ledger(conn, now)
            touched = ledger.expire_due()
            ledger.flush()
        return touched

    # -- top-up and re-authorisation -----------------------------------------------------------
    async def top_up(
        self, account: str, amount: int, *, balance: str | None = None, reference: str | None = None
    ) -> TopUpResult:
        """Credit the account, then ask each client with a live session to re-request quota."""
        result = await asyncio.to_thread(
            top_up, self.engine, account, amount, balance=balance, reference=reference
        )
        await self.reauthorize(result.live_sessions)
        return result

    async def reauthorize(self, sessions: tuple[LiveSession, ...]) -> dict[str, int]:
        """Send RAR (AUTHORIZE_ONLY) for each session whose client is connected to one of our
        nodes; returns the RAA Result-Code by Session-Id (absent: not reachable from here)."""

        async def one(session: LiveSession) -> tuple[str, int | None]:
            for node in self.nodes:
                peer = node.peer(session.origin_host)
                if peer is None:
                    continue
                rar = Message.request(
                    CMD_RE_AUTH,
                    APP_CREDIT_CONTROL,
                    [
                        ("Session-Id", session.session_id),
                        ("Origin-Host", node.identity.origin_host),
                        ("Origin-Realm", node.identity.origin_realm),
                        ("Destination-Realm", session.origin_realm),
                        ("Destination-Host", session.origin_host),
                        ("Auth-Application-Id", APP_CREDIT_CONTROL),
                        ("Re-Auth-Request-Type", AUTHORIZE_ONLY),
                    ],
                )
                try:
                    answer = await node.request(rar, peer=peer)
                except (DiameterError, TimeoutError, ConnectionError) as exc:
                    log.warning("session_id=%s rar failed: %r", session.session_id, exc)
                    return session.session_id, None
                return session.session_id, int(answer.get("Result-Code") or 0)
            return session.session_id, None

        answers = await asyncio.gather(*(one(s) for s in sessions))
        return {sid: code for sid, code in answers if code is not None}
