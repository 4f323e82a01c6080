"""submitit's LocalExecutor for a rendered ``launch_local.sh`` (kept apart: only ``submit`` needs submitit's import).
The job bodies it runs are in ``local_jobs``."""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path
from typing import Any

import submitit

from .local_jobs import TOOLKIT_PARENT, run_local_script, run_local_sweep


class ScriptLocalExecutor(submitit.LocalExecutor):
    """submitit's LocalExecutor running a rendered launch_local.sh as one local job."""

    def submit_script(self, script: Path, log_dir: Path, name: str, run_dir: Path) -> Any:
        """One rendered launch_local.sh as one local job."""
        return self._submit_detached(run_local_script, str(script), str(log_dir), name, str(run_dir))

    def submit_tasks(self, tasks: list[tuple[str, str, str]], run_dir: Path) -> Any:
        """A local sweep: (script, log dir, name) per task, run one after another by one controller."""
        return self._submit_detached(run_local_sweep, tasks, str(run_dir))

    def _submit_detached(self, func: Any, *args: Any) -> Any:
        """Start the controller detached from our stdin/stdout/stderr (it outlives this process: whoever reads
        our output must not wait for the job) with the toolkit importable."""
        saved_path = os.environ.get("PYTHONPATH")
        os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (str(TOOLKIT_PARENT), saved_path) if p)
        if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
            # started from a background shell (`cmd &`) SIGINT is ignored and the controller would inherit that:
            # `cancel` interrupts it with SIGINT, so give it the default disposition
            signal.signal(signal.SIGINT, signal.default_int_handler)
        saved_fds = [os.dup(fd) for fd in (0, 1, 2)]
        sys.stdout.flush()
        sys.stderr.flush()
        try:
            with open(os.devnull, "rb") as null, open(Path(self.folder) / "controller.out", "ab") as out:
                os.dup2(null.fileno(), 0)
                os.dup2(out.fileno(), 1)
                os.dup2(out.fileno(), 2)
                return self.submit(func, *args)
        finally:
            for fd, saved in zip((0, 1, 2), saved_fds):
                os.dup2(saved, fd)
                os.close(saved)
            if saved_path is None:
                os.environ.pop("PYTHONPATH", None)
            else:
                os.environ["PYTHONPATH"] = saved_path
