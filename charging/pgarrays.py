"""PostgreSQL array parameters encoded once, in the binary wire format, by a codec chosen per
column when a bulk statement is compiled.

psycopg's list dumper walks every list in Python to pick an element type and then dumps each
value through a per-value dumper; for the column arrays of a batch's writes that was about a
quarter of the OCS writer's CPU. Here each element type has one encoder of a whole list
(struct and ``bytes.join`` over C iterators, no Python call per value where avoidable); the
bytes go to the server as a binary parameter whose type the statement's cast names
(``%b::BIGINT[]``). Format: PostgreSQL ``array_recv`` (src/backend/utils/adt/arrayfuncs.c):
ndim, has-null flag, element type OID, then length and lower bound per dimension, then each
element as a 4-byte length (-1 for NULL) and its ``*_recv`` bytes.
"""

from __future__ import annotations

import json
import struct
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from itertools import chain, repeat
from typing import Any

import psycopg
import sqlalchemy as sa
from psycopg.adapt import Dumper
from psycopg.pq import Format

_HEADER = struct.Struct(">iiIii")
_LEN = struct.Struct(">i")
_INT8 = struct.Struct(">iq")
_NULL = _LEN.pack(-1)
_PG_EPOCH = datetime(2000, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)
_TRUE, _FALSE = _LEN.pack(1) + b"\x01", _LEN.pack(1) + b"\x00"


class PgArray(bytes):
    """An array parameter already in PostgreSQL's binary format."""

    __slots__ = ()


class _PgArrayDumper(Dumper):
    format = Format.BINARY  # oid 0: the server takes the type from the statement's cast

    def dump(self, obj: Any) -> bytes:
        return obj  # type: ignore[no-any-return]


def register(connection: psycopg.Connection[Any]) -> None:
    """Let ``connection`` send :class:`PgArray` parameters."""
    connection.adapters.register_dumper(PgArray, _PgArrayDumper)


def _int8s(values: Sequence[int]) -> bytes:
    n = len(values)
    fmt = _INT8_FORMATS.get(n)
    if fmt is None:
        fmt = _INT8_FORMATS[n] = struct.Struct(">" + "iq" * n)
    return fmt.pack(*chain.from_iterable(zip(repeat(8, n), values, strict=True)))


_INT8_FORMATS: dict[int, struct.Struct] = {}


def _sized(data: Iterable[bytes]) -> bytes:
    """Each element preceded by its length."""
    items = list(data)
    return b"".join(chain.from_iterable(zip(map(_LEN.pack, map(len, items)), items, strict=True)))


def _texts(values: Sequence[str]) -> bytes:
    return _sized(map(str.encode, values))


def _byteas(values: Sequence[bytes]) -> bytes:
    return _sized(values)


def _bools(values: Sequence[bool]) -> bytes:
    return b"".join(_TRUE if v else _FALSE for v in values)


def _microseconds(value: datetime) -> int:
    if value.tzinfo is None:
        raise ValueError("naive datetime given to a UTC column")
    return (value - _PG_EPOCH) // _MICROSECOND


def _timestamptz(value: datetime) -> bytes:
    return _INT8.pack(8, _microseconds(value))


def _timestamptzs(values: Sequence[datetime]) -> bytes:
    # A batch's rows mostly share one timestamp (the transaction's now): encode each once.
    encoded = {v: _timestamptz(v) for v in set(values)}
    return b"".join(map(encoded.__getitem__, values))


def _jsons(values: Sequence[Any]) -> bytes:
    return _texts([json.dumps(v) for v in values])


@dataclass(frozen=True, slots=True)
class Codec:
    """How one column's values become an array parameter: the SQL array type to cast to,
    its element OID and the encoder of a list of (non-NULL) elements."""

    sql_type: str
    oid: int
    encode: Callable[[Sequence[Any]], bytes]

    def array(self, values: Sequence[Any]) -> PgArray:
        has_null = None in values
        if not has_null:
            body = self.encode(values)
        else:
            encode = self.encode
            body = b"".join(_NULL if v is None else encode((v,)) for v in values)
        return PgArray(_HEADER.pack(1, has_null, self.oid, len(values), 1) + body)


_BIGINT = Codec("BIGINT", 20, _int8s)
_TEXT = Codec("TEXT", 25, _texts)
_BYTEA = Codec("BYTEA", 17, _byteas)
_BOOLEAN = Codec("BOOLEAN", 16, _bools)
_TIMESTAMPTZ = Codec("TIMESTAMPTZ", 1184, _timestamptzs)
#: JSON goes as text; the statement casts each value (``::JSON``).
JSON_TEXT = Codec("TEXT", 25, _jsons)


def codec(column: sa.ColumnElement[Any]) -> Codec:
    """The codec of a column (integers travel as BIGINT, strings as TEXT; the INSERT or UPDATE
    assigns them to the column's own type)."""
    kind = column.type
    if isinstance(kind, sa.JSON):
        return JSON_TEXT
    impl = kind.impl if isinstance(kind, sa.TypeDecorator) else kind
    python = impl.python_type
    if python is bool:
        return _BOOLEAN
    if python is int:
        return _BIGINT
    if python is str:
        return _TEXT
    if python is bytes:
        return _BYTEA
    if python is datetime and getattr(impl, "timezone", False):
        return _TIMESTAMPTZ
    raise TypeError(f"no array codec for column {column} of type {kind!r}")


_VARCHAR = Codec("VARCHAR", 1043, _texts)
_Q = struct.Struct(">q")
#: Binary encoders of a statement's parameters by the type OID the server gave it
#: (pg_type.dat): arrays of the codecs above, and the scalars the charging statements use.
_PARAMETERS: dict[int, Callable[[Any], bytes]] = {
    1016: _BIGINT.array, 1009: _TEXT.array, 1015: _VARCHAR.array, 1000: _BOOLEAN.array,
    1001: _BYTEA.array,
    1185: _TIMESTAMPTZ.array, 20: _Q.pack, 25: str.encode, 1043: str.encode,
    16: lambda v: b"\x01" if v else b"\x00", 17: bytes,
    1184: lambda v: _Q.pack(_microseconds(v)),
}  # fmt: skip


def parameter_encoder(oid: int) -> Callable[[Any], bytes]:
    """The binary encoder of a statement parameter of type ``oid``; a :class:`PgArray` value
    goes as it is (its statement casts it to its type)."""
    encode = _PARAMETERS.get(oid)
    if encode is None:
        raise TypeError(f"no binary encoder for parameters of type OID {oid}")

    def encoded(value: Any) -> bytes:
        return value if isinstance(value, PgArray) else encode(value)

    return encoded
