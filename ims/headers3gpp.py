"""3GPP SIP headers (TS 24.229 §7.2A, RFC 7315): P-Charging-Vector and its ICID."""

from __future__ import annotations

import itertools
import os
import time
from dataclasses import dataclass, field

from ims.sip.uri import format_params, parse_params

_counter = itertools.count(1)
_pid = f"{os.getpid():x}"  # getpid is a system call on current glibc: read it once per process


def _after_fork() -> None:
    global _pid
    _pid = f"{os.getpid():x}"


os.register_at_fork(after_in_child=_after_fork)


def new_icid(host: str) -> str:
    """A globally unique IMS Charging Identifier (TS 24.229 §7.2A.5.2.1 leaves the format to the
    generating node): generator host, start time, process id and a counter, all hex."""
    return f"{host}-{int(time.time() * 1000):x}-{_pid}-{next(_counter):x}"


@dataclass(slots=True)
class ChargingVector:
    """``P-Charging-Vector: icid-value=...;icid-generated-at=...;orig-ioi=...``."""

    icid: str
    params: dict[str, str | None] = field(default_factory=dict)

    def __str__(self) -> str:
        value = self.icid
        if any(ch in value for ch in ';, "') or not value:
            value = '"' + value.replace('"', "") + '"'
        return f"icid-value={value}{format_params(self.params)}"

    @classmethod
    def parse(cls, text: str) -> ChargingVector:
        params = parse_params(text, "P-Charging-Vector")
        icid = params.pop("icid-value", None)
        if not icid:
            raise ValueError("P-Charging-Vector without icid-value")
        return cls(icid.strip('"'), params)

    @classmethod
    def generate(cls, host: str, orig_ioi: str) -> ChargingVector:
        return cls(new_icid(host), {"icid-generated-at": host, "orig-ioi": orig_ioi})
