"""End-to-end: the toolkit's CLI against the real Slurm cluster (profile local-slurm: 2 nodes x 2 fake GPUs).

The training command is tests/e2e/cpu_gpt/pretrain_gpt.py (``profile.megatron_path``): Megatron cannot train on
this CPU-only machine, so a small GPT trains for real behind Megatron's command line, log format and checkpoint
contract (torch.distributed over gloo, data parallel, AdamW; see its docstring). Tests assert on what it printed.
"""

from __future__ import annotations

import json
import re
import socket
from pathlib import Path

import pytest

from .conftest import Cluster, Workspace, wait_until

CPU_GPT = Path(__file__).resolve().parent / "cpu_gpt"
BASE = ["-p", "local-slurm", "-r", "dsv3-proxy-3l", "--set", f"profile.megatron_path={CPU_GPT}"]
FAIL_AT = "CPU_GPT_FAIL_AT_ITER"
LOADED = re.compile(r"^ loading checkpoint from (\S+) at iteration (\d+)$", re.M)


def env_set(name: str, value: str) -> list[str]:
    return ["--set", f'env.{name}="{value}"']


def record(run_dir: Path) -> dict:  # type: ignore[type-arg]
    return json.loads((run_dir / "record.json").read_text())


def status_rows(ws: Workspace, run_dir: Path, *extra: str) -> list[dict]:  # type: ignore[type-arg]
    proc = ws.cli("status", str(run_dir), "--json", *extra)
    assert proc.returncode in (0, 1), proc.stderr
    return json.loads(proc.stdout)


def only_run(ws: Workspace) -> Path:
    dirs = ws.run_dirs()
    assert len(dirs) == 1, dirs
    return dirs[0]


def log_text(run_dir: Path) -> str:
    return "".join(p.read_text() for p in sorted((run_dir / "logs").glob("*.log")))


def iterations(text: str) -> list[tuple[int, float]]:
    """(iteration, lm loss) of each Megatron iteration line, in log order."""
    return [(int(m[1]), float(m[2])) for m in re.finditer(r"iteration +(\d+)/ *\d+ \|.*?\| lm loss: (\S+) \|", text)]


def test_submit_runs_four_ranks_to_completion(workspace: Workspace) -> None:
    ws = workspace
    proc = ws.cli("submit", *BASE, "--set", "profile.nodes=2", "--set", "training.train_iters=5", "--follow",
                  HF_TOKEN="hf-secret-value-123")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    run_dir = only_run(ws)
    rec = record(run_dir)
    assert rec["kind"] == "single" and rec["backend"] == "slurm" and len(rec["jobs"]) == 1
    assert rec["profile"]["name"] == "local-slurm" and rec["recipe"]["name"] == "dsv3-proxy-3l"
    assert f"profile.megatron_path={CPU_GPT}" in rec["overrides"]
    assert rec["command"][:3] == ["python3", "-u", f"{CPU_GPT}/pretrain_gpt.py"]
    assert rec["versions"]["orchestrator"] and "slurm" in rec["versions"]["slurm"]
    assert "sbatch.sh" in rec["files"] and (run_dir / "sbatch.sh").is_file()
    log = log_text(run_dir)
    assert "cpu_gpt: rendezvous world_size=4 sum=10 hosts=['n1', 'n1', 'n2', 'n2'] local_ranks=[0, 1, 0, 1] " \
        "master=n1:" in log
    assert len(re.findall(r"^\[orchestrator\.bind\] rank \d", log, re.M)) == 4
    assert "iteration        5/       5" in log
    assert "WARNING: DeepEP token dispatcher requested but NOT available" in log
    for text in (log, (run_dir / "record.json").read_text(), (run_dir / "job.json").read_text()):
        assert "hf-secret-value-123" not in text
    [row] = status_rows(ws, run_dir)
    assert (row["state"], row["exit_code"], row["progress"], row["nodes"]) == ("COMPLETED", 0, "5/5", "n[1-2]")
    # Real training, read back by the report: Megatron's argument dump with the capped model and the 4 ranks,
    # the untrained model's loss near ln(1024) = 6.93, the cosine schedule down to --min-lr, one checkpoint.
    assert re.search(r"^cpu_gpt: ignoring \d+ Megatron flags it does not implement: .*--num-experts", log, re.M)
    assert re.search(r"^  world_size \.+ 4$", log, re.M) and re.search(r"^  hidden_size \.+ 64$", log, re.M)
    assert "iteration        5/       5 | consumed samples:           40 |" in log
    assert re.search(r"iteration +5/ +5 \|.*\| learning rate: 1\.000000E-05 \|", log)
    assert "  successfully saved checkpoint from iteration       5 to " in log
    [rep] = json.loads(ws.cli("report", str(run_dir), "--json").stdout)
    assert (rep["state"], rep["iterations"], rep["diagnosis"]) == ("completed", "5/5", None)
    assert [i for i, _ in rep["loss_curve"]] == [1, 2, 3, 4, 5] and 6.5 < rep["loss_curve"][0][1] < 7.5
    assert rep["iter_ms"] > 0 and rep["formula_tflops_per_gpu"] > 0


def test_sweep_is_one_array_task_per_variant(workspace: Workspace) -> None:
    ws = workspace
    sweep = ws.cwd / "iters.yaml"
    sweep.write_text("name: iters\nrecipe: dsv3-proxy-3l\nset: [training.train_iters=2]\nvariants:\n"
                     "  - {name: two}\n  - {name: three, set: [training.train_iters=3]}\n"
                     "  - {name: four, set: [training.train_iters=4]}\n")
    proc = ws.cli("submit", *BASE, "--sweep", str(sweep), "--follow")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    run_dir = only_run(ws)
    rec = record(run_dir)
    [job] = rec["jobs"]
    assert rec["kind"] == "array" and job["array"] == "0-2%4"
    assert "#SBATCH --array=0-2%4" in (run_dir / "sbatch-array0.sh").read_text()
    assert [(t["variant"], t["job_id"]) for t in rec["tasks"]] == \
        [("two", f"{job['job_id']}_0"), ("three", f"{job['job_id']}_1"), ("four", f"{job['job_id']}_2")]
    for task, iters in zip(rec["tasks"], (2, 3, 4)):
        task_dir = run_dir / task["dir"]
        task_rec = json.loads((task_dir / "record.json").read_text())
        assert task_rec["variant"] == task["variant"] and task_rec["job_id"] == task["job_id"]
        assert task_rec["command"][task_rec["command"].index("--train-iters") + 1] == str(iters)
        [log] = list((task_dir / "logs").glob("*.log"))
        assert log.name.endswith(f"_{task['job_id']}.log")
        assert f"iteration {iters:8d}/{iters:8d}" in log.read_text()
    rows = status_rows(ws, run_dir)
    assert [(r["part"], r["state"], r["progress"]) for r in rows] == \
        [("two", "COMPLETED", "2/2"), ("three", "COMPLETED", "3/3"), ("four", "COMPLETED", "4/4")]


def test_failing_task_shows_failed_exit_code_and_last_error(workspace: Workspace) -> None:
    ws = workspace
    proc = ws.cli("submit", *BASE, "--set", "training.train_iters=6", *env_set(FAIL_AT, "2"), "--follow")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    [row] = status_rows(ws, only_run(ws))
    assert row["state"] == "FAILED" and row["exit_code"] == 1
    error = "RuntimeError: cpu_gpt: failure injected at iteration 2 (CPU_GPT_FAIL_AT_ITER)"
    assert row["error"] == error and row["progress"] == "1/6"
    table = ws.cli("status", str(only_run(ws))).stdout
    assert "FAILED" in table and error in table


def _wait_for_iteration(run_dir: Path, n: int, timeout: float = 60) -> None:
    wait_until(lambda: re.search(rf"iteration +{n}/", log_text(run_dir)), timeout, f"iteration {n} in the log")


def test_cancel_stops_a_running_job(workspace: Workspace) -> None:
    ws = workspace
    proc = ws.cli("submit", *BASE, "--set", "training.train_iters=1000")
    assert proc.returncode == 0, proc.stderr
    run_dir = only_run(ws)
    _wait_for_iteration(run_dir, 1)
    proc = ws.cli("cancel", str(run_dir))
    job_id = record(run_dir)["jobs"][0]["job_id"]
    assert proc.returncode == 0 and f"cancelled {job_id}" in proc.stdout, proc.stderr
    follow = ws.cli("status", str(run_dir), "--follow", "--interval", "0.5", timeout=60)
    assert follow.returncode == 1
    [row] = status_rows(ws, run_dir)
    assert row["state"] == "CANCELLED"


def test_scontrol_requeue_runs_again_and_appends_to_the_log(workspace: Workspace) -> None:
    ws = workspace
    proc = ws.cli("submit", *BASE, "--set", "profile.nodes=1", "--set", "training.train_iters=300",
                  "--set", "training.save_interval=20")
    assert proc.returncode == 0, proc.stderr
    run_dir = only_run(ws)
    job_id = record(run_dir)["jobs"][0]["job_id"]
    _wait_for_iteration(run_dir, 22)
    ws.cluster.run("scontrol", "requeue", job_id)
    follow = ws.cli("status", str(run_dir), "--follow", "--interval", "0.5", timeout=120)
    assert follow.returncode == 0, follow.stdout + follow.stderr
    [log] = list((run_dir / "logs").glob("*.log"))
    text = log.read_text()
    assert f"orchestrator: job {job_id} on n1 (restart 0)" in text
    assert f"orchestrator: job {job_id} on n1 (restart 1)" in text
    loaded = LOADED.search(text)
    assert loaded and text.index("(restart 0)") < text.index("(restart 1)") < loaded.start()
    resumed_at = int(loaded[2])                          # the newest checkpoint the first attempt saved
    assert f"  successfully saved checkpoint from iteration {resumed_at:7d} to {loaded[1]}" in text
    assert resumed_at % 20 == 0 and 20 <= resumed_at < 300
    first, again = iterations(text[:loaded.start()]), iterations(text[loaded.end():])
    assert again[0][0] == resumed_at + 1 and [i for i, _ in again] == list(range(resumed_at + 1, 301))
    redone = [step for step in first if step[0] > resumed_at]      # iterations both attempts ran: the same losses,
    assert again[:len(redone)] == redone                           # so model, optimizer and data position resumed
    assert "iteration      300/     300" in text
    [row] = status_rows(ws, run_dir)
    assert (row["state"], row["exit_code"], row["progress"]) == ("COMPLETED", 0, "300/300")


SEGMENT_ITERS, MS_PER_ITER = 500, 300
"""The segments' exit clock is simulated (cpu_gpt's CPU_GPT_MS_PER_ITER): 300 ms an iteration makes the 1 minute a
segment may train (2 min limit - 1 min margin) 200 iterations, so each segment stops after its 201st iteration
(Megatron exits once the time is *over* the limit) on a fast or a slow machine: 1-201, 202-402, 403-500."""


def test_segments_chain_and_resume_from_the_checkpoint(workspace: Workspace) -> None:
    ws = workspace
    proc = ws.cli("submit", *BASE, "--segments", "3", "--set", "profile.nodes=1", "--set", "profile.time_limit=00:02:00",
                  "--set", "training.exit_margin_minutes=1", "--set", f"training.train_iters={SEGMENT_ITERS}",
                  *env_set("CPU_GPT_MS_PER_ITER", str(MS_PER_ITER)), "--follow", timeout=420)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    run_dir = only_run(ws)
    rec = record(run_dir)
    jobs = rec["jobs"]
    assert [j["role"] for j in jobs] == ["segment 1/3", "segment 2/3", "segment 3/3"]
    for before, after in zip(jobs, jobs[1:]):
        assert after["dependency"] == f"afterok:{before['job_id']}"
        assert f"#SBATCH --dependency=afterok:{before['job_id']}" in (run_dir / after["script"]).read_text()
    command = rec["command"]
    assert command[command.index("--exit-duration-in-mins") + 1] == "1"    # 2 min limit - 1 min margin
    assert command[command.index("--load") + 1] == command[command.index("--save") + 1]
    texts = []
    for job in jobs:
        [log] = list((run_dir / "logs").glob(f"*_{job['job_id']}.log"))
        texts.append(log.read_text())
    for text in texts[:2]:                          # segments 1 and 2 stop on the time limit, 201 iterations each
        exited = re.search(r"^\[exiting program after (\d+\.\d+) minutes\] datetime: ", text, re.M)
        assert exited and float(exited[1]) == 201 * MS_PER_ITER / 60000, text[-2000:]
    assert "exiting program" not in texts[2] and "[after training is done]" in texts[2]
    assert [iterations(text)[-1][0] for text in texts] == [201, 402, SEGMENT_ITERS]
    for before, after in zip(texts, texts[1:]):     # each segment resumes from the last checkpoint of the one before
        saved = re.findall(r"^  successfully saved checkpoint from iteration +(\d+) to ", before, re.M)
        loaded = LOADED.search(after)
        assert saved and loaded and int(loaded[2]) == int(saved[-1]), after[-2000:]
    steps = [step for text in texts for step in iterations(text)]
    assert [i for i, _ in steps] == list(range(1, SEGMENT_ITERS + 1))      # every iteration once, in order
    assert steps[-1][1] < steps[0][1] - 1.0                     # it learns: from ln(1024) = 6.9 down
    rows = status_rows(ws, run_dir)
    assert [(r["part"], r["state"]) for r in rows] == \
        [("segment 1/3", "COMPLETED"), ("segment 2/3", "COMPLETED"), ("segment 3/3", "COMPLETED")]


def test_status_is_right_without_accounting(extra_cluster, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    cluster: Cluster = extra_cluster(accounting="0")
    ws = Workspace(tmp_path, cluster)
    assert "accounting storage is disabled" in cluster.run("sacct", check=False).stderr.lower()
    ok = ws.cli("submit", *BASE, "--set", "training.train_iters=3")
    bad = ws.cli("submit", *BASE, "--set", "training.train_iters=3", *env_set(FAIL_AT, "1"))
    assert ok.returncode == 0 and bad.returncode == 0, ok.stderr + bad.stderr
    follow = ws.cli("status", "--all", "--follow", "--interval", "0.5", timeout=120)
    assert follow.returncode == 1, follow.stdout + follow.stderr
    rows = json.loads(ws.cli("status", "--all", "--json").stdout)
    assert sorted((r["state"], r["exit_code"]) for r in rows) == [("COMPLETED", 0), ("FAILED", 1)]
    assert [r["error"] for r in rows if r["state"] == "FAILED"] == \
        ["RuntimeError: cpu_gpt: failure injected at iteration 1 (CPU_GPT_FAIL_AT_ITER)"]


def test_array_larger_than_max_array_size_is_split(extra_cluster, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    cluster: Cluster = extra_cluster(accounting="0", max_array_size="2")
    ws = Workspace(tmp_path, cluster)
    sweep = tmp_path / "three.yaml"
    sweep.write_text("name: three\nset: [training.train_iters=2]\nmax_parallel: 2\n"
                     "variants: [{name: a}, {name: b}, {name: c}]\n")
    proc = ws.cli("submit", *BASE, "--sweep", str(sweep), "--follow")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    rec = record(only_run(ws))
    first, second = rec["jobs"]
    assert (first["array"], second["array"]) == ("0-1%2", "0-0%2")
    assert second["dependency"] == f"afterany:{first['job_id']}" and second["task_offset"] == 2
    assert [t["job_id"] for t in rec["tasks"]] == [f"{first['job_id']}_0", f"{first['job_id']}_1",
                                                   f"{second['job_id']}_0"]
    rows = json.loads(ws.cli("status", "--json").stdout)
    assert [(r["part"], r["state"], r["progress"]) for r in rows] == \
        [("a", "COMPLETED", "2/2"), ("b", "COMPLETED", "2/2"), ("c", "COMPLETED", "2/2")]


def _jobs_submitted(cluster: Cluster) -> int:
    match = re.search(r"Jobs submitted:\s*(\d+)", cluster.run("sdiag").stdout)
    assert match
    return int(match.group(1))


@pytest.mark.parametrize("profile_lines,message", [
    ('partition: "debug; touch /tmp/orchestrator-pwned"',
     "profile.partition: 'debug; touch /tmp/orchestrator-pwned' cannot be written on an #SBATCH line"),
    ("time_limit: soon", "profile.time_limit: not a Slurm time: 'soon'"),
    ("gpus_per_node: 0", "profile.gpus_per_node: 0 is out of range (fix: use a value from 1 to 64)"),
    ("nodez: 2", "profile.nodez: unknown setting (fix: did you mean 'nodes'?)"),
])
def test_bad_profile_values_never_reach_sbatch(workspace: Workspace, profile_lines: str, message: str) -> None:
    ws = workspace
    (ws.cwd / "profiles").mkdir()
    (ws.cwd / "profiles" / "bad.yaml").write_text(f"extends: local-slurm\n{profile_lines}\n")
    before = _jobs_submitted(ws.cluster)
    proc = ws.cli("submit", "--profiles-dir", "profiles", "-p", "bad", "-r", "dsv3-proxy-3l")
    assert proc.returncode == 2
    assert message in proc.stderr and proc.stderr.startswith("error: ")
    assert _jobs_submitted(ws.cluster) == before
    assert ws.run_dirs() == [] and not Path("/tmp/orchestrator-pwned").exists()


def test_an_option_this_slurm_lacks_is_refused_before_sbatch(workspace: Workspace, tmp_path: Path) -> None:
    """The version gate matches the real Slurm: this cluster's sbatch refuses ``--segment`` itself, and the toolkit
    refuses the profile that would render it in one line naming the setting, submitting nothing."""
    ws = workspace
    script = tmp_path / "segment.sbatch"
    script.write_text("#!/bin/bash\n#SBATCH -N2 --segment=2 -t 1\nsrun true\n")
    real = ws.cluster.run("sbatch", "--test-only", str(script), check=False)
    assert real.returncode != 0 and "segment" in real.stderr, real.stderr
    before = _jobs_submitted(ws.cluster)
    proc = ws.cli("submit", *BASE, "--set", "profile.nodes=2", "--set", "profile.segment=2")
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert proc.stderr.startswith("error: profile.segment: Slurm ") and "has no #SBATCH --segment" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert _jobs_submitted(ws.cluster) == before and ws.run_dirs() == []


def test_submit_from_a_run_directory_repeats_it(workspace: Workspace) -> None:
    ws = workspace
    assert ws.cli("submit", *BASE, "--set", "training.train_iters=2", "--follow").returncode == 0
    original = only_run(ws)
    proc = ws.cli("submit", "--from", str(original), "--follow")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    again = [d for d in ws.run_dirs() if d != original]
    assert len(again) == 1 and again[0].parent == original.parent
    old, new = record(original), record(again[0])
    assert new["submitted_from"] == str(original) and new["jobs"][0]["job_id"] != old["jobs"][0]["job_id"]
    assert new["profile"] == old["profile"] and new["recipe"] == old["recipe"]
    assert [a.replace(original.name, "") for a in old["command"]] == \
        [a.replace(again[0].name, "") for a in new["command"]]
    logs = ws.cli("logs", str(again[0]), "--tail", "4")      # the last iteration, then Megatron's end and save
    assert logs.returncode == 0 and "iteration        2/       2" in logs.stdout
    assert "iteration        1/" not in logs.stdout and "successfully saved checkpoint from iteration" in logs.stdout


def test_cli_preflight_proves_rendezvous(workspace: Workspace) -> None:
    proc = workspace.cli("preflight", *BASE, "--set", "profile.nodes=2")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "preflight ok: 4 ranks" in proc.stdout
    assert len(re.findall(r"^rank \d/4 n[12]: ok, all-reduce ok \(gloo\)", proc.stdout, re.M)) == 4


LOCAL = ["-p", "local", "-r", "dsv3-proxy-3l", "--set", f"profile.megatron_path={CPU_GPT}"]


def _processes_of(run_dir: Path) -> list[int]:
    """Live processes whose command line mentions this run directory."""
    pids = []
    for proc in Path("/proc").iterdir():
        try:
            if proc.name.isdigit() and str(run_dir).encode() in (proc / "cmdline").read_bytes():
                pids.append(int(proc.name))
        except OSError:
            continue
    return pids


def test_local_profile_runs_two_ranks_without_slurm(workspace: Workspace) -> None:
    ws = workspace
    proc = ws.cli("submit", *LOCAL, "--set", "training.train_iters=3", "--follow")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    run_dir = only_run(ws)
    rec = record(run_dir)
    assert rec["backend"] == "local" and "launch_local.sh" in rec["files"]
    log = log_text(run_dir)
    host = socket.gethostname()
    assert f"cpu_gpt: rendezvous world_size=2 sum=3 hosts=['{host}', '{host}'] local_ranks=[0, 1] " \
        "master=127.0.0.1:" in log
    assert "iteration        3/       3" in log and [i for i, _ in iterations(log)] == [1, 2, 3]
    [row] = status_rows(ws, run_dir)
    assert (row["state"], row["exit_code"], row["progress"]) == ("COMPLETED", 0, "3/3")


def test_local_cancel_stops_every_rank(workspace: Workspace) -> None:
    ws = workspace
    # 1000 iterations of at least 50 ms each (CPU_GPT_SLEEP_MS): still running when cancelled on any machine
    assert ws.cli("submit", *LOCAL, "--set", "training.train_iters=1000",
                  *env_set("CPU_GPT_SLEEP_MS", "50")).returncode == 0
    run_dir = only_run(ws)
    _wait_for_iteration(run_dir, 1)
    cancel = ws.cli("cancel", str(run_dir))
    assert cancel.returncode == 0 and cancel.stdout.startswith("cancelled "), cancel.stdout + cancel.stderr
    wait_until(lambda: not _processes_of(run_dir), 30, "the local ranks to stop")
    [row] = status_rows(ws, run_dir)
    assert row["state"] == "CANCELLED"


def test_local_sweep_runs_variants_one_after_another_with_their_own_state(workspace: Workspace) -> None:
    ws = workspace
    sweep = ws.cwd / "local.yaml"
    sweep.write_text("name: local-pair\nrecipe: dsv3-proxy-3l\nset: [training.train_iters=2]\nvariants:\n"
                     f"  - {{name: fails, set: [training.train_iters=3, 'env.{FAIL_AT}=\"2\"']}}\n"
                     "  - {name: ok}\n")
    proc = ws.cli("submit", *LOCAL, "--sweep", str(sweep), "--follow")
    assert proc.returncode == 1, proc.stdout + proc.stderr   # one task failed
    run_dir = only_run(ws)
    rec = record(run_dir)
    assert rec["kind"] == "array" and [t["variant"] for t in rec["tasks"]] == ["fails", "ok"]
    rows = status_rows(ws, run_dir)
    assert [(r["part"], r["state"], r["exit_code"], r["progress"]) for r in rows] == \
        [("fails", "FAILED", 1, "1/3"), ("ok", "COMPLETED", 0, "2/2")]
    assert rows[0]["error"] == "RuntimeError: cpu_gpt: failure injected at iteration 2 (CPU_GPT_FAIL_AT_ITER)"
    assert all(isinstance(r["elapsed_s"], int) and 0 <= r["elapsed_s"] < 120 for r in rows)
    first, second = (run_dir / t["dir"] for t in rec["tasks"])
    # one after another on the same GPUs: the second began after the first had ended
    assert float((second / "started_at").read_text()) >= (first / "exit_status").stat().st_mtime - 0.01
    report = ws.cli("report", str(run_dir))
    assert report.returncode == 0, report.stderr
    # columns: variant, GPUs (the world size from the argument dump), state, iters
    assert re.search(r"^fails +2 +failed +1/3", report.stdout, re.M) and re.search(r"^ok +2 +completed +2/2", report.stdout, re.M)


def test_an_interrupted_submit_cancels_what_it_submitted(workspace: Workspace) -> None:
    """Ctrl-C half-way through a chain of segments: every job already handed to sbatch is cancelled, and the run's
    record lists them and says it was interrupted (before, 410 jobs were left that no command could see)."""
    import signal
    import subprocess
    import sys

    ws = workspace
    before = _jobs_submitted(ws.cluster)
    proc = subprocess.Popen([sys.executable, "-m", "orchestrator", "submit", *BASE, "--no-megatron",
                             "--segments", "300"], cwd=ws.cwd, env=ws.cluster.env(), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    wait_until(lambda: _jobs_submitted(ws.cluster) >= before + 3, 120, "the first segments to be submitted")
    proc.send_signal(signal.SIGINT)
    _out, err = proc.communicate(timeout=120)
    assert proc.returncode != 0 and "interrupted by SIGINT after " in err, err
    assert len(err.strip().splitlines()) == 1, err
    run_dir = only_run(ws)
    rec = record(run_dir)
    ids = [j["job_id"] for j in rec["jobs"]]
    assert 3 <= len(ids) < 300 and rec["error"].startswith(f"interrupted by SIGINT after {len(ids)} of 300 job(s)")
    assert _jobs_submitted(ws.cluster) - before == len(ids)   # the one sbatch in flight as the signal came is recorded
    queued = ws.cluster.run("squeue", "-h", "-o", "%i", "-j", ",".join(ids), check=False).stdout.split()
    wait_until(lambda: not ws.cluster.run("squeue", "-h", "-o", "%i", "-t", "PD,R", "-j", ",".join(ids),
                                          check=False).stdout.split(), 60, f"jobs {queued} to leave the queue")


def test_cancel_leaves_a_job_that_is_not_the_runs_alone(workspace: Workspace) -> None:
    """A record names any job id it likes: cancel acts only on a job whose output goes into the run directory and
    that is this user's; a bystander's job named by an edited record keeps running."""
    ws = workspace
    assert ws.cli("submit", *BASE, "--set", "training.train_iters=2", "--follow").returncode == 0
    run_dir = only_run(ws)
    bystander = ws.cluster.run("sbatch", "--parsable", "-J", "bystander", "-N1", "-n1", "-o",
                               f"{ws.cwd}/bystander-%j.out", "--wrap", "sleep 300").stdout.strip()
    try:
        path = run_dir / "record.json"
        data = json.loads(path.read_text())
        data["jobs"][0]["job_id"] = bystander
        path.chmod(0o644)
        path.write_text(json.dumps(data))
        wait_until(lambda: ws.cluster.run("squeue", "-h", "-j", bystander, "-o", "%T").stdout.strip() == "RUNNING",
                   60, "the bystander to run")
        proc = ws.cli("cancel", str(run_dir))
        assert proc.returncode == 1, proc.stdout + proc.stderr
        assert f"{bystander} is not a job of run {run_dir.name}: its output goes to {ws.cwd}/bystander-" \
               in proc.stderr and "left alone" in proc.stderr
        assert ws.cluster.run("squeue", "-h", "-j", bystander, "-o", "%T").stdout.strip() == "RUNNING"
    finally:
        ws.cluster.run("scancel", bystander, check=False)


def test_a_submit_killed_outright_leaves_a_journal_that_cancel_reads(workspace: Workspace) -> None:
    """SIGKILL (no handler can run): the jobs sbatch had accepted are in the run's journal, written as each was
    accepted, and `cancel RUN_DIR` cancels them although no record.json was written."""
    import signal
    import subprocess
    import sys

    ws = workspace
    before = _jobs_submitted(ws.cluster)
    proc = subprocess.Popen([sys.executable, "-m", "orchestrator", "submit", *BASE, "--no-megatron",
                             "--segments", "300"], cwd=ws.cwd, env=ws.cluster.env(), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        wait_until(lambda: _jobs_submitted(ws.cluster) >= before + 3, 120, "the first segments to be submitted")
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=60)
        [run_dir] = [d for d in ws.runs.iterdir() if d.is_dir()]
        assert not (run_dir / "record.json").exists()
        journaled = [line.split()[1] for line in (run_dir / "submitted.txt").read_text().splitlines()]
        submitted = _jobs_submitted(ws.cluster) - before
        assert len(journaled) >= 3 and submitted - len(journaled) in (0, 1)   # the sbatch in flight as it died
        out = ws.cli("cancel", str(run_dir))
        assert out.returncode == 0, out.stdout + out.stderr
        assert out.stdout.count("cancelled ") == len(journaled)
        wait_until(lambda: not ws.cluster.run("squeue", "-h", "-o", "%i", "-t", "PD,R", "-j", ",".join(journaled),
                                              check=False).stdout.split(), 60, "the journaled jobs to leave the queue")
    finally:
        ws.cluster.run("scancel", "-n", "dsv3-proxy-3l", check=False)   # a job sbatch took as the process died
