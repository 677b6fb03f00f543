"""The PCRF's view of a subscriber's credit, read from the OCS ledger (what TS 29.219 Sy would
carry): exhausted when the account has no spendable money left. The PCRF asks at each decision;
after a top-up the API calls ``Pcrf.subscriber_changed`` so it re-decides at once."""

from __future__ import annotations

import asyncio

from sqlalchemy.engine import Engine

from charging.accounts import credit_exhausted
from policy.decision import ChargingState, SubscriberRef


class LedgerCredit:
    """A ``policy.decision.ChargingStateSource`` over ``charging.accounts.credit_exhausted``."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    async def charging_state(self, subscriber: SubscriberRef) -> ChargingState:
        exhausted = await asyncio.to_thread(
            credit_exhausted, self.engine, imsi=subscriber.imsi, msisdn=subscriber.msisdn
        )
        # None: not an OCS subscriber, so its credit is not ours to limit.
        return ChargingState(exhausted=bool(exhausted))
