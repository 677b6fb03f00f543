"""Rotating JSON-lines file sink: the embedded default when no Kafka is configured.

One CDR per line, in outbox order. The file being written is ``<prefix>-<UTC time>-<n>.jsonl.part``;
at rotation (size or age) it is fsynced and renamed to ``.jsonl``, so a collector only ever picks up
complete files (``*.jsonl``). Every batch is written and ``fsync``ed before ``send`` returns, hence
before its rows are marked sent: a crash loses nothing (at worst a batch is written again, with
the same ``cdrId``s). A ``.part`` left by a dead writer (no lock held on it) is completed at the
next start, cut back to its last whole line.
"""

from __future__ import annotations

import fcntl
import json
import os
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO

from charging.cdr.sink import Done, SinkError
from charging.cdr.store import OutboxRow

PART = ".part"


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _line(row: OutboxRow) -> bytes:
    payload = row.payload
    if "\n" in payload or "\r" in payload:  # pretty-printed JSON: make it one line
        payload = json.dumps(json.loads(payload), separators=(",", ":"), ensure_ascii=False)
    return payload.encode() + b"\n"


class JsonLinesSink:
    """Appends CDRs to size/time-rotated JSON-lines files under ``directory``."""

    name = "file"

    def __init__(
        self,
        directory: str | Path,
        rotate_bytes: int = 64 * 1024 * 1024,
        rotate_seconds: float = 3600,
        prefix: str = "cdr",
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.directory = Path(directory)
        self.rotate_bytes = rotate_bytes
        self.rotate_seconds = rotate_seconds
        self.prefix = prefix
        self._clock = clock
        self._file: BinaryIO | None = None
        self._path: Path | None = None
        self._opened_at = 0.0
        self._size = 0
        self.directory.mkdir(parents=True, exist_ok=True)
        self.recover()

    def recover(self) -> list[Path]:
        """Complete the ``.part`` files of writers that are gone; returns the completed files."""
        completed = []
        for part in sorted(self.directory.glob(f"{self.prefix}-*.jsonl{PART}")):
            if part == self._path:
                continue
            with open(part, "r+b") as handle:
                try:
                    fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    continue  # a live writer owns it
                data = handle.read()
                whole = data.rfind(b"\n") + 1
                if whole < len(data):
                    handle.truncate(whole)  # a line torn by the crash; its batch is unsent
                handle.flush()
                os.fsync(handle.fileno())
            final = part.with_name(part.name[: -len(PART)])
            os.replace(part, final)
            completed.append(final)
        if completed:
            _fsync_dir(self.directory)
        return completed

    def _open(self) -> BinaryIO:
        now = self._clock()
        stamp = datetime.fromtimestamp(now, UTC).strftime("%Y%m%dT%H%M%SZ")
        for n in range(1_000_000):
            path = self.directory / f"{self.prefix}-{stamp}-{os.getpid()}-{n:04d}.jsonl{PART}"
            if path.exists() or path.with_name(path.name[: -len(PART)]).exists():
                continue
            try:
                handle = open(path, "xb")  # noqa: SIM115 - kept open across batches
            except FileExistsError:
                continue
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            _fsync_dir(self.directory)
            self._file, self._path, self._opened_at, self._size = handle, path, now, 0
            return handle
        raise SinkError(f"no free file name in {self.directory}")

    def send(self, rows: Sequence[OutboxRow]) -> Done:
        if not rows:
            return Done()
        try:
            if self._file is not None and self._due():
                self.rotate()
            handle = self._file or self._open()
            data = b"".join(_line(row) for row in rows)
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
            self._size += len(data)
            if self._size >= self.rotate_bytes:
                self.rotate()
        except OSError as exc:
            raise SinkError(f"cannot write CDR file in {self.directory}: {exc}") from exc
        return Done()

    def _due(self) -> bool:
        return (
            self._size >= self.rotate_bytes
            or self._clock() - self._opened_at >= self.rotate_seconds
        )

    def rotate(self) -> Path | None:
        """Complete the current file (fsync, rename to ``.jsonl``); returns its final path."""
        handle, path = self._file, self._path
        if handle is None or path is None:
            return None
        handle.flush()
        os.fsync(handle.fileno())
        final = path.with_name(path.name[: -len(PART)])
        os.replace(path, final)
        _fsync_dir(self.directory)
        handle.close()  # releases the lock after the rename: recover() never sees it half-done
        self._file = self._path = None
        return final

    def maintain(self) -> None:
        if self._file is not None and self._due():
            self.rotate()

    def close(self) -> None:
        self.rotate()
