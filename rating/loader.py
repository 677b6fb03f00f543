"""Load a tariff plan from YAML (+ CSV destination lists) with errors naming file, line and key.

YAML details that matter for money and times: unquoted numbers with a fraction (``0.09``) are not
turned into binary floating point but kept as text and refused by the schema ("quote it"), and
YAML 1.1's base-60 integers are disabled so an unquoted ``20:00`` stays a time, not 1200.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from rating.plan import Plan, compile_plan
from schemas.tariff import InexactNumber, TariffPlan, parse_prefix
from schemas.tariff_checks import Loc, check_plan

_INT = "tag:yaml.org,2002:int"
_REAL = "tag:yaml.org,2002:float"


class _Loader(yaml.SafeLoader):
    """SafeLoader with decimal-only ints and fractional numbers kept as :class:`InexactNumber`."""


_Loader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag not in (_INT, _REAL)]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_Loader.add_implicit_resolver(_INT, re.compile(r"^[-+]?(?:0|[1-9][0-9_]*)$"), list("-+0123456789"))
_Loader.add_implicit_resolver(
    _REAL,
    re.compile(
        r"^(?:[-+]?(?:[0-9][0-9_]*\.[0-9_]*|\.[0-9][0-9_]*)(?:[eE][-+]?[0-9]+)?"
        r"|[-+]?[0-9][0-9_]*[eE][-+]?[0-9]+|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$"
    ),
    list("-+0123456789."),
)
_Loader.add_constructor(_REAL, lambda loader, node: InexactNumber(loader.construct_scalar(node)))


class TariffFileError(ValueError):
    """A tariff file is invalid; ``problems`` holds one ``file:line: key: message`` per mistake."""

    def __init__(self, problems: Iterable[str]) -> None:
        self.problems = list(problems)
        super().__init__("\n".join(self.problems))


def _key_text(loc: Loc) -> str:
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "(top level)"


class _Source:
    """A parsed YAML document with the line of every key path."""

    def __init__(self, text: str, name: str) -> None:
        self.name = name
        self.lines: dict[Loc, int] = {}
        self.problems: list[str] = []
        loader = _Loader(text)
        try:
            node = loader.get_single_node()
            self.data = self._build(loader, node, ()) if node is not None else {}
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f"{name}:{mark.line + 1}" if mark is not None else name
            raise TariffFileError(
                [f"{where}: not valid YAML: {getattr(exc, 'problem', exc)}"]
            ) from None
        finally:
            loader.dispose()

    def _build(self, loader: _Loader, node: yaml.Node, path: Loc) -> Any:
        self.lines.setdefault(path, node.start_mark.line + 1)
        if isinstance(node, yaml.MappingNode):
            out: dict[Any, Any] = {}
            for key_node, value_node in node.value:
                key = loader.construct_object(key_node, deep=True)
                key = key if isinstance(key, int | str) else str(key)
                if key in out:
                    self.problems.append(
                        self.at(
                            (*path, key), f"duplicate key {key!r}", key_node.start_mark.line + 1
                        )
                    )
                self.lines[(*path, key)] = key_node.start_mark.line + 1
                out[key] = self._build(loader, value_node, (*path, key))
            return out
        if isinstance(node, yaml.SequenceNode):
            return [self._build(loader, item, (*path, i)) for i, item in enumerate(node.value)]
        return loader.construct_object(node, deep=True)

    def line_of(self, loc: Loc) -> tuple[Loc, int]:
        """The key path as written (pydantic's internal loc parts dropped) and its line."""
        kept: Loc = ()
        for part in loc:
            if (*kept, part) in self.lines:
                kept = (*kept, part)
        return kept, self.lines.get(kept, 1)

    def at(self, loc: Loc, message: str, line: int | None = None) -> str:
        kept, found = self.line_of(loc)
        shown = loc if line is not None else kept
        return f"{self.name}:{line or found}: {_key_text(shown)}: {message}"


def _pydantic_problem(source: _Source, error: Any) -> str:
    loc = tuple(error["loc"])
    if error["type"] == "missing":
        return source.at(loc[:-1], f"required key {loc[-1]!r} is missing")
    if error["type"] == "extra_forbidden":
        return source.at(loc, f"unknown key {loc[-1]!r}")
    message = error["msg"].removeprefix("Value error, ")
    return source.at(loc, message)


def _read_csv(path: Path, shown: str, problems: list[str]) -> list[tuple[str, str, str]]:
    """Rows ``(set, digits, origin)`` of a ``set,prefix[,description]`` CSV file."""
    rows: list[tuple[str, str, str]] = []
    with path.open(newline="", encoding="utf-8") as handle:
        for number, row in enumerate(csv.reader(handle), start=1):
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
    source = _Source(text, name)
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
