"""First end-to-end check: the preflight payload under a hand-written ``sbatch -N2 --ntasks-per-node=2``.

(Only this test writes its own sbatch script; every later e2e test goes through the toolkit.)
"""

from __future__ import annotations

import json
from pathlib import Path

from orchestrator.node import entry
from orchestrator.submit.backends import slurm

from .conftest import Cluster, wait_until


def test_preflight_rendezvous_on_two_nodes(slurm_cluster: Cluster, tmp_path: Path) -> None:
    spec = tmp_path / "job.json"
    spec.write_text(json.dumps({
        "name": "e2e-preflight", "gpus_per_node": 2,
        "command": ["python3", "-u", "-m", "orchestrator.train", "--num-layers", "3",
                    "--moe-token-dispatcher-type", "flex", "--moe-enable-deepep"],
    }))
    script = tmp_path / "preflight.sbatch"
    script.write_text(
        "#!/bin/bash\n"
        f"#SBATCH -N2 --ntasks-per-node=2 --gpus-per-node=2 -t 5 -o {tmp_path}/preflight-%j.out\n"
        f"srun python3 -m orchestrator.node --preflight {spec}\n")
    job_id = slurm_cluster.run("sbatch", "--parsable", str(script)).stdout.strip()

    state = wait_until(lambda: (s := slurm.job_states([job_id]).get(job_id)) and s.terminal and s, 120,
                       f"job {job_id} to finish")
    log = (tmp_path / f"preflight-{job_id}.out").read_text()
    assert (state.state, state.exit_code) == ("COMPLETED", 0), log

    # each rank's report, from the file it wrote next to job.json (lines of 4 ranks sharing one log can be cut)
    reports = sorted((json.loads(p.read_text()) for p in (tmp_path / "preflight").glob("rank-*.json")),
                     key=lambda r: r["rank"])
    assert any(ln.startswith('{"preflight"') for ln in log.splitlines()), log   # and the log shows them too
    assert [(r["rank"], r["host"], r["local_rank"]) for r in reports] == \
        [(0, "n1", 0), (1, "n1", 1), (2, "n2", 0), (3, "n2", 1)], log
    master = f"n1:{entry.master_port(job_id)}"
    for r in reports:
        assert r["ok"] and r["world_size"] == 4 and r["launcher"] == "slurm"
        assert r["allreduce"]["ok"] and r["allreduce"]["sum"] == r["allreduce"]["expected"] == 10
        assert r["allreduce"]["master"] == master and r["allreduce"]["hosts"] == ["n1", "n1", "n2", "n2"]
        assert r["gpus"]["visible"] == "0,1"
        assert r["versions"]["torch"] and r["versions"]["megatron-core"]
    assert reports[0]["megatron_args"]["checked"] or \
        reports[0]["megatron_args"]["message"].startswith("megatron.training not importable here")
    bind_lines = [ln for ln in log.splitlines() if ln.startswith("[orchestrator.bind]")]
    assert len(bind_lines) == 4
