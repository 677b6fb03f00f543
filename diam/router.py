"""Routes from (application id, command code) to async request handlers.

A handler is ``async def handler(request: Message, peer: Peer) -> Message`` and returns the
answer, usually built with ``request.answer(ResultCode.SUCCESS, ...)``; the node fills in
Origin-Host/Origin-Realm. It may raise :class:`~diam.errors.AnswerError` to answer with a given
Result-Code (and Failed-AVP); any other exception becomes 5012 DIAMETER_UNABLE_TO_COMPLY.

Before a handler runs the node checks, per RFC 6733 §6.1 and §7: the application is served
(else 3007), the command is routed (3001), no top-level or nested AVP with the M bit is unknown to
the dictionary (5001), and the route's required AVPs are present (5005).
"""

from __future__ import annotations

import struct
import types
from collections.abc import Awaitable, Callable, Coroutine, Generator, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from diam.avp import _UNSET, check, walk
from diam.constants import AVP_FLAG_MANDATORY, AVP_FLAG_VENDOR, ResultCode
from diam.dictionary import AvpType, all_defs, avp_def
from diam.errors import AnswerError
from diam.message import HEADER_LENGTH, MAX_GROUP_DEPTH, Avp, DecodeError, Message

if TYPE_CHECKING:
    from diam.peer import Peer

Handler = Callable[[Message, "Peer"], Awaitable[Message]]

# Every session-based request carries these (RFC 6733 §3.3 Session-Id first, §6.3/§6.4 Origin-*).
SESSION_REQUIRED: tuple[str, ...] = ("Session-Id", "Origin-Host", "Origin-Realm")


@dataclass(frozen=True, slots=True)
class Route:
    handler: Handler
    required: tuple[str, ...]
    # (code, vendor) of each required AVP, in the order of ``required``
    required_keys: tuple[tuple[int, int], ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        keys = tuple((d.code, d.vendor) for d in map(avp_def, self.required))
        object.__setattr__(self, "required_keys", keys)


class Router:
    """The (application id, command code) -> handler table, shareable by several nodes."""

    __slots__ = ("_routes",)

    def __init__(self) -> None:
        self._routes: dict[tuple[int, int], Route] = {}

    def add_route(
        self,
        app_id: int,
        command_code: int,
        handler: Handler,
        *,
        required: Iterable[str] = SESSION_REQUIRED,
    ) -> None:
        """Register ``handler``; ``required`` names AVPs whose absence is answered 5005."""
        key = (int(app_id), int(command_code))
        if key in self._routes:
            raise ValueError(
                f"a handler is already routed for application {key[0]} command {key[1]}"
            )
        self._routes[key] = Route(handler, tuple(required))

    def route(
        self, app_id: int, command_code: int, *, required: Iterable[str] = SESSION_REQUIRED
    ) -> Callable[[Handler], Handler]:
        """Decorator form of :meth:`add_route`."""

        def register(handler: Handler) -> Handler:
            self.add_route(app_id, command_code, handler, required=required)
            return handler

        return register

    def get(self, app_id: int, command_code: int) -> Route | None:
        return self._routes.get((app_id, command_code))

    @property
    def application_ids(self) -> frozenset[int]:
        return frozenset(app for app, _ in self._routes)


def check_request(request: Message, route: Route, wire: bytes) -> AnswerError | None:
    """The 5001/5005 checks of a routed request (``wire``: its bytes); ``None`` when it may
    reach the handler. Raises DecodeError (5014) for a malformed AVP inside a Grouped one."""
    if len(wire) > PREWALK_LIMIT or not all_known(request.avps):
        unknown = unknown_mandatory_avp(wire)  # the exact verdict, from the bytes
        if unknown is not None:
            return AnswerError(
                ResultCode.AVP_UNSUPPORTED,
                unknown,
                f"AVP {unknown.code} (vendor {unknown.vendor}) unknown",
            )
    avps = request.avps
    for index, (code, vendor) in enumerate(route.required_keys):
        for avp in avps:
            if avp._code == code and avp._vendor == vendor:
                break
        else:
            name = route.required[index]
            return AnswerError(ResultCode.MISSING_AVP, missing_avp_example(name), f"{name} missing")
    return None


# Requests up to this size have their Grouped AVPs split while checked (the handler reads them
# anyway); larger ones are checked by the byte scan, which builds no objects (bounded memory).
PREWALK_LIMIT = 16 << 10


def all_known(avps: list[Avp]) -> bool:
    """True when no AVP of this decoded tree has the M bit and is unknown to the dictionary,
    and every known Grouped AVP in it splits cleanly (its children are kept: the lazy value the
    handler would build on access, built once). False says nothing more: the caller then asks
    :func:`unknown_mandatory_avp` for the verdict, so which request gets 5001 (and which AVP
    goes in Failed-AVP) or 5014/5004 does not depend on this shortcut."""
    known = _KNOWN.get
    for avp in avps:
        is_grouped = known((avp._vendor << 32) | avp._code)
        if is_grouped is None:
            if avp._flags & AVP_FLAG_MANDATORY:
                return False
        elif is_grouped:
            children = avp._value
            if children is _UNSET:
                depth = avp._depth + 1
                if depth >= MAX_GROUP_DEPTH or avp._buf is None:
                    return False
                try:
                    children = avp._value = walk(avp._buf, avp._start, avp._end, depth)
                except DecodeError:
                    return False
            elif type(children) is not list:
                return False
            if not all_known(children):
                return False
    return True


_AVP_HEAD = struct.Struct(">II")
_U32 = struct.Struct(">I")
# (vendor << 32 | code) -> is Grouped, for every dictionary AVP: one dict probe per AVP scanned.
_KNOWN: dict[int, bool] = {(d.vendor << 32) | d.code: d.type is AvpType.GROUPED for d in all_defs()}


def unknown_mandatory_avp(wire: bytes) -> Avp | None:
    """The first AVP with the M bit that the dictionary does not know, at top level or inside a
    known Grouped AVP (RFC 6733 §4.1: answered 5001 with the AVP in Failed-AVP).

    One pass over the message bytes with an explicit stack, building no AVP objects (about a
    third of the cost of walking decoded groups). Structural damage inside a group is reported
    by the codec's full check, as its DecodeError (5014 with Failed-AVP, or 5004 when nested
    too deep).
    """
    unpack, unpack_u32, known = _AVP_HEAD.unpack_from, _U32.unpack_from, _KNOWN.get
    pos, end = HEADER_LENGTH, len(wire)
    stack: list[tuple[int, int]] = []
    while True:
        while pos < end:
            if end - pos < 8:
                return _damaged(wire)
            code, word = unpack(wire, pos)
            flags = word >> 24
            length = word & 0xFFFFFF
            if flags & AVP_FLAG_VENDOR:
                if length < 12 or end - pos < 12:
                    return _damaged(wire)
                vendor, head = unpack_u32(wire, pos + 8)[0], 12
            elif length < 8:
                return _damaged(wire)
            else:
                vendor, head = 0, 8
            nxt = pos + ((length + 3) & ~3)
            if nxt > end:
                return _damaged(wire)
            is_grouped = known((vendor << 32) | code)
            if is_grouped is None:
                if flags & AVP_FLAG_MANDATORY:
                    return Avp.from_wire(wire[pos : pos + length])
            elif is_grouped:
                if len(stack) >= MAX_GROUP_DEPTH:
                    return _damaged(wire)
                stack.append((nxt, end))
                pos, end = pos + head, pos + length
                continue
            pos = nxt
        if not stack:
            return None
        pos, end = stack.pop()


def _damaged(wire: bytes) -> None:
    check(wire, HEADER_LENGTH, len(wire), 0)  # raises the codec's precise DecodeError
    return None


def missing_avp_example(name: str) -> Avp:
    """An AVP of the missing kind with a zero-filled value of the type's minimum length, for
    Failed-AVP (RFC 6733 §7.5)."""
    d = avp_def(name)
    size = _MIN_DATA_LENGTH.get(d.type, 0)
    flags = (AVP_FLAG_VENDOR if d.vendor else 0) | (AVP_FLAG_MANDATORY if d.mandatory else 0)
    header_length = 12 if d.vendor else 8
    head = struct.pack(">II", d.code, (flags << 24) | (header_length + size))
    if d.vendor:
        head += struct.pack(">I", d.vendor)
    return Avp.from_wire(head + bytes(size))


_MIN_DATA_LENGTH: dict[AvpType, int] = {
    AvpType.INTEGER32: 4,
    AvpType.UNSIGNED32: 4,
    AvpType.ENUMERATED: 4,
    AvpType.FLOAT32: 4,
    AvpType.TIME: 4,
    AvpType.INTEGER64: 8,
    AvpType.UNSIGNED64: 8,
    AvpType.FLOAT64: 8,
    AvpType.ADDRESS: 6,  # address family + IPv4
}


@types.coroutine
def resume(coro: Coroutine[Any, Any, Message], yielded: Any) -> Generator[Any, Any, Message]:
    """Drive a coroutine whose first step already ran and yielded ``yielded`` (an awaited future,
    or ``None`` for a bare yield): pass each value and exception through, as a Task would."""
    while True:
        try:
            sent = yield yielded
        except BaseException as exc:
            try:
                yielded = coro.throw(exc)
            except StopIteration as stop:
                return stop.value
            continue
        try:
            yielded = coro.send(sent)
        except StopIteration as stop:
            return stop.value
