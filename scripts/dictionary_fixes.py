"""Corrections applied by scripts/gen_dictionary.py to python-diameter's AVP table.

Each entry is a fact from the cited standard (clause numbers in comments).
"""

from __future__ import annotations

# (code, vendor) -> the name the standard uses, where python-diameter spells it differently.
NAME_FIXES: dict[tuple[int, int], str] = {
    (824, 10415): "SIP-Method",  # TS 32.299 §7.2.200; python-diameter: "3GPP-SIP-Method"
    (830, 10415): "User-Session-Id",  # TS 32.299 §7.2.227; python-diameter: "User-Session-ID"
}

# Names used by more than one (code, vendor): which one keeps the plain name. The others are
# renamed "<Name>.<vendor>.<code>" so that every name maps to exactly one AVP.
NAME_PREFERENCE: dict[str, tuple[int, int]] = {
    # Ro uses the 3GPP SIP-Method inside Event-Type (TS 32.299 §7.2.61); RFC 4740's is 393/0.
    "SIP-Method": (824, 10415),
    "Filter-Id": (11, 0),  # RFC 7155 §4.4.9
    "MAC-Address": (524, 0),  # RFC 5777 §4.1.7.8
    "Originator": (864, 10415),  # TS 32.299 §7.2.123
    "Application-Specific-Data": (3458, 10415),
}

# Precise RFC 6733 §4.3 derived types.
TYPE_FIXES: dict[str, str] = {
    # RFC 6733 §8.8, §6.3-6.5, §6.7: DiameterIdentity.
    "Origin-Host": "DiameterIdentity",
    "Origin-Realm": "DiameterIdentity",
    "Destination-Host": "DiameterIdentity",
    "Destination-Realm": "DiameterIdentity",
    "Route-Record": "DiameterIdentity",
    "Proxy-Host": "DiameterIdentity",
    "Error-Reporting-Host": "DiameterIdentity",
    # RFC 6733 §6.12: DiameterURI.
    "Redirect-Host": "DiameterURI",
    # IPFilterRule: RFC 4006 §8.36, RFC 7155 §4.4.10.3, TS 29.214 §5.3.8, TS 29.212 §5.3.54/5.3.127.
    "Restriction-Filter-Rule": "IPFilterRule",
    "NAS-Filter-Rule": "IPFilterRule",
    "Flow-Description": "IPFilterRule",
    "TFT-Filter": "IPFilterRule",
    "Packet-Filter-Content": "IPFilterRule",
}

MANDATORY_FIXES: dict[str, bool] = {}

# (code, vendor, name, type, mandatory, reference) for AVPs python-diameter lacks.
EXTRA_AVPS: list[tuple[int, int, str, str, bool, str]] = []
