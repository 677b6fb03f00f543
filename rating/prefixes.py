"""Longest-prefix match of E.164 numbers to destination sets.

A dict keyed by prefix plus the (few) distinct prefix lengths, longest first: a lookup probes at
most one slice per distinct length (<= 15 for E.164), so it costs O(number length) whatever the
table size — 5,000 or 1,000,000 prefixes (see ``bench/rating.py``).
"""

from __future__ import annotations

from collections.abc import Mapping

from rating.errors import UnknownNumber

_STRIP = str.maketrans("", "", " -.()")


def normalize(number: str) -> str:
    """E.164 digits of ``+49 30 1234``, ``tel:+49301234`` or ``sip:+49301234@ims;user=phone``."""
    if number[:1] == "+" and number[1:].isdigit() and number.isascii():
        return number[1:]
    text = number.strip()
    for scheme in ("tel:", "sip:", "sips:"):
        if text.lower().startswith(scheme):
            text = text[len(scheme) :]
    text = text.split("@", 1)[0].split(";", 1)[0].translate(_STRIP)
    digits = text[1:] if text.startswith("+") else text
    if not (digits.isascii() and digits.isdigit()) or not 1 <= len(digits) <= 15:
        raise UnknownNumber(f"{number!r} is not an E.164 number")
    return digits


class PrefixTable:
    """Maps E.164 prefixes (digits, no ``+``) to values; ``*`` is the fallback for any number."""

    __slots__ = ("_fallback", "_lengths", "_map")

    def __init__(self, entries: Mapping[str, str]) -> None:
        self._map = {p: v for p, v in entries.items() if p != "*"}
        self._fallback = entries.get("*")
        self._lengths = tuple(sorted({len(p) for p in self._map}, reverse=True))

    def __len__(self) -> int:
        return len(self._map) + (self._fallback is not None)

    def entries(self) -> dict[str, str]:
        """A copy of the table: prefix (or ``*``) -> value."""
        table = dict(self._map)
        if self._fallback is not None:
            table["*"] = self._fallback
        return table

    def lookup(self, digits: str) -> tuple[str, str]:
        """``(matched prefix, value)`` for normalised digits (prefix ``*``: the fallback)."""
        table = self._map
        size = len(digits)
        for length in self._lengths:
            if length <= size:
                value = table.get(digits[:length])
                if value is not None:
                    return digits[:length], value
        if self._fallback is None:
            raise UnknownNumber(f"+{digits} matches no destination prefix")
        return "*", self._fallback
