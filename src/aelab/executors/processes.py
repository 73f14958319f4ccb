"""``--jobs N``: N runs at a time, each in a worker process of this machine.

The data go to the workers once, in shared memory (not copied per worker or per run). Workers
start with "spawn": forking a process that already ran PyTorch's thread pool can hang. Ctrl-C
or SIGTERM here terminates the workers; their last finished epoch is saved. Workers die with
this process (PR_SET_PDEATHSIG on Linux, and a parent check at every event), so a killed study
leaves no process behind. A worker that dies (killed, out of memory) breaks the pool: its run is
marked failed with a sentence, and the other tasks go on in a new pool from their last epoch.
"""

from __future__ import annotations

import os
import queue as queue_module
import signal
import sys

from ..errors import AelabError
from ._base import Executor, Task, longest_first, planned_record, register_executor, train_run

_worker: dict = {}


def _die_with_parent(parent: int) -> None:
    """Ask the kernel to kill this worker when its parent dies; a parent dead already: exit."""
    if sys.platform.startswith("linux"):
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # 1: PR_SET_PDEATHSIG
    if os.getppid() != parent:
        os._exit(1)


def _init_worker(splits: dict, events, threads: int, parent: int) -> None:
    import torch

    _die_with_parent(parent)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides; it stops us with SIGTERM
    torch.set_num_threads(threads)
    _worker.update(splits=splits, events=events, parent=parent)


def _worker_emit(method: str, *args) -> None:
    if os.getppid() != _worker["parent"]:  # the parent died (SIGKILL): stop, nobody listens
        raise SystemExit(1)
    _worker["events"].put((os.getpid(), method, args))


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
        progress = _Progress(emit)
        todo = longest_first(tasks, splits)
        while todo:
            lost = self._pool(ctx, todo, splits, events, progress)
            if lost is None:
                return
            todo = progress.after_loss(todo, lost)

    def _pool(self, ctx, tasks, splits, events, progress):
        """Run ``tasks`` in one pool; None when all finished, else the pids of dead workers."""
        from concurrent.futures import ProcessPoolExecutor
        from concurrent.futures.process import BrokenProcessPool

        pool = ProcessPoolExecutor(self.jobs, mp_context=ctx, initializer=_init_worker,
                                   initargs=(splits, events, self.threads_per_run(), os.getpid()))
        workers: dict = {}
        try:
            pending = [pool.submit(_worker_run, task) for task in tasks]
            while pending:
                workers.update({p.pid: p for p in ctx.active_children()})
                try:
                    progress(*events.get(timeout=0.2))
                    continue
                except queue_module.Empty:
                    pass
                for future in [f for f in pending if f.done()]:
                    pending.remove(future)
                    future.result()  # re-raises a worker's exception here
            _drain(events, progress)  # events sent just before the last task returned
            pool.shutdown()
            return None
        except BrokenProcessPool:
            _drain(events, progress)
            pool.shutdown(cancel_futures=True)
            return {pid: p.exitcode for pid, p in workers.items() if p.exitcode not in (0, -signal.SIGTERM)}
        except BaseException:
            pool.shutdown(wait=False, cancel_futures=True)
            for p in workers.values():
                p.terminate()
            for p in workers.values():
                p.join(timeout=10)
            raise


class _Progress:
    """Passes the workers' events on, and knows per run its worker, its last resume state and
    whether it ended: what is needed to go on after a worker died."""

    def __init__(self, emit):
        self.emit, self.worker, self.state, self.ended = emit, {}, {}, set()

    def __call__(self, pid: int, method: str, args: tuple) -> None:
        name = args[0]
        if method == "on_run_start":
            self.worker[name] = pid
        elif method == "on_state":
            self.state[name] = args[1]
        elif method == "on_run_end":
            self.ended.add(name)
        self.emit(method, *args)

    def after_loss(self, tasks: list, dead: dict) -> list:
        """The runs of dead workers end as failed (a sentence each); the tasks left, with the
        states their runs reached, to go on in a new pool. Refuses when nothing was lost."""
        running = [n for t in tasks for n in t.names if n in self.worker and n not in self.ended]
        lost = [n for n in running if self.worker[n] in dead] or running
        if not lost:
            raise AelabError(f"A --jobs worker process died before it trained a run (exit code "
                             f"{', '.join(map(str, dead.values())) or '?'}); the runs finished so far are kept.")
        for t in tasks:
            for spec in t.specs:
                if spec.name in lost:
                    record = planned_record(spec)
                    code = dead.get(self.worker[spec.name])
                    record.status = "failed"
                    record.reason = (f"Its worker process died ({_how(code)}) while it trained; the "
                                     "other runs went on.")
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
