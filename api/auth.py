"""Bearer API keys with roles (read-only < operator < admin).

A key is ``opcc_`` + 43 url-safe characters (256 random bits), shown once at creation; only its
SHA-256 is stored (in ``api_keys`` or in ``OPENPCC_API_KEYS``). A fast hash is enough for keys of
that entropy; the comparison is constant-time. Verified keys are cached briefly
(``api_key_cache_seconds``), so a revocation takes effect within that time.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import sqlalchemy as sa
from fastapi import HTTPException, Request
from sqlalchemy.engine import Engine

from api.models import ApiKey
from schemas.api import Role
from schemas.settings import Settings
from schemas.sql import utcnow

keys_t = ApiKey.__table__
RANK = {Role.READ_ONLY: 0, Role.OPERATOR: 1, Role.ADMIN: 2}
PREFIX = "opcc_"


@dataclass(frozen=True, slots=True)
class Principal:
    name: str
    role: Role


def generate_key() -> str:
    return PREFIX + secrets.token_urlsafe(32)


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


class KeyExists(ValueError):
    pass


def create_key(engine: Engine, name: str, role: Role) -> str:
    """Store a new key for ``name`` and return it (the only time it is visible)."""
    key = generate_key()
    with engine.begin() as conn:
        if conn.execute(sa.select(keys_t.c.id).where(keys_t.c.name == name)).first():
            raise KeyExists(f"an API key named {name!r} exists")
        conn.execute(
            keys_t.insert().values(
                name=name, role=role.value, key_sha256=hash_key(key), created_at=utcnow()
            )
        )
    return key


def revoke_key(engine: Engine, name: str) -> bool:
    with engine.begin() as conn:
        done = conn.execute(
            keys_t.update()
            .where(keys_t.c.name == name, keys_t.c.revoked_at.is_(None))
            .values(revoked_at=utcnow())
        )
    return bool(done.rowcount)


class KeyStore:
    """Resolves a presented key to a Principal (settings first, then the database)."""

    def __init__(self, engine: Engine, settings: Settings) -> None:
        self.engine = engine
        self.ttl = settings.api_key_cache_seconds
        self.configured = [(k.sha256, Principal(k.name, Role(k.role))) for k in settings.api_keys]
        self._cache: dict[str, tuple[float, Principal | None]] = {}

    def cached(self, key: str) -> tuple[bool, Principal | None]:
        """(hit, principal) from the configured keys and the cache, without I/O."""
        digest = hash_key(key)
        for stored, principal in self.configured:
            if hmac.compare_digest(stored, digest):
                return True, principal
        entry = self._cache.get(digest)
        if entry is not None and entry[0] > time.monotonic():
            return True, entry[1]
        return False, None

    def authenticate(self, key: str) -> Principal | None:
        hit, found = self.cached(key)
        if hit:
            return found
        digest = hash_key(key)
        found = self._from_database(digest)
        if len(self._cache) > 10_000:
            self._cache.clear()
        self._cache[digest] = (time.monotonic() + self.ttl, found)
        return found

    def _from_database(self, digest: str) -> Principal | None:
        with self.engine.connect() as conn:
            row = conn.execute(
                sa.select(keys_t.c.name, keys_t.c.role, keys_t.c.key_sha256).where(
                    keys_t.c.key_sha256 == digest, keys_t.c.revoked_at.is_(None)
                )
            ).first()
        if row is None or not hmac.compare_digest(row.key_sha256, digest):
            return None
        return Principal(row.name, Role(row.role))


async def _principal(request: Request) -> Principal:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise HTTPException(401, "missing bearer API key", headers={"WWW-Authenticate": "Bearer"})
    store: KeyStore = request.app.state.keys
    hit, principal = store.cached(token.strip())
    if not hit:
        principal = await asyncio.to_thread(store.authenticate, token.strip())
    if principal is None:
        raise HTTPException(
            401, "unknown or revoked API key", headers={"WWW-Authenticate": "Bearer"}
        )
    return principal


def require(role: Role) -> Callable[[Request], Awaitable[Principal]]:
    """A dependency: the caller's Principal, 401 without a valid key, 403 below ``role``."""

    async def dependency(request: Request) -> Principal:
        principal = await _principal(request)
        if RANK[principal.role] < RANK[role]:
            raise HTTPException(403, f"the {principal.role} role cannot do this; needs {role}")
        return principal

    return dependency


reader = require(Role.READ_ONLY)
operator = require(Role.OPERATOR)
admin = require(Role.ADMIN)
