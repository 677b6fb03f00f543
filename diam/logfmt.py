"""One-line ``key=value`` log records for peer events and failed requests."""

from __future__ import annotations

import json
import logging

logger = logging.getLogger("openpcc.diam")


def kv(event: str, **fields: object) -> str:
    """``event=peer_open origin_host=pgw.example.net reason="..."``; ``None`` fields are dropped."""
    parts = [f"event={event}"]
    for key, value in fields.items():
        if value is None:
            continue
        text = str(value)
        if not text or any(c in text for c in ' "=\\') or not text.isprintable():
            text = json.dumps(text, ensure_ascii=False)
        parts.append(f"{key}={text}")
    return " ".join(parts)


def log(level: int, event: str, **fields: object) -> None:
    if logger.isEnabledFor(level):
        logger.log(level, kv(event, **fields))


def address(addr: tuple[str, int] | None) -> str | None:
    """``host:port`` of a socket address, for log fields."""
    return f"{addr[0]}:{addr[1]}" if addr else None
