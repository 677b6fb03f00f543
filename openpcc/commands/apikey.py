"""``openpcc apikey``: create, revoke and hash management API keys.

openpcc apikey create NAME --role read-only|operator|admin   # prints the key once
openpcc apikey revoke NAME
openpcc apikey hash KEY          # the sha256 to put in OPENPCC_API_KEYS instead of the database

Keys live hashed in the database at OPENPCC_DATABASE_URL (migrated to head first).
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from api.auth import KeyExists, create_key, hash_key, revoke_key
from openpcc.database import create_engine, upgrade
from schemas.api import Role
from schemas.settings import Settings


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("apikey", help="create, revoke or hash management API keys")
    commands = parser.add_subparsers(dest="apikey_command", required=True)
    create = commands.add_parser("create", help="create a key and print it (shown only once)")
    create.add_argument("name")
    create.add_argument("--role", choices=[r.value for r in Role], default=Role.READ_ONLY.value)
    create.set_defaults(func=_create)
    revoke = commands.add_parser("revoke", help="revoke the key of NAME")
    revoke.add_argument("name")
    revoke.set_defaults(func=_revoke)
    digest = commands.add_parser("hash", help="print the sha256 of KEY for OPENPCC_API_KEYS")
    digest.add_argument("key")
    digest.set_defaults(func=lambda args: print(hash_key(args.key)) or 0)


def _engine() -> Any:
    engine = create_engine(Settings().database_url)
    upgrade(engine)
    return engine


def _create(args: argparse.Namespace) -> int:
    engine = _engine()
    try:
        print(create_key(engine, args.name, Role(args.role)))
    except KeyExists as exc:
        print(f"openpcc apikey: {exc}", file=sys.stderr)
        return 1
    finally:
        engine.dispose()
    return 0


def _revoke(args: argparse.Namespace) -> int:
    engine = _engine()
    try:
        if not revoke_key(engine, args.name):
            print(f"openpcc apikey: no active key named {args.name!r}", file=sys.stderr)
            return 1
    finally:
        engine.dispose()
    return 0
