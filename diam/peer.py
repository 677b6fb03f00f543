"""One Diameter connection: the RFC 6733 §5.6 peer state machine over an asyncio Protocol.

Both sides of the capabilities exchange are handled here: as responder (we accepted the TCP
connection and wait for CER) and as initiator (we connected and sent CER). There is no election
(§5.6.4): a peer pair keeps a single connection, and the node replaces an older connection from
the same Origin-Host by the newer one (see ``Node._peer_opened``).

Hot path: ``data_received`` frames and decodes each message; application requests go to the
``diam.dispatch.Dispatcher`` this class extends, answers to the requests we sent are matched by
hop-by-hop id. Writes are batched per event-loop iteration (``diam.transport``).
"""

from __future__ import annotations

import asyncio
import enum
import logging
import random
import time
from typing import TYPE_CHECKING

from diam.answers import add_error_details, answer_from_header, result_code, session_id
from diam.base import (
    DISCONNECT_REBOOTING,
    advertised_applications,
    build_cea,
    build_cer,
    build_dpr,
    build_dwa,
    build_dwr,
    common_applications,
)
from diam.constants import (
    APP_BASE,
    CMD_CAPABILITIES_EXCHANGE,
    CMD_DEVICE_WATCHDOG,
    CMD_DISCONNECT_PEER,
    FLAG_REQUEST,
    ResultCode,
)
from diam.dispatch import Dispatcher
from diam.errors import CapabilitiesExchangeFailed, DiameterTimeout, PeerClosed
from diam.logfmt import address, log
from diam.message import DecodeError, Message

if TYPE_CHECKING:
    from diam.node import Node

_BASE_COMMANDS = (CMD_CAPABILITIES_EXCHANGE, CMD_DEVICE_WATCHDOG, CMD_DISCONNECT_PEER)


class PeerState(enum.Enum):
    CONNECTING = "connecting"
    WAIT_CER = "wait-cer"  # responder: TCP accepted, CER not yet received
    WAIT_CEA = "wait-cea"  # initiator: CER sent
    OPEN = "open"
    CLOSING = "closing"  # DPR sent or received
    CLOSED = "closed"


class Peer(Dispatcher):
    """A connection to one remote Diameter peer (public: state, origin_host, origin_realm,
    applications, remote_address)."""

    def __init__(self, node: Node, *, initiator: bool) -> None:
        super().__init__(node.write_buffer_high)
        self.node = node
        self.initiator = initiator
        self.state = PeerState.CONNECTING
        self.origin_host: str | None = None
        self.origin_realm: str | None = None
        self.applications: frozenset[int] = frozenset()
        self._hop_by_hop = random.getrandbits(32)
        self._pending: dict[int, asyncio.Future[Message]] = {}
        self._timer: asyncio.TimerHandle | None = None
        self._dwr_outstanding = False
        self._dpa_task: asyncio.Task[None] | None = None
        self.opened: asyncio.Future[Peer] = self._loop.create_future()
        self._closed: asyncio.Future[None] = self._loop.create_future()

    @property
    def pending_count(self) -> int:
        """Outbound requests awaiting their answer on this connection."""
        return len(self._pending)

    def __repr__(self) -> str:
        return f"<Peer {self.origin_host or '?'} {self.remote_address} {self.state.value}>"

    # --- asyncio.Protocol ------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        self.node._peer_connected(self)
        if self.initiator:
            self._set_state(PeerState.WAIT_CEA)
            self._send(build_cer(self.node.identity, self.node.origin_state_id, self._local_ips()))
        else:
            self._set_state(PeerState.WAIT_CER)
        # RFC 6733 §5.6 Tc-like guard: a connection that never completes CER/CEA is dropped.
        self._timer = self._loop.call_later(self.node.cer_timeout, self._cer_timeout)

    def connection_lost(self, exc: Exception | None) -> None:
        super().connection_lost(exc)
        previous = self.state
        self.state = PeerState.CLOSED
        if self._timer is not None:
            self._timer.cancel()
        for future in self._pending.values():
            if not future.done():
                future.set_exception(PeerClosed(f"connection to {self.origin_host} closed"))
        self._pending.clear()
        for task in self._tasks:
            task.cancel()
        if not self.opened.done():
            self.opened.set_exception(
                CapabilitiesExchangeFailed(f"connection closed in state {previous.value}")
            )
            self.opened.exception()  # mark retrieved: nobody may be waiting (responder side)
        if not self._closed.done():
            self._closed.set_result(None)
        self.node.metrics.peer_event("closed")
        log(
            logging.INFO,
            "peer_closed",
            origin_host=self.origin_host,
            remote=address(self.remote_address),
            previous_state=previous.value,
            error=exc,
        )
        self.node._peer_closed(self)

    # --- frames ------------------------------------------------------------------------------

    def frame_received(self, frame: bytes) -> None:
        try:
            msg = Message.decode(frame)
        except DecodeError as err:
            self._on_decode_error(err)
            return
        try:
            self._route(msg, frame)
        except DecodeError as err:
            # A malformed AVP met while reading a value, e.g. a CER's Origin-Host: answer with
            # its code (RFC 6733 §7); before Open there is no session to keep, so close.
            if not msg.is_request:
                self._drop_answer(msg.hop_by_hop, err)
                return
            self._reply_error(msg, err.result_code, err.failed_avp, err.message)
            if self.state is not PeerState.OPEN and self.state is not PeerState.CLOSING:
                self._close_transport()
        except Exception as exc:  # a bug of ours: lose this connection, never the process
            log(logging.ERROR, "internal_error", peer=self.origin_host, error=repr(exc))
            self.abort(f"internal error: {exc!r}")

    def _route(self, msg: Message, wire: bytes) -> None:
        if msg.is_request:
            if msg.application_id == APP_BASE and msg.command_code in _BASE_COMMANDS:
                self._on_base_request(msg)
            elif self.state is PeerState.OPEN or self.state is PeerState.CLOSING:
                self._dispatch(msg, wire)
            else:
                self.abort(f"request {msg.command_code} before capabilities exchange")
        else:
            self._on_answer(msg)

    def _on_decode_error(self, err: DecodeError) -> None:
        header = err.header
        if header is None or not header.flags & FLAG_REQUEST:
            self._drop_answer(header.hop_by_hop if header is not None else None, err)
            return
        if self.state is not PeerState.OPEN and header.command_code != CMD_CAPABILITIES_EXCHANGE:
            self.abort(f"undecodable request before capabilities exchange: {err.message}")
            return
        # The codec reports a bad version as 5011 and bad header bits (an E bit in a request
        # included, RFC 6733 §3) as 3008; only the header can be trusted.
        answer = answer_from_header(header, err.result_code)
        add_error_details(answer, err.failed_avp, err.message)
        self._write_answer(answer, header.application_id, header.command_code, None, None)
        if header.command_code == CMD_CAPABILITIES_EXCHANGE and self.state is not PeerState.OPEN:
            self._close_transport()

    def _drop_answer(self, hop_by_hop: int | None, err: DecodeError) -> None:
        """An undecodable answer: log it and fail the request it answers, if known."""
        log(logging.WARNING, "bad_answer_dropped", peer=self.origin_host, error=err.message)
        future = self._pending.pop(hop_by_hop, None) if hop_by_hop is not None else None
        if future is not None and not future.done():
            future.set_exception(err)

    def _on_answer(self, msg: Message) -> None:
        if msg.application_id == APP_BASE and msg.command_code in _BASE_COMMANDS:
            if msg.command_code == CMD_CAPABILITIES_EXCHANGE:
                self._on_cea(msg)
                return
            if msg.command_code == CMD_DEVICE_WATCHDOG:
                self._dwr_outstanding = False
                return
            if msg.command_code == CMD_DISCONNECT_PEER and self.state is PeerState.CLOSING:
                self._close_transport()
                return
        future = self._pending.pop(msg.hop_by_hop, None)
        if future is None:
            log(
                logging.WARNING,
                "unmatched_answer_dropped",
                peer=self.origin_host,
                hop_by_hop=msg.hop_by_hop,
                command=msg.command_code,
                session_id=session_id(msg),
            )
        elif not future.done():
            future.set_result(msg)

    # --- base protocol: CER/CEA, DWR/DWA, DPR/DPA ---------------------------------------------

    def _on_base_request(self, msg: Message) -> None:
        cmd = msg.command_code
        if cmd == CMD_CAPABILITIES_EXCHANGE:
            if self.initiator and self.state is PeerState.WAIT_CEA:
                self.abort("CER received while waiting for CEA (election not supported)")
            else:
                self._on_cer(msg)
        elif self.state is not PeerState.OPEN and self.state is not PeerState.CLOSING:
            self.abort(f"command {cmd} before capabilities exchange")
        elif cmd == CMD_DEVICE_WATCHDOG:
            self._write_answer(build_dwa(msg, self.node.origin_state_id), APP_BASE, cmd, None, msg)
        else:
            cause = msg.get("Disconnect-Cause")
            log(logging.INFO, "peer_dpr_received", peer=self.origin_host, disconnect_cause=cause)
            self._set_state(PeerState.CLOSING)
            if self._tasks:  # answer what the peer sent before its DPR, then DPA (RFC 6733 §5.4)
                self._dpa_task = self._loop.create_task(self._dpa_after_handlers(msg))
            else:
                self._send_dpa(msg)

    async def _dpa_after_handlers(self, dpr: Message) -> None:
        running = set(self._tasks)  # may have emptied since the DPR arrived
        if running:
            await asyncio.wait(running, timeout=self.node.dpr_grace)
        self._send_dpa(dpr)

    def _send_dpa(self, dpr: Message) -> None:
        if self.state is PeerState.CLOSED:
            return
        answer = dpr.answer(ResultCode.SUCCESS)
        self._write_answer(answer, APP_BASE, CMD_DISCONNECT_PEER, None, dpr)
        self._close_transport()

    def _on_cer(self, cer: Message) -> None:
        node = self.node
        remote_ip = self.remote_address[0] if self.remote_address else None
        verdict = node.evaluate_cer(cer, remote_ip, self._transport)
        cea = build_cea(
            cer,
            verdict.result_code,
            node.identity,
            node.origin_state_id,
            self._local_ips(),
            None if verdict.result_code == ResultCode.SUCCESS else verdict.reason,
        )
        fields = {
            "origin_host": verdict.origin_host,
            "origin_realm": verdict.origin_realm,
            "remote": address(self.remote_address),
            "product": cer.get("Product-Name"),
            "reason": verdict.reason,
        }
        if verdict.result_code != ResultCode.SUCCESS:
            log(logging.WARNING, "cer_rejected", result_code=verdict.result_code, **fields)
            node.metrics.peer_event("cer_rejected")
            self._send(cea)
            self._close_transport()
            return
        self.origin_host, self.origin_realm = verdict.origin_host, verdict.origin_realm
        self.applications = verdict.applications
        self._send(cea)
        level = logging.WARNING if verdict.warn else logging.INFO
        apps = ",".join(map(str, sorted(verdict.applications)))
        log(level, "cer_accepted", applications=apps, **fields)
        if self.state is not PeerState.OPEN:
            self._open()

    def _on_cea(self, cea: Message) -> None:
        if not self.initiator or self.state is not PeerState.WAIT_CEA:
            log(logging.WARNING, "unexpected_cea_dropped", peer=self.origin_host)
            return
        code = cea.get("Result-Code")
        self.origin_host, self.origin_realm = cea.get("Origin-Host"), cea.get("Origin-Realm")
        common = common_applications(
            advertised_applications(cea), self.node.identity.application_ids
        )
        mismatch = self.node.tls_mismatch(self._transport, self.origin_host or "")
        if code != ResultCode.SUCCESS or not common or not self.origin_host or mismatch:
            reason = f"CEA Result-Code {code}" if code != ResultCode.SUCCESS else "no common app"
            reason = mismatch or reason
            log(logging.WARNING, "cea_rejected", origin_host=self.origin_host, reason=reason)
            if not self.opened.done():
                self.opened.set_exception(CapabilitiesExchangeFailed(reason, code))
            self._close_transport()
            return
        self.applications = common
        self._open()

    def _open(self) -> None:
        self._set_state(PeerState.OPEN)
        if self._timer is not None:
            self._timer.cancel()
        self._arm_watchdog(self.node.watchdog_interval())
        self.node._peer_opened(self)
        if not self.opened.done():
            self.opened.set_result(self)

    def _cer_timeout(self) -> None:
        if self.state in (PeerState.WAIT_CER, PeerState.WAIT_CEA):
            self.abort("capabilities exchange timed out")

    # --- watchdog (RFC 3539 §3.4.1) --------------------------------------------------------

    def _arm_watchdog(self, delay: float) -> None:
        self._timer = self._loop.call_later(delay, self._on_watchdog)

    def _on_watchdog(self) -> None:
        if self.state is not PeerState.OPEN:
            return
        tw = self.node.watchdog_interval()
        if self._dwr_outstanding:
            self.abort("watchdog: no DWA within Tw")
            return
        idle = self._loop.time() - self._last_rx
        if idle < tw:
            self._arm_watchdog(tw - idle)
            return
        self._dwr_outstanding = True
        self._send(build_dwr(self.node.origin_state_id))
        self._arm_watchdog(tw)

    # --- outbound ------------------------------------------------------------------------------

    async def request(self, msg: Message, timeout: float) -> Message:
        """Send ``msg`` (a request) on this connection and wait for its answer; ``timeout``
        covers waiting for a congested connection to drain too."""
        loop = self._loop
        deadline = loop.time() + timeout
        if self.congested and self.state is PeerState.OPEN:
            try:  # the peer does not read: wait for the send buffer to drain
                await asyncio.wait_for(self.wait_writable(), timeout)
            except TimeoutError:
                raise DiameterTimeout(f"{self.origin_host} not reading for {timeout} s") from None
        if self.state is not PeerState.OPEN:
            raise PeerClosed(f"peer {self.origin_host} is {self.state.value}")
        self._hop_by_hop = hop_by_hop = (self._hop_by_hop + 1) & 0xFFFFFFFF
        msg.hop_by_hop = hop_by_hop
        future: asyncio.Future[Message] = loop.create_future()
        self._pending[hop_by_hop] = future
        started = time.perf_counter()
        expiry = loop.call_at(deadline, _expire, future, timeout)
        code = 0
        try:
            self._send(msg)
            answer = await future
            code = result_code(answer)
            return answer
        except DiameterTimeout:
            log(
                logging.WARNING,
                "request_timeout",
                peer=self.origin_host,
                session_id=session_id(msg),
                application=msg.application_id,
                command=msg.command_code,
                timeout=timeout,
            )
            raise
        finally:
            expiry.cancel()
            self._pending.pop(hop_by_hop, None)
            self.node.metrics.observe(
                "out", msg.application_id, msg.command_code, code, time.perf_counter() - started
            )

    async def wait_closed(self) -> None:
        """Return once the connection is closed."""
        await asyncio.shield(self._closed)

    async def disconnect(self, cause: int = DISCONNECT_REBOOTING, timeout: float = 2.0) -> None:
        """Send DPR, wait for DPA (or ``timeout``), then close (RFC 6733 §5.4)."""
        if self.state is PeerState.OPEN:
            self._set_state(PeerState.CLOSING)
            self._send(build_dpr(cause))
        elif self.state is not PeerState.CLOSING:
            self._close_transport()
        try:
            await asyncio.wait_for(asyncio.shield(self._closed), timeout)
        except TimeoutError:
            self.abort("no DPA within timeout")
            await self._closed

    def abort(self, reason: str) -> None:
        """Close at once (no DPR): framing lost, protocol violation, watchdog failure."""
        if self.reading_stopped:
            return
        log(
            logging.WARNING,
            "peer_abort",
            origin_host=self.origin_host,
            remote=address(self.remote_address),
            state=self.state.value,
            reason=reason,
        )
        self.node.metrics.peer_event("abort")
        super().abort(reason)

    # --- writing ---------------------------------------------------------------------------

    def _send(self, msg: Message) -> None:
        """Send a message we originate (CER, DWR, DPR, outbound requests)."""
        if msg.is_request:
            self._stamp_origin(msg)
            if msg.command_code in _BASE_COMMANDS:
                self._hop_by_hop = msg.hop_by_hop = (self._hop_by_hop + 1) & 0xFFFFFFFF
            if not msg.end_to_end:
                msg.end_to_end = self.node.next_end_to_end()
        self._write(msg.encode())

    def _set_state(self, state: PeerState) -> None:
        if state is not self.state:
            log(
                logging.INFO,
                "peer_state",
                origin_host=self.origin_host,
                remote=address(self.remote_address),
                old=self.state.value,
                new=state.value,
            )
            self.node.metrics.peer_event(state.value)
            self.state = state

    def _local_ips(self) -> list[str]:
        return [self.local_address[0]] if self.local_address else ["127.0.0.1"]


def _expire(future: asyncio.Future[Message], timeout: float) -> None:
    if not future.done():
        future.set_exception(DiameterTimeout(f"no answer within {timeout} s"))
