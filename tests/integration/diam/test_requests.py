"""Routing, handler outcomes, request/answer correlation, timeouts, overload and metrics."""

from __future__ import annotations

import asyncio
import logging
import random
import socket
import time

import pytest
from prometheus_client import CollectorRegistry, generate_latest

from diam.constants import (
    APP_CREDIT_CONTROL,
    APP_GX,
    CMD_CREDIT_CONTROL,
    CMD_SESSION_TERMINATION,
    FLAG_ERROR,
    VENDOR_3GPP,
    ResultCode,
)
from diam.errors import AnswerError, DiameterTimeout, PeerUnavailable
from diam.message import Avp, Message


def _failed_avp(answer: Message) -> Avp:
    failed = answer.first("Failed-AVP")
    assert failed is not None, "no Failed-AVP"
    (inner,) = list(failed)
    return inner


def test_concurrent_requests_are_correlated_by_hop_by_hop(dk):
    async def main():
        server = dk.make_node()

        @server.route(APP_CREDIT_CONTROL, CMD_CREDIT_CONTROL)
        async def slow_echo(request, peer):
            await asyncio.sleep(random.uniform(0, 0.02))  # answers leave out of order
            return await dk.echo_ccr(request, peer)

        _, port = await server.listen("127.0.0.1", 0)
        client = dk.make_node("client.test", "test")
        await client.connect("127.0.0.1", port)
        requests = [dk.ccr(f"s;{i}", ("CC-Request-Number", i)) for i in range(200)]
        for r in requests:  # replace the template's number with ours
            r.avps = [a for a in r.avps if a.name != "CC-Request-Number"]
            r.add(("CC-Request-Number", int(r.get("Session-Id").split(";")[1])))
        answers = await asyncio.gather(
            *(client.request(r, destination_realm="server.test", timeout=5) for r in requests)
        )
        for request, answer in zip(requests, answers, strict=True):
            assert answer.get("Session-Id") == request.get("Session-Id")
            assert answer.get("CC-Request-Number") == request.get("CC-Request-Number")
            assert answer.hop_by_hop == request.hop_by_hop
            assert answer.end_to_end == request.end_to_end
            assert answer.get("Origin-Host") == "server.test"
        hop_by_hops = [r.hop_by_hop for r in requests]
        assert len(set(hop_by_hops)) == 200
        end_to_ends = {r.end_to_end for r in requests}
        assert len(end_to_ends) == 200
        # RFC 6733 §3: high 12 bits = low 12 bits of the start time
        assert {e >> 20 for e in end_to_ends} <= {
            int(time.time()) & 0xFFF,
            (int(time.time()) - 1) & 0xFFF,
            (int(time.time()) - 2) & 0xFFF,
        }
        assert server.metrics.count("in", APP_CREDIT_CONTROL, CMD_CREDIT_CONTROL, 2001) == 200
        assert client.metrics.count("out", APP_CREDIT_CONTROL, CMD_CREDIT_CONTROL, 2001) == 200
        await client.close()
        await server.close()

    dk.run(main)


def test_timeout_raises_and_frees_the_pending_entry(dk):
    async def main():
        server = dk.make_node()
        release = asyncio.Event()

        @server.route(APP_CREDIT_CONTROL, CMD_CREDIT_CONTROL)
        async def never(request, peer):
            await release.wait()
            return request.answer(2001)

        _, port = await server.listen("127.0.0.1", 0)
        client = dk.make_node("client.test", "test")
        peer = await client.connect("127.0.0.1", port)
        started = time.monotonic()
        with pytest.raises(DiameterTimeout) as caught:
            await client.request(dk.ccr("s;slow"), peer=peer, timeout=0.2)
        assert isinstance(caught.value, asyncio.TimeoutError)
        assert 0.15 < time.monotonic() - started < 2.0
        assert peer.pending_count == 0
        assert client.metrics.count("out", APP_CREDIT_CONTROL, CMD_CREDIT_CONTROL, 0) == 1
        release.set()  # the late answer is dropped as unmatched, the connection stays usable
        await asyncio.sleep(0.05)
        answer = await client.request(dk.ccr("s;next"), peer=peer, timeout=2)
        assert answer.get("Result-Code") == 2001
        await client.close()
        await server.close()

    dk.run(main)


def test_answer_with_unknown_hop_by_hop_is_logged_and_dropped(dk, caplog):
    async def liar(reader, writer):
        async def read():
            header = await reader.readexactly(20)
            return Message.decode(header + await reader.readexactly(
                int.from_bytes(header[1:4], "big") - 20))  # fmt: skip

        cer = await read()
        writer.write(cer.answer(
            ResultCode.SUCCESS, ("Origin-Host", "liar.test"), ("Origin-Realm", "test"),
            ("Host-IP-Address", "127.0.0.1"), ("Vendor-Id", 0), ("Product-Name", "liar"),
            ("Auth-Application-Id", APP_CREDIT_CONTROL)).encode())  # fmt: skip
        request = await read()
        wrong = request.answer(ResultCode.SUCCESS, ("Origin-Host", "liar.test"))
        wrong.hop_by_hop ^= 0x5A5A
        right = request.answer(ResultCode.LIMITED_SUCCESS, ("Origin-Host", "liar.test"))
        writer.write(wrong.encode() + right.encode())
        await reader.read()
        writer.close()

    async def main():
        server = await asyncio.start_server(liar, "127.0.0.1", 0)
        client = dk.make_node("client.test", "test")
        peer = await client.connect("127.0.0.1", server.sockets[0].getsockname()[1])
        answer = await client.request(dk.ccr("s;liar"), peer=peer, timeout=2)
        assert answer.get("Result-Code") == ResultCode.LIMITED_SUCCESS
        await client.close(0.2)
        server.close()
        await server.wait_closed()

    with caplog.at_level(logging.INFO, logger="openpcc.diam"):
        dk.run(main)
    assert any("event=unmatched_answer_dropped" in r.message for r in caplog.records)


def test_unrouted_command_3001_and_unserved_application_3007(dk):
    async def main():
        node, port = await dk.serving()
        peer = await dk.RawPeer.connect(port)
        await peer.open()
        str_ = Message.request(CMD_SESSION_TERMINATION, APP_CREDIT_CONTROL, [
            ("Session-Id", "s;str"), ("Origin-Host", "client.test"), ("Origin-Realm", "test"),
            ("Destination-Realm", "server.test")])  # fmt: skip
        answer = await peer.request(str_)
        assert answer.get("Result-Code") == ResultCode.COMMAND_UNSUPPORTED
        assert answer.flags & FLAG_ERROR
        assert answer.get("Session-Id") == "s;str"
        assert answer.get("Origin-Host") == "server.test"
        assert answer.command_code == CMD_SESSION_TERMINATION and not answer.is_request
        answer = await peer.request(dk.ccr("s;gx", app=APP_GX))
        assert answer.get("Result-Code") == ResultCode.APPLICATION_UNSUPPORTED
        assert answer.flags & FLAG_ERROR
        assert answer.application_id == APP_GX
        # the connection keeps working
        assert (await peer.request(dk.ccr("s;ok"))).get("Result-Code") == 2001
        await node.close(0.2)

    dk.run(main)


def test_handler_exception_is_5012_and_logged_and_answer_error_is_its_code(dk, caplog):
    async def main():
        node = dk.make_node()

        @node.route(APP_CREDIT_CONTROL, CMD_CREDIT_CONTROL)
        async def handler(request, peer):
            kind = request.get("Session-Id")
            if kind == "s;crash":
                raise RuntimeError("boom")
            if kind == "s;later":
                await asyncio.sleep(0)
                raise KeyError("late boom")
            if kind == "s;3gpp":
                raise AnswerError(5065, vendor_id=VENDOR_3GPP)  # IP-CAN session not available
            if kind == "s;unknown-user":
                raise AnswerError(ResultCode.USER_UNKNOWN, request.first("CC-Request-Type"),
                                  "no such subscriber")  # fmt: skip
            return request.answer(2001)

        _, port = await node.listen("127.0.0.1", 0)
        peer = await dk.RawPeer.connect(port)
        await peer.open()
        for session in ("s;crash", "s;later"):
            answer = await peer.request(dk.ccr(session))
            assert answer.get("Result-Code") == ResultCode.UNABLE_TO_COMPLY
            assert not answer.flags & FLAG_ERROR
            assert answer.get("Session-Id") == session
        answer = await peer.request(dk.ccr("s;3gpp"))
        assert answer.get("Result-Code") is None and not answer.flags & FLAG_ERROR
        experimental = answer.first("Experimental-Result")
        assert experimental.get("Vendor-Id") == VENDOR_3GPP
        assert experimental.get("Experimental-Result-Code") == 5065
        assert node.metrics.count("in", APP_CREDIT_CONTROL, CMD_CREDIT_CONTROL, 5065) == 1
        answer = await peer.request(dk.ccr("s;unknown-user"))
        assert answer.get("Result-Code") == ResultCode.USER_UNKNOWN
        assert answer.get("Error-Message") == "no such subscriber"
        inner = _failed_avp(answer)
        assert (inner.name, inner.value) == ("CC-Request-Type", 1)
        assert (await peer.request(dk.ccr("s;fine"))).get("Result-Code") == 2001
        await node.close(0.2)

    with caplog.at_level(logging.INFO, logger="openpcc.diam"):
        dk.run(main)
    failures = [r.message for r in caplog.records if "event=handler_failed" in r.message]
    assert len(failures) == 2 and "session_id=s;crash" in failures[0]
    failed_requests = [r.message for r in caplog.records if "event=request_failed" in r.message]
    assert any(
        "result_code=5030" in m and "session_id=s;unknown-user" in m for m in failed_requests
    )


def test_missing_required_avps_are_5005_with_a_zero_filled_example(dk):
    async def main():
        node = dk.make_node()
        node.add_route(
            APP_CREDIT_CONTROL,
            CMD_CREDIT_CONTROL,
            dk.echo_ccr,
            required=("Session-Id", "Origin-Host", "Origin-Realm", "CC-Request-Type"),
        )
        _, port = await node.listen("127.0.0.1", 0)
        peer = await dk.RawPeer.connect(port)
        await peer.open()
        no_session = dk.ccr()
        no_session.avps = [a for a in no_session.avps if a.name != "Session-Id"]
        answer = await peer.request(no_session)
        assert answer.get("Result-Code") == ResultCode.MISSING_AVP
        assert not answer.flags & FLAG_ERROR
        inner = _failed_avp(answer)
        assert (inner.code, inner.vendor, inner.data) == (263, 0, b"")
        no_type = dk.ccr("s;t")
        no_type.avps = [a for a in no_type.avps if a.name != "CC-Request-Type"]
        answer = await peer.request(no_type)
        assert answer.get("Result-Code") == ResultCode.MISSING_AVP
        assert answer.get("Session-Id") == "s;t"
        inner = _failed_avp(answer)
        assert (inner.code, inner.data) == (416, b"\x00\x00\x00\x00")
        await node.close(0.2)

    dk.run(main)


def test_unknown_mandatory_avp_is_5001_with_its_bytes_and_unknown_optional_is_ignored(dk):
    async def main():
        node, port = await dk.serving()
        peer = await dk.RawPeer.connect(port)
        await peer.open()
        unknown_m = dk.avp_bytes(99999, b"\x01\x02\x03", flags=0xC0, vendor=VENDOR_3GPP)
        top = dk.ccr("s;top", Avp.from_wire(unknown_m[:15]))
        answer = await peer.request(top)
        assert answer.get("Result-Code") == ResultCode.AVP_UNSUPPORTED
        assert _failed_avp(answer).wire() == unknown_m
        nested = dk.ccr("s;nested", Avp.new("Multiple-Services-Credit-Control", [
            ("Rating-Group", 100), Avp.from_wire(unknown_m[:15])]))  # fmt: skip
        answer = await peer.request(nested)
        assert answer.get("Result-Code") == ResultCode.AVP_UNSUPPORTED
        assert _failed_avp(answer).wire() == unknown_m
        optional = dk.avp_bytes(99998, b"abcd", flags=0x00)
        answer = await peer.request(dk.ccr("s;opt", Avp.from_wire(optional)))
        assert answer.get("Result-Code") == ResultCode.SUCCESS
        await node.close(0.2)

    dk.run(main)


def test_too_many_requests_in_flight_get_3004(dk):
    async def main():
        node = dk.make_node(max_in_flight=4)
        release = asyncio.Event()

        @node.route(APP_CREDIT_CONTROL, CMD_CREDIT_CONTROL)
        async def held(request, peer):
            await release.wait()
            return request.answer(2001)

        _, port = await node.listen("127.0.0.1", 0)
        peer = await dk.RawPeer.connect(port)
        await peer.open()
        sent = [peer.send(dk.ccr(f"s;{i}")) for i in range(7)]
        busy = [await peer.recv() for _ in range(3)]
        assert [a.get("Result-Code") for a in busy] == [ResultCode.TOO_BUSY] * 3
        assert all(a.flags & FLAG_ERROR for a in busy)
        assert {a.hop_by_hop for a in busy} == {m.hop_by_hop for m in sent[4:]}
        release.set()
        done = [await peer.recv() for _ in range(4)]
        assert sorted(a.get("Session-Id") for a in done) == [f"s;{i}" for i in range(4)]
        assert {a.get("Result-Code") for a in done} == {2001}
        # capacity is back
        release.clear()
        release.set()
        assert (await peer.request(dk.ccr("s;again"))).get("Result-Code") == 2001
        await node.close(0.2)

    dk.run(main)


def test_request_routing_by_destination_and_metrics_export(dk):
    async def main():
        server, port = await dk.serving()
        client = dk.make_node("client.test", "test")
        with pytest.raises(PeerUnavailable):
            await client.request(dk.ccr(), destination_host="server.test")
        await client.connect("127.0.0.1", port)
        answer = await client.request(dk.ccr("s;h"), destination_host="server.test")
        assert answer.get("Result-Code") == 2001
        with pytest.raises(PeerUnavailable):
            await client.request(dk.ccr("s;x"), destination_host="other.test")
        with pytest.raises(PeerUnavailable):
            await client.request(dk.ccr("s;gx", app=APP_GX), destination_realm="server.test")
        # the server can send requests back to its client over the same connection
        client.add_route(APP_CREDIT_CONTROL, CMD_CREDIT_CONTROL, dk.echo_ccr)
        back = await server.request(dk.ccr("s;back"), destination_host="client.test")
        assert back.get("Origin-Host") == "client.test"
        registry = CollectorRegistry()
        registry.register(server.metrics.prometheus_collector())
        text = generate_latest(registry).decode()
        assert (
            'openpcc_diameter_request_seconds_count{application="4",command="272",'
            'direction="in",result="2001"} 1.0'
        ) in text
        assert 'openpcc_diameter_peer_events_total{event="open"} 1.0' in text
        await client.close()
        await server.close()

    dk.run(main)


def test_a_peer_that_does_not_read_is_not_read_either(dk):
    """Bounded memory: when our answers pile up, the node stops reading that peer's requests
    and a request towards it times out; other peers are unaffected."""

    async def main():
        node, port = await dk.serving(write_buffer_high=16 << 10)
        good = await dk.RawPeer.connect(port)
        await good.open(origin_host="good.test")
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.setblocking(False)
        await asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", port))
        reader, writer = await asyncio.open_connection(sock=sock)
        hog = dk.RawPeer(reader, writer)
        await hog.open(origin_host="hog.test")
        (server_side,) = [p for p in node.peers if p.origin_host == "hog.test"]
        wire = dk.ccr("s;hog").encode()
        deadline = time.monotonic() + 10
        while not server_side.congested:
            assert time.monotonic() < deadline, "the node never stopped reading"
            hog.send_bytes(wire * 200)
            await asyncio.sleep(0.01)
        answered = node.metrics.count("in", APP_CREDIT_CONTROL, CMD_CREDIT_CONTROL, 2001)
        await asyncio.sleep(0.2)
        later = node.metrics.count("in", APP_CREDIT_CONTROL, CMD_CREDIT_CONTROL, 2001)
        assert later == answered  # nothing more is read from the hog
        with pytest.raises(DiameterTimeout):
            await node.request(dk.ccr("s;to-hog"), peer=server_side, timeout=0.2)
        assert (await good.request(dk.ccr("s;good"))).get("Result-Code") == 2001
        hog.writer.transport.abort()
        await node.close(0.2)

    dk.run(main)


def test_handlers_in_progress_are_cancelled_when_their_connection_goes(dk):
    async def main():
        node = dk.make_node()
        started, outcome = asyncio.Event(), []

        @node.route(APP_CREDIT_CONTROL, CMD_CREDIT_CONTROL)
        async def waits(request, peer):
            started.set()
            try:
                await asyncio.sleep(30)
            except asyncio.CancelledError:
                outcome.append("cancelled")
                raise
            return request.answer(2001)

        _, port = await node.listen("127.0.0.1", 0)
        peer = await dk.RawPeer.connect(port)
        await peer.open()
        peer.send(dk.ccr("s;gone"))
        await asyncio.wait_for(started.wait(), 2)
        await peer.aclose()
        for _ in range(100):
            if outcome:
                break
            await asyncio.sleep(0.01)
        assert outcome == ["cancelled"]
        await node.close(0.2)

    dk.run(main)


def test_frames_split_anywhere_or_coalesced_are_all_answered(dk):
    async def main():
        node, port = await dk.serving()
        peer = await dk.RawPeer.connect(port)
        await peer.open()
        # one request dribbled byte by byte (header split too)
        wire = dk.ccr("s;dribble").encode()
        for i in range(len(wire)):
            peer.send_bytes(wire[i : i + 1])
            await peer.writer.drain()
            await asyncio.sleep(0)
        assert (await peer.recv()).get("Session-Id") == "s;dribble"
        # 100 requests: half of their bytes in one write, the rest in 997-byte pieces
        burst = b"".join(dk.ccr(f"s;b{i}").encode() for i in range(100))
        peer.send_bytes(burst[: len(burst) // 2])
        await asyncio.sleep(0.01)
        for start in range(len(burst) // 2, len(burst), 997):
            peer.send_bytes(burst[start : start + 997])
            await asyncio.sleep(0)
        answers = [await peer.recv() for _ in range(100)]
        assert [a.get("Session-Id") for a in answers] == [f"s;b{i}" for i in range(100)]
        await node.close(0.2)

    dk.run(main)


def test_a_message_of_exactly_1_mib_is_served(dk):
    async def main():
        node, port = await dk.serving()
        peer = await dk.RawPeer.connect(port)
        await peer.open()
        base = len(dk.ccr("s;big").encode())
        filler = dk.avp_bytes(99998, bytes((1 << 20) - base - 8), flags=0x00)  # not mandatory
        request = dk.ccr("s;big", Avp.from_wire(filler))
        assert len(request.encode()) == 1 << 20
        answer = await peer.request(request)
        assert answer.get("Result-Code") == ResultCode.SUCCESS
        await node.close(0.2)

    dk.run(main)


def test_hand_built_answers_get_the_request_ids_and_a_request_is_not_an_answer(dk):
    async def main():
        node = dk.make_node()

        @node.route(APP_CREDIT_CONTROL, CMD_CREDIT_CONTROL)
        async def hand_built(request, peer):
            if request.get("Session-Id") == "s;request":
                return dk.ccr("s;oops")  # a request is no answer: 5012
            return Message(CMD_CREDIT_CONTROL, APP_CREDIT_CONTROL, 0x40).add(
                ("Session-Id", request.get("Session-Id")), ("Result-Code", 2001)
            )

        _, port = await node.listen("127.0.0.1", 0)
        peer = await dk.RawPeer.connect(port)
        await peer.open()
        answer = await peer.request(dk.ccr("s;manual"))  # asserts the H2H/E2E match
        assert answer.get("Result-Code") == 2001
        assert answer.get("Origin-Host") == "server.test"
        answer = await peer.request(dk.ccr("s;request"))
        assert answer.get("Result-Code") == ResultCode.UNABLE_TO_COMPLY
        assert not answer.is_request
        await node.close(0.2)

    dk.run(main)


def test_answers_released_together_leave_in_one_write(dk):
    """Handlers woken in one event-loop iteration (one group commit) answer with one
    transport.write, in the order they finish; the answers are all there and correct."""

    async def main():
        node = dk.make_node()
        release = asyncio.Event()

        @node.route(APP_CREDIT_CONTROL, CMD_CREDIT_CONTROL)
        async def held(request, peer):
            await release.wait()
            return request.answer(2001)

        _, port = await node.listen("127.0.0.1", 0)
        client = await dk.RawPeer.connect(port)
        await client.open()
        (server_peer,) = node.peers
        transport = server_peer._transport
        writes: list[int] = []
        real_write = transport.write

        def counting_write(data):
            writes.append(len(data))
            real_write(data)

        transport.write = counting_write
        sent = [client.send(dk.ccr(f"s;{i}")) for i in range(20)]
        await asyncio.sleep(0.2)  # every request is in its handler
        assert writes == []
        release.set()
        answers = [await client.recv() for _ in range(20)]
        assert len(writes) == 1
        assert sum(len(a.encode()) for a in answers) == writes[0]
        assert [a.hop_by_hop for a in answers] == [m.hop_by_hop for m in sent]
        assert {a.get("Result-Code") for a in answers} == {2001}
        await node.close(0.2)

    dk.run(main)
