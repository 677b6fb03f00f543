"""Which account and subscriber each Ro session belongs to, remembered between batches.

A session row never changes owner (nothing updates its ``account_id`` or ``subscriber_id``),
so a batch whose sessions are all known here locks their accounts without first asking the
database who owns them: one round trip fewer for updates and terminations. What is remembered
is a hint, never trusted: once the batch holds its locks and has read its sessions,
:meth:`SessionOwners.check` fails it (LedgerConflict: rolled back and re-run, asking the
database) if a session's account is not among those locked.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from charging.ledger import LedgerConflict

#: Sessions remembered at most (live sessions of one node fit many times over); beyond it the
#: memory starts afresh.
LIMIT = 200_000


class SessionOwners:
    """Session-Id -> (account id, subscriber id) of sessions seen by this process."""

    def __init__(self, limit: int = LIMIT) -> None:
        self.limit = limit
        self._known: dict[str, tuple[int, int]] = {}

    def split(self, session_ids: Iterable[str]) -> tuple[list[tuple[str, int, int]], list[str]]:
        """(session id, account, subscriber) of the known sessions, and the unknown ids."""
        known, unknown = [], []
        for sid in session_ids:
            owner = self._known.get(sid)
            if owner is None:
                unknown.append(sid)
            else:
                known.append((sid, *owner))
        return known, unknown

    def learn(self, rows: Iterable[Sequence[Any]]) -> None:
        """Remember (session id, account id, subscriber id) rows."""
        if len(self._known) > self.limit:
            self._known.clear()
        for sid, account, subscriber in rows:
            self._known[sid] = (int(account), int(subscriber))

    def forget(self, session_id: str) -> None:
        self._known.pop(session_id, None)

    def check(self, sessions: Iterable[dict[str, Any]], locked: Iterable[int]) -> None:
        """Raise LedgerConflict (forgetting the culprits) unless every session row's account is
        among the ``locked`` ones; else remember the rows' owners."""
        accounts = set(locked)
        rows = [(r["session_id"], r["account_id"], r["subscriber_id"]) for r in sessions]
        stray = [sid for sid, account, _ in rows if int(account) not in accounts]
        if stray:
            for sid in stray:
                self.forget(sid)
            raise LedgerConflict(f"session {stray[0]}: owner not locked (remembered wrongly)")
        self.learn(rows)
