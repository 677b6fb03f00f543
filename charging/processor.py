"""One Credit-Control-Request processed inside the batch transaction (RFC 4006 §5, §6).

The group committer (charging.batcher) asks :meth:`Processor.lock_keys` which accounts a batch
touches, locks them, lets :meth:`Processor.load` read the batch's state in a few queries, runs
:meth:`Processor.process` per request and :meth:`Processor.flush` once, then commits. A request
settles reported usage, reserves new grants, closes its session with a CDR, and its answer is
stored under (Session-Id, CC-Request-Number) so a retransmission anywhere is answered from it.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.engine import Connection

from charging import outbox, store
from charging.answers import ENOUGH_CREDIT, NO_CREDIT, FinalUnit, Outcome, ServiceAnswer, build
from charging.bulk import fetch_all
from charging.ccr import CreditControlRequest, RequestedAction, RequestType, ServiceRequest
from charging.config import OcsConfig
from charging.grants import (
    NotRated,
    RatedService,
    UnitKind,
    Wallet,
    debit_now,
    grant,
    quote,
    settle,
    time_rated,
    used_parts,
)
from charging.ledger import Cause, Ledger
from charging.owners import SessionOwners
from charging.records import build_record, closing_cause, maybe_partial, queue_record, version
from charging.unit_of_work import BatchContext, SessionState
from diam.constants import ResultCode
from diam.message import Avp, Message
from rating.plan import Plan
from schemas.cdr import CauseForRecordClosing
from schemas.provisioning import FinalUnitAction, RedirectAddressType


def replay(stored: bytes, request: Message) -> Message:
    """The stored answer, re-addressed to this (retransmitted) request."""
    answer = Message.decode(stored)
    answer.hop_by_hop = request.hop_by_hop
    answer.end_to_end = request.end_to_end
    return answer


class Processor:
    """The Ro state machine over the ledger."""

    def __init__(self, config: OcsConfig) -> None:
        self.config = config
        self.owners = SessionOwners()

    # -- batch protocol (see charging.batcher) ------------------------------------------------
    def lock_keys(self, conn: Connection, ctx: BatchContext, ccrs: Sequence[CreditControlRequest],
                  session_ids: Sequence[str]) -> list[int]:  # fmt: skip
        """Accounts the batch touches: finds the owners of existing sessions (those not known
        from earlier batches, charging.owners) and resolves the subscribers of INITIAL/EVENT
        requests (both kept in ``ctx``), in one round trip, or none."""
        known, unknown = self.owners.split(sorted({c.session_id for c in ccrs} | set(session_ids)))
        wanted = [
            c.subscription_ids
            for c in ccrs
            if c.request_type in (RequestType.INITIAL, RequestType.EVENT)
            and c.subscription_ids not in ctx.subscriptions
        ]
        lookup = store.identity_lookup(wanted)
        queries = [(store.SESSION_OWNERS, {"ids": unknown})] if unknown else []
        if lookup["values"]:
            queries.append((store.SUBSCRIPTIONS_BY_IDENTITY, lookup))
        results = fetch_all(conn, queries) if queries else []
        owners = [*known, *(results[0] if unknown else [])]
        keys = [int(account) for _, account, _ in owners]
        ctx.owners = {int(subscriber) for _, _, subscriber in owners}
        if wanted:
            ctx.subscriptions.update(
                store.match_subscriptions(wanted, results[-1] if lookup["values"] else [])
            )
        for ccr in ccrs:
            sub = ctx.subscriptions.get(ccr.subscription_ids)
            if sub is not None and ccr.request_type in (RequestType.INITIAL, RequestType.EVENT):
                keys.append(sub.account_id)
        return keys

    def load(self, conn: Connection, ledger: Ledger, ctx: BatchContext, accounts: list[int],
             session_ids: Sequence[str], ccrs: Sequence[CreditControlRequest]) -> None:  # fmt: skip
        """Lock the accounts, read the batch's state and insert the sessions its new CCR-Is
        open (one statement for all of them): one round trip on PostgreSQL."""
        subscribers = ctx.owners | {
            s.subscriber_id for s in ctx.subscriptions.values() if s is not None
        }
        # Counters serve tiered data and event rates: a batch of time-rated (voice) requests
        # needs none read up front (charging.unit_of_work reads any on first need).
        plans = () if all(time_rated(c.services) for c in ccrs) else self.config.tariffs.values()
        periods = {_period_name(p, ctx.now) for p in plans}
        requests = [(c.session_id, c.request_number) for c in ccrs]
        opening: dict[str, tuple[CreditControlRequest, store.Subscription]] = {}
        for ccr in ccrs:
            sub = ctx.subscriptions.get(ccr.subscription_ids)
            if (
                ccr.request_type is RequestType.INITIAL
                and ccr.session_id not in opening
                and sub is not None
                and sub.status == "active"
                and sub.tariff in self.config.tariffs
            ):
                opening[ccr.session_id] = (ccr, sub)
        rows = [self._session_values(ccr, sub, ctx.now) for ccr, sub in opening.values()]
        if rows and conn.dialect.name == "postgresql":
            # Inserted in the same round trip as the reads (only the new, unanswered ones).
            rows, insert = store.open_sessions(rows)
            ids = dict(ctx.load(conn, ledger, session_ids, requests, accounts, subscribers,
                                periods, then=insert))  # fmt: skip
            inserted = [r for r in rows if r["session_id"] in ids]
            for row in inserted:
                row["id"] = int(ids[row["session_id"]])
        else:
            ctx.load(conn, ledger, session_ids, requests, accounts, subscribers, periods)
            inserted = store.insert_sessions(conn, [
                r for r in rows
                if (r["session_id"], r["last_request_number"]) not in ctx.outcomes
                and r["session_id"] not in ctx.states
            ])  # fmt: skip
        for row in inserted:
            ctx.opened(row, opening[row["session_id"]][1])
            ctx.fresh.add(row["session_id"])
        self.owners.check((state.row for state in ctx.states.values()), accounts)

    def flush(self, conn: Connection, ledger: Ledger, ctx: BatchContext) -> None:
        ctx.flush(conn, ledger)

    def process(
        self, conn: Connection, ledger: Ledger, ctx: BatchContext, request: Message,
        ccr: CreditControlRequest,
    ) -> Message:  # fmt: skip
        key = (ccr.session_id, ccr.request_number)
        stored = ctx.outcomes.get(key)
        if stored is not None:
            return replay(stored, request)
        handler = {
            RequestType.INITIAL: self._initial,
            RequestType.UPDATE: self._update,
            RequestType.TERMINATION: self._terminate,
            RequestType.EVENT: self._event,
        }[ccr.request_type]
        outcome, exponent = handler(conn, ledger, ctx, request, ccr)
        answer = build(request, ccr, outcome, exponent)
        encoded = answer.freeze()  # stored, and reused when the answer is sent
        ctx.outcomes[key] = encoded
        ctx.new_outcomes.append(
            {
                "session_id": ccr.session_id,
                "request_number": ccr.request_number,
                "request_type": int(ccr.request_type),
                "result_code": int(outcome.result_code),
                "answer": encoded,
                "created_at": ctx.now,
            }
        )
        return answer

    # -- request types ------------------------------------------------------------------------
    def _plan(self, sub: store.Subscription) -> tuple[Plan | None, Outcome]:
        """The subscriber's loaded tariff, or 5031 RATING_FAILED."""
        plan = self.config.tariffs.get(sub.tariff)
        if plan is None:
            return None, Outcome(ResultCode.RATING_FAILED, error_message="tariff not loaded")
        return plan, Outcome()

    def _subscriber_plan(
        self, ctx: BatchContext, ccr: CreditControlRequest
    ) -> tuple[store.Subscription | None, Plan | None, Outcome]:
        """Who a new session or event is for and its tariff, or why it cannot be served
        (5030 USER_UNKNOWN, 4010 END_USER_SERVICE_DENIED for a barred subscriber, 5031)."""
        sub = ctx.subscriptions.get(ccr.subscription_ids)
        if sub is None:
            return None, None, Outcome(ResultCode.USER_UNKNOWN)
        if sub.status != "active":
            return sub, None, Outcome(ResultCode.END_USER_SERVICE_DENIED)
        plan, failure = self._plan(sub)
        return sub, plan, failure

    def _initial(
        self, conn: Connection, ledger: Ledger, ctx: BatchContext, request: Message,
        ccr: CreditControlRequest,
    ) -> tuple[Outcome, int]:  # fmt: skip
        sub, plan, failure = self._subscriber_plan(ctx, ccr)
        if sub is None or plan is None:
            return failure, 2
        if ccr.session_id not in ctx.fresh:
            return _invalid(request, "CC-Request-Type", "session already exists"), 2
        ctx.fresh.discard(ccr.session_id)
        now = ctx.now
        state = ctx.states[ccr.session_id]
        outcome = self._serve(conn, ledger, ctx, ccr, state, plan, terminating=False)
        if outcome.result_code != ResultCode.SUCCESS:
            # A failed CCA-I ends the session at the client (RFC 4006 §5.2); nothing was used.
            self._release(ledger, ctx, state, None, _cause("release", ccr))
            ctx.update_session(state, state="closed", closed_at=now, close_cause="rejected")
        return outcome, plan.exponent

    def _update(
        self, conn: Connection, ledger: Ledger, ctx: BatchContext, request: Message,
        ccr: CreditControlRequest,
    ) -> tuple[Outcome, int]:  # fmt: skip
        state, failure = _open_session(ctx, request, ccr)
        if state is None:
            return failure, 2
        plan, failure = self._plan(state.subscription)
        if plan is None:
            return failure, 2
        outcome = self._serve(conn, ledger, ctx, ccr, state, plan, terminating=False)
        maybe_partial(ctx, state, plan, self.config.node_id, self.config.partial)
        ctx.update_session(
            state,
            last_request_number=ccr.request_number,
            updated_at=ctx.now,
            expires_at=self._expiry(ctx.now),
        )
        return outcome, plan.exponent

    def _terminate(
        self, conn: Connection, ledger: Ledger, ctx: BatchContext, request: Message,
        ccr: CreditControlRequest,
    ) -> tuple[Outcome, int]:  # fmt: skip
        state, failure = _open_session(ctx, request, ccr)
        if state is None:
            return failure, 2
        plan, failure = self._plan(state.subscription)
        if plan is None:
            return failure, 2
        self._serve(conn, ledger, ctx, ccr, state, plan, terminating=True)
        self.close(
            ledger, ctx, state, plan,
            cause=closing_cause(ccr.termination_cause),
            close_cause=f"termination:{ccr.termination_cause or 1}",
            journal_cause=_cause("release", ccr),
            last_request_number=ccr.request_number,
        )  # fmt: skip
        return Outcome(ResultCode.SUCCESS), plan.exponent

    def _event(
        self, conn: Connection, ledger: Ledger, ctx: BatchContext, request: Message,
        ccr: CreditControlRequest,
    ) -> tuple[Outcome, int]:  # fmt: skip
        sub, plan, failure = self._subscriber_plan(ctx, ccr)
        if sub is None or plan is None:
            return failure, 2
        now = ctx.now
        action = ccr.requested_action or RequestedAction.DIRECT_DEBITING
        wallet = ctx.wallet(conn, ledger, sub.account_id)
        outcome = Outcome()
        charged: list[tuple[ServiceRequest, RatedService, int, int]] = []
        total = 0
        for service in ccr.services:
            answer = ServiceAnswer(service.rating_group, service.service_id)
            outcome.services.append(answer)
            try:
                rated = RatedService.classify(plan, service, ccr.info, now)
                units = self._event_units(rated, service)
                period = _counter(ctx, plan, sub, rated)
                used = int(period["units"]) if period else 0
                if action is RequestedAction.DIRECT_DEBITING:
                    debited = debit_now(
                        ledger, wallet, plan, rated, units, now, _cause("debit", ccr), used
                    )
                    if debited is None:
                        answer.result_code = ResultCode.CREDIT_LIMIT_REACHED
                        continue
                    cost, priced = debited
                    if period is not None and priced:
                        period["units"] += priced
                        period["dirty"] = True
                    answer.kind, answer.granted = rated.kind, units
                    charged.append((service, rated, units, cost))
                elif action is RequestedAction.REFUND_ACCOUNT:
                    cost = quote(plan, rated, units, now, used)
                    if not wallet.money:
                        answer.result_code = ResultCode.CREDIT_CONTROL_NOT_APPLICABLE
                        continue
                    ledger.credit(wallet.money[0].balance_id, cost, _cause("refund", ccr))
                elif action is RequestedAction.CHECK_BALANCE:
                    cost = quote(plan, rated, units, now, used)
                    covered = sum(p.available for p in wallet.buckets_for(rated))
                    enough = covered >= units or wallet.money_available >= cost
                    outcome.check_balance = ENOUGH_CREDIT if enough else NO_CREDIT
                else:
                    cost = quote(plan, rated, units, now, used)
                total += cost
            except NotRated as exc:
                answer.result_code = exc.result_code
        outcome.result_code = _top_level(outcome.services)
        if (
            outcome.result_code == ResultCode.SUCCESS
            and action is not RequestedAction.CHECK_BALANCE
        ):
            outcome.cost = (total, plan.currency)
        if charged:
            self._event_record(conn, ctx, ccr, sub, plan, charged)
        return outcome, plan.exponent

    # -- services -----------------------------------------------------------------------------
    def _serve(
        self, conn: Connection, ledger: Ledger, ctx: BatchContext, ccr: CreditControlRequest,
        state: SessionState, plan: Plan, *, terminating: bool,
    ) -> Outcome:  # fmt: skip
        """Settle each service's reported usage and grant what it requests."""
        sub = state.subscription
        outcome = Outcome(failure_handling=sub.failure_handling or self.config.failure_handling)
        wallet = ctx.wallet(conn, ledger, sub.account_id)
        for service in ccr.services:
            answer = ServiceAnswer(service.rating_group, service.service_id)
            outcome.services.append(answer)
            try:
                rated = RatedService.classify(plan, service, ccr.info, ctx.now)
            except NotRated as exc:
                answer.result_code = exc.result_code
                self._release(ledger, ctx, state, service.key, _cause("release", ccr))
                continue
            try:
                self._settle(ledger, ctx, wallet, ccr, plan, rated, service, state)
                if terminating or (ccr.multiple_services and service.requested is None):
                    continue
                self._grant(ledger, ctx, wallet, ccr, plan, rated, service, state, answer)
            except NotRated as exc:
                answer.result_code = exc.result_code
        outcome.result_code = _top_level(outcome.services)
        return outcome

    def _settle(
        self, ledger: Ledger, ctx: BatchContext, wallet: Wallet, ccr: CreditControlRequest,
        plan: Plan, rated: RatedService, service: ServiceRequest, state: SessionState,
    ) -> None:  # fmt: skip
        rows = state.holds(service.key)
        if not rows and not service.used:
            return
        usage = ctx.usage_row(state, service.key, service.rating_group, service.service_id)
        change = (rows[0]["details"] or {}).get("tariff_change_at") if rows else None
        parts = used_parts(
            rated,
            service.used,
            rows[0]["granted_at"] if rows else ctx.now,
            datetime.fromisoformat(change) if change else None,
        )
        period = _counter(ctx, plan, state.subscription, rated)
        result = settle(
            ledger, wallet, plan, rated, store.as_held(rows), parts,
            int(period["units"] if period else usage["priced_units"]), _cause("debit", ccr),
        )  # fmt: skip
        if period is not None and result.priced_units:
            period["units"] += result.priced_units
            period["dirty"] = True
        ctx.drop_holds(state, rows)
        _add_usage(usage, ctx.now, rated.kind, service, result.units, result.charge,
                   result.priced_units)  # fmt: skip

    def _grant(
        self, ledger: Ledger, ctx: BatchContext, wallet: Wallet, ccr: CreditControlRequest,
        plan: Plan, rated: RatedService, service: ServiceRequest, state: SessionState,
        answer: ServiceAnswer,
    ) -> None:  # fmt: skip
        now = ctx.now
        requested = rated.amount(service.requested) or self._default_units(rated.kind)
        usage = state.usage.get(service.key)
        period = _counter(ctx, plan, state.subscription, rated)
        used = period["units"] if period else usage["priced_units"] if usage else 0
        result = grant(
            ledger, wallet, plan, rated, requested, now, int(used), _cause("reserve", ccr),
            self.config.tariff_horizon,
        )  # fmt: skip
        if result.free:
            answer.result_code = ResultCode.CREDIT_CONTROL_NOT_APPLICABLE
            return
        if result.units == 0:
            answer.result_code = ResultCode.CREDIT_LIMIT_REACHED
            return
        validity = self.config.validity_time
        change = result.tariff_change_at
        if change is not None and change > now + timedelta(seconds=validity):
            change = None
        ctx.add_holds(
            state,
            store.reservation_rows(
                state.pk, service.key, rated.kind.value, result.holds, now,
                now + timedelta(seconds=validity), change,
            ),
        )  # fmt: skip
        answer.kind = rated.kind
        answer.granted = result.units
        answer.validity_time = validity
        answer.tariff_time_change = change
        if result.exhausted:
            answer.final_unit = _final_unit(state.subscription)
        elif self.config.threshold_percent:
            answer.threshold = result.units * self.config.threshold_percent // 100 or None
        if rated.kind is UnitKind.OCTETS and self.config.quota_holding_time:
            answer.quota_holding_time = self.config.quota_holding_time

    def _release(
        self, ledger: Ledger, ctx: BatchContext, state: SessionState, service_key: str | None,
        cause: Cause,
    ) -> None:  # fmt: skip
        rows = state.holds(service_key)
        for row in rows:
            ledger.release(row["balance_id"], int(row["amount"]), cause)
        ctx.drop_holds(state, rows)

    # -- closing ------------------------------------------------------------------------------
    def close(
        self, ledger: Ledger, ctx: BatchContext, state: SessionState, plan: Plan | None, *,
        cause: CauseForRecordClosing, close_cause: str, journal_cause: Cause,
        last_request_number: int | None = None,
    ) -> None:  # fmt: skip
        """Release what the session still holds, close it and queue its (last) CDR."""
        now = ctx.now
        self._release(ledger, ctx, state, None, journal_cause)
        partials = int(state.row["cdr_sequence"] or 0)
        values: dict[str, Any] = {
            "state": "closed", "closed_at": now, "close_cause": close_cause, "updated_at": now,
            "cdr_sequence": partials + 1,
        }  # fmt: skip
        if last_request_number is not None:
            values["last_request_number"] = last_request_number
        queue_record(
            ctx, state, plan, self.config.node_id, cause, partials + 1 if partials else None
        )
        ctx.update_session(state, **values)

    def _event_record(
        self, conn: Connection, ctx: BatchContext, ccr: CreditControlRequest,
        sub: store.Subscription, plan: Plan,
        charged: list[tuple[ServiceRequest, RatedService, int, int]],
    ) -> None:  # fmt: skip
        """IEC: a closed session row with its usage, and the event's CDR (same transaction)."""
        now = ctx.now
        row = store.insert_session(
            conn, session_id=ccr.session_id, subscriber_id=sub.subscriber_id,
            account_id=sub.account_id, state="closed", charging_type="IEC",
            last_request_number=ccr.request_number, origin_host=ccr.origin_host,
            origin_realm=ccr.origin_realm, service_context_id=ccr.service_context_id,
            subscription_id=ccr.subscription_ids[0][1][:255],
            service_information=_service_information(ccr), node_id=self.config.node_id,
            opened_at=now, updated_at=now, expires_at=now, closed_at=now, close_cause="event",
            cdr_sequence=1,
        )  # fmt: skip
        state = ctx.opened(row, sub)
        for service, rated, units, cost in charged:
            usage = ctx.usage_row(state, service.key, service.rating_group, service.service_id)
            _add_usage(usage, now, rated.kind, service, units, cost, units)
        ctx.outbox.append(
            outbox.row(
                build_record(
                    node_id=self.config.node_id, sequence=state.pk, session=state.row,
                    usage=list(state.usage.values()), closed_at=now,
                    cause=CauseForRecordClosing.NORMAL_RELEASE, currency=sub.currency,
                    tariff=plan.name, tariff_version=version(plan, now),
                )
            )
        )  # fmt: skip

    # -- helpers ------------------------------------------------------------------------------
    def _session_values(
        self, ccr: CreditControlRequest, sub: store.Subscription, now: datetime
    ) -> dict[str, Any]:
        events = all(s.requested is not None and _is_event(s) for s in ccr.services)
        return {
            "session_id": ccr.session_id,
            "subscriber_id": sub.subscriber_id,
            "account_id": sub.account_id,
            "state": "open",
            "charging_type": "ECUR" if events else "SCUR",
            "last_request_number": ccr.request_number,
            "origin_host": ccr.origin_host,
            "origin_realm": ccr.origin_realm,
            "service_context_id": ccr.service_context_id,
            "subscription_id": ccr.subscription_ids[0][1][:255],
            "service_information": _service_information(ccr),
            "node_id": self.config.node_id,
            "opened_at": now,
            "updated_at": now,
            "expires_at": self._expiry(now),
        }

    def _expiry(self, now: datetime) -> datetime:
        return now + timedelta(seconds=self.config.validity_time + self.config.sweep_grace)

    def _default_units(self, kind: UnitKind) -> int:
        return {
            UnitKind.SECONDS: self.config.default_seconds,
            UnitKind.OCTETS: self.config.default_octets,
            UnitKind.EVENTS: self.config.default_events,
        }[kind]

    def _event_units(self, rated: RatedService, service: ServiceRequest) -> int:
        for units in (service.requested, *service.used):
            amount = rated.amount(units)
            if amount:
                return amount
        return self._default_units(rated.kind)


def _period_name(plan: Plan, now: datetime) -> str:
    """The billing period (calendar month in the tariff's time zone) ``now`` falls in."""
    return now.astimezone(plan.tz).strftime("%Y-%m")


def _counter(
    ctx: BatchContext, plan: Plan, sub: store.Subscription, rated: RatedService
) -> dict[str, Any] | None:
    """The period counter tiered rates of this service read (None: per-call voice scope)."""
    if rated.counter is None:
        return None
    return ctx.period_row(sub.subscriber_id, rated.counter, _period_name(plan, ctx.now))


def _open_session(
    ctx: BatchContext, request: Message, ccr: CreditControlRequest
) -> tuple[SessionState | None, Outcome]:
    state = ctx.states.get(ccr.session_id)
    if state is None or state.row["state"] != "open":
        return None, Outcome(ResultCode.UNKNOWN_SESSION_ID)
    if ccr.request_number <= int(state.row["last_request_number"]):
        # Not a retransmission (that would have a stored outcome): out of sequence.
        return None, _invalid(request, "CC-Request-Number", "CC-Request-Number out of order")
    return state, Outcome()


def _add_usage(usage: dict[str, Any], now: datetime, kind: UnitKind, service: ServiceRequest,
               units: int, charge: int, priced_units: int) -> None:  # fmt: skip
    """Accumulate reported usage and its charge into a session's usage row."""
    if kind is UnitKind.SECONDS:
        usage["time_usage"] += units
    elif kind is UnitKind.EVENTS:
        usage["service_units"] += units
    else:
        uplink = sum(u.input_octets or 0 for u in service.used)
        downlink = sum(u.output_octets or 0 for u in service.used)
        if uplink + downlink != units:
            uplink, downlink = 0, units  # only CC-Total-Octets was reported
        usage["volume_uplink"] += uplink
        usage["volume_downlink"] += downlink
    usage["charge"] += charge
    usage["priced_units"] += priced_units
    if units:
        usage["last_usage_at"] = now
        if usage["first_usage_at"] is None:
            usage["first_usage_at"] = now
    usage["dirty"] = True


def _is_event(service: ServiceRequest) -> bool:
    return service.requested is not None and service.requested.service_specific is not None


def _cause(kind: str, ccr: CreditControlRequest) -> Cause:
    return Cause(kind, ccr.session_id, ccr.request_number)


def _invalid(request: Message, name: str, message: str) -> Outcome:
    avp = request.first(name)
    return Outcome(
        ResultCode.INVALID_AVP_VALUE,
        error_message=message,
        failed_avp=Avp.new(name, avp.value) if avp is not None else None,
    )


def _top_level(services: list[ServiceAnswer]) -> int:
    """2001 unless every service failed the same way (then that code, as Kamailio reads only
    the top-level Result-Code; RFC 4006 §8.1 lets the server fail the whole request)."""
    codes = {int(s.result_code) for s in services}
    if len(codes) == 1 and ResultCode.SUCCESS not in codes:
        return codes.pop()
    return ResultCode.SUCCESS


def _final_unit(sub: store.Subscription) -> FinalUnit:
    action = FinalUnitAction(sub.final_unit_action)
    return FinalUnit(
        action,
        RedirectAddressType(sub.redirect_address_type) if sub.redirect_address_type else None,
        sub.redirect_server,
        sub.restriction_filter_rules,
    )


def _service_information(ccr: CreditControlRequest) -> dict[str, Any]:
    return {
        "subscription_ids": [list(s) for s in ccr.subscription_ids],
        "ims": ccr.info.to_json() or None,
    }
