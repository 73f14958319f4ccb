"""One run after the other, in this process."""

from __future__ import annotations

import os

from ._base import Executor, as_feed, register_executor, train_run


@register_executor("local", "this machine: one run after the other in this process, or --jobs N at a "
                   "time in worker processes", with_jobs="processes")
class Local(Executor):
    def run(self, tasks, splits, emit):
        if self.threads:
            import torch  # not at import: the CLI reads this registry

            torch.set_num_threads(self.threads)
        feed = as_feed(tasks)
        while task := feed.take(1):
            train_run(task[0], splits, emit, feed.decide)

    def threads_per_run(self) -> int:
        return self.threads or os.cpu_count() or 1
