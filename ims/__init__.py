"""Minimal IMS core: SIP P-CSCF/S-CSCF, SDP, and a PCEF (PGW) simulator."""
