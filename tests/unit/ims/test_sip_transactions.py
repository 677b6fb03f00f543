"""RFC 3261 §17 transactions over real loopback UDP/TCP sockets with shortened timers."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest

from ims.sip.endpoint import Endpoint
from ims.sip.headers import Headers
from ims.sip.message import Request, Response, make_response, new_branch, parse_message
from ims.sip.transaction import ClientTransaction, ServerTransaction, State, Target, Timers
from ims.sip.transport import UDP_BUFFER_BYTES
from ims.sip.uri import parse_uri
from tests.unit.ims.sip_helpers import UdpPeer, raw_request

FAST = Timers(t1=0.02, t2=0.08, t4=0.1, d=0.2)


class Recorder:
    """Transaction user that records what reaches it and answers with ``answer``."""

    def __init__(self, answer: int | None = None) -> None:
        self.requests: list[Request] = []
        self.stray: list[Response] = []
        self.answer = answer
        self.servers: list[ServerTransaction] = []

    def on_request(self, request: Request, tx: ServerTransaction | None, source: Target) -> None:
        self.requests.append(request)
        if tx is not None:
            self.servers.append(tx)
            if self.answer:
                tx.respond(make_response(request, self.answer, to_tag="uas"))

    def on_stray_response(self, response: Response, source: Target) -> None:
        self.stray.append(response)


@asynccontextmanager
async def udp_endpoint(tu: Recorder) -> AsyncIterator[tuple[Endpoint, UdpPeer]]:
    """A started endpoint with the fast timers, and a bare UDP peer to talk to it."""
    ep = Endpoint(tu, FAST)
    await ep.start()
    peer = UdpPeer()
    try:
        yield ep, peer
    finally:
        peer.close()
        await ep.close()


def outgoing(endpoint: Endpoint, method: str, port: int, transport: str = "UDP") -> Request:
    headers = Headers()
    headers.add("Via", endpoint.via(transport, new_branch()))
    headers.add("Max-Forwards", "70")
    headers.add("From", "<sip:alice@127.0.0.1>;tag=a1")
    headers.add("To", "<sip:bob@127.0.0.1>")
    headers.add("Call-ID", f"c-{method}-{transport}")
    headers.add("CSeq", f"1 {method}")
    return Request(method, parse_uri(f"sip:bob@127.0.0.1:{port}"), headers)


def test_invite_client_timer_a_doubles_and_timer_b_gives_408() -> None:
    async def main() -> None:
        async with udp_endpoint(Recorder()) as (ep, peer):
            tx = ep.request(
                outgoing(ep, "INVITE", peer.port), Target("UDP", "127.0.0.1", peer.port)
            )
            loop = asyncio.get_running_loop()
            start = loop.time()
            seen = [await peer.recv()]
            times = [loop.time() - start]
            final = await asyncio.wait_for(tx.final, 3)
            while True:
                try:
                    seen.append(await peer.recv(0.05))
                except TimeoutError:
                    break
                times.append(loop.time() - start)
            assert final.status == 408  # Timer B = 64*T1 = 1.28 s
            elapsed = loop.time() - start
            assert 1.2 < elapsed < 2.5
            # A: T1, 2T1, 4T1 ... → 7 transmissions within 64*T1
            assert 6 <= len(seen) <= 8
            assert all(isinstance(m, Request) and m.method == "INVITE" for m in seen)
            assert tx.state == State.TERMINATED

    asyncio.run(main())


def test_non_invite_client_timer_e_capped_at_t2_then_408() -> None:
    async def main() -> None:
        async with udp_endpoint(Recorder()) as (ep, peer):
            tx = ep.request(
                outgoing(ep, "OPTIONS", peer.port), Target("UDP", "127.0.0.1", peer.port)
            )
            seen = await peer.collect(1.4)
            assert (await tx.final).status == 408
            # E: 0.02, 0.04, 0.08, then capped at T2 = 0.08 → about 17 sends in 1.28 s
            assert 13 <= len(seen) <= 19

    asyncio.run(main())


async def request_sent(
    ep: Endpoint, peer: UdpPeer, statuses: list[int], method: str = "INVITE"
) -> tuple[ClientTransaction, Request]:
    """A client transaction to ``peer`` noting the statuses it reports, and its request as the
    peer received it."""
    tx = ep.request(
        outgoing(ep, method, peer.port),
        Target("UDP", "127.0.0.1", peer.port),
        lambda _tx, r: statuses.append(r.status),
    )
    invite = await peer.recv()
    assert isinstance(invite, Request)
    return tx, invite


def test_invite_client_acks_non_2xx_and_absorbs_retransmissions() -> None:
    async def main() -> None:
        responses: list[int] = []
        async with udp_endpoint(Recorder()) as (ep, peer):
            tx, invite = await request_sent(ep, peer, responses)
            peer.send(make_response(invite, 100).encode(), ep.port)
            await asyncio.sleep(0.1)
            assert len(await peer.collect(0.1)) == 0  # 1xx stops Timer A
            busy = make_response(invite, 486, to_tag="b0b")
            peer.send(busy.encode(), ep.port)
            ack = await peer.recv()
            assert isinstance(ack, Request) and ack.method == "ACK"
            assert ack.top_via.branch == invite.top_via.branch  # same transaction (§17.1.1.3)
            assert ack.to.tag == "b0b" and ack.cseq == (1, "ACK")
            peer.send(busy.encode(), ep.port)  # retransmitted 486 → ACK again, TU not told
            again = await peer.recv()
            assert isinstance(again, Request) and again.method == "ACK"
            assert responses == [100, 486]
            with pytest.raises(RuntimeError):  # told through on_response, not kept for later
                tx.final  # noqa: B018
            await asyncio.sleep(0.3)  # Timer D
            assert tx.state == State.TERMINATED

    asyncio.run(main())


def test_accepted_invite_client_passes_2xx_retransmissions_up_as_strays() -> None:
    """RFC 6026 §8.4: Accepted passes 2xx retransmissions to the TU, here as stray responses
    (a proxy forwards them, a UA ACKs again), so the TU's callback is dropped at the 2xx."""

    async def main() -> None:
        tu = Recorder()
        seen: list[int] = []
        async with udp_endpoint(tu) as (ep, peer):
            tx, invite = await request_sent(ep, peer, seen)
            ok = make_response(invite, 200, to_tag="b0b").encode()
            peer.send(ok, ep.port)
            await asyncio.sleep(0.05)
            assert seen == [200] and tx.state == State.ACCEPTED and tx.on_response is None
            peer.send(ok, ep.port)
            await asyncio.sleep(0.05)
            assert seen == [200] and [r.status for r in tu.stray] == [200]
            assert ep.layer.clients == {tx.key: tx}  # still absorbing until Timer M

    asyncio.run(main())


def test_invite_server_100_trying_timer_g_until_ack() -> None:
    async def main() -> None:
        tu = Recorder(answer=486)
        async with udp_endpoint(tu) as (ep, peer):
            branch = new_branch()
            invite = raw_request("INVITE", ep.port, peer.port, branch=branch)
            peer.send(invite, ep.port)
            first = await peer.recv()
            assert isinstance(first, Response) and first.status == 100
            assert first.to.tag is None
            finals = [m for m in await peer.collect(0.25) if isinstance(m, Response)]
            # G: 0.02, 0.04, 0.08 → the 486 and about 3 retransmissions in 0.25 s
            assert 2 <= len(finals) <= 6 and {r.status for r in finals} == {486}
            peer.send(invite, ep.port)  # retransmitted INVITE: answered from the transaction
            assert (await peer.recv()).status == 486  # type: ignore[union-attr]
            assert len(tu.requests) == 1
            ack = raw_request("ACK", ep.port, peer.port, branch=branch, to_tag="uas")
            peer.send(ack.replace(b"CSeq: 1 INVITE", b"CSeq: 1 ACK"), ep.port)
            await asyncio.sleep(0.05)
            assert await peer.collect(0.3) == []  # ACK stops Timer G
            assert tu.servers[0].state in (State.CONFIRMED, State.TERMINATED)

    asyncio.run(main())


def test_non_invite_server_answers_retransmission_from_cache() -> None:
    async def main() -> None:
        tu = Recorder(answer=200)
        async with udp_endpoint(tu) as (ep, peer):
            req = raw_request("OPTIONS", ep.port, peer.port)
            peer.send(req, ep.port)
            assert (await peer.recv()).status == 200  # type: ignore[union-attr]
            peer.send(req, ep.port)
            assert (await peer.recv()).status == 200  # type: ignore[union-attr]
            assert len(tu.requests) == 1
            await asyncio.sleep(64 * FAST.t1 + 0.1)  # Timer J ends the transaction
            assert ep.layer.servers == {}

    asyncio.run(main())


def test_lingering_transactions_release_request_and_callback() -> None:
    """Past the final response only retransmissions are absorbed: the request and the parsed
    response go (the TU must not answer again), the client's callback goes at the end of
    Timer K."""

    async def main() -> None:
        tu = Recorder(answer=200)
        async with udp_endpoint(tu) as (ep, peer):
            peer.send(raw_request("OPTIONS", ep.port, peer.port), ep.port)
            assert (await peer.recv()).status == 200  # type: ignore[union-attr]
            (server,) = tu.servers
            assert server.state == State.COMPLETED and not server.answerable
            assert server.last_response is None  # kept as bytes for retransmissions only
            with pytest.raises(RuntimeError):
                server.request  # noqa: B018
            seen: list[int] = []
            client, sent = await request_sent(ep, peer, seen, "OPTIONS")
            peer.send(make_response(sent, 200, to_tag="b").encode(), ep.port)
            assert (await asyncio.wait_for(client.final, 1)).status == 200
            assert seen == [200] and client.on_response is None
            await asyncio.sleep(FAST.t4 + 0.1)  # Timer K
            assert client.state == State.TERMINATED and ep.layer.clients == {}

    asyncio.run(main())


def test_udp_burst_while_the_loop_is_busy_is_not_dropped() -> None:
    """1,500 requests (~0.5 MB of datagrams) arrive while the event loop does something else:
    the socket's buffer (UDP_BUFFER_BYTES) holds them all; at the kernel's default ~208 KiB
    most would be dropped."""
    rmem_max = int(Path("/proc/sys/net/core/rmem_max").read_text())
    if rmem_max < UDP_BUFFER_BYTES:
        pytest.skip(f"net.core.rmem_max {rmem_max} caps the buffer below {UDP_BUFFER_BYTES}")

    async def main() -> None:
        tu = Recorder(answer=200)
        async with udp_endpoint(tu) as (ep, peer):
            for i in range(1500):  # no await: the loop cannot read meanwhile
                peer.send(raw_request("OPTIONS", ep.port, peer.port, call_id=f"b-{i}"), ep.port)
            deadline = asyncio.get_running_loop().time() + 5
            while len(tu.requests) < 1500 and asyncio.get_running_loop().time() < deadline:
                await asyncio.sleep(0.05)
            assert len(tu.requests) == 1500

    asyncio.run(main())


def test_tcp_no_retransmissions_and_408() -> None:
    async def main() -> None:
        ep = Endpoint(Recorder(), FAST)
        await ep.start()
        server = socket.create_server(("127.0.0.1", 0))
        server.setblocking(False)
        port = server.getsockname()[1]
        loop = asyncio.get_running_loop()
        try:
            tx = ep.request(outgoing(ep, "INVITE", port, "TCP"), Target("TCP", "127.0.0.1", port))
            conn, _ = await loop.sock_accept(server)
            received = b""
            final = await asyncio.wait_for(tx.final, 3)
            conn.setblocking(False)
            while True:
                try:
                    chunk = await asyncio.wait_for(loop.sock_recv(conn, 65535), 0.05)
                except TimeoutError:
                    break
                if not chunk:
                    break
                received += chunk
            assert received.count(b"INVITE sip:") == 1
            assert final.status == 408
            conn.close()
        finally:
            server.close()
            await ep.close()

    asyncio.run(main())


def test_tcp_connect_failure_is_503() -> None:
    async def main() -> None:
        ep = Endpoint(Recorder(), FAST)
        await ep.start()
        probe = socket.socket()
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
        probe.close()  # nothing listens there
        try:
            tx: ClientTransaction = ep.request(
                outgoing(ep, "OPTIONS", port, "TCP"), Target("TCP", "127.0.0.1", port)
            )
            assert (await asyncio.wait_for(tx.final, 2)).status == 503
        finally:
            await ep.close()

    asyncio.run(main())


def test_malformed_udp_gets_400_with_warning_and_tcp_closes() -> None:
    async def main() -> None:
        tu = Recorder(answer=200)
        async with udp_endpoint(tu) as (ep, peer):
            bad = raw_request("OPTIONS", ep.port, peer.port).replace(
                b"CSeq: 1 OPTIONS", b"CSeq: x OPTIONS"
            )
            peer.send(bad, ep.port)
            raw = await peer.recv_raw()  # copies the broken CSeq, so no strict parse here
            assert raw.startswith(b"SIP/2.0 400 Bad Request\r\n")
            assert b"Warning: 399 OpenPCC \"malformed CSeq 'x OPTIONS'\"" in raw
            peer.send(b"\x00\xff garbage", ep.port)  # nothing to address: dropped
            assert await peer.collect(0.1) == []
            assert tu.requests == []
            reader, writer = await asyncio.open_connection("127.0.0.1", ep.port)
            good = raw_request("OPTIONS", ep.port, 1, transport="TCP")
            writer.write(good + bad.replace(b"SIP/2.0/UDP", b"SIP/2.0/TCP"))
            data = await asyncio.wait_for(reader.read(65535), 2)
            while data.count(b"SIP/2.0 ") < 2:
                data += await asyncio.wait_for(reader.read(65535), 2)
            assert b"SIP/2.0 200 OK" in data and b"SIP/2.0 400 Bad Request" in data
            writer.write(
                b"OPTIONS sip:x SIP/2.0\r\nVia: SIP/2.0/TCP h;branch=z9hG4bK1\r\n"
                b"Content-Length: zz\r\n\r\n"
            )  # framing error: connection closes
            rest = await asyncio.wait_for(reader.read(), 2)
            assert rest == b"" or b"400" in rest
            writer.close()
            assert len(tu.requests) == 1
            assert ep.transport.stats["malformed"] >= 3

    asyncio.run(main())


def test_received_and_rport_added_to_top_via() -> None:
    async def main() -> None:
        tu = Recorder(answer=200)
        async with udp_endpoint(tu) as (ep, peer):
            req = raw_request("OPTIONS", ep.port, peer.port).replace(
                f"127.0.0.1:{peer.port};branch".encode(), b"192.0.2.1:5099;rport;branch"
            )
            peer.send(req, ep.port)
            resp = await peer.recv()
            via = parse_message(resp.encode()).top_via
            assert via.params["received"] == "127.0.0.1"
            assert via.params["rport"] == str(peer.port)

    asyncio.run(main())


def test_concurrent_transactions_time_out_each_at_its_own_timer_f() -> None:
    """Timers of one duration share a queue: staggered transactions each get their 408 64·T1
    after their own start; one answered in time never does."""

    async def main() -> None:
        async with udp_endpoint(Recorder()) as (ep, peer):
            loop = asyncio.get_running_loop()
            started: list[float] = []
            txs: list[ClientTransaction] = []
            for i in range(6):
                request = outgoing(ep, "OPTIONS", peer.port)
                request.headers.set("Call-ID", f"c-{i}")
                txs.append(ep.request(request, Target("UDP", "127.0.0.1", peer.port)))
                started.append(loop.time())
                await asyncio.sleep(0.1)
            answered = txs[2]
            answered.receive(make_response(answered.request, 200, to_tag="b"))
            ended: dict[int, float] = {}
            for i, tx in enumerate(txs):
                tx.final.add_done_callback(lambda _f, i=i: ended.setdefault(i, loop.time()))
            await asyncio.wait_for(asyncio.gather(*(tx.final for tx in txs)), 4)
            for i, tx in enumerate(txs):
                if tx is answered:
                    assert tx.final.result().status == 200
                    continue
                assert tx.final.result().status == 408
                assert 1.27 <= ended[i] - started[i] < 2.2  # Timer F = 64·T1 = 1.28 s
            assert sorted(ended, key=ended.__getitem__) == [2, 0, 1, 3, 4, 5]

    asyncio.run(main())
