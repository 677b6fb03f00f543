"""DWR/DWA (RFC 6733 §5.5, RFC 3539 watchdog) and DPR/DPA (§5.4), both directions."""

from __future__ import annotations

import asyncio
import logging
import time

from diam.constants import (
    APP_CREDIT_CONTROL,
    CMD_CREDIT_CONTROL,
    CMD_DEVICE_WATCHDOG,
    CMD_DISCONNECT_PEER,
    VENDOR_3GPP,
    ResultCode,
)
from diam.message import Avp, Message


def test_dwr_is_answered_with_dwa(dk):
    async def main():
        node, port = await dk.serving()
        peer = await dk.RawPeer.connect(port)
        await peer.open()
        dwa = await peer.request(dk.dwr())
        assert not dwa.is_request and dwa.command_code == CMD_DEVICE_WATCHDOG
        assert dwa.get("Result-Code") == ResultCode.SUCCESS
        assert dwa.get("Origin-Host") == "server.test"
        assert dwa.get("Origin-Realm") == "server.test"
        assert dwa.get("Origin-State-Id") == node.origin_state_id
        await node.close(0.2)

    dk.run(main)


def test_idle_peer_gets_dwr_and_is_closed_when_dwa_never_comes(dk, caplog):
    async def main():
        node, port = await dk.serving(watchdog=0.3)
        peer = await dk.RawPeer.connect(port)
        await peer.open()
        # answered DWRs keep the connection up
        for _ in range(2):
            dwr = await peer.recv(2.0)
            assert dwr.is_request and dwr.command_code == CMD_DEVICE_WATCHDOG
            assert dwr.get("Origin-Host") == "server.test"
            peer.send(dwr.answer(ResultCode.SUCCESS, ("Origin-Host", "client.test"),
                                 ("Origin-Realm", "test")))  # fmt: skip
        assert len(node.peers) == 1
        # the next DWR goes unanswered: the node closes within about one more Tw
        dwr = await peer.recv(2.0)
        assert dwr.command_code == CMD_DEVICE_WATCHDOG
        started = time.monotonic()
        assert await peer.closed(3.0)
        assert time.monotonic() - started < 1.5
        assert node.peers == []
        await node.close(0.2)

    with caplog.at_level(logging.INFO, logger="openpcc.diam"):
        dk.run(main)
    assert any("no DWA within Tw" in r.message for r in caplog.records)


def test_traffic_defers_dwr(dk):
    async def main():
        node, port = await dk.serving(watchdog=0.4)
        peer = await dk.RawPeer.connect(port)
        await peer.open()
        deadline = time.monotonic() + 1.0
        while time.monotonic() < deadline:
            answer = await peer.request(dk.ccr("s;busy"))  # recv would fail on a DWR first
            assert answer.command_code != CMD_DEVICE_WATCHDOG
            await asyncio.sleep(0.05)
        await node.close(0.2)

    dk.run(main)


def test_initiator_detects_a_silent_server(dk):
    """Our node connects to a server that answers CER but never DWR: closed after ~2 Tw."""

    async def silent_server(reader, writer):
        header = await reader.readexactly(20)
        body = await reader.readexactly(int.from_bytes(header[1:4], "big") - 20)
        cer = Message.decode(header + body)
        cea = cer.answer(
            ResultCode.SUCCESS,
            ("Origin-Host", "silent.test"),
            ("Origin-Realm", "test"),
            ("Host-IP-Address", "127.0.0.1"),
            ("Vendor-Id", 0),
            ("Product-Name", "silent"),
            Avp.new(
                "Vendor-Specific-Application-Id",
                [("Vendor-Id", VENDOR_3GPP), ("Auth-Application-Id", APP_CREDIT_CONTROL)],
            ),
        )
        writer.write(cea.encode())
        await reader.read()  # swallow DWRs until the client closes
        writer.close()

    async def main():
        server = await asyncio.start_server(silent_server, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        client = dk.make_node("client.test", "test", watchdog=0.2)
        peer = await client.connect("127.0.0.1", port)
        assert peer.origin_host == "silent.test"
        started = time.monotonic()
        await asyncio.wait_for(peer._closed, 3.0)
        assert 0.3 < time.monotonic() - started < 2.5  # DWR after ~Tw, close after ~Tw more
        assert client.peers == []
        server.close()
        await server.wait_closed()

    dk.run(main)


def test_dpr_is_answered_with_dpa_then_the_connection_closes(dk):
    async def main():
        node, port = await dk.serving()
        peer = await dk.RawPeer.connect(port)
        await peer.open()
        dpa = await peer.request(dk.dpr(cause=1))
        assert dpa.command_code == CMD_DISCONNECT_PEER and not dpa.is_request
        assert dpa.get("Result-Code") == ResultCode.SUCCESS
        assert dpa.get("Origin-Host") == "server.test"
        assert await peer.closed(2.0)
        await asyncio.sleep(0.05)
        assert node.connections == []
        await node.close(0.2)

    dk.run(main)


def test_node_close_sends_dpr_and_closes_on_dpa(dk):
    async def main():
        node, port = await dk.serving()
        peer = await dk.RawPeer.connect(port)
        await peer.open()
        closing = asyncio.create_task(node.close(timeout=5.0))
        dpr = await peer.recv(2.0)
        assert dpr.is_request and dpr.command_code == CMD_DISCONNECT_PEER
        assert dpr.get("Disconnect-Cause") == 0  # REBOOTING: come back later
        assert dpr.get("Origin-Host") == "server.test"
        started = time.monotonic()
        peer.send(dpr.answer(ResultCode.SUCCESS, ("Origin-Host", "client.test"),
                             ("Origin-Realm", "test")))  # fmt: skip
        assert await peer.closed(2.0)
        await closing
        assert time.monotonic() - started < 2.5  # closed on the DPA, not on the 5 s timeout
        # the listener is gone too
        try:
            await dk.RawPeer.connect(port)
        except OSError:
            pass
        else:
            raise AssertionError("listener still accepting after close()")

    dk.run(main)


def test_node_to_node_dpr_both_sides_end_closed(dk):
    async def main():
        server, port = await dk.serving()
        client = dk.make_node("client.test", "test")
        peer = await client.connect("127.0.0.1", port)
        assert len(server.peers) == 1
        await client.close(timeout=2.0)
        assert peer.state.value == "closed"
        await asyncio.sleep(0.05)
        assert server.connections == []
        await server.close(0.2)

    dk.run(main)


def test_keep_connected_retries_every_tc_and_reconnects_after_loss(dk):
    async def main():
        probe = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
        port = probe.sockets[0].getsockname()[1]
        probe.close()
        await probe.wait_closed()
        client = dk.make_node("client.test", "test")
        client.keep_connected("127.0.0.1", port, tc=0.2)
        await asyncio.sleep(0.5)  # nothing listens yet: attempts fail, then are retried
        assert client.peers == []
        for round_ in range(2):
            server = dk.make_node()
            await server.listen("127.0.0.1", port)
            deadline = time.monotonic() + 3
            while not client.peers:
                assert time.monotonic() < deadline, f"no reconnection in round {round_}"
                await asyncio.sleep(0.05)
            assert client.peers[0].origin_host == "server.test"
            await server.close(1.0)  # DPR: the client answers, the connection goes
        await client.close(0.2)
        await asyncio.sleep(0.3)  # close() stopped the connector: no new attempt
        assert client.connections == []

    dk.run(main)


def test_dpr_waits_for_answers_in_progress_before_dpa(dk):
    async def main():
        node = dk.make_node()

        @node.route(APP_CREDIT_CONTROL, CMD_CREDIT_CONTROL)
        async def slow(request, peer):
            await asyncio.sleep(0.2)
            return request.answer(ResultCode.SUCCESS)

        _, port = await node.listen("127.0.0.1", 0)
        peer = await dk.RawPeer.connect(port)
        await peer.open()
        ccr = peer.send(dk.ccr("s;before-dpr"))
        dpr = peer.send(dk.dpr())
        first, second = await peer.recv(2.0), await peer.recv(2.0)
        assert (first.hop_by_hop, first.get("Result-Code")) == (ccr.hop_by_hop, 2001)
        assert (second.command_code, second.hop_by_hop) == (CMD_DISCONNECT_PEER, dpr.hop_by_hop)
        assert await peer.closed(2.0)
        await node.close(0.2)

    dk.run(main)
