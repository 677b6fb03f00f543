"""Event charging: IEC SMS (DIRECT_DEBITING), REFUND_ACCOUNT, CHECK_BALANCE, PRICE_ENQUIRY."""

from __future__ import annotations

import asyncio

from charging.verify import verify
from tests.fixtures.ocs import (
    EVENT,
    account,
    balance,
    ccr,
    gsu,
    mscc,
    ocs_server,
    outbox,
    provisioning,
    ro_client,
    subscriber,
    units,
)

SMS = {"name": "sms", "kind": "unit", "unit": "events", "bundle": "sms_10", "amount": 1}
SPEC = provisioning(
    subscriber("gina", "491700000007"),
    subscriber("hank", "491700000008"),
    accounts=[account("gina", 100, SMS), account("hank", 5)],
)
GINA, HANK = (0, "491700000007"), (0, "491700000008")


def sms(session_id: str, action: int | None, who: tuple[int, str] = GINA) -> object:
    extra = [] if action is None else [("Requested-Action", action)]
    return ccr(session_id, EVENT, 0, mscc(sid=2000, rsu=units(events=1)), subscription=who,
               extra=extra)  # fmt: skip


def test_iec_sms_debits_bundle_then_money_and_writes_cdrs(database_url: str) -> None:
    async def scenario() -> None:
        async with ocs_server(database_url, SPEC) as server, ro_client(server.port) as client:
            first = await client.send(sms("sms;1", None))  # DIRECT_DEBITING is the default
            assert first.get("Result-Code") == 2001
            assert gsu(first)["CC-Service-Specific-Units"] == 1
            assert balance(server.engine, "gina", "sms") == (0, 0)
            assert balance(server.engine, "gina") == (100, 0)
            second = await client.send(sms("sms;2", 0))
            assert second.get("Result-Code") == 2001
            cost = second.first("Cost-Information")
            assert cost.first("Unit-Value").get("Value-Digits") == 9
            assert cost.first("Unit-Value").get("Exponent") == -2
            assert cost.get("Currency-Code") == 978
            assert balance(server.engine, "gina") == (91, 0)
            poor = await client.send(sms("sms;3", 0, HANK))
            assert poor.get("Result-Code") == 4012 and balance(server.engine, "hank") == (5, 0)
            cdrs = outbox(server.engine)
            assert [c["sessionId"] for c in cdrs] == ["sms;1", "sms;2"]
            assert [c["charge"] for c in cdrs] == [0, 9]
            assert cdrs[1]["listOfServiceData"][0]["serviceSpecificUnits"] == 1
            assert verify(server.engine) == []

    asyncio.run(scenario())


def test_refund_check_balance_and_price_enquiry(database_url: str) -> None:
    async def scenario() -> None:
        async with ocs_server(database_url, SPEC) as server, ro_client(server.port) as client:
            refund = await client.send(sms("r;1", 1, HANK))
            assert refund.get("Result-Code") == 2001
            assert balance(server.engine, "hank") == (14, 0)
            enough = await client.send(sms("cb;1", 2, HANK))
            assert enough.get("Check-Balance-Result") == 0  # ENOUGH_CREDIT
            price = await client.send(sms("pe;1", 3, HANK))
            unit_value = price.first("Cost-Information").first("Unit-Value")
            assert (unit_value.get("Value-Digits"), unit_value.get("Exponent")) == (9, -2)
            assert balance(server.engine, "hank") == (14, 0)  # enquiries charge nothing
            await client.send(sms("sms;h", 0, HANK))
            assert balance(server.engine, "hank") == (5, 0)
            poor = await client.send(sms("cb;2", 2, HANK))
            assert poor.get("Check-Balance-Result") == 1  # NO_CREDIT
            assert verify(server.engine) == []

    asyncio.run(scenario())


TIERED = provisioning(subscriber("hank", "491700000008"), accounts=[account("hank", 105)])


def test_event_tiers_count_the_subscribers_month(database_url: str) -> None:
    """Tiered rates read the billing period's usage: SMS 2003 costs 0.10 for the first two of
    the month, then 0.05, across sessions and after a restart."""

    def tiered(session_id: str, *extra: tuple[str, int]) -> object:
        return ccr(session_id, EVENT, 0, mscc(sid=2003, rsu=units(events=1)), subscription=HANK,
                   extra=list(extra))  # fmt: skip

    async def scenario() -> None:
        async with ocs_server(database_url, TIERED) as server, ro_client(server.port) as client:
            for n in range(2):
                assert (await client.send(tiered(f"t;{n}"))).get("Result-Code") == 2001
            enquiry = await client.send(tiered("t;pe", ("Requested-Action", 3)))
            value = enquiry.first("Cost-Information").first("Unit-Value").get("Value-Digits")
            assert value == 5
        async with ocs_server(database_url, TIERED) as server, ro_client(server.port) as client:
            assert (await client.send(tiered("t;2"))).get("Result-Code") == 2001
            assert [c["charge"] for c in outbox(server.engine)] == [10, 10, 5]
            assert balance(server.engine, "hank") == (105 - 25, 0)
            assert verify(server.engine) == []

    asyncio.run(scenario())
