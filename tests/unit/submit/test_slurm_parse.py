"""Scheduler output parsing and the accounting fallback, without Slurm (outputs captured from Slurm 22.05)."""

from __future__ import annotations

import subprocess
from collections.abc import Sequence

import pytest

from orchestrator.spec import slurm_time
from orchestrator.submit.backends import slurm

SACCT = """\
8|8|RUNNING|0:0|00:00:01|n1
7_0|9|COMPLETED|0:0|00:01:05|n1
7_1|10|FAILED|3:0|1-02:03:04|n[1-2]
7_[2-5%2]|7|PENDING|0:0|00:00:00|None assigned
9|11|CANCELLED by 0|0:15|00:00:07|n2
9.batch|11|CANCELLED|0:15|00:00:07|n2
"""

SCONTROL = (
    "JobId=9 ArrayJobId=7 ArrayTaskId=0 ArrayTaskThrottle=2 JobName=wrap UserId=root(0) JobState=RUNNING "
    "Reason=None Dependency=(null) ExitCode=0:0 RunTime=00:00:01 TimeLimit=UNLIMITED NodeList=n1 BatchHost=n1 "
    "AllocNode:Sid=localhost:3049 CPUs/Task=1 Comment=has spaces in it StdOut=/tmp/x.out\n"
    "JobId=7 ArrayJobId=7 ArrayTaskId=2-5%2 ArrayTaskThrottle=2 JobName=wrap JobState=PENDING "
    "Reason=JobArrayTaskLimit ExitCode=0:0 RunTime=00:00:00 NodeList=(null)\n"
    "JobId=8 JobName=wrap JobState=CANCELLED Reason=None ExitCode=0:15 RunTime=00:00:01 NodeList=n1\n"
    "JobId=3 JobName=wrap JobState=FAILED Reason=NonZeroExitCode ExitCode=1:0 RunTime=00:00:00 NodeList=n[1-2]\n"
)


def test_sacct_rows_become_typed_states() -> None:
    states = slurm.parse_sacct(SACCT)
    assert states["7_1"] == slurm.JobState(job_id="7_1", state="FAILED", exit_code=3, signal=0,
                                           elapsed_s=93784, nodes="n[1-2]", array_task_id=1, raw_state="FAILED")
    assert states["7_1"].array_job_id == "7" and states["7_1"].terminal
    assert states["8"].state == "RUNNING" and not states["8"].terminal and states["8"].array_task_id is None
    assert states["9"].state == "CANCELLED" and states["9"].raw_state == "CANCELLED by 0"
    assert states["9"].signal == 15


def test_sacct_pending_array_remainder_expands_per_task_and_steps_are_skipped() -> None:
    states = slurm.parse_sacct(SACCT)
    assert [k for k in states if k.startswith("7_")] == ["7_0", "7_1", "7_2", "7_3", "7_4", "7_5"]
    assert {states[f"7_{i}"].state for i in range(2, 6)} == {"PENDING"}
    assert states["7_4"].nodes == "" and states["7_4"].array_task_id == 4
    assert not any("." in k for k in states)


def test_scontrol_records_keep_values_with_spaces_and_expand_arrays() -> None:
    record = slurm.parse_scontrol_record(SCONTROL.splitlines()[0])
    assert record["Comment"] == "has spaces in it"
    assert record["AllocNode:Sid"] == "localhost:3049" and record["CPUs/Task"] == "1"
    states = slurm.parse_scontrol_jobs(SCONTROL)
    assert states["7_0"].state == "RUNNING" and states["7_0"].source == "scontrol"
    assert [k for k in states if k.startswith("7_")] == ["7_0", "7_2", "7_3", "7_4", "7_5"]
    assert states["8"].state == "CANCELLED" and states["8"].signal == 15
    assert states["3"].exit_code == 1 and states["3"].nodes == "n[1-2]"


@pytest.mark.parametrize("text,expected", [
    ("00:00:00", 0), ("00:01:05", 65), ("1-02:03:04", 93784), ("05:06", 306), ("2-03", 183600),
    ("01:00:00.123", 3600), ("UNLIMITED", None), ("", None), ("INVALID", None),
])
def test_elapsed(text: str, expected: int | None) -> None:
    assert slurm_time.elapsed_seconds(text) == expected


@pytest.mark.parametrize("text,expected", [("30", 1800), ("30:00", 1800), ("00:30:00", 1800), ("0-00:30", 1800)])
def test_a_time_limit_means_what_slurm_reads_everywhere(text: str, expected: int) -> None:
    """A bare number is minutes to sbatch; the local back-end's timeout and the exit margin read it the same."""
    assert slurm_time.limit_seconds(text) == expected
    assert slurm_time.limit_minutes(text) == expected // 60
    assert slurm_time.elapsed_seconds(text) == expected


@pytest.mark.parametrize("text,expected", [("0:0", (0, 0)), ("3:0", (3, 0)), ("0:15", (0, 15)), ("", (None, None))])
def test_exit_code(text: str, expected: tuple[int | None, int | None]) -> None:
    assert slurm.parse_exit_code(text) == expected


def test_task_ranges() -> None:
    assert slurm.expand_task_range("2-5%2") == [2, 3, 4, 5]
    assert slurm.expand_task_range("1,3,7-8") == [1, 3, 7, 8]
    assert slurm.expand_task_range("0-6:3") == [0, 3, 6]


def test_config_max_array_size() -> None:
    text = "Configuration data as of 2026-11-28T14:36:46\nMaxArraySize            = 5\n" \
           "AccountingStorageType   = accounting_storage/none\nSLURM_VERSION           = 22.05.8\n"
    config = slurm.parse_config(text)
    assert config["MaxArraySize"] == "5" and config["SLURM_VERSION"] == "22.05.8"


def test_select_matches_array_parent_and_single_tasks() -> None:
    states = slurm.parse_sacct(SACCT)
    assert sorted(slurm.select(states, ["7"])) == ["7_0", "7_1", "7_2", "7_3", "7_4", "7_5"]
    assert list(slurm.select(states, ["7_3", "8"])) == ["8", "7_3"]


class FakeClients:
    """Stands in for the subprocess layer (not for Slurm's binaries): canned stdout/stderr per command."""

    def __init__(self, sacct: tuple[int, str, str], scontrol: str = "") -> None:
        self.sacct, self.scontrol, self.calls = sacct, scontrol, []  # type: ignore[var-annotated]

    def __call__(self, argv: Sequence[str], check: bool = True) -> subprocess.CompletedProcess[str]:
        self.calls.append(list(argv))
        if argv[0] == "sacct":
            rc, out, err = self.sacct
            return subprocess.CompletedProcess(list(argv), rc, out, err)
        return subprocess.CompletedProcess(list(argv), 0, self.scontrol, "")


def test_job_states_uses_one_sacct_call_for_all_jobs(monkeypatch: pytest.MonkeyPatch) -> None:
    fake = FakeClients((0, SACCT, ""))
    monkeypatch.setattr(slurm, "_run", fake)
    states = slurm.job_states(["7", 8, "9"])
    assert len(fake.calls) == 1 and fake.calls[0][0] == "sacct" and "7,8,9" in fake.calls[0]
    assert states["7_1"].exit_code == 3 and states["8"].state == "RUNNING" and len(states) == 8


def test_job_states_falls_back_when_accounting_is_disabled(monkeypatch: pytest.MonkeyPatch) -> None:
    fake = FakeClients((1, "", "Slurm accounting storage is disabled\n"), SCONTROL)
    monkeypatch.setattr(slurm, "_run", fake)
    states = slurm.job_states(["3", "8"])
    assert [c[0] for c in fake.calls] == ["sacct", "scontrol"]
    assert states["3"].state == "FAILED" and states["3"].exit_code == 1 and states["3"].source == "scontrol"
    assert set(states) == {"3", "8"}


def test_job_states_asks_scontrol_for_jobs_accounting_does_not_know_yet(monkeypatch: pytest.MonkeyPatch) -> None:
    fake = FakeClients((0, "8|8|RUNNING|0:0|00:00:01|n1\n", ""), SCONTROL)
    monkeypatch.setattr(slurm, "_run", fake)
    states = slurm.job_states(["8", "3"])
    assert states["8"].source == "sacct" and states["3"].source == "scontrol"
    assert fake.calls[1] == ["scontrol", "-o", "show", "job"]


def test_a_task_accounting_still_counts_as_pending_takes_slurmctlds_state(monkeypatch: pytest.MonkeyPatch) -> None:
    # seen in a 1,000-task sweep: tasks that had run sat in sacct's pending remainder 7_[2-5%2] ("PENDING", log 1/1)
    ran = ("JobId=12 ArrayJobId=7 ArrayTaskId=2 JobState=COMPLETED ExitCode=0:0 RunTime=00:00:02 NodeList=n1\n"
           "JobId=7 ArrayJobId=7 ArrayTaskId=3-5%2 JobState=PENDING ExitCode=0:0 RunTime=00:00:00 NodeList=(null)\n")
    fake = FakeClients((0, SACCT, ""), ran)
    monkeypatch.setattr(slurm, "_run", fake)
    found = slurm.parse_sacct(SACCT)
    wanted = [f"7_{i}" for i in range(6)]
    assert slurm.unsettled(found, wanted) == {"7_2", "7_3", "7_4", "7_5"}      # 7_0, 7_1 have ended: settled
    fresher = slurm.lagging(found, wanted)
    assert fresher["7_2"].state == "COMPLETED" and fresher["7_2"].source == "scontrol"
    assert {fresher[f"7_{i}"].state for i in (3, 4, 5)} == {"PENDING"} and "7_1" not in fresher
    assert [c[0] for c in fake.calls] == ["scontrol"]


def test_nothing_is_asked_of_slurmctld_once_every_task_has_ended(monkeypatch: pytest.MonkeyPatch) -> None:
    fake = FakeClients((0, "", ""))
    monkeypatch.setattr(slurm, "_run", fake)
    assert slurm.lagging(slurm.parse_sacct(SACCT), ["7_0", "7_1", "9"]) == {} and fake.calls == []


def test_without_accounting_pending_tasks_need_no_second_scontrol_call(monkeypatch: pytest.MonkeyPatch) -> None:
    fake = FakeClients((1, "", "Slurm accounting storage is disabled\n"), SCONTROL)
    monkeypatch.setattr(slurm, "_run", fake)
    states = slurm.job_states(["7"], tasks=[f"7_{i}" for i in range(6)])
    assert [c[0] for c in fake.calls] == ["sacct", "scontrol"]
    assert states["7_3"].state == "PENDING" and states["7_3"].note.startswith("state from scontrol: accounting")


def test_job_states_of_nothing_runs_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    fake = FakeClients((0, "", ""))
    monkeypatch.setattr(slurm, "_run", fake)
    assert slurm.job_states([]) == {} and fake.calls == []


# ------------------------------------------------------------------------------------------------- faults
REQUEUED = """\
1|1|NODE_FAIL|0:0|00:00:07|n[1-2]|0:0
1|1|PENDING|0:0|00:00:00|None assigned|0:0
2|2|RUNNING|0:0|00:00:09|n1|0:0
"""


def test_sacct_attempts_keep_the_node_failure_of_a_requeued_job() -> None:
    states = slurm.parse_sacct(REQUEUED)
    assert (states["1"].state, states["1"].note) == ("PENDING", "requeued after NODE_FAIL on n[1-2]")
    assert (states["2"].state, states["2"].note) == ("RUNNING", "")


def test_down_nodes_and_their_reasons() -> None:
    text = "n2|down*|fault test: n2 lost\nn3|drained|bad DIMM\nn4|down|\n"
    assert slurm.parse_down_nodes(text) == {"n2": "down: fault test: n2 lost", "n3": "drained: bad DIMM",
                                            "n4": "down: no reason given"}


def test_a_lost_node_is_named_with_its_reason(monkeypatch: pytest.MonkeyPatch) -> None:
    def clients(argv: Sequence[str], check: bool = True) -> subprocess.CompletedProcess[str]:
        out = {"sacct": REQUEUED, "sinfo": "n2|down*|fault test: n2 lost\n", "scontrol": "n1\nn2\n"}[argv[0]]
        return subprocess.CompletedProcess(list(argv), 0, out, "")
    monkeypatch.setattr(slurm, "_run", clients)
    states = slurm.job_states(["1", "2"])
    assert states["1"].note == "node n2 down: fault test: n2 lost; requeued after NODE_FAIL on n[1-2]"
    assert states["2"].note == ""


def test_without_accounting_each_state_says_where_it_came_from(monkeypatch: pytest.MonkeyPatch) -> None:
    refused = "sacct: error: Problem talking to the database: Connection refused\n"
    monkeypatch.setattr(slurm, "_run", FakeClients((1, "", refused), SCONTROL))
    [state] = slurm.job_states(["3"]).values()
    assert state.source == "scontrol" and state.note == \
        "state from scontrol: accounting (sacct) unavailable: sacct: error: Problem talking to the database: " \
        "Connection refused"


@pytest.mark.parametrize("stderr,line", [
    ("sbatch: error: invalid partition specified: nosuch\n"
     "sbatch: error: Batch job submission failed: Invalid partition name specified\n",
     "invalid partition specified: nosuch; Batch job submission failed: Invalid partition name specified "
     "(fix: check profile.partition)"),
    ("sbatch: error: Batch job submission failed: Invalid qos specification\n",
     "Batch job submission failed: Invalid qos specification (fix: check profile.qos)"),
    ("sbatch: error: Batch job submission failed: Invalid account or account/partition combination specified\n",
     "Batch job submission failed: Invalid account or account/partition combination specified "
     "(fix: check profile.account)"),
    ("sbatch: error: Batch job submission failed: Socket timed out on send/recv operation\n",
     "Batch job submission failed: Socket timed out on send/recv operation"),
    ("", "no reason given"),
])
def test_an_sbatch_refusal_is_one_line_naming_the_setting(stderr: str, line: str) -> None:
    assert slurm.refusal(stderr) == line
