"""The same CCR flows sent by python-diameter (an independent Diameter stack) as the client."""

from __future__ import annotations

import asyncio

from diameter.message.avp.grouped import (
    ImsInformation,
    MultipleServicesCreditControl,
    RequestedServiceUnit,
    ServiceInformation,
    SubscriptionId,
    UsedServiceUnit,
)
from diameter.message.commands.credit_control import CreditControlRequest
from diameter.node import Node as PdNode
from diameter.node.application import SimpleThreadingApplication

from charging.verify import verify
from tests.fixtures.ocs import account, balance, ocs_server, provisioning, subscriber

SPEC = provisioning(subscriber("alice", "491700000001"), accounts=[account("alice", 1000)])


def request(number: int, request_type: int, mscc: MultipleServicesCreditControl) -> (
    CreditControlRequest
):  # fmt: skip
    ccr = CreditControlRequest()
    ccr.session_id = "pd.test;42;1"
    ccr.origin_host = b"pd.test"
    ccr.origin_realm = b"test"
    ccr.destination_realm = b"test"
    ccr.auth_application_id = 4
    ccr.service_context_id = "32260@3gpp.org"
    ccr.cc_request_type = request_type
    ccr.cc_request_number = number
    ccr.subscription_id = [SubscriptionId(subscription_id_type=0,
                                          subscription_id_data="491700000001")]  # fmt: skip
    ccr.multiple_services_credit_control = [mscc]
    ccr.service_information = ServiceInformation(
        ims_information=ImsInformation(
            node_functionality=0, role_of_node=0, called_party_address="tel:+4915112345678"
        )
    )
    return ccr


def run_client(port: int) -> list[tuple[int, int | None]]:
    """A full SCUR session with python-diameter; returns (Result-Code, granted CC-Time)."""
    node = PdNode("pd.test", "test")
    node.wakeup_interval = 0.2  # its select() timeout: lets stop() join quickly
    peer = node.add_peer(
        f"aaa://ocs.test:{port};transport=tcp", "test", ip_addresses=["127.0.0.1"],
        is_persistent=True, is_default=True,
    )  # fmt: skip
    app = SimpleThreadingApplication(4, is_auth_application=True,
                                     request_handler=lambda _app, _msg: None)  # fmt: skip
    node.add_application(app, [peer])
    node.start()
    results: list[tuple[int, int | None]] = []
    try:
        app.wait_for_ready(timeout=10)
        flows = [
            (1, MultipleServicesCreditControl(
                requested_service_unit=RequestedServiceUnit(cc_time=60), rating_group=100)),
            (2, MultipleServicesCreditControl(
                requested_service_unit=RequestedServiceUnit(cc_time=60),
                used_service_unit=[UsedServiceUnit(cc_time=60)], rating_group=100)),
            (3, MultipleServicesCreditControl(
                used_service_unit=[UsedServiceUnit(cc_time=30)], rating_group=100)),
        ]  # fmt: skip
        for number, (request_type, mscc) in enumerate(flows):
            answer = app.send_request(request(number, request_type, mscc), timeout=10)
            msccs = answer.multiple_services_credit_control
            granted = msccs[0].granted_service_unit.cc_time if msccs else None
            results.append((answer.result_code, granted))
    finally:
        node.stop(wait_timeout=2)
    return results


def test_python_diameter_client_full_session(sqlite_url: str) -> None:
    async def scenario() -> None:
        async with ocs_server(sqlite_url, SPEC) as server:
            results = await asyncio.to_thread(run_client, server.port)
            assert results == [(2001, 60), (2001, 60), (2001, None)]
            # 0.05 + 90 s × 0.12/min = 0.23
            assert balance(server.engine, "alice") == (1000 - 23, 0)
            assert verify(server.engine) == []

    asyncio.run(scenario())
