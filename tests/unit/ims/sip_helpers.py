"""Shared helpers for the IMS tests: a raw UDP/TCP peer and request builders."""

from __future__ import annotations

import asyncio
import socket

from ims.sip.message import Request, Response, new_branch, new_tag, parse_message


def raw_request(
    method: str,
    target_port: int,
    src_port: int,
    *,
    branch: str | None = None,
    transport: str = "UDP",
    cseq: int = 1,
    call_id: str = "call-1",
    to_tag: str | None = None,
    extra: str = "",
    body: bytes = b"",
) -> bytes:
    branch = branch or new_branch()
    to_tag_part = f";tag={to_tag}" if to_tag else ""
    head = (
        f"{method} sip:bob@127.0.0.1:{target_port} SIP/2.0\r\n"
        f"Via: SIP/2.0/{transport} 127.0.0.1:{src_port};branch={branch}\r\n"
        f"Max-Forwards: 70\r\n"
        f"From: <sip:alice@127.0.0.1>;tag=alice1\r\n"
        f"To: <sip:bob@127.0.0.1>{to_tag_part}\r\n"
        f"Call-ID: {call_id}\r\n"
        f"CSeq: {cseq} {method}\r\n"
        f"Contact: <sip:alice@127.0.0.1:{src_port}>\r\n"
        f"{extra}"
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


class UdpPeer:
    """A bare UDP socket to talk to the endpoint under test."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.setblocking(False)
        self.port = self.sock.getsockname()[1]

    def send(self, data: bytes, port: int) -> None:
        self.sock.sendto(data, ("127.0.0.1", port))

    async def recv_raw(self, timeout: float = 2.0) -> bytes:
        loop = asyncio.get_running_loop()
        return await asyncio.wait_for(loop.sock_recv(self.sock, 65535), timeout)

    async def recv(self, timeout: float = 2.0) -> Request | Response:
        return parse_message(await self.recv_raw(timeout))

    async def collect(self, duration: float) -> list[Request | Response]:
        out: list[Request | Response] = []
        loop = asyncio.get_running_loop()
        end = loop.time() + duration
        while (left := end - loop.time()) > 0:
            try:
                out.append(await self.recv(left))
            except TimeoutError:
                break
        return out

    def close(self) -> None:
        self.sock.close()


def tag() -> str:
    return new_tag()
