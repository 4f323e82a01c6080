"""Slurm's limits on how many jobs a submission may add, read before anything is submitted.

* ``MaxArraySize`` (``scontrol show config``): array task ids stay below it; a sweep is split into chunks.
* ``MaxJobCount`` (``scontrol show config``): the job records slurmctld holds at once (a pending array is one
  record; each started task becomes its own, kept ``MinJobAge`` seconds after it ends). A sweep whose chunks do
  not fit beside the records held now would be refused by sbatch half-way: it is refused before the first chunk.
  One whose tasks may not all fit (they get records as they start) is submitted with a warning.
* ``MaxSubmitJobs`` of the user's association (``sacctmgr``, where accounting has it): pending and running jobs of
  the user, each array task counted. A sweep over it is refused before anything is submitted.

``limits`` asks the cluster (one ``scontrol show config``, one ``squeue``, and one ``sacctmgr`` when accounting is
on); ``check`` is pure and says what would happen to a sweep of so many tasks in so many chunks.
"""

from __future__ import annotations

import getpass
from dataclasses import dataclass

from ...spec.schema import ConfigError
from . import slurm
from .base import TERMINAL_STATES


@dataclass(frozen=True)
class Limits:
    """What the cluster allows and holds now."""

    max_array_size: int
    """MaxArraySize: array task ids must be below it."""
    max_job_count: int | None
    """MaxJobCount: job records slurmctld holds at once (None: unknown)."""
    max_submit_jobs: int | None
    """MaxSubmitJobs of the user's association (None: no limit, or accounting does not say)."""
    held: int = 0
    """Job records slurmctld holds now (pending arrays count once; ended jobs until MinJobAge passes)."""
    queued: int = 0
    """The user's pending and running jobs now, each array task counted (what MaxSubmitJobs counts)."""
    association: str = ""
    """Which association MaxSubmitJobs came from (``user root, account acct``)."""


def _int(text: str | None) -> int | None:
    text = (text or "").strip()
    return int(text) if text.isdigit() else None


def parse_queue(text: str, user: str) -> tuple[int, int]:
    """``squeue -h -t all -o %i|%u|%T`` -> (records held, the user's pending + running tasks)."""
    held = queued = 0
    for line in text.splitlines():
        fields = line.split("|")
        if len(fields) < 3 or not fields[0].strip():
            continue
        held += 1
        job_id, owner, state = (f.strip() for f in fields[:3])
        if owner != user or state.split(" ")[0] in TERMINAL_STATES:
            continue
        _base, _sep, task = job_id.partition("_")
        queued += len(slurm.expand_task_range(task.strip("[]"))) if task.startswith("[") else 1
    return held, queued


def parse_associations(text: str, account: str | None) -> tuple[int | None, str]:
    """``sacctmgr -nP show assoc where users=U format=Account,User,MaxSubmitJobs`` -> the lowest MaxSubmitJobs of
    the user's associations (of ``account`` only, when given) and which association it is."""
    found: list[tuple[int, str]] = []
    for line in text.splitlines():
        fields = line.split("|")
        if len(fields) < 3 or (account and fields[0] != account):
            continue
        if (limit := _int(fields[2])) is not None:
            found.append((limit, f"user {fields[1]}, account {fields[0]}"))
    if not found:
        return None, ""
    return min(found)


def limits(account: str | None) -> Limits:
    """The limits of the cluster SLURM_CONF names, for the current user; raises SlurmError when it does not answer."""
    config = slurm.show_config()
    user = getpass.getuser()
    size = _int(config.get("MaxArraySize")) or slurm.DEFAULT_MAX_ARRAY_SIZE
    max_jobs = _int(config.get("MaxJobCount"))
    if max_jobs is None:
        return Limits(size, None, None)
    held, queued = parse_queue(_answer(["squeue", "-h", "-t", "all", "-o", "%i|%u|%T"]), user)
    max_submit, association = None, ""
    if config.get("AccountingStorageType", "accounting_storage/none") != "accounting_storage/none":
        max_submit, association = parse_associations(
            _answer(["sacctmgr", "-nP", "show", "assoc", "where", f"users={user}", "format=Account,User,MaxSubmitJobs"]),
            account)
    return Limits(size, max_jobs, max_submit, held, queued, association)


def _answer(argv: list[str]) -> str:
    """A client command's output; empty when it fails (the limit it informs is then left unchecked)."""
    try:
        proc = slurm._run(argv, check=False)
    except slurm.SlurmError:
        return ""
    return proc.stdout if proc.returncode == 0 else ""


def describe(found: Limits) -> str:
    """``MaxArraySize 1001; MaxJobCount 50000, 12 records held; MaxSubmitJobs 5000 (user u, account a), 3 queued``."""
    text = f"MaxArraySize {found.max_array_size}"
    if found.max_job_count is not None:
        text += f"; MaxJobCount {found.max_job_count}, {found.held} job records held"
    if found.max_submit_jobs is not None:
        text += f"; MaxSubmitJobs {found.max_submit_jobs} ({found.association}), {found.queued} of yours queued"
    return text


def check(tasks: int, chunks: int, found: Limits) -> list[str]:
    """Warnings for a sweep of ``tasks`` array tasks in ``chunks`` arrays; raises ConfigError (nothing submitted)
    when a limit would stop it half-way."""
    if found.max_submit_jobs is not None and found.queued + tasks > found.max_submit_jobs:
        room = max(0, found.max_submit_jobs - found.queued)
        raise ConfigError("sweep", f"{tasks} array tasks and the {found.queued} jobs you have queued exceed "
                          f"MaxSubmitJobs={found.max_submit_jobs} ({found.association}): Slurm would refuse "
                          "them part-way", f"submit at most {room} variants now (split the sweep file), or ask "
                          "the administrator to raise MaxSubmitJobs")
    if found.max_job_count is None:
        return []
    if found.held + chunks > found.max_job_count:
        room = max(0, found.max_job_count - found.held)
        raise ConfigError("sweep", f"its {chunks} arrays (MaxArraySize {found.max_array_size}) and the "
                          f"{found.held} job records slurmctld holds exceed MaxJobCount={found.max_job_count}: "
                          "sbatch would refuse the later arrays", f"submit at most {room} arrays' worth "
                          f"({room * found.max_array_size} variants) now, or raise MaxJobCount")
    if found.held + chunks + tasks > found.max_job_count:
        return [f"{tasks} tasks and the {found.held} job records held may pass MaxJobCount="
                f"{found.max_job_count}: tasks wait for records to free up (MinJobAge) before they start"]
    return []
