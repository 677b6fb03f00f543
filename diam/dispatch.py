"""Serving application requests on one connection: checks, the handler, the answer on the wire.

:class:`Dispatcher` is the part of a :class:`~diam.peer.Peer` that answers routed requests (the
peer state machine stays in ``diam.peer``). Per request, in order (RFC 6733 §6.1, §7): the
application is served (else 3007), the command is routed (3001), no AVP with the M bit is unknown
(5001), the route's required AVPs are present (5005), fewer than ``max_in_flight`` handlers run
(3004); then the handler's first step runs inline. A handler that finishes without suspending is
answered at once, inside the same ``data_received``; one that suspends (awaits I/O) continues in a
task that writes its answer itself when it ends.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Coroutine
from typing import TYPE_CHECKING, Any

from diam.answers import add_error_details, error_answer, result_code, session_id
from diam.constants import ResultCode
from diam.errors import AnswerError
from diam.logfmt import address, log
from diam.message import DecodeError, Message
from diam.router import check_request, resume
from diam.transport import FramedProtocol

if TYPE_CHECKING:
    from diam.node import Node

_ORIGIN_HOST = 264  # RFC 6733 §8: base AVP codes (vendor 0) the answer path looks for
_ORIGIN_REALM = 296


class Dispatcher(FramedProtocol):
    """Answers the application requests of one connection (see the module docstring)."""

    node: Node
    origin_host: str | None

    def __init__(self, write_buffer_high: int) -> None:
        super().__init__(write_buffer_high)
        self._tasks: set[asyncio.Task[None]] = set()
        self._in_flight = 0

    def _dispatch(self, request: Message, wire: bytes) -> None:
        started = time.perf_counter()
        node = self.node
        app = request.application_id
        if app not in node.identity.application_ids:
            self._reply_error(request, ResultCode.APPLICATION_UNSUPPORTED, None, "app not served")
            return
        route = node.router.get(app, request.command_code)
        if route is None:
            self._reply_error(request, ResultCode.COMMAND_UNSUPPORTED, None, "command not routed")
            return
        try:
            error = check_request(request, route, wire)
        except DecodeError as err:  # a malformed nested AVP
            self._reply_error(request, err.result_code, err.failed_avp, err.message, started)
            return
        if error is not None:
            code, failed, text = error.result_code, error.failed_avp, error.error_message
            self._reply_error(request, code, failed, text, started)
            return
        if self._in_flight >= node.max_in_flight:
            self._reply_error(request, ResultCode.TOO_BUSY, None, "too many in flight", started)
            return
        # The handler's first step runs here; no task unless it suspends (the hot path).
        try:
            coro = route.handler(request, self)  # type: ignore[arg-type]
            first = coro.send(None)  # type: ignore[attr-defined]
        except StopIteration as stop:
            self._handler_done(request, stop.value, None, started)
            return
        except Exception as exc:
            self._handler_done(request, None, exc, started)
            return
        self._in_flight += 1
        task = self._loop.create_task(self._finish(coro, first, request, started))  # type: ignore[arg-type]
        self._tasks.add(task)

    async def _finish(
        self, coro: Coroutine[Any, Any, Message], first: Any, request: Message, started: float
    ) -> None:
        """The rest of a handler that suspended, then its answer (one task, no done callback).
        Cancelled when the connection is lost: nothing is answered then."""
        try:
            error: Exception | None = None
            answer: Message | None = None
            try:
                answer = await resume(coro, first)
            except Exception as exc:
                error = exc
            if self._lost:
                return
            try:
                self._handler_done(request, answer, error, started)
            except Exception as bug:  # a bug of ours: lose this connection, never the process
                log(logging.ERROR, "internal_error", peer=self.origin_host, error=repr(bug))
                self.abort(f"internal error: {bug!r}")
        finally:
            self._in_flight -= 1
            self._tasks.discard(asyncio.current_task())  # type: ignore[arg-type]

    def _handler_done(
        self,
        request: Message,
        answer: Message | None,
        exc: BaseException | None,
        started: float,
    ) -> None:
        if exc is not None:
            vendor = 0
            if isinstance(exc, AnswerError):
                code, failed, text = exc.result_code, exc.failed_avp, exc.error_message
                vendor = exc.vendor_id
            elif isinstance(exc, DecodeError):  # a malformed AVP met on lazy access
                code, failed, text = exc.result_code, exc.failed_avp, exc.message
            else:
                code, failed, text = ResultCode.UNABLE_TO_COMPLY, None, "internal error"
                log(
                    logging.ERROR,
                    "handler_failed",
                    peer=self.origin_host,
                    session_id=session_id(request),
                    command=request.command_code,
                    application=request.application_id,
                    error=repr(exc),
                )
            answer = error_answer(request, code, vendor)
            add_error_details(answer, failed, text)
        elif not isinstance(answer, Message) or answer.is_request:
            log(logging.ERROR, "handler_no_answer", peer=self.origin_host, result=repr(answer))
            answer = error_answer(request, ResultCode.UNABLE_TO_COMPLY)
        else:  # the answer travels back with the request's ids (RFC 6733 §3), whoever built it
            answer.hop_by_hop, answer.end_to_end = request.hop_by_hop, request.end_to_end
        self._write_answer(answer, request.application_id, request.command_code, started, request)

    def _reply_error(
        self,
        request: Message,
        code: int,
        failed_avp: object | None,
        text: str | None,
        started: float | None = None,
    ) -> None:
        answer = error_answer(request, code)
        add_error_details(answer, failed_avp, text)
        self._write_answer(answer, request.application_id, request.command_code, started, request)

    def _write_answer(
        self,
        answer: Message,
        app: int,
        cmd: int,
        started: float | None,
        request: Message | None,
    ) -> None:
        self._stamp_origin(answer)
        try:
            data = answer.encode()
        except Exception as exc:  # the handler put a value the codec cannot encode
            if request is None:
                raise
            log(logging.ERROR, "handler_bad_answer", peer=self.origin_host, error=repr(exc))
            answer = error_answer(request, ResultCode.UNABLE_TO_COMPLY)
            self._stamp_origin(answer)
            data = answer.encode()
        self._write(data)
        code = result_code(answer)
        elapsed = time.perf_counter() - started if started is not None else 0.0
        self.node.metrics.observe("in", app, cmd, code, elapsed)
        if code >= 3000 or code < 2000:
            log(
                logging.WARNING,
                "request_failed",
                peer=self.origin_host or address(self.remote_address),
                session_id=session_id(request) if request is not None else None,
                application=app,
                command=cmd,
                result_code=code,
                error_message=answer.get("Error-Message"),
            )

    def _stamp_origin(self, msg: Message) -> None:
        """Add Origin-Host/Origin-Realm when missing (the node's prebuilt, immutable AVPs)."""
        present = {a._code for a in msg.avps if not a._vendor}
        if _ORIGIN_HOST not in present:
            msg.avps.append(self.node.origin_avps[0])
        if _ORIGIN_REALM not in present:
            msg.avps.append(self.node.origin_avps[1])
