"""The PCRF's view of a subscriber's credit, read from the OCS ledger (what TS 29.219 Sy would
carry): exhausted when the account has no spendable money left. The PCRF asks at each decision;
after a top-up the API (or CLI) calls ``Pcrf.subscriber_changed`` so it re-decides at once."""

from __future__ import annotations

import asyncio

from sqlalchemy.engine import Engine

from charging import admin, identities
from policy.decision import ChargingState, SubscriberRef


class LedgerCredit:
    """A ``policy.decision.ChargingStateSource`` over ``charging.admin``."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def _state(self, subscriber: SubscriberRef) -> ChargingState:
        keys = [(identities.IMSI, subscriber.imsi), (identities.MSISDN, subscriber.msisdn)]
        with self.engine.connect() as conn:
            for kind, value in keys:
                if not value:
                    continue
                try:
                    found = admin.lookup(conn, kind, value)
                except admin.NotFound:
                    continue
                account = admin.account_id(conn, found["account"])
                return ChargingState(exhausted=admin.money_available(conn, account) <= 0)
        return ChargingState()  # not an OCS subscriber: credit is not ours to limit

    async def charging_state(self, subscriber: SubscriberRef) -> ChargingState:
        return await asyncio.to_thread(self._state, subscriber)
