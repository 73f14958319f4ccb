"""The sections on the study file's own tables: top-level keys, data, train, quick, sweeps,
search, overrides and extends, each from the declarations the loader checks against."""

from __future__ import annotations

import inspect

from ._format import _builtin_text, _markdown_doc, _name_list, _settings


def _study() -> str:
    from ..config import StudyFile

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
    from .. import datasets  # noqa: F401  (register the datasets)
    from ..config import DataConfig
    from ..registry import DATASETS

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
    from ..optim import OPTIMIZERS
    from ..train import EarlyStopping, TrainConfig

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
    from ..search import _schema
    from ..search._space import FORMS

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
    from ..config import build_study
    from ..plan import ALIASES

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
