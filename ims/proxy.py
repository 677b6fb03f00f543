"""The embedded IMS core's SIP side: registrar plus a stateful, record-routing proxy (RFC 3261
§16) acting as P-CSCF and S-CSCF in one hop, with hooks for the Rx (P-CSCF) and Ro (S-CSCF) roles.

Initial INVITEs need a registered caller (else 403) and a registered callee (else 404). The proxy
asserts the caller's identity (P-Asserted-Identity, RFC 3325), generates the ICID
(P-Charging-Vector, TS 24.229 §7.2A.5), passes P-Access-Network-Info through, record-routes so
in-dialog requests come back, and can release a call itself (BYE both ways).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from ims.call import (
    Call,
    CallHooks,
    CallState,
    EndedCall,
    Party,
    Rejection,
    cancel_for,
    in_dialog_request,
)
from ims.headers3gpp import ChargingVector
from ims.location import Binding, LocationService, normalize_aor
from ims.registrar import Registrar
from ims.sdp import SdpError, parse_sdp
from ims.sip.endpoint import Endpoint, response_target, target_for_uri
from ims.sip.errors import SipError
from ims.sip.message import Request, Response, make_response, new_tag
from ims.sip.transaction import ClientTransaction, ServerTransaction, Target, Timers
from ims.sip.uri import SipUri, parse_name_addr, peek_name_addr

log = logging.getLogger(__name__)
ALLOW = "INVITE, ACK, BYE, CANCEL, OPTIONS, UPDATE, REGISTER, PRACK, INFO, MESSAGE"


@dataclass(frozen=True, slots=True)
class CoreConfig:
    domain: str = "ims.localdomain"
    host: str = "127.0.0.1"
    port: int = 5060
    min_expires: int = 60
    max_expires: int = 7200


class ImsCore:
    """Registrar + proxy bound to one SIP endpoint."""

    def __init__(
        self,
        config: CoreConfig = CoreConfig(),
        hooks: list[CallHooks] | None = None,
        timers: Timers | None = None,
        authorize: Callable[[str], bool] | None = None,
    ) -> None:
        self.config = config
        self.hooks = list(hooks or [])
        self.endpoint = Endpoint(self, timers)
        self.location = LocationService()
        self.registrar: Registrar | None = None
        self._authorize = authorize
        self.calls: dict[str, Call] = {}
        self.ended: list[EndedCall] = []
        self._by_invite: dict[tuple[str, ...], Call] = {}
        self._chains: dict[str, deque[Callable[[], Awaitable[None]]]] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    # --- life cycle ---------------------------------------------------------------------------
    async def start(self) -> None:
        await self.endpoint.start(self.config.host, self.config.port)
        hosts = frozenset(
            {
                self.config.host,
                f"{self.config.host}:{self.endpoint.port}",
                "localhost",
                self.config.domain.lower(),
            }
        )
        self.local_hosts = hosts
        self.registrar = Registrar(
            self.location,
            self.config.domain,
            hosts,
            self._authorize,
            self.config.min_expires,
            self.config.max_expires,
        )

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await self.endpoint.close()

    @property
    def port(self) -> int:
        return self.endpoint.port

    def aor(self, uri: SipUri) -> str:
        return normalize_aor(uri, self.config.domain, self.local_hosts)

    def _is_us(self, uri: SipUri) -> bool:
        host = uri.host.lower()
        port = uri.port or 5060
        return (host in self.local_hosts and port == self.port) or (
            host == self.config.domain.lower() and uri.port is None
        )

    def _spawn(self, coro: Awaitable[None]) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("call task failed", exc_info=task.exception())

    def _serial(self, call_id: str, step: Callable[[], Awaitable[None]]) -> None:
        """Run ``step`` after every earlier step of the same call (responses stay in order while
        a hook awaits Diameter): one task per call drains its queue of steps."""
        queue = self._chains.get(call_id)
        if queue is not None:
            queue.append(step)
            return
        queue = self._chains[call_id] = deque((step,))
        self._spawn(self._drain(call_id, queue))

    async def _drain(self, call_id: str, queue: deque[Callable[[], Awaitable[None]]]) -> None:
        try:
            while queue:
                try:
                    await queue[0]()
                except Exception:
                    log.exception("call step failed for %s", call_id)
                queue.popleft()  # only now: a step arriving meanwhile queues behind this one
        finally:
            if self._chains.get(call_id) is queue:
                del self._chains[call_id]

    # --- requests -----------------------------------------------------------------------------
    def on_request(self, request: Request, tx: ServerTransaction | None, source: Target) -> None:
        if request.method == "ACK":
            self._pop_own_routes(request)
            self._forward_stateless(request)
            return
        assert tx is not None
        max_forwards = request.headers.get("Max-Forwards")
        if max_forwards is not None and int(max_forwards) == 0:
            tx.respond(make_response(request, 483, to_tag=new_tag()))  # §16.3 step 3
            return
        self._pop_own_routes(request)
        unsupported = request.headers.get_all("Proxy-Require")
        if unsupported and request.method not in ("CANCEL", "ACK"):
            response = make_response(request, 420, to_tag=new_tag())  # §16.3 step 5
            response.headers.add("Unsupported", ", ".join(unsupported))
            tx.respond(response)
            return
        if request.method == "CANCEL":
            self._cancel(request, tx)
        elif request.method == "REGISTER" and (
            self._is_us(request.uri) or request.uri.user is None
        ):
            assert self.registrar is not None
            response = self.registrar.handle(request, source)
            tx.respond(response)
            if response.status == 200 and self.hooks:
                aor = self.registrar.aor_of(request)
                registered = bool(self.location.bindings(aor))
                for hook in self.hooks:
                    self._spawn(hook.on_registration(aor, source, registered))
        elif request.to_tag is not None:
            self._in_dialog(request, tx, source)
        elif request.method == "INVITE":
            self._spawn(self._initial_invite(request, tx, source))
        elif request.method == "OPTIONS" and request.uri.user is None:
            response = make_response(request, 200, to_tag=new_tag())
            response.headers.add("Allow", ALLOW)
            tx.respond(response)
        else:
            self._out_of_dialog(request, tx)

    def on_stray_response(self, response: Response, source: Target) -> None:
        """A 2xx retransmission of a live call's INVITE goes the way of its first 2xx (in the
        call's order, after any hook still deciding on it); other responses without a
        transaction are forwarded statelessly when their top Via is ours (§16.7)."""
        call = self.calls.get(response.call_id)
        if call is not None and response.cseq == call.invite.cseq and response.status >= 200:
            self._on_invite_response(call, response)
            return
        vias = response.vias
        if len(vias) < 2 or vias[0].host != self.config.host or vias[0].port != self.port:
            return
        response.headers.pop_first("Via")
        self.endpoint.send(response, response_target(vias[1]))

    def _pop_own_routes(self, request: Request) -> None:
        """§16.4: remove the Route entries that name us (loose routing)."""
        while (route := request.headers.get("Route")) is not None:
            try:
                uri = peek_name_addr(route).uri
            except SipError:
                return
            if not self._is_us(uri):
                return
            request.headers.pop_first("Route")

    def _next_hop(self, request: Request, transport: str = "UDP") -> Target:
        route = request.headers.get("Route")
        uri = peek_name_addr(route).uri if route else request.uri
        return target_for_uri(uri, transport)

    def _prepare(self, request: Request, uri: SipUri, target: Target) -> Request:
        """Copy for forwarding: new Request-URI, Max-Forwards − 1, our Via on top (§16.6)."""
        fwd = Request(request.method, uri, request.headers.copy(), request.body)
        max_forwards = request.headers.get("Max-Forwards")
        fwd.headers.set("Max-Forwards", str(int(max_forwards) - 1 if max_forwards else 70))
        fwd.headers.prepend("Via", self.endpoint.via(target.transport))
        return fwd

    @staticmethod
    def _forward_response(tx: ServerTransaction, response: Response) -> None:
        """§16.7: strip our Via and pass the response upstream (100 Trying stays here)."""
        if response.status == 100:
            return
        response.headers.pop_first("Via")
        tx.respond(response)

    def _relay(self, tx: ServerTransaction) -> Callable[[ClientTransaction, Response], None]:
        return lambda _client, response: self._forward_response(tx, response)

    def _forward_stateless(self, request: Request) -> None:
        """ACK for a 2xx (§16.11): to the next Route, else the Request-URI; a Request-URI in our
        domain is looked up in the location service (no binding: dropped)."""
        if request.headers.get("Route") is None and (
            self._is_us(request.uri) or request.uri.host.lower() == self.config.domain
        ):
            binding = self._lookup(request.uri)
            if binding is None:
                return
            target = self._binding_target(binding)
        else:
            target = self._next_hop(request)
        fwd = Request(request.method, request.uri, request.headers.copy(), request.body)
        fwd.headers.prepend("Via", self.endpoint.via(target.transport))
        self.endpoint.send(fwd, target)

    def _out_of_dialog(self, request: Request, tx: ServerTransaction) -> None:
        binding = self._lookup(request.uri)
        if binding is None:
            tx.respond(make_response(request, 404, to_tag=new_tag()))
            return
        target = self._binding_target(binding)
        self.endpoint.request(
            self._prepare(request, binding.contact, target), target, self._relay(tx)
        )

    def _lookup(self, uri: SipUri) -> Binding | None:
        bindings = self.location.bindings(self.aor(uri))
        return bindings[0] if bindings else None

    @staticmethod
    def _binding_target(binding: Binding) -> Target:
        default = binding.source.transport
        return target_for_uri(binding.contact, default)

    # --- INVITE -------------------------------------------------------------------------------
    async def _initial_invite(
        self, request: Request, tx: ServerTransaction, source: Target
    ) -> None:
        caller_aor = self.aor(peek_name_addr(request.headers.get("From") or "").uri)
        if not self.location.bindings(caller_aor):
            self._reject(tx, Rejection(403, None, "caller not registered"))
            return
        callee = self._lookup(request.uri)
        if callee is None:
            self._reject(tx, Rejection(404, None, "callee not registered"))
            return
        contact_value = request.headers.get("Contact")
        caller_contact = parse_name_addr(contact_value).uri if contact_value else None
        callee_target = self._binding_target(callee)
        call = Call(
            call_id=request.call_id,
            icid=ChargingVector.generate(self.config.host, self.config.domain).icid,
            caller=Party(
                caller_aor,
                request.headers.get("From") or "",
                caller_contact,
                target_for_uri(caller_contact, source.transport) if caller_contact else source,
                source,
                request.cseq[0],
            ),
            callee=Party(
                callee.aor, request.headers.get("To") or "", callee.contact, callee_target
            ),
            invite=request,
            server_tx=tx,
            access_network_info=request.headers.get("P-Access-Network-Info"),
        )
        if request.body and request.content_type == "application/sdp":
            try:
                call.offer = parse_sdp(request.body)
            except SdpError as exc:
                self._reject(tx, Rejection(488, None, f"malformed SDP offer: {exc}"))
                return
        self.calls[call.call_id] = call
        self._by_invite[tx.key] = call
        for hook in self.hooks:
            rejection = await hook.on_invite(call)
            if rejection is not None:
                self._reject(tx, rejection)
                await self._end(call, f"rejected {rejection.status}")
                return
        if call.cancelled:  # CANCEL (or a release) while a hook worked: the 487 is sent
            await self._end(call, "cancelled")
            return
        fwd = self._prepare(request, callee.contact, callee_target)
        self._record_route(fwd, source.transport, callee_target.transport)
        self._identity_headers(fwd, caller_aor)
        call.invite = fwd
        call.client_tx = self.endpoint.request(
            fwd,
            callee_target,
            lambda _c, r: self._on_invite_response(call, r),
        )

    def _on_invite_response(self, call: Call, response: Response) -> None:
        """A 100 from downstream ends at this hop (§16.7 step 3): no task for it."""
        if response.status != 100:
            self._serial(call.call_id, lambda: self._invite_response(call, response))

    def _record_route(self, fwd: Request, inbound: str, outbound: str) -> None:
        """One Record-Route, or two when the transports differ (RFC 5658 double routing)."""

        def rr(transport: str) -> str:
            suffix = ";transport=tcp" if transport == "TCP" else ""
            return f"<sip:{self.config.host}:{self.port}{suffix};lr>"

        if inbound != outbound:
            fwd.headers.prepend("Record-Route", rr(inbound))
        fwd.headers.prepend("Record-Route", rr(outbound))

    def _identity_headers(self, fwd: Request, caller_aor: str) -> None:
        """RFC 3325 §9.1: assert the registered identity; TS 24.229 §5.2.6.3.3: the P-CSCF does
        not pass P-Charging-Vector / P-Charging-Function-Addresses to a UE (the ICID stays in the
        core and reaches Rx/Ro)."""
        preferred = fwd.headers.get("P-Preferred-Identity")
        fwd.headers.remove("P-Preferred-Identity")
        asserted = f"<{caller_aor}>"
        if preferred and self.aor(peek_name_addr(preferred).uri) == caller_aor:
            asserted = preferred
        fwd.headers.set("P-Asserted-Identity", asserted)
        user = caller_aor.split(":", 1)[1].split("@", 1)[0]
        if user.lstrip("+").isdigit():
            fwd.headers.add("P-Asserted-Identity", f"<tel:{user}>")
        fwd.headers.remove("P-Charging-Vector")
        fwd.headers.remove("P-Charging-Function-Addresses")

    def _reject(self, tx: ServerTransaction, rejection: Rejection) -> None:
        if not tx.answerable:  # answered meanwhile (a 2xx crossing a release, say)
            return
        response = make_response(tx.request, rejection.status, to_tag=new_tag())
        if rejection.reason:
            response.headers.add("Reason", rejection.reason)
        if rejection.warning:
            text = rejection.warning.replace('"', "'")
            response.headers.add("Warning", f'399 OpenPCC "{text}"')
        tx.respond(response)

    async def _invite_response(self, call: Call, response: Response) -> None:
        status = response.status
        if call.state == CallState.ENDED and status < 300:
            if status >= 200:
                self._ack_and_bye(call, response)
            return
        if status < 300 and response.to_tag:
            call.callee.header = response.headers.get("To") or call.callee.header
            contact = response.headers.get("Contact")
            if contact:
                call.callee.contact = parse_name_addr(contact).uri
                call.callee.target = target_for_uri(
                    call.callee.contact,
                    call.client_tx.target.transport if call.client_tx else "UDP",
                )
        if (
            status < 300
            and response.body
            and response.content_type == "application/sdp"
            and response.body != call.answer_raw
            and call.offer is not None
        ):
            try:
                call.answer = parse_sdp(response.body)
            except SdpError as exc:
                await self._fail_answer(call, response, Rejection(488, None, f"bad answer: {exc}"))
                return
            call.answer_raw = response.body
            for hook in self.hooks:
                rejection = await hook.on_answer(call, response)
                if rejection is not None:
                    await self._fail_answer(call, response, rejection)
                    return
        if status < 200:
            if response.to_tag and call.state == CallState.TRYING:
                call.state = CallState.EARLY
            self._forward_response(call.server_tx, response)
            return
        self._forward_response(call.server_tx, response)
        if status < 300:
            if call.state != CallState.CONFIRMED:
                call.state = CallState.CONFIRMED
                call.answered_at = time.monotonic()
                for hook in self.hooks:
                    await hook.on_confirmed(call)
        else:
            await self._end(call, "cancelled" if call.cancelled else f"rejected {status}")

    async def _fail_answer(self, call: Call, response: Response, rejection: Rejection) -> None:
        """An answer the policy refused: reject upstream; downstream gets CANCEL (early) or
        ACK+BYE (after its 2xx)."""
        self._reject(call.server_tx, rejection)
        if response.status >= 200:
            self._ack_and_bye(call, response)
        elif call.client_tx is not None:
            self._send_cancel(call)
        await self._end(call, f"rejected {rejection.status}")

    def _ack_and_bye(self, call: Call, response: Response) -> None:
        call.callee.header = response.headers.get("To") or call.callee.header
        contact = response.headers.get("Contact")
        if contact:
            call.callee.contact = parse_name_addr(contact).uri
        if call.callee.contact is None or call.callee.target is None:
            return
        target = target_for_uri(call.callee.contact, call.callee.target.transport)
        ack = in_dialog_request("ACK", call, True, self.endpoint.via(target.transport))
        ack.headers.set("CSeq", f"{call.invite.cseq[0]} ACK")
        call.caller.cseq -= 1  # the ACK does not consume a CSeq number
        self.endpoint.send(ack, target)
        bye = in_dialog_request(
            "BYE",
            call,
            True,
            self.endpoint.via(target.transport),
            'SIP;cause=488;text="media not authorized"',
        )
        self.endpoint.request(bye, target)

    # --- CANCEL, in-dialog, release -----------------------------------------------------------
    def _cancel(self, request: Request, tx: ServerTransaction) -> None:
        invite_tx = self.endpoint.layer.match_invite(request)
        if invite_tx is None:
            tx.respond(make_response(request, 481, to_tag=new_tag()))
            return
        tx.respond(make_response(request, 200, to_tag=new_tag()))
        call = self._by_invite.get(invite_tx.key)
        if call is None or call.state in (CallState.CONFIRMED, CallState.ENDED):
            return
        call.cancelled = True
        if call.client_tx is None:  # not forwarded yet: _initial_invite ends it after its hooks
            self._reject(invite_tx, Rejection(487))
        else:
            self._send_cancel(call)

    def _send_cancel(self, call: Call) -> None:
        if call.client_tx is not None and call.client_tx.state.value in ("Calling", "Proceeding"):
            self.endpoint.request(cancel_for(call.invite), call.client_tx.target)

    def _in_dialog(self, request: Request, tx: ServerTransaction, source: Target) -> None:
        call = self.calls.get(request.call_id)
        if call is not None and request.method != "ACK":
            from_caller = request.from_tag == peek_name_addr(call.caller.header).tag
            party = call.caller if from_caller else call.callee
            party.cseq = max(party.cseq, request.cseq[0])
            if request.body and request.content_type == "application/sdp":
                try:
                    call.offer = parse_sdp(request.body)
                except SdpError as exc:
                    self._reject(tx, Rejection(488, None, f"malformed SDP offer: {exc}"))
                    return
                call.offerer = "caller" if from_caller else "callee"
                call.answer_raw = None
        elif call is None and request.method == "BYE":
            tx.respond(make_response(request, 481))
            return
        target = self._next_hop(request, source.transport)
        fwd = self._prepare(request, request.uri, target)
        if call is not None and request.method in ("INVITE", "UPDATE"):
            self.endpoint.request(
                fwd,
                target,
                lambda _c, r: self._serial(
                    call.call_id, lambda: self._reinvite_response(call, tx, r)
                ),
            )
        else:
            self.endpoint.request(fwd, target, self._relay(tx))
        if call is not None and request.method == "BYE":
            self._spawn(self._end(call, "BYE from caller" if from_caller else "BYE from callee"))

    async def _reinvite_response(
        self, call: Call, tx: ServerTransaction, response: Response
    ) -> None:
        if 200 <= response.status < 300 and response.body and call.offer is not None:
            try:
                call.answer = parse_sdp(response.body)
            except SdpError:
                call.answer = None
            else:
                call.answer_raw = response.body
                for hook in self.hooks:
                    rejection = await hook.on_answer(call, response)
                    if rejection is not None:
                        log.info("re-INVITE answer refused on %s: %s", call.call_id, rejection)
                        self._forward_response(tx, response)
                        self.release(call, f'SIP;cause={rejection.status};text="media refused"')
                        return
        self._forward_response(tx, response)

    def release(self, call: Call, reason: str, cause: str = "network release") -> None:
        """Network-initiated release: BYE to both parties of a confirmed call, or CANCEL
        downstream and a 480 upstream for one still ringing."""
        if call.state == CallState.ENDED:
            return
        if call.state == CallState.CONFIRMED:
            for towards_callee, party in ((True, call.callee), (False, call.caller)):
                if party.contact is None:
                    continue
                transport = party.target.transport if party.target else "UDP"
                target = target_for_uri(party.contact, transport)
                bye = in_dialog_request(
                    "BYE", call, towards_callee, self.endpoint.via(target.transport), reason
                )
                self.endpoint.request(bye, target)
        else:
            call.cancelled = True
            self._send_cancel(call)
            self._reject(call.server_tx, Rejection(480, reason))
        self._spawn(self._end(call, cause))

    async def _end(self, call: Call, cause: str) -> None:
        if call.state == CallState.ENDED:
            return
        call.state = CallState.ENDED
        call.end_cause = cause
        call.ended_at = time.monotonic()
        self.calls.pop(call.call_id, None)
        self._by_invite.pop(call.server_tx.key, None)
        self.ended.append(
            EndedCall(
                call.call_id, call.icid, call.caller.aor, call.callee.aor, cause, call.duration
            )
        )
        del self.ended[:-1000]
        for hook in self.hooks:
            try:
                await hook.on_end(call, cause)
            except Exception:
                log.exception("on_end hook failed for %s", call.call_id)
        # Hooks' pending work may hold the ended call a while: drop its bulk.
        call.offer = call.answer = call.answer_raw = None
        call.client_tx = None
        call.data.clear()
