"""Process settings, read from environment variables with the ``OPENPCC_`` prefix.

One flat namespace (``OPENPCC_DATABASE_URL``, ``OPENPCC_KAFKA_BOOTSTRAP``, ...). Each domain owns
the block of fields under its heading; every field has an embedded default so ``make run`` needs no
configuration. The README's configuration reference lists them all.
"""

from __future__ import annotations

from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """All of OpenPCC's settings."""

    model_config = SettingsConfigDict(env_prefix="OPENPCC_", extra="ignore")

    # --- diam: Diameter node identity, listeners, peers ------------------------------------

    # --- database and provisioning (charging owns the ledger) ------------------------------

    # --- charging: OCS behaviour -----------------------------------------------------------

    # --- cdr: outbox, exporters, Kafka ------------------------------------------------------

    # --- policy: PCRF behaviour -------------------------------------------------------------
