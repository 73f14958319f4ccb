"""Studies: load and validate a TOML study, expand its sweeps into runs, run it.

A study file has ``name``, ``description``, ``seed``, a ``[data]`` table, a ``[train]`` table
(any scalar given as a list is a sweep: ``batch_size = [32, 256]`` gives two runs per model),
``[[models]]`` (``name``, registry ``model``, ``params``, per-model ``train`` overrides),
``[[steps]]`` (analyses and figures after training, by ``kind``) and ``[quick]`` (overrides
applied by ``--quick``; ``[quick.steps.<kind>]`` sets parameters of the steps of that kind).
Precedence: study file, then ``--quick``, then ``--set`` overrides.
Everything is validated when the study loads, before any data is read or folder made.
"""

from __future__ import annotations

import copy
import inspect
import itertools
import sys
import time
import types
import typing
from collections.abc import Callable
from dataclasses import MISSING, dataclass, field, fields, is_dataclass
from pathlib import Path

from .errors import AelabError, ConfigError
from .train import TrainConfig

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

BUILTIN_DIR = Path(__file__).parent / "studies"
STEPS: dict[str, Callable] = {}
LABELLED_STEPS: set[str] = set()  # steps that need class labels (probes, clustering scores)


def register_step(name: str, needs_labels: bool = False):
    """Decorator: a study step ``fn(ctx, **params)`` run after training, named in ``[[steps]]``.

    ``needs_labels``: the study stops with a ConfigError right after loading unlabelled data,
    before any training, instead of failing in the step.
    """

    def deco(fn):
        STEPS[name] = fn
        if needs_labels:
            LABELLED_STEPS.add(name)
        return fn

    return deco


@dataclass
class DataConfig:
    dataset: str = "mnist-5k"  # a name (fashion-mnist, mnist, mnist-5k, digits) or a path
    fallback: str | None = None  # used when `dataset` cannot be found offline (mnist -> mnist-5k)
    part: str = "all"  # IDX sets: "train" (60k), "test" (10k) or "all" (both, 70k)
    classes: list | None = None  # keep these classes (names or indices); None keeps all
    split: list[float] = field(default_factory=lambda: [5.0, 1.0, 1.0])  # train/val/test weights
    limit: int | None = None  # stratified subsample to this many images first (--quick)


@dataclass
class ModelSpec:
    name: str  # run-name prefix, e.g. "sparse"
    model: str  # registry name, e.g. "stacked"
    params: dict = field(default_factory=dict)  # keyword arguments of the model factory
    train: dict = field(default_factory=dict)  # overrides of [train] for this model only


@dataclass
class StepSpec:
    kind: str  # a registered step, e.g. "loss_curves"
    params: dict = field(default_factory=dict)


@dataclass
class Study:
    name: str
    description: str
    seed: int
    data: DataConfig
    train: dict  # as in the file: lists are sweeps, expanded by expand_runs
    models: list[ModelSpec]
    steps: list[StepSpec]
    resolved: dict  # the study as run (file + quick + overrides), written to study.toml
    source: str = ""


@dataclass
class RunSpec:
    name: str  # e.g. "stacked-bs32"
    label: str  # model spec name, e.g. "stacked"
    model: str
    params: dict
    train: TrainConfig
    sweep: dict  # the swept values of this run, e.g. {"batch_size": 32}


# ---------------------------------------------------------------- loading and validation


def builtin_studies() -> dict[str, Path]:
    return {p.stem: p for p in sorted(BUILTIN_DIR.glob("*.toml"))}


def study_path(name_or_path: str) -> Path:
    """The file of a built-in study name or a path."""
    builtins = builtin_studies()
    path = builtins.get(name_or_path, Path(name_or_path))
    if not path.is_file():
        raise AelabError(f"Unknown study {name_or_path!r}; use a file path or one of: {', '.join(builtins)}.")
    return path


def read_study_file(name_or_path: str, _chain: tuple[Path, ...] = ()) -> tuple[dict, str]:
    """The raw TOML of a built-in study name or a file path (merged onto the study it
    ``extends``, if any), and the file it came from."""
    path = study_path(name_or_path)
    try:
        raw = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as err:
        raise ConfigError(f"Study file {path} is not valid TOML ({err}).") from None
    base_name = raw.pop("extends", None)
    if base_name is None:
        return raw, str(path)
    # A variant names the study it extends and changes only what differs: tables merge key by key,
    # arrays ([[models]], [[steps]]) and values replace the base's.
    chain = (*_chain, path.resolve())
    if not isinstance(base_name, str) or study_path(base_name).resolve() in chain:
        raise ConfigError(f"extends in {path} must name another study (one that does not extend "
                          f"it back), got {base_name!r}.")
    base, _ = read_study_file(base_name, chain)
    _merge(base, raw)
    return base, str(path)


def parse_override(text: str) -> tuple[list[str], object]:
    """``train.epochs=3`` -> (["train", "epochs"], 3); the value is read as TOML, else a string."""
    if "=" not in text:
        raise ConfigError(f"Override {text!r} must look like key.path=value.")
    key, value = text.split("=", 1)
    try:
        parsed = tomllib.loads(f"v = {value}")["v"]
    except tomllib.TOMLDecodeError:
        parsed = value
    return key.strip().split("."), parsed


def _set_path(d: dict, keys: list[str], value) -> None:
    for k in keys[:-1]:
        d = d.setdefault(k, {})
        if not isinstance(d, dict):
            raise ConfigError(f"Override path {'.'.join(keys)} goes through a non-table value.")
    d[keys[-1]] = value


def _merge(base: dict, extra: dict) -> None:
    for k, v in extra.items():
        if isinstance(v, dict) and isinstance(base.get(k), dict):
            _merge(base[k], v)
        else:
            base[k] = copy.deepcopy(v)


def load_study(name_or_path: str, quick: bool = False, overrides=(), seed: int | None = None) -> Study:
    """Read, merge (file, then quick, then overrides) and validate a study."""
    raw, source = read_study_file(name_or_path)
    resolved = copy.deepcopy(raw)
    quick_table = resolved.pop("quick", {})
    if quick:
        # [quick.steps.<kind>] lowers the budget of every step of that kind (e.g. fewer epochs).
        step_budgets = quick_table.pop("steps", {})
        if not isinstance(step_budgets, dict):
            raise ConfigError("quick.steps must be a table of step kinds, e.g. [quick.steps.finetune].")
        _merge(resolved, quick_table)
        for step in resolved.get("steps", []):
            if isinstance(step, dict) and isinstance(step_budgets.get(step.get("kind")), dict):
                step.update(step_budgets[step["kind"]])
        # A [quick] train setting also beats a model's own one (else `epochs = 100` would survive).
        for m in resolved.get("models", []):
            if isinstance(m, dict) and isinstance(m.get("train"), dict):
                for key in quick_table.get("train", {}):
                    m["train"].pop(key, None)
    for item in overrides:
        keys, value = parse_override(item) if isinstance(item, str) else item
        if keys[0] == "models" and len(keys) > 1:  # models.<name>.params.x = v
            spec = next((m for m in resolved.get("models", []) if m.get("name") == keys[1]), None)
            if spec is None:
                raise ConfigError(f"Override {'.'.join(keys)}: no model named {keys[1]!r}.")
            _set_path(spec, keys[2:], value)
        else:
            _set_path(resolved, keys, value)
    if seed is not None:
        resolved["seed"] = seed
    return validate_study(resolved, source)


def validate_study(d: dict, source: str = "") -> Study:
    _check_keys(d, {"name", "description", "seed", "data", "train", "models", "steps"}, "")
    name = _typed(d.get("name"), str, "name")
    seed = _typed(d.get("seed", 0), int, "seed")
    data = _build(DataConfig, d.get("data", {}), "data")
    if len(data.split) not in (2, 3) or min(data.split) <= 0:
        raise ConfigError(f"data.split must be 2 or 3 positive weights, got {data.split}.")
    if data.part not in ("train", "test", "all"):
        raise ConfigError(f"data.part must be 'train', 'test' or 'all', got {data.part!r}.")
    if data.limit is not None and data.limit < 10:
        raise ConfigError(f"data.limit must be at least 10, got {data.limit}.")
    train = d.get("train", {})
    if not isinstance(train, dict):
        raise ConfigError("train must be a table.")
    models_raw = d.get("models")
    if not models_raw or not isinstance(models_raw, list):
        raise ConfigError("A study needs at least one [[models]] entry.")
    models = []
    for i, m in enumerate(models_raw):
        spec = _build(ModelSpec, m, f"models[{i}]")
        from .models import check_param_names, check_params

        check_param_names(spec.model, spec.params, where=f"models[{i}].params.")
        try:
            check_params(spec.model, spec.params)
        except ConfigError as err:
            raise ConfigError(f"models[{i}] ({spec.name}): {err}") from None
        models.append(spec)
    names = [m.name for m in models]
    if len(set(names)) != len(names):
        raise ConfigError(f"Model names must be unique, got {names}.")
    from . import steps as _registers_steps  # noqa: F401

    steps = []
    for i, s in enumerate(d.get("steps", [])):
        if not isinstance(s, dict) or "kind" not in s:
            raise ConfigError(f"steps[{i}] needs a kind; choose one of: {', '.join(sorted(STEPS))}.")
        kind = s["kind"]
        if kind not in STEPS:
            raise ConfigError(f"steps[{i}].kind: unknown step {kind!r}; choose one of: {', '.join(sorted(STEPS))}.")
        params = {k: v for k, v in s.items() if k != "kind"}
        allowed = [p for p in inspect.signature(STEPS[kind]).parameters if p != "ctx"]
        _check_keys(params, set(allowed), f"steps[{i}]")
        steps.append(StepSpec(kind, params))
    study = Study(
        name=name,
        description=str(d.get("description", "")),
        seed=seed,
        data=data,
        train=train,
        models=models,
        steps=steps,
        resolved=d,
        source=source,
    )
    expand_runs(study)  # validates every train setting of every run
    return study


_ALIASES = {"batch_size": "bs", "learning_rate": "lr", "optimizer": "opt", "epochs": "ep"}


def expand_runs(study: Study) -> list[RunSpec]:
    """One run per model and per combination of swept values, with validated TrainConfigs."""
    runs = []
    for i, m in enumerate(study.models):
        merged = {**study.train, **m.train}
        where = f"models[{i}].train" if m.train else "train"
        sweep_keys = [k for k, v in merged.items() if isinstance(v, list)]
        for combo in itertools.product(*(merged[k] for k in sweep_keys)):
            values = dict(zip(sweep_keys, combo))
            cfg = _build(TrainConfig, {**merged, **values, "seed": merged.get("seed", study.seed)}, where)
            _check_train(cfg, where)
            suffix = "".join(f"-{_ALIASES.get(k, k)}{v:g}" if isinstance(v, float) else f"-{_ALIASES.get(k, k)}{v}"
                             for k, v in values.items())
            runs.append(RunSpec(m.name + suffix, m.name, m.model, dict(m.params), cfg, values))
    return runs


def _check_train(cfg: TrainConfig, where: str) -> None:
    from .optim import OPTIMIZERS

    checks = [
        (cfg.epochs >= 1, "epochs", cfg.epochs, "an integer >= 1"),
        (cfg.batch_size >= 1, "batch_size", cfg.batch_size, "an integer >= 1"),
        (cfg.learning_rate is None or cfg.learning_rate > 0, "learning_rate", cfg.learning_rate, "a number > 0"),
        (cfg.optimizer in OPTIMIZERS, "optimizer", cfg.optimizer, "one of " + ", ".join(OPTIMIZERS)),
        (cfg.input_noise >= 0, "input_noise", cfg.input_noise, "a number >= 0"),
        (cfg.device in ("cpu", "cuda", "auto"), "device", cfg.device, "'cpu', 'cuda' or 'auto'"),
    ]
    es = cfg.early_stopping
    if es is not None:
        checks += [
            (es.monitor in ("val_loss", "train_loss", "val_recon", "train_recon"),
             "early_stopping.monitor", es.monitor, "val_loss, train_loss, val_recon or train_recon"),
            (es.patience >= 0, "early_stopping.patience", es.patience, "an integer >= 0"),
            (es.min_delta >= 0, "early_stopping.min_delta", es.min_delta, "a number >= 0"),
        ]
    for ok, key, value, allowed in checks:
        if not ok:
            raise ConfigError(f"{where}.{key} = {value!r} is not allowed; use {allowed}.")


def _check_keys(d: dict, allowed: set[str], path: str) -> None:
    if not isinstance(d, dict):
        raise ConfigError(f"{path or 'The study'} must be a table.")
    for k in d:
        if k not in allowed:
            where = f"{path}.{k}" if path else k
            raise ConfigError(f"Unknown key {where!r}; allowed here: {', '.join(sorted(allowed))}.")


def _typed(value, tp, path: str):
    """Check ``value`` against a type hint; ints are accepted where floats are expected."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        opts = typing.get_args(tp)
        if value is None and type(None) in opts:
            return None
        for opt in opts:
            if opt is type(None):
                continue
            try:
                return _typed(value, opt, path)
            except ConfigError:
                pass
        raise ConfigError(f"{path} = {value!r} has the wrong type; expected {_describe(tp)}.")
    if is_dataclass(tp):
        return _build(tp, value, path)
    if origin is list or tp is list:
        if not isinstance(value, list):
            raise ConfigError(f"{path} = {value!r} must be a list.")
        (item,) = typing.get_args(tp) or (object,)
        return [_typed(v, item, f"{path}[{i}]") for i, v in enumerate(value)]
    if tp is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if tp is object or (isinstance(value, tp) and not (tp is int and isinstance(value, bool))):
        return value
    raise ConfigError(f"{path} = {value!r} has the wrong type; expected {_describe(tp)}.")


def _describe(tp) -> str:
    args = [a for a in typing.get_args(tp) if a is not type(None)]
    if args and typing.get_origin(tp) is not list:
        return " or ".join(_describe(a) for a in args)
    return {int: "an integer", float: "a number", str: "a string", bool: "true or false",
            dict: "a table"}.get(tp, getattr(tp, "__name__", str(tp)))


def _build(cls, d, path: str):
    """Make dataclass ``cls`` from table ``d``, naming the key path of any bad key or value."""
    hints = typing.get_type_hints(cls)
    _check_keys(d, {f.name for f in fields(cls)}, path)
    kwargs = {}
    for f in fields(cls):
        key = f"{path}.{f.name}" if path else f.name
        if f.name in d:
            kwargs[f.name] = _typed(d[f.name], hints[f.name], key)
        elif f.default is MISSING and f.default_factory is MISSING:
            raise ConfigError(f"{key} is required.")
    return cls(**kwargs)


# ---------------------------------------------------------------- running


@dataclass
class RunResult:
    spec: RunSpec
    model: object | None  # the trained model (None if building it failed)
    history: object | None  # train.History
    metrics: dict  # this run's entry in metrics.json


@dataclass
class StudyContext:
    """What a study step sees; steps add figures, metrics and summary lines."""

    study: Study
    splits: dict  # "train"/"val"/"test" -> data.Dataset
    runs: list[RunResult]
    folder: object  # runs.RunFolder
    console: object  # rich Console (recorded into console.log)
    summary: list[str] = field(default_factory=list)  # verdicts / comparison text
    extra_entries: list[dict] = field(default_factory=list)  # e.g. raw-pixel baselines
    figures: list[str] = field(default_factory=list)
    data_info: dict = field(default_factory=dict)
    data_dir: object = None  # the data folder the study was run with, for steps that load more data

    def run(self, name: str) -> RunResult:
        for r in self.runs:
            if r.spec.name == name:
                return r
        raise ConfigError(f"No run named {name!r}; runs are: {', '.join(r.spec.name for r in self.runs)}.")

    def save_figure(self, name: str, fig) -> None:
        self.folder.save_figure(name, fig)
        self.figures.append(name)


def load_data(study: Study, data_dir=None, console=None):
    """Load, filter, subsample and split a study's data; returns (splits, info)."""
    from . import data as D
    from .errors import DataError

    cfg = study.data
    try:
        ds = D.load_dataset(cfg.dataset, part=cfg.part, data_dir=data_dir)
        used_fallback = False
    except DataError:
        if not cfg.fallback:
            raise
        ds = D.load_dataset(cfg.fallback, part=cfg.part, data_dir=data_dir)
        used_fallback = True
    if cfg.classes is not None:
        ds = D.filter_classes(ds, cfg.classes)
    if cfg.limit is not None and cfg.limit < len(ds):
        ds = D.limit_per_class(ds, cfg.limit, seed=study.seed)
    splits = D.stratified_split(ds, cfg.split, seed=study.seed)
    info = {
        "dataset": ds.name,
        "requested": cfg.dataset,
        "fallback_used": used_fallback,
        "source": ds.source,
        "n_images": len(ds),
        "image_shape": list(ds.x.shape[1:]),
        "class_names": list(ds.class_names),
        "splits": {k: len(v) for k, v in splits.items()},
        "distribution": {k: D.class_distribution(v) for k, v in splits.items()} if ds.y is not None else {},
    }
    return splits, info


def _model_summaries(specs: list[RunSpec], input_shape: tuple) -> dict[str, str]:
    """One torchinfo summary per model entry; a model that cannot be built for this data's shape
    is bad input, so it fails before any training or folder, naming the entry."""
    from .models import create_model, summary

    out = {}
    for spec in specs:
        if spec.label not in out:
            try:
                out[spec.label] = summary(create_model(spec.model, input_shape, **spec.params))
            except AelabError as err:
                raise ConfigError(f"models.{spec.label} ({spec.model}) cannot be built for "
                                  f"{'×'.join(map(str, input_shape))} inputs: {err}") from None
    return out


def _train_one(spec: RunSpec, splits, input_shape, console, progress) -> RunResult:
    import math

    from .models import create_model
    from .train import evaluate_loss, fit

    entry = {"name": spec.name, "model": spec.model, "label": spec.label, "params": spec.params,
             **{k: getattr(spec.train, k) for k in ("batch_size", "optimizer")},
             "learning_rate": spec.train.learning_rate, "sweep": spec.sweep}
    model = None
    try:
        import torch

        torch.manual_seed(spec.train.seed)
        model = create_model(spec.model, input_shape, **spec.params)
        task = progress.add_task(spec.name, total=spec.train.epochs, info="", unit="epochs") if progress else None

        def tick(rec):
            if progress is not None:
                info = f"loss {rec['train_loss']:.4f}" + (f"  val {rec['val_loss']:.4f}" if "val_loss" in rec else "")
                progress.update(task, advance=1, info=info)

        hist = fit(model, {"train": splits["train"], "val": splits.get("val")}, spec.train, [tick])
        if progress is not None:
            progress.update(task, completed=spec.train.epochs)
        test = {}
        if "test" in splits and hist.status != "diverged":
            test = evaluate_loss(model, splits["test"], spec.train.eval_batch_size,
                                 spec.train.input_noise, spec.train.seed)
        last = hist.last
        entry.update(
            epochs_run=hist.epochs_run,
            stopped_early=hist.status == "stopped_early",
            status=hist.status,
            train_loss=last.get("train_loss"),
            val_loss=last.get("val_loss"),
            test_loss=test.get("loss", math.nan),
            best_epoch=hist.best_epoch,
            seconds=hist.seconds,
            seconds_per_epoch=hist.seconds / max(hist.epochs_run, 1),
            peak_rss_mb=hist.peak_rss_mb,
            history=hist.epochs,
        )
        if hist.reason:
            entry["reason"] = hist.reason
        return RunResult(spec, model, hist, entry)
    except AelabError as err:
        entry.update(status="failed", reason=str(err), history=[])
    except Exception as err:  # a bug or a numerical failure in one run must not stop the study
        entry.update(status="failed", reason=f"{type(err).__name__}: {err}", history=[])
    console.print(f"[red]Run {spec.name} failed:[/red] {entry['reason']}")
    return RunResult(spec, model, None, entry)


def run_study(study: Study | str, out=None, data_dir=None, console=None, runs_root="runs",
              quiet: bool = False, callbacks=()) -> Path:
    """Run every run of a study, then its steps; returns the finished run folder.

    Nothing is written until the data has loaded; the folder appears complete or not at all.
    """
    import platform

    import torch
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from . import __version__
    from . import steps as _steps  # noqa: F401  (registers the built-in steps)
    from .runs import RunFolder, history_csv, save_checkpoint

    if isinstance(study, str):
        study = load_study(study)
    if console is None:
        # Wide enough for the summary tables when writing to a file or a pipe.
        # Quiet still records console.log, it just prints to nowhere.
        import io

        sink = io.StringIO() if quiet else None
        console = Console(record=True, file=sink, width=None if sys.stdout.isatty() and not quiet else 120)
    specs = expand_runs(study)
    console.rule(f"[bold]{study.name}")
    if study.description:
        console.print(study.description, markup=False, highlight=False)
    from .report.console import print_data, status

    with status(console, f"Loading {study.data.dataset} ..."):
        splits, info = load_data(study, data_dir, console)

    print_data(console, info)
    labelled = sorted({s.kind for s in study.steps} & LABELLED_STEPS)
    if labelled and splits["train"].y is None:
        raise ConfigError(f"Steps {', '.join(labelled)} need class labels, but dataset "
                          f"{study.data.dataset!r} has none; remove those steps or use labelled data.")
    input_shape = tuple(splits["train"].x.shape[1:])
    summaries = _model_summaries(specs, input_shape)  # a model that cannot be built stops here
    for label, text in summaries.items():
        model = next(s.model for s in specs if s.label == label)
        console.print(f"\n[bold]Model {label}[/bold] ({model})")
        console.print(text, markup=False, highlight=False)
    folder = RunFolder.for_study(study.name, out, runs_root)
    results: list[RunResult] = []
    try:
        progress = Progress(TextColumn("{task.description:<22}"), BarColumn(), MofNCompleteColumn(),
                            TextColumn("{task.fields[unit]}"), TimeElapsedColumn(), TextColumn("{task.fields[info]}"),
                            console=console, transient=False, disable=quiet)
        with progress:
            study_task = progress.add_task(study.name, total=len(specs), info="", unit="runs")
            for spec in specs:
                result = _train_one(spec, splits, input_shape, console, progress)
                progress.update(study_task, advance=1)
                if result.model is not None and result.history is not None:
                    save_checkpoint(folder.path / "checkpoints" / f"{spec.name}.safetensors", result.model)
                results.append(result)
                for cb in callbacks:
                    cb(result)
        ctx = StudyContext(study, splits, results, folder, console, data_info=info, data_dir=data_dir)
        for step in study.steps:
            try:
                STEPS[step.kind](ctx, **step.params)
            except AelabError:
                raise
            except Exception as err:
                console.print(f"[red]Step {step.kind} failed:[/red] {type(err).__name__}: {err}")
                ctx.summary.append(f"Step {step.kind} failed: {type(err).__name__}: {err}")
        from .report.console import print_results

        print_results(console, ctx)
        metrics = {
            "study": study.name,
            "description": study.description,
            "dataset": info,
            "seed": study.seed,
            "runs": [r.metrics for r in results] + ctx.extra_entries,
            "summary": ctx.summary,
            "figures": ctx.figures,
            "model_summaries": summaries,
            "environment": {
                "aelab": __version__, "torch": torch.__version__, "python": platform.python_version(),
                "threads": torch.get_num_threads(), "machine": platform.platform(),
                "processor": platform.processor() or platform.machine(),
                "finished": time.strftime("%Y-%m-%d %H:%M:%S"),
            },
        }
        import tomli_w

        folder.write_text("study.toml", tomli_w.dumps(_drop_none(study.resolved)))
        folder.write_json("metrics.json", metrics)
        folder.write_text("history.csv", history_csv(metrics["runs"]))
        console.print(f"\nRun folder: [bold]{folder.final}[/bold] (open report.html in a browser)")
        folder.write_text("console.log", console.export_text())
        from .report.html import write_report

        write_report(folder.path, metrics)  # after console.log, which the report includes
        return folder.finish()
    except BaseException:
        folder.abort(keep=any(r.history is not None for r in results))
        raise


def _drop_none(obj):
    if isinstance(obj, dict):
        return {k: _drop_none(v) for k, v in obj.items() if v is not None}
    if isinstance(obj, list):
        return [_drop_none(v) for v in obj]
    return obj


