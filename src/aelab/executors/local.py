"""One run after the other, in this process."""

from __future__ import annotations

import os

from ._base import Executor, register_executor, train_run


@register_executor("local", "this machine: one run after the other in this process, or --jobs N at a "
                   "time in worker processes", with_jobs="processes")
class Local(Executor):
    def run(self, tasks, splits, emit):
        if self.threads:
            import torch  # not at import: the CLI reads this registry

            torch.set_num_threads(self.threads)
        for task in tasks:
            train_run(task, splits, emit)

    def threads_per_run(self) -> int:
        return self.threads or os.cpu_count() or 1
