"""``--executor ray``: each run a Ray task with the CPUs (or GPU) it needs.

The data go into the object store once; each task returns its end event (record and
checkpoint bytes) with its result, and sends its other events through a Ray queue. No
``--ray-address`` starts a local Ray. A search trial's question after each epoch goes through
the same queue; the answer comes back in a small actor (:class:`_Replies`) under the run's name.
Each record says on which node and process it trained (``metrics["ray_worker"]``).
"""

from __future__ import annotations

import importlib.util
import os
import time

from ..errors import AelabError
from ._base import Executor, as_feed, longest_first, register_executor, train_run


class _Replies:
    """The driver's answers to its search trials' questions, by run name (a Ray actor)."""

    def __init__(self):
        self.box = {}

    def put(self, name, answer):
        self.box[name] = answer

    def take(self, name):
        return self.box.pop(name, ("none",))


def _ray_task(task, data, events, replies):
    import socket

    import ray
    import torch

    from ..datasets import Dataset

    splits = {k: Dataset(d["name"], torch.from_numpy(d["x"]), None if d["y"] is None else torch.from_numpy(d["y"]),
                         d["class_names"], d["source"]) for k, d in data.items()}
    ends, worker = [], f"{ray.get_runtime_context().get_node_id()[:12]} {socket.gethostname()}:{os.getpid()}"

    def emit(method, *args):
        if method == "on_run_end":  # its checkpoint (megabytes) returns with the task, not through the queue
            args[1].metrics["ray_worker"] = worker
            ends.append((method, args))
        else:
            events.put((method, args))

    def decide(name, record):
        events.put(("decide", (name, record)))
        while (answer := ray.get(replies.take.remote(name))) == ("none",):
            time.sleep(0.01)
        return answer

    train_run(task, splits, emit, decide)
    return ends


@register_executor("ray", "a Ray cluster: every run a task (--ray-address, else a local Ray)")
class Ray(Executor):
    def check(self):
        if importlib.util.find_spec("ray") is None:
            raise AelabError("--executor ray needs Ray; install it with pip install -e '.[ray]' "
                             "(or pip install 'ray[default]').")

    def threads_per_run(self) -> int:
        return self.threads or 1  # a task per run, one CPU each unless --threads says

    def run(self, tasks, splits, emit):
        import ray  # an optional extra, and slow to import

        feed = as_feed(tasks, lambda ts: longest_first(ts, splits))
        started = not ray.is_initialized()
        if started:
            try:
                # "local" starts a Ray of its own: without --ray-address, never join a cluster
                # that happens to run on this machine (ray.init() alone would).
                ray.init(address=self.address or "local", include_dashboard=False, log_to_driver=False,
                         configure_logging=False, **({} if self.address else {"num_cpus": os.cpu_count()}))
            except Exception as err:  # Ray raises ConnectionError, RuntimeError, ValueError...
                raise AelabError(f"Ray could not start or join {self.address or 'a local cluster'} "
                                 f"({str(err).splitlines()[0][:200]}).") from None
        refs = []
        try:
            self._run(ray, feed, splits, emit, refs)
        except BaseException:
            for ref in refs:
                ray.cancel(ref, force=True)
            raise
        finally:
            if started:
                ray.shutdown()

    def _run(self, ray, feed, splits, emit, refs: list) -> None:
        import warnings

        from ray.util.queue import Queue

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # read-only NumPy views of the object store
            data = ray.put({k: {"name": d.name, "x": d.x.numpy(), "y": None if d.y is None else d.y.numpy(),
                                "class_names": d.class_names, "source": d.source} for k, d in splits.items()})
        events, remote = Queue(actor_options={"num_cpus": 0}), ray.remote(_ray_task)  # no CPU: it only relays
        replies = ray.remote(_Replies).options(num_cpus=0).remote() if feed.prunes else None
        slots = max(self.jobs, int(ray.cluster_resources().get("CPU", 1)) // self.threads_per_run())
        pending = []
        while True:
            for task in feed.take(slots - len(pending)):
                gpus = 1 if task.device == "cuda" else 0
                refs.append(remote.options(num_cpus=self.threads_per_run(), num_gpus=gpus).remote(
                    task, data, events, replies))
                pending.append(refs[-1])
            if not pending:
                return
            done, pending = ray.wait(pending, num_returns=1, timeout=0.2)
            _drain(events, feed, replies, emit)
            for ref in done:
                for method, args in ray.get(ref):
                    emit(method, *args)


def _drain(events, feed, replies, emit) -> None:
    while not events.empty():
        method, args = events.get()
        if method == "decide":
            replies.put.remote(args[0], feed.decide(*args))
        else:
            emit(method, *args)
