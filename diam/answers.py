"""Error answers (RFC 6733 §7) and safe reads of answer/request fields for logs and metrics."""

from __future__ import annotations

from diam.constants import FLAG_ERROR, FLAG_PROXIABLE
from diam.message import Avp, DecodeError, Header, Message, result_code_avp


def error_answer(request: Message, code: int, vendor_id: int = 0) -> Message:
    """An answer carrying ``code``, with the request's Session-Id copied byte for byte (it may be
    the malformed AVP being reported); E bit for 3xxx (RFC 6733 §7.1.3). With ``vendor_id`` the
    code goes in Experimental-Result (RFC 6733 §7.7)."""
    flags = request.flags & FLAG_PROXIABLE
    if 3000 <= code < 4000 and not vendor_id:
        flags |= FLAG_ERROR
    answer = Message(
        request.command_code,
        request.application_id,
        flags,
        request.hop_by_hop,
        request.end_to_end,
    )
    session = request.first("Session-Id")
    if session is not None:
        answer.avps.append(session.clone())
    if vendor_id:
        return answer.add(
            Avp.new(
                "Experimental-Result",
                [("Vendor-Id", vendor_id), ("Experimental-Result-Code", code)],
            )
        )
    return answer.add(result_code_avp(code))


def add_error_details(answer: Message, failed_avp: object | None, text: str | None) -> None:
    """Error-Message and Failed-AVP (RFC 6733 §7.2, §7.5) on an error answer."""
    if text:
        answer.add(Avp.new("Error-Message", text))
    if failed_avp is not None:
        inner = failed_avp if isinstance(failed_avp, Avp) else Avp.from_wire(failed_avp)
        answer.add(Avp.new("Failed-AVP", [inner]))


def result_code(answer: Message) -> int:
    """Result-Code, else Experimental-Result-Code, else 0."""
    try:
        code = answer.get("Result-Code")
        if code is None:
            experimental = answer.first("Experimental-Result")
            code = experimental.get("Experimental-Result-Code", 0) if experimental else 0
        return int(code)
    except DecodeError:
        return 0


def session_id(msg: Message) -> str | None:
    try:
        return msg.get("Session-Id")
    except DecodeError:
        return "<malformed>"


def answer_from_header(header: Header, code: int) -> Message:
    """An error answer to an undecodable request: only its header can be trusted."""
    flags = header.flags & FLAG_PROXIABLE
    if 3000 <= code < 4000:
        flags |= FLAG_ERROR
    answer = Message(
        header.command_code, header.application_id, flags, header.hop_by_hop, header.end_to_end
    )
    return answer.add(Avp.new("Result-Code", code))
