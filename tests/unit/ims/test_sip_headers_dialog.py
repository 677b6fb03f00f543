"""Header list operations and dialog state (RFC 3261 §7.3, §12)."""

from __future__ import annotations

from ims.sip.dialog import Dialog
from ims.sip.headers import Headers, canonical
from ims.sip.message import Request, Response, make_response, new_branch, parse_message
from ims.sip.uri import parse_uri


def test_header_operations_keep_order_and_split_lists() -> None:
    h = Headers(
        [
            ("v", "SIP/2.0/UDP a;branch=z9hG4bK1, SIP/2.0/UDP b;branch=z9hG4bK2"),
            ("X-A", "1"),
            ("Via", "SIP/2.0/UDP c;branch=z9hG4bK3"),
        ]
    )
    assert canonical("v") == "Via" and canonical("x-unknown") == "x-unknown"
    assert h.pop_first("Via") == "SIP/2.0/UDP a;branch=z9hG4bK1"
    assert h.get_all("VIA") == ["SIP/2.0/UDP b;branch=z9hG4bK2", "SIP/2.0/UDP c;branch=z9hG4bK3"]
    h.prepend("Via", "SIP/2.0/TCP p;branch=z9hG4bK0")
    assert h.get("via") == "SIP/2.0/TCP p;branch=z9hG4bK0"
    h.set("x-a", "2")
    assert [n for n, _ in h] == ["Via", "v", "X-A", "Via"] and h.get("X-A") == "2"
    h.remove("via")
    assert "Via" not in h and len(h) == 1


def test_list_header_first_value_skips_empty_elements_and_lines() -> None:
    h = Headers([("Route", " , "), ("Route", "<sip:p1;lr> ,, <sip:p2;lr>"), ("Supported", "")])
    assert h.get("Route") == "<sip:p1;lr>"
    assert h.get_all("Route") == ["<sip:p1;lr>", "<sip:p2;lr>"]
    assert h.get("Supported") is None and h.get_all("Supported") == []
    assert Headers([("Allow", "INVITE , ACK,BYE")]).get_all("Allow") == ["INVITE", "ACK", "BYE"]


def test_dialog_route_sets_and_in_dialog_requests() -> None:
    invite = parse_message(
        b"INVITE sip:bob@b.example SIP/2.0\r\nVia: SIP/2.0/UDP a.example;branch=z9hG4bKi\r\n"
        b"From: <sip:alice@a.example>;tag=at\r\nTo: <sip:bob@b.example>\r\nCall-ID: c1\r\n"
        b"CSeq: 5 INVITE\r\nContact: <sip:alice@10.0.0.1:5070>\r\n"
        b"Record-Route: <sip:p2.example;lr>, <sip:p1.example;lr>\r\nContent-Length: 0\r\n\r\n"
    )
    assert isinstance(invite, Request)
    uas = Dialog.as_uas(invite, "bt")
    assert uas.id == ("c1", "bt", "at")
    assert uas.route_set == ["<sip:p2.example;lr>", "<sip:p1.example;lr>"]
    assert str(uas.remote_target) == "sip:alice@10.0.0.1:5070"
    assert str(uas.next_hop()) == "sip:p2.example;lr"
    ok = make_response(invite, 200, to_tag="bt")
    ok.headers.add("Contact", "<sip:bob@10.0.0.2:5080>")
    assert isinstance(ok, Response)
    uac = Dialog.as_uac(invite, ok)
    assert uac.id == ("c1", "at", "bt")
    assert uac.route_set == ["<sip:p1.example;lr>", "<sip:p2.example;lr>"]  # reversed
    bye = uac.create_request("BYE", "SIP/2.0/UDP a.example;branch=z9hG4bKb")
    assert bye.uri == parse_uri("sip:bob@10.0.0.2:5080") and bye.cseq == (6, "BYE")
    assert bye.headers.get_all("Route") == uac.route_set and bye.to.tag == "bt"
    ack = uac.create_request("ACK", "SIP/2.0/UDP a.example;branch=z9hG4bKa", cseq=5)
    assert ack.cseq == (5, "ACK") and uac.local_seq == 6
    assert uas.accepts(bye) and not uas.accepts(
        Request("BYE", bye.uri, _with_cseq(bye, "4 BYE"))
    )  # lower CSeq: out of order


def _with_cseq(request: Request, value: str) -> Headers:
    headers = request.headers.copy()
    headers.set("CSeq", value)
    return headers


def test_header_edits_keep_order_spelling_and_compact_forms() -> None:
    h = Headers(
        [("v", "SIP/2.0/UDP a;branch=z9hG4bK1"), ("X-Custom", "1"), ("VIA", "SIP/2.0/UDP b")]
    )
    copy = h.copy()
    h.prepend("Via", "SIP/2.0/UDP p;branch=z9hG4bK0")
    h.set("x-custom", "2")
    h.add("x-CUSTOM", "3")
    h.set("X-Custom", "4")  # every line replaced by one, first position and spelling kept
    assert list(h) == [
        ("Via", "SIP/2.0/UDP p;branch=z9hG4bK0"),
        ("v", "SIP/2.0/UDP a;branch=z9hG4bK1"),
        ("X-Custom", "4"),
        ("VIA", "SIP/2.0/UDP b"),
    ]
    assert h.pop_first("via") == "SIP/2.0/UDP p;branch=z9hG4bK0"
    assert h.get_all("Via") == ["SIP/2.0/UDP a;branch=z9hG4bK1", "SIP/2.0/UDP b"]
    h.remove("V")
    assert "Via" not in h and "x-custom" in h and h.get("Via") is None
    assert copy.get_all("v") == ["SIP/2.0/UDP a;branch=z9hG4bK1", "SIP/2.0/UDP b"]  # untouched
    h.set("Content-Length", "0")
    assert list(h)[-1] == ("Content-Length", "0")


def test_branches_are_unique_and_carry_the_magic_cookie() -> None:
    branches = {new_branch() for _ in range(1000)}
    assert len(branches) == 1000 and all(b.startswith("z9hG4bK") for b in branches)
