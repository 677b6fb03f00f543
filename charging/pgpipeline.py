"""Statements sent straight through libpq's pipeline mode: every Bind/Execute and a Sync in one
write, then every result in one read (PostgreSQL protocol §55.2.4, "Pipelining").

psycopg's own pipeline flushes and polls the socket on every ``execute`` (~35 µs of C and
kernel time) and runs ~60 µs of Python per statement (query conversion, list dumpers, cursor
and result bookkeeping): for the 8-10 statements of an OCS batch that was ~0.7 ms of CPU, most
of a small batch's cost. Here each statement is prepared once per connection, in the same round
trip as a description of its parameters, whose types then pick the binary encoding of the
values (charging.pgarrays); rows are loaded by psycopg's own Transformer, so they come back as
a psycopg cursor would return them.

The statements run in the connection's transaction (begun, like any execute, when there is
none; ``BEGIN`` is sent with them when psycopg has not sent it yet) and, with ``commit``, end
it with ``COMMIT`` in the same round trip.
"""

from __future__ import annotations

import itertools
import re
import select
import weakref
from collections.abc import Callable, Sequence
from typing import Any

import psycopg
from psycopg import pq
from psycopg.adapt import Transformer
from sqlalchemy.engine import Connection

from charging import pgarrays

_Encoder = Callable[[Any], bytes]
_PLACEHOLDER = re.compile(r"%\((\w+)\)s|%[sb]|%%")
_NUMBERS = itertools.count(1)  # prepared statements' names
#: Per server session (psycopg connection): the encoders of each statement prepared there.
_PREPARED: weakref.WeakKeyDictionary[psycopg.Connection[Any], dict[bytes, list[_Encoder]]] = (
    weakref.WeakKeyDictionary()
)

_OK = (pq.ExecStatus.TUPLES_OK, pq.ExecStatus.COMMAND_OK)
_SYNC = pq.ExecStatus.PIPELINE_SYNC
_IDLE = pq.TransactionStatus.IDLE


class Statement:
    """A statement in PostgreSQL's ``$n`` form, made from psycopg's (``%(name)s`` or ``%s``/``%b``)
    once per text; ``args`` orders a call's parameters into ``$1…$n``."""

    __slots__ = ("_names", "name", "sql")

    def __init__(self, text: str) -> None:
        names: list[str] = []
        positional = 0

        def number(match: re.Match[str]) -> str:
            nonlocal positional
            if match.group(0) == "%%":
                return "%"
            name = match.group(1)
            if name is None:
                positional += 1
                return f"${positional}"
            if name not in names:
                names.append(name)
            return f"${names.index(name) + 1}"

        self.sql = _PLACEHOLDER.sub(number, text)
        if names and positional:
            raise ValueError("named and positional parameters mixed")
        self._names = tuple(names)
        self.name = f"openpcc_{next(_NUMBERS)}".encode()

    def args(self, params: Sequence[Any] | dict[str, Any]) -> Sequence[Any]:
        if isinstance(params, dict):
            return [params[name] for name in self._names]
        return params


_STATEMENTS: dict[str, Statement] = {}


def statement(text: str) -> Statement:
    """The :class:`Statement` of psycopg-style SQL ``text`` (made once)."""
    found = _STATEMENTS.get(text)
    if found is None:
        found = _STATEMENTS[text] = Statement(text)
    return found


class StatementsLost(psycopg.OperationalError):
    """The session's prepared statements were deallocated in a transaction that had done work
    before (psycopg sends ``DEALLOCATE ALL`` on a rollback, or after a DROP or ALTER, once it
    has prepared statements of its own): roll it back and run it again; they are prepared
    afresh."""


def run(
    conn: Connection,
    calls: Sequence[tuple[Statement, Sequence[Any] | dict[str, Any]]],
    *,
    commit: bool = False,
) -> list[list[tuple[Any, ...]]]:
    """Run ``calls`` (statement, parameters) in order in one round trip and return each one's
    rows; with ``commit``, commit the transaction in the same round trip. A failed statement
    raises its psycopg error once the round trip is over; the later ones did not run and the
    transaction is left aborted, for the caller to roll back."""
    if not conn.in_transaction():
        conn.begin()  # as SQLAlchemy's autobegin on execute: its commit or rollback ends ours
    raw: psycopg.Connection[Any] = conn.connection.driver_connection
    with raw.lock:
        prepared = _PREPARED.setdefault(raw, {})
        begin = raw.pgconn.transaction_status == _IDLE and not raw.autocommit
        if begin and not calls:
            return []  # nothing to run, nothing to commit
        try:
            return _run(raw, prepared, calls, begin, commit)
        except psycopg.errors.InvalidSqlStatementName:
            prepared.clear()
            if not begin:
                raise StatementsLost("prepared statements deallocated mid-transaction") from None
        # The transaction held this round trip's work only, which failed: run it afresh.
        _rollback(raw.pgconn)
        return _run(raw, prepared, calls, begin, commit)


def _run(
    raw: psycopg.Connection[Any],
    prepared: dict[bytes, list[_Encoder]],
    calls: Sequence[tuple[Statement, Sequence[Any] | dict[str, Any]]],
    begin: bool,
    commit: bool,
) -> list[list[tuple[Any, ...]]]:
    missing = {s.name: s for s, _ in calls if s.name not in prepared}
    if missing:
        _prepare(raw, list(missing.values()), prepared)
    pgconn = raw.pgconn
    pgconn.enter_pipeline_mode()
    try:
        if begin:
            pgconn.send_query_params(b"BEGIN", None)
        for stmt, params in calls:
            values = [
                None if v is None else encode(v)
                for encode, v in zip(prepared[stmt.name], stmt.args(params), strict=True)
            ]
            pgconn.send_query_prepared(stmt.name, values, [1] * len(values), 1)
        if commit:
            pgconn.send_query_params(b"COMMIT", None)
        results = _exchange(pgconn)
    finally:
        pgconn.exit_pipeline_mode()
    _raise_first_error(raw, results)
    transformer = Transformer(raw)
    rows = []
    for result in results[begin : begin + len(calls)]:  # not BEGIN's nor COMMIT's
        transformer.set_pgresult(result)
        rows.append(transformer.load_rows(0, result.ntuples, tuple))
    return rows


def _rollback(pgconn: pq.abc.PGconn) -> None:
    pgconn.enter_pipeline_mode()
    try:
        pgconn.send_query_params(b"ROLLBACK", None)
        _exchange(pgconn)
    finally:
        pgconn.exit_pipeline_mode()


def forget_prepared(conn: Connection) -> None:
    """Call after ``DEALLOCATE ALL`` on ``conn``: its statements are prepared again on next use."""
    _PREPARED.pop(conn.connection.driver_connection, None)


def _prepare(
    raw: psycopg.Connection[Any],
    statements: list[Statement],
    prepared: dict[bytes, list[_Encoder]],
) -> None:
    """Prepare ``statements`` and learn the types of their parameters, in one round trip. Each
    is closed first (a no-op when it does not exist): after a loss the session may still hold
    some of them."""
    pgconn = raw.pgconn
    pgconn.enter_pipeline_mode()
    try:
        for stmt in statements:
            pgconn.send_close_prepared(stmt.name)
            pgconn.send_prepare(stmt.name, stmt.sql.encode())
            pgconn.send_describe_prepared(stmt.name)
        results = _exchange(pgconn)
    finally:
        pgconn.exit_pipeline_mode()
    # Prepared statements outlive transactions: note those made before any error.
    for stmt, closed, made, described in zip(
        statements, results[::3], results[1::3], results[2::3], strict=False
    ):
        if closed.status in _OK and made.status in _OK and described.status in _OK:
            prepared[stmt.name] = [
                pgarrays.parameter_encoder(described.param_type(i))
                for i in range(described.nparams)
            ]
    _raise_first_error(raw, results)


def _raise_first_error(raw: psycopg.Connection[Any], results: list[pq.abc.PGresult]) -> None:
    for result in results:
        if result.status not in _OK:
            raise psycopg.errors.error_from_result(result, encoding=raw.info.encoding)


def _exchange(pgconn: pq.abc.PGconn) -> list[pq.abc.PGresult]:
    """Sync, send what is queued and read every result up to the Sync: one per statement up
    to the first error, none for the statements the server then skipped."""
    pgconn.pipeline_sync()
    fileno = pgconn.socket
    poller = select.poll()  # its waits release the GIL
    poller.register(fileno, select.POLLIN | select.POLLOUT)
    while pgconn.flush():  # the socket's buffer is full: wait for room (or for input)
        poller.poll()
        pgconn.consume_input()
    poller.modify(fileno, select.POLLIN)
    results: list[pq.abc.PGresult] = []
    while True:
        if pgconn.is_busy():
            poller.poll()
            pgconn.consume_input()
            continue
        result = pgconn.get_result()
        if result is None:  # the end of one statement's results
            continue
        if result.status == _SYNC:
            return results
        if result.status != pq.ExecStatus.PIPELINE_ABORTED:
            results.append(result)
