"""``openpcc tariff check|price|grant`` as an operator runs them."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest

from openpcc import cli
from openpcc.commands import tariff

ROOT = Path(__file__).resolve().parents[3]
EXAMPLE = str(ROOT / "examples" / "tariff.yaml")


def main(argv: list[str]) -> int:
    """``openpcc …`` with only the tariff command registered (independent of other commands)."""
    parser = argparse.ArgumentParser(prog="openpcc")
    tariff.register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return int(args.func(args) or 0)


def test_registered_in_the_cli() -> None:
    assert "openpcc.commands.tariff" in cli.COMMAND_MODULES


def test_check_prints_a_summary(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["tariff", "check", EXAMPLE]) == 0
    out = capsys.readouterr().out
    assert "OK — plan 'OpenPCC Demo Prepaid', EUR" in out
    assert "DE_MOBILE (22)" in out and "bundle data_5gb: 5000000000 octets monthly" in out


def test_check_warns_about_unpriced_sets(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    plan = tmp_path / "plan.yaml"
    plan.write_text(
        "name: t\ncurrency: EUR\ntimezone: UTC\n"
        "destinations: {sets: {A: ['+1'], B: ['+2']}}\n"
        "versions:\n  - effective_from: 2026-01-01\n"
        "    voice: [{destinations: A, per_minute: '0.1'}]\n"
    )
    assert main(["tariff", "check", str(plan)]) == 0
    err = capsys.readouterr().err
    assert "warning: destination set B has no voice rate in the version from 2026-01-01" in err


def test_check_reports_problems(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        Path(EXAMPLE).read_text().replace('per_minute: "0.19"\n', "per_minute: 0.19\n", 1)
    )
    (tmp_path / "destinations.csv").write_text((ROOT / "examples" / "destinations.csv").read_text())
    assert main(["tariff", "check", str(bad)]) == 1
    err = capsys.readouterr().err
    assert "per_minute: amount 0.19 is an unquoted YAML number" in err and "quote it: '0.19'" in err
    assert err.strip().endswith("1 problem(s)")


def test_price_prints_breakdown_json(capsys: pytest.CaptureFixture[str]) -> None:
    args = [
        "tariff",
        "price",
        EXAMPLE,
        "--destination",
        "+49301234",
        "--start",
        "2026-11-24T19:59:30+01:00",
        "--seconds",
        "125",
    ]
    assert main(args) == 0
    body = json.loads(capsys.readouterr().out)
    # connect 0.05 + 30 s peak at 0.09 (4.5 ct → 5, half-up) + 95 s off-peak at 0.04 (6.33 → 6)
    assert (body["key"], body["prefix"], body["total"], body["total_minor"]) == (
        "DE_FIXED",
        "+4930",
        "0.16",
        16,
    )
    assert [(ln["item"], ln["band"], ln["units"], ln["amount"]) for ln in body["lines"]] == [
        ("connect", None, 0, "0.05"),
        ("usage", "peak", 30, "0.05"),
        ("usage", "offpeak", 95, "0.06"),
    ]
    assert body["lines"][2]["begins"] == "2026-11-24T20:00:00+01:00"


def test_price_data_and_events(capsys: pytest.CaptureFixture[str]) -> None:
    start = ["--start", "2026-11-24T12:00:00+01:00"]
    assert (
        main(["tariff", "price", EXAMPLE, "--rating-group", "10", "--octets", "1500000000", *start])
        == 0
    )
    body = json.loads(capsys.readouterr().out)
    assert (body["total"], [ln["tier"] for ln in body["lines"]]) == ("12.50", [1, 2])
    assert main(["tariff", "price", EXAMPLE, "--service-id", "2000", "--events", "2", *start]) == 0
    assert json.loads(capsys.readouterr().out)["total"] == "0.18"


def test_grant(capsys: pytest.CaptureFixture[str]) -> None:
    args = [
        "tariff",
        "grant",
        EXAMPLE,
        "--destination",
        "+4917012345",
        "--seconds",
        "3600",
        "--start",
        "2026-11-24T19:50:00+01:00",
        "--available",
        "3.00",
    ]
    assert main(args) == 0
    body = json.loads(capsys.readouterr().out)
    # 10 min peak at 0.19 = 1.90; 1.10 left buys 736 s off-peak at 0.09 (110.4 ct, half-up 110;
    # 737 s would be 110.55 → 111).
    assert (body["units"], body["cost_minor"], body["capped"]) == (600 + 736, 300, False)
    assert body["tariff_change_at"] == "2026-11-24T20:00:00+01:00"


def test_unknown_service_is_an_error(capsys: pytest.CaptureFixture[str]) -> None:
    args = [
        "tariff",
        "price",
        EXAMPLE,
        "--service-id",
        "9",
        "--events",
        "1",
        "--start",
        "2026-11-24T12:00:00+01:00",
    ]
    assert main(args) == 1
    assert "no event rate for service id 9" in capsys.readouterr().err


def test_rates(capsys: pytest.CaptureFixture[str]) -> None:
    args = [
        "tariff",
        "rates",
        EXAMPLE,
        "--destination",
        "+4917012345",
        "--start",
        "2026-11-24T19:00:00+01:00",
    ]
    assert main(args) == 0
    body = json.loads(capsys.readouterr().out)
    assert (body["key"], body["prefix"], body["band_now"]) == ("DE_MOBILE", "+49170", "peak")
    assert body["tiers"] == [{"up_to": None, "price": {"peak": "0.19", "offpeak": "0.09"}}]
    assert body["next_switch"] == "2026-11-24T20:00:00+01:00"
