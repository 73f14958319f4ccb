"""What a study's training reports as it happens, to every listener alike (Keras' CallbackList).

The run folder's writer, the progress display, each ``--track`` tracker and a user's own
listeners all subclass :class:`Listener` and receive the same events; a training unit sends
an event as ``(method, args)``, so events from worker processes or Ray tasks reach the same
listeners, in the driver, as events from this process.
"""

from __future__ import annotations

from pathlib import Path

from .errors import ConfigError


class Listener:
    """Hooks with no-op defaults; override those you need. Per run, in this order:
    ``on_run_start``, then per epoch ``on_state`` and ``on_epoch``, then ``on_run_end``; runs
    trained at once (``--jobs``, Ray) interleave. ``on_study_end`` comes once, after the steps."""

    def on_run_start(self, name: str, epochs: int, done: int) -> None:
        """Run ``name`` starts: ``epochs`` at most, ``done`` of them finished before a resume."""

    def on_state(self, name: str, state: bytes) -> None:
        """The run's resume state after an epoch (safetensors bytes, see ``runs.states``)."""

    def on_epoch(self, name: str, record: dict) -> None:
        """An epoch finished: its record (``epoch``, ``train_loss``, ``val_loss``, ``seconds``...)."""

    def on_run_end(self, name: str, record, checkpoint: bytes | None) -> None:
        """The run ended: its records.RunRecord and checkpoint (None if no epoch trained)."""

    def on_study_end(self, folder: Path, metrics: dict) -> None:
        """The steps ran: the study's folder (before it gets its final name) and metrics.json."""


class Listeners(list):
    """The listeners of one study; ``listeners(method, *args)`` sends an event to each in order."""

    def __call__(self, method: str, *args) -> None:
        for listener in self:
            getattr(listener, method)(*args)


def check_listeners(listeners) -> list[Listener]:
    """A user's ``listeners=`` as a list, or one sentence if one is not a Listener."""
    listeners = list(listeners or ())
    bad = next((x for x in listeners if not isinstance(x, Listener)), None)
    if bad is not None:
        raise ConfigError(f"listeners: {type(bad).__name__} is not an aelab.Listener; subclass it and "
                          "override the hooks you need.")
    return listeners
