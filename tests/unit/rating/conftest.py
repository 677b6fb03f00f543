"""Fixtures for rating tests: a small hand-checkable plan and the shipped example plan."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from rating.loader import load_plan, load_plan_text
from rating.plan import Plan

ROOT = Path(__file__).resolve().parents[3]

# Round numbers so every expected amount below can be checked by hand. Rounding: up.
BASIC = """\
name: Test plan
currency: EUR
timezone: Europe/Berlin
rounding: up
holidays:
  de: ["12-25", 2026-04-03]
destinations:
  sets:
    DE_FIXED: ["+4930", "+4940"]
    DE_MOBILE: ["+49151", "+49170"]
    PREMIUM: ["+49900"]
    WORLD: ["*"]
time_bands:
  std:
    holidays: de
    bands:
      - {band: peak, days: [mon-fri], start: "08:00", end: "20:00"}
      - {band: offpeak, days: [mon-fri], start: "00:00", end: "08:00"}
      - {band: offpeak, days: [mon-fri], start: "20:00", end: "24:00"}
      - {band: offpeak, days: [sat, sun, hol], start: "00:00", end: "24:00"}
  night:
    bands:
      - {band: day, days: [all], start: "06:00", end: "24:00"}
      - {band: night, days: [all], start: "00:00", end: "06:00"}
versions:
  - effective_from: 2026-01-01
    voice:
      - &de_fixed
        destinations: DE_FIXED
        time_bands: std
        per_minute: {peak: "0.12", offpeak: "0.06"}
        connect_fee: "0.10"
        increments: 60/1
      - &de_mobile
        destinations: DE_MOBILE
        per_minute: "0.30"
        increments: 30/6
      - &premium
        destinations: PREMIUM
        per_minute: "0.60"
        minimum_charge: "1.00"
        increments: 60/60
      - destinations: WORLD
        per_minute: "1.50"
        increments: 1/1
    data: &data
      - rating_groups: 10
        unit: 1MB
        increment: 1KB
        tiers:
          - {up_to: 1GB, price: "0.01"}
          - {price: "0.005"}
      - rating_groups: 11
        unit: 1MB
        time_bands: night
        price: {day: "0.02", night: "0"}
    events: &events
      - service_ids: 2000
        tiers:
          - {up_to: 3, price: "0.09"}
          - {price: "0.05"}
  - effective_from: 2027-01-01
    voice:
      - *de_fixed
      - *de_mobile
      - *premium
      - destinations: WORLD
        per_minute: "0.90"
        increments: 1/1
    data: *data
    events: *events
bundles:
  - name: mins
    unit: seconds
    amount: 100
    applies_to: {destinations: [DE_FIXED]}
    priority: 10
    rollover: {cap: 50, valid_periods: 2}
  - name: promo
    unit: seconds
    amount: 30
    applies_to: {destinations: [DE_FIXED, DE_MOBILE]}
    priority: 1
    period: once
  - name: data
    unit: octets
    amount: 5GB
    applies_to: {rating_groups: [10]}
"""


@pytest.fixture(scope="session")
def basic_text() -> str:
    return BASIC


@pytest.fixture(scope="session")
def basic() -> Plan:
    return load_plan_text(BASIC, "basic.yaml")


@pytest.fixture(scope="session")
def example() -> Plan:
    return load_plan(ROOT / "examples" / "tariff.yaml")


@pytest.fixture
def write(tmp_path: Path) -> Callable[[str, str], Path]:
    """Write a file into a temporary directory and return its path."""

    def _write(name: str, text: str) -> Path:
        path = tmp_path / name
        path.write_text(text, encoding="utf-8")
        return path

    return _write
