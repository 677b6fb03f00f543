"""python-diameter's (thread-based) Node as an independent, real remote peer of our node."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import time

from diameter.message.commands import CreditControlRequest
from diameter.node import Node as PyNode
from diameter.node.application import Application, SimpleThreadingApplication

from diam.constants import (
    APP_BASE,
    APP_CREDIT_CONTROL,
    CMD_DEVICE_WATCHDOG,
    CMD_DISCONNECT_PEER,
)


def _py_node(port: int, *, idle_timeout: int) -> tuple[PyNode, Application]:
    node = PyNode("pyd.test", "test")
    node.wakeup_interval = 1  # timer resolution: the node checks its timers every second
    node.idle_timeout = idle_timeout
    node.dwa_timeout = 2
    peer = node.add_peer(
        f"aaa://server.test:{port};transport=tcp",
        "server.test",
        ip_addresses=["127.0.0.1"],
        is_persistent=True,
    )
    app = Application(APP_CREDIT_CONTROL, is_auth_application=True)
    node.add_application(app, [peer])
    return node, app


async def _stop(node: PyNode, *, force: bool = False) -> None:
    """``stop`` sends DPR and waits for our DPA (force: just close); a second call is a no-op."""
    with contextlib.suppress(RuntimeError):  # "already stopping"
        await asyncio.to_thread(node.stop, 1 if force else 5, force)


def test_python_diameter_node_cer_request_dwr_dpr(dk):
    async def main():
        server, port = await dk.serving()
        py, app = _py_node(port, idle_timeout=1)
        try:
            py.start()
            await asyncio.to_thread(app.wait_for_ready, 5)
            # CER/CEA done: it is an Open peer of ours with the common application
            (peer,) = server.peers
            assert (peer.origin_host, peer.origin_realm) == ("pyd.test", "test")
            assert peer.applications == frozenset({APP_CREDIT_CONTROL})
            # an application request, answered by our handler, decoded by python-diameter
            ccr = CreditControlRequest()
            ccr.session_id = "pyd.test;1;1"
            ccr.origin_host = b"pyd.test"
            ccr.origin_realm = b"test"
            ccr.destination_realm = b"server.test"
            ccr.auth_application_id = APP_CREDIT_CONTROL
            ccr.service_context_id = "32260@3gpp.org"
            ccr.cc_request_type = 1
            ccr.cc_request_number = 0
            answer = await asyncio.to_thread(app.send_request, ccr, 5)
            assert answer.result_code == 2001
            assert answer.session_id == "pyd.test;1;1"
            assert answer.origin_host == b"server.test"
            assert answer.cc_request_type == 1
            # DWR from python-diameter after its idle timeout; our DWA keeps it connected
            deadline = time.monotonic() + 6
            while server.metrics.count("in", APP_BASE, CMD_DEVICE_WATCHDOG, 2001) == 0:
                assert time.monotonic() < deadline, "no DWR/DWA exchange"
                await asyncio.sleep(0.1)
            assert [p.origin_host for p in server.peers] == ["pyd.test"]
            # its stop() sends DPR; we answer DPA and close
            await _stop(py)
            assert server.metrics.count("in", APP_BASE, CMD_DISCONNECT_PEER, 2001) == 1
            assert server.connections == []
        finally:
            await _stop(py, force=True)
            await server.close(0.2)

    dk.run(main, timeout=40)


def test_our_dwr_and_dpr_are_answered_by_python_diameter(dk, caplog):
    async def main():
        server, port = await dk.serving(watchdog=0.3)
        py, app = _py_node(port, idle_timeout=30)
        try:
            py.start()
            await asyncio.to_thread(app.wait_for_ready, 5)
            (peer,) = server.peers
            # several of our Tw pass: each DWR must get its DWA or the peer would be closed
            await asyncio.sleep(1.5)
            assert server.peers == [peer]
            # our close sends DPR; the DPA (not the 3 s timeout) ends the connection
            started = time.monotonic()
            await server.close(timeout=6.0)
            assert time.monotonic() - started < 4.0
            assert server.connections == []
        finally:
            await _stop(py, force=True)

    with caplog.at_level(logging.INFO, logger="openpcc.diam"):
        dk.run(main, timeout=40)
    assert not any("no DWA" in r.message or "no DPA" in r.message for r in caplog.records)


def test_we_connect_to_a_python_diameter_server(dk, caplog):
    """The initiator side: our CER, a request it answers, our DWRs and our DPR."""

    def answer_ccr(app, request):
        answer = app.generate_answer(request, result_code=2001)
        answer.cc_request_type = request.cc_request_type
        answer.cc_request_number = request.cc_request_number
        return answer

    async def main():
        port = _free_port()
        py = PyNode("pyd.test", "test", ip_addresses=["127.0.0.1"], tcp_port=port)
        py.wakeup_interval = 1
        known = py.add_peer("aaa://client.test", "test")  # it only accepts known peers
        app = SimpleThreadingApplication(
            APP_CREDIT_CONTROL, is_auth_application=True, request_handler=answer_ccr
        )
        py.add_application(app, [known])
        client = dk.make_node("client.test", "test", watchdog=0.3)
        try:
            py.start()
            peer = await client.connect("127.0.0.1", port, timeout=5)
            assert (peer.origin_host, peer.applications) == ("pyd.test", {APP_CREDIT_CONTROL})
            ccr = dk.ccr("client.test;1", ("Service-Context-Id", "32260@3gpp.org"))
            # it checks Destination-Realm (3003 otherwise)
            ccr.avps = [a for a in ccr.avps if a.name != "Destination-Realm"]
            answer = await client.request(ccr, destination_realm="test", timeout=5)
            assert answer.get("Result-Code") == 2001
            assert answer.get("Session-Id") == "client.test;1"
            assert answer.get("Origin-Host") == "pyd.test"
            await asyncio.sleep(1.0)  # a few Tw: every DWR got its DWA
            assert client.peers == [peer]
            started = time.monotonic()
            await client.close(timeout=6.0)
            assert time.monotonic() - started < 4.0  # closed on its DPA, not the 6 s timeout
        finally:
            await _stop(py, force=True)

    with caplog.at_level(logging.INFO, logger="openpcc.diam"):
        dk.run(main, timeout=40)
    assert not any("no DWA" in r.message or "no DPA" in r.message for r in caplog.records)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
