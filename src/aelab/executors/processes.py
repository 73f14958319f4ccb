"""``--jobs N``: N runs at a time, each in a worker process of this machine.

The data go to the workers once, in shared memory (not copied per worker or per run). Workers
start with "spawn": forking a process that already ran PyTorch's thread pool can hang. Ctrl-C
or SIGTERM here terminates the workers; their last finished epoch is saved. Workers die with
this process (PR_SET_PDEATHSIG on Linux, and a parent check at every event), so a killed study
leaves no process behind. A worker that dies (killed, out of memory) breaks the pool: its run is
marked failed with a sentence, and the other tasks go on in a new pool from their last epoch.
A search trial asks the driver after every epoch whether to go on: the question travels with
the events, the answer comes back in a shared dict under the run's name (its reply channel).
"""

from __future__ import annotations

import os
import queue as queue_module
import signal
import sys
import time

from ..errors import AelabError
from ._base import (
    Executor,
    Task,
    as_feed,
    longest_first,
    planned_record,
    register_executor,
    train_run,
)

_worker: dict = {}


def _die_with_parent(parent: int) -> None:
    """Ask the kernel to kill this worker when its parent dies; a parent dead already: exit."""
    if sys.platform.startswith("linux"):
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # 1: PR_SET_PDEATHSIG
    if os.getppid() != parent:
        os._exit(1)


def _init_worker(splits: dict, events, replies, threads: int, parent: int) -> None:
    import torch

    _die_with_parent(parent)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides; it stops us with SIGTERM
    torch.set_num_threads(threads)
    _worker.update(splits=splits, events=events, replies=replies, parent=parent)


def _worker_emit(method: str, *args) -> None:
    if os.getppid() != _worker["parent"]:  # the parent died (SIGKILL): stop, nobody listens
        raise SystemExit(1)
    _worker["events"].put((os.getpid(), method, args))


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
        progress = _Progress(emit, feed, replies)
        events, carried = ctx.Queue(), []
        try:
            while (lost := self._pool(ctx, feed, carried, (splits, events, replies), progress)) is not None:
                carried = progress.after_loss(*lost)
        finally:
            if manager:
                manager.shutdown()

    def _pool(self, ctx, feed, carried: list, shared: tuple, progress):
        """Start tasks (``carried`` ones first) in one pool as workers free up. None when all
        finished, else (the tasks in flight, the exit codes of dead workers by pid). A task is
        done once its result is back and its runs' end events arrived (they may come later)."""
        from concurrent.futures import ProcessPoolExecutor
        from concurrent.futures.process import BrokenProcessPool

        pool = ProcessPoolExecutor(self.jobs, mp_context=ctx, initializer=_init_worker,
                                   initargs=(*shared, self.threads_per_run(), os.getpid()))
        workers, pending, events = {}, {}, shared[1]
        try:
            while True:
                free = self.jobs - len(pending)
                starting, carried = carried[:free], carried[free:]
                for task in starting + feed.take(free - len(starting)):
                    pending[pool.submit(_worker_run, task)] = task
                if not pending:
                    pool.shutdown()
                    return None
                workers.update({p.pid: p for p in ctx.active_children()})
                try:
                    progress(*events.get(timeout=0.2))
                except queue_module.Empty:
                    pass
                for future in [f for f in pending if f.done()]:
                    future.result()  # re-raises a worker's exception here
                    if progress.ended.issuperset(pending[future].names):
                        del pending[future]
        except BrokenProcessPool:
            _drain(events, progress)
            pool.shutdown(cancel_futures=True)
            dead = {pid: p.exitcode for pid, p in workers.items() if p.exitcode not in (0, -signal.SIGTERM)}
            return list(pending.values()), dead
        except BaseException:
            pool.shutdown(wait=False, cancel_futures=True)
            for p in workers.values():
                p.terminate()
            for p in workers.values():
                p.join(timeout=10)
            raise


class _Progress:
    """Passes the workers' events on (a search's questions to the feed), and knows per run its
    worker, its last resume state and whether it ended: what is needed to go on after a
    worker died."""

    def __init__(self, emit, feed, replies):
        self.emit, self.feed, self.replies = emit, feed, replies
        self.worker, self.state, self.ended = {}, {}, set()

    def __call__(self, pid: int, method: str, args: tuple) -> None:
        name = args[0]
        if method == "decide":
            self.replies[name] = self.feed.decide(*args)
            return
        if method == "on_run_start":
            self.worker[name] = pid
        elif method == "on_state":
            self.state[name] = args[1]
        elif method == "on_run_end":
            self.ended.add(name)
        self.emit(method, *args)

    def after_loss(self, tasks: list, dead: dict) -> list:
        """The runs of dead workers end as failed (a sentence each); the tasks in flight, with
        the states their runs reached, go on in a new pool. Refuses when nothing was lost."""
        running = [n for t in tasks for n in t.names if n in self.worker and n not in self.ended]
        lost = [n for n in running if self.worker[n] in dead] or running
        if not lost:
            raise AelabError(f"A --jobs worker process died before it trained a run (exit code "
                             f"{', '.join(map(str, dead.values())) or '?'}); the runs finished so far are kept.")
        for t in tasks:
            for spec in t.specs:
                if spec.name in lost:
                    record = planned_record(spec)
                    record.status = "failed"
                    record.reason = (f"Its worker process died ({_how(dead.get(self.worker[spec.name]))}) "
                                     "while it trained; the other runs went on.")
                    self.emit("on_run_end", spec.name, record, None)
                    self.ended.add(spec.name)
        left = []
        for t in tasks:
            keep = [i for i, s in enumerate(t.specs) if s.name not in self.ended]
            if keep:
                left.append(Task(tuple(t.specs[i] for i in keep),
                                 tuple(self.state.get(t.specs[i].name, t.resume(i)) for i in keep)))
        return left


def _how(code) -> str:
    if code is not None and code < 0:
        try:
            return f"killed by signal {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exit code {code}" if code is not None else "cause unknown"


def _drain(events, progress) -> None:
    while True:
        try:
            item = events.get_nowait()
        except (queue_module.Empty, OSError, ValueError):
            return
        progress(*item)
