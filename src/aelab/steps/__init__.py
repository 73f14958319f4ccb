"""Study steps: what a study does after training, named by ``kind`` in ``[[steps]]``.

One module per family, as ``aelab.models``; importing this package registers every step in
``aelab.registry.STEPS``. The contract (what a step declares and sees, and the load-time check
of a study's steps) is in ``_base``. Adding a step is one function with ``@register_step``.
"""

from __future__ import annotations

from . import (  # noqa: F401  (register the steps)
    classification,
    clustering,
    codes,
    deep_clustering,
    figures,
    generative,
    latent,
    novelty,
    quality,
    verdicts,
)
from ._base import StepInfo, StepSpec, StudyContext, check_steps, register_step, run_names

__all__ = ["StepInfo", "StepSpec", "StudyContext", "check_steps", "register_step", "run_names"]
