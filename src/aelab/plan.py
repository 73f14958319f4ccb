"""The plan of a study: one run per model entry and combination of swept values.

A list where a setting expects one value is a sweep: in a model's ``params`` (a list of lists
for list-valued settings such as ``hidden``), in ``[train]`` or a model's ``train``, or the
top-level ``seed``. The runs are the cartesian product, named after the entry and the swept
values (``ksparse-k25-seed1``, ``stacked-bs32``). Every run's settings are checked here, when
the study loads, and the number of runs is capped before anything is expanded.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

from .errors import ConfigError
from .models import check_params
from .params import is_list_setting, key_text, short, slug, validate
from .registry import MODELS
from .train import TrainConfig

# Short names of swept train settings in run names: stacked-bs32, convt-lr0.01.
ALIASES = {"batch_size": "bs", "learning_rate": "lr", "optimizer": "opt", "epochs": "ep",
           "input_noise": "noise"}



@dataclass
class RunSpec:
    name: str  # e.g. "stacked-bs32"
    label: str  # the [[models]] entry, e.g. "stacked"
    model: str  # registry name
    params: dict  # model parameters as given in the study, swept values resolved
    train: TrainConfig
    sweep: dict  # the swept settings of this run and their values, e.g. {"batch_size": 32}
    where: str = ""  # the study key of its model entry, for messages: "models[0]"

    @property
    def seed(self) -> int:
        return self.train.seed


def _is_sweep(value, list_setting: bool) -> bool:
    if not isinstance(value, list):
        return False
    # A list-valued setting (hidden = [256, 50]) is swept by a list of lists.
    return not list_setting or (bool(value) and all(isinstance(v, list) for v in value))


def _fmt(value) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, list):
        return "x".join(_fmt(v) for v in value)
    return str(value)


def _part(key: str, value) -> str:
    alias = ALIASES.get(key, key)
    return f"-{alias}{'_' if alias[-1].isdigit() else ''}{_fmt(value)}"


def _sweeps(target, table, where: str) -> list[str]:
    """The swept keys of a table (a list where one value is expected); checks nothing else."""
    if not isinstance(table, dict):
        raise ConfigError(f"{where} must be a table, got {short(table)}.")
    return [k for k, v in table.items() if _is_sweep(v, is_list_setting(target, k))]


def check_values(target, table: dict, where: str) -> list[str]:
    """Each value (each swept value on its own) against its declaration, naming its key;
    returns the swept keys (a list where one value is expected)."""
    sweeps = _sweeps(target, table, where)
    for key, value in table.items():
        if key in sweeps and not value:
            raise ConfigError(f"{key_text(f'{where}.{key}')} = [] is an empty sweep; give at least one value.")
        for v in value if key in sweeps else [value]:
            validate(target, {key: v}, where)
    return sweeps


def expand(models: list, train: dict, seed, max_runs: int = 1000) -> list[RunSpec]:
    """The runs of ``models`` (config.ModelEntry) under the study's ``train`` table and seed.

    The number of runs is counted, and capped, before any value is checked or run made: a
    200×200×200 sweep is refused at once."""
    train_sweeps = _sweeps(TrainConfig, train, "train")
    groups, total = [], 0
    for i, m in enumerate(models):
        where = f"models[{i}]"
        fn = MODELS.get(m.model, where=f"{where}.model").fn
        p_sweeps = _sweeps(fn, m.params, f"{where}.params")
        own = _sweeps(TrainConfig, m.train, f"{where}.train")
        merged = {**train, **m.train}
        merged.setdefault("seed", seed)
        t_sweeps = [k for k in merged if k in own or (k not in m.train and k in train_sweeps)
                    or (k == "seed" and isinstance(merged[k], list))]
        t_sweeps = [k for k in t_sweeps if k != "seed"] + (["seed"] if "seed" in t_sweeps else [])
        count = math.prod(len(m.params[k]) for k in p_sweeps) * math.prod(len(merged[k]) for k in t_sweeps)
        total += count
        if total > max_runs:
            raise ConfigError(f"The study expands into more than {max_runs:,} runs ({where} alone "
                              f"gives {count:,}); shorten the sweeps, or raise the limit with "
                              "AELAB_MAX_RUNS if you mean it.")
        groups.append((i, m, fn, p_sweeps, merged, t_sweeps))
    check_values(TrainConfig, train, "train")
    for i, m, fn, _, _, _ in groups:
        check_values(fn, m.params, f"models[{i}].params")
        check_values(TrainConfig, m.train, f"models[{i}].train")
    runs = []
    for i, m, _, p_sweeps, merged, t_sweeps in groups:
        where = f"models[{i}]"
        for p_combo in _product(m.params, p_sweeps):
            params = {**m.params, **p_combo}
            check_params(m.model, params, f"{where}.params")
            for t_combo in _product(merged, t_sweeps):
                sweep = {**p_combo, **t_combo}
                name = m.name + "".join(_part(k, v) for k, v in sweep.items())
                slug(name, f"{where} (run name {name!r})")
                cfg = validate(TrainConfig, {**merged, **t_combo}, f"{where}.train")
                runs.append(RunSpec(name, m.name, m.model, params, cfg, sweep, where))
    seen: set[str] = set()
    for r in runs:
        if r.name in seen:
            raise ConfigError(f"Two runs would both be named {r.name!r}; rename a [[models]] entry.")
        seen.add(r.name)
    return runs


def stack_groups(runs: list[RunSpec]) -> list[list[RunSpec]]:
    """The runs that may train together as one stacked model (``aelab.stacked``), in study order
    of each group's first run; a run that cannot (``vectorize = "off"``, bf16, nothing alike) is a
    group of one. Members share the model, its shape-giving params and the stack key of their
    training settings; seeds, learning rates, input noise, early stopping and the model's
    ``member_params`` may differ."""
    import json

    from .stacked import stack_key

    groups: dict = {}
    for r in runs:
        if r.train.vectorize == "off" or r.train.precision != "fp32" or not MODELS.get(r.model).info.stackable:
            groups[("alone", r.name)] = [r]
            continue
        member = MODELS.get(r.model).info.member_params
        fixed = json.dumps({k: v for k, v in r.params.items() if k not in member}, sort_keys=True)
        groups.setdefault((r.model, fixed, stack_key(r.train)), []).append(r)
    return list(groups.values())


def _product(table: dict, keys: list[str]):
    for combo in itertools.product(*(table[k] for k in keys)):
        yield dict(zip(keys, combo, strict=True))


def check_runs(runs: list[RunSpec], data, limits) -> None:
    """What a run needs that is knowable before the data: its early-stopping monitor is a value
    it produces, its device exists, and (for datasets of known image shape) its model fits the
    images and the memory budget."""
    import torch

    for r in runs:
        terms = MODELS.get(r.model).info.loss_terms
        es = r.train.early_stopping
        if es is not None:
            keys = [f"train_{t}" for t in terms] + ([f"val_{t}" for t in terms] if data.has_val else [])
            if es.monitor not in keys:
                why = "" if data.has_val or not es.monitor.startswith("val_") else (
                    " (data.split has no validation part)")
                raise ConfigError(f"{r.where}.train.early_stopping.monitor = {es.monitor!r} is not a "
                                  f"value run {r.name} produces{why}; choose one of: {', '.join(keys)}.")
        if r.train.device == "cuda" and not torch.cuda.is_available():
            raise ConfigError(f"{r.where}.train.device = 'cuda', but PyTorch sees no CUDA GPU on this "
                              "machine; use 'cpu' or 'auto'.")
    from .datasets import known_image_shape

    shape = known_image_shape(data)
    if shape is not None:
        check_models(runs, shape, limits)


def check_models(runs: list[RunSpec], input_shape: tuple[int, ...], limits) -> None:
    """Each distinct model must map ``input_shape`` back to itself and fit the memory budget;
    sized on the meta device, so nothing is allocated for a model that is refused."""
    from .models import format_bytes, inspect_model

    # Activation memory grows with the batch: each distinct model is sized once, at the
    # largest batch any of its runs trains with (a batch-size sweep builds it once, not per value).
    largest: dict = {}
    for r in runs:
        key = (r.model, repr(sorted(r.params.items())))
        if key not in largest or r.train.batch_size > largest[key].train.batch_size:
            largest[key] = r
    for r in largest.values():
        try:
            size = inspect_model(r.model, r.params, input_shape, r.train.batch_size, limits.max_memory)
        except ConfigError as err:
            raise ConfigError(f"{r.where} ({r.model}) cannot be built for "
                              f"{'×'.join(map(str, input_shape))} images: {err}") from None
        if size.bytes > limits.max_memory:
            raise ConfigError(
                f"{r.where} ({r.model}, {size.parameters:,} parameters) needs about "
                f"{format_bytes(size.bytes)} to train at batch {r.train.batch_size}, more than the "
                f"limit of {format_bytes(limits.max_memory)}; make it smaller, or raise the limit "
                "with AELAB_MAX_MEMORY_GB if this machine has the memory.")
