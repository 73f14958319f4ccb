"""The study-file reference (``aelab docs``), generated from the code that reads study files.

Every key, type, default and meaning comes from the declarations the loader checks against
(``aelab.params``: the ``StudyFile``, ``DataConfig``, ``ModelEntry``, ``TrainConfig`` and
``EarlyStopping`` fields, each model factory's and each step's parameters) and from the
registries (models, steps, datasets, optimizers), so the reference cannot describe a key the
loader does not take. The examples of sweep run names are expanded by the planner itself.
``python -m aelab.docs > docs/study-file.md`` refreshes the shipped copy; a test fails when
that copy is out of date.
"""

from __future__ import annotations

import dataclasses
import inspect
import re
import sys
import typing

from .errors import AelabError

REFRESH = "python -m aelab.docs > docs/study-file.md"
MISSING = "(no description)"

# Topics with a section of their own; a model, step or dataset name is a topic too.
SECTIONS = ("study", "data", "train", "models", "steps", "quick", "sweeps", "search", "overrides", "extends",
            "datasets")


# ---------------------------------------------------------------- formatting


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
    from .params import describe

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


# ---------------------------------------------------------------- sections


def _intro() -> str:
    return "\n".join([
        "# The study file",
        "",
        "A study is one TOML file: the data, how to train, the models (each a registered model "
        "with its parameters) and the steps that analyse the trained models. `aelab run FILE.toml` "
        "runs it, `aelab show FILE.toml` checks it and lists its runs without training. Every key "
        "below is checked when the study loads, before any data is read: a wrong key or value is "
        "one sentence naming it.",
        "",
        f"This reference is generated from the code (`aelab docs [TOPIC]` prints it; `{REFRESH}` "
        "refreshes this file). Topics: " + _name_list(SECTIONS) + ", or the name of a model, step "
        "or dataset.",
        "",
        "A complete study, the built-in `fashion-shoes` (SPEC 1.1):",
        "",
        "```toml",
        _builtin_text("fashion-shoes"),
        "```",
    ])


def _builtin_text(name: str) -> str:
    from .config import builtin_studies

    return builtin_studies()[name].read_text(encoding="utf-8").strip()


def _study() -> str:
    from .config import StudyFile

    return "\n".join([
        "## Top-level keys",
        "",
        *_settings(StudyFile),
        "- `extends` (string; default not set): a built-in study name or a .toml file (relative to "
        "this file) that this study changes; see [extends](#extends).",
        "- `quick` (table; default not set): the reduced budget applied by `--quick`; see "
        "[quick](#quick).",
    ])


def _data() -> str:
    from . import datasets  # noqa: F401  (register the datasets)
    from .config import DataConfig
    from .registry import DATASETS

    return "\n".join([
        "## [data]",
        "",
        "Which images, and how they are split. Splits are stratified by class and seeded by the "
        "study's `seed` (the first seed when seeds are swept), so every run of a study sees the "
        "same images. Pixels are scaled to [0, 1].",
        "",
        *_settings(DataConfig),
        "",
        f"`dataset` is a built-in dataset ({_name_list(DATASETS.names())}; see "
        "[Datasets](#datasets)), a `.npz` file (array `x` of images (N, H, W), (N, H, W, C) or "
        "(N, C, H, W), uint8 or floats in [0, 1]; optional `y` labels and `class_names`), or a "
        "folder of PNG/JPEG images with one subfolder per class (or the images directly in it, "
        "unlabelled). Paths are relative to the working directory.",
        "",
        "```toml",
        "[data]",
        'dataset = "fashion-mnist"',
        'classes = ["Sandal", "Sneaker", "Ankle boot"]',
        "split = [5, 1, 1]",
        "```",
    ])


def _train() -> str:
    from .optim import OPTIMIZERS
    from .train import EarlyStopping, TrainConfig

    optimizers = [f"`{name}` ({lr:g})" for name, (_, _, lr) in OPTIMIZERS.items()]
    return "\n".join([
        "## [train]",
        "",
        "How every run trains; a model entry's own `train` table overrides these keys for that "
        "model. A list where one value is expected is a sweep (see [Sweeps](#sweeps)).",
        "",
        *_settings(TrainConfig, skip={"early_stopping"}),
        "- `early_stopping` (table, see below; default not set): stop a run when the monitored "
        "value stops improving.",
        "",
        "Optimizers follow Keras's update rules and defaults; the default learning rate of each: "
        + ", ".join(optimizers) + ".",
        "",
        "### [train.early_stopping]",
        "",
        "Keras `EarlyStopping` semantics: an epoch improves only if its value < best - "
        "`min_delta`, and the run stops after `patience` epochs in a row without improvement.",
        "",
        *_settings(EarlyStopping),
        "",
        "```toml",
        "[train]",
        "epochs = 50",
        "batch_size = [32, 256]",
        'optimizer = "nadam"',
        "learning_rate = 1e-4",
        'early_stopping = { monitor = "val_loss", patience = 5, min_delta = 1e-2 }',
        "```",
    ])


def _model_section(entry) -> str:
    terms = entry.info.loss_terms
    lines = [f"### {entry.name}", "", _markdown_doc(inspect.getdoc(entry.fn) or ""), ""]
    lines += ["Parameters (`params`):", ""] + (_settings(entry.fn) or ["none"])
    lines += ["", "Values per epoch (for `early_stopping.monitor`): "
              + _name_list(f"{p}_{t}" for p in ("train", "val") for t in terms) + "."]
    return "\n".join(lines)


def _models(names=None) -> str:
    from .config import ModelEntry
    from .registry import MODELS

    entries = MODELS.entries()
    out = [
        "## [[models]]",
        "",
        "One entry per model to train; each becomes one run per combination of swept values.",
        "",
        *_settings(ModelEntry),
        "",
        "```toml",
        "[[models]]",
        'name = "sparse"',
        'model = "stacked"',
        "params = { hidden = [256, 50], activity_l1 = 1e-6 }",
        "train = { batch_size = 256 }",
        "```",
        "",
        f"The registered models: {_name_list(e.name for e in entries)}. Every model reconstructs "
        "its input; `loss` and the output activation are model parameters.",
    ]
    for e in entries:
        out += ["", _model_section(e)]
    return "\n".join(out)


def _step_section(entry) -> str:
    info = entry.info
    needs = [w for flag, w in ((info.needs_labels, "class labels"), (info.needs_val, "a validation split"))
             if flag]
    lines = [f"### {entry.name}", "", _markdown_doc(inspect.getdoc(entry.fn) or "")]
    if needs:
        lines += ["", "Needs " + " and ".join(needs) + "."]
    if info.requires:
        lines += ["", "Reads " + " or ".join(f"`{r}`" for r in info.requires) + " from an earlier "
                  "step (checked when the study loads)."]
    if info.produces:
        lines += ["", "Adds " + ", ".join(f"`{p}`" for p in info.produces) + " to each run's metrics."]
    lines += ["", "Options:", ""] + (_settings(entry.fn) or ["none"])
    return "\n".join(lines)


def _steps() -> str:
    from . import steps  # noqa: F401  (registers the step kinds)
    from .registry import STEPS

    entries = STEPS.entries()
    out = [
        "## [[steps]]",
        "",
        "What the study does after training, in order: each entry names a `kind` and sets its "
        "options. A step's `runs` option names runs (`stacked-bs256`) or model entries "
        "(`stacked`: all of its runs); checked when the study loads.",
        "",
        "```toml",
        "[[steps]]",
        'kind = "reconstructions"',
        'runs = ["stacked-bs256", "sparse-bs256"]',
        "n = 15",
        "```",
        "",
        f"The step kinds: {_name_list(e.name for e in entries)}.",
    ]
    for e in entries:
        out += ["", _step_section(e)]
    return "\n".join(out)


def _quick() -> str:
    return "\n".join([
        "## [quick]",
        "",
        "A reduced budget for a try-out, applied by `aelab run STUDY --quick` (and "
        "`load_study(..., quick=True)`): its tables merge into the study key by key, and its "
        "`[train]` settings also beat each model's own `train` ones. `[quick.steps.<kind>]` sets "
        "options of every step of that kind. Run folders and reports of a quick run say so.",
        "",
        "```toml",
        "[quick]",
        "data = { limit = 2100 }",
        "train = { epochs = 3 }",
        "",
        "[quick.steps.finetune]",
        "epochs = 2",
        "```",
    ])


def _search() -> str:
    from .search import _schema
    from .search._space import FORMS

    AshaSettings, MedianSettings, TpeSettings = _schema.AshaSettings, _schema.MedianSettings, _schema.TpeSettings
    SearchConfig, STEP_RESULTS = _schema.SearchConfig, _schema.STEP_RESULTS

    results = ", ".join(f"`{r}` ({kind})" for kind, names in STEP_RESULTS.items() for r in names)
    return "\n".join([
        "## [search]",
        "",
        "Instead of a sweep, sample: write a range where one value is expected, in `[train]`, the "
        f"model's `train` or its `params` (also inside a list): {FORMS}. With a `[search]` table the "
        "study's one `[[models]]` entry is trained once per trial (`trial-000`, ...) with a "
        "configuration that Optuna's sampler picks, every trial with the study's seed; the pruner "
        "stops unpromising trials by the metric after each epoch (status `pruned`). The trials "
        "are stored in the run folder (`search.journal`), so `aelab run --resume DIR` continues a "
        "search and samples what an uninterrupted one would. The best configuration is then "
        "trained once per `confirm_seeds` seed (`confirm-seed<s>`) for its mean ± 95% CI.",
        "",
        *_settings(SearchConfig, skip={"tpe", "asha", "median"}),
        "",
        "A metric known only after training: `test_loss`. The results of steps "
        f"({results}) are not yet searchable: steps run once, after the search.",
        "",
        *(line for key, target in (("tpe", TpeSettings), ("asha", AshaSettings), ("median", MedianSettings))
          for line in (f"### [search.{key}]", "", _markdown_doc(inspect.getdoc(target)), "", *_settings(target), "")),
        "The built-in `search-shoes` (SPEC 1.8):",
        "",
        "```toml",
        _builtin_text("search-shoes"),
        "```",
    ])


# A sweep over a model parameter and the seed, expanded by the planner for the reference.
_SWEEP_EXAMPLE = {
    "name": "sweep-example", "seed": [0, 1],
    "data": {"dataset": "mnist-5k"},
    "train": {"epochs": 20, "batch_size": 64},
    "models": [{"name": "ksparse", "model": "k-sparse", "params": {"k": [25, 40]}},
               {"name": "stacked", "model": "stacked", "params": {"hidden": [[256, 50], [128, 32]]}}],
}


def _sweeps() -> str:
    from .config import build_study
    from .plan import ALIASES

    study = build_study(_SWEEP_EXAMPLE)
    names = [r.name for r in study.runs]
    aliases = ", ".join(f"`{k}` → `{v}`" for k, v in ALIASES.items())
    return "\n".join([
        "## Sweeps",
        "",
        "A list where a setting expects one value is a sweep: in a model's `params`, in `[train]` "
        "or a model's `train`, and the top-level `seed`. A study trains one run per model entry "
        "and combination of swept values (the cartesian product). A setting whose value is "
        "itself a list (such as `hidden`) is swept by a list of lists.",
        "",
        "```toml",
        "seed = [0, 1]",
        "",
        "[[models]]",
        'name = "ksparse"',
        'model = "k-sparse"',
        "params = { k = [25, 40] }",
        "",
        "[[models]]",
        'name = "stacked"',
        'model = "stacked"',
        "params = { hidden = [[256, 50], [128, 32]] }",
        "```",
        "",
        f"gives {len(names)} runs: {_name_list(names)}. A run is named after its model entry and "
        f"its swept values, with short names for some train settings ({aliases}).",
        "",
        "`seed = [0, 1, 2]` repeats every configuration once per seed; the results table, the "
        "report and `aelab compare` then give each configuration's mean ± 95% confidence "
        "interval (Student's t) over its seeds. The data split always uses the first seed, so "
        "the repeats differ only in initialisation, shuffling and noise.",
    ])


def _overrides() -> str:
    return "\n".join([
        "## Overrides",
        "",
        "`--set KEY=VALUE` (repeatable, on `aelab run` and `aelab show`; "
        "`load_study(..., overrides=[...])` in Python) changes one setting after the file and `--quick`. The value is read as "
        "TOML (`3`, `1e-4`, `[32, 256]`, `'adam'`), else as a string. Keys:",
        "",
        "- `train.epochs=5`, `data.limit=2000`, `seed=[0,1,2]`: a path of table keys;",
        "- `models.<name>.params.activity_l1=1e-5`, `models.<name>.train.batch_size=64`: a key "
        "inside the model entry with that `name`;",
        "- `steps.<kind>.n=5`: a key of every step of that `kind`.",
        "",
        "`--seed N` sets the top-level seed. Precedence: the file (after `extends`), then "
        "`[quick]`, then the overrides.",
    ])


def _extends() -> str:
    return "\n".join([
        "## extends",
        "",
        "`extends = \"fashion-shoes\"` (a built-in name or a .toml file, relative to this file) "
        "starts from that study and changes only what this file gives: tables merge key by key; "
        "arrays (`[[models]]`, `[[steps]]`) and plain values replace the base's. Chains are "
        "allowed (at most 16 long), cycles are not.",
        "",
        "```toml",
        'extends = "fashion-shoes"',
        'name = "fashion-shoes-adam"',
        "",
        "[train]",
        'optimizer = "adam"',
        "```",
    ])


def _shape(shape) -> str:
    if not shape:
        return "varies"
    c, h, w = shape
    return f"{h}×{w} " + ("grayscale" if c == 1 else f"{c} channels")


def _dataset_section(entry) -> str:
    from .datasets import how_to_get

    info = entry.info
    split = info.official_split
    classes = info.classes
    lines = [f"### {entry.name}", "", info.description, "",
             f"- images: {_shape(info.image_shape)}",
             f"- classes ({len(classes)}): " + ", ".join(classes),
             "- official split: " + (" / ".join(f"{k} {v:,}" for k, v in split.items())
                                     + " (`split = \"official\"`)" if split else "none (use split weights)"),
             f"- how to get it: {how_to_get(entry.name)}"]
    if info.debian:
        lines.append(f"- Debian's package installs it in `{info.debian}`")
    return "\n".join(lines)


def _datasets() -> str:
    from . import datasets  # noqa: F401  (register the datasets)
    from .registry import DATASETS

    out = [
        "## Datasets",
        "",
        "The built-in datasets (`aelab data` says which are on this machine). IDX files are looked "
        "for in `--data-dir` (only there, when given), `$AELAB_DATA/<name>`, the user cache "
        "(`$XDG_CACHE_HOME/aelab/<name>`, else `~/.cache/aelab/<name>`), Debian's package, then "
        "downloaded from the official mirrors and checked by SHA-256.",
    ]
    for e in DATASETS.entries():
        out += ["", _dataset_section(e)]
    return "\n".join(out)


_BUILDERS = {"study": _study, "data": _data, "train": _train, "models": _models, "steps": _steps,
             "quick": _quick, "sweeps": _sweeps, "search": _search, "overrides": _overrides, "extends": _extends,
             "datasets": _datasets}


# ---------------------------------------------------------------- the reference


def reference(topic: str | None = None) -> str:
    """The study-file reference as Markdown: everything, one section (``SECTIONS``), or the
    part about one model, step or dataset by name."""
    from . import datasets, models, steps  # noqa: F401  (register the datasets, models and step kinds)
    from .registry import DATASETS, MODELS, STEPS

    if topic is None:
        parts = [_intro()] + [_BUILDERS[s]() for s in SECTIONS]
        return "\n\n".join(parts) + "\n"
    key = topic.strip().lower() if isinstance(topic, str) else ""
    if key in _BUILDERS:
        return _BUILDERS[key]() + "\n"
    found = []
    if key in MODELS:
        found.append("## Model\n\n" + _model_section(MODELS.get(key)))
    if key in STEPS:
        found.append("## Step\n\n" + _step_section(STEPS.get(key)))
    if key in DATASETS:
        found.append("## Dataset\n\n" + _dataset_section(DATASETS.get(key)))
    if found:
        return "\n\n".join(found) + "\n"
    raise AelabError(f"Unknown docs topic {topic!r}; choose one of: {', '.join(SECTIONS)}, or a "
                     f"model ({', '.join(MODELS.names())}), step ({', '.join(STEPS.names())}) or "
                     f"dataset ({', '.join(DATASETS.names())}).")


def main(argv: list[str] | None = None) -> int:
    """``python -m aelab.docs [TOPIC]``: the reference as Markdown on stdout."""
    argv = sys.argv[1:] if argv is None else argv
    try:
        text = reference(argv[0] if argv else None)
    except AelabError as err:
        print(f"aelab: {err}", file=sys.stderr)
        return 2
    sys.stdout.write(text)
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
