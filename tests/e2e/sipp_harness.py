"""Run SIPp (Debian package sip-tester) against an in-process IMS core; bounded runs only."""

from __future__ import annotations

import asyncio
import shutil
import socket
from pathlib import Path

from ims.sip.headers import Headers
from ims.sip.message import Request, new_branch, new_tag
from ims.sip.transaction import Target
from ims.sip.uri import parse_uri
from ims.ua import UserAgent

SCENARIOS = Path(__file__).parent / "sipp"
SIPP = shutil.which("sipp")


def free_port(ip: str) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind((ip, 0))
        return sock.getsockname()[1]


async def register_binding(registrant: UserAgent, user: str, contact: str, domain: str) -> int:
    """Third-party REGISTER (RFC 3261 §10.2) of ``contact`` for ``user``: SIPp scenarios are
    per call, so the test registers their addresses."""
    headers = Headers()
    headers.add("Via", registrant.endpoint.via(registrant.transport, new_branch()))
    headers.add("Max-Forwards", "70")
    headers.add("From", f"<{registrant.aor}>;tag={new_tag()}")
    headers.add("To", f"<sip:{user}@{domain}>")
    headers.add("Call-ID", f"tp-{user}-{new_tag()}")
    headers.add("CSeq", "1 REGISTER")
    headers.add("Contact", f"<{contact}>")
    headers.add("Expires", "600")
    request = Request("REGISTER", parse_uri(f"sip:{domain}"), headers)
    return (await registrant.endpoint.request(request, registrant.core).final).status


async def run_sipp(
    scenario: Path,
    core: Target,
    ip: str,
    port: int,
    cwd: Path,
    *args: str,
    calls: int = 1,
    timeout: float = 20,
) -> tuple[int, str]:
    """Run one bounded SIPp instance; returns (exit code, stdout+stderr tail)."""
    assert SIPP is not None
    transport = "t1" if core.transport == "TCP" else "u1"
    cmd = [
        SIPP,
        f"{core.host}:{core.port}",
        "-sf",
        str(scenario),
        "-i",
        ip,
        "-p",
        str(port),
        "-t",
        transport,
        "-m",
        str(calls),
        "-timeout",
        f"{int(timeout)}s",
        "-timeout_error",
        "-nostdin",
        "-trace_err",
        "-mi",
        ip,
        *args,
    ]
    proc = await asyncio.create_subprocess_exec(
        *cmd, cwd=cwd, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
    )
    try:
        out, _ = await asyncio.wait_for(proc.communicate(), timeout + 10)
    except TimeoutError:
        proc.kill()
        out, _ = await proc.communicate()
    text = out.decode(errors="replace")
    errors = "".join(p.read_text(errors="replace") for p in cwd.glob("*_errors.log"))
    return proc.returncode or 0, (text[-3000:] + errors[-3000:])
