"""Ledger operations, provisioning and `openpcc ledger verify` on SQLite and PostgreSQL."""

from __future__ import annotations

import subprocess
import sys
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from charging.accounts import top_up
from charging.ledger import Cause, Ledger
from charging.models import Balance, JournalEntry, SubscriberIdentity, utcnow
from charging.provisioning import apply, load_file
from charging.verify import verify
from openpcc.database import create_engine, upgrade
from schemas.provisioning import ProvisioningFile

ROOT = Path(__file__).resolve().parents[3]
SPEC = ProvisioningFile.model_validate(
    {
        "plans": [{"name": "basic", "tariff": "t1"}],
        "accounts": [
            {
                "name": "acct",
                "currency": "EUR",
                "balances": [
                    {"name": "main", "amount": 1000},
                    {"name": "overdraft", "amount": 0, "credit_limit": 500, "priority": 10},
                    {
                        "name": "data",
                        "kind": "unit",
                        "unit": "octets",
                        "bundle": "data-1g",
                        "amount": 1 << 30,
                        "valid_until": "2030-01-01T00:00:00Z",
                    },
                ],
            }
        ],
        "subscribers": [
            {
                "name": "alice",
                "account": "acct",
                "plan": "basic",
                "imsi": ["001010000000001"],
                "msisdn": ["+49 170 0000001"],
                "sip_uris": ["sip:Alice@IMS.example.org"],
            }
        ],
    }
)


@pytest.fixture
def engine(database_url: str):
    engine = create_engine(database_url)
    upgrade(engine)
    apply(engine, SPEC)
    yield engine
    engine.dispose()


def balance_id(engine: sa.Engine, name: str) -> int:
    with engine.connect() as conn:
        b = Balance.__table__
        return conn.execute(sa.select(b.c.id).where(b.c.name == name)).scalar_one()


def amounts(engine: sa.Engine, name: str) -> tuple[int, int]:
    with engine.connect() as conn:
        b = Balance.__table__
        row = conn.execute(sa.select(b.c.amount, b.c.reserved).where(b.c.name == name)).one()
        return int(row.amount), int(row.reserved)


def test_provisioning_is_idempotent_and_keeps_usage(engine: sa.Engine) -> None:
    main = balance_id(engine, "main")
    with engine.begin() as conn:
        ledger = Ledger(conn, utcnow())
        assert ledger.debit(main, 300, Cause("debit", "s1", 0))
        ledger.flush()
    report = apply(engine, SPEC)
    assert report.created == {} and report.updated == {}
    assert amounts(engine, "main") == (700, 0)
    with engine.connect() as conn:
        j = JournalEntry.__table__
        causes = conn.execute(sa.select(j.c.cause).where(j.c.balance_id == main)).scalars().all()
        ident = SubscriberIdentity.__table__
        values = set(conn.execute(sa.select(ident.c.kind, ident.c.value)).all())
    assert causes == ["provision", "debit"]
    assert values == {
        ("imsi", "001010000000001"),
        ("msisdn", "491700000001"),
        ("sip_uri", "sip:Alice@ims.example.org"),
    }
    assert verify(engine) == []


def test_reserve_settle_release_and_credit_limit(engine: sa.Engine) -> None:
    main, overdraft = balance_id(engine, "main"), balance_id(engine, "overdraft")
    with engine.begin() as conn:
        ledger = Ledger(conn, utcnow())
        assert ledger.reserve(main, 600, Cause("reserve", "s1", 0))
        assert not ledger.reserve(main, 401, Cause("reserve", "s2", 0))
        assert ledger.reserve_up_to(main, 900, Cause("reserve", "s2", 0)) == 400
        assert ledger.settle(main, 600, 250, Cause("debit", "s1", 1)) == 250
        ledger.release(main, 400, Cause("release", "s2", 1))
        # The overdraft bucket may go to -credit_limit and not one cent further.
        assert ledger.debit(overdraft, 500, Cause("debit", "s3", 0))
        assert not ledger.debit(overdraft, 1, Cause("debit", "s3", 1))
        ledger.credit(overdraft, 200, Cause("topup"))
        ledger.flush()
    # Reservations in the database are what verify compares with; here none are left.
    assert amounts(engine, "main") == (750, 0)
    assert amounts(engine, "overdraft") == (-300, 0)
    assert verify(engine) == []


def test_over_usage_is_capped_by_what_the_balance_covers(engine: sa.Engine) -> None:
    main = balance_id(engine, "main")
    with engine.begin() as conn:
        ledger = Ledger(conn, utcnow())
        assert ledger.reserve(main, 800, Cause("reserve", "s1", 0))
        assert ledger.settle(main, 800, 5000, Cause("debit", "s1", 1)) == 1000
        ledger.flush()
    assert amounts(engine, "main") == (0, 0)
    assert verify(engine) == []


def test_expiry_keeps_held_credit(engine: sa.Engine) -> None:
    data = balance_id(engine, "data")
    with engine.begin() as conn:
        ledger = Ledger(conn, utcnow())
        assert ledger.reserve(data, 1000, Cause("reserve", "s1", 0))
        ledger.flush()
    with engine.begin() as conn:
        ledger = Ledger(conn, datetime(2030, 1, 1, tzinfo=UTC) + timedelta(seconds=1))
        assert ledger.expire_due() == 1
        assert ledger.expire_due() == 0
        ledger.flush()
    assert amounts(engine, "data") == (1000, 1000)


def test_concurrent_reservations_never_overspend(engine: sa.Engine) -> None:
    """Eight connections race to hold 7 units each from 1000: exactly 142 holds succeed."""
    main = balance_id(engine, "main")
    wins: list[int] = []
    lock = threading.Lock()

    def worker(n: int) -> None:
        for i in range(40):
            with engine.begin() as conn:
                ledger = Ledger(conn, utcnow())
                ok = ledger.reserve(main, 7, Cause("reserve", f"w{n}", i))
                # Settle straight away, as a debit of the whole hold.
                if ok:
                    ledger.settle(main, 7, 7, Cause("debit", f"w{n}", i))
                ledger.flush()
            if ok:
                with lock:
                    wins.append(1)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(wins) == 1000 // 7
    assert amounts(engine, "main") == (1000 % 7, 0)
    assert verify(engine) == []


def test_verify_cli_flags_a_tampered_balance(engine: sa.Engine, database_url: str) -> None:
    result = top_up(engine, "acct", 250, reference="voucher-1")
    assert result.amount == 1250 and result.live_sessions == ()
    command = [sys.executable, "-m", "openpcc.cli", "ledger", "--database-url", database_url]
    ok = subprocess.run([*command, "verify"], capture_output=True, text=True, cwd=ROOT)
    assert ok.returncode == 0, ok.stderr
    with engine.begin() as conn:
        b = Balance.__table__
        conn.execute(b.update().where(b.c.name == "main").values(amount=b.c.amount + 1))
    bad = subprocess.run([*command, "verify"], capture_output=True, text=True, cwd=ROOT)
    assert bad.returncode == 1
    assert "conservation: balance" in bad.stderr and "(main)" in bad.stderr


def test_verify_flags_journal_rows_and_reservations_pointing_nowhere(engine: sa.Engine) -> None:
    """The journal and reservations carry no foreign keys (charging_0004): verify checks them."""
    from charging.models import Reservation

    main = balance_id(engine, "main")
    j, r = JournalEntry.__table__, Reservation.__table__
    with engine.begin() as conn:
        account = conn.execute(
            sa.select(Balance.__table__.c.account_id).where(Balance.__table__.c.id == main)
        ).scalar_one()
        zero = {"cause": "adjust", "delta_amount": 0, "delta_reserved": 0, "amount_after": 0,
                "reserved_after": 0, "created_at": utcnow()}  # fmt: skip
        conn.execute(
            j.insert(),
            [
                {**zero, "balance_id": main, "account_id": account + 99},
                {**zero, "balance_id": main + 99, "account_id": account},
            ],
        )
    found = [str(b) for b in verify(engine)]
    assert len(found) == 2 and all(f.startswith("references: journal row") for f in found)
    assert f"logged for account {account + 99}" in found[0] and "(account missing)" in found[1]
    with engine.begin() as conn:
        conn.execute(j.delete().where(j.c.delta_amount == 0, j.c.cause == "adjust"))
        conn.execute(r.insert().values(
            ro_session_id=10**6, service_key="rg1/si", balance_id=main + 99, amount=0,
            granted_units=0, unit="seconds", granted_at=utcnow(), expires_at=utcnow(),
        ))  # fmt: skip
    found = [str(b) for b in verify(engine)]
    assert "references: reservation" in " ".join(found) and "is missing" in found[-1]
    assert any("session 1000000 is missing" in f for f in found)


def test_example_provisioning_file_is_valid() -> None:
    spec = load_file(ROOT / "examples" / "provisioning.yaml")
    assert spec.subscribers and spec.plans


def test_tracked_balances_are_written_by_compare_and_swap(engine: sa.Engine) -> None:
    """A balance read under the account lock changes in memory; flush writes it only if the
    row is still what was read, else LedgerConflict rolls the transaction back."""
    from charging.ledger import LedgerConflict

    main = balance_id(engine, "main")
    b = Balance.__table__
    with engine.begin() as conn:
        ledger = Ledger(conn, utcnow())
        row = conn.execute(sa.select(b).where(b.c.id == main)).one()
        ledger.track(main, row.account_id, row.amount, row.reserved, row.credit_limit)
        assert ledger.reserve(main, 400, Cause("reserve", "s1", 0))
        assert not ledger.reserve(main, 601, Cause("reserve", "s2", 0))
        assert ledger.available(main) == 600
        ledger.flush()
    assert amounts(engine, "main") == (1000, 400)
    with pytest.raises(LedgerConflict), engine.begin() as conn:
        ledger = Ledger(conn, utcnow())
        row = conn.execute(sa.select(b).where(b.c.id == main)).one()
        ledger.track(main, row.account_id, row.amount, row.reserved, row.credit_limit)
        ledger.settle(main, 400, 100, Cause("debit", "s1", 1))
        # Someone moved the row behind the tracker's back (impossible under the lock).
        conn.execute(b.update().where(b.c.id == main).values(amount=b.c.amount - 1))
        ledger.flush()
    assert amounts(engine, "main") == (1000, 400)  # rolled back
    assert verify(engine) != []  # the reservation row was never written: flagged


def test_a_batch_flush_rolls_back_when_a_tracked_balance_moved(engine: sa.Engine) -> None:
    """The batch's writes go in one statement with the compare-and-swap, sent with the COMMIT
    on PostgreSQL; a moved balance fails the statement, so the whole transaction."""
    from charging.ledger import LedgerConflict
    from charging.unit_of_work import BatchContext

    main = balance_id(engine, "main")
    b = Balance.__table__
    before = amounts(engine, "main")
    with pytest.raises(LedgerConflict), engine.begin() as conn:
        now = utcnow()
        ledger = Ledger(conn, now)
        row = conn.execute(sa.select(b).where(b.c.id == main)).one()
        ledger.track(main, row.account_id, row.amount, row.reserved, row.credit_limit)
        assert ledger.reserve(main, 250, Cause("reserve", "s9", 0))
        conn.execute(b.update().where(b.c.id == main).values(amount=b.c.amount + 7))
        BatchContext(now).flush(conn, ledger)
    assert amounts(engine, "main") == before  # nothing of the batch (nor the +7) committed
    with engine.connect() as conn:
        journal = JournalEntry.__table__
        rows = conn.execute(sa.select(journal.c.id).where(journal.c.session_id == "s9")).all()
        assert rows == []


def test_provisioning_file_may_carry_other_domains_sections() -> None:
    spec = ProvisioningFile.model_validate(
        {"plans": [], "policy": {"profiles": [{"name": "gold"}]}}
    )
    assert spec.plans == [] and not hasattr(spec, "policy")


def test_credit_exhausted_for_the_pcrf(engine: sa.Engine) -> None:
    from charging.accounts import credit_exhausted

    assert credit_exhausted(engine, msisdn="491700000001") is False
    assert credit_exhausted(engine, imsi="001010000000001") is False
    assert credit_exhausted(engine, msisdn="4999") is None
    main, overdraft = balance_id(engine, "main"), balance_id(engine, "overdraft")
    with engine.begin() as conn:
        ledger = Ledger(conn, utcnow())
        assert ledger.debit(main, 1000, Cause("debit"))
        assert ledger.debit(overdraft, 500, Cause("debit"))
        ledger.flush()
    assert credit_exhausted(engine, msisdn="491700000001") is True


def test_nodes_provisioning_at_once_do_not_collide(database_url: str) -> None:
    engine = create_engine(database_url)
    upgrade(engine)
    errors: list[BaseException] = []

    def provision() -> None:
        try:
            apply(engine, SPEC)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=provision) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    try:
        assert errors == []
        assert amounts(engine, "main") == (1000, 0)
        assert verify(engine) == []
    finally:
        engine.dispose()
