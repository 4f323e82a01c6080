"""Scheduler queries: ``sacct`` / ``squeue`` / ``scontrol`` / ``scancel`` with typed results.

Parsing functions (``parse_*``) are pure and unit-tested without Slurm; the functions that run commands are thin
wrappers around them. Every client command finds the cluster through ``SLURM_CONF`` in the environment.

``job_states`` asks ``sacct`` once for all jobs (array tasks come back as ``12_3``). When accounting is unavailable
(``sacct`` says "accounting storage is disabled" or fails) it falls back to one ``scontrol -o show job`` call, which
knows the jobs slurmctld still holds (running, pending, and finished ones for ``MinJobAge`` seconds), and says so in
each state's ``note``. Jobs that ``sacct`` does not know yet (accounting is asynchronous: a job submitted a moment
ago) are looked up the same way. ``sacct -D`` lists every attempt of a requeued job: an attempt that ended in
NODE_FAIL is kept in the note, with the reason of each of its nodes that is down or drained now (``sinfo -R``).
"""

from __future__ import annotations

import getpass
import re
import subprocess
from collections.abc import Iterable, Sequence
from dataclasses import replace
from pathlib import Path

from ...spec import slurm_time
from ..run_records import RunRecord
from .base import SUBMITIT_DIR, JobRequest, JobState, LaunchError, SubmittedThenFailed, listed_ids

SACCT_FIELDS = ("JobID", "JobIDRaw", "State", "ExitCode", "Elapsed", "NodeList", "DerivedExitCode")
ACCOUNTING_DISABLED = "accounting storage is disabled"
_TIMEOUT_S = 30


class SlurmError(RuntimeError):
    """A Slurm client command failed (message includes the command and its stderr)."""


# ------------------------------------------------------------------------------------------------- pure parsing
def parse_exit_code(text: str) -> tuple[int | None, int | None]:
    """``"1:0"`` -> (1, 0); ``"0:15"`` -> (0, 15); anything else -> (None, None)."""
    m = re.fullmatch(r"\s*(\d+):(\d+)\s*", text or "")
    return (int(m.group(1)), int(m.group(2))) if m else (None, None)


def expand_task_range(spec: str) -> list[int]:
    """Array task spec ``"2-5%2"``, ``"1,3,7-8"``, ``"4"`` -> task ids (the ``%`` throttle is dropped)."""
    ids: list[int] = []
    for part in spec.split("%", 1)[0].split(","):
        part = part.strip()
        if not part:
            continue
        lo, _, rest = part.partition("-")
        hi, _, step = rest.partition(":")
        stop = int(hi) if hi else int(lo)
        ids.extend(range(int(lo), stop + 1, int(step) if step else 1))
    return ids


def _split_array_id(job_id: str) -> tuple[str, list[int] | None]:
    """``"12_3"`` -> ("12", [3]); ``"12_[2-5%2]"`` -> ("12", [2, 3, 4, 5]); ``"12"`` -> ("12", None)."""
    base, sep, task = job_id.partition("_")
    if not sep:
        return base, None
    return base, expand_task_range(task.strip("[]"))


def _make_states(job_id: str, state_text: str, exit_text: str, elapsed: str, nodes: str,
                 source: str, derived_text: str = "") -> list[JobState]:
    state_text = state_text.strip()
    state = state_text.split(" ", 1)[0].rstrip("+") if state_text else "UNKNOWN"
    code, sig = parse_exit_code(exit_text)
    derived, _ = parse_exit_code(derived_text)
    nodes = "" if nodes.strip() in ("None assigned", "(null)", "") else nodes.strip()
    base, tasks = _split_array_id(job_id.strip())
    one = JobState(job_id=base, state=state, exit_code=code, signal=sig, elapsed_s=slurm_time.elapsed_seconds(elapsed),
                   nodes=nodes, raw_state=state_text, source=source, derived_exit_code=derived)
    if tasks is None:
        return [one]
    return [replace(one, job_id=f"{base}_{t}", array_task_id=t) for t in tasks]


def parse_sacct(text: str) -> dict[str, JobState]:
    """Parse ``sacct -X [-D] -P -n -o JobID,JobIDRaw,State,ExitCode,Elapsed,NodeList[,DerivedExitCode]`` output.

    Pending array remainders (``12_[2-5%2]``) expand to one entry per task; step lines (``12.batch``) are skipped.
    With ``-D`` a requeued job has one line per attempt, oldest first: the last one is its state, and an earlier
    attempt that ended in NODE_FAIL is kept in the note (``requeued after NODE_FAIL on n[1-2]``).
    """
    result: dict[str, JobState] = {}
    for line in text.splitlines():
        fields = line.split("|")
        if len(fields) < 6 or "." in fields[0] or not fields[0].strip():
            continue
        job_id, _raw, state, exit_text, elapsed, nodes = fields[:6]
        derived = fields[6] if len(fields) > 6 else ""
        for js in _make_states(job_id, state, exit_text, elapsed, nodes, "sacct", derived):
            before = result.get(js.job_id)
            if before is not None and before.state == "NODE_FAIL":
                js = replace(js, note=f"requeued after NODE_FAIL on {before.nodes}")
            elif before is not None and before.note:
                js = replace(js, note=before.note)
            result[js.job_id] = js
    return result


def parse_down_nodes(text: str) -> dict[str, str]:
    """``sinfo -R -h -N -o '%N|%T|%E'`` -> {node: "down: reason"} for nodes down, drained or failing."""
    found: dict[str, str] = {}
    for line in text.splitlines():
        node, _, rest = line.partition("|")
        state, _, reason = rest.partition("|")
        if node.strip():
            found[node.strip()] = f"{state.strip().rstrip('*~#!%$@^-+') or 'down'}: {reason.strip() or 'no reason given'}"
    return found


_REFUSED_SETTING = {"account": "profile.account", "partition": "profile.partition", "qos": "profile.qos",
                    "reservation": "profile.reservation", "time limit": "profile.time_limit",
                    "node count": "profile.nodes", "gres": "profile.gpus_per_node"}
"""A word of sbatch's refusal -> the setting to check; the first that matches wins ("Invalid account or
account/partition combination" is the account's)."""


def refusal(stderr: str) -> str:
    """sbatch's error lines as one line, with the profile setting to fix when sbatch names one:
    ``invalid partition specified: x; Batch job submission failed: ... (fix: check profile.partition)``."""
    lines = [re.sub(r"^sbatch: error: ", "", line.strip()) for line in stderr.strip().splitlines() if line.strip()]
    text = "; ".join(dict.fromkeys(lines)) or "no reason given"
    named = [setting for word, setting in _REFUSED_SETTING.items() if word in text.lower()]
    return f"{text} (fix: check {named[0]})" if named else text


_KV = re.compile(r"(?:^|\s)([A-Za-z][\w:/]*)=")


def parse_scontrol_record(line: str) -> dict[str, str]:
    """One ``scontrol -o show ...`` record -> {key: value}; values may contain spaces."""
    matches = list(_KV.finditer(line))
    record: dict[str, str] = {}
    for i, m in enumerate(matches):
        end = matches[i + 1].start() if i + 1 < len(matches) else len(line)
        record[m.group(1)] = line[m.end():end].strip()
    return record


def parse_scontrol_jobs(text: str) -> dict[str, JobState]:
    """Parse ``scontrol -o show job`` (one record per line; array tasks carry ArrayJobId/ArrayTaskId)."""
    result: dict[str, JobState] = {}
    for line in text.splitlines():
        rec = parse_scontrol_record(line)
        if "JobId" not in rec:
            continue
        job_id = rec["JobId"]
        if rec.get("ArrayJobId") and rec.get("ArrayTaskId"):
            job_id = f"{rec['ArrayJobId']}_[{rec['ArrayTaskId']}]"
        for js in _make_states(job_id, rec.get("JobState", ""), rec.get("ExitCode", ""), rec.get("RunTime", ""),
                               rec.get("NodeList", ""), "scontrol", rec.get("DerivedExitCode", "")):
            result[js.job_id] = js
    return result


def parse_config(text: str) -> dict[str, str]:
    """``scontrol show config`` -> {name: value} (``Name = value`` lines)."""
    config: dict[str, str] = {}
    for line in text.splitlines():
        name, sep, value = line.partition("=")
        if sep and name.strip() and " " not in name.strip():
            config[name.strip()] = value.strip()
    return config


def select(states: dict[str, JobState], job_ids: Iterable[str]) -> dict[str, JobState]:
    """Entries of ``states`` that belong to ``job_ids`` ("12" matches 12 and every 12_N; "12_3" only itself)."""
    wanted = {str(j) for j in job_ids}
    return {k: v for k, v in states.items() if k in wanted or (v.array_job_id in wanted)}


def accounting_unavailable(returncode: int, stderr: str) -> bool:
    return returncode != 0 or ACCOUNTING_DISABLED in stderr.lower()


# ------------------------------------------------------------------------------------------------- commands
def _run(argv: Sequence[str], check: bool = True) -> subprocess.CompletedProcess[str]:
    try:
        proc = subprocess.run(list(argv), capture_output=True, text=True, timeout=_TIMEOUT_S)
    except FileNotFoundError as exc:
        raise SlurmError(f"{argv[0]} not found: is the Slurm client installed and on PATH?") from exc
    except subprocess.TimeoutExpired as exc:
        raise SlurmError(f"{' '.join(argv)} timed out after {_TIMEOUT_S} s (is slurmctld up?)") from exc
    if check and proc.returncode != 0:
        raise SlurmError(f"{' '.join(argv)} failed (exit {proc.returncode}): {proc.stderr.strip()}")
    return proc


def sacct_states(job_ids: Sequence[str]) -> dict[str, JobState] | str:
    """One ``sacct`` call for all jobs (every attempt of a requeued one); why not, when accounting is unavailable."""
    argv = ["sacct", "-X", "-D", "-P", "-n", "-o", ",".join(SACCT_FIELDS), "-j", ",".join(job_ids)]
    try:
        proc = _run(argv, check=False)
    except SlurmError as exc:
        return str(exc)
    if accounting_unavailable(proc.returncode, proc.stderr + proc.stdout):
        lines = (proc.stderr + proc.stdout).strip().splitlines()
        return lines[-1].strip() if lines else f"sacct exited {proc.returncode}"
    return select(parse_sacct(proc.stdout), job_ids)


def scontrol_states(job_ids: Sequence[str]) -> dict[str, JobState]:
    """The jobs slurmctld still holds, from one ``scontrol -o show job`` call."""
    proc = _run(["scontrol", "-o", "show", "job"], check=False)
    if proc.returncode != 0 and "no jobs" not in (proc.stdout + proc.stderr).lower():
        raise SlurmError(f"scontrol -o show job failed (exit {proc.returncode}): {proc.stderr.strip()}")
    return select(parse_scontrol_jobs(proc.stdout), job_ids)


def down_nodes() -> dict[str, str]:
    """Nodes down, drained or failing now, with their reason (one ``sinfo -R`` call); {} when sinfo fails."""
    try:
        proc = _run(["sinfo", "-R", "-h", "-N", "-o", "%N|%T|%E"], check=False)
    except SlurmError:
        return {}
    return parse_down_nodes(proc.stdout) if proc.returncode == 0 else {}


def hostnames(nodelist: str) -> list[str]:
    """``n[1-2]`` -> [n1, n2] (``scontrol show hostnames``); the text itself when scontrol cannot expand it."""
    try:
        proc = _run(["scontrol", "show", "hostnames", nodelist], check=False)
    except SlurmError:
        return [nodelist]
    return proc.stdout.split() if proc.returncode == 0 and proc.stdout.strip() else [nodelist]


def _node_failure(state: JobState, down: dict[str, str]) -> str:
    """``node n2 down: <reason>`` for each node of the job's failed attempt that is still down, then the note."""
    failed_on = state.nodes if state.state == "NODE_FAIL" else state.note.rpartition(" on ")[2]
    named = [f"node {n} {down[n]}" for n in hostnames(failed_on) if n in down] if failed_on else []
    return "; ".join(named + [state.note] if state.note else named) or f"NODE_FAIL on {state.nodes}"


def with_node_failures(states: dict[str, JobState]) -> dict[str, JobState]:
    """States whose job lost a node: the note names the node and why (``sinfo -R``, asked once when needed)."""
    hit = [k for k, v in states.items() if v.state == "NODE_FAIL" or "NODE_FAIL" in v.note]
    if not hit:
        return states
    down = down_nodes()
    return {**states, **{k: replace(states[k], note=_node_failure(states[k], down)) for k in hit}}


def _covered(job_id: str, states: dict[str, JobState]) -> bool:
    return job_id in states or any(v.array_job_id == job_id for v in states.values())


def job_states(job_ids: Iterable[str | int], tasks: Iterable[str] = ()) -> dict[str, JobState]:
    """States of jobs and array tasks keyed by ``"12"`` / ``"12_3"``; jobs unknown everywhere are left out.
    One ``sacct`` call; then at most one ``scontrol`` call for what accounting does not settle (``unsettled``: jobs
    it does not list yet, and of the expected array ``tasks`` those missing or still pending), or for everything
    when accounting does not answer."""
    ids = [str(j) for j in job_ids]
    if not ids:
        return {}
    states = sacct_states(ids)
    if isinstance(states, str):
        note = f"state from scontrol: accounting (sacct) unavailable: {states}"
        return {k: replace(v, note=note) for k, v in scontrol_states(ids).items()}
    states.update(lagging(states, [*ids, *tasks]))
    return with_node_failures(states)


def unsettled(found: dict[str, JobState], wanted: Iterable[str]) -> set[str]:
    """The wanted jobs and array tasks whose accounting answer may be behind slurmctld: not listed, or array tasks
    listed as pending (accounting is asynchronous: a task that just ran still sits in sacct's pending remainder
    ``12_[16-999]``, seen as "PENDING" with its log at 1/1 in a 1,000-task sweep)."""
    return {job_id for job_id in wanted
            if (job_id in found and "_" in job_id and found[job_id].state == "PENDING")
            or (job_id not in found and ("_" in job_id or not _covered(job_id, found)))}


def lagging(found: dict[str, JobState], wanted: Iterable[str]) -> dict[str, JobState]:
    """slurmctld's states of the ``unsettled`` jobs and tasks (and of the tasks of an unsettled array job), from one
    ``scontrol`` call, none when nothing is unsettled: they replace accounting's; {} when it does not answer. A job
    slurmctld no longer holds keeps sacct's."""
    missing = unsettled(found, wanted)
    if not missing:
        return {}
    try:
        return select(scontrol_states(sorted({job_id.split("_", 1)[0] for job_id in missing})), missing)
    except SlurmError:
        return {}


def show_config() -> dict[str, str]:
    return parse_config(_run(["scontrol", "show", "config"]).stdout)


SINCE: dict[str, tuple[int, int]] = {"segment": (23, 11)}
"""``#SBATCH`` options the toolkit may render that older Slurm refuses ('sbatch: unrecognized option'), with the
first version that has them (``--segment`` came with the topology/block plugin)."""


def client_version() -> tuple[int, int, int] | None:
    """The Slurm client's version (``sbatch --version``: ``slurm 22.05.8``); None where no sbatch answers."""
    try:
        out = subprocess.run(["sbatch", "--version"], capture_output=True, text=True, timeout=10, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    found = re.search(r"(\d+)\.(\d+)\.(\d+)", out.stdout)
    return (int(found[1]), int(found[2]), int(found[3])) if found else None


def missing_options(options: Iterable[str], version: tuple[int, int, int] | None) -> dict[str, tuple[int, int]]:
    """The options this Slurm lacks, each with the version it needs (none where the version is unknown)."""
    return {o: SINCE[o] for o in options if version is not None and o in SINCE and version[:2] < SINCE[o]}


DEFAULT_MAX_ARRAY_SIZE = 1001
"""Slurm's default MaxArraySize."""


def accounting_enabled() -> bool:
    return show_config().get("AccountingStorageType", "accounting_storage/none") != "accounting_storage/none"


def cancel(job_id: str | int, task: int | None = None, signal: str | None = None) -> None:
    """``scancel JOB`` or ``scancel JOB_TASK``; with ``signal`` the job is signalled, not cancelled."""
    target = f"{job_id}_{task}" if task is not None else str(job_id)
    argv = ["scancel"] + ([f"--signal={signal}"] if signal else []) + [target]
    _run(argv)


def requeue_job(job_id: str | int, task: int | None = None) -> None:
    """``scontrol requeue JOB[_TASK]``: the job restarts (its batch script runs again, logs append)."""
    target = f"{job_id}_{task}" if task is not None else str(job_id)
    _run(["scontrol", "requeue", target])


def foreign(scontrol_text: str, run_dir: Path, user: str) -> str | None:
    """Why the jobs ``scontrol -o show job`` lists are not the run's (None when every one is)."""
    root = str(Path(run_dir).resolve())
    for line in scontrol_text.splitlines():
        fields = parse_scontrol_record(line)
        owner = fields.get("UserId", "").partition("(")[0]
        out = fields.get("StdOut", "")
        if owner and owner != user:
            return f"it is {owner}'s job ({fields.get('JobName', '?')}), not yours"
        if not (out == root or out.startswith(root + "/")):
            return f"its output goes to {out or 'nowhere known'}, not into the run directory {root}"
    return None


def ping() -> bool:
    """True when slurmctld answers."""
    try:
        proc = _run(["scontrol", "ping"], check=False)
    except SlurmError:
        return False
    return proc.returncode == 0 and "UP" in proc.stdout


# ------------------------------------------------------------------------------------------------- the back-end
class SlurmBackend:
    """Jobs through sbatch (submitit writes the script and parses the id), states from sacct, scancel."""

    name = "slurm"

    def submit(self, job: JobRequest) -> str:
        """sbatch the job; SubmittedThenFailed when sbatch took it but submitit's files could not be written."""
        from .slurm_executor import SbatchRefused, TemplateSlurmExecutor   # submitit: loaded by submit only

        (job.run_dir / SUBMITIT_DIR).mkdir(exist_ok=True)
        executor = TemplateSlurmExecutor(job.run_dir / SUBMITIT_DIR, job.script_text, job.ntasks)
        try:
            return str(executor.submit_script().job_id)
        except SbatchRefused as exc:
            raise LaunchError(f"sbatch refused the job: {refusal(str(exc))}") from exc
        except OSError as exc:
            if executor.submitted_id is not None:
                raise SubmittedThenFailed(exc, executor.submitted_id) from exc
            raise

    def states(self, runs: Sequence[tuple[Path, RunRecord]]) -> dict[tuple[Path, str], JobState]:
        """Every run's jobs and array tasks from ``job_states``: one sacct call, and one scontrol call for what
        accounting has not settled yet."""
        found = job_states([j.job_id for _d, r in runs for j in r.jobs if j.job_id],
                           tasks=[t.job_id for _d, r in runs for t in r.tasks])
        return {(run_dir, job_id): found.get(job_id) or JobState(job_id, "UNKNOWN", source="none")
                for run_dir, record in runs for job_id in listed_ids(record)}

    def cancel(self, job_id: str, task: int | None, requeue: bool) -> None:
        (requeue_job if requeue else cancel)(job_id, task)

    def not_the_runs(self, job_id: str, run_dir: Path) -> str | None:
        """From ``scontrol -o show job``: every record of the job (an array's tasks too) must be this user's and
        write its output under the run directory, as every job the toolkit submits does."""
        proc = _run(["scontrol", "-o", "show", "job", job_id], check=False)
        if proc.returncode != 0:
            return None
        return foreign(proc.stdout, run_dir, getpass.getuser())
