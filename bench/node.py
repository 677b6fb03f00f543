"""Node benchmark: requests/s, p50/p99 latency and server CPU µs per request.

    python -m bench.node [--connections 4] [--window 64] [--duration 5] [--no-uvloop]
                         [--suspend-ms 0]

Starts a server subprocess (one process: a Node with a trivial Ro CCA handler, uvloop when
importable) and loads it from this process with pipelined CCRs over several connections. Server
CPU comes from /proc/<pid>/stat (user + system) over the measured interval only.

With ``--suspend-ms N`` the handler awaits a future that is released, together with every other
one waiting, N ms after the first of them: the shape of the OCS's group commit (answers leave
in bursts, from tasks, not from inside ``data_received``).
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from bench._loadgen import run_load
from bench._servers import cpu_seconds
from diam.constants import APP_CREDIT_CONTROL, CMD_CREDIT_CONTROL
from diam.identity import LocalIdentity, PeerPolicy, applications_from_names
from diam.message import Message
from diam.node import Node


async def trivial_cca(request: Message, peer: Any) -> Message:
    return request.answer(
        2001,
        ("Auth-Application-Id", APP_CREDIT_CONTROL),
        ("CC-Request-Type", request.get("CC-Request-Type")),
        ("CC-Request-Number", request.get("CC-Request-Number")),
    )


class BatchRelease:
    """Futures released together ``window`` seconds after the first one was asked for."""

    def __init__(self, window: float) -> None:
        self.window = window
        self.loop = asyncio.get_running_loop()
        self.waiting: list[asyncio.Future[None]] = []

    def wait(self) -> asyncio.Future[None]:
        future = self.loop.create_future()
        if not self.waiting:
            self.loop.call_later(self.window, self._release)
        self.waiting.append(future)
        return future

    def _release(self) -> None:
        waiting, self.waiting = self.waiting, []
        for future in waiting:
            if not future.done():
                future.set_result(None)


async def serve(suspend_ms: float) -> None:
    identity = LocalIdentity(
        "ocs.bench.test", "ocs.test", ("127.0.0.1",), applications=applications_from_names(["ro"])
    )
    node = Node(identity, PeerPolicy.parse("*@bench.test"), max_in_flight=4096)
    if suspend_ms > 0:
        release = BatchRelease(suspend_ms / 1000)

        async def committed_cca(request: Message, peer: Any) -> Message:
            await release.wait()
            return await trivial_cca(request, peer)

        node.add_route(APP_CREDIT_CONTROL, CMD_CREDIT_CONTROL, committed_cca)
    else:
        node.add_route(APP_CREDIT_CONTROL, CMD_CREDIT_CONTROL, trivial_cca)
    _, port = await node.listen("127.0.0.1", 0)
    print(f"PORT {port}", flush=True)
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    await stop.wait()
    await node.close(0.5)


def run_loop(main: Any, use_uvloop: bool) -> Any:
    if use_uvloop:
        try:
            import uvloop
        except ImportError:
            pass
        else:
            return uvloop.run(main)
    return asyncio.run(main)


def percentile(sorted_values: list[float], q: float) -> float:
    return sorted_values[min(len(sorted_values) - 1, int(q * len(sorted_values)))]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--connections", type=int, default=4)
    parser.add_argument("--window", type=int, default=64, help="requests in flight per connection")
    parser.add_argument("--duration", type=float, default=5.0)
    parser.add_argument("--warmup", type=float, default=1.0)
    parser.add_argument("--no-uvloop", action="store_true")
    parser.add_argument(
        "--suspend-ms",
        type=float,
        default=0.0,
        help="handler awaits a batch release after this many ms (0: answers without suspending)",
    )
    args = parser.parse_args(argv)
    use_uvloop = not args.no_uvloop
    if args.serve:
        run_loop(serve(args.suspend_ms), use_uvloop)
        return 0

    command = [sys.executable, "-m", "bench.node", "--serve", "--suspend-ms", str(args.suspend_ms)]
    if not use_uvloop:
        command.append("--no-uvloop")
    root = Path(__file__).resolve().parents[1]
    server = subprocess.Popen(command, stdout=subprocess.PIPE, text=True, cwd=root)
    try:
        assert server.stdout is not None
        line = server.stdout.readline()
        if not line.startswith("PORT "):
            raise RuntimeError(f"server did not start: {line!r}")
        port = int(line.split()[1])
        cpu: list[float] = []
        client_cpu: list[float] = []

        def on_measure(_start: bool) -> None:
            cpu.append(cpu_seconds(server.pid))
            client_cpu.append(time.process_time())

        stats = run_loop(
            run_load(port, args.connections, args.window, args.warmup, args.duration, on_measure),
            use_uvloop,
        )
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
    n = stats.answered
    if n == 0:
        print("no answers received")
        return 1
    latencies = sorted(stats.latencies)
    server_cpu = cpu[1] - cpu[0]
    print(
        f"node: {n / args.duration:,.0f} requests/s over {args.duration:g} s "
        f"({args.connections} connections x window {args.window}, "
        f"{'uvloop' if use_uvloop else 'asyncio'}"
        f"{f', handler suspends {args.suspend_ms:g} ms' if args.suspend_ms > 0 else ''}), "
        f"errors {stats.errors}"
    )
    print(
        f"latency p50 {percentile(latencies, 0.50) * 1e6:,.0f} µs, "
        f"p99 {percentile(latencies, 0.99) * 1e6:,.0f} µs"
    )
    print(
        f"server CPU {server_cpu * 1e6 / n:.1f} µs/request "
        f"({server_cpu / args.duration * 100:.0f} % of one core); "
        f"load client CPU {(client_cpu[1] - client_cpu[0]) * 1e6 / n:.1f} µs/request"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
