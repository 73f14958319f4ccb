"""Markdown for the reference: settings as bullets, defaults as TOML, docstrings as paragraphs."""

from __future__ import annotations

import dataclasses
import re
import typing

REFRESH = "python -m aelab.docs > docs/study-file.md"
MISSING = "(no description)"


def _toml(value) -> str:
    """A default as it would be written in the study file."""
    if value is ...:
        return "required"
    if value is None:
        return "not set"
    if isinstance(value, bool):
        return "`true`" if value else "`false`"
    return f"`{_inline(value)}`"


def _inline(value) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_inline(v) for v in value) + "]"
    if isinstance(value, dict):
        if not value:
            return "{}"
        return "{ " + ", ".join(f"{k} = {_inline(v)}" for k, v in value.items()) + " }"
    if dataclasses.is_dataclass(value):
        return _inline(dataclasses.asdict(value))
    return str(value)


def _markdown_doc(text: str) -> str:
    """A docstring as Markdown: reST ``literals`` become `code`, paragraphs keep their breaks."""
    text = re.sub(r"``(.+?)``", r"`\1`", text.strip())
    paragraphs = [p for p in text.split("\n\n") if p.strip()]
    out = []
    for p in paragraphs:
        lines = p.splitlines()
        if any(line.lstrip().startswith("- ") for line in lines):  # a bullet list: keep its lines
            out.append("\n".join(line.strip() if line.lstrip().startswith("- ") else "  " + line.strip()
                                 for line in lines))
        else:
            out.append(" ".join(line.strip() for line in lines))
    return "\n\n".join(out)


def _description(annotation) -> str:
    """The meaning declared for a setting: the *last* description in its (flattened) metadata,
    as pydantic merges them (``Annotated[Activation, Field(description=...)]`` narrows the
    shared type's meaning, e.g. "activation of the code layer")."""
    text = ""
    for meta in getattr(annotation, "__metadata__", ()):
        if getattr(meta, "description", None):
            text = meta.description
    return text


def _settings(target, skip=()) -> list[str]:
    """One bullet per declared setting of a function or dataclass: name, type, default, meaning."""
    from ..params import describe

    hints = typing.get_type_hints(target, include_extras=True)
    lines = []
    for p in describe(target):
        if p.name in skip:
            continue
        # A missing meaning shows, and the reference test fails on it: declare it in the annotation.
        doc = _description(hints.get(p.name)) or p.doc or MISSING
        lines.append(f"- `{p.name}` ({p.type}; default {_toml(p.default)}): {doc}")
    return lines


def _name_list(names) -> str:
    return ", ".join(f"`{n}`" for n in names)


def _builtin_text(name: str) -> str:
    from ..config import builtin_studies

    return builtin_studies()[name].read_text(encoding="utf-8").strip()
