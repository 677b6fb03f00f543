"""CPU attribution of a running benchmark: py-spy samples this process (only threads holding the
GIL, so waiting and idle threads cost nothing) and each sample is charged to one component.

A sample goes to logging or SQL when such a frame is on its stack (SQL charged to the domain that
issued it), else to the innermost frame of ours, else to the asyncio loop / other. SQLite's fsync
releases the GIL: commit waits are not CPU and do not appear.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import sys
from collections import Counter
from pathlib import Path

_FILE = re.compile(r"\(([^:()]+):\d+\)$")
_OWN = ("ims/", "diam/", "policy/", "charging/", "rating/", "openpcc/", "schemas/", "bench/")
_COMPONENTS: tuple[tuple[str, str], ...] = (
    ("diam/message.py", "Diameter encode/decode"),
    ("diam/avp.py", "Diameter encode/decode"),
    ("diam/dictionary.py", "Diameter encode/decode"),
    ("diam/", "Diameter node (peer, router)"),
    ("ims/sip/message.py", "SIP parse/serialise"),
    ("ims/sip/headers.py", "SIP parse/serialise"),
    ("ims/sip/uri.py", "SIP parse/serialise"),
    ("ims/sip/framing.py", "SIP parse/serialise"),
    ("ims/sip/transaction.py", "SIP transactions + timers"),
    ("ims/sip/", "SIP transport, dialogs"),
    ("ims/sdp.py", "SDP + Rx media components"),
    ("ims/media.py", "SDP + Rx media components"),
    ("ims/pcef.py", "PCEF simulator"),
    ("ims/pcscf.py", "P-CSCF (Rx client)"),
    ("ims/scscf.py", "S-CSCF (Ro client)"),
    ("ims/", "IMS proxy, registrar, calls"),
    ("policy/", "PCRF (policy/)"),
    ("charging/", "OCS (charging/, rating/)"),
    ("rating/", "OCS (charging/, rating/)"),
)


def classify(frames: list[str]) -> str:
    """The component one sampled stack (outermost frame first) is charged to."""
    files = [m.group(1) if (m := _FILE.search(f)) else "" for f in frames]
    ours = [f for f in files if f.startswith(_OWN)]
    if any(f.startswith("logging/") for f in files):
        return "logging"
    if any("sqlalchemy/" in f or "sqlite3/" in f for f in files):
        domain = next((f for f in ours if f.startswith(("policy/", "charging/"))), "")
        return "SQL (PCRF)" if domain.startswith("policy/") else "SQL (OCS)"
    for name in reversed(ours):
        for prefix, component in _COMPONENTS:
            if name.startswith(prefix):
                return component
    return "asyncio loop, sockets, threads"


def attribute(raw: Path) -> Counter[str]:
    """Samples per component from py-spy's ``--format raw`` output."""
    counts: Counter[str] = Counter()
    for line in raw.read_text().splitlines():
        stack, _, n = line.rpartition(" ")
        if stack:
            counts[classify(stack.split(";")[1:])] += int(n)
    return counts


class Sampler:
    """``py-spy record --gil`` on this process between ``start()`` and ``stop()``."""

    RATE = 250

    def __init__(self, out: Path) -> None:
        self.out = out
        self.proc: asyncio.subprocess.Process | None = None

    @staticmethod
    def available() -> bool:
        return shutil.which("py-spy", path=str(Path(sys.executable).parent)) is not None

    async def start(self) -> None:
        exe = str(Path(sys.executable).parent / "py-spy")
        args = ["record", "--gil", "--threads", "--nonblocking", "--format", "raw"]
        self.proc = await asyncio.create_subprocess_exec(
            exe,
            *args,
            "-r",
            str(self.RATE),
            "-o",
            str(self.out),
            "--pid",
            str(os.getpid()),
            stdout=asyncio.subprocess.DEVNULL,
            stderr=self.out.with_suffix(".err").open("wb"),
        )
        await asyncio.sleep(0.5)  # py-spy attaches

    async def stop(self) -> Counter[str]:
        assert self.proc is not None
        self.proc.send_signal(2)  # SIGINT: py-spy writes its file and exits
        await asyncio.wait_for(self.proc.wait(), 30)
        return attribute(self.out) if self.out.exists() else Counter()
