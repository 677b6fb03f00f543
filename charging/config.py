"""OCS behaviour knobs (built by openpcc/ from Settings; every field has a sound default)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from charging.cdr.partial import PartialRecordPolicy
from rating.plan import Plan


@dataclass(frozen=True, slots=True)
class OcsConfig:
    """How the OCS grants, answers and sweeps."""

    #: Tariff plans by name (TariffPlan.name), as plans reference them.
    tariffs: Mapping[str, Plan] = field(default_factory=dict)
    #: nodeId of the CDRs this node writes.
    node_id: str = "openpcc"
    #: Validity-Time of every grant (RFC 4006 §8.33), seconds.
    validity_time: int = 1800
    #: Tx-like grace after Validity-Time before the sweep closes an idle session, seconds.
    sweep_grace: int = 60
    #: Quota-Holding-Time (TS 32.299 §7.2.155) on volume grants; 0 = omit.
    quota_holding_time: int = 300
    #: Time-/Volume-/Unit-Quota-Threshold as a percentage of the grant; 0 = omit.
    threshold_percent: int = 20
    #: Grant when a Requested-Service-Unit names no amount (RFC 4006 §8.18).
    default_seconds: int = 300
    default_octets: int = 10_000_000
    default_events: int = 1
    #: Credit-Control-Failure-Handling sent when the plan names none (RFC 4006 §8.14); "" = omit.
    failure_handling: str = "TERMINATE"
    #: Look-ahead for Tariff-Time-Change of volume/event grants, seconds.
    tariff_horizon: int = 86400
    #: When a long session's intermediate CDR is closed (TS 32.298 partial records); off.
    partial: PartialRecordPolicy = field(default_factory=PartialRecordPolicy)
