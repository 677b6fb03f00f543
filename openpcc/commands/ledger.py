"""``openpcc ledger``: check and operate the charging ledger.

openpcc ledger verify      check every ledger invariant; exit 1 on any breach
openpcc ledger topup ACCOUNT AMOUNT [--balance NAME] [--reference REF]
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from charging.accounts import UnknownAccount, top_up
from charging.verify import verify
from openpcc.database import create_engine, upgrade
from schemas.settings import Settings


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("ledger", help="check and operate the charging ledger")
    parser.add_argument("--database-url", help="default: OPENPCC_DATABASE_URL")
    commands = parser.add_subparsers(dest="ledger_command", required=True)
    check = commands.add_parser("verify", help="check conservation, credit and reservations")
    check.set_defaults(func=_verify)
    topup = commands.add_parser("topup", help="credit an account (amount in minor units)")
    topup.add_argument("account")
    topup.add_argument("amount", type=int)
    topup.add_argument("--balance")
    topup.add_argument("--reference")
    topup.set_defaults(func=_topup)


def _engine(args: argparse.Namespace) -> Any:
    engine = create_engine(args.database_url or Settings().database_url)
    upgrade(engine)
    return engine


def _verify(args: argparse.Namespace) -> int:
    engine = _engine(args)
    try:
        breaches = verify(engine)
    finally:
        engine.dispose()
    for breach in breaches:
        print(breach, file=sys.stderr)
    if breaches:
        print(f"ledger verify: {len(breaches)} breach(es)", file=sys.stderr)
        return 1
    print("ledger verify: ok")
    return 0


def _topup(args: argparse.Namespace) -> int:
    engine = _engine(args)
    try:
        result = top_up(
            engine, args.account, args.amount, balance=args.balance, reference=args.reference
        )
    except (UnknownAccount, ValueError) as exc:
        print(f"ledger topup: {exc}", file=sys.stderr)
        return 2
    finally:
        engine.dispose()
    print(f"balance {result.balance_id}: amount {result.amount}")
    return 0
