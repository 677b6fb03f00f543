"""Process settings, read from environment variables with the ``OPENPCC_`` prefix.

One flat namespace (``OPENPCC_DATABASE_URL``, ``OPENPCC_KAFKA_BOOTSTRAP``, ...). Each domain owns
the block of fields under its heading; every field has an embedded default so ``make run`` needs no
configuration. The README's configuration reference lists them all.
"""

from __future__ import annotations

from pydantic import BaseModel, Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class DiameterListener(BaseModel):
    """diam: one Diameter listener with its own identity (entries of OPENPCC_DIAMETER_LISTENERS)."""

    host: str = "0.0.0.0"
    port: int = Field(3868, ge=0, le=65535)
    origin_host: str
    origin_realm: str
    applications: list[str] = Field(default_factory=lambda: ["gx", "rx", "ro"])
    peers: str | None = None  # allowlist for this listener; None = OPENPCC_DIAMETER_PEERS


class Settings(BaseSettings):
    """All of OpenPCC's settings."""

    model_config = SettingsConfigDict(env_prefix="OPENPCC_", extra="ignore")

    # --- diam: Diameter node identity, listeners, peers ------------------------------------
    # Default single listener (used when diameter_listeners is empty).
    diameter_host: str = "0.0.0.0"
    diameter_port: int = Field(3868, ge=0, le=65535)
    diameter_origin_host: str = "openpcc.localdomain"
    diameter_origin_realm: str = "localdomain"
    diameter_applications: str = "gx,rx,ro"  # comma-separated: gx, rx, ro (= gy)
    # Several listeners, each its own identity: JSON list of DiameterListener objects.
    diameter_listeners: list[DiameterListener] = Field(default_factory=list)
    # Allowlist "host, host@realm, *@realm"; empty = loopback peers only, with a warning.
    diameter_peers: str = ""
    # Host-IP-Address in CEA/CER; empty = the local address of each connection.
    diameter_host_ip_addresses: str = ""
    diameter_vendor_id: int = Field(0, ge=0)
    diameter_watchdog_seconds: float = Field(30.0, gt=0)  # Tw (RFC 3539), jittered
    diameter_request_timeout_seconds: float = Field(5.0, gt=0)
    diameter_max_in_flight: int = Field(1024, ge=1)  # per connection, beyond it 3004 TOO_BUSY


    # --- database and provisioning (charging owns the ledger) ------------------------------
    # SQLite file (WAL, synchronous=FULL) by default; postgresql+psycopg://... in production.
    database_url: str = "sqlite:///var/openpcc.db"
    # YAML file seeding/updating plans, accounts, balances and subscribers at start-up
    # (idempotent); empty = none. `make run` points at examples/provisioning.yaml.
    provisioning: str = "examples/provisioning.yaml"

    # --- charging: OCS behaviour -----------------------------------------------------------

    # --- cdr: outbox, exporters, Kafka ------------------------------------------------------

    # --- policy: PCRF behaviour -------------------------------------------------------------
