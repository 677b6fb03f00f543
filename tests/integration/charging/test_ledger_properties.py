"""Property: whatever sequence of ledger operations runs, tracked (in-memory, compare-and-swap)
or untracked (one conditional UPDATE each), the journal replays to every balance and no balance
ever goes below -credit_limit."""

from __future__ import annotations

import itertools
from pathlib import Path

import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from charging.ledger import Cause, Ledger
from charging.models import Account, Balance, JournalEntry, utcnow
from openpcc.database import create_engine, upgrade

accounts_t, balances_t, journal_t = Account.__table__, Balance.__table__, JournalEntry.__table__
COUNTER = itertools.count()

operation = st.tuples(
    st.sampled_from(["reserve", "settle", "debit", "credit"]),
    st.integers(0, 2),  # which balance
    st.integers(0, 700),  # amount
    st.integers(0, 900),  # used (settle)
)


def test_any_operation_sequence_keeps_conservation_and_credit(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite:///{tmp_path / 'p.db'}")
    upgrade(engine)

    @settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(
        st.lists(operation, max_size=25),
        st.booleans(),
        st.lists(st.integers(0, 300), min_size=3, max_size=3),
    )
    def check(ops: list[tuple[str, int, int, int]], tracked: bool, limits: list[int]) -> None:
        n = next(COUNTER)
        with engine.begin() as conn:
            account = conn.execute(
                accounts_t.insert().values(name=f"p{n}", currency="EUR").returning(accounts_t.c.id)
            ).scalar_one()
            ids = [
                conn.execute(
                    balances_t.insert()
                    .values(account_id=account, name=f"b{i}", kind="monetary", unit="money",
                            credit_limit=limits[i])
                    .returning(balances_t.c.id)
                ).scalar_one()
                for i in range(3)
            ]  # fmt: skip
            ledger = Ledger(conn, utcnow())
            if tracked:
                for b in ids:
                    ledger.track(b, account, 0, 0, limits[ids.index(b)])
            held = {b: 0 for b in ids}
            for kind, which, amount, used in ops:
                b = ids[which]
                cause = Cause(kind)
                if kind == "reserve" and ledger.reserve(b, amount, cause):
                    held[b] += amount
                elif kind == "settle" and held[b]:
                    ledger.settle(b, held[b], used, cause)
                    held[b] = 0
                elif kind == "debit":
                    ledger.debit(b, amount, cause)
                elif kind == "credit":
                    ledger.credit(b, amount, cause)
            ledger.flush()
        with engine.connect() as conn:
            for b, limit in zip(ids, limits, strict=True):
                amount, reserved = conn.execute(
                    sa.select(balances_t.c.amount, balances_t.c.reserved).where(
                        balances_t.c.id == b
                    )
                ).one()
                replay = conn.execute(
                    sa.select(
                        sa.func.coalesce(sa.func.sum(journal_t.c.delta_amount), 0),
                        sa.func.coalesce(sa.func.sum(journal_t.c.delta_reserved), 0),
                    ).where(journal_t.c.balance_id == b)
                ).one()
                assert (int(replay[0]), int(replay[1])) == (amount, reserved)
                assert reserved == held[b] >= 0
                assert amount - reserved >= -limit

    try:
        check()
    finally:
        engine.dispose()
