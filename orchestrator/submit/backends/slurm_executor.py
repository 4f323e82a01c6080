"""submitit's SlurmExecutor for a rendered sbatch script (kept apart: only ``submit`` needs submitit's import)."""

from __future__ import annotations

import contextlib
import io
from pathlib import Path
from typing import Any

import submitit


class SbatchRefused(Exception):
    """sbatch refused the script; the message is its stderr (``slurm.refusal`` makes it one line)."""


class TemplateSlurmExecutor(submitit.SlurmExecutor):
    """submitit's SlurmExecutor submitting a rendered sbatch script as it is."""

    def __init__(self, folder: Path, script: str, num_tasks: int) -> None:
        super().__init__(folder)
        self._script = script
        self._ntasks = num_tasks
        self.submitted_id: str | None = None
        """The id sbatch answered, as soon as it did (submitit still writes files after that)."""
        # submitit parses sbatch's answer with a static method: this instance's copy also remembers the id
        setattr(self, "_get_job_id_from_submission_command", self._remember_id)

    def _remember_id(self, output: bytes | str) -> str:
        self.submitted_id = submitit.SlurmExecutor._get_job_id_from_submission_command(output)
        return self.submitted_id

    def _make_submission_file_text(self, command: str, uid: str) -> str:
        return self._script

    def _num_tasks(self) -> int:
        return self._ntasks

    def submit_script(self) -> Any:
        """sbatch the script; SbatchRefused with sbatch's stderr when it says no (submitit's own copy of that stderr
        is kept off the terminal). OSError (submitit could not write its copy of the script) is left to the caller."""
        try:
            with contextlib.redirect_stderr(io.StringIO()):
                return self._submit_command("")
        except submitit.core.utils.FailedJobError as exc:
            raise SbatchRefused(str(exc)) from exc
