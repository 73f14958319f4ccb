"""The study file: its schema, reading it (``extends``, ``[quick]``, ``--set``) and checking it.

A study file has ``name``, ``description``, ``seed``, a ``[data]`` table, a ``[train]`` table,
``[[models]]`` (``name``, registry ``model``, ``params``, per-model ``train`` overrides),
``[[steps]]`` (analyses after training, by ``kind``) and ``[quick]`` (overrides applied by
``--quick``; ``[quick.steps.<kind>]`` sets parameters of the steps of that kind). A list where
one value is expected is a sweep (see ``aelab.plan``). Precedence: file, ``--quick``, ``--set``.

Everything is checked when the study loads, before any data is read or folder made: every
key and value against its declaration (``aelab.params``), names (they become file names),
cross-references (a step's runs exist, the early-stopping monitor is a value the run
produces, a step that needs a validation split has one) and budgets (runs in a sweep, memory
of a model). A study that loads trains to the end without a configuration error.
"""

from __future__ import annotations

import copy
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field

from .datasets import check_dataset_name, class_indices, registered
from .errors import AelabError, ConfigError
from .limits import Limits
from .params import key_text, listing, slug, validate
from .params import short as _short
from .registry import DATASETS
from .train import Seed

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

BUILTIN_DIR = Path(__file__).parent / "studies"
MAX_FILE_BYTES = 1 << 20  # a study file is a page of TOML, not a data set
MAX_EXTENDS = 16  # longest chain of studies extending each other
# ---------------------------------------------------------------- schema


Name = Annotated[str, Field(description=(
    "a name that becomes part of file names: letters, digits, '.', '_', '-'"))]


@dataclass(kw_only=True)
class StudyFile:
    """The top level of a study file."""

    name: Name
    description: Annotated[str, Field(max_length=20_000, description="what the study is about")] = ""
    seed: Annotated[Seed | list[Seed], Field(description=(
        "seeds the data split and every run; a list repeats every run once per seed"))] = 0
    data: Annotated[dict, Field(description="the [data] table")] = field(default_factory=dict)
    train: Annotated[dict, Field(description=(
        "the [train] table; a list where one value is expected is a sweep"))] = field(default_factory=dict)
    models: Annotated[list[dict], Field(min_length=1, max_length=1000, description=(
        "the [[models]] entries"))]
    steps: Annotated[list[dict], Field(max_length=1000, description=(
        "the [[steps]] run after training, in order"))] = field(default_factory=list)
    search: Annotated[dict | None, Field(description=(
        "the [search] table: sample the ranges written in [train] and the model's params and "
        "train with Optuna, instead of sweeping"))] = None


ClassName = Annotated[str, Field(pattern=r"\S", max_length=4096)] | Annotated[int, Field(ge=0)]  # not blank
SplitWeights = Annotated[list[Annotated[float, Field(gt=0, le=1e9)]], Field(min_length=2, max_length=3)]


@dataclass
class DataConfig:
    """``[data]``: types and ranges declared here; :meth:`check` (once, at load) the rest."""

    dataset: Annotated[str, Field(min_length=1, max_length=4096, description=(
        "a dataset name (see `aelab data`), a .npz file or a folder of images"))] = "mnist-5k"
    fallback: Annotated[str | None, Field(max_length=4096, description=(
        "used when `dataset` cannot be found offline, e.g. mnist -> mnist-5k"))] = None
    part: Annotated[Literal["train", "test", "all"], Field(description=(
        "for datasets with an official split: its training part (60,000), test part (10,000) or "
        "both (70,000)"))] = "all"
    classes: Annotated[list[ClassName] | None, Field(min_length=1, max_length=100_000, description=(
        "keep only these classes (names or indices); relabelled 0..K-1"))] = None
    split: Annotated[SplitWeights | Literal["official"], Field(
        description=("train/val/test weights (two weights: train/test, no validation), or "
                     "'official': the dataset's own training and test sets"))] = field(
        default_factory=lambda: [5.0, 1.0, 1.0])
    val: Annotated[Annotated[float, Field(gt=0, lt=1)] | Literal["test"], Field(description=(
        "with split = 'official': the fraction of the training set held out (stratified) for "
        "validation, or 'test' to validate on the test set as the Keras blog did"))] = 0.1
    limit: Annotated[int | None, Field(ge=10, le=10**9, description=(
        "first keep a stratified random sample of this many images (--quick)"))] = None

    @property
    def has_val(self) -> bool:
        return self.split == "official" or len(self.split) == 3

    def check(self) -> None:
        """Names against the dataset registry, and keys that go together: one sentence each."""
        for key in ("dataset", "fallback") if self.fallback else ("dataset",):  # fallback "": none
            check_dataset_name(getattr(self, key), f"data.{key}")
        entry = registered(self.dataset)
        if self.split == "official":
            if entry is None or not entry.info.official_split:
                with_split = [e.name for e in DATASETS.entries() if e.info.official_split]
                raise ConfigError(f"data.split = 'official' needs a dataset with an official train/test "
                                  f"split ({', '.join(with_split)}); {self.dataset!r} has none: give split "
                                  "weights such as [5, 1, 1].")
            if self.part != "all":
                raise ConfigError(f"data.part = {self.part!r} does not go with data.split = 'official', "
                                  "which uses both parts; remove data.part.")
        if self.classes is not None and entry is not None:
            try:
                class_indices(self.classes, entry.info.classes, entry.name, ConfigError)
            except ConfigError as err:
                raise ConfigError(f"data.classes: {err}") from None


@dataclass(kw_only=True)
class ModelEntry:
    name: Name
    model: Annotated[str, Field(description="a registered model (see `aelab list`)")]
    params: Annotated[dict, Field(description=(
        "the model's parameters (see the model list); a list where one value is expected is a "
        "sweep"))] = field(default_factory=dict)
    train: Annotated[dict, Field(description=(
        "[train] settings for this model only"))] = field(default_factory=dict)


@dataclass(kw_only=True)
class QuickTable:
    """``[quick]``: what ``--quick`` changes, merged over the study before it is checked."""

    data: Annotated[dict, Field(description="[data] settings, e.g. limit = 1000")] = field(default_factory=dict)
    train: Annotated[dict, Field(description=(
        "[train] settings; they also beat each model's own train settings"))] = field(default_factory=dict)
    steps: Annotated[dict[str, dict], Field(description=(
        "[quick.steps.<kind>]: settings of every step of that kind, e.g. epochs = 2"))] = field(
        default_factory=dict)
    search: Annotated[dict, Field(description="[search] settings, e.g. trials = 4")] = field(
        default_factory=dict)


@dataclass
class Study:
    name: str
    description: str
    seed: int  # the split seed (the first seed when seeds are swept)
    data: DataConfig
    models: list[ModelEntry]
    steps: list  # steps.StepSpec per [[steps]] entry
    runs: list  # the plan: aelab.plan.RunSpec per run, in order (none for a search)
    resolved: dict  # the study as run (file + quick + overrides), written to study.toml
    source: str = ""
    quick: bool = False
    search: object = None  # aelab.search.SearchPlan for a study with [search]: trials are asked as it runs


# ---------------------------------------------------------------- reading


def builtin_studies() -> dict[str, Path]:
    return {p.stem: p for p in sorted(BUILTIN_DIR.glob("*.toml"))}


def study_path(name_or_path: str, relative_to: Path | None = None) -> Path:
    """The file of a built-in study name or a path (relative to ``relative_to`` if given)."""
    if not isinstance(name_or_path, str) or not name_or_path.strip():
        raise ConfigError(f"A study must be a built-in name or a .toml file, got {_short(name_or_path)}.")
    builtins = builtin_studies()
    if name_or_path in builtins:
        return builtins[name_or_path]
    try:
        path = Path(name_or_path).expanduser()
        if relative_to is not None and not path.is_absolute() and (relative_to / path).is_file():
            path = relative_to / path
        found = path.is_file()
    except (OSError, RuntimeError):  # a name too long for the file system, an unknown ~user
        found = False
    if not found:
        raise AelabError(f"Unknown study {_short(name_or_path)}; use a .toml file or one of: "
                         f"{', '.join(builtins)}.")
    return path


def parse_toml(path: Path) -> dict:
    """A study file's table: UTF-8 TOML of bounded size and depth, or one sentence why not."""
    try:
        with open(path, "rb") as f:  # at most one byte past the limit, whatever the file's size
            raw = f.read(MAX_FILE_BYTES + 1)
    except OSError as err:
        raise ConfigError(f"Study file {path} cannot be read ({err.strerror or err}).") from None
    if len(raw) > MAX_FILE_BYTES:
        raise ConfigError(f"Study file {path} is larger than {MAX_FILE_BYTES // 1024} KB; a study "
                          "file holds settings, not data.")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        raise ConfigError(f"Study file {path} is not UTF-8 text (byte 0x{raw[err.start]:02x} at "
                          f"position {err.start}); save it as UTF-8.") from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        raise ConfigError(f"Study file {path} is not valid TOML ({err}).") from None
    except RecursionError:
        raise ConfigError(f"Study file {path} nests arrays or tables too deeply.") from None


def read_study_file(name_or_path: str, _chain: tuple[Path, ...] = ()) -> tuple[dict, str]:
    """The raw table of a built-in study name or a file path (merged onto the study it
    ``extends``, if any), and the file it came from."""
    path = study_path(name_or_path, _chain[-1].parent if _chain else None)
    raw = parse_toml(path)
    base_name = raw.pop("extends", None)
    if base_name is None:
        return raw, str(path)
    # A variant names the study it extends and changes only what differs: tables merge key by
    # key, arrays ([[models]], [[steps]]) and values replace the base's.
    chain = (*_chain, path.resolve())
    if len(chain) > MAX_EXTENDS:
        raise ConfigError(f"extends in {path}: more than {MAX_EXTENDS} studies extend each other; "
                          "shorten the chain.")
    if not isinstance(base_name, str) or study_path(base_name, path.parent).resolve() in chain:
        raise ConfigError(f"extends in {path} must name another study (one that does not extend "
                          f"it back), got {_short(base_name)}.")
    base, _ = read_study_file(base_name, chain)
    _merge(base, raw)
    return base, str(path)


def _merge(base: dict, extra: dict) -> None:
    for k, v in extra.items():
        if isinstance(v, dict) and isinstance(base.get(k), dict):
            _merge(base[k], v)
        else:
            base[k] = copy.deepcopy(v)


def parse_override(text: str) -> tuple[list[str], object]:
    """``train.epochs=3`` -> (["train", "epochs"], 3); the value is read as TOML, else a string."""
    if not isinstance(text, str) or "=" not in text:
        raise ConfigError(f"Override {_short(text)} must look like key.path=value.")
    key, value = text.split("=", 1)
    try:
        parsed = tomllib.loads(f"v = {value}")["v"]
    except (tomllib.TOMLDecodeError, RecursionError):
        parsed = value
    keys = key.strip().split(".")
    if not all(keys):
        raise ConfigError(f"Override {_short(text)} has an empty key; write it like train.epochs=5.")
    return keys, parsed


def _set_path(d: dict, keys: list[str], value, text: str) -> None:
    for k in keys[:-1]:
        d = d.setdefault(k, {})
        if not isinstance(d, dict):
            raise ConfigError(f"Override {key_text(text)} goes through {key_text(k, 40)!r}, which is not a table.")
    d[keys[-1]] = value


def check_quick(quick) -> QuickTable:
    """The [quick] table checked whether or not --quick is given: its shape, and each value
    against the declaration of the setting it replaces (a list in ``train`` is a sweep)."""
    from . import steps  # noqa: F401  (registers the step kinds)
    from .plan import check_values
    from .registry import STEPS
    from .train import TrainConfig

    table = validate(QuickTable, quick, "quick")
    for key, value in table.data.items():
        validate(DataConfig, {key: value}, "quick.data")
    check_values(TrainConfig, table.train, "quick.train")
    if table.search:
        from .search import SearchConfig

        validate(SearchConfig, table.search, "quick.search")
    for kind, settings in table.steps.items():
        entry = STEPS.get(kind, where="quick.steps")
        for key, value in settings.items():
            if key == "kind":
                raise ConfigError(f"quick.steps.{kind}.kind cannot be changed; [quick.steps.<kind>] "
                                  "sets the other settings of the steps of that kind.")
            validate(entry.fn, {key: value}, f"quick.steps.{kind}")
    return table


def apply_quick(d: dict) -> None:
    """Merge the study's [quick] table: a reduced budget for a try-out."""
    quick = copy.deepcopy(check_quick(d.get("quick", {})))
    _merge(d, {"data": quick.data, "train": quick.train})
    if quick.search and isinstance(d.get("search"), dict):
        _merge(d, {"search": quick.search})
    # [quick.steps.<kind>] lowers the budget of every step of that kind (e.g. fewer epochs).
    for step in d.get("steps", []) if isinstance(d.get("steps"), list) else []:
        if isinstance(step, dict) and isinstance(step.get("kind"), str) and step["kind"] in quick.steps:
            step.update(quick.steps[step["kind"]])
    # A [quick] train setting also beats a model's own one (else `epochs = 100` would survive).
    for m in d.get("models", []) if isinstance(d.get("models"), list) else []:
        if isinstance(m, dict) and isinstance(m.get("train"), dict):
            for key in quick.train:
                m["train"].pop(key, None)


def apply_overrides(d: dict, overrides) -> None:
    """``--set`` values: ``train.epochs=3``, ``models.<name>.params.k=10``, ``steps.<kind>.n=5``."""
    for item in overrides:
        keys, value = parse_override(item) if isinstance(item, str) else item
        text = ".".join(map(str, keys))
        if keys[0] in ("models", "steps") and len(keys) > 1:
            field_ = "name" if keys[0] == "models" else "kind"
            entries = d.get(keys[0], [])
            if not isinstance(entries, list):
                raise ConfigError(f"Override {key_text(text)}: {keys[0]} must be a list of tables "
                                  f"([[{keys[0]}]]), got {_short(entries)}.")
            targets = [e for e in entries if isinstance(e, dict) and e.get(field_) == keys[1]]
            if not targets:
                known = [key_text(e.get(field_), 40) for e in entries if isinstance(e, dict)]
                raise ConfigError(f"Override {key_text(text)}: no {keys[0][:-1]} with {field_} "
                                  f"{key_text(keys[1], 40)!r}; there are: {listing(known) or 'none'}.")
            if len(keys) < 3:
                example = "params.hidden=[128, 16]" if keys[0] == "models" else "n=5"
                raise ConfigError(f"Override {key_text(text)} must set a key inside the {keys[0][:-1]}, "
                                  f"e.g. {keys[0]}.{key_text(keys[1], 40)}.{example}.")
            for target in targets:
                _set_path(target, keys[2:], value, text)
        else:
            _set_path(d, keys, value, text)


def load_study(name_or_path: str, quick: bool = False, overrides=(), seed: int | None = None,
               limits: Limits | None = None) -> Study:
    """Read, merge (file, then quick, then overrides) and check a study.

    With ``quick`` the study is checked twice, as written and with [quick] applied: a reduced
    budget never hides a setting that is wrong in the file (``epochs = 0`` in a model's train
    table that [quick] would replace)."""
    raw, source = read_study_file(name_or_path)
    if not isinstance(raw, dict):  # pragma: no cover - TOML's top level is always a table
        raise ConfigError(f"Study file {source} must hold a table of settings.")
    check_quick(raw.get("quick", {}))
    limits = limits or Limits.from_env()

    def resolve(with_quick: bool) -> dict:
        d = copy.deepcopy(raw)
        if with_quick:
            apply_quick(d)
        d.pop("quick", None)
        apply_overrides(d, overrides)
        if seed is not None:
            d["seed"] = seed
        return d

    if quick:
        build_study(resolve(False), source, quick=False, limits=limits)
    return build_study(resolve(quick), source, quick=quick, limits=limits)


# ---------------------------------------------------------------- checking


def build_study(d: dict, source: str = "", quick: bool = False, limits: Limits | None = None) -> Study:
    """Check a resolved study table and plan its runs; every error is one sentence."""
    from . import plan
    from .steps import check_steps

    top = validate(StudyFile, d)
    slug(top.name, "name")
    data = validate(DataConfig, top.data, "data")
    data.check()
    models = []
    for i, m in enumerate(top.models):
        entry = validate(ModelEntry, m, f"models[{i}]")
        slug(entry.name, f"models[{i}].name")
        models.append(entry)
    names = [m.name for m in models]
    if len(set(names)) != len(names):
        dup = next(n for n in names if names.count(n) > 1)
        raise ConfigError(f"models: the name {dup!r} is used twice; give every model entry its own name.")
    limits = limits or Limits.from_env()
    from .search import check_no_ranges, check_search

    search = None
    if top.search is not None:
        search = check_search(top.search, models, top.train, top.seed, top.steps, data, limits.max_runs)
        runs, planned = search.ends(), []  # trials are asked as the search runs
    else:
        check_no_ranges(models, top.train)
        runs = planned = plan.expand(models, top.train, top.seed, limits.max_runs)
    plan.check_runs(runs, data, limits)
    steps = check_steps(top.steps, runs, data)
    seeds = top.seed if isinstance(top.seed, list) else [top.seed]
    return Study(name=top.name, description=top.description, seed=seeds[0], data=data, models=models,
                 steps=steps, runs=planned, resolved=d, source=source, quick=quick, search=search)

