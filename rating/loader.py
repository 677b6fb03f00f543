"""Load a tariff plan from YAML (+ CSV destination lists) with errors naming file, line and key.

YAML is read by :mod:`schemas.tariff_yaml` (line numbers, exact numbers), validated by
:mod:`schemas.tariff` and :mod:`schemas.tariff_checks`, then compiled by :mod:`rating.plan`.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from rating.plan import Plan, compile_plan
from schemas.tariff import TariffPlan, parse_prefix
from schemas.tariff_checks import check_plan
from schemas.tariff_yaml import LocatedYaml, YamlSyntaxError


class TariffFileError(ValueError):
    """A tariff file is invalid; ``problems`` holds one ``file:line: key: message`` per mistake."""

    def __init__(self, problems: Iterable[str]) -> None:
        self.problems = list(problems)
        super().__init__("\n".join(self.problems))


def _pydantic_problem(source: LocatedYaml, error: Any) -> str:
    loc = tuple(error["loc"])
    if error["type"] == "missing":
        return source.at(loc[:-1], f"required key {loc[-1]!r} is missing")
    if error["type"] == "extra_forbidden":
        return source.at(loc, f"unknown key {loc[-1]!r}")
    message = error["msg"].removeprefix("Value error, ")
    return source.at(loc, message)


def _read_csv(path: Path, shown: str, problems: list[str]) -> list[tuple[str, str, str]]:
    """Rows ``(set, digits, origin)`` of a ``set,prefix[,description]`` CSV file.

    Spreadsheet exports are accepted as they come: a UTF-8 byte-order mark, and ``;`` as the
    separator (what Excel writes in locales whose decimal mark is a comma).
    """
    rows: list[tuple[str, str, str]] = []
    with path.open(newline="", encoding="utf-8-sig") as handle:
        first = handle.readline()
        handle.seek(0)
        delimiter = ";" if ";" in first and "," not in first else ","
        for number, row in enumerate(csv.reader(handle, delimiter=delimiter), start=1):
            if not row or not "".join(row).strip() or row[0].lstrip().startswith("#"):
                continue
            if number == 1 and row[0].strip().lower() == "set":
                continue  # header
            origin = f"{shown}:{number}"
            if len(row) < 2 or len(row) > 3:
                problems.append(
                    f"{origin}: expected 'set,prefix[,description]', got {len(row)} column(s)"
                )
                continue
            name = row[0].strip()
            if not name:
                problems.append(f"{origin}: empty destination set name")
                continue
            try:
                rows.append((name, parse_prefix(row[1]), origin))
            except ValueError as exc:
                problems.append(f"{origin}: set {name!r}: {exc}")
    return rows


def _merge_prefixes(entries: list[tuple[str, str, str]], problems: list[str]) -> dict[str, str]:
    owner: dict[str, tuple[str, str]] = {}
    for name, digits, origin in entries:
        shown = digits if digits == "*" else f"+{digits}"
        if digits in owner:
            other, where = owner[digits]
            if other == name:
                problems.append(
                    f"{origin}: prefix {shown} is listed twice in set {name!r} (also at {where})"
                )
            else:
                problems.append(
                    f"{origin}: prefix {shown} is in set {name!r} and in set {other!r} (at {where})"
                )
            continue
        owner[digits] = (name, origin)
    return {digits: name for digits, (name, _) in owner.items()}


def load_plan_text(text: str, name: str = "<tariff>", base_dir: Path | None = None) -> Plan:
    """Parse, validate and compile a tariff plan from YAML text (CSV paths relative to base_dir)."""
    try:
        source = LocatedYaml(text, name)
    except YamlSyntaxError as exc:
        raise TariffFileError([str(exc)]) from None
    problems = list(source.problems)
    try:
        definition = TariffPlan.model_validate(source.data)
    except ValidationError as exc:
        raise TariffFileError(
            problems + [_pydantic_problem(source, e) for e in exc.errors()]
        ) from None
    entries: list[tuple[str, str, str]] = []
    for set_name, prefixes in definition.destinations.sets.items():
        for i, digits in enumerate(prefixes):
            entries.append(
                (
                    set_name,
                    digits,
                    f"{name}:{source.line_of(('destinations', 'sets', set_name, i))[1]}",
                )
            )
    for i, file_name in enumerate(definition.destinations.files):
        path = (base_dir or Path.cwd()) / file_name
        if not path.is_file():
            problems.append(
                source.at(("destinations", "files", i), f"destination file {str(path)!r} not found")
            )
            continue
        entries += _read_csv(path, file_name, problems)
    csv_sets = {set_name for set_name, _, _ in entries}
    problems += [source.at(loc, message) for loc, message in check_plan(definition, csv_sets)]
    prefixes = _merge_prefixes(entries, problems)
    if problems:
        raise TariffFileError(problems)
    return compile_plan(definition, prefixes)


def load_plan(path: str | Path) -> Plan:
    """Load a tariff file; raises :class:`TariffFileError` listing every problem found."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise TariffFileError([f"{path}: cannot read: {exc.strerror}"]) from None
    return load_plan_text(text, str(path), path.parent)
