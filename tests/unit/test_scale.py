"""Sweeps at scale without a scheduler: what status, logs and report touch per task, the summaries of big runs,
and the Slurm limits checked before anything is submitted (the e2e test runs them on the real cluster)."""

from __future__ import annotations

import builtins
import io
import os
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from orchestrator.cli import main
from orchestrator.observe import report, status
from orchestrator.spec.schema import ConfigError
from orchestrator.submit import run_records
from orchestrator.submit.backends import slurm, slurm_limits
from orchestrator.submit.backends.base import JobState

ITERATION = (" [2026-11-28 14:51:10] iteration        {i}/      20 | consumed samples:          {i} | elapsed time "
             "per iteration (ms): 100.0 | learning rate: 1.0E-04 | global batch size:     1 | lm loss: 6.9E+00 |\n")


def sweep_run(root: Path, count: int, failed: set[int] = frozenset()) -> Path:  # type: ignore[assignment]
    """A submitted sweep of ``count`` tasks (array job 500) whose every task wrote a log."""
    run_dir = root / f"sweep{count}"
    (run_dir / "logs").mkdir(parents=True)
    tasks = []
    for i in range(count):
        logs = run_dir / "tasks" / f"0_{i}" / "logs"
        logs.mkdir(parents=True)
        text = "".join(ITERATION.format(i=n) for n in range(1, 4))
        if i in failed:
            text += f"RuntimeError: variant {i} failed\nsrun: error: n1: task 0: Exited with exit code 3\n"
        (logs / f"sweep_500_{i}.log").write_text(text)
        tasks.append(run_records.TaskEntry(i, f"v{i}", f"tasks/0_{i}", f"500_{i}"))
    record = run_records.RunRecord(
        run_id=run_dir.name, kind="array", backend="slurm", profile={"name": "p"}, recipe={"name": "r"},
        overrides=[], command=[], env={}, versions={}, files=[], tasks=tasks,
        jobs=[run_records.JobEntry("500", f"array 0-{count - 1}", "sbatch-array0.sh", array=f"0-{count - 1}%4")])
    run_records.write_record(run_dir, record)
    return run_dir


def scheduler_says(monkeypatch: pytest.MonkeyPatch, count: int, failed: set[int] = frozenset(),  # type: ignore[assignment]
                   running: set[int] = frozenset()) -> list[list[str]]:  # type: ignore[assignment]
    """One fake sacct answer for array job 500; returns the list of calls it saw."""
    calls: list[list[str]] = []

    def job_states(ids: Any, tasks: Any = ()) -> dict[str, JobState]:
        calls.append(list(ids))
        states = {}
        for i in range(count):
            state = "FAILED" if i in failed else "RUNNING" if i in running else "COMPLETED"
            states[f"500_{i}"] = JobState(f"500_{i}", state, exit_code=1 if i in failed else 0, elapsed_s=10 + i,
                                          array_task_id=i)
        return states
    monkeypatch.setattr(slurm, "job_states", job_states)
    return calls


@pytest.fixture
def fs_calls(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """Every path given to scandir, listdir, stat, lstat and open while the test runs."""
    seen: list[str] = []

    def spy(real: Callable[..., Any]) -> Callable[..., Any]:
        def call(path: Any = ".", *args: Any, **kwargs: Any) -> Any:
            seen.append(os.fspath(path) if isinstance(path, (str, os.PathLike)) else str(path))
            return real(path, *args, **kwargs)
        return call
    for module, name in ((os, "scandir"), (os, "listdir"), (os, "stat"), (os, "lstat"), (builtins, "open"),
                         (io, "open")):
        monkeypatch.setattr(module, name, spy(getattr(module, name)))
    yield seen


def per_task(seen: list[str], run_dir: Path) -> Counter[str]:
    """How many file-system calls touched each task's directory (calls on tasks/ itself count for every task)."""
    counts: Counter[str] = Counter()
    tasks = str(run_dir / "tasks")
    for path in seen:
        if path == tasks or path == tasks + "/":
            counts["tasks/ itself"] += 1
        elif path.startswith(tasks + "/"):
            counts[path[len(tasks) + 1:].split("/", 1)[0]] += 1
    return counts


@pytest.mark.parametrize("count", [5, 60])
def test_status_of_a_task_looks_only_in_that_tasks_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                            fs_calls: list[str], count: int) -> None:
    run_dir = sweep_run(tmp_path, count, failed={1})
    scheduler_says(monkeypatch, count, failed={1})
    fs_calls.clear()
    rows = status.collect([run_dir])
    assert len(rows) == count and rows[1].error == "RuntimeError: variant 1 failed" and rows[1].exit_code == 3
    assert all(r.progress == "3/20" for r in rows)
    counts = per_task(fs_calls, run_dir)
    assert "tasks/ itself" not in counts                     # no listing of every task
    assert set(counts) == {f"0_{i}" for i in range(count)}   # each task's own directory, every one
    assert max(counts.values()) <= 3      # its logs/ listed once, its log opened once, its attempts.jsonl once


def test_summary_reads_only_the_logs_of_the_tasks_it_names(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                           fs_calls: list[str]) -> None:
    run_dir = sweep_run(tmp_path, 60, failed={7, 8})
    calls = scheduler_says(monkeypatch, 60, failed={7, 8}, running={50, 51})
    fs_calls.clear()
    text = status.summary(status.watch([run_dir]))
    assert calls == [["500"]]                                # one scheduler query for the whole sweep
    lines = text.splitlines()
    assert lines[0] == f"{run_dir.name}: 60 rows (status --all shows every one)"
    assert [line.split() for line in lines[1:5]] == [["STATE", "COUNT"], ["FAILED", "2"], ["RUNNING", "2"],
                                                     ["COMPLETED", "56"]]
    assert "failed (first 2 of 2):" in lines and "slowest unfinished (2):" in lines
    assert "RuntimeError: variant 7 failed" in text and "RuntimeError: variant 8 failed" in text
    named = [line.split()[2] for line in lines if line.startswith(run_dir.name + " ") or line.startswith(run_dir.name + "  ")]
    assert named == ["v7", "v8", "v51", "v50"]               # the failed in order, the slowest first
    assert sorted(per_task(fs_calls, run_dir)) == ["0_50", "0_51", "0_7", "0_8"]


def test_status_cli_summarises_a_big_sweep_and_all_shows_every_row(cli: CliRunner, tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    run_dir = sweep_run(tmp_path, 60, failed={3})
    scheduler_says(monkeypatch, 60, failed={3})
    short = cli.invoke(main, ["status", str(run_dir)])
    assert short.exit_code == 0, short.output
    assert "60 rows (status --all shows every one)" in short.stdout and len(short.stdout.splitlines()) < 20
    every = cli.invoke(main, ["status", str(run_dir), "--all"])
    assert every.exit_code == 0 and len(every.stdout.splitlines()) == 61      # header + one line per task
    small = sweep_run(tmp_path, 5)
    scheduler_says(monkeypatch, 5)
    table = cli.invoke(main, ["status", str(small)]).stdout.splitlines()
    assert table[0].split()[:4] == ["RUN", "JOB", "PART", "STATE"] and len(table) == 6


def test_status_reads_a_bounded_tail_of_a_huge_log(tmp_path: Path) -> None:
    log = tmp_path / "big_500.log"
    with log.open("w") as handle:
        handle.write("".join(ITERATION.format(i=n) for n in range(1, 19)))
        handle.write("x" * 80 + "\n" * 1) 
        handle.write(("filler line\n") * (4 * status.TAIL_BYTES // 12))
        handle.write(ITERATION.format(i=19))
    assert log.stat().st_size > 3 * status.TAIL_BYTES
    assert len(status.read_tail(log)) <= status.TAIL_BYTES
    assert status.log_progress(log) == "19/20"          # the status path: the last TAIL_BYTES only


def test_logs_tail_prints_the_last_lines_only(cli: CliRunner, tmp_path: Path) -> None:
    run_dir = sweep_run(tmp_path, 3)
    log = run_dir / "tasks" / "0_1" / "logs" / "sweep_500_1.log"
    log.write_text("".join(f"line {n}\n" for n in range(200_000)))
    out = cli.invoke(main, ["logs", str(run_dir), "--task", "v1", "--tail", "2"])
    assert out.exit_code == 0, out.output
    assert out.stdout.splitlines() == [f"===== {log} =====", "line 199998", "line 199999"]


def test_report_takes_a_sweeps_variants_from_its_record_in_sweep_order(tmp_path: Path) -> None:
    run_dir = sweep_run(tmp_path, 12)
    assert [name for name, _path in report.find_variants(run_dir)] == [f"v{i}" for i in range(12)]
    rows = report.build_report([run_dir])
    assert [r.iterations for r in rows] == ["3/20"] * 12


# ------------------------------------------------------------------------------------------------- limits
def test_queue_and_associations_are_parsed() -> None:
    queue = "12_[5-999%4]|me|PENDING\n12_3|me|RUNNING\n12_2|me|COMPLETED\n13|other|PENDING\n14|me|PENDING\n"
    assert slurm_limits.parse_queue(queue, "me") == (5, 995 + 1 + 1)
    assoc = "acct|me|5000\nother|me|200\nthird|me|\n"
    assert slurm_limits.parse_associations(assoc, "acct") == (5000, "user me, account acct")
    assert slurm_limits.parse_associations(assoc, None) == (200, "user me, account other")
    assert slurm_limits.parse_associations("acct|me|\n", None) == (None, "")


def test_a_sweep_over_max_submit_jobs_is_refused_with_the_room_left() -> None:
    found = slurm_limits.Limits(1001, 50000, 5000, held=10, queued=100, association="user me, account a")
    assert slurm_limits.check(4900, 5, found) == []
    with pytest.raises(ConfigError) as err:
        slurm_limits.check(4901, 5, found)
    assert str(err.value) == ("sweep: 4901 array tasks and the 100 jobs you have queued exceed MaxSubmitJobs=5000 "
                              "(user me, account a): Slurm would refuse them part-way (fix: submit at most 4900 "
                              "variants now (split the sweep file), or ask the administrator to raise MaxSubmitJobs)")


def test_arrays_over_max_job_count_are_refused_and_tasks_over_it_warned() -> None:
    found = slurm_limits.Limits(1000, 20, None, held=12)
    with pytest.raises(ConfigError, match=r"its 9 arrays .* exceed MaxJobCount=20.*at most 8 arrays' worth "
                                          r"\(8000 variants\)"):
        slurm_limits.check(8500, 9, found)
    [warning] = slurm_limits.check(10, 1, found)
    assert "10 tasks and the 12 job records held may pass MaxJobCount=20" in warning
    assert slurm_limits.check(5, 1, found) == []


def test_dry_run_of_a_big_sweep_prints_a_summary_and_writes_files_only_when_asked(
        cli: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(slurm, "show_config", lambda: {"MaxArraySize": "30"})
    sweep = tmp_path / "big.yaml"
    sweep.write_text("name: big\nvariants:\n" + "".join(f"  - {{name: v{i}, set: [training.seed={i}]}}\n"
                                                        for i in range(70)))
    base = ["submit", "-p", "local-slurm", "--sweep", str(sweep), "--set", f"profile.output_root={tmp_path}/runs",
            "--dry-run"]
    out = cli.invoke(main, base)
    assert out.exit_code == 0, out.output
    assert "=====" not in out.stdout and len(out.stdout.splitlines()) < 12
    assert "would write 144 files" in out.stdout and "and 70 task directories" in out.stdout
    assert "[array 0-29: v0, v1, v2, ..., v28, v29 (30 variants); 4 ranks each; --array=0-29%4]" in out.stdout
    shown = cli.invoke(main, [*base, "--show-files"])
    assert shown.stdout.count("\n===== ") == 144
    written = cli.invoke(main, [*base, "--out", str(tmp_path / "plan")])
    assert written.exit_code == 0, written.output
    files = sorted(str(p.relative_to(tmp_path / "plan")) for p in (tmp_path / "plan").rglob("*") if p.is_file())
    assert len(files) == 144 and "tasks/2_9/job.json" in files and "sbatch-array2.sh" in files
    again = cli.invoke(main, [*base, "--out", str(tmp_path / "plan")])
    assert again.exit_code == 2 and "--out:" in again.stderr and "not an empty directory" in again.stderr
    assert cli.invoke(main, [*base[:-1], "--show-files"]).exit_code == 2           # only with --dry-run
    assert not (tmp_path / "runs").exists()


def test_array_tasks_sacct_does_not_list_yet_come_from_scontrol(monkeypatch: pytest.MonkeyPatch,
                                                                tmp_path: Path) -> None:
    """Accounting lags: a task that just ran is neither in sacct's pending remainder nor on its own line, or still
    in the pending remainder; slurmctld is asked (once) while any task is missing or pending, never after."""
    run_dir = sweep_run(tmp_path, 6)
    sacct = {"500_0": JobState("500_0", "COMPLETED", 0, array_task_id=0),
             **{f"500_{i}": JobState(f"500_{i}", "PENDING", array_task_id=i) for i in (3, 4, 5)}}
    monkeypatch.setattr(slurm, "sacct_states", lambda ids: dict(sacct))
    asked: list[list[str]] = []

    def scontrol_states(ids: list[str]) -> dict[str, JobState]:
        asked.append(ids)
        return {f"500_{i}": JobState(f"500_{i}", "COMPLETED", 0, array_task_id=i, source="scontrol")
                for i in range(3)}
    monkeypatch.setattr(slurm, "scontrol_states", scontrol_states)
    rows = status.collect([run_dir])
    assert [r.state for r in rows] == ["COMPLETED"] * 3 + ["PENDING"] * 3
    assert asked == [["500"]]                                # one scontrol call, for the array job
    sacct.update({f"500_{i}": JobState(f"500_{i}", "COMPLETED", 0, array_task_id=i) for i in (1, 2)})
    status.collect([run_dir])
    assert asked == [["500"]] * 2                            # 3-5 still pending in sacct: asked again, once
    sacct.update({f"500_{i}": JobState(f"500_{i}", "COMPLETED", 0, array_task_id=i) for i in (3, 4, 5)})
    status.collect([run_dir])
    assert asked == [["500"]] * 2                            # every task ended: no further call
