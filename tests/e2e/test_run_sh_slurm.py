"""``bash run.sh`` against the real local Slurm cluster: it submits, shows the status table, and the job's
ending is explained by `orchestrator status` (here the bundled entry finds no megatron.training on this CPU host)."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

from .conftest import ROOT, Workspace, wait_until


def test_run_sh_submits_to_slurm_and_shows_status(workspace: Workspace) -> None:
    ws = workspace
    env = ws.cluster.env(PROFILE="local-slurm", RECIPE="", OUTPUT_DIR=str(ws.runs), DRY_RUN="")  # profile default
    out = subprocess.run(["bash", str(ROOT / "run.sh")], env=env, capture_output=True, text=True, timeout=240)
    assert out.returncode == 0, out.stdout + out.stderr
    job = re.search(r"^  job (\d+)  run", out.stdout, re.M)
    assert job, out.stdout
    assert re.search(rf"dsv3-proxy-3l-\S+ +{job.group(1)} +run +(PENDING|RUNNING|COMPLETED|FAILED)", out.stdout)
    [run_dir] = ws.run_dirs()

    def ended() -> list[dict[str, object]] | None:
        rows = json.loads(ws.cli("status", str(run_dir), "--json").stdout)
        return rows if rows[0]["state"] not in ("PENDING", "RUNNING", "UNKNOWN") else None

    [row] = wait_until(ended, 120, "the job to end")  # type: ignore[misc]
    assert row["state"] == "FAILED" and row["exit_code"] == 2
    assert "megatron-core >= 0.17 (megatron.training) is not importable" in str(row["error"])
    assert "#SBATCH --nodes=2\n" in (Path(run_dir) / "sbatch.sh").read_text()  # the local-slurm profile's 2 nodes
