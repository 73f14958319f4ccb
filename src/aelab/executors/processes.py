"""``--jobs N``: N runs at a time, each in a worker process of this machine.

The data go to the workers once, in shared memory (not copied per worker or per run). Workers
start with "spawn": forking a process that already ran PyTorch's thread pool can hang. Ctrl-C
or SIGTERM here terminates the workers; their last finished epoch is saved.
"""

from __future__ import annotations

import os
import queue as queue_module
import signal

from ._base import Executor, longest_first, register_executor, train_run

_worker: dict = {}


def _init_worker(splits: dict, events, threads: int, parent: int) -> None:
    import torch

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides; it stops us with SIGTERM
    torch.set_num_threads(threads)
    _worker.update(splits=splits, events=events, parent=parent)


def _worker_emit(method: str, *args) -> None:
    if os.getppid() != _worker["parent"]:  # the parent died (SIGKILL): stop, nobody listens
        raise SystemExit(1)
    _worker["events"].put((method, args))


def _worker_run(task) -> None:
    train_run(task, _worker["splits"], _worker_emit)


@register_executor("processes", "this machine: --jobs N runs at a time, each in a worker process")
class Processes(Executor):
    def run(self, tasks, splits, emit):
        import torch.multiprocessing as mp  # torch: not at import, the CLI reads this registry

        ctx = mp.get_context("spawn")
        for ds in splits.values():
            ds.x.share_memory_()
            if ds.y is not None:
                ds.y.share_memory_()
        events = ctx.Queue()
        pool = ctx.Pool(self.jobs, initializer=_init_worker,
                        initargs=(splits, events, self.threads_per_run(), os.getpid()))
        try:
            pending = [pool.apply_async(_worker_run, (task,)) for task in longest_first(tasks, splits)]
            while pending:
                try:
                    method, args = events.get(timeout=0.2)
                    emit(method, *args)
                    continue
                except queue_module.Empty:
                    pass
                for result in [r for r in pending if r.ready()]:
                    pending.remove(result)
                    result.get()  # re-raises a worker's exception here
            _drain(events, emit)  # events sent just before the last task returned
            pool.close()
        except BaseException:
            pool.terminate()
            raise
        finally:
            pool.join()


def _drain(events, emit) -> None:
    while True:
        try:
            method, args = events.get_nowait()
        except queue_module.Empty:
            return
        emit(method, *args)
