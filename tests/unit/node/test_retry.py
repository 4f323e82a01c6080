"""The retry step's decision (node/retry.py) and the watchdog's reading of a log (node/watchdog.py)."""

from __future__ import annotations

from pathlib import Path

from orchestrator.node import diagnose, retry, watchdog

TIMEOUT = diagnose.diagnose_lines(["[rank1]:[E1202 ProcessGroupNCCL.cpp:632] [Rank 1] Watchdog caught collective "
                                   "operation timeout: WorkNCCL(SeqNum=9, OpType=ALLREDUCE, NumelIn=1, NumelOut=1, "
                                   "Timeout(ms)=600000) ran for 600042 milliseconds before timing out."])
OOM = diagnose.diagnose_lines(["torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB"])
XID = diagnose.diagnose_lines(["3: [  123.4] NVRM: Xid (PCI:0000:1b:00): 79, pid=1, GPU has fallen off the bus."])


def attempt(status: int, before: int | None, after: int | None) -> retry.Attempt:
    return retry.Attempt("7", 0, ["n1"], 2, 0.0, 1.0, status, "x", "transient", before, after, "requeued", "", [])


def test_every_signature_is_classed_and_the_classes_are_what_a_retry_needs() -> None:
    assert TIMEOUT and TIMEOUT.retry == "transient" and OOM and OOM.retry == "deterministic"
    assert XID and XID.retry == "transient" and XID.hardware and XID.rank == 3
    assert all(s.retry in ("transient", "deterministic") for s in diagnose.SIGNATURES)
    node_fail = diagnose.diagnose_slurm_state("NODE_FAIL")
    assert node_fail and (node_fail.retry, node_fail.hardware) == ("transient", True)
    timeout = diagnose.diagnose_slurm_state("TIMEOUT")
    assert timeout and timeout.retry == "deterministic"


def test_only_attempts_without_a_new_checkpoint_spend_the_budget() -> None:
    progressing = [attempt(134, i * 10, i * 10 + 10) for i in range(20)]   # a failure a day, each after a save
    assert retry.decide(134, TIMEOUT, progressing, advanced=True, retries=2)[0] == "requeued"
    stuck = [attempt(134, 10, 10), attempt(134, 10, 10)]
    action, why = retry.decide(134, TIMEOUT, stuck, advanced=False, retries=2)
    assert action == "stopped" and "3 attempts in a row saved no new checkpoint" in why
    assert retry.decide(134, TIMEOUT, stuck[:1], advanced=False, retries=2)[0] == "requeued"


def test_deterministic_unknown_and_retries_off_are_never_requeued() -> None:
    assert retry.decide(1, OOM, [], advanced=False, retries=5)[0] == "stopped"
    action, why = retry.decide(3, None, [], advanced=False, retries=5)
    assert action == "stopped" and "no known failure signature" in why
    assert retry.decide(134, TIMEOUT, [], advanced=False, retries=0)[0] == "stopped"
    assert retry.decide(0, None, [], advanced=True, retries=0)[0] == "done"


def test_a_hardware_fault_excludes_the_node_of_its_rank() -> None:
    assert retry.failed_node(XID, ["n1", "n2", "n3"], [2, 2, 2]) == ["n2"]   # rank 3 of 2 per node
    assert retry.failed_node(XID, ["n1", "n2", "n3"], [4, 2, 2]) == ["n1"]   # SLURM_TASKS_PER_NODE 4,2(x2)
    assert retry.failed_node(TIMEOUT, ["n1", "n2"], [2, 2]) == []


def test_the_log_pattern_is_expanded_as_slurm_expands_it() -> None:
    env = {"SLURM_JOB_NAME": "run", "SLURM_JOB_ID": "12", "SLURM_ARRAY_JOB_ID": "10", "SLURM_ARRAY_TASK_ID": "2"}
    assert retry.expand_log("/r/logs/%x_%j.log", env) == "/r/logs/run_12.log"
    assert retry.expand_log("/r/tasks/0_%a/logs/%x_%A_%a.log", env) == "/r/tasks/0_2/logs/run_10_2.log"


def test_the_watchdog_allows_k_medians_of_this_attempt_only(tmp_path: Path) -> None:
    log = tmp_path / "job.log"
    log.write_text(" iteration        5/     100 | elapsed time per iteration (ms): 9000.0 |\n")   # an earlier attempt
    progress = watchdog.Progress(str(log))
    assert progress.allowed(factor=10, floor=1, startup=600) == (600, None)          # this attempt: start-up
    with open(log, "a") as fh:
        for i, ms in ((1, 200.0), (2, 100.0), (3, 100.0)):
            fh.write(f" iteration {i:8d}/     100 | elapsed time per iteration (ms): {ms} |\n")
    assert progress.poll() and progress.last == 3
    assert progress.allowed(factor=10, floor=0.5, startup=600) == (1.0, 0.1)         # 10 x the median 0.1 s
    assert progress.allowed(factor=10, floor=5, startup=600) == (5, 0.1)             # never below the floor


def test_the_signal_margin_is_the_exit_margin_and_validate_warns_when_a_save_does_not_fit() -> None:
    from orchestrator.spec.config import load_experiment
    from orchestrator.submit import render, resilience, rules

    exp = load_experiment("h100-eos", "deepseek-v3", ["profile.account=a", "training.exit_margin_minutes=30"])
    assert resilience.signal_margin_s(exp) == 30 * 60
    assert "#SBATCH --signal=B:USR1@1800\n" in render.render(exp, "/runs/x").files["sbatch.sh"]
    assert not [p for p in rules.validate(exp) if p.setting == "training.exit_margin_minutes"]
    slow = load_experiment("h100-eos", "deepseek-v3", ["profile.account=a", "training.exit_margin_minutes=30",
                                                       "profile.checkpoint_write_gb_s=2"])
    [warned] = [p for p in rules.validate(slow) if p.setting == "training.exit_margin_minutes"]
    minutes = -(-(resilience.checkpoint_bytes(slow) / 2e9 + resilience.SIGNAL_SLACK_S) // 60)
    assert warned.severity == "warning" and warned.fix.startswith(f"set training.exit_margin_minutes={minutes:.0f},")
