"""`openpcc apikey`: a created key authenticates with its role, only its hash is stored, a
revoked key stops working; keys from settings are given as hashes."""

from __future__ import annotations

import os
import subprocess
import sys

import sqlalchemy as sa

from api.auth import KeyStore, hash_key
from openpcc.database import create_engine
from schemas.api import Role
from schemas.settings import Settings


def _cli(url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "OPENPCC_DATABASE_URL": url}
    return subprocess.run(
        [sys.executable, "-m", "openpcc.cli", "apikey", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )


def test_create_authenticate_revoke(sqlite_url: str) -> None:
    created = _cli(sqlite_url, "create", "ops", "--role", "operator")
    assert created.returncode == 0, created.stderr
    key = created.stdout.strip()
    assert key.startswith("opcc_") and len(key) > 40
    assert _cli(sqlite_url, "create", "ops").returncode == 1  # name taken
    engine = create_engine(sqlite_url)
    with engine.connect() as conn:
        stored = conn.execute(sa.text("SELECT key_sha256 FROM api_keys")).scalar_one()
    assert stored == hash_key(key) and key not in stored
    store = KeyStore(engine, Settings(api_key_cache_seconds=0))
    principal = store.authenticate(key)
    assert principal is not None and principal.name == "ops" and principal.role is Role.OPERATOR
    assert store.authenticate(key + "x") is None
    assert _cli(sqlite_url, "revoke", "ops").returncode == 0
    assert store.authenticate(key) is None
    configured = Settings(api_keys=[{"name": "ci", "role": "admin", "sha256": stored}])
    found = KeyStore(engine, configured).authenticate(key)
    assert found is not None and found.role is Role.ADMIN
    engine.dispose()
