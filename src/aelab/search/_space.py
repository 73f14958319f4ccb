"""Ranges in a study file: where they are, the Optuna distribution of each, a trial's values put back.

A range stands where one value is expected, in ``[train]``, a model's ``train`` or its
``params``, also inside a list (``hidden = [256, { int = [16, 128] }]``):
``{ log_uniform = [low, high] }``, ``{ uniform = [low, high] }``, ``{ int = [low, high] }``
(both ends included) or ``{ choice = [a, b, ...] }``. Each becomes one :class:`Dimension`, checked
here for its own shape (two finite numbers, low < high, log ranges above 0, integers for ``int``,
distinct choices); whether its values suit the setting is checked by the declarations
(``aelab.search._schema``).
"""

from __future__ import annotations

import copy
import json
import math
from dataclasses import dataclass

from ..errors import ConfigError
from ..params import key_text, short

KINDS = ("log_uniform", "uniform", "int", "choice")
MAX_CHOICES = 1000
FORMS = "{ log_uniform = [low, high] }, { uniform = [low, high] }, { int = [low, high] } or { choice = [...] }"


@dataclass(frozen=True)
class Dimension:
    name: str  # the parameter in Optuna and the report: "learning_rate", "hidden[1]"
    table: str  # "params" or "train": the table of the model entry it is in
    path: tuple  # keys and list indices inside that table: ("hidden", 1)
    kind: str  # one of KINDS
    values: tuple  # (low, high), or the choices
    where: str  # the study key, for messages: "models[0].params.hidden[1]"

    @property
    def scalar_choices(self) -> bool:
        """Optuna stores choices of None, bool, int, float or str; others travel as JSON text."""
        return all(v is None or isinstance(v, (bool, int, float, str)) for v in self.values)

    def distribution(self):
        from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

        if self.kind == "choice":
            return CategoricalDistribution([self.encode(v) for v in self.values])
        if self.kind == "int":
            return IntDistribution(*self.values)
        return FloatDistribution(*self.values, log=self.kind == "log_uniform")

    def encode(self, value):
        return value if self.kind != "choice" or self.scalar_choices else json.dumps(value)

    def decode(self, value):
        return value if self.kind != "choice" or self.scalar_choices else json.loads(value)

    def grid(self) -> list:
        """Every value, for the grid sampler (choices and integer ranges only)."""
        if self.kind == "choice":
            return [self.encode(v) for v in self.values]
        return list(range(self.values[0], self.values[1] + 1))

    def ends(self) -> tuple:
        """(smallest, largest): numeric choices by value, others first and last; the two
        configurations checked at load (the largest is the one sized for memory)."""
        if self.kind != "choice":
            return self.values
        nums = [v for v in self.values if isinstance(v, (int, float)) and not isinstance(v, bool)]
        if len(nums) == len(self.values):
            return min(nums), max(nums)
        return self.values[0], self.values[-1]


def is_range(value) -> bool:
    return isinstance(value, dict) and any(k in value for k in KINDS)


def find(table, table_name: str, where: str, path: tuple = ()) -> list[Dimension]:
    """The ranges in ``table`` (a model's params or train table), each checked for its shape."""
    if is_range(table):
        return [_dimension(table, table_name, path, where)]
    items = table.items() if isinstance(table, dict) else enumerate(table) if isinstance(table, list) else ()
    out = []
    for key, value in items:
        sub = f"{where}[{key}]" if isinstance(key, int) else f"{where}.{key}"
        out += find(value, table_name, sub, (*path, key))
    return out


def _dimension(spec: dict, table: str, path: tuple, where: str) -> Dimension:
    where = key_text(where)
    if len(spec) != 1:
        raise ConfigError(f"{where} = {short(spec)} is not a range: write one of {FORMS}.")
    (kind, values), = spec.items()
    if kind == "choice":
        _check_choices(values, where)
    else:
        _check_bounds(kind, values, where)
    name = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in path).lstrip(".")
    return Dimension(name, table, path, kind, tuple(values), where)


def _check_choices(values, where: str) -> None:
    if not isinstance(values, list) or not values:
        raise ConfigError(f"{where}.choice = {short(values)} is not allowed: give a non-empty list of values.")
    if len(values) > MAX_CHOICES:
        raise ConfigError(f"{where}.choice has {len(values):,} values, more than {MAX_CHOICES:,}; "
                          "use a range instead.")
    seen = [json.dumps(v, sort_keys=True) for v in values]
    if len(set(seen)) != len(seen):
        dup = next(v for v, s in zip(values, seen, strict=True) if seen.count(s) > 1)
        raise ConfigError(f"{where}.choice lists {short(dup)} twice; give each value once.")


def _check_bounds(kind: str, values, where: str) -> None:
    number = (int,) if kind == "int" else (int, float)
    ok = (isinstance(values, list) and len(values) == 2
          and all(isinstance(v, number) and not isinstance(v, bool) and math.isfinite(v) for v in values))
    if not ok:
        what = "two integers" if kind == "int" else "two finite numbers"
        raise ConfigError(f"{where}.{kind} = {short(values)} is not allowed: give [low, high], {what}.")
    low, high = values
    if not low < high:
        raise ConfigError(f"{where}.{kind} = {short(values)} is not a range: low must be below high "
                          "(a single value is written as that value).")
    if kind == "log_uniform" and low <= 0:
        raise ConfigError(f"{where}.log_uniform = {short(values)} is not allowed: a log range needs "
                          "low > 0.")


def substitute(table: dict, dims: list[Dimension], values: dict) -> dict:
    """A copy of ``table`` with each dimension's range replaced by ``values[dim.name]``."""
    out = copy.deepcopy(table)
    for d in dims:
        node = out
        for p in d.path[:-1]:
            node = node[p]
        node[d.path[-1]] = values[d.name]
    return out
