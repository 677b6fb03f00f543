"""Rating benchmark: prices/s and grants/s on one core; prefix lookup, 5,000 to 1,000,000 prefixes.

Run: ``python -m bench.rating``. The example plan (examples/tariff.yaml) is expanded to ~5,000
prefixes with synthetic number ranges; calls start at random times over two weeks (so some cross
peak/off-peak switches) and last 1 s .. 30 min. Times are CPU time of this process (one core),
so other load on the machine does not distort them.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from rating.engine import Data, Voice, grant, price
from rating.loader import load_plan
from rating.plan import Plan, compile_plan
from rating.prefixes import PrefixTable

ROOT = Path(__file__).resolve().parents[1]
SEED = 20261124


def expanded_plan(size: int) -> Plan:
    """The example plan with synthetic sub-prefixes added until it has ``size`` prefixes."""
    base = load_plan(ROOT / "examples" / "tariff.yaml")
    rng = random.Random(SEED)
    table = base.prefixes.entries()
    parents = sorted(table.items())
    while len(table) < size:
        parent, name = rng.choice(parents)
        if parent == "*":
            continue
        child = parent + "".join(rng.choice("0123456789") for _ in range(rng.randint(1, 4)))
        table.setdefault(child, name)
    return compile_plan(base.definition, table)


def rate(label: str, count: int, run: Callable[[], None]) -> float:
    begin = time.process_time()
    run()
    elapsed = time.process_time() - begin
    per_second = count / elapsed
    print(f"{label:<44} {per_second:>12,.0f} /s   ({elapsed * 1e6 / count:.2f} µs each)")
    return per_second


def workload(plan: Plan, n: int) -> tuple[list[Voice], list[datetime], list[Data]]:
    rng = random.Random(SEED)
    prefixes = [p for p in plan.prefixes.entries() if p != "*" and len(p) < 12]
    numbers = [
        "+" + p + "".join(rng.choice("0123456789") for _ in range(12 - len(p))) for p in prefixes
    ]
    origin = datetime(2026, 11, 23, tzinfo=UTC)
    starts = [origin + timedelta(seconds=rng.randrange(14 * 86400)) for _ in range(n)]
    calls = [Voice(rng.choice(numbers), rng.randint(1, 1800)) for _ in range(n)]
    volumes = [Data(10, rng.randint(1, 50_000_000)) for _ in range(n)]
    return calls, starts, volumes


def lookup_figures(size: int, count: int = 200_000) -> tuple[float, float, float]:
    """(ns per lookup, dict probes per lookup, ns per single dict hit) for a random table."""
    rng = random.Random(size)
    table: dict[str, str] = {}
    while len(table) < size:  # prefixes of 2..9 digits, like real E.164 destination lists
        table[str(rng.randint(1, 9)) + str(rng.randrange(10 ** rng.randint(1, 8)))] = "X"
    prefixes = PrefixTable(table)
    keys = rng.choices(list(table), k=count)
    numbers = [(k + "0123456789012345")[:13] for k in keys]
    lengths = sorted({len(k) for k in table}, reverse=True)
    probes = sum(sum(1 for n in lengths if n >= len(k) and n <= 13) for k in keys) / count
    lookup = prefixes.lookup
    begin = time.process_time()
    for number in numbers:
        lookup(number)
    per_lookup = (time.process_time() - begin) * 1e9 / count
    get = table.get
    begin = time.process_time()
    for key in keys:
        get(key)
    return per_lookup, probes, (time.process_time() - begin) * 1e9 / count


def main() -> None:
    plan = expanded_plan(5000)
    print(f"plan: {plan!r}")
    n = 100_000
    calls, starts, volumes = workload(plan, n)
    pairs = list(zip(calls, starts, strict=True))
    already = [s.seconds // 2 for s in calls]

    def voice() -> None:
        for usage, start in pairs:
            price(plan, usage, start)

    def voice_chunks() -> None:
        for (usage, start), used in zip(pairs, already, strict=True):
            price(plan, usage, start, already_used=used)

    def data() -> None:
        for usage, start in zip(volumes, starts, strict=True):
            price(plan, usage, start, already_used=2_000_000_000)

    def voice_grants() -> None:
        for usage, start in pairs[: n // 4]:
            grant(plan, Voice(usage.destination, 3600), start, 500)

    def data_grants() -> None:
        for start in starts[: n // 4]:
            grant(plan, Data(10, 10**9), start, 300, already_used=900_000_000)

    voice()  # warm the per-hour band caches, as a running OCS would be
    rate("price: voice call (first chunk)", n, voice)
    rate("price: voice CCR-U chunk (already_used > 0)", n, voice_chunks)
    rate("price: data volume across tiers", n, data)
    rate("grant: voice seconds for 5.00 EUR", n // 4, voice_grants)
    rate("grant: data octets for 3.00 EUR", n // 4, data_grants)
    print("prefix lookup (probes are bounded by the distinct prefix lengths, not the table size;")
    print(" the extra time at 1M is CPU-cache misses, as one plain dict hit shows):")
    for size in (5_000, 100_000, 1_000_000):
        ns, probes, hit = lookup_figures(size)
        print(
            f"  {size:>9,} prefixes: {ns:6.0f} ns/lookup, {probes:.2f} probes/lookup, "
            f"one dict hit {hit:4.0f} ns"
        )


if __name__ == "__main__":
    main()
