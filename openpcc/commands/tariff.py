"""``openpcc tariff``: check a tariff file, price a usage, compute a grant, show rates in force."""

from __future__ import annotations

import argparse
import json
import sys
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from rating.engine import Data, Events, Usage, Voice, enquire, grant, price
from rating.errors import RatingError
from rating.loader import TariffFileError, load_plan
from rating.money import minor_to_decimal
from rating.plan import Plan
from rating.timebands import from_epoch


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "tariff", help="check a tariff file, price a usage, compute a grant"
    )
    commands = parser.add_subparsers(dest="tariff_command", required=True)
    check = commands.add_parser("check", help="validate a tariff file and print a summary")
    check.add_argument("file")
    check.set_defaults(func=_check)
    for name, helptext, func in (
        ("price", "price a usage and print the breakdown as JSON", _price),
        ("grant", "largest usage an amount pays for (reverse rating), as JSON", _grant),
        ("rates", "the rates in force for a destination / rating group / service, as JSON", _rates),
    ):
        sub = commands.add_parser(name, help=helptext)
        sub.add_argument("file")
        sub.add_argument("--start", type=_aware, help="ISO 8601 time with offset (default: now)")
        kind = sub.add_mutually_exclusive_group(required=True)
        kind.add_argument("--destination", help="called number for voice, e.g. +49301234")
        kind.add_argument("--rating-group", type=int, help="rating group for data")
        kind.add_argument("--service-id", type=int, help="service identifier for events")
        if name == "rates":
            sub.set_defaults(func=func, seconds=0, octets=0, events=0)
            continue
        sub.add_argument(
            "--already-used",
            type=int,
            default=0,
            metavar="UNITS",
            help="units already priced in this call (voice) or billing period",
        )
        units = sub.add_mutually_exclusive_group(required=True)
        units.add_argument("--seconds", type=int)
        units.add_argument("--octets", type=int)
        units.add_argument("--events", type=int)
        if name == "grant":
            sub.add_argument(
                "--available",
                type=Decimal,
                required=True,
                help="money available, in major units (e.g. 1.50)",
            )
        sub.set_defaults(func=func)


def _aware(text: str) -> datetime:
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is None:
        raise argparse.ArgumentTypeError(
            f"{text!r} needs a UTC offset, e.g. 2026-11-24T19:59:30+01:00"
        )
    return moment


def _load(path: str) -> Plan | None:
    try:
        return load_plan(path)
    except TariffFileError as exc:
        for problem in exc.problems:
            print(problem, file=sys.stderr)
        print(f"{path}: {len(exc.problems)} problem(s)", file=sys.stderr)
        return None


def _check(args: argparse.Namespace) -> int:
    plan = _load(args.file)
    if plan is None:
        return 1
    d = plan.definition
    print(
        f"{args.file}: OK — plan {d.name!r}, {d.currency} (minor unit 10^-{plan.exponent}), "
        f"timezone {d.timezone}, rounding {d.rounding}"
    )
    print(
        f"destination sets ({len(plan.prefixes)} prefixes): "
        + ", ".join(f"{n} ({c})" for n, c in sorted(plan.set_sizes.items()))
    )
    for name, bands in d.time_bands.items():
        names = sorted({b.band for b in bands.bands})
        print(
            f"time bands {name}: {', '.join(names)}"
            + (f"; holidays {bands.holidays}" if bands.holidays else "")
        )
    for version in plan.versions:
        print(
            f"version from {version.effective_from.isoformat()}: {len(version.voice)} voice, "
            f"{len(version.data)} data, {len(version.events)} event rates"
        )
        for name in sorted(set(plan.set_sizes) - set(version.voice)):
            print(
                f"warning: destination set {name} has no voice rate in the version from "
                f"{version.effective_from.date()}; calls to it are refused",
                file=sys.stderr,
            )
    for b in d.bundles:
        extra = (
            f", rollover up to {b.rollover.cap} for {b.rollover.valid_periods} period(s)"
            if b.rollover
            else ""
        )
        print(f"bundle {b.name}: {b.amount} {b.unit} {b.period}, priority {b.priority}{extra}")
    return 0


def _usage(args: argparse.Namespace) -> Usage:
    amount = next(v for v in (args.seconds, args.octets, args.events) if v is not None)
    if args.destination is not None:
        return Voice(args.destination, amount)
    if args.rating_group is not None:
        return Data(args.rating_group, amount)
    return Events(args.service_id, amount)


def _money(minor: int, plan: Plan) -> str:
    return str(minor_to_decimal(minor, plan.exponent))


def _run(args: argparse.Namespace, compute: Any) -> int:
    plan = _load(args.file)
    if plan is None:
        return 1
    start = args.start or datetime.now(plan.tz)
    try:
        body = compute(plan, _usage(args), start)
    except (RatingError, ValueError, InvalidOperation) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(body, indent=2, ensure_ascii=False))
    return 0


def _price(args: argparse.Namespace) -> int:
    def compute(plan: Plan, usage: Usage, start: datetime) -> dict[str, Any]:
        charge = price(plan, usage, start, already_used=args.already_used)
        return {
            "plan": plan.name,
            "kind": charge.kind,
            "key": charge.key,
            "prefix": None
            if charge.prefix is None
            else ("*" if charge.prefix == "*" else f"+{charge.prefix}"),
            "start": start.isoformat(),
            "version": charge.effective_from.isoformat(),
            "currency": charge.currency,
            "charged_units": charge.charged_units,
            "total": _money(charge.total, plan),
            "total_minor": charge.total,
            "lines": [
                {
                    "item": line.item,
                    "band": line.band,
                    "tier": line.tier,
                    "units": line.units,
                    "rate": None if line.rate is None else str(line.rate),
                    "per": line.per,
                    "amount": _money(line.amount, plan),
                    "amount_minor": line.amount,
                    "begins": None
                    if line.begins is None
                    else from_epoch(line.begins, plan.tz).isoformat(),
                }
                for line in charge.lines
            ],
        }

    return _run(args, compute)


def _grant(args: argparse.Namespace) -> int:
    def compute(plan: Plan, usage: Usage, start: datetime) -> dict[str, Any]:
        available = args.available.scaleb(plan.exponent)
        if available != available.to_integral_value():
            raise ValueError(
                f"--available {args.available} is finer than the currency's minor unit"
            )
        result = grant(plan, usage, start, int(available), already_used=args.already_used)
        return {
            "plan": plan.name,
            "start": start.isoformat(),
            "currency": plan.currency,
            "available": str(args.available),
            "units": result.units,
            "cost": _money(result.cost, plan),
            "cost_minor": result.cost,
            "capped": result.capped,
            "tariff_change_at": None
            if result.tariff_change_at is None
            else result.tariff_change_at.isoformat(),
        }

    return _run(args, compute)


def _rates(args: argparse.Namespace) -> int:
    def compute(plan: Plan, usage: Usage, start: datetime) -> dict[str, Any]:
        sheet = enquire(plan, usage, start)
        return {
            "plan": plan.name,
            "at": start.isoformat(),
            "version": sheet.effective_from.isoformat(),
            "kind": sheet.kind,
            "key": sheet.key,
            "prefix": None if sheet.prefix in (None, "*") else f"+{sheet.prefix}",
            "currency": sheet.currency,
            "band_now": sheet.band,
            "next_switch": None if sheet.next_switch is None else sheet.next_switch.isoformat(),
            "per": sheet.per,
            "connect_fee": _money(sheet.connect_fee, plan),
            "minimum_charge": _money(sheet.minimum_charge, plan),
            "increments": list(sheet.increments),
            "tiers": [
                {"up_to": upper, "price": {band or "all": str(p) for band, p in prices.items()}}
                for upper, prices in sheet.tiers
            ],
        }

    return _run(args, compute)
