"""Process settings: environment variables with the ``OPENPCC_`` prefix (nested with ``__``).

Each domain owns one section; ``openpcc`` wires them. Every field has an embedded default so
``make run`` needs no configuration.
"""

from __future__ import annotations

from pydantic import BaseModel
from pydantic_settings import BaseSettings, SettingsConfigDict


class DiameterSettings(BaseModel):
    """Diameter node identity, listeners and peers (owned by ``diam``)."""


class DatabaseSettings(BaseModel):
    """Ledger and session store (owned by ``charging``)."""


class ChargingSettings(BaseModel):
    """OCS behaviour (owned by ``charging``)."""


class CdrSettings(BaseModel):
    """CDR outbox and exporters (owned by ``charging``'s CDR pipeline)."""


class PolicySettings(BaseModel):
    """PCRF behaviour (owned by ``policy``)."""


class Settings(BaseSettings):
    """All of OpenPCC's settings."""

    model_config = SettingsConfigDict(
        env_prefix="OPENPCC_", env_nested_delimiter="__", extra="ignore"
    )

    diameter: DiameterSettings = DiameterSettings()
    database: DatabaseSettings = DatabaseSettings()
    charging: ChargingSettings = ChargingSettings()
    cdr: CdrSettings = CdrSettings()
    policy: PolicySettings = PolicySettings()
