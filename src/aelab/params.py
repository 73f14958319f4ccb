"""Declared settings, checked in one place.

Every setting a study can give (model factory parameters, step parameters, the ``[data]`` and
``[train]`` tables) declares its type, range and meaning once, as the annotation of a function
parameter or dataclass field: ``Annotated[int, Field(ge=1, description="...")]``, scikit-learn's
``_parameter_constraints`` idea with pydantic doing the checking. :func:`validate` checks a table
against such a declaration in strict mode (no ``"3"`` for 3, no ``true`` for 1, no NaN or
infinity) and turns the first problem into one sentence naming the key path; :func:`describe`
turns the same declarations into the study-file reference (``aelab docs``).
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
import operator
import re
import types
import typing
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, create_model

from .errors import ConfigError

__all__ = ["Annotated", "Field", "Literal", "validate", "describe", "is_list_setting", "slug", "ParamDoc",
           "short", "key_text", "listing"]

_CONFIG = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False, arbitrary_types_allowed=True)
_SKIP = {"input_shape", "ctx", "self"}  # supplied by aelab, not by the study file


@functools.cache
def _fields(target) -> tuple[tuple[str, Any, Any], ...]:
    """(name, annotation, default or ...) of a function's keyword parameters or a dataclass.

    Cached: resolving the annotations is most of the cost of checking a setting, and a sweep
    checks thousands."""
    hints = typing.get_type_hints(target, include_extras=True)
    if dataclasses.is_dataclass(target):
        out = []
        for f in dataclasses.fields(target):
            if f.default is not dataclasses.MISSING:
                default = f.default
            elif f.default_factory is not dataclasses.MISSING:
                default = f.default_factory()
            else:
                default = ...
            out.append((f.name, hints.get(f.name, Any), default))
        return tuple(out)
    out = []
    for name, p in inspect.signature(target).parameters.items():
        if name in _SKIP or p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
            continue
        default = ... if p.default is inspect.Parameter.empty else p.default
        out.append((name, hints.get(name, Any), default))
    return tuple(out)


def _pydantic_type(tp):
    """The annotation with nested plain dataclasses replaced by their strict models."""
    if dataclasses.is_dataclass(tp):
        return _model(tp)
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin is Annotated:
        return Annotated[(_pydantic_type(args[0]), *tp.__metadata__)]
    if origin in (typing.Union, types.UnionType):
        return functools.reduce(operator.or_, (_pydantic_type(a) for a in args))
    return tp


@functools.cache
def _model(target) -> type[BaseModel]:
    fields = {name: (_pydantic_type(tp), default) for name, tp, default in _fields(target)}
    return create_model(f"Settings_{getattr(target, '__name__', 'x')}", __config__=_CONFIG, **fields)


def _plain(value, tp):
    """Validated pydantic values back to the declared types (nested dataclasses rebuilt)."""
    if isinstance(value, BaseModel):
        target = _strip(tp)
        kwargs = {k: _plain(getattr(value, k), t) for k, t, _ in _fields(target)}
        return target(**kwargs)
    if isinstance(value, tuple):
        return list(value)
    return value


def _strip(tp):
    """The dataclass inside ``Annotated[X | None, ...]``."""
    while typing.get_origin(tp) is Annotated:
        tp = typing.get_args(tp)[0]
    for a in typing.get_args(tp) or (tp,):
        if dataclasses.is_dataclass(a):
            return a
    return tp


def short(value, limit: int = 60) -> str:
    """``repr(value)`` cut to ``limit`` characters, for messages about arbitrary input."""
    try:
        text = repr(value)
    except RecursionError:  # a table nested thousands deep (a hostile study file)
        text = f"a {type(value).__name__} nested too deeply"
    return text if len(text) <= limit else text[: limit - 3] + "..."


def listing(items, limit: int = 12) -> str:
    """Known names for a message: the first ``limit``, then how many there are in all."""
    items = [str(i) for i in items]
    if len(items) <= limit:
        return ", ".join(items)
    return f"{', '.join(items[:limit])}, ... ({len(items)} in all)"


_SLUG = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,79}")


def slug(value, key: str) -> str:
    """Names become file and folder names: only a safe slug passes (no path, no leading dot)."""
    if not isinstance(value, str) or not _SLUG.fullmatch(value):
        raise ConfigError(f"{key} = {short(value)} is not allowed: names become file names, so use "
                          "1 to 80 letters, digits, '.', '_' or '-', starting with a letter or digit.")
    return value


def _locate(target, data, loc: tuple, last_is_key: bool) -> tuple[str, list[str]]:
    """The key path of an error's ``loc`` in the study's words, and the keys allowed where it
    points. pydantic's ``loc`` mixes the keys of the data with tags naming which alternative of
    a union failed (``'str'``, ``"literal['official']"``); only what is in the data is a key."""
    parts, node, fields, allowed = [], data, _fields(target), _fields(target)
    for i, part in enumerate(loc):
        if isinstance(node, dict) and isinstance(part, str) and (part in node or (last_is_key and i == len(loc) - 1)):
            parts.append(part)
            allowed = fields  # the keys of the table this key is in
            tp = next((t for name, t, _ in fields if name == part), None)
            node = node.get(part)
            sub = _strip(tp) if tp is not None else None
            fields = _fields(sub) if sub is not None and dataclasses.is_dataclass(sub) else ()
        elif isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
            parts.append(part)
            node = node[part]
            fields = ()
    return parts, [name for name, _, _ in allowed]


def key_text(text, limit: int = 100) -> str:
    """A key (path) from a study file or ``--set`` for a message, unquoted: control characters
    escaped (the message stays one line) and cut to ``limit`` characters."""
    text = "".join(c if c.isprintable() else repr(c)[1:-1] for c in str(text))
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _path(where: str, parts: list) -> str:
    path = where
    for part in parts:
        if isinstance(part, int):
            path += f"[{part}]"
        else:
            path = f"{path}.{part}" if path else part
    return key_text(path)


def _sentence(err: ValidationError, target, data, where: str) -> ConfigError:
    errors = err.errors(include_url=False)
    first = errors[0]
    extra = first["type"] in ("extra_forbidden", "unexpected_keyword_argument")
    parts, allowed = _locate(target, data, first["loc"], extra or first["type"] == "missing")
    key = _path(where, parts)
    if extra:
        return ConfigError(f"Unknown key '{key}'; allowed here: {', '.join(allowed) or 'none'}.")
    if first["type"] == "missing":
        return ConfigError(f"{key} is required.")
    # A union (e.g. a number or "official") fails once per alternative: say what each wanted.
    same = [e for e in errors if _locate(target, data, e["loc"], False)[0] == parts] or [first]
    wants = []
    for e in same:
        # pydantic says "Input should be a valid integer" or "List should have at least 3 items
        # after validation, not 2": keep what is wanted, in the sentence's own words.
        msg = e["msg"].replace(" after validation", "").rstrip(".")
        if e["type"] == "model_type":  # a nested table such as early_stopping
            msg = "Input should be a table"
        msg = msg[len("Input should be "):] if msg.startswith("Input should be ") else msg[0].lower() + msg[1:]
        if msg not in wants:
            wants.append(msg)
    value = short(first.get("input"))
    lead = "it should be " if all(e["msg"].startswith("Input should be") or e["type"] == "model_type"
                                  for e in same) else ""
    return ConfigError(f"{key} = {value} is not allowed: {lead}{' or '.join(wants)}.")


def validate(target, data, where: str = ""):
    """Check ``data`` (a table from a study file) against the declarations of ``target``.

    ``target`` is a function (its keyword parameters, minus ``input_shape``/``ctx``) or a
    dataclass. Returns the validated values: a dict with every parameter (defaults filled in)
    for a function, an instance for a dataclass. Raises ConfigError naming ``where.key``.
    """
    if not isinstance(data, dict):
        raise ConfigError(f"{where or 'The study'} must be a table, got {short(data)}.")
    allowed = [name for name, _, _ in _fields(target)]
    try:
        model = _model(target).model_validate(data)
    except ValidationError as err:
        raise _sentence(err, target, data, where) from None
    except RecursionError:
        raise ConfigError(f"{where or 'The study'} is nested too deeply.") from None
    types = {name: tp for name, tp, _ in _fields(target)}
    values = {name: _plain(getattr(model, name), types[name]) for name in allowed}
    return target(**values) if dataclasses.is_dataclass(target) else values


def is_list_setting(target, name: str) -> bool:
    """Whether a setting's declared type is a list (so a sweep over it is a list of lists)."""
    for field_name, tp, _ in _fields(target):
        if field_name == name:
            return _is_list(tp)
    return False


def _is_list(tp) -> bool:
    while typing.get_origin(tp) is Annotated:
        tp = typing.get_args(tp)[0]
    if typing.get_origin(tp) in (list, tuple) or tp in (list, tuple):
        return True
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        return any(_is_list(a) for a in typing.get_args(tp) if a is not type(None))
    return False


# ---------------------------------------------------------------- documentation


@dataclass
class ParamDoc:
    name: str
    type: str  # in words: "integer >= 1", "list of integers >= 1", "one of 'bce', 'mse'"
    default: object  # ... when required
    doc: str


def describe(target) -> list[ParamDoc]:
    """The declared settings of ``target`` in words, for the study-file reference."""
    out = []
    for name, tp, default in _fields(target):
        out.append(ParamDoc(name, type_words(tp), default, _description(tp)))
    return out


def _description(tp) -> str:
    """The last description wins, as in pydantic: Annotated[Shared, Field(description=...)]
    refines a shared type's description."""
    found = ""
    for meta in getattr(tp, "__metadata__", ()):
        found = getattr(meta, "description", None) or found
    return found


def _number(v) -> str:
    return f"{v:,}" if isinstance(v, int) else f"{v:g}"


_WORDS = {int: "integer", float: "number", str: "string", bool: "true/false", dict: "table"}


def type_words(tp) -> str:
    """An annotation in words, with its range: ``Annotated[int, Field(ge=1)]`` -> "integer >= 1"."""
    if tp is Any:
        return "any"
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin is Annotated:
        base = type_words(args[0])
        bounds, lengths = [], {}
        for meta in tp.__metadata__:
            for c in getattr(meta, "metadata", [meta]):
                for attr, sym in (("ge", ">="), ("gt", ">"), ("le", "<="), ("lt", "<")):
                    if getattr(c, attr, None) is not None:
                        bounds.append(f"{sym} {_number(getattr(c, attr))}")
                for attr in ("min_length", "max_length"):
                    if getattr(c, attr, None):
                        lengths[attr] = getattr(c, attr)
        lo, hi = lengths.get("min_length"), lengths.get("max_length")
        unit = "characters" if base.startswith("string") else "items"
        if lo and lo == hi:
            bounds.append(f"exactly {lo} {unit}")
        else:
            bounds += ["non-empty"] if lo == 1 else [f"at least {lo} {unit}"] if lo else []
            bounds += [f"at most {hi:,} {unit}"] if hi else []
        return f"{base} {', '.join(bounds)}".strip()
    if origin is Literal:
        return "one of " + ", ".join(repr(a) for a in args)
    if origin in (list, tuple):
        return f"list of {type_words(args[0])}" if args else "list"
    if origin in (typing.Union, types.UnionType):
        opts = [type_words(a) for a in args if a is not type(None)]
        words = " or ".join(opts)
        return words + (" (optional)" if type(None) in args else "")
    if dataclasses.is_dataclass(tp):
        return f"table ({tp.__name__})"
    return _WORDS.get(tp, getattr(tp, "__name__", str(tp)))

