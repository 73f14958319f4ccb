"""``--jobs N``: N runs at a time, each in a worker process of this machine.

The data go to the workers once, in shared memory (not copied per worker or per run). Workers
start with "spawn": forking a process that already ran PyTorch's thread pool can hang. Ctrl-C
or SIGTERM here terminates the workers; their last finished epoch is saved. A search trial asks
the driver after every epoch whether to go on: the question travels with the events, the answer
comes back in a shared dict under the run's name (its reply channel).
"""

from __future__ import annotations

import os
import queue as queue_module
import signal
import time

from ._base import Executor, as_feed, longest_first, register_executor, train_run

_worker: dict = {}


def _init_worker(splits: dict, events, replies, threads: int, parent: int) -> None:
    import torch

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides; it stops us with SIGTERM
    torch.set_num_threads(threads)
    _worker.update(splits=splits, events=events, replies=replies, parent=parent)


def _worker_emit(method: str, *args) -> None:
    if os.getppid() != _worker["parent"]:  # the parent died (SIGKILL): stop, nobody listens
        raise SystemExit(1)
    _worker["events"].put((method, args))


def _worker_decide(name: str, record: dict):
    """The driver's Feed.decide, asked from here: the run waits for the answer."""
    _worker_emit("decide", name, record)
    while True:
        try:
            return _worker["replies"].pop(name)
        except KeyError:
            if os.getppid() != _worker["parent"]:
                raise SystemExit(1) from None
            time.sleep(0.005)


def _worker_run(task) -> None:
    train_run(task, _worker["splits"], _worker_emit, _worker_decide)


@register_executor("processes", "this machine: --jobs N runs at a time, each in a worker process")
class Processes(Executor):
    def run(self, tasks, splits, emit):
        import torch.multiprocessing as mp  # torch: not at import, the CLI reads this registry

        ctx = mp.get_context("spawn")
        for ds in splits.values():
            ds.x.share_memory_()
            if ds.y is not None:
                ds.y.share_memory_()
        feed = as_feed(tasks, lambda ts: longest_first(ts, splits))
        manager = ctx.Manager() if feed.prunes else None  # a search's reply channels
        replies = manager.dict() if manager else {}
        events = ctx.Queue()
        pool = ctx.Pool(self.jobs, initializer=_init_worker,
                        initargs=(splits, events, replies, self.threads_per_run(), os.getpid()))
        try:
            self._loop(pool, feed, events, replies, emit)
            pool.close()
        except BaseException:
            pool.terminate()
            raise
        finally:
            pool.join()
            if manager:
                manager.shutdown()

    def _loop(self, pool, feed, events, replies, emit) -> None:
        """Start tasks as workers free up. A task is done once its result is back and the end
        events of its runs arrived (a queue's events may come after the result)."""
        pending, ended = [], set()
        while True:
            pending += [(pool.apply_async(_worker_run, (t,)), t.names) for t in feed.take(self.jobs - len(pending))]
            if not pending:
                return
            try:
                method, args = events.get(timeout=0.2)
                if method == "decide":
                    replies[args[0]] = feed.decide(*args)
                else:
                    emit(method, *args)
                    ended.update(args[:1] if method == "on_run_end" else ())
            except queue_module.Empty:
                pass
            for item in [p for p in pending if p[0].ready()]:
                item[0].get()  # re-raises a worker's exception here
                if ended.issuperset(item[1]):
                    pending.remove(item)
