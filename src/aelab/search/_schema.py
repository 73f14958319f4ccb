"""``[search]``: its declarations, and the checks a search study passes when it loads.

A study with a ``[search]`` table has one ``[[models]]`` entry whose ``params`` and ``train``
(and the study's ``[train]``) hold ranges (``aelab.search._space``) instead of sweeps; Optuna
samples a configuration per trial. At load, before any data is read: every range's shape, every
end and choice against the setting's declaration, the two extreme configurations as whole runs
(the model's own checks, memory, the early-stopping monitor), the metric against what a run
produces, the pruner's metric is one reported every epoch, and the budget of trials.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Annotated, Literal

from pydantic import Field

from ..errors import ConfigError
from ..params import listing, short, validate
from ..train import Seed, TrainConfig
from . import _space

# Results that steps add to a run's record, until steps declare them (``StepInfo.produces``); a
# search on one of them must also list the step, and such a metric is known only after training.
STEP_RESULTS = {
    "linear_probe": ("probe_accuracy", "probe_val_accuracy"),
    "finetune": ("finetune_accuracy",),
    "clustering": ("kmeans_acc", "kmeans_nmi"),
    "sparsity": ("mean_activation", "active_fraction"),
    "code_activation": ("mean_code_activation",),
    "novelty": ("auroc",),
}
HIGHER_IS_BETTER = ("accuracy", "_acc", "_nmi", "auroc")  # metric name endings that maximize


@dataclass
class AshaSettings:
    """Optuna's ``SuccessiveHalvingPruner`` (asynchronous successive halving, Li et al. 2020)."""

    min_resource: Annotated[int, Field(ge=1, le=100_000, description=(
        "epochs every trial trains before its first rung, where it may be pruned"))] = 1
    reduction_factor: Annotated[int, Field(ge=2, le=100, description=(
        "a trial goes on past a rung only if it is in the best 1/reduction_factor there; rungs "
        "are at min_resource × reduction_factor^k epochs"))] = 3
    min_early_stopping_rate: Annotated[int, Field(ge=0, le=100, description=(
        "skip this many of the first rungs"))] = 0


@dataclass
class MedianSettings:
    """Optuna's ``MedianPruner``: prune a trial worse than the median of the others at the same epoch."""

    n_startup_trials: Annotated[int, Field(ge=0, le=100_000, description=(
        "trials that finish before any is pruned"))] = 5
    n_warmup_steps: Annotated[int, Field(ge=0, le=100_000, description=(
        "epochs of a trial before it may be pruned"))] = 1
    interval_steps: Annotated[int, Field(ge=1, le=100_000, description=(
        "epochs between two pruning checks"))] = 1
    n_min_trials: Annotated[int, Field(ge=1, le=100_000, description=(
        "trials that must have reached an epoch before one is pruned there"))] = 1


@dataclass
class TpeSettings:
    """Optuna's ``TPESampler`` (Bergstra et al. 2011)."""

    n_startup_trials: Annotated[int, Field(ge=0, le=100_000, description=(
        "trials sampled at random before TPE models the results"))] = 10
    multivariate: Annotated[bool, Field(description=(
        "model the parameters jointly rather than one by one"))] = False


@dataclass
class SearchConfig:
    trials: Annotated[int, Field(ge=1, le=1_000_000, description=(
        "trials to run in all, pruned and failed ones included (capped by AELAB_MAX_RUNS)"))] = 20
    sampler: Annotated[Literal["tpe", "random", "grid"], Field(description=(
        "how configurations are chosen; grid takes choices and int ranges only, each point once"))] = "tpe"
    metric: Annotated[str, Field(min_length=1, max_length=100, description=(
        "the value optimised: train_<term> or val_<term> of the model's loss terms (the last "
        "epoch's) or test_loss"))] = "val_loss"
    direction: Annotated[Literal["minimize", "maximize"] | None, Field(description=(
        "leave out to maximize accuracies, AUROC and NMI and minimize everything else"))] = None
    pruner: Annotated[Literal["asha", "median", "none"], Field(description=(
        "stop unpromising trials early, by the metric after each epoch"))] = "none"
    max_failures: Annotated[int, Field(ge=0, le=1_000_000, description=(
        "the search ends once more trials than this failed (error, divergence, out of memory)"))] = 3
    confirm_seeds: Annotated[list[Seed], Field(max_length=100, description=(
        "re-run the best configuration with each of these seeds: mean ± 95% CI"))] = field(default_factory=list)
    tpe: Annotated[TpeSettings | None, Field(description="settings of sampler = 'tpe'")] = None
    asha: Annotated[AshaSettings | None, Field(description="settings of pruner = 'asha'")] = None
    median: Annotated[MedianSettings | None, Field(description="settings of pruner = 'median'")] = None


@dataclass
class SearchPlan:
    """A checked search: the model entry with its ranges, and how trials become runs."""

    config: SearchConfig
    direction: str  # "minimize" or "maximize"
    epoch_metric: bool  # the metric is in every epoch's record (pruning can use it)
    label: str  # the [[models]] entry
    model: str  # its registry name
    params: dict  # as written, ranges included
    train: dict  # [train] merged with the entry's train, ranges included, seed set
    dimensions: list  # _space.Dimension, in the order of the study file
    seed: int  # the study's seed: the sampler's, and every trial's

    def spec(self, name: str, values: dict, seed: int | None = None):
        """The run of one configuration (``values`` by dimension name) as a plan.RunSpec."""
        from ..models import check_params
        from ..plan import RunSpec

        params = _space.substitute(self.params, [d for d in self.dimensions if d.table == "params"], values)
        train = _space.substitute(self.train, [d for d in self.dimensions if d.table == "train"], values)
        sweep = dict(values)
        if seed is not None:
            train["seed"] = sweep["seed"] = seed
        check_params(self.model, params, "models[0].params")
        cfg = validate(TrainConfig, train, "models[0].train")
        return RunSpec(name, self.label, self.model, params, cfg, sweep, "models[0]")

    def describe(self) -> list[str]:
        """What the search will run, for ``aelab show``."""
        c = self.config
        confirm = (f"; the best configuration again with seeds {', '.join(map(str, c.confirm_seeds))}"
                   if c.confirm_seeds else "")
        lines = [f"Search: {c.trials} trials of {self.label} ({self.model}), {c.sampler} sampler (seed "
                 f"{self.seed}), pruner {c.pruner}, {self.direction} {c.metric}, at most {c.max_failures} "
                 f"failed trials{confirm}. Ranges:"]
        for d in self.dimensions:
            span = ", ".join(map(repr, d.values)) if d.kind == "choice" else f"{d.values[0]:g} .. {d.values[1]:g}"
            lines.append(f"  {d.name} ({d.where}): {d.kind.replace('_', '-')} {span}")
        return lines

    def ends(self) -> list:
        """The configurations with every range at its low end, and at its high end."""
        return [self.spec(f"search-{end}", {d.name: d.ends()[i] for d in self.dimensions})
                for i, end in enumerate(("low", "high"))]


def check_search(table, entries: list, train: dict, seed, steps: list, data, max_runs: int) -> SearchPlan:
    """The ``[search]`` table of a study and its ranges, checked; ``entries`` are the study's
    config.ModelEntry, ``steps`` its raw [[steps]] tables."""
    from ..registry import MODELS

    cfg = validate(SearchConfig, table, "search")
    if len(entries) != 1:
        raise ConfigError(f"A search samples the settings of one model, but the study has {len(entries)} "
                          "[[models]] entries; keep one (put the choice between models in its own study).")
    if isinstance(seed, list):
        raise ConfigError(f"seed = {short(seed)} is a sweep; a search runs every trial with one seed "
                          "(give search.confirm_seeds to repeat the best configuration).")
    _check_settings(cfg)
    m = entries[0]
    merged = {"seed": seed, **train, **m.train}
    dims = _space.find(m.params, "params", "models[0].params")
    for key in merged:
        where = "models[0].train" if key in m.train else "train"
        dims += _space.find(merged[key], "train", f"{where}.{key}", (key,))
    dims = _unique_names(dims)
    if not dims:
        raise ConfigError("search: the study has no range to sample; write one where a value is "
                          "expected, e.g. learning_rate = { log_uniform = [1e-5, 1e-2] }.")
    seeded = [d for d in dims if d.path[0] == "seed"]
    if seeded:
        raise ConfigError(f"{seeded[0].where}: the seed cannot be searched; use search.confirm_seeds.")
    info = MODELS.get(m.model, where="models[0].model").info
    metric, epoch_metric = _check_metric(cfg, info.loss_terms, steps, data)
    direction = cfg.direction or ("maximize" if metric.endswith(HIGHER_IS_BETTER) else "minimize")
    plan = SearchPlan(cfg, direction, epoch_metric, m.name, m.model, m.params, merged, dims, seed)
    _check_values(plan, MODELS.get(m.model).fn)
    _check_budget(cfg, dims, max_runs)
    return plan


def check_no_ranges(entries: list, train: dict) -> None:
    """A range outside a search would be read as a bad value: say what it needs instead."""
    tables = [(train, "train")] + [(t, f"models[{i}].{k}") for i, m in enumerate(entries)
                                   for t, k in ((m.params, "params"), (m.train, "train"))]
    for table, where in tables:
        found = _space.find(table, "", where)
        if found:
            raise ConfigError(f"{found[0].where} is a range, which only a study with a [search] table "
                              "samples; add [search] or give one value.")


def _check_settings(cfg: SearchConfig) -> None:
    """A settings table belongs to the sampler or pruner chosen."""
    for key, chosen in (("tpe", cfg.sampler), ("asha", cfg.pruner), ("median", cfg.pruner)):
        if getattr(cfg, key) is not None and chosen != key:
            owner = "sampler" if key == "tpe" else "pruner"
            raise ConfigError(f"search.{key} sets the {key} {owner}, but search.{owner} = {chosen!r}; "
                              f"remove search.{key} or choose {owner} = {key!r}.")
    if len(set(cfg.confirm_seeds)) != len(cfg.confirm_seeds):
        raise ConfigError(f"search.confirm_seeds = {short(cfg.confirm_seeds)} repeats a seed; give each once.")


def _unique_names(dims: list) -> list:
    """A name used in both params and train is told apart by its table: params.x, train.x."""
    names = [d.name for d in dims]
    return [dataclasses.replace(d, name=f"{d.table}.{d.name}") if names.count(d.name) > 1 else d
            for d in dims]


def _check_metric(cfg: SearchConfig, terms: tuple, steps: list, data) -> tuple[str, bool]:
    """The metric is a value the runs produce; pruning needs one reported every epoch."""
    per_epoch = [f"train_{t}" for t in terms] + ([f"val_{t}" for t in terms] if data.has_val else [])
    kinds = [s.get("kind") for s in steps if isinstance(s, dict)]
    after = ["test_loss"] + [r for kind, results in STEP_RESULTS.items() if kind in kinds for r in results]
    if cfg.metric not in per_epoch + after:
        raise ConfigError(f"search.metric = {short(cfg.metric)} is not a value this study's runs "
                          f"produce; choose one of: {listing(per_epoch + after)}.")
    if cfg.metric not in per_epoch + ["test_loss"]:  # steps run once, after the search
        raise ConfigError(f"search.metric = {cfg.metric!r} is computed by a step, which runs after the "
                          f"search rather than per trial; choose one of: {listing(per_epoch + ['test_loss'])}.")
    if cfg.pruner != "none" and cfg.metric not in per_epoch:
        raise ConfigError(f"search.pruner = {cfg.pruner!r} needs a metric reported after every epoch, "
                          f"but {cfg.metric} is known only after training; use pruner = 'none' or "
                          f"one of: {listing(per_epoch)}.")
    return cfg.metric, cfg.metric in per_epoch


def _check_values(plan: SearchPlan, fn) -> None:
    """No sweeps; every end and choice suits its setting; both extreme runs are valid runs."""
    from ..plan import check_values

    lows = {d.name: d.ends()[0] for d in plan.dimensions}
    params = _space.substitute(plan.params, [d for d in plan.dimensions if d.table == "params"], lows)
    train = _space.substitute(plan.train, [d for d in plan.dimensions if d.table == "train"], lows)
    for target, table, where in ((fn, params, "models[0].params"), (TrainConfig, train, "train")):
        swept = check_values(target, table, where)
        if swept:
            raise ConfigError(f"{where}.{swept[0]} is a list of values (a sweep); in a search write it "
                              "as { choice = [...] }.")
    for d in plan.dimensions:
        target, table = (fn, params) if d.table == "params" else (TrainConfig, train)
        for value in d.values if d.kind == "choice" else d.ends():
            top = _space.substitute({d.path[0]: table[d.path[0]]}, [d], {d.name: value})
            base = "models[0].params" if d.table == "params" else (
                "models[0].train" if d.where.startswith("models[0].train") else "train")
            validate(target, top, base)
    plan.ends()  # the model's own checks on the smallest and largest configuration


def _check_budget(cfg: SearchConfig, dims: list, max_runs: int) -> None:
    runs = cfg.trials + len(cfg.confirm_seeds)
    if runs > max_runs:
        raise ConfigError(f"search.trials = {cfg.trials:,} (with {len(cfg.confirm_seeds)} confirmation "
                          f"runs) is more than {max_runs:,} runs; lower it, or raise the limit with "
                          "AELAB_MAX_RUNS if you mean it.")
    if cfg.sampler != "grid":
        return
    ranged = [d for d in dims if d.kind in ("uniform", "log_uniform")]
    if ranged:
        raise ConfigError(f"{ranged[0].where} is a {ranged[0].kind} range, which search.sampler = "
                          "'grid' cannot enumerate; give { choice = [...] } or an int range.")
    points = 1
    for d in dims:
        points *= len(d.values) if d.kind == "choice" else d.values[1] - d.values[0] + 1
        if points > max_runs:
            break
    if cfg.trials > points:
        raise ConfigError(f"search.trials = {cfg.trials:,} is more than the {points:,} points of the grid; "
                          f"lower it to {points:,} at most.")
