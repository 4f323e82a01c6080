"""Where jobs run: Slurm (sbatch/sacct/scancel) and the local machine, each behind ``base.Backend``."""

from __future__ import annotations

from .base import Backend
from .local import LocalBackend
from .slurm import SlurmBackend

BACKENDS: dict[str, Backend] = {"slurm": SlurmBackend(), "local": LocalBackend()}


def backend(scheduler: str) -> Backend:
    """The back-end of a profile's ``scheduler`` (or a record's ``backend``)."""
    return BACKENDS[scheduler]
