"""What a Slurm training job's batch script does for itself: the pre-limit signal's margin, the watchdog beside the
training step and the retry step after it (``node/watchdog.py``, ``node/retry.py``), as the commands it renders."""

from __future__ import annotations

import math

from ..estimate import from_experiment
from ..estimate.params import stage_params
from ..spec.config import Experiment

SIGNAL_SLACK_S = 120
"""Beyond the saves: the iteration in flight when the signal comes, the exit, Slurm's own kill delay."""
MARGIN_STEP_S = 300
"""The margin is rounded up to whole 5 minutes (Slurm's signal timing is itself coarse, up to 60 s early): the
variants of one sweep, whose array shares one script, get one margin unless their checkpoints differ a lot."""


def checkpoint_bytes(exp: Experiment) -> float:
    """One checkpoint of the whole model: bf16 weights, fp32 main weights, Adam's two moments (bf16 or fp32)."""
    setup = from_experiment(exp)
    per_gpu = [stage_params(setup, st) for st in setup.stages]
    params = sum(p.dense * setup.tp + p.expert * setup.ep * setup.etp for p in per_gpu)
    return params * (2 + 4 + (4 if setup.bf16_moments else 8))


def signal_margin_s(exp: Experiment) -> int:
    """Seconds before the time limit that Slurm sends USR1 (``--signal=B:USR1@margin``): two checkpoint saves at
    the profile's write rate (the save the signal starts, and room for a slow one), plus ``SIGNAL_SLACK_S``."""
    save_s = checkpoint_bytes(exp) / (exp.profile.checkpoint_write_gb_s * 1e9)
    return int(math.ceil((2 * save_s + SIGNAL_SLACK_S) / MARGIN_STEP_S) * MARGIN_STEP_S)


def host_python(exp: Experiment) -> str:
    """The batch host's Python for the two standard-library steps: the profile's, or ``python3`` where the job's
    own runs inside a container (the toolkit is on PYTHONPATH there)."""
    return "python3" if exp.profile.container.image else exp.profile.python


def watchdog_command(exp: Experiment, spec: str, log: str) -> list[str]:
    """The watchdog beside srun (the script appends ``--pid``)."""
    p = exp.profile
    return [host_python(exp), "-m", "orchestrator.node.watchdog", "--spec", spec, "--log", log, "--factor",
            str(p.hang_factor), "--floor", str(p.hang_floor_s), "--startup", str(p.hang_startup_s)]


def retry_command(exp: Experiment, spec: str, log: str) -> list[str]:
    """The retry step after srun (the script appends ``--status``, ``--started``, ``--checkpoint-before``)."""
    p = exp.profile
    return [host_python(exp), "-m", "orchestrator.node.retry", "--spec", spec, "--log", log, "--retries", str(p.retries),
            "--backoff", str(p.retry_backoff_s)]
