"""Node entry: hostlists, Slurm -> torch.distributed variables, ports, environment, DeepEP fallback, run."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

import orchestrator
from orchestrator.node import entry, jobspec

SLURM_TASK = {  # task 3 of `sbatch -N2 --ntasks-per-node=2`, as seen on the test cluster
    "SLURM_PROCID": "3", "SLURM_NTASKS": "4", "SLURM_LOCALID": "1", "SLURM_NODEID": "1",
    "SLURM_NTASKS_PER_NODE": "2", "SLURM_TASKS_PER_NODE": "2(x2)", "SLURM_JOB_NODELIST": "n[1-2]",
    "SLURM_JOB_ID": "123457", "SLURMD_NODENAME": "n2", "MASTER_ADDR": "login-node", "MASTER_PORT": "1",
}


@pytest.mark.parametrize("text,hosts", [
    ("n[1-2]", ["n1", "n2"]),
    ("gpu-[001-004,010]", ["gpu-001", "gpu-002", "gpu-003", "gpu-004", "gpu-010"]),
    ("a1,b[3-4]", ["a1", "b3", "b4"]),
    ("node7", ["node7"]),
    ("r[1-2]n[08-09]", ["r1n08", "r1n09", "r2n08", "r2n09"]),
    ("n[9-10]-ib,x", ["n9-ib", "n10-ib", "x"]),
])
def test_hostlist_expansion(text: str, hosts: list[str]) -> None:
    assert entry.expand_hostlist(text) == hosts


def test_malformed_hostlist_is_an_error() -> None:
    with pytest.raises(ValueError):
        entry.expand_hostlist("n[1-")


@pytest.mark.parametrize("text,counts", [("2(x2)", [2, 2]), ("4,2(x3),1", [4, 2, 2, 2, 1]), ("8", [8])])
def test_tasks_per_node(text: str, counts: list[int]) -> None:
    assert entry.parse_tasks_per_node(text) == counts


def test_slurm_task_variables_map_to_torch_distributed() -> None:
    dist = entry.detect(SLURM_TASK)
    assert dist.variables() == {
        "RANK": "3", "WORLD_SIZE": "4", "LOCAL_RANK": "1", "LOCAL_WORLD_SIZE": "2", "GROUP_RANK": "1",
        "NODE_RANK": "1", "MASTER_ADDR": "n1", "MASTER_PORT": "23457",
    }


def test_every_task_of_a_job_gets_the_same_rendezvous_point() -> None:
    points = set()
    for procid, localid, nodeid in [(0, 0, 0), (1, 1, 0), (2, 0, 1), (3, 1, 1)]:
        env = {**SLURM_TASK, "SLURM_PROCID": str(procid), "SLURM_LOCALID": str(localid), "SLURM_NODEID": str(nodeid)}
        dist = entry.detect(env)
        points.add((dist.master_addr, dist.master_port))
    assert points == {("n1", 23457)}


def test_local_world_size_from_tasks_per_node_when_ntasks_per_node_is_unset() -> None:
    env = {k: v for k, v in SLURM_TASK.items() if k != "SLURM_NTASKS_PER_NODE"}
    env.update(SLURM_TASKS_PER_NODE="3,1", SLURM_NODEID="1")
    assert entry.detect(env).local_world_size == 1
    assert entry.detect({**env, "SLURM_NODEID": "0"}).local_world_size == 3


def test_master_port_is_derived_from_the_job_id_outside_the_ephemeral_range() -> None:
    assert entry.master_port(12) == 20012
    assert entry.master_port("123457") == 23457
    assert all(20000 <= entry.master_port(j) < 30000 for j in (0, 9999, 10000, 987654321))
    assert entry.detect({**SLURM_TASK, "ORCH_MASTER_PORT": "31000"}).master_port == 31000


def test_local_launcher_reads_torchrun_style_variables() -> None:
    env = {"RANK": "1", "WORLD_SIZE": "2", "LOCAL_RANK": "1", "LOCAL_WORLD_SIZE": "2", "MASTER_PORT": "29600",
           "SLURM_PROCID": "0", "ORCH_LAUNCHER": "local"}
    dist = entry.detect(env)
    assert (dist.launcher, dist.rank, dist.world_size, dist.local_rank, dist.master_addr, dist.master_port) == \
        ("local", 1, 2, 1, "127.0.0.1", 29600)


def test_local_launcher_falls_back_to_submitit_local_variables_then_single_rank() -> None:
    dist = entry.detect({"SUBMITIT_LOCAL_GLOBALID": "1", "SUBMITIT_LOCAL_LOCALID": "1", "SUBMITIT_LOCAL_NTASKS": "2",
                        "SUBMITIT_LOCAL_JOB_ID": "4242"})
    assert (dist.rank, dist.world_size, dist.local_world_size, dist.master_port) == (1, 2, 2, 24242)
    single = entry.detect({})
    assert (single.rank, single.world_size, single.master_addr, single.master_port) == (0, 1, "127.0.0.1", 29500)


def _spec(command: list[str], **kw: object) -> jobspec.JobSpec:
    return jobspec.JobSpec(name="t", command=tuple(command), **kw)  # type: ignore[arg-type]


def test_child_env_exports_spec_env_passthrough_and_mapping_but_not_inherited_master() -> None:
    spec = _spec(["true"], env={"CUDA_DEVICE_MAX_CONNECTIONS": "1", "HF_TOKEN": "from-spec"},
                 env_passthrough=("HF_TOKEN", "WANDB_API_KEY"), megatron_path="/opt/megatron")
    base = {**SLURM_TASK, "HF_TOKEN": "secret-value", "PYTHONPATH": "/x"}
    env, missing = entry.child_env(base, spec, entry.detect(base))
    assert env["CUDA_DEVICE_MAX_CONNECTIONS"] == "1"
    assert env["HF_TOKEN"] == "secret-value"          # a passthrough name is never taken from the spec
    assert missing == ["WANDB_API_KEY"]
    assert (env["MASTER_ADDR"], env["MASTER_PORT"], env["RANK"]) == ("n1", "23457", "3")
    assert env["PYTHONPATH"].split(":")[0] == "/opt/megatron" and env["PYTHONPATH"].endswith(":/x")
    toolkit = Path(env["PYTHONPATH"].split(":")[1])        # where the children import this very toolkit from
    assert (toolkit / "orchestrator" / "__init__.py").resolve() == Path(orchestrator.__file__).resolve()
    assert env["OMP_NUM_THREADS"] == "1"


FLEX_DEEPEP = ["python3", "-m", "orchestrator.train", "--num-layers", "3", "--moe-token-dispatcher-type", "flex",
               "--moe-enable-deepep", "--moe-router-padding-for-fp8", "--seq-length", "4096"]
FLEX_BACKEND = ["python3", "-m", "orchestrator.train", "--moe-token-dispatcher-type=flex",
                "--moe-flex-dispatcher-backend", "deepep", "--moe-router-padding-for-quantization"]


def test_deepep_fallback_rewrites_to_alltoall_and_keeps_padding() -> None:
    argv, warning = entry.effective_command(_spec(FLEX_DEEPEP), deepep_usable=False, reason="deep_ep not installed")
    assert argv == ["python3", "-m", "orchestrator.train", "--num-layers", "3", "--moe-router-padding-for-fp8",
                    "--seq-length", "4096", "--moe-token-dispatcher-type", "alltoall"]
    assert warning is not None and warning.count("\n") >= 4
    assert "--moe-token-dispatcher-type flex --moe-enable-deepep" in warning
    assert "deep_ep not installed" in warning and "--moe-token-dispatcher-type alltoall" in warning


def test_deepep_fallback_for_the_flex_backend_form() -> None:
    argv, warning = entry.effective_command(_spec(FLEX_BACKEND), deepep_usable=False, reason="no Buffer")
    assert argv == ["python3", "-m", "orchestrator.train", "--moe-router-padding-for-quantization",
                    "--moe-token-dispatcher-type", "alltoall"]
    assert warning and "--moe-flex-dispatcher-backend deepep" in warning


def test_deepep_fallback_uses_the_specs_replacement() -> None:
    spec = _spec(FLEX_DEEPEP, dispatcher_fallback=jobspec.DispatcherFallback(
        from_=("--moe-token-dispatcher-type", "flex"), to=("--moe-token-dispatcher-type", "allgather")))
    argv, _ = entry.effective_command(spec, deepep_usable=False, reason="x")
    assert argv[-2:] == ["--moe-token-dispatcher-type", "allgather"]


def test_no_rewrite_when_deepep_is_usable_or_not_requested() -> None:
    assert entry.effective_command(_spec(FLEX_DEEPEP), True, "") == (FLEX_DEEPEP, None)
    hybrid = ["x", "--moe-token-dispatcher-type", "flex", "--moe-flex-dispatcher-backend", "hybridep"]
    assert entry.effective_command(_spec(hybrid), False, "not installed") == (hybrid, None)


def _write_spec(tmp_path: Path, command: list[str], **extra: object) -> Path:
    path = tmp_path / "job.json"
    path.write_text(json.dumps({"name": "t", "command": command, **extra}))
    return path


def test_node_runs_the_command_and_returns_its_exit_status(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                           capfd: pytest.CaptureFixture[str]) -> None:
    for k in list(SLURM_TASK) + ["RANK", "WORLD_SIZE", "LOCAL_RANK", "ORCH_LAUNCHER"]:
        monkeypatch.delenv(k, raising=False)
    monkeypatch.setenv("MY_SECRET", "hunter2")
    script = "import os,sys; print('RANK', os.environ['RANK'], os.environ['GREETING']); sys.exit(5)"
    spec = _write_spec(tmp_path, [sys.executable, "-c", script], env={"GREETING": "hi"},
                       env_passthrough=["MY_SECRET"])
    assert entry.main([str(spec)]) == 5
    out, err = capfd.readouterr()
    assert "RANK 0 hi" in out
    bind_lines = [ln for ln in err.splitlines() if ln.startswith("[orchestrator.bind]")]
    assert len(bind_lines) == 1 and "rank 0" in bind_lines[0]
    assert "hunter2" not in out + err


def test_node_reports_a_bad_spec_in_one_line(tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "job.json"
    bad.write_text('{"name": "t", "command": "not a list"}')
    assert entry.main([str(bad)]) == 2
    assert capfd.readouterr().err.strip() == "error: job.json: command must be a list of strings"


def test_node_binding_line_on_a_machine_without_gpus(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                     capfd: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(entry.binding_mod, "gpu_bus_ids", lambda *a, **k: ([], "no GPUs on this node (test)"))
    spec = _write_spec(tmp_path, [sys.executable, "-c", "pass"])
    assert entry.main([str(spec)]) == 0
    line = [ln for ln in capfd.readouterr().err.splitlines() if ln.startswith("[orchestrator.bind]")]
    assert line == ["[orchestrator.bind] rank 0 host " + entry.host_name(dict(__import__("os").environ)) +
                    " local_rank 0: no GPUs on this node (test); running unbound"]


def test_array_tasks_read_their_own_spec() -> None:
    assert entry.spec_path("/r/tasks/0_%a/job.json", {"SLURM_ARRAY_TASK_ID": "2"}) == "/r/tasks/0_2/job.json"
    assert entry.spec_path("/r/job.json", {}) == "/r/job.json"
    with pytest.raises(jobspec.JobSpecError, match="SLURM_ARRAY_TASK_ID is not set"):
        entry.spec_path("/r/tasks/0_%a/job.json", {})
