"""``DRY_RUN=1 bash run.sh`` end to end: filled variables reach the rendered files, empty required ones stop it."""

from __future__ import annotations

import json
import re
import os
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]


def run_sh(tmp_path: Path, **variables: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PROFILE", "RECIPE", "ACCOUNT", "DRY_RUN")}
    env.update(variables)
    return subprocess.run(["bash", str(ROOT / "run.sh")], capture_output=True, text=True, env=env, cwd=tmp_path)


def test_dry_run_with_defaults_renders_the_local_proxy(tmp_path: Path) -> None:
    out = run_sh(tmp_path, DRY_RUN="1")
    assert out.returncode == 0, out.stderr
    assert "===== launch_local.sh =====" in out.stdout and "recipe dsv3-proxy-3l" in out.stdout
    assert "DRY_RUN=1: nothing was submitted" in out.stdout


def test_dry_run_with_filled_variables(tmp_path: Path) -> None:
    from test_data_check import dataset    # the data is checked where the job reads it: it must exist

    lustre = tmp_path / "lustre"
    for name in ("a_text", "b_text"):
        dataset(lustre / "data" / name, documents=4, length=64)
    out = run_sh(tmp_path, DRY_RUN="1", PROFILE="h100-eos", ACCOUNT="llm-pretrain", NNODES="64",
                 CONTAINER_MOUNTS=f"{lustre}/data:/data,{lustre}/ckpt:/ckpt", DATA_PATH="1.0 /data/a_text 1.0 /data/b_text",
                 WANDB_PROJECT="dsv3", WANDB_API_KEY="sekrit-77",
                 EXTRA_SET="nodes=64 parallel.ep=32 training.train_iters=10")
    assert out.returncode == 0, out.stderr
    script = out.stdout.split("===== sbatch.sh =====")[1]
    assert "#SBATCH --account=llm-pretrain" in script and "#SBATCH --nodes=64" in script
    assert f"--container-mounts={lustre}/data:/data,{lustre}/ckpt:/ckpt" in script
    spec = json.loads(out.stdout.split("===== job.json =====")[1].split("=====")[0])
    cmd = spec["command"]
    assert cmd[cmd.index("--data-path") + 1: cmd.index("--data-path") + 5] == ["1.0", "/data/a_text", "1.0", "/data/b_text"]
    assert cmd[cmd.index("--expert-model-parallel-size") + 1] == "32"
    assert cmd[cmd.index("--wandb-project") + 1] == "dsv3"
    assert "sekrit" not in out.stdout + out.stderr


def test_missing_required_variable_names_it(tmp_path: Path) -> None:
    out = run_sh(tmp_path, DRY_RUN="1", PROFILE="h100-eos")
    assert out.returncode == 2
    assert out.stderr.strip() == ("error: ACCOUNT: is empty but profile h100-eos needs profile.account "
                                  "(fix: set ACCOUNT=... in run.sh's environment block or export it)")
    assert out.stdout == ""


def test_bad_variable_is_refused_before_anything_runs(tmp_path: Path) -> None:
    out = run_sh(tmp_path, DRY_RUN="1", NNODES="two")
    assert out.returncode == 2 and "profile.nodes: expected an integer" in out.stderr


def test_first_readme_command_runs_the_local_preflight(tmp_path: Path) -> None:
    out = run_sh(tmp_path, OUTPUT_DIR=str(tmp_path / "runs"))
    assert out.returncode == 0, out.stdout + out.stderr
    assert "preflight ok: 2 ranks" in out.stdout
    assert "rank 0/2" in out.stdout and "rank 1/2" in out.stdout and "all-reduce ok (gloo)" in out.stdout
    assert "== Megatron's own argument check: accepted" in out.stdout       # it says what it ran
    if "== training run skipped:" not in out.stdout:  # a machine with GPUs and megatron.training trains the proxy
        assert re.search(r"dsv3-proxy-3l-\S+ +\S+ +run +COMPLETED", out.stdout)
    else:                                             # and what a GPU would add
        assert "(on a machine with GPUs and megatron-core >= 0.17, run.sh picks the configuration" in out.stdout
    assert re.search(r"dsv3-proxy-3l-preflight-\S+ +\S+ +preflight +COMPLETED +0", out.stdout)
    assert "orchestrator render --profile h100-eos --run-sh" in out.stdout
    [run_dir] = [p for p in (tmp_path / "runs").iterdir() if "preflight" in p.name]
    assert (run_dir / "record.json").exists() and (run_dir / "launch_local.sh").exists()
