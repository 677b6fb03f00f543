"""Process settings, read from environment variables with the ``OPENPCC_`` prefix.

One flat namespace (``OPENPCC_DATABASE_URL``, ``OPENPCC_KAFKA_BOOTSTRAP``, ...). Each domain owns
the block of fields under its heading; every field has an embedded default so ``make run`` needs no
configuration. The README's configuration reference lists them all.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class DiameterTls(BaseModel):
    """diam: Diameter over TLS from connection start (RFC 6733 §2.1, §13) for one listener and its
    connectors; the ``tls`` object of an OPENPCC_DIAMETER_LISTENERS entry."""

    cert: str = Field(min_length=1)  # PEM: our certificate, then its chain
    key: str = ""  # PEM private key; empty = inside ``cert``
    ca: str = ""  # PEM bundle peers' certificates must chain to; empty = the system's CAs
    require_client_cert: bool = True  # mutual TLS: refuse clients without a valid certificate
    min_version: Literal["1.2", "1.3"] = "1.2"
    ciphers: str = ""  # OpenSSL cipher string (TLS 1.2); empty = OpenSSL's defaults
    verify_origin_host: bool = True  # a peer certificate's DNS names must include Origin-Host


class DiameterListener(BaseModel):
    """diam: one Diameter listener with its own identity (entries of OPENPCC_DIAMETER_LISTENERS)."""

    host: str = "0.0.0.0"
    port: int = Field(3868, ge=0, le=65535)
    origin_host: str
    origin_realm: str
    applications: list[str] = Field(default_factory=lambda: ["gx", "rx", "ro"])
    peers: str | None = None  # allowlist for this listener; None = OPENPCC_DIAMETER_PEERS
    connect: list[str] = Field(default_factory=list)  # "host:port" peers to keep connected to
    tls: DiameterTls | None = None  # TLS on this listener and its connectors; None = plain


class ApiKeySetting(BaseModel):
    """api: one bearer key configured in settings (entries of OPENPCC_API_KEYS); only its SHA-256
    (hex) is given, e.g. from ``openpcc apikey hash``."""

    name: str = Field(min_length=1, max_length=64)
    role: Literal["read-only", "operator", "admin"]
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")


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
    # Several listeners, each its own identity: JSON list of DiameterListener objects; one may
    # carry "tls": {cert, key, ca, require_client_cert, min_version, ciphers, verify_origin_host}
    # (as the OPENPCC_DIAMETER_TLS_* settings; only "cert" is required), else it is plain TCP.
    diameter_listeners: list[DiameterListener] = Field(default_factory=list)
    # Allowlist "host, host@realm, *@realm"; empty = loopback peers only, with a warning.
    diameter_peers: str = ""
    # Host-IP-Address in CEA/CER; empty = the local address of each connection.
    diameter_host_ip_addresses: str = ""
    diameter_vendor_id: int = Field(0, ge=0)
    diameter_watchdog_seconds: float = Field(30.0, gt=0)  # Tw (RFC 3539), jittered
    diameter_request_timeout_seconds: float = Field(5.0, gt=0)
    diameter_max_in_flight: int = Field(1024, ge=1)  # per connection, beyond it 3004 TOO_BUSY
    # Peers the default listener's identity connects to itself ("host:port,..."), e.g. a DRA;
    # retried every Tc seconds while down (RFC 6733 §2.1).
    diameter_connect: str = ""
    diameter_tc_seconds: float = Field(30.0, gt=0)
    # Diameter over TLS (RFC 6733 §13) for the default listener and its connectors, from
    # connection start (serve it on a dedicated port, 5658 by convention); on when set:
    # PEM file with our certificate first, then its chain.
    diameter_tls_cert: str = ""
    diameter_tls_key: str = ""  # PEM private key; empty = inside OPENPCC_DIAMETER_TLS_CERT
    diameter_tls_ca: str = ""  # PEM bundle peer certificates must chain to; empty = system CAs
    # Mutual TLS: the listener refuses, at the handshake, clients without a valid certificate.
    diameter_tls_require_client_cert: bool = True
    diameter_tls_min_version: Literal["1.2", "1.3"] = "1.2"  # lowest TLS version accepted
    diameter_tls_ciphers: str = ""  # OpenSSL cipher string for TLS 1.2; empty = OpenSSL defaults
    # A peer certificate's DNS names (else its CN) must include the CER/CEA Origin-Host; else
    # CEA 3010 DIAMETER_UNKNOWN_PEER and close.
    diameter_tls_verify_origin_host: bool = True

    # --- database and provisioning (charging owns the ledger) ------------------------------
    # SQLite file (WAL, synchronous=FULL) by default; postgresql+psycopg://... in production.
    database_url: str = "sqlite:///var/openpcc.db"
    # YAML file seeding/updating plans, accounts, balances and subscribers at start-up
    # (idempotent); empty = none. `make run` points at examples/provisioning.yaml.
    provisioning: str = "examples/provisioning.yaml"

    # --- charging: OCS behaviour -----------------------------------------------------------
    # Tariff files (comma-separated); plans in the provisioning file name them by `name`.
    charging_tariffs: str = "examples/tariff.yaml"
    # nodeId written into CDRs; empty = the Diameter Origin-Host serving Ro.
    charging_node_id: str = ""
    charging_validity_time_seconds: int = Field(1800, ge=1)  # Validity-Time of every grant
    charging_sweep_grace_seconds: int = Field(60, ge=0)  # idle past Validity-Time + this: swept
    charging_sweep_interval_seconds: float = Field(30.0, gt=0)
    charging_quota_holding_time_seconds: int = Field(300, ge=0)  # on volume grants; 0 = omit
    charging_threshold_percent: int = Field(20, ge=0, le=100)  # Time/Volume-Quota-Threshold
    charging_default_seconds: int = Field(300, ge=1)  # grant for an RSU without amount
    charging_default_octets: int = Field(10_000_000, ge=1)
    charging_failure_handling: Literal["TERMINATE", "CONTINUE", "RETRY_AND_TERMINATE", ""] = (
        "TERMINATE"  # Credit-Control-Failure-Handling when the plan names none; "" = omit
    )
    # wait for more CCRs before committing (longer: less CPU per CCR, later answers)
    charging_group_commit_ms: float = Field(1.0, ge=0)
    charging_group_commit_max: int = Field(256, ge=1)  # CCRs per transaction at most
    charging_writers: int = Field(0, ge=0)  # concurrent batch transactions; 0 = auto

    # --- cdr: outbox, exporters, Kafka ------------------------------------------------------
    # Where exported CDRs go: "auto" = Kafka when kafka_bootstrap is set, else JSON-lines files.
    cdr_sink: Literal["auto", "kafka", "file", "off"] = "auto"
    kafka_bootstrap: str = ""  # "host:port,host:port"; OPENPCC_KAFKA_BOOTSTRAP
    kafka_topic: str = "openpcc.cdr"
    kafka_client_id: str = "openpcc-cdr"
    kafka_security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    kafka_sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] | None = None
    kafka_sasl_username: str | None = None
    kafka_sasl_password: SecretStr | None = None
    kafka_ssl_cafile: str | None = None
    kafka_ssl_certfile: str | None = None
    kafka_ssl_keyfile: str | None = None
    # A batch not acknowledged within this time: the producer is rebuilt, the rows stay unsent.
    kafka_flush_timeout_seconds: float = Field(15.0, gt=0)
    cdr_dir: str = "var/cdr"  # JSON-lines sink directory
    cdr_rotate_bytes: int = Field(64 * 1024 * 1024, ge=1024)  # rotate the file at this size
    cdr_rotate_seconds: int = Field(3600, ge=1)  # ... or at this age
    cdr_batch_size: int = Field(1000, ge=1, le=50_000)  # rows claimed and marked per round
    cdr_poll_seconds: float = Field(0.05, gt=0)  # idle poll interval of the exporter
    cdr_backoff_max_seconds: float = Field(30.0, gt=0)  # exporter back-off cap (sink down)
    cdr_claim_timeout_seconds: int = Field(120, ge=1)  # SQLite: a claim older than this is stale
    cdr_exporter_id: str = ""  # claim owner name; empty = "<hostname>-<pid>"
    # Partial records (TS 32.298): close an intermediate CDR every N seconds / octets (0 = off).
    cdr_partial_interval_seconds: int = Field(0, ge=0)
    cdr_partial_volume_octets: int = Field(0, ge=0)

    # --- ims: embedded IMS core (SIP P-CSCF/S-CSCF) and its PCRF/OCS peers --------------------
    ims_enabled: bool = False  # start the SIP listener with `openpcc run`
    ims_sip_host: str = "127.0.0.1"  # bound and advertised in Via/Record-Route
    ims_sip_port: int = Field(5060, ge=0, le=65535)  # UDP and TCP
    ims_domain: str = "ims.localdomain"
    ims_min_expires: int = Field(60, ge=1)  # REGISTER: shorter → 423 Interval Too Brief
    ims_max_expires: int = Field(7200, ge=1)
    ims_sip_t1_ms: int = Field(500, ge=1)  # RFC 3261 T1 / T2
    ims_sip_t2_ms: int = Field(4000, ge=1)
    ims_origin_host: str = "cscf.localdomain"  # Diameter identity of the P-CSCF/S-CSCF
    ims_origin_realm: str = "localdomain"
    ims_pcrf_host: str = "127.0.0.1"  # Rx peer; empty = no Rx
    ims_pcrf_port: int = Field(3868, ge=1, le=65535)
    ims_pcrf_realm: str = "localdomain"
    ims_ocs_host: str = "127.0.0.1"  # Ro peer; empty = no Ro
    ims_ocs_port: int = Field(3868, ge=1, le=65535)
    ims_ocs_realm: str = "localdomain"
    ims_rx_mandatory: bool = True  # a refused AAR rejects the call (else best effort)
    ims_rx_register_aar: bool = False  # Rx AAR for the SIP signalling path at REGISTER
    ims_ro_service_context: str = "32260@3gpp.org"
    ims_ro_requested_seconds: int = Field(60, ge=1)  # Requested-Service-Unit CC-Time
    ims_ro_buffer_seconds: float = Field(5.0, ge=0)  # CCR-U this long before the grant ends
    ims_diameter_timeout_seconds: float = Field(3.0, gt=0)

    # --- policy: PCRF behaviour -------------------------------------------------------------
    # YAML file whose `policy:` section (profiles, APN policies, subscribers) is applied at
    # start-up; empty = the `policy:` section of OPENPCC_PROVISIONING, when it has one.
    policy_provisioning: str = ""
    # Local time zone of time-of-day policy variants and of the fair-use month.
    policy_timezone: str = "UTC"
    policy_rar_timeout_seconds: float = Field(2.0, gt=0)  # Gx RAR → RAA (the AAA waits for it)
    policy_af_timeout_seconds: float = Field(2.0, gt=0)  # Rx RAR/ASR to the AF
    # ARP priority (1 = highest) of dedicated bearers derived from Rx (TS 29.213 §6.3).
    policy_voice_arp_priority: int = Field(2, ge=1, le=15)
    policy_video_arp_priority: int = Field(4, ge=1, le=15)
    policy_signalling_arp_priority: int = Field(1, ge=1, le=15)
    # Largest GBR (bit/s) one media component may get; 0 = no limit (else 5063 in the AAA).
    policy_max_gbr_ul: int = Field(0, ge=0)
    policy_max_gbr_dl: int = Field(0, ge=0)

    # --- api: management REST API, console, metrics ----------------------------------------
    api_enabled: bool = True  # serve the HTTP API, console and /metrics in the same process
    api_host: str = "127.0.0.1"  # 0.0.0.0 to reach it from other machines (docker-compose does)
    api_port: int = Field(8080, ge=0, le=65535)
    # Keys from settings (JSON list of {name, role, sha256}); more via `openpcc apikey create`.
    api_keys: list[ApiKeySetting] = Field(default_factory=list)
    api_key_cache_seconds: float = Field(5.0, ge=0)  # a revoked key stops working within this
    api_console: bool = True  # serve the operator console at /console
