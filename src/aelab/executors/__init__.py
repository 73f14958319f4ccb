"""Where a study's runs train: ``local`` (this process), ``processes`` (``--jobs N`` worker
processes) or ``ray`` (tasks on a Ray cluster), each one file registered in
``aelab.registry.EXECUTORS``; adding one is a new file here with ``register_executor``.
"""

from __future__ import annotations

from ..registry import EXECUTORS, import_modules
from ._base import (
    Executor,
    ExecutorInfo,
    Task,
    default_jobs,
    estimated_cost,
    planned_record,
    register_executor,
    train_run,
)

__all__ = ["Executor", "ExecutorInfo", "Task", "create_executor", "default_jobs", "estimated_cost",
           "planned_record", "register_executor", "train_run"]


import_modules(__name__, __path__)  # every module of this package registers its executor


def create_executor(name: str, jobs: int | str = 1, threads: int | None = None, address: str | None = None,
                    specs: list = ()) -> Executor:
    """The executor ``name`` for the runs ``specs``, checked: ``jobs`` ("auto" or a number) is
    resolved and capped at the number of runs, and an executor that cannot run here (Ray not
    installed) fails in one sentence before anything is written."""
    entry = EXECUTORS.get(name, "--executor")
    if jobs == "auto":
        jobs, auto_threads = default_jobs(list(specs))
        threads = threads or auto_threads
    jobs = max(1, min(int(jobs), len(specs) or 1))
    if jobs > 1 and entry.info.with_jobs:
        entry = EXECUTORS.get(entry.info.with_jobs)
    executor = entry.fn(jobs, threads, address)
    executor.check()
    return executor
