"""The run folder (``folder``), its checkpoints (``checkpoints``), the resume states of
unfinished runs (``states``) and the listener that writes a study into it (``journal``)."""

from .checkpoints import checkpoint_bytes, load_checkpoint, save_checkpoint
from .folder import FolderError, RunFolder, atomic_write, read_metrics

__all__ = ["RunFolder", "FolderError", "atomic_write", "read_metrics", "checkpoint_bytes",
           "save_checkpoint", "load_checkpoint"]
