"""The sections on what the registries hold: every model, step and dataset with its parameters."""

from __future__ import annotations

import inspect

from ._format import _markdown_doc, _name_list, _settings


def _model_section(entry) -> str:
    terms = entry.info.loss_terms
    lines = [f"### {entry.name}", "", _markdown_doc(inspect.getdoc(entry.fn) or ""), ""]
    lines += ["Parameters (`params`):", ""] + (_settings(entry.fn) or ["none"])
    lines += ["", "Values per epoch (for `early_stopping.monitor`): "
              + _name_list(f"{p}_{t}" for p in ("train", "val") for t in terms) + "."]
    return "\n".join(lines)


def _models(names=None) -> str:
    from ..config import ModelEntry
    from ..registry import MODELS

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
    from .. import steps  # noqa: F401  (registers the step kinds)
    from ..registry import STEPS

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


def _shape(shape) -> str:
    if not shape:
        return "varies"
    c, h, w = shape
    return f"{h}×{w} " + ("grayscale" if c == 1 else f"{c} channels")


def _dataset_section(entry) -> str:
    from ..datasets import how_to_get

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
    from .. import datasets  # noqa: F401  (register the datasets)
    from ..registry import DATASETS

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
