"""Normalised subscriber identities: how Subscription-Id values map onto stored identities.

RFC 4006 §8.46-8.48 Subscription-Id-Type: END_USER_E164 0, END_USER_IMSI 1, END_USER_SIP_URI 2,
END_USER_NAI 3, END_USER_PRIVATE 4. Peers differ in spelling (Kamailio strips ``tel:`` and ``+``
on Ro but keeps ``tel:`` on Rx), so every form of an E.164 number resolves to the same digits.
"""

from __future__ import annotations

from enum import IntEnum


class SubscriptionIdType(IntEnum):
    END_USER_E164 = 0
    END_USER_IMSI = 1
    END_USER_SIP_URI = 2
    END_USER_NAI = 3
    END_USER_PRIVATE = 4


IMSI = "imsi"
MSISDN = "msisdn"
SIP_URI = "sip_uri"
NAI = "nai"


def e164_digits(value: str) -> str:
    """``tel:+49-170-123;phone-context=x`` / ``+49170123`` / ``49170123`` → ``49170123``."""
    text = value.strip()
    if text.lower().startswith("tel:"):
        text = text[4:]
    text = text.split(";", 1)[0]
    digits = "".join(ch for ch in text if ch.isdigit())
    if not digits:
        raise ValueError(f"not an E.164 number: {value!r}")
    return digits


def sip_uri(value: str) -> str:
    """Case-insensitive scheme and host, parameters dropped: ``SIP:Alice@IMS.Example;x`` →
    ``sip:Alice@ims.example`` (the user part stays case-sensitive, RFC 3261 §19.1.4)."""
    text = value.strip().strip("<>").split(";", 1)[0]
    scheme, sep, rest = text.partition(":")
    if not sep:
        return text
    user, at, host = rest.rpartition("@")
    return f"{scheme.lower()}:{user}{at}{host.lower()}"


def normalise(kind: str, value: str) -> str:
    """The stored form of an identity of ``kind``."""
    if kind == MSISDN:
        return e164_digits(value)
    if kind == SIP_URI:
        return sip_uri(value)
    if kind == NAI:
        return value.strip().lower()
    if kind == IMSI:
        digits = value.strip()
        if not digits.isdigit() or not 6 <= len(digits) <= 15:
            raise ValueError(f"not an IMSI: {value!r}")
        return digits
    raise ValueError(f"unknown identity kind {kind!r}")


def lookup_keys(id_type: int, data: str) -> list[tuple[str, str]]:
    """The (kind, normalised value) pairs a Subscription-Id may match, most specific first."""
    text = data.strip()
    try:
        match id_type:
            case SubscriptionIdType.END_USER_E164:
                return [(MSISDN, e164_digits(text))]
            case SubscriptionIdType.END_USER_IMSI:
                return [(IMSI, normalise(IMSI, text))]
            case SubscriptionIdType.END_USER_SIP_URI:
                if text.lower().startswith("tel:"):
                    return [(MSISDN, e164_digits(text))]
                keys = [(SIP_URI, sip_uri(text))]
                user = sip_uri(text).partition(":")[2].rpartition("@")[0]
                if user.startswith("+") and user[1:].isdigit():
                    keys.append((MSISDN, user[1:]))  # sip:+49...@host;user=phone (RFC 3261 §19.1.6)
                return keys
            case SubscriptionIdType.END_USER_NAI | SubscriptionIdType.END_USER_PRIVATE:
                return [(NAI, normalise(NAI, text))]
    except ValueError:
        return []
    return []
