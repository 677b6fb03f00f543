"""Codec benchmark: our diam codec vs python-diameter 0.9.0, same messages, same run.

    python -m bench.codec [--seconds 0.2]

Messages: the Ro CCR-U (40 AVPs, 2 MSCC + IMS-Information) and the Gx CCA (2 Charging-Rule-Install
with dynamic Charging-Rule-Definition) of bench/_diameter_samples.py. Operations, µs per message:
- decode: bytes -> message object, each library's own way (ours: one pass over the top-level
  AVP headers, values converted on access; python-diameter: `Message.from_bytes`, its typed
  command class, Grouped AVPs parsed on access as well);
- encode: a message object built from values -> bytes (`encode()` / `as_bytes()`);
- decode+encode: bytes -> message -> bytes, the issue's headline figure;
- "+ read all": the same, but every value of the tree converted in between (both libraries), the
  worst case for a lazy codec. python-diameter's typed classes drop AVPs they do not model (in
  the Gx CCA most of each Charging-Rule-Definition), so there it reads fewer AVPs than we do.
Best of 15 short interleaved repeats; ratio = python-diameter's time / ours.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from typing import Any

from diameter.message import Message as PdMessage

from bench._diameter_samples import GX_CCA, RO_CCR_U, Spec, build, build_python_diameter
from diam.message import Message


def read_all(avps: list[Any]) -> int:
    """Convert every value in the tree (works for both libraries); returns the AVP count."""
    n = 0
    for a in avps:
        n += 1
        value = a.value
        if type(value) is list:
            n += read_all(value)
    return n


REPEATS = 15  # short interleaved repeats: the best one of each side is its unloaded time


def _loops(fn: Callable[[], object], seconds: float) -> int:
    start = time.perf_counter()
    for _ in range(20):
        fn()
    return max(1, int(seconds / REPEATS / ((time.perf_counter() - start) / 20)))


def pair_us(
    ours: Callable[[], object], theirs: Callable[[], object], seconds: float
) -> tuple[float, float]:
    """µs per call of each, best of REPEATS interleaved repeats (both meet the same load)."""
    n_ours, n_theirs = _loops(ours, seconds), _loops(theirs, seconds)
    best_ours = best_theirs = float("inf")
    for _ in range(REPEATS):
        for fn, n, is_ours in ((ours, n_ours, True), (theirs, n_theirs, False)):
            start = time.perf_counter()
            for _ in range(n):
                fn()
            took = (time.perf_counter() - start) / n
            if is_ours:
                best_ours = min(best_ours, took)
            else:
                best_theirs = min(best_theirs, took)
    return best_ours * 1e6, best_theirs * 1e6


def bench_message(name: str, spec: Spec, seconds: float) -> list[tuple[str, float, float]]:
    wire = build(spec).encode()
    built = build(spec)
    pd_built = build_python_diameter(spec)
    assert pd_built.as_bytes() == wire

    def ours_read() -> int:
        return read_all(Message.decode(wire).avps)

    def theirs_read() -> int:
        return read_all(PdMessage.from_bytes(wire).avps)

    def ours_read_encode() -> bytes:
        msg = Message.decode(wire)
        read_all(msg.avps)
        return msg.encode()

    def theirs_read_encode() -> bytes:
        msg = PdMessage.from_bytes(wire)
        read_all(msg.avps)
        return msg.as_bytes()

    assert ours_read_encode() == wire and Message.decode(wire).encode() == wire
    cases: list[tuple[str, Callable[[], object], Callable[[], object]]] = [
        ("decode", lambda: Message.decode(wire), lambda: PdMessage.from_bytes(wire)),
        ("encode", built.encode, pd_built.as_bytes),
        (
            "build+encode",
            lambda: build(spec).encode(),
            lambda: build_python_diameter(spec).as_bytes(),
        ),
        (
            "decode+encode",
            lambda: Message.decode(wire).encode(),
            lambda: PdMessage.from_bytes(wire).as_bytes(),
        ),
        ("decode+read all", ours_read, theirs_read),
        ("dec+read+enc", ours_read_encode, theirs_read_encode),
    ]
    rows = [(op, *pair_us(o, t, seconds)) for op, o, t in cases]
    print(
        f"\n{name}: {len(wire)} octets, {ours_read()} AVPs "
        f"(python-diameter's typed message keeps {theirs_read()})"
    )
    print(f"  {'operation':<17}{'ours µs':>9}{'python-diameter µs':>20}{'ratio':>8}")
    for op, ours, theirs in rows:
        print(f"  {op:<17}{ours:>9.1f}{theirs:>20.1f}{theirs / ours:>7.1f}x")
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--seconds", type=float, default=0.2, help="approximate time per measurement (default 0.2)"
    )
    args = parser.parse_args()
    bench_message("Ro CCR-U", RO_CCR_U, args.seconds)
    bench_message("Gx CCA", GX_CCA, args.seconds)


if __name__ == "__main__":
    main()
