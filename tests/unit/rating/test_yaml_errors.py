"""Text that is not YAML at all (reader, scanner and parser errors) is reported like any other
tariff mistake: a TariffFileError naming file, line and problem, never a raw yaml exception."""

from __future__ import annotations

import pytest

from rating.loader import TariffFileError, load_plan, load_plan_text


def _line_of(text: str, needle: str) -> int:
    return text[: text.index(needle)].count("\n") + 1


@pytest.mark.parametrize(
    ("old", "new", "problem"),
    [
        ("rounding: up", "rounding: u\x00p", "unacceptable character #x0000"),
        ("rounding: up", "rounding: u\x1bp", "unacceptable character #x001b"),
        ("rounding: up", "rounding: up\n\trounding: up", "found character '\\t'"),
        ("rounding: up", "rounding: [up", "expected ',' or ']'"),
    ],
    ids=["nul", "escape", "tab-indent", "unclosed-flow"],
)
def test_not_yaml_is_a_tariff_file_error(basic_text: str, old: str, new: str, problem: str) -> None:
    assert basic_text.count(old) == 1
    text = basic_text.replace(old, new)
    with pytest.raises(TariffFileError) as info:
        load_plan_text(text, "plan.yaml")
    [found] = info.value.problems
    assert found.startswith("plan.yaml:") and "not valid YAML" in found and problem in found
    line = int(found.split(":")[1])
    if "\x00" in new or "\x1b" in new or "\t" in new:
        # Reader and scanner errors point at the offending character's own line.
        bad = next(c for c in ("\x00", "\x1b", "\t") if c in new)
        assert line == _line_of(text, bad)
    else:
        assert line >= _line_of(text, new)


def test_unclosed_quote_names_where_it_starts() -> None:
    text = 'name: x\ncurrency: "EUR\ntimezone: UTC\n'
    with pytest.raises(TariffFileError) as info:
        load_plan_text(text, "q.yaml")
    assert info.value.problems == [
        "q.yaml:4: not valid YAML: found unexpected end of stream "
        "(while scanning a quoted scalar that starts on line 2)"
    ]


def test_nul_byte_in_a_file(tmp_path) -> None:
    path = tmp_path / "nul.yaml"
    path.write_bytes(b"name: x\ncurrency: EUR\x00\n")
    with pytest.raises(TariffFileError) as info:
        load_plan(path)
    assert info.value.problems[0].startswith(f"{path}:2: not valid YAML: unacceptable character")
