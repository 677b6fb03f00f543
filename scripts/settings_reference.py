"""Print the configuration reference (every OpenPCC setting, its default and meaning) as Markdown.

    python scripts/settings_reference.py > /tmp/settings.md

Reads the ``Settings`` model for names, types and defaults, and schemas/settings.py's comments
(the ``# --- domain: ...`` headings and each field's own comment) for the descriptions.
"""

from __future__ import annotations

import ast
import json
import sys
from pathlib import Path
from types import UnionType
from typing import Any, Literal, Union, get_args, get_origin

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from pydantic import BaseModel, SecretStr  # noqa: E402
from pydantic_core import PydanticUndefined  # noqa: E402

from schemas.settings import Settings  # noqa: E402

SOURCE = ROOT / "schemas" / "settings.py"


def _comments() -> tuple[dict[str, str], dict[str, str]]:
    """(field → description, field → section heading) from the source comments."""
    lines = SOURCE.read_text(encoding="utf-8").splitlines()
    tree = ast.parse("\n".join(lines))
    settings = next(
        n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == Settings.__name__
    )
    described: dict[str, str] = {}
    sections: dict[str, str] = {}
    section = ""
    previous_end = settings.body[0].lineno - 1 if settings.body else 0
    for node in settings.body:
        if not isinstance(node, ast.AnnAssign) or not isinstance(node.target, ast.Name):
            previous_end = node.end_lineno or node.lineno
            continue
        above: list[str] = []
        for text in lines[previous_end : node.lineno - 1]:
            stripped = text.strip()
            if stripped.startswith("# ---"):
                section = stripped.strip("# -").strip()
                above = []
            elif stripped.startswith("#"):
                above.append(stripped.lstrip("# ").strip())
            elif not stripped:
                above = []
        inline = [
            text.split("  # ", 1)[1].strip()
            for text in lines[node.lineno - 1 : node.end_lineno]
            if "  # " in text
        ]
        described[node.target.id] = " ".join([*above, *inline])
        sections[node.target.id] = section
        previous_end = node.end_lineno or node.lineno
    return described, sections


def _default(field: Any) -> str:
    value = field.default
    if value is PydanticUndefined and field.default_factory is not None:
        value = field.default_factory()
    if value is None:
        return "*(unset)*"
    if isinstance(value, SecretStr):
        return "*(secret)*"
    if isinstance(value, BaseModel):
        value = value.model_dump()
    if isinstance(value, str):
        return f"`{value}`" if value else '`""` (empty)'
    return f"`{json.dumps(value)}`"


def _type(annotation: Any) -> str:
    origin, args = get_origin(annotation), get_args(annotation)
    if origin is Literal:
        return " / ".join(f"`{a}`" if a else '`""`' for a in args)
    if origin in (Union, UnionType):
        kinds = [_type(a) for a in args if a is not type(None)]
        return " or ".join(kinds) + (" (optional)" if type(None) in args else "")
    if origin is list:
        return f"JSON list of {_type(args[0])}" if args else "JSON list"
    return getattr(annotation, "__name__", str(annotation))


def reference() -> str:
    described, sections = _comments()
    out: list[str] = []
    current = None
    for name, field in Settings.model_fields.items():
        section = sections.get(name, "")
        if section != current:
            current = section
            out += [
                "",
                f"### {section or 'Settings'}",
                "",
                "| Variable | Default | Type | Meaning |",
                "|---|---|---|---|",
            ]
        meaning = described.get(name, "").replace("|", "\\|")
        out.append(
            f"| `OPENPCC_{name.upper()}` | {_default(field)} | {_type(field.annotation)} "
            f"| {meaning} |"
        )
    return "\n".join(out).lstrip() + "\n"


if __name__ == "__main__":
    sys.stdout.write(reference())
