"""``Idempotency-Key`` for money writes (draft-ietf-httpapi-idempotency-key-header, Stripe-style).

The first request with a key *claims* it (a row in ``api_idempotency``, unique per API key and
key) as the first statement of the write's transaction and stores its answer in that same
transaction, so the credit and its stored outcome commit or roll back together:

* a retry with the same key and the same request gets the stored answer, nothing is written;
* the same key with another request (other account, amount, reason ...) is refused with 422
  (draft §2.7);
* of two racing duplicates the second blocks on the unique index until the first commits, then
  fails with a unique violation, rolls back its own credit and answers the winner's outcome.

Only successful writes are stored: a refused write (404, 409) rolls back with its claim, so the
key stays free and a retry is executed again.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from api.models import IdempotentRequest
from schemas.sql import utcnow

idempotency_t = IdempotentRequest.__table__
HEADER = "Idempotency-Key"
#: Answer header of a replayed outcome (as Stripe names it).
REPLAYED = "Idempotent-Replayed"
UNIQUE = "uq_api_idempotency_principal_key"


class KeyReused(ValueError):
    """The key was used by this API key for a different request."""


@dataclass(frozen=True, slots=True)
class Claim:
    principal: str
    key: str
    fingerprint: str


def claim_for(principal: str, key: str, operation: str, resource: str, body: Any) -> Claim:
    """The claim of ``key`` for one request; the fingerprint covers operation, resource, body."""
    canonical = json.dumps(
        [operation, resource, body], sort_keys=True, separators=(",", ":"), ensure_ascii=False
    )
    return Claim(principal, key, hashlib.sha256(canonical.encode()).hexdigest())


def stored(conn: Connection, claim: Claim) -> tuple[int, Any] | None:
    """The stored (status, body) of a completed request with this key, or None if unused."""
    row = conn.execute(
        sa.select(idempotency_t.c.fingerprint, idempotency_t.c.status, idempotency_t.c.body).where(
            idempotency_t.c.principal == claim.principal, idempotency_t.c.key == claim.key
        )
    ).first()
    if row is None:
        return None
    if row.fingerprint != claim.fingerprint:
        raise KeyReused(
            f"{HEADER} {claim.key!r} was already used for a different request; "
            "use a new key for a new operation"
        )
    return int(row.status), row.body


def claim(conn: Connection, claim: Claim) -> None:
    """Claim the key: call first in the write's transaction (blocks behind a racing claim)."""
    conn.execute(
        idempotency_t.insert().values(
            principal=claim.principal,
            key=claim.key,
            fingerprint=claim.fingerprint,
            created_at=utcnow(),
        )
    )


def complete(conn: Connection, claim: Claim, status: int, body: Any) -> None:
    """Store the answer of the claimed request (in its transaction, or after its follow-ups)."""
    conn.execute(
        idempotency_t.update()
        .where(idempotency_t.c.principal == claim.principal, idempotency_t.c.key == claim.key)
        .values(status=status, body=body)
    )


def lost_race(exc: IntegrityError) -> bool:
    """True when the write failed because a concurrent request claimed the same key first."""
    diag = getattr(exc.orig, "diag", None)
    return getattr(diag, "constraint_name", None) == UNIQUE
