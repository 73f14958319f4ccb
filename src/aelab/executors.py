"""Where runs train: in this process, in N worker processes (``--jobs``), or as Ray tasks.

Every executor calls the same unit of work, :func:`train_run`, and passes its events back to
the runner, which alone writes the run folder. So the folder,
the console log and the numbers are the same whichever executor trained the runs: each run
seeds its own generators, and the events are written in study order.

Events are ``(kind, run name, payload)``: "start" ({"epochs", "done"}), "epoch" (the epoch
record), "state" (resume-state bytes after the epoch), "end" ({"record", "checkpoint"}).
"""

from __future__ import annotations

import os
import queue as queue_module
import signal
from collections.abc import Callable

from .errors import AelabError
from .models.summary import LOSS_NAMES
from .records import RunRecord

Emit = Callable[[str, str, object], None]


def new_record(spec) -> RunRecord:
    """The record of a planned run before it trains."""
    t = spec.train
    return RunRecord(name=spec.name, model=spec.model, label=spec.label, params=dict(spec.params),
                     sweep=dict(spec.sweep), seed=t.seed, batch_size=t.batch_size, optimizer=t.optimizer,
                     learning_rate=t.learning_rate, epochs_max=t.epochs,
                     loss_name=LOSS_NAMES.get(spec.params.get("loss", "bce"), ""))


def train_run(spec, splits: dict, resume: bytes | None, emit) -> None:
    """Train one planned run on ``splits`` and report it through ``emit(kind, name, payload)``
    (the events above). A run that fails is reported, never raised: the study goes on."""
    from .callbacks import Callback
    from .models import create_model
    from .runs import checkpoint_bytes, load_resume, resume_bytes
    from .train import evaluate_loss, fit, snapshot

    record = new_record(spec)
    model = None

    class Events(Callback):
        def on_epoch_end(self, state, rec):
            emit("state", spec.name, resume_bytes(snapshot(state)))
            emit("epoch", spec.name, rec)

    try:
        state = load_resume(resume) if resume else None
        input_shape = tuple(splits["train"].x.shape[1:])
        model = create_model(spec.model, input_shape, seed=spec.seed, **spec.params)
        emit("start", spec.name, {"epochs": spec.train.epochs, "done": state.epoch if state else 0})
        hist = fit(model, {"train": splits["train"], "val": splits.get("val")}, spec.train,
                   [Events()], resume=state)
        test = {}
        if "test" in splits and hist.status != "diverged":
            test = evaluate_loss(model, splits["test"], spec.train.eval_batch_size,
                                 spec.train.input_noise, spec.train.seed, precision=spec.train.precision)
        last = hist.last
        record.status, record.reason = hist.status, hist.reason
        record.epochs_run, record.best_epoch = hist.epochs_run, hist.best_epoch
        record.stopped_early = hist.status == "stopped_early"
        record.train_loss, record.val_loss = last.get("train_loss"), last.get("val_loss")
        record.test_loss = test.get("loss")
        record.seconds, record.peak_rss_mb = hist.seconds, hist.peak_rss_mb
        record.seconds_per_epoch = hist.seconds / max(hist.epochs_run, 1)
        record.history = hist.epochs
    except AelabError as err:
        record.status, record.reason = "failed", str(err)
    except Exception as err:  # a bug or a numerical failure in one run must not stop the study
        record.status, record.reason = "failed", f"{type(err).__name__}: {err}"
    trained = model is not None and record.epochs_run > 0
    emit("end", spec.name, {"record": record.to_json(), "checkpoint": checkpoint_bytes(model) if trained else None})


def run_local(tasks: list, splits: dict, emit: Emit) -> None:
    """One run after the other in this process."""
    for spec, resume in tasks:
        train_run(spec, splits, resume, emit)


def estimated_cost(spec, n_train: int) -> float:
    """A run's relative training time, for scheduling: its steps, each a fixed overhead plus
    work per image (about 64 images' worth of work per step on a CPU)."""
    steps = -(-n_train // spec.train.batch_size)
    return spec.train.epochs * (steps + n_train / 64)


def default_jobs(specs: list, cores: int | None = None) -> tuple[int, int]:
    """``--jobs auto``: (workers, threads each). Small batches keep a step overhead-bound, so one
    thread does as well as two and runs are better spread one per core; large batches use the
    threads, so fewer runs at a time get more each."""
    cores = cores or os.cpu_count() or 1
    if not specs:
        return 1, cores
    small = sum(s.train.batch_size <= 256 for s in specs) >= len(specs) / 2
    jobs = min(len(specs), cores if small else max(1, cores // 4))
    return jobs, max(1, cores // jobs)


# ---------------------------------------------------------------- worker processes

_worker: dict = {}


def _init_worker(splits: dict, events, threads: int, parent: int) -> None:
    import torch

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides; it stops us with SIGTERM
    torch.set_num_threads(threads)
    _worker.update(splits=splits, events=events, parent=parent)


def _worker_emit(kind: str, name: str, payload) -> None:
    if os.getppid() != _worker["parent"]:  # the parent died (SIGKILL): stop, nobody listens
        raise SystemExit(1)
    _worker["events"].put((kind, name, payload))


def _worker_run(spec, resume) -> None:
    train_run(spec, _worker["splits"], resume, _worker_emit)


def run_processes(tasks: list, splits: dict, emit: Emit, jobs: int, threads: int) -> None:
    """``jobs`` runs at a time, each in a worker process with ``threads`` PyTorch threads.

    The data go to the workers once, in shared memory (not copied per worker or per run).
    Workers start with "spawn": forking a process that already ran PyTorch's thread pool can
    hang. Ctrl-C or SIGTERM here terminates the workers; their last finished epoch is saved.
    """
    import torch.multiprocessing as mp

    ctx = mp.get_context("spawn")
    for ds in splits.values():
        ds.x.share_memory_()
        if ds.y is not None:
            ds.y.share_memory_()
    events = ctx.Queue()
    pool = ctx.Pool(jobs, initializer=_init_worker, initargs=(splits, events, threads, os.getpid()))
    try:
        pending = [pool.apply_async(_worker_run, (spec, resume)) for spec, resume in tasks]
        while pending:
            try:
                emit(*events.get(timeout=0.2))
                continue
            except queue_module.Empty:
                pass
            for result in [r for r in pending if r.ready()]:
                pending.remove(result)
                result.get()  # re-raises a worker's exception here
        while True:  # events sent just before the last task returned
            try:
                emit(*events.get_nowait())
            except queue_module.Empty:
                break
        pool.close()
    except BaseException:
        pool.terminate()
        raise
    finally:
        pool.join()


# ---------------------------------------------------------------- Ray


def check_ray() -> None:
    import importlib.util

    if importlib.util.find_spec("ray") is None:
        raise AelabError("--executor ray needs Ray; install it with pip install -e '.[ray]' "
                         "(or pip install 'ray[default]').")


def _ray_task(spec, data, resume, events):
    import torch

    from .datasets import Dataset

    splits = {k: Dataset(d["name"], torch.from_numpy(d["x"]), None if d["y"] is None else torch.from_numpy(d["y"]),
                         d["class_names"], d["source"]) for k, d in data.items()}
    out = {}

    def emit(kind, name, payload):
        if kind == "end":
            out.update(payload)  # returned with the task, not through the queue
        else:
            events.put((kind, name, payload))

    train_run(spec, splits, resume, emit)
    return out


def run_ray(tasks: list, splits: dict, emit: Emit, threads: int, address: str | None = None) -> None:
    """Each run a Ray task with the CPUs (or GPU) it needs; the data go into the object store
    once; each task returns its record and checkpoint bytes. No address starts a local Ray."""
    import warnings

    check_ray()
    import ray
    from ray.util.queue import Queue

    started = not ray.is_initialized()
    if started:
        try:
            ray.init(address=address, include_dashboard=False, log_to_driver=False,
                     configure_logging=False, **({} if address else {"num_cpus": os.cpu_count()}))
        except Exception as err:  # Ray raises ConnectionError, RuntimeError, ValueError...
            raise AelabError(f"Ray could not start or join {address or 'a local cluster'} "
                             f"({str(err).splitlines()[0][:200]}).") from None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # read-only NumPy views of the object store
            data = ray.put({k: {"name": d.name, "x": d.x.numpy(), "y": None if d.y is None else d.y.numpy(),
                                "class_names": d.class_names, "source": d.source} for k, d in splits.items()})
        events = Queue()
        remote = ray.remote(_ray_task)
        refs = {}
        for spec, resume in tasks:
            gpus = 1 if spec.train.device == "cuda" else 0
            refs[remote.options(num_cpus=threads, num_gpus=gpus).remote(spec, data, resume, events)] = spec.name
        pending = list(refs)
        while pending:
            done, pending = ray.wait(pending, num_returns=1, timeout=0.2)
            _drain(events, emit)
            for ref in done:
                out = ray.get(ref)
                emit("end", refs[ref], out)
        _drain(events, emit)
    except BaseException:
        for ref in refs if "refs" in locals() else []:
            ray.cancel(ref, force=True)
        raise
    finally:
        if started:
            ray.shutdown()


def _drain(events, emit: Emit) -> None:
    while not events.empty():
        emit(*events.get())
