"""Minimal IMS core: SIP P-CSCF/S-CSCF, SDP, and a PCEF (PGW) simulator.

sip/        RFC 3261 stack: message parser/serializer, URIs, TCP framing, transactions (§17),
            UDP/TCP transport, endpoint, dialogs
sdp.py      RFC 4566 parse/serialize, RFC 3264 answers
media.py    offer + answer → Rx Media-Component-Description inputs (TS 29.213 §6.2)
location.py, registrar.py   REGISTER and bindings (RFC 3261 §10)
call.py, proxy.py           the record-routing stateful proxy and its call hooks
pcscf.py    Rx client (P-CSCF), scscf.py  Ro client (S-CSCF charging trigger)
pcef.py     PGW simulator on Gx; ua.py  a small UE; service.py  the assembled core
ladder.py   message ladder for ``openpcc demo``
"""
