"""What a Slurm training job's batch script does for itself: the pre-limit signal's margin (and the rule that it
leaves time to save), the watchdog beside the training step and the retry step after it (``node/watchdog.py``,
``node/retry.py``), as the commands it renders."""

from __future__ import annotations

import math

from ..estimate import from_experiment
from ..estimate.params import stage_params
from ..spec.config import Experiment
from .problem import Problem

SIGNAL_SLACK_S = 60
"""Beyond the save: the iteration in flight when the signal comes and the exit (Slurm may send the signal up to 60 s
late)."""


def checkpoint_bytes(exp: Experiment) -> float:
    """One checkpoint of the whole model: bf16 weights, fp32 main weights, Adam's two moments (bf16 or fp32)."""
    setup = from_experiment(exp)
    per_gpu = [stage_params(setup, st) for st in setup.stages]
    params = sum(p.dense * setup.tp + p.expert * setup.ep * setup.etp for p in per_gpu)
    return params * (2 + 4 + (4 if setup.bf16_moments else 8))


def signal_margin_s(exp: Experiment) -> int:
    """Seconds before the time limit that Slurm sends USR1 (``--signal=B:USR1@margin``): the run's
    ``training.exit_margin_minutes``, the one setting of when a job stops and saves before its limit (Megatron's
    ``--exit-duration-in-mins`` is the limit less the same margin; the signal also covers the start-up that clock
    does not see)."""
    return exp.recipe.training.exit_margin_minutes * 60


def rule_exit_margin(exp: Experiment) -> list[Problem]:
    """A warning when the exit margin is shorter than one checkpoint save at the profile's write rate (plus
    ``SIGNAL_SLACK_S``): the save the signal starts would be killed by the time limit."""
    if exp.profile.scheduler != "slurm":
        return []
    try:
        size = checkpoint_bytes(exp)
    except ValueError:   # a layout the estimator cannot place: rule_layout names it
        return []
    need = size / (exp.profile.checkpoint_write_gb_s * 1e9) + SIGNAL_SLACK_S
    if signal_margin_s(exp) >= need:
        return []
    return [Problem("training.exit_margin_minutes",
                    f"{exp.recipe.training.exit_margin_minutes} min before the time limit is shorter than saving one "
                    f"checkpoint ({size / 1e9:,.0f} GB at {exp.profile.checkpoint_write_gb_s:g} GB/s, "
                    f"profile.checkpoint_write_gb_s) and finishing the iteration: ~{need / 60:.0f} min",
                    f"set training.exit_margin_minutes={math.ceil(need / 60)}, or profile.checkpoint_write_gb_s to "
                    "your file system's write rate", "warning")]


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
