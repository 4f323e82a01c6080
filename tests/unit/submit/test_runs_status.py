"""Run directories, records, status rows and the launch helpers that need no scheduler."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from submitit.core.utils import cloudpickle_dump

import orchestrator
from orchestrator.spec import config, secret_names
from orchestrator.spec.sweep import load_sweep
from orchestrator.submit import launch, plan, render, run_records
from orchestrator.observe import status
from orchestrator.submit import backends
from orchestrator.submit.backends import local
from orchestrator.submit.backends.base import JobState


def _record(run_id: str = "r", **kw: object) -> run_records.RunRecord:
    base = dict(run_id=run_id, kind="single", backend="slurm", profile={"name": "p"}, recipe={"name": "r"},
                overrides=[], command=["python3"], env={}, versions={}, files=[])
    base.update(kw)
    return run_records.RunRecord(**base)  # type: ignore[arg-type]


def test_run_directories_are_new_every_time(tmp_path: Path) -> None:
    made = {run_records.new_run_dir(tmp_path / "runs", "dsv3 proxy/3l") for _ in range(20)}
    assert len(made) == 20
    for path in made:
        assert path.name.startswith("dsv3-proxy-3l-") and (path / "logs").is_dir()


def test_records_are_written_once_and_read_back(tmp_path: Path) -> None:
    rec = _record(jobs=[run_records.JobEntry(job_id="12", role="run", script="sbatch.sh")],
                  tasks=[run_records.TaskEntry(index=0, variant="a", dir="tasks/0_0", job_id="12_0")])
    run_records.write_record(tmp_path, rec)
    with pytest.raises(run_records.RunError, match="never overwritten"):
        run_records.write_record(tmp_path, rec)
    back = run_records.load_record(tmp_path)
    assert back.jobs[0].job_id == "12" and back.tasks[0].variant == "a" and back.job_ids == ["12"]
    assert back.created


def test_secrets_are_redacted() -> None:
    env = {"WANDB_API_KEY": "k", "HF_TOKEN": "t", "MY_PASSWORD": "p", "NCCL_IB_TIMEOUT": "19"}
    assert secret_names.redact(env) == {"WANDB_API_KEY": "<redacted>", "HF_TOKEN": "<redacted>",
                                    "MY_PASSWORD": "<redacted>", "NCCL_IB_TIMEOUT": "19"}


def test_runs_are_found_by_path_id_or_newest(tmp_path: Path) -> None:
    old, new = tmp_path / "a-run", tmp_path / "b-run"
    for d in (old, new):
        d.mkdir()
        run_records.write_record(d, _record(d.name))
    os.utime(old / "record.json", (1, 1))
    assert run_records.resolve_run(None, tmp_path) == new.resolve()
    assert run_records.resolve_run("a-run", tmp_path) == old.resolve()
    assert run_records.resolve_run(str(old), "/nonexistent") == old.resolve()
    with pytest.raises(run_records.RunError, match="no run 'zzz'"):
        run_records.resolve_run("zzz", tmp_path)


def test_logs_of_a_job_or_array_task(tmp_path: Path) -> None:
    (tmp_path / "logs").mkdir()
    (tmp_path / "tasks" / "0_1" / "logs").mkdir(parents=True)
    for rel in ("logs/x_12.log", "logs/x_112.log", "tasks/0_1/logs/s_20_1.log"):
        (tmp_path / rel).write_text("")
    run_records.write_record(tmp_path, _record(tasks=[run_records.TaskEntry(1, "b", "tasks/0_1", "20_1")]))
    assert [p.name for p in run_records.logs_of_job(tmp_path, "12")] == ["x_12.log"]
    assert [p.name for p in run_records.logs_of_job(tmp_path, "20_1")] == ["s_20_1.log"]
    assert len(run_records.log_files(tmp_path)) == 3


CASCADE = """orchestrator: job 7 on n[1-2] (restart 0)
[rank1]: Traceback (most recent call last):
[rank1]:   File "train.py", line 78, in main
[rank1]: RuntimeError: stand-in failure injected at iteration 2
[rank0]: RuntimeError: [gloo/pair.cc:553] Connection closed by peer [127.0.0.1]:36739.
srun: error: n1: task 1: Exited with exit code 1
slurmstepd-n1: error: *** STEP 7.0 ON n1 CANCELLED AT 2026-11-28T14:51:14 ***
srun: error: n1: task 0: Exited with exit code 143
"""


def test_root_error_is_the_first_exception_not_the_cascade() -> None:
    assert status.root_error(CASCADE) == "RuntimeError: stand-in failure injected at iteration 2"
    assert status.first_task_exit(CASCADE) == 1
    assert status.root_error("0: torch.OutOfMemoryError: CUDA out of memory\n") == \
        "torch.OutOfMemoryError: CUDA out of memory"
    assert status.root_error("srun: error: n1: task 0: Exited with exit code 2\n") == \
        "srun: error: n1: task 0: Exited with exit code 2"
    assert status.root_error("WARNING: DeepEP ... error: nothing\n[orchestrator.node] error: x\nall good\n") == ""


def test_only_the_newest_attempt_of_a_requeued_job_counts() -> None:
    text = CASCADE + "orchestrator: job 7 on n[1-2] (restart 1)\nValueError: second attempt\n"
    assert status.root_error(status.last_attempt(text)) == "ValueError: second attempt"
    assert status.first_task_exit(status.last_attempt(text)) is None


def test_failed_row_takes_the_first_failing_ranks_code_and_error(tmp_path: Path) -> None:
    log = tmp_path / "x_7.log"
    log.write_text(CASCADE)
    row = status._describe_logs(status.Row("r", "7", "run", "FAILED", exit_code=143), [log], derived_exit=None)
    assert (row.exit_code, row.error) == (1, "RuntimeError: stand-in failure injected at iteration 2")
    ok = status._describe_logs(status.Row("r", "8", "run", "COMPLETED", exit_code=0), [log], derived_exit=None)
    assert ok.error == "" and ok.exit_code == 0


def test_table_has_one_line_per_row() -> None:
    rows = [status.Row("run-a", "12_0", "bf16", "COMPLETED", 0, 65, "n[1-2]", "20/20"),
            status.Row("run-a", "12_1", "fp8", "FAILED", 1, 3725, "n1", "3/20", "RuntimeError: boom")]
    lines = status.table(rows).splitlines()
    assert lines[0].split() == list(status.COLUMNS)
    assert lines[1].split() == ["run-a", "12_0", "bf16", "COMPLETED", "0", "0:01:05", "n[1-2]", "20/20"]
    assert lines[2].endswith("RuntimeError: boom") and "1:02:05" in lines[2]


class _Payload:
    """Unpickling this runs code: it creates the file named."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __reduce__(self) -> tuple[object, tuple[str, str]]:
        return (os.system, (f"touch {self.path}",))


def test_local_state_from_the_exit_file_never_from_a_pickle(tmp_path: Path) -> None:
    folder = tmp_path / ".submitit"
    folder.mkdir()
    (folder / "111_exit.json").write_text('{"exit_code": 0}\n')
    (folder / "222_exit.json").write_text('{"exit_code": 3}\n')
    cloudpickle_dump(_Payload(tmp_path / "pwned"), folder / "333_0_result.pkl")   # a crafted result pickle
    assert local.local_state(tmp_path, "333").state == "CANCELLED"                # not running, no exit file
    assert not (tmp_path / "pwned").exists()
    (folder / "444_exit.json").write_text('{"exit_code": "zero"}')               # damaged: not an exit status
    assert local.local_state(tmp_path, "444").state == "CANCELLED"
    assert local.local_state(tmp_path, "111").state == "COMPLETED"
    failed = local.local_state(tmp_path, "222")
    assert (failed.state, failed.exit_code) == ("FAILED", 3)
    assert local.local_state(tmp_path, str(os.getpid())).state == "RUNNING"
    assert local.local_state(tmp_path, "999999999").state == "CANCELLED"


def test_array_chunks_stay_below_max_array_size() -> None:
    assert plan.chunk_sizes(3, 1001) == [3]
    assert plan.chunk_sizes(3, 2) == [2, 1]
    assert plan.chunk_sizes(2500, 1001) == [1001, 1001, 498]


def _exp(*overrides: str) -> config.Experiment:
    return config.load_experiment("local-slurm", "dsv3-proxy-3l", list(overrides))


def test_preflight_script_calls_the_node_entry_with_preflight() -> None:
    exp = _exp()
    text = render.render(exp, "/runs/x").files["sbatch.sh"]
    pre = render.render(exp, "/runs/x", preflight=True).files["sbatch.sh"]
    assert "-m orchestrator.node --preflight /runs/x/job.json" in pre
    srun = lambda script: [line for line in script.splitlines() if "-m orchestrator.node " in line]  # noqa: E731
    assert [line.replace(" --preflight", "") for line in srun(pre)] == [line.rstrip(" &") for line in srun(text)]
    assert "orchestrator.node.retry" in text and "orchestrator.node.retry" not in pre  # a preflight is not retried
    assert "#SBATCH --signal=B:USR1@" in text and "--signal" not in pre


def test_the_plan_holds_what_each_rank_runs() -> None:
    request = plan.Request(_exp(), preflight=True)
    [job] = plan.make_plan(request, "/runs/x").jobs
    assert job.node_command == ("python3", "-u", "-m", "orchestrator.node", "--preflight", "/runs/x/job.json")
    assert render.shjoin(list(job.node_command)) in job.files[0].text        # the script runs exactly that


def test_a_later_segment_is_rendered_with_the_real_id_of_the_one_before() -> None:
    request = plan.prepare(plan.Request(_exp("training.save_interval=10"), segments=2))
    second = plan.make_plan(request, "/runs/x").jobs[1]
    assert second.dependency == plan.Dependency("afterok", 1)
    assert "#SBATCH --dependency=afterok:JOBID_1\n" in second.files[0].text      # the plan shows the placeholder
    [written] = second.files_to_write(["4711"])
    assert written.text == render.render(request.exp, "/runs/x", dependency="afterok:4711").files["sbatch.sh"]


def test_blocked_submission_creates_nothing(tmp_path: Path) -> None:
    exp = _exp("training.global_batch_size=3", f"profile.output_root={tmp_path}/runs")
    with pytest.raises(launch.InvalidSubmission) as info:
        launch.submit_run(exp)
    assert any("global_batch_size" in str(p) for p in info.value.problems)
    assert not (tmp_path / "runs").exists()


def test_output_root_is_recorded_as_an_absolute_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert plan.anchored(_exp()).profile.output_root == str(tmp_path / "runs")


def test_record_json_is_plain_json(tmp_path: Path) -> None:
    run_records.write_record(tmp_path, _record(env=secret_names.redact({"HF_TOKEN": "x"})))
    assert json.loads((tmp_path / "record.json").read_text())["env"] == {"HF_TOKEN": "<redacted>"}


def test_status_asks_each_back_end_once_for_all_of_its_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    asked: list[list[str]] = []

    def states(runs: list[tuple[Path, run_records.RunRecord]]) -> dict[tuple[Path, str], JobState]:
        asked.append([record.run_id for _d, record in runs])
        return {(d, j.job_id): JobState(j.job_id, "RUNNING", source="fake") for d, r in runs for j in r.jobs}
    monkeypatch.setattr(backends.BACKENDS["slurm"], "states", states)
    for name, job in (("a", "11"), ("b", "12")):
        (tmp_path / name).mkdir()
        run_records.write_record(tmp_path / name, _record(name, jobs=[run_records.JobEntry(job, "run", "sbatch.sh")]))
    rows = status.collect([tmp_path / "a", tmp_path / "b"])
    assert asked == [["a", "b"]]                                  # one query (one sacct) for both runs
    assert [(r.run, r.job_id, r.state) for r in rows] == [("a", "11", "RUNNING"), ("b", "12", "RUNNING")]


def test_a_container_job_array_mounts_the_run_directory_and_the_toolkit(tmp_path: Path) -> None:
    sweep_file = tmp_path / "s.yaml"
    sweep_file.write_text("name: s\nrecipe: dsv3-proxy-3l\nvariants:\n  - {name: a}\n  - {name: b}\n")
    exp = config.load_experiment("h100-eos", "dsv3-proxy-3l", ["profile.nodes=1", "profile.account=acct"])
    the_plan = plan.make_plan(plan.Request(exp, sweep=load_sweep(sweep_file)), "/runs/x")
    script = the_plan.jobs[0].files[-1].text
    toolkit = str(Path(orchestrator.__file__).resolve().parent)
    assert f"--container-mounts=/lustre:/lustre,{toolkit}:{toolkit}:ro,/runs/x:/runs/x " in script   # not tasks/0_%a
    assert f"export PYTHONPATH={Path(toolkit).parent}${{PYTHONPATH:+:$PYTHONPATH}}\n" in script


def test_a_record_is_written_whole_or_not_at_all(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from orchestrator.submit import run_records as rr
    record = rr.RunRecord(run_id="r", kind="single", backend="slurm", profile={}, recipe={}, overrides=[],
                          command=[], env={}, versions={}, files=[])
    real = rr.write_new

    def full_disk(path: Path, text: str, mode: int = 0o644) -> None:
        real(path, text[:10], mode)
        raise OSError(28, "No space left on device")
    monkeypatch.setattr(rr, "write_new", full_disk)
    with pytest.raises(OSError):
        rr.write_record(tmp_path, record)
    assert list(tmp_path.iterdir()) == []                    # no half record.json, no leftover
    monkeypatch.setattr(rr, "write_new", real)
    rr.write_record(tmp_path, record)
    with pytest.raises(rr.RunError, match="never overwritten"):
        rr.write_record(tmp_path, record)
    assert [p.name for p in tmp_path.iterdir()] == ["record.json"]
