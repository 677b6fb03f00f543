"""YAML reading for tariff files: every key path's line number, and exact numbers.

Unquoted numbers with a fraction (``0.09``) are not turned into binary floating point but kept as
:class:`~schemas.tariff.InexactNumber` text, which the schema refuses ("quote it"); YAML 1.1's
base-60 integers are disabled so an unquoted ``20:00`` stays a time of day, not 1200.
"""

from __future__ import annotations

import re
from typing import Any

import yaml

from schemas.tariff import InexactNumber
from schemas.tariff_checks import Loc


class YamlSyntaxError(ValueError):
    """The text is not valid YAML; the message starts with ``name:line``."""


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


def key_text(loc: Loc) -> str:
    """``versions[0].voice[1].per_minute`` for a key path."""
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "(top level)"


def _syntax_problem(exc: yaml.YAMLError, text: str, name: str) -> str:
    """``name:line: not valid YAML: problem`` for any YAML error (reader, scanner, parser ...)."""
    if isinstance(exc, yaml.reader.ReaderError):
        char = exc.character
        code = char if isinstance(char, int) else ord(char)
        line = text.count("\n", 0, exc.position) + 1
        return f"{name}:{line}: not valid YAML: unacceptable character #x{code:04x}: {exc.reason}"
    if isinstance(exc, yaml.MarkedYAMLError):
        mark = exc.problem_mark or exc.context_mark
        problem = exc.problem or exc.context or "syntax error"
        if exc.context and exc.problem:
            started = (
                f" that starts on line {exc.context_mark.line + 1}" if exc.context_mark else ""
            )
            problem = f"{exc.problem} ({exc.context}{started})"
        where = f"{name}:{mark.line + 1}" if mark is not None else name
        return f"{where}: not valid YAML: {problem}"
    return f"{name}: not valid YAML: {exc}"


class LocatedYaml:
    """A parsed YAML document with the line of every key path."""

    def __init__(self, text: str, name: str) -> None:
        self.name = name
        self.lines: dict[Loc, int] = {}
        self.problems: list[str] = []
        loader: _Loader | None = None
        try:
            loader = _Loader(text)  # the reader refuses non-printable characters here already
            node = loader.get_single_node()
            self.data = self._build(loader, node, ()) if node is not None else {}
        except yaml.YAMLError as exc:
            raise YamlSyntaxError(_syntax_problem(exc, text, name)) from None
        finally:
            if loader is not None:
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
        return f"{self.name}:{line or found}: {key_text(shown)}: {message}"
