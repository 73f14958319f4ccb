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

import sys

from ..errors import AelabError
from ._format import MISSING, REFRESH

__all__ = ["reference", "main", "SECTIONS", "REFRESH", "MISSING"]

# Topics with a section of their own; a model, step or dataset name is a topic too.
SECTIONS = ("study", "data", "train", "models", "steps", "quick", "sweeps", "search", "overrides", "extends",
            "datasets")


def _builders() -> dict:
    """Section name -> the function that writes it (imported here: the registries are heavy)."""
    from ._config import _data, _extends, _overrides, _quick, _search, _study, _sweeps, _train
    from ._registry import _datasets, _models, _steps

    return {"study": _study, "data": _data, "train": _train, "models": _models, "steps": _steps,
            "quick": _quick, "sweeps": _sweeps, "search": _search, "overrides": _overrides,
            "extends": _extends, "datasets": _datasets}


def reference(topic: str | None = None) -> str:
    """The study-file reference as Markdown: everything, one section (``SECTIONS``), or the
    part about one model, step or dataset by name."""
    from .. import datasets, models, steps  # noqa: F401  (register the datasets, models and step kinds)
    from ..registry import DATASETS, MODELS, STEPS
    from ._intro import intro
    from ._registry import _dataset_section, _model_section, _step_section

    builders = _builders()
    if topic is None:
        parts = [intro(SECTIONS)] + [builders[s]() for s in SECTIONS]
        return "\n\n".join(parts) + "\n"
    key = topic.strip().lower() if isinstance(topic, str) else ""
    if key in builders:
        return builders[key]() + "\n"
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
