"""The step contract: what a step declares, what it sees, and the load-time check of a study's steps.

A step is ``fn(ctx, **params)`` registered in ``aelab.registry.STEPS`` with a :class:`StepInfo`.
Its parameters are declared by annotations; they, its references to runs (``runs`` names runs
or ``[[models]]`` entries), what it needs of the data and the results it reads from earlier
steps are all checked when the study loads, before any folder exists or any data is read.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Annotated

from pydantic import Field

from ..datasets import DataInfo
from ..errors import ConfigError
from ..params import listing, short, validate
from ..registry import STEPS

Runs = Annotated[list[str] | None, Field(min_length=1, max_length=10_000, description=(
    "the runs to use, by run name or [[models]] name; all suitable runs when left out"))]
Count = Annotated[int, Field(ge=1, le=1000)]
# Images in one row of a figure: more are not legible, and the figure (and the memory drawing
# it takes) grows with n: 1,000 made gigabytes.
Shown = Annotated[int, Field(ge=1, le=50)]


@dataclass(frozen=True)
class StepInfo:
    """What the step registry knows of a step besides its signature."""

    needs_labels: bool = False  # class labels: checked once the data is loaded, before training
    needs_val: bool = False  # a validation split: checked when the study loads
    # Metrics the step adds to run records (and the raw-pixel baseline) for later steps and reports.
    produces: tuple[str, ...] = ()
    # Results (or step kinds) the step reads; an earlier step must give at least one of them.
    requires: tuple[str, ...] = ()
    # check(params, runs, data, where) raises ConfigError for anything else knowable at load.
    check: Callable[[dict, list, object, str], None] | None = None


def register_step(name: str, *, needs_labels: bool = False, needs_val: bool = False,
                  produces: tuple[str, ...] = (), requires: tuple[str, ...] = (), check=None):
    """Decorator: put a study step ``fn(ctx, **params)``, run after training, under ``name``."""
    return STEPS.register(name, StepInfo(needs_labels, needs_val, tuple(produces), tuple(requires),
                                         check))


@dataclass
class StudyContext:
    """What a study step sees; steps add figures, metrics and summary lines."""

    study: object  # config.Study
    splits: dict  # "train"/"val"/"test" -> data.Dataset
    records: list  # records.RunRecord per run, in study order
    models: dict  # run name -> trained model (runs that trained at least one epoch)
    folder: object  # runs.RunFolder
    console: object  # rich Console
    summary: list[str] = field(default_factory=list)  # verdicts / comparisons, in words
    baselines: list[dict] = field(default_factory=list)  # e.g. the raw-pixel entry
    figures: list[str] = field(default_factory=list)
    captions: dict[str, str] = field(default_factory=dict)
    data_info: DataInfo | None = None  # what the study ran on (datasets.DataInfo)
    data_dir: object = None  # the data folder the study ran with, for steps that load more data

    def selected(self, runs: list[str] | None = None) -> list:
        """Records named by run or model-entry name (all runs by default), in study order."""
        return [r for r in self.records if runs is None or set(run_names(r)) & set(runs)]

    def trained(self, runs: list[str] | None = None) -> list:
        """(record, model) of the selected runs that trained to a usable model."""
        return [(r, self.models[r.name]) for r in self.selected(runs) if r.trained and r.name in self.models]

    def save_figure(self, name: str, fig, caption: str = "") -> None:
        self.folder.save_figure(name, fig)
        self.figures.append(name)
        if caption:
            self.captions[name] = caption


def run_names(run) -> tuple[str, ...]:
    """What a step's ``runs`` may call a run (a plan.RunSpec or records.RunRecord): its name,
    its [[models]] entry, and its name without the seed, which selects every seed of a
    repeated run (``stacked-bs256`` for ``stacked-bs256-seed0`` ... ``-seed4``)."""
    base = run.name.rsplit("-seed", 1)[0] if "seed" in run.sweep else run.name
    return (run.name, run.label, base)


@dataclass
class StepSpec:
    kind: str  # a registered step, e.g. "loss_curves"
    params: dict = field(default_factory=dict)  # checked, defaults filled in
    given: dict = field(default_factory=dict)  # as written in the study


def check_steps(raw: list, runs: list, data) -> list[StepSpec]:
    """The [[steps]] of a study, each checked against its declaration, the planned runs and the
    results of the steps before it."""
    known = {n for r in runs for n in run_names(r)}
    given_before: set[str] = set()  # step kinds so far and the results they produce
    out = []
    for i, s in enumerate(raw):
        where = f"steps[{i}]"
        if not isinstance(s, dict) or "kind" not in s:
            raise ConfigError(f"{where} needs a kind; choose one of: {', '.join(STEPS.names())}.")
        entry = STEPS.get(s["kind"], where=f"{where}.kind")
        info: StepInfo = entry.info
        given = {k: v for k, v in s.items() if k != "kind"}
        params = validate(entry.fn, given, where)
        for name in params.get("runs") or []:
            if name not in known:
                raise ConfigError(f"{where}.runs: no run or model named {short(name)}; there are: "
                                  f"{listing(sorted(known))}.")
        if info.needs_val and not data.has_val:
            raise ConfigError(f"{where} ({s['kind']}) needs a validation split, but data.split = "
                              f"{data.split} has none; give three weights (train, val, test).")
        if info.requires and not set(info.requires) & given_before:
            raise ConfigError(_missing_requirement(where, s["kind"], info.requires))
        if info.check:
            info.check(params, runs, data, where)
        given_before |= {s["kind"], *info.produces}
        out.append(StepSpec(s["kind"], params, given))
    return out


def _missing_requirement(where: str, kind: str, requires: tuple[str, ...]) -> str:
    """One sentence: what the step reads and which step kinds give it."""
    makers = [e.name for e in STEPS.entries()
              if e.name in requires or set(e.info.produces) & set(requires)]
    add = " or ".join(makers) if makers else "a step that produces it"
    return (f"{where} ({kind}) reads {' or '.join(requires)} from an earlier step, but no step "
            f"before it produces that; add {add} before {where}.")


# ---------------------------------------------------------------- helpers the step families share


def eval_split(ctx):
    """The split evaluations report on: test, or validation when there is no test split."""
    return ctx.splits["test"] if "test" in ctx.splits else ctx.splits["val"]


def summary_line(name: str, values: dict) -> str:
    """``- name: key 0.1234, key value`` (floats to 4 places), one line of a step's summary."""
    return f"- {name}: " + ", ".join(f"{k} {v:.4f}" if isinstance(v, float) else f"{k} {v}"
                                     for k, v in values.items())


def evaluated(ctx, runs) -> list:
    """The chosen trained runs, as ``ctx.trained``; k-sparse runs get their ``k`` noted, so the
    accuracy-against-k figure can place them."""
    out = ctx.trained(runs)
    for r, model in out:
        if r.model == "k-sparse":
            r.metrics["k"] = _setting(r, model, "k")
    return out


def _setting(record, model, key: str):
    """A run's value of a model setting: as swept or given, else the built model's."""
    if key in record.sweep:
        return record.sweep[key]
    if key in record.params:
        return record.params[key]
    return getattr(model, "spec", {}).get("params", {}).get(key)


def raw_pixels(ctx) -> dict:
    """The baseline entry for features that are the pixels themselves (made on first use)."""
    for e in ctx.baselines:
        if e.get("name") == "raw-pixels":
            return e
    entry = {"name": "raw-pixels", "model": None, "label": "raw-pixels"}
    ctx.baselines.append(entry)
    return entry
