"""SIP transactions (RFC 3261 §17, with the Accepted states of RFC 6026).

Timers (§17.1.1.2, §17.1.2.2, §17.2.1, §17.2.2): A/E retransmit requests (T1 doubling; E capped
at T2), B/F time out client transactions (64·T1), D/K absorb response retransmissions, G
retransmits final INVITE responses (T1 doubling to T2) until H (64·T1), I/J absorb request
retransmissions. Over reliable transports A, E, G are not used and D, I, J, K are zero. All
values come from ``Timers`` so tests can shrink them.

Every timer of one kind has the same duration, so timers of one duration expire in the order
they were started: ``Deadlines`` keeps one FIFO and one loop timer per duration instead of a
loop timer per transaction timer (a proxy starts ~10 per call, most of them stopped early or
lingering 32 s); stopping a timer is marking its entry, and expiries close together share
one wakeup of the process.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, NamedTuple

from ims.sip.headers import Headers
from ims.sip.message import (
    BRANCH_MAGIC,
    Message,
    Request,
    Response,
    make_response,
    parse_message,
    peek_via,
)

log = logging.getLogger(__name__)


class Target(NamedTuple):
    """Where a message goes or came from: transport ("UDP"/"TCP"), host, port."""

    transport: str
    host: str
    port: int

    @property
    def reliable(self) -> bool:
        return self.transport != "UDP"


_TARGETS: dict[tuple[str, str, int], Target] = {}
_TARGETS_KEPT = 4096


def shared_target(transport: str, host: str, port: int) -> Target:
    """The one shared :class:`Target` of an address. A proxy at 200 calls/s holds thousands of
    lingering transactions and messages per peer, and every distinct Target is one more object
    for each pass of the garbage collector (named tuples are not untracked as plain ones are):
    ~26,000 of the ~170,000 in the IMS core's oldest generation in bench.ims."""
    key = (transport, host, port)
    found = _TARGETS.get(key)
    if found is None:
        if len(_TARGETS) >= _TARGETS_KEPT:  # many peers (or a port scan): start afresh
            _TARGETS.clear()
        found = _TARGETS[key] = Target(transport, host, port)
    return found


@dataclass(frozen=True, slots=True)
class Timers:
    t1: float = 0.5
    t2: float = 4.0
    t4: float = 5.0
    d: float = 32.0  # RFC 3261 §17.1.1.2: at least 32 s over UDP

    @property
    def b(self) -> float:
        return 64 * self.t1


class State(StrEnum):
    CALLING = "Calling"
    TRYING = "Trying"
    PROCEEDING = "Proceeding"
    COMPLETED = "Completed"
    ACCEPTED = "Accepted"
    CONFIRMED = "Confirmed"
    TERMINATED = "Terminated"


Send = Callable[[Message, Target], None]


def server_key(request: Request) -> tuple[str, ...]:
    """§17.2.3 matching: branch + sent-by + method (ACK matches its INVITE). Requests without
    the magic cookie (RFC 2543 peers) fall back to Call-ID, From tag, CSeq number and top Via."""
    via = peek_via(request.headers.get("Via") or "")
    method = "INVITE" if request.method == "ACK" else request.method
    branch = via.branch or ""
    if branch.startswith(BRANCH_MAGIC):
        return (branch, via.sent_by, method)
    return (
        "rfc2543",
        request.call_id,
        request.from_tag or "",
        str(request.cseq[0]),
        str(via),
        method,
    )


def client_key(message: Message) -> tuple[str, str]:
    """§17.1.3: top Via branch + CSeq method."""
    return (peek_via(message.headers.get("Via") or "").branch or "", message.cseq[1])


# A running timer: [deadline, callback (None once stopped or fired), owner's timers, name, queue].
_Entry = list[Any]


class _Queue:
    """The timers of one duration, in start (= expiry) order, and the loop timer for them."""

    __slots__ = ("delay", "entries", "handle", "live")

    def __init__(self, delay: float) -> None:
        self.delay = delay
        self.entries: deque[_Entry] = deque()
        self.live = 0  # entries neither stopped nor fired
        self.handle: asyncio.TimerHandle | None = None


class Deadlines:
    """Timers that fire in start order per duration: a FIFO of entries and one loop timer per
    distinct duration. A timer may fire up to 1/64 of its duration late (RFC 3261 timers are
    lower bounds), so expiries close together share one wakeup; a queue whose timers were all
    stopped (Timers A/B once the answer came) drops its loop timer instead of waking up."""

    SLACK = 1 / 64

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self._queues: dict[float, _Queue] = {}

    def start(
        self, delay: float, callback: Callable[[], None], owner: dict[str, _Entry], name: str
    ) -> None:
        """Run ``callback`` after ``delay`` s unless stopped first (``stop(owner[name])``)."""
        queue = self._queues.get(delay)
        if queue is None:
            queue = self._queues[delay] = _Queue(delay)
        entry = [self.loop.time() + delay, callback, owner, name, queue]
        owner[name] = entry
        queue.entries.append(entry)
        queue.live += 1
        if queue.handle is None:
            self._arm(queue)

    def stop(self, entry: _Entry) -> None:
        if entry[1] is None:
            return
        entry[1] = None
        queue: _Queue = entry[4]
        queue.live -= 1
        if not queue.live:
            queue.entries.clear()
            if queue.handle is not None:
                queue.handle.cancel()
                queue.handle = None

    def _arm(self, queue: _Queue) -> None:
        entries = queue.entries
        while entries[0][1] is None:  # stopped heads: the live count says one is left
            entries.popleft()
        at = entries[0][0] + queue.delay * self.SLACK
        queue.handle = self.loop.call_at(at, self._expire, queue)

    def _expire(self, queue: _Queue) -> None:
        entries = queue.entries
        now = self.loop.time() + 0.001  # the loop's clock runs in whole milliseconds
        while entries and entries[0][0] <= now:
            entry = entries.popleft()
            callback = entry[1]
            if callback is None:
                continue
            entry[1] = None
            queue.live -= 1
            owner = entry[2]
            if owner.get(entry[3]) is entry:
                del owner[entry[3]]
            try:
                callback()
            except Exception:  # one transaction's failure must not stall the others' timers
                log.exception("SIP timer %s failed", entry[3])
        queue.handle = None
        if queue.live:
            self._arm(queue)
        else:
            entries.clear()

    def close(self) -> None:
        for queue in self._queues.values():
            if queue.handle is not None:
                queue.handle.cancel()
        self._queues.clear()


class _Transaction:
    """Once only absorbing retransmissions remains (Completed, Accepted, Confirmed: up to 64·T1
    over UDP), a transaction releases its request and whatever of the TU it no longer calls: a
    proxy at 200 calls/s holds ~10,000 lingering transactions, and what they kept alive (~30
    objects per message) was walked by every garbage-collector pass, ~0.2 s per middle-
    generation pass of the IMS core in bench.ims. Slots, not an attribute dictionary: one
    object less per transaction."""

    __slots__ = ("_request", "_timers", "layer", "state", "target")

    def __init__(self, layer: TransactionLayer, request: Request, target: Target) -> None:
        self.layer = layer
        self._request: Request | None = request
        self.target = target
        self.state = State.TRYING
        self._timers: dict[str, _Entry] = {}

    @property
    def request(self) -> Request:
        """The request, until the transaction lingers (see the class docstring)."""
        if self._request is None:
            raise RuntimeError(f"the {self.state} transaction released its request")
        return self._request

    def _start(self, name: str, delay: float, callback: Callable[[], None]) -> None:
        deadlines = self.layer.deadlines
        entry = self._timers.get(name)
        if entry is not None:
            deadlines.stop(entry)
        deadlines.start(delay, callback, self._timers, name)

    def _stop(self, name: str) -> None:
        entry = self._timers.pop(name, None)
        if entry is not None:
            self.layer.deadlines.stop(entry)

    def _terminate(self) -> None:
        self.state = State.TERMINATED
        stop = self.layer.deadlines.stop
        for entry in self._timers.values():
            stop(entry)
        self._timers.clear()
        self._request = None
        self.layer._forget(self)


class ClientTransaction(_Transaction):
    """Sends a request and delivers its responses to ``on_response``; ``final`` resolves with
    the final response (a synthesized 408 on Timer B/F, 503 on a transport failure)."""

    __slots__ = ("_ack", "_final", "_interval", "is_invite", "key", "on_response")

    def __init__(
        self,
        layer: TransactionLayer,
        request: Request,
        target: Target,
        on_response: Callable[[ClientTransaction, Response], None] | None,
    ) -> None:
        super().__init__(layer, request, target)
        self.key = client_key(request)
        self.on_response = on_response
        # Without on_response the caller waits on ``final``; with it, only when asked.
        self._final = None if on_response else layer.loop.create_future()
        self.is_invite = request.method == "INVITE"
        self.state = State.CALLING if self.is_invite else State.TRYING
        self._interval = layer.timers.t1
        self._ack: Request | None = None  # Completed INVITE: the ACK, resent per retransmission

    @property
    def final(self) -> asyncio.Future[Response]:
        """Resolves with the final response. With ``on_response``, ask before it arrives: the
        future is made on first use, since a proxy's transactions report through the callback
        and a future would keep the final response alive while the transaction lingers (see
        _Transaction)."""
        if self._final is None:
            if self.state not in (State.CALLING, State.TRYING, State.PROCEEDING):
                raise RuntimeError(f"the {self.state} transaction's final response is gone")
            self._final = self.layer.loop.create_future()
        return self._final

    def start(self) -> None:
        self.layer.send(self.request, self.target)
        if not self.target.reliable:
            self._start("A", self._interval, self._retransmit)
        self._start("B", self.layer.timers.b, self._timeout)

    def _retransmit(self) -> None:
        if self.state not in (State.CALLING, State.TRYING, State.PROCEEDING):
            return
        self.layer.send(self.request, self.target)
        if self.is_invite:
            self._interval *= 2
        elif self.state == State.PROCEEDING:
            self._interval = self.layer.timers.t2
        else:
            self._interval = min(self._interval * 2, self.layer.timers.t2)
        self._start("A", self._interval, self._retransmit)

    def _timeout(self) -> None:
        if self.state in (State.CALLING, State.TRYING, State.PROCEEDING):
            self._deliver(make_response(self.request, 408))
        self._terminate()

    def transport_error(self) -> None:
        """§8.1.3.1: a transport failure is treated as a 503."""
        if self.state in (State.CALLING, State.TRYING, State.PROCEEDING):
            self._deliver(make_response(self.request, 503))
            self._terminate()

    def _deliver(self, response: Response) -> None:
        final = self._final
        if response.status >= 200 and final is not None and not final.done():
            final.set_result(response)
        if self.on_response:
            try:
                self.on_response(self, response)
            except Exception:  # a TU bug must not kill the transport loop
                log.exception("transaction user failed on %r", response)

    def receive(self, response: Response) -> bool:
        """Take a response of this transaction; False for a 2xx retransmission while Accepted,
        which the TU gets as a stray response (RFC 6026 §8.4 passes them upwards: a proxy
        forwards it statelessly, a UA ACKs again) so that the transaction need not keep the TU's
        callback, and the call it holds, for Timer M."""
        status = response.status
        timers = self.layer.timers
        if self.state in (State.CALLING, State.TRYING, State.PROCEEDING):
            if status < 200:
                if self.state == State.CALLING:
                    self._stop("A")
                elif not self.is_invite and self.state == State.TRYING and "A" in self._timers:
                    self._interval = timers.t2
                self.state = State.PROCEEDING
                self._deliver(response)
                return True
            self._stop("A")
            self._stop("B")
            if self.is_invite and status < 300:
                # RFC 6026 §8.4: Accepted for Timer M; 2xx retransmissions go upwards as strays.
                self.state = State.ACCEPTED
                self._start("M", timers.b, self._terminate)
            elif self.is_invite:
                self.state = State.COMPLETED
                self._ack = self._build_ack(response)
                self.layer.send(self._ack, self.target)
                self._start("D", 0 if self.target.reliable else timers.d, self._terminate)
            else:
                self.state = State.COMPLETED
                self._start("K", 0 if self.target.reliable else timers.t4, self._terminate)
            self._deliver(response)
            self._request = None
            self.on_response = None  # it often holds the TU's call, which holds this
        elif self.state == State.ACCEPTED and 200 <= status < 300:
            return False
        elif self._ack is not None and self.state == State.COMPLETED and status >= 300:
            self.layer.send(self._ack, self.target)
        return True

    def _terminate(self) -> None:
        super()._terminate()
        self.on_response = None  # its closure often holds the TU's call, which holds this
        self._ack = None

    def _build_ack(self, response: Response) -> Request:
        """§17.1.1.3: the ACK for a non-2xx final response belongs to the transaction."""
        request = self.request
        headers = Headers()
        headers.add("Via", request.headers.get("Via") or "")
        for name in ("Route",):
            for value in request.headers.get_all(name):
                headers.add(name, value)
        headers.add("Max-Forwards", "70")
        headers.add("From", request.headers.get("From") or "")
        headers.add("To", response.headers.get("To") or "")
        headers.add("Call-ID", request.call_id)
        headers.add("CSeq", f"{request.cseq[0]} ACK")
        return Request("ACK", request.uri, headers)


class ServerTransaction(_Transaction):
    """Absorbs request retransmissions, sends and retransmits responses. ``respond`` is the TU's
    only entry point."""

    __slots__ = ("_final_wire", "_interval", "is_invite", "key", "last_response")

    def __init__(self, layer: TransactionLayer, request: Request, source: Target) -> None:
        super().__init__(layer, request, source)
        self.key = server_key(request)
        self.is_invite = request.method == "INVITE"
        self.state = State.PROCEEDING if self.is_invite else State.TRYING
        self.last_response: Response | None = None
        self._final_wire: bytes | None = None  # the final response while Completed, as sent
        self._interval = layer.timers.t1

    @property
    def answerable(self) -> bool:
        """No final response sent yet (the TU may still answer, and read ``request``)."""
        return self.state in (State.TRYING, State.PROCEEDING)

    def start(self) -> None:
        if self.is_invite:  # §17.2.1: 100 Trying at once, so the client stops Timer A
            self.respond(make_response(self.request, 100))

    def receive_request(self, request: Request) -> None:
        if request.method == "ACK":
            if self.state == State.COMPLETED:
                self._stop("G")
                self._stop("H")
                self.state = State.CONFIRMED
                self._request = None
                reliable = self.target.reliable
                self._start("I", 0 if reliable else self.layer.timers.t4, self._terminate)
            return
        if self.state == State.COMPLETED:
            self._resend_final()
        elif self.last_response is not None and self.state in (State.PROCEEDING, State.TRYING):
            self.layer.send(self.last_response, self.target)

    def respond(self, response: Response) -> None:
        """Send a response (§17.2.1/§17.2.2 state transitions)."""
        timers = self.layer.timers
        status = response.status
        if self.state in (State.COMPLETED, State.CONFIRMED, State.TERMINATED):
            log.debug("response %s after transaction completed ignored", status)
            return
        if self.state == State.ACCEPTED:
            if 200 <= status < 300:  # RFC 6026 §7.1: 2xx retransmissions by the TU
                self.layer.send(response, self.target)
            return
        self.last_response = response
        self.layer.send(response, self.target)
        if status < 200:
            self.state = State.PROCEEDING
        elif self.is_invite and status < 300:
            self.state = State.ACCEPTED  # absorbs INVITE retransmissions without answering them
            self.last_response = None
            self._request = None
            self._start("L", timers.b, self._terminate)
        elif self.is_invite:
            self.state = State.COMPLETED
            self._keep_final(response)
            if not self.target.reliable:
                self._start("G", self._interval, self._retransmit)
            self._start("H", timers.b, self._ack_timeout)
        else:
            self.state = State.COMPLETED
            self._request = None
            self._keep_final(response)
            self._start("J", 0 if self.target.reliable else timers.b, self._terminate)

    def _keep_final(self, response: Response) -> None:
        """Keep the final response as bytes for retransmissions (Completed lasts 64·T1 over
        UDP): one object instead of the ~20 of a parsed message (see _Transaction)."""
        self.last_response = None
        self._final_wire = response.encode()

    def _resend_final(self) -> None:
        if self._final_wire is not None:
            self.layer.send(parse_message(self._final_wire), self.target)

    def _retransmit(self) -> None:
        if self.state != State.COMPLETED:
            return
        self._resend_final()
        self._interval = min(self._interval * 2, self.layer.timers.t2)
        self._start("G", self._interval, self._retransmit)

    def _ack_timeout(self) -> None:
        log.info("no ACK for %s %s (Timer H)", self.request.method, self.request.call_id)
        self._terminate()


class TransactionLayer:
    """Holds the live transactions and matches incoming messages to them."""

    def __init__(
        self,
        send: Send,
        timers: Timers | None = None,
        loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        self.send = send
        self.timers = timers or Timers()
        self.loop = loop or asyncio.get_running_loop()
        self.deadlines = Deadlines(self.loop)
        self.clients: dict[tuple[str, ...], ClientTransaction] = {}
        self.servers: dict[tuple[str, ...], ServerTransaction] = {}

    def client(
        self,
        request: Request,
        target: Target,
        on_response: Callable[[ClientTransaction, Response], None] | None = None,
    ) -> ClientTransaction:
        tx = ClientTransaction(self, request, target, on_response)
        self.clients[tx.key] = tx
        tx.start()
        return tx

    def server(self, request: Request, source: Target) -> ServerTransaction:
        tx = ServerTransaction(self, request, source)
        self.servers[tx.key] = tx
        tx.start()
        return tx

    def match_server(self, request: Request) -> ServerTransaction | None:
        return self.servers.get(server_key(request))

    def match_invite(self, cancel: Request) -> ServerTransaction | None:
        """The INVITE server transaction a CANCEL refers to (§9.2)."""
        key = server_key(cancel)
        return self.servers.get((*key[:-1], "INVITE"))

    def match_client(self, response: Response) -> ClientTransaction | None:
        return self.clients.get(client_key(response))

    def _forget(self, tx: _Transaction) -> None:
        table: dict = self.clients if isinstance(tx, ClientTransaction) else self.servers
        if table.get(tx.key) is tx:  # type: ignore[attr-defined]
            del table[tx.key]  # type: ignore[attr-defined]

    def close(self) -> None:
        for tx in [*self.clients.values(), *self.servers.values()]:
            tx._terminate()
        self.deadlines.close()
