"""End-to-end: faults on the real local Slurm cluster, and what the user sees of them.

Each test breaks one part (a node, slurmdbd, slurmctld, sbatch's acceptance, the file system, a second writer of
the same checkpoints), checks what ``submit`` / ``status`` say and that no training is lost, repeated or
overwritten, and the ``healthy`` fixture puts the cluster back (daemons running, nodes resumed, no job left).
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from .conftest import Cluster, Workspace, wait_until
from .test_launch import BASE, LOADED, _jobs_submitted, _wait_for_iteration, env_set, iterations, log_text, \
    only_run, record, status_rows

NODES = ("n1", "n2")


# ------------------------------------------------------------------------------------------------- daemons
def _pid(cluster: Cluster, daemon: str) -> int | None:
    try:
        return int((cluster.state / "run" / f"{daemon}.pid").read_text().strip())
    except (OSError, ValueError):
        return None


def _alive(pid: int | None) -> bool:
    try:
        return pid is not None and Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[1][0] != "Z"
    except (OSError, IndexError):
        return False


def stop_daemon(cluster: Cluster, daemon: str) -> None:
    """SIGTERM one daemon of this cluster by its pid file (slurmd-n2, slurmdbd, slurmctld) and wait until gone."""
    pid = _pid(cluster, daemon)
    assert _alive(pid), f"{daemon} is not running"
    assert pid is not None
    os.kill(pid, signal.SIGTERM)
    wait_until(lambda: not _alive(pid), 30, f"{daemon} to stop")


def start_daemon(cluster: Cluster, daemon: str) -> None:
    """Start one daemon of this cluster again (it daemonizes, as start-slurm.sh started it)."""
    argv, env = {"slurmdbd": (["slurmdbd"], {"MYSQL_UNIX_PORT": str(cluster.state / "mysql" / "mysql.sock")}),
                 "slurmctld": (["slurmctld"], {})}.get(daemon, (["slurmd", "-N", daemon.split("-", 1)[-1]], {}))
    subprocess.run(argv, env=cluster.env(**env), stdin=subprocess.DEVNULL, capture_output=True, timeout=60,
                   check=True)
    wait_until(lambda: _alive(_pid(cluster, daemon)), 30, f"{daemon} to start")


def _answers(cluster: Cluster, *argv: str) -> bool:
    try:
        return cluster.run(*argv, check=False).returncode == 0
    except subprocess.TimeoutExpired:
        return False


def _nodes_idle(cluster: Cluster) -> bool:
    states = cluster.run("sinfo", "-h", "-N", "-o", "%N %t", check=False).stdout.split("\n")
    return sorted(line.split()[0] + " " + line.split()[1] for line in states if line.strip()) == \
        [f"{n} idle" for n in NODES]


def restore(cluster: Cluster) -> None:
    """Every daemon running, no job left, every node idle; accounting answering."""
    accounting = (cluster.state / "etc" / "slurmdbd.conf").is_file()
    for daemon in (["slurmdbd"] if accounting else []) + ["slurmctld"] + [f"slurmd-{n}" for n in NODES]:
        if not _alive(_pid(cluster, daemon)):
            start_daemon(cluster, daemon)
    wait_until(lambda: _answers(cluster, "scontrol", "ping"), 60, "slurmctld to answer")
    jobs = cluster.run("squeue", "-h", "-o", "%A", check=False).stdout.split()
    if jobs:
        cluster.run("scancel", *jobs, check=False)
        wait_until(lambda: not cluster.run("squeue", "-h", "-o", "%A", check=False).stdout.strip(), 60,
                   "the test's jobs to end")
    cluster.run("scontrol", "update", f"nodename=n[1-{len(NODES)}]", "state=resume", check=False)
    wait_until(lambda: _nodes_idle(cluster), 60, "every node idle")
    if accounting:
        wait_until(lambda: _answers(cluster, "sacct", "-X", "-n"), 60, "sacct to answer")


@pytest.fixture
def healthy(slurm_cluster: Cluster) -> Iterator[Cluster]:
    """The cluster, put back to health after the test whatever it broke."""
    try:
        yield slurm_cluster
    finally:
        restore(slurm_cluster)


def _ckpt(ws: Workspace, name: str = "ckpt") -> list[str]:
    return ["--set", f"training.checkpoint_dir={ws.cwd / name}"]


def _saved(text: str) -> list[int]:
    return [int(i) for i in re.findall(r"^  successfully saved checkpoint from iteration +(\d+) to ", text, re.M)]


def _resumed_exactly(first: str, again: str, last: int) -> int:
    """The second attempt loaded the newest checkpoint the first one saved, then trained every later iteration
    once up to ``last``; iterations both ran (after the checkpoint) gave the same losses. Returns that iteration."""
    loaded = LOADED.search(again)
    assert loaded, again[-2000:]
    resumed_at = int(loaded[2])
    assert _saved(first) and resumed_at == _saved(first)[-1]
    done, redo = iterations(first), iterations(again[loaded.end():])
    assert [i for i, _ in done] == list(range(1, done[-1][0] + 1))
    assert [i for i, _ in redo] == list(range(resumed_at + 1, last + 1))       # nothing lost, nothing twice
    repeated = [step for step in done if step[0] > resumed_at]                   # beyond the checkpoint only
    assert redo[:len(repeated)] == repeated
    return resumed_at


# ------------------------------------------------------------------------------------------------- (a) a node dies
def test_a_node_that_dies_is_named_and_the_requeued_job_resumes_from_its_checkpoint(workspace: Workspace,
                                                                                    healthy: Cluster) -> None:
    ws = workspace
    proc = ws.cli("submit", *BASE, "--set", "profile.nodes=2", "--set", "training.train_iters=400",
                  "--set", "training.save_interval=10", *_ckpt(ws))
    assert proc.returncode == 0, proc.stderr
    run_dir = only_run(ws)
    job_id = record(run_dir)["jobs"][0]["job_id"]
    _wait_for_iteration(run_dir, 25)
    stop_daemon(healthy, "slurmd-n2")                          # the node is gone, and the admin marks it down
    healthy.run("scontrol", "update", "nodename=n2", "state=down", "reason=fault test: n2 lost")
    why = "node n2 down: fault test: n2 lost; requeued after NODE_FAIL on n[1-2]"
    [row] = wait_until(lambda: [r for r in status_rows(ws, run_dir) if r["note"] == why], 60, "status to name n2")
    assert row["state"] == "PENDING" and row["job_id"] == job_id      # Slurm requeued it: it waits for 2 nodes
    table = ws.cli("status", str(run_dir))
    assert table.returncode == 0 and f"note: job {job_id}: {why}" in table.stdout.splitlines()
    again = ws.cli("submit", "--from", str(run_dir))       # a second writer of its checkpoints is refused meanwhile
    assert again.returncode == 2 and f"still being written by run {run_dir.name} (job {job_id} PENDING)" in \
        again.stderr and again.stderr.startswith("error: training.checkpoint_dir: "), again.stderr
    assert ws.run_dirs() == [run_dir]
    start_daemon(healthy, "slurmd-n2")                         # the node is back: the job runs again
    follow = ws.cli("status", str(run_dir), "--follow", "--interval", "0.5", timeout=180)
    assert follow.returncode == 0, follow.stdout + follow.stderr
    text = log_text(run_dir)
    first, _, again_text = text.partition(f"orchestrator: job {job_id} on n[1-2] (restart 1)")
    assert f"orchestrator: job {job_id} on n[1-2] (restart 0)" in first and again_text
    _resumed_exactly(first, again_text, 400)
    [row] = status_rows(ws, run_dir)
    assert (row["state"], row["progress"], row["note"]) == ("COMPLETED", "400/400", "requeued after NODE_FAIL on n[1-2]")


# ------------------------------------------------------------------------------------------------- (b) slurmdbd
def test_without_slurmdbd_status_falls_back_to_slurmctld_and_says_so(workspace: Workspace, healthy: Cluster) -> None:
    ws = workspace
    assert ws.cli("submit", *BASE, "--set", "training.train_iters=3", "--follow").returncode == 0
    done = only_run(ws)
    [row] = status_rows(ws, done)
    assert (row["state"], row["source"], row["note"]) == ("COMPLETED", "sacct", "")
    stop_daemon(healthy, "slurmdbd")
    assert healthy.run("sacct", "-X", check=False).returncode != 0
    proc = ws.cli("submit", *BASE, "--set", "training.train_iters=3", "--follow")    # jobs still run meanwhile
    assert proc.returncode == 0, proc.stdout + proc.stderr
    later = [d for d in ws.run_dirs() if d != done]
    for run_dir in (done, *later):
        [row] = status_rows(ws, run_dir)
        assert (row["state"], row["exit_code"], row["progress"], row["source"]) == ("COMPLETED", 0, "3/3", "scontrol")
        assert row["note"].startswith("state from scontrol: accounting (sacct) unavailable: ") and \
            "Connection refused" in row["note"], row["note"]
    table = ws.cli("status", str(done)).stdout.splitlines()
    assert table[-1].startswith(f"note: job {record(done)['jobs'][0]['job_id']}: "
                                "state from scontrol: accounting (sacct) unavailable:"), table
    start_daemon(healthy, "slurmdbd")
    wait_until(lambda: status_rows(ws, done)[0]["source"] == "sacct", 60, "status to use sacct again")


# ------------------------------------------------------------------------------------------------- (c) slurmctld
def test_a_run_survives_a_slurmctld_restart_and_status_recovers(workspace: Workspace, healthy: Cluster) -> None:
    ws = workspace
    proc = ws.cli("submit", *BASE, "--set", "profile.nodes=1", "--set", "training.train_iters=600")
    assert proc.returncode == 0, proc.stderr
    run_dir = only_run(ws)
    _wait_for_iteration(run_dir, 10)
    # the state must come from accounting itself: before slurmdbd has the start, status takes RUNNING from scontrol,
    # and with slurmctld stopped next nothing would know the job (seen: UNKNOWN, in 2 of 5 runs here)
    wait_until(lambda: [(r["state"], r["source"]) for r in status_rows(ws, run_dir)] == [("RUNNING", "sacct")], 60,
               "accounting to record the job's start (slurmctld sends it to slurmdbd asynchronously)")
    stop_daemon(healthy, "slurmctld")
    at = iterations(log_text(run_dir))[-1][0]
    _wait_for_iteration(run_dir, min(at + 50, 600))           # training goes on without the controller
    [row] = status_rows(ws, run_dir)                          # accounting still answers
    assert row["state"] == "RUNNING" and row["source"] == "sacct"
    start_daemon(healthy, "slurmctld")
    wait_until(lambda: _answers(healthy, "scontrol", "ping"), 60, "slurmctld to answer")
    follow = ws.cli("status", str(run_dir), "--follow", "--interval", "0.5", timeout=180)
    assert follow.returncode == 0, follow.stdout + follow.stderr
    [row] = status_rows(ws, run_dir)
    assert (row["state"], row["exit_code"], row["progress"], row["note"]) == ("COMPLETED", 0, "600/600", "")
    text = log_text(run_dir)
    assert "(restart 1)" not in text and [i for i, _ in iterations(text)] == list(range(1, 601))


# ------------------------------------------------------------------------------------------------- (d) sbatch refuses
REFUSALS = {  # what the local cluster (AccountingStorageEnforce=associations,qos) answers, as the toolkit says it
    "partition": "invalid partition specified: nosuch; Batch job submission failed: Invalid partition name "
                 "specified (fix: check profile.partition)",
    "qos": "Batch job submission failed: Invalid qos specification (fix: check profile.qos)",
    "account": "Batch job submission failed: Invalid account or account/partition combination specified "
               "(fix: check profile.account)",
}


@pytest.mark.parametrize("setting", list(REFUSALS))
def test_a_refused_submission_is_one_line_and_the_record_keeps_the_refusal(workspace: Workspace, healthy: Cluster,
                                                                          setting: str) -> None:
    ws = workspace
    before = _jobs_submitted(healthy)
    proc = ws.cli("submit", *BASE, "--segments", "2", "--set", f"profile.{setting}=nosuch")
    refused = f"sbatch refused the job: {REFUSALS[setting]}"
    assert proc.returncode == 1 and proc.stdout == ""
    assert proc.stderr.splitlines() == [f"error: {refused} (run directory {only_run(ws)}, record.json lists what "
                                        "was submitted)"], proc.stderr
    rec = record(only_run(ws))
    assert rec["error"] == refused and rec["jobs"] == []
    assert _jobs_submitted(healthy) == before
    [row] = status_rows(ws, only_run(ws))
    assert (row["state"], row["error"]) == ("NOT_SUBMITTED", refused)


# ------------------------------------------------------------------------------------------------- (e) file system
@pytest.fixture
def small_fs(tmp_path: Path) -> Iterator[Path]:
    """A 1 MiB tmpfs (mounted here, unmounted at the end)."""
    mount = tmp_path / "small"
    mount.mkdir()
    proc = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mount)], capture_output=True,
                          text=True, timeout=30)
    if proc.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {proc.stderr.strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], capture_output=True, timeout=30)


def _fill(mount: Path, leave: int) -> None:
    """Fill the file system but ``leave`` bytes."""
    stat = os.statvfs(mount)
    with open(mount / "filler", "wb") as handle:
        handle.write(b"\0" * (stat.f_bavail * stat.f_frsize - leave))


def _no_run_claims_a_submission(root: Path) -> None:
    assert list(root.rglob("record.json")) == [] and [p for p in root.glob("*") if p.is_dir()] == []


FIX = "(fix: free space in or make {root} writable, or set another profile.output_root)"


@pytest.mark.parametrize("fault,leave,outcome", [
    ("read-only", 0, ""),   # refused by the checks: see the test
    ("full", 0, "No space left on device ({path}/job.json) " + FIX + "; nothing was submitted"),
    # room for the job's files but not for all of submitit's and the record: sbatch took the job, then a write
    # failed: the job is cancelled, the directory removed
    # (16 KiB left: a file before sbatch fails, nothing submitted; 32 KiB: everything fits; 20 and 24 KiB: this case)
    ("full", 5 * 4096 + 2048, "No space left on device {at}" + FIX + "; job(s) {job} cancelled and the run "
                       "directory removed"),
])
def test_a_full_or_read_only_output_root_leaves_no_run_that_claims_to_be_submitted(
        workspace: Workspace, healthy: Cluster, small_fs: Path, fault: str, leave: int, outcome: str) -> None:
    ws = workspace
    root = small_fs / "runs"
    if fault == "read-only":
        subprocess.run(["mount", "-o", "remount,ro", str(small_fs)], check=True, timeout=30)
    else:
        root.mkdir()
        _fill(small_fs, leave)
    before = _jobs_submitted(healthy)
    proc = ws.cli("submit", *BASE, "--set", f"profile.output_root={root}")
    if fault == "read-only":    # found by the checks before anything is created (validate says the same)
        assert proc.returncode == 2 and proc.stderr == (
            f"error: profile.output_root: {small_fs} is not writable by you (fix: set profile.output_root (or "
            "OUTPUT_DIR) to a directory you can write)\n"), proc.stderr
        assert _jobs_submitted(healthy) == before and not root.exists()
        return
    assert proc.returncode == 1 and len(proc.stderr.splitlines()) == 1, proc.stderr
    [path] = re.findall(r"cannot write the run directory (\S+): ", proc.stderr)
    job = (re.findall(r"; job\(s\) (\d+) cancelled", proc.stderr) or ["?"])[0] if "{job}" in outcome else ""
    file = re.findall(rf"\({re.escape(path)}/(\S+)\)", proc.stderr)
    assert proc.stderr == f"error: profile.output_root: cannot write the run directory {path}: " + \
        outcome.format(root=root, path=path, job=job, file=file[0] if file else "",
                       at=f"({path}/{file[0]}) " if file else "") + "\n"
    assert _jobs_submitted(healthy) == before + (1 if job else 0)
    if job:                                         # sbatch took it, a file could not be written: cancelled
        wait_until(lambda: healthy.run("squeue", "-h", "-j", job, check=False).stdout.strip() == "", 30,
                   "the cancelled job to leave the queue")
        assert healthy.run("sacct", "-X", "-n", "-P", "-o", "State", "-j", job).stdout.split()[0] == "CANCELLED"
    if root.is_dir():
        _no_run_claims_a_submission(root)


# ------------------------------------------------------------------------------------------------- (f) two writers
def _submit_at_once(ws: Workspace, *args: str) -> list[subprocess.CompletedProcess[str]]:
    procs = [subprocess.Popen([sys.executable, "-m", "orchestrator", *args], cwd=ws.cwd,
                              env=ws.cluster.env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(2)]
    return [subprocess.CompletedProcess(p.args, p.wait(timeout=240), *p.communicate()) for p in procs]


def test_two_submits_at_once_get_their_own_run_and_checkpoints(workspace: Workspace, healthy: Cluster) -> None:
    ws = workspace
    results = _submit_at_once(ws, "submit", *BASE, "--set", "training.train_iters=12", "--set",
                              "training.save_interval=4")
    assert [r.returncode for r in results] == [0, 0], [r.stderr for r in results]
    first, second = runs = ws.run_dirs()
    assert first.name != second.name and record(first)["jobs"][0]["job_id"] != record(second)["jobs"][0]["job_id"]
    follow = ws.cli("status", str(first), str(second), "--follow", "--interval", "0.5", timeout=180)
    assert follow.returncode == 0, follow.stdout
    for run_dir in runs:
        command = record(run_dir)["command"]
        assert command[command.index("--save") + 1] == str(run_dir / "checkpoints")
        assert (run_dir / "checkpoints" / "latest_checkpointed_iteration.txt").read_text() == "12"
        assert _saved(log_text(run_dir)) == [4, 8, 12] and [i for i, _ in iterations(log_text(run_dir))] == \
            list(range(1, 13))


LONG = 600
"""Iterations of the run whose checkpoints a second writer must not touch: at 50 ms of sleep each (cpu_gpt's
CPU_GPT_SLEEP_MS) it trains for at least 30 s, while the test tries to submit other writers."""


def test_a_shared_checkpoint_dir_has_one_writer_and_a_resubmission_resumes_from_it(workspace: Workspace,
                                                                                   healthy: Cluster) -> None:
    ws = workspace
    ckpt = ws.cwd / "ckpt"
    tracker = ckpt / "latest_checkpointed_iteration.txt"
    slow = ["--set", "profile.nodes=1", "--set", f"training.train_iters={LONG}", "--set", "training.save_interval=10",
            *env_set("CPU_GPT_SLEEP_MS", "50"), *_ckpt(ws)]
    proc = ws.cli("submit", *BASE, *slow)
    assert proc.returncode == 0, proc.stderr
    old = only_run(ws)
    job_id = record(old)["jobs"][0]["job_id"]
    _wait_for_iteration(old, 25)
    # the state is the scheduler's (accounting may still say PENDING for a job that just started)
    refused = re.escape(f"error: training.checkpoint_dir: {ckpt} is still being written by run {old.name} (job "
                        f"{job_id} ") + "(RUNNING|PENDING)" + re.escape(
        "): two runs would overwrite each other's checkpoints (fix: wait until it ends or cancel it "
        f"(`orchestrator cancel {old.name}`), then submit again (it resumes from the last checkpoint), or "
        "set another training.checkpoint_dir)")
    again = ws.cli("submit", "--from", str(old))            # a resubmission while the old run still writes
    assert again.returncode == 2 and re.fullmatch(refused, again.stderr.splitlines()[0]), again.stderr
    both = _submit_at_once(ws, "submit", *BASE, *slow)
    assert sorted(r.returncode for r in both) == [2, 2] and ws.run_dirs() == [old]
    other = _submit_at_once(ws, "submit", *BASE, "--set", "profile.nodes=1", "--set", "training.train_iters=20",
                            "--set", "training.save_interval=10", *_ckpt(ws, "other"))  # two at once, one new dir
    assert sorted(r.returncode for r in other) == [0, 2], [r.stderr for r in other]
    assert "is still being written by run " in next(r.stderr for r in other if r.returncode == 2)
    assert int(tracker.read_text()) >= 20 and len(ws.run_dirs()) == 2
    assert ws.cli("cancel", str(old)).returncode == 0
    wait_until(lambda: status_rows(ws, old)[0]["state"] == "CANCELLED", 60, "the old run to be cancelled")
    for new in set(ws.run_dirs()) - {old}:
        ws.cli("status", str(new), "--follow", "--interval", "0.5", timeout=120)
    proc = ws.cli("submit", "--from", str(old), "--follow", timeout=400)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    [new] = [d for d in ws.run_dirs() if d != old and record(d)["submitted_from"] == str(old)]
    resumed_at = _resumed_exactly(log_text(old), log_text(new), LONG)
    assert resumed_at >= 20 and tracker.read_text() == str(LONG)
