"""Each kind of tariff mistake gives a precise error naming file, line, key and problem."""

from __future__ import annotations

from pathlib import Path

import pytest

from rating.loader import TariffFileError, load_plan, load_plan_text


def problems(text: str, base_dir: Path | None = None) -> list[str]:
    with pytest.raises(TariffFileError) as info:
        load_plan_text(text, "plan.yaml", base_dir)
    return info.value.problems


BASIC = ""


@pytest.fixture(autouse=True)
def _basic(basic_text: str) -> None:
    global BASIC
    BASIC = basic_text


def mutate(old: str, new: str) -> str:
    assert BASIC.count(old) == 1, old
    return BASIC.replace(old, new)


def test_basic_plan_is_valid() -> None:
    assert load_plan_text(BASIC, "plan.yaml").name == "Test plan"


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        (  # unknown destination set (and, through the YAML alias, in version 2 too)
            "destinations: DE_MOBILE\n",
            "destinations: DE_MOBIL\n",
            "plan.yaml:35: versions[0].voice[1].destinations: unknown destination set 'DE_MOBIL'; "
            "defined sets: DE_FIXED, DE_MOBILE, PREMIUM, WORLD",
        ),
        (  # overlapping bands
            '{band: offpeak, days: [mon-fri], start: "00:00", end: "08:00"}',
            '{band: offpeak, days: [mon-fri], start: "00:00", end: "09:00"}',
            "plan.yaml:16: time_bands.std.bands: bands #1 'offpeak' and #0 'peak' overlap "
            "08:00-09:00 on mon, tue, wed, thu, fri",
        ),
        (  # a gap between bands
            '{band: peak, days: [mon-fri], start: "08:00", end: "20:00"}',
            '{band: peak, days: [mon-fri], start: "08:00", end: "19:00"}',
            "plan.yaml:16: "
            "time_bands.std.bands: gap 19:00-20:00 (no band) on mon, tue, wed, thu, fri",
        ),
        (  # a band that wraps midnight
            '{band: night, days: [all], start: "00:00", end: "06:00"}',
            '{band: night, days: [all], start: "22:00", end: "06:00"}',
            "plan.yaml:24: "
            "time_bands.night.bands[1]: band 'night' starts at 22:00, not before its end 06:00",
        ),
        (  # bad prefix characters
            'DE_FIXED: ["+4930", "+4940"]',
            'DE_FIXED: ["+4930", "+49x40"]',
            "plan.yaml:9: destinations.sets.DE_FIXED[1]: prefix '+49x40' must be 1-15 digits",
        ),
        (  # money as an unquoted YAML number
            'per_minute: "0.30"',
            "per_minute: 0.30",
            "plan.yaml:36: "
            "versions[0].voice[1].per_minute: amount 0.30 is an unquoted YAML number, "
            "which YAML reads as binary floating point and may change; quote it: '0.30'",
        ),
        (  # negative rate
            'per_minute: "0.30"',
            'per_minute: "-0.30"',
            "plan.yaml:36: versions[0].voice[1].per_minute: amount -0.30 is negative",
        ),
        (  # zero increment
            "increments: 30/6",
            "increments: 30/0",
            "plan.yaml:37: "
            "versions[0].voice[1].increments: increments '30/0' must be positive seconds",
        ),
        (  # unknown currency
            "currency: EUR",
            "currency: XEU",
            "plan.yaml:2: currency: unknown currency 'XEU'; use an ISO 4217 code",
        ),
        (  # unknown timezone
            "timezone: Europe/Berlin",
            "timezone: Europe/Bärlin",
            "plan.yaml:3: timezone: unknown timezone 'Europe/Bärlin'",
        ),
        (  # duplicate prefix in a set
            'DE_FIXED: ["+4930", "+4940"]',
            'DE_FIXED: ["+4930", "+4930"]',
            "plan.yaml:9: prefix +4930 is listed twice in set 'DE_FIXED' (also at plan.yaml:9)",
        ),
        (  # the same prefix in two sets
            'PREMIUM: ["+49900"]',
            'PREMIUM: ["+49151"]',
            "plan.yaml:11: "
            "prefix +49151 is in set 'PREMIUM' and in set 'DE_MOBILE' (at plan.yaml:10)",
        ),
        (  # a price per band that misses a band
            'per_minute: {peak: "0.12", offpeak: "0.06"}',
            'per_minute: {peak: "0.12"}',
            "plan.yaml:31: "
            "versions[0].voice[0].per_minute: no price for band(s) offpeak of band set 'std'",
        ),
        (  # unknown band set
            "time_bands: std\n",
            "time_bands: standard\n",
            "plan.yaml:30: versions[0].voice[0].time_bands: unknown time band set 'standard'",
        ),
        (  # a typo in a key
            'connect_fee: "0.10"',
            'connect_fees: "0.10"',
            "plan.yaml:32: versions[0].voice[0].connect_fees: unknown key 'connect_fees'",
        ),
        (  # a missing key
            '        per_minute: "0.30"\n',
            "",
            "plan.yaml:34: versions[0].voice[1]: required key 'per_minute' is missing",
        ),
        (  # tiers out of order
            '- {up_to: 1GB, price: "0.01"}',
            '- {up_to: 1GB, price: "0.01"}\n          - {up_to: 500MB, price: "0.008"}',
            "plan.yaml:52: versions[0].data[0].tiers[1].up_to: up_to 500000000 must be above the "
            "previous tier's 1000000000",
        ),
        (  # finer than the supported sub-minor precision
            'per_minute: "0.30"',
            'per_minute: "0.301234567"',
            "plan.yaml:36: "
            "versions[0].voice[1].per_minute: amount 0.301234567 has more than 8 decimal places",
        ),
        (  # bundle filter that does not fit its unit
            "applies_to: {rating_groups: [10]}",
            "applies_to: {service_ids: [10]}",
            "bundles[2].applies_to: a bundle of octets needs applies_to.rating_groups",
        ),
        (  # 'hol' without a holiday calendar
            '{band: day, days: [all], start: "06:00", end: "24:00"}',
            '{band: day, days: [all, hol], start: "06:00", end: "24:00"}',
            "plan.yaml:23: time_bands.night.bands[0].days: "
            "'hol' is used but the band set has no holidays calendar",
        ),
        (  # bad holiday
            'de: ["12-25", 2026-04-03]',
            'de: ["Christmas", 2026-04-03]',
            "plan.yaml:5: holidays: holiday 'Christmas' in 'de' must be a date",
        ),
    ],
)
def test_each_mistake_is_named(old: str, new: str, expected: str) -> None:
    found = problems(mutate(old, new))
    assert any(expected in p for p in found), "\n".join(found)


def test_all_mistakes_are_reported_together() -> None:
    text = mutate("time_bands: std\n", "time_bands: standard\n").replace(
        'PREMIUM: ["+49900"]', 'PREMIUM: ["+49151"]'
    )
    assert len(problems(text)) >= 2


def test_yaml_syntax_error_names_the_line() -> None:
    found = problems(mutate("rounding: up\n", "rounding: [up\n"))
    assert found[0].startswith("plan.yaml:") and "not valid YAML" in found[0]


def test_duplicate_yaml_key() -> None:
    found = problems(mutate("rounding: up\n", "rounding: up\nrounding: down\n"))
    assert any("plan.yaml:5: rounding: duplicate key 'rounding'" in p for p in found), found


def test_unquoted_times_of_day_are_not_base_60_numbers() -> None:
    # YAML 1.1 reads 20:00 as 1200; the loader keeps it as a time of day.
    plan = load_plan_text(
        BASIC.replace('"20:00"', "20:00").replace('"08:00"', "08:00"), "plan.yaml"
    )
    assert plan.definition.time_bands["std"].bands[0].end == 20 * 3600


def csv_plan() -> str:
    return BASIC.replace("destinations:\n  sets:", "destinations:\n  files: [extra.csv]\n  sets:")


def test_csv_destinations_load(write) -> None:
    csv = write(
        "extra.csv", "set,prefix,description\nFR,+33,France\nFR_MOBILE,+336,France mobile\n"
    )
    plan = load_plan_text(csv_plan(), "plan.yaml", csv.parent)
    assert plan.prefixes.lookup("33612345678") == ("336", "FR_MOBILE")
    assert plan.prefixes.lookup("3312345678") == ("33", "FR")


def test_csv_bad_prefix_names_file_and_line(write) -> None:
    csv = write("extra.csv", "set,prefix\nFR,+33\nFR_MOBILE,+33a6\nFR,\n")
    found = problems(csv_plan(), csv.parent)
    assert any(
        p.startswith("extra.csv:3: set 'FR_MOBILE': prefix '+33a6' must be 1-15 digits")
        for p in found
    ), found
    assert any(p.startswith("extra.csv:4: set 'FR': prefix ''") for p in found), found


def test_csv_duplicate_of_yaml_prefix(write) -> None:
    csv = write("extra.csv", "set,prefix\nDE_FIXED,+4930\n")
    found = problems(csv_plan(), csv.parent)
    assert (
        "extra.csv:2: prefix +4930 is listed twice in set 'DE_FIXED' (also at plan.yaml:10)"
        in found
    )


def test_csv_wrong_column_count(write) -> None:
    csv = write("extra.csv", "set,prefix\nFR\n")
    assert problems(csv_plan(), csv.parent) == [
        "extra.csv:2: expected 'set,prefix[,description]', got 1 column(s)"
    ]


def test_missing_csv_file(tmp_path: Path) -> None:
    found = problems(csv_plan(), tmp_path)
    assert any(
        p.startswith("plan.yaml:8: destinations.files[0]: destination file") and "not found" in p
        for p in found
    )


def test_unreadable_file(tmp_path: Path) -> None:
    with pytest.raises(TariffFileError, match="cannot read"):
        load_plan(tmp_path / "missing.yaml")


def test_bundle_amount_in_its_unit() -> None:
    found = problems(mutate("amount: 5GB", "amount: 5XB"))
    assert any("plan.yaml:87: bundles[2].amount: unknown unit 'xb' in '5XB'" in p for p in found), (
        found
    )
    found = problems(
        mutate("rollover: {cap: 50, valid_periods: 2}", "rollover: {cap: 1h30, valid_periods: 2}")
    )
    expected = "plan.yaml:78: bundles[0].rollover: expected a whole number or a quantity such as"
    assert any(p.startswith(expected) and "'1h30'" in p for p in found), found


def test_csv_from_a_spreadsheet_export(write) -> None:
    # Excel's "CSV UTF-8" adds a byte-order mark; in many European locales it separates with ';'.
    csv = write(
        "extra.csv",
        "\ufeffset;prefix;description\nFR;+33;France\nFR_MOBILE;+336;Mobil, Frankreich\n",
    )
    plan = load_plan_text(csv_plan(), "plan.yaml", csv.parent)
    assert plan.prefixes.lookup("33612345678") == ("336", "FR_MOBILE")
