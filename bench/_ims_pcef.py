"""The PGW simulator of ``bench.ims`` in its own process, so its CPU is measured apart.

python -m bench._ims_pcef --uvloop|--asyncio PCRF_PORT IMSI:MSISDN:IP ...

Attaches each UE (Gx CCR-I), prints ``ready``, then answers the PCRF's RARs. Each stdin line
``cpu`` is answered with this process's CPU seconds; at stdin EOF it prints one JSON line
(dedicated bearers left, CPU seconds), detaches nothing and exits.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time

from bench.node import run_loop
from ims.pcef import PcefSimulator


async def main(pcrf_port: int, ues: list[str]) -> None:
    pcef = PcefSimulator("pgw.bench", "bench", "127.0.0.1", pcrf_port, "bench")
    for ue in ues:
        imsi, msisdn, ip = ue.split(":")
        await pcef.attach(imsi, msisdn, ip)
    loop = asyncio.get_running_loop()
    print("ready", flush=True)
    try:
        while line := await loop.run_in_executor(None, sys.stdin.readline):
            if line.strip() == "cpu":
                print(time.process_time(), flush=True)
        bearers = sum(len(s.bearers) for s in pcef.sessions.values())
        result = {"bearers_left": bearers, "cpu_s": time.process_time()}
        print(json.dumps(result), flush=True)
    finally:
        await pcef.close()


if __name__ == "__main__":
    run_loop(main(int(sys.argv[2]), sys.argv[3:]), sys.argv[1] == "--uvloop")
