"""Only our own jobs: a record may name any job id; cancel acts on a live job only when the scheduler's view of it
(its user, where its output goes) is the run's (the real Slurm case is in tests/e2e/test_launch.py)."""

from __future__ import annotations

from pathlib import Path

from orchestrator.submit.backends import slurm

RUN = "/runs/r1"


def line(user: str, out: str, name: str = "dsv3-proxy-3l") -> str:
    return f"JobId=25 JobName={name} UserId={user}(1000) GroupId=g(1000) JobState=RUNNING StdOut={out} WorkDir=/home/u"


def test_a_job_writing_into_the_run_by_this_user_is_the_runs() -> None:
    assert slurm.foreign(line("alice", f"{RUN}/logs/dsv3-proxy-3l_25.log"), Path(RUN), "alice") is None
    tasks = "\n".join(line("alice", f"{RUN}/tasks/0_{i}/logs/s_25_{i}.log") for i in range(3))
    assert slurm.foreign(tasks, Path(RUN), "alice") is None


def test_a_bystanders_job_is_not() -> None:
    assert slurm.foreign(line("bob", "/home/bob/slurm-25.out", "bystander"), Path(RUN), "alice") == \
        "it is bob's job (bystander), not yours"
    assert slurm.foreign(line("alice", "/home/alice/slurm-25.out"), Path(RUN), "alice") == \
        f"its output goes to /home/alice/slurm-25.out, not into the run directory {RUN}"
    assert slurm.foreign(line("alice", f"{RUN}-other/logs/x.log"), Path(RUN), "alice") is not None


def test_the_journal_of_a_killed_submit_is_read_as_data(tmp_path: Path) -> None:
    from orchestrator.submit import run_records

    run_records.journal(tmp_path, "slurm", "41")
    run_records.journal(tmp_path, "slurm", "42")
    with open(tmp_path / run_records.JOURNAL, "a") as fh:
        fh.write("slurm 43; scancel -u bob\nevil 44\nslurm\n")
    assert run_records.journaled(tmp_path) == [("slurm", "41"), ("slurm", "42")]
