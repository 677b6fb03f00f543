"""SIP parser/serializer: compact forms, lists, case, framing, malformed input → SipError."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ims.sip.errors import SipError
from ims.sip.framing import StreamFramer
from ims.sip.headers import split_list
from ims.sip.message import Request, Response, make_response, parse_message
from ims.sip.transport import error_response
from ims.sip.uri import parse_name_addr, parse_uri

INVITE = (
    b"INVITE sip:bob@ims.example;transport=udp SIP/2.0\r\n"
    b"v: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK776asdhds;rport\r\n"
    b"VIA: SIP/2.0/TCP [::1]:5080;branch=z9hG4bKother, SIP/2.0/UDP 10.0.0.1;branch=z9hG4bKx\r\n"
    b"Max-Forwards: 70\r\n"
    b'f: "Alice, the caller" <sip:alice@ims.example>;tag=1928301774\r\n'
    b"t: Bob <sip:bob@ims.example>\r\n"
    b"i: a84b4c76e66710@pc33.example\r\n"
    b"CSeq: 314159 INVITE\r\n"
    b'm: <sip:alice@127.0.0.1:5070>;expires=60, "x,y" <sip:alice@127.0.0.1:5071>\r\n'
    b"X-Custom-Header: keep me\r\n"
    b"Route: <sip:p1.example;lr>,<sip:p2.example;lr>\r\n"
    b"Subject: lunch,\r\n  tomorrow\r\n"
    b"c: application/sdp\r\n"
    b"l: 5\r\n\r\nv=0\r\nTRAILING"
)


def test_parse_compact_forms_lists_and_case() -> None:
    msg = parse_message(INVITE)
    assert isinstance(msg, Request)
    assert msg.method == "INVITE" and msg.uri.user == "bob" and msg.uri.params["transport"] == "udp"
    assert [v.branch for v in msg.vias] == ["z9hG4bK776asdhds", "z9hG4bKother", "z9hG4bKx"]
    assert msg.vias[1].host == "[::1]" and msg.vias[1].port == 5080
    assert msg.from_.display == '"Alice, the caller"' and msg.from_.tag == "1928301774"
    assert msg.to.tag is None
    assert msg.call_id == "a84b4c76e66710@pc33.example"
    assert msg.cseq == (314159, "INVITE")
    assert msg.headers.get_all("contact") == [
        "<sip:alice@127.0.0.1:5070>;expires=60",
        '"x,y" <sip:alice@127.0.0.1:5071>',
    ]
    assert msg.headers.get_all("ROUTE") == ["<sip:p1.example;lr>", "<sip:p2.example;lr>"]
    assert msg.headers.get("Subject") == "lunch, tomorrow"  # folded line, not a list header
    assert msg.body == b"v=0\r\n"  # datagram bytes beyond Content-Length are dropped
    assert msg.content_type == "application/sdp"


def test_serialize_keeps_unknown_headers_and_order() -> None:
    msg = parse_message(INVITE)
    wire = msg.encode().decode()
    lines = wire.split("\r\n")
    assert lines[0] == "INVITE sip:bob@ims.example;transport=udp SIP/2.0"
    names = [line.split(":")[0] for line in lines[1:] if ":" in line and line[0] != " "]
    assert names[:3] == ["Via", "VIA", "Max-Forwards"]
    assert names.index("X-Custom-Header") == names.index("Contact") + 1
    assert "X-Custom-Header: keep me" in lines
    assert wire.endswith("Content-Length: 5\r\n\r\nv=0\r\n")
    again = parse_message(wire.encode())
    assert again.encode() == wire.encode()


def test_response_and_make_response() -> None:
    req = parse_message(INVITE)
    assert isinstance(req, Request)
    resp = make_response(req, 180, to_tag="abc")
    assert resp.to.tag == "abc" and resp.headers.get_all("Via") == req.headers.get_all("Via")
    parsed = parse_message(resp.encode())
    assert isinstance(parsed, Response) and parsed.status == 180 and parsed.reason == "Ringing"
    assert make_response(req, 100, to_tag="abc").to.tag is None


@pytest.mark.parametrize(
    ("raw", "fragment"),
    [
        (INVITE.replace(b"CSeq: 314159 INVITE", b"CSeq: 314159 BYE"), "does not match"),
        (INVITE.replace(b"CSeq: 314159 INVITE", b"CSeq: abc INVITE"), "malformed CSeq"),
        (INVITE.replace(b"i: a84b4c76e66710@pc33.example\r\n", b""), "Call-ID"),
        (INVITE.replace(b"l: 5", b"l: 500"), "exceeds"),
        (INVITE.replace(b"l: 5", b"l: -1"), "Content-Length"),
        (INVITE.replace(b"t: Bob <sip:bob@ims.example>", b"t: Bob <sip:bob@ims.example"), "'>'"),
        (INVITE.replace(b"SIP/2.0/UDP 127.0.0.1:5070", b"SIP/3.0/UDP 127.0.0.1:5070"), "Via"),
        (INVITE.replace(b"Max-Forwards: 70", b"Max-Forwards: many"), "Max-Forwards"),
        (INVITE.replace(b"X-Custom-Header: keep me", b"X Custom: keep"), "header line"),
        (INVITE.replace(b"127.0.0.1:5070;branch", b"127.0.0.1:99999;branch"), "port"),
    ],
)
def test_malformed_requests_raise_sip_error_with_headers(raw: bytes, fragment: str) -> None:
    with pytest.raises(SipError) as info:
        parse_message(raw)
    assert fragment in info.value.reason
    if b"i: a84b" in raw and b"SIP/3.0" not in raw:
        response = error_response(info.value)
        assert response is not None and response.status == 400
        assert response.headers.get("Warning", "").startswith('399 OpenPCC "')


def test_version_and_scheme_status() -> None:
    with pytest.raises(SipError) as info:
        parse_message(INVITE.replace(b"SIP/2.0\r\n", b"SIP/3.0\r\n", 1))
    assert info.value.status == 505
    with pytest.raises(SipError) as info:
        parse_message(INVITE.replace(b"sip:bob@ims.example;transport=udp", b"http://x", 1))
    assert info.value.status == 416


def test_uris_and_name_addr() -> None:
    uri = parse_uri("sips:alice:secret@[2001:db8::1]:5061;transport=tcp;lr?subject=x")
    assert (uri.scheme, uri.user, uri.password, uri.host, uri.port) == (
        "sips",
        "alice",
        "secret",
        "[2001:db8::1]",
        5061,
    )
    assert uri.params == {"transport": "tcp", "lr": None} and uri.headers == "subject=x"
    assert str(uri) == "sips:alice:secret@[2001:db8::1]:5061;transport=tcp;lr?subject=x"
    tel = parse_uri("tel:+4915112345678;phone-context=ims.example")
    assert tel.user == "+4915112345678" and tel.aor == "tel:+4915112345678"
    # addr-spec form: ;tag belongs to the header, not the URI (RFC 3261 §20.10)
    na = parse_name_addr("sip:bob@h.example;tag=77")
    assert na.tag == "77" and na.uri.params == {}
    assert (
        str(parse_name_addr("Bob <sip:bob@H.example:5060;lr>;tag=1"))
        == "Bob <sip:bob@H.example:5060;lr>;tag=1"
    )
    assert parse_uri("sip:Bob@H.Example:5070").aor == "sip:Bob@h.example"
    for bad in ("sip:", "sip:bob@", "sip:bob@ho st", "sip:bob@[::1", "tel:xyz", "sip:a@h:0"):
        with pytest.raises(SipError):
            parse_uri(bad)


def test_split_list_respects_quotes_and_angles() -> None:
    assert split_list('"a,b" <sip:x@y;p=1,2>, <sip:z@w>') == ['"a,b" <sip:x@y;p=1,2>', "<sip:z@w>"]
    with pytest.raises(SipError):
        split_list('"unterminated, x')


def test_stream_framer_reassembles_split_and_pipelined_messages() -> None:
    framer = StreamFramer()
    wire = INVITE.replace(b"TRAILING", b"")
    data = b"\r\n\r\n" + wire + wire  # keep-alive CRLFs then two pipelined messages
    frames: list[bytes] = []
    for i in range(0, len(data), 7):
        frames += framer.feed(data[i : i + 7])
    assert frames == [wire, wire] and framer.pending == 0
    assert parse_message(frames[1], datagram=False).body == b"v=0\r\n"
    with pytest.raises(SipError, match="mandatory"):
        StreamFramer().feed(wire.replace(b"l: 5\r\n", b""))
    with pytest.raises(SipError, match="mandatory over stream"):
        parse_message(wire.replace(b"l: 5\r\n", b""), datagram=False)


@settings(max_examples=150, deadline=None, derandomize=True)
@given(st.binary(max_size=400))
def test_fuzz_random_bytes_only_sip_error(data: bytes) -> None:
    try:
        msg = parse_message(data)
    except SipError as exc:  # the only error allowed out, and it names a 4xx/5xx to answer
        assert 400 <= exc.status < 600 and exc.reason
    else:
        assert parse_message(msg.encode()).encode() == msg.encode()


_lines = INVITE.split(b"\r\n")


@settings(max_examples=150, deadline=None, derandomize=True)
@given(
    st.lists(st.sampled_from(_lines), max_size=14),
    st.binary(max_size=12),
    st.integers(min_value=0, max_value=len(INVITE)),
)
def test_fuzz_mutated_messages_only_sip_error(lines: list[bytes], junk: bytes, cut: int) -> None:
    for data in (b"\r\n".join(lines) + b"\r\n\r\n", INVITE[:cut] + junk + INVITE[cut:]):
        try:
            msg = parse_message(data)
            parse_message(msg.encode())  # what we parsed, we can serialize and re-parse
        except SipError as exc:
            response = error_response(exc)
            assert response is None or 400 <= response.status < 600
        framer = StreamFramer()
        try:
            for frame in framer.feed(data):
                parse_message(frame, datagram=False)
        except SipError:
            pass
