"""shellcheck (the Debian package scripts/install-deps.sh installs) over every script the toolkit renders: each
shipped profile's job script (single run, a chain of segments, a sweep's array scripts) and its run.sh. Any finding
fails the test with shellcheck's own lines."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from orchestrator.spec.config import load_experiment
from orchestrator.spec.sweep import load_sweep
from orchestrator.submit import plan_records
from orchestrator.submit.plan import Request
from orchestrator.submit.run_script import render_run_sh

ROOT = Path(__file__).parents[3]
PROFILES = sorted(p.stem for p in (ROOT / "cluster_profiles").glob("*.yaml"))
FILLS = ["profile.account=acct", "profile.container.image=/images/megatron.sqsh"]
"""What a user fills in on a Slurm cluster (the local back-end runs no container: it refuses an image)."""


def fills(profile: str) -> list[str]:
    from orchestrator.spec.config import load_profile

    return FILLS if load_profile(profile).scheduler == "slurm" else []


def scripts(profile: str) -> dict[str, str]:
    exp = load_experiment(profile, None, fills(profile))
    requests = [Request(exp, megatron_check=False)]
    if exp.profile.scheduler == "slurm":
        requests.append(Request(exp, segments=2, megatron_check=False))
    one_gpu = ["parallel.ep=1", "switches.ep_a2a_overlap=false", "switches.delay_wgrad_compute=false",
               "switches.token_dispatcher=alltoall", "switches.deepep=false"] if exp.profile.gpus_per_node < 2 else []
    proxy = load_experiment(profile, "dsv3-proxy-3l", [*fills(profile), "profile.nodes=1", *one_gpu])  # the sweep's EP 2 fits
    requests.append(Request(proxy, sweep=load_sweep(ROOT / "sweeps" / "proxy-repeat.yaml"), megatron_check=False))
    found = {f"{r.kind}/{f.path}": f.text for r in requests for f in plan_records.dry_run(r).files
             if f.path.endswith(".sh")}
    found["run.sh"] = render_run_sh(exp.profile)
    return found


@pytest.mark.usefixtures("slurm_with_segment")
@pytest.mark.parametrize("profile", PROFILES)
def test_every_rendered_script_passes_shellcheck(profile: str, tmp_path: Path) -> None:
    shellcheck = shutil.which("shellcheck")
    if shellcheck is None:
        pytest.fail("shellcheck is not installed (fix: bash scripts/install-deps.sh, or apt-get install shellcheck)")
    rendered = scripts(profile)
    assert any(name.endswith(("sbatch.sh", "launch_local.sh")) for name in rendered), sorted(rendered)
    paths = []
    for name, text in rendered.items():
        path = tmp_path / name.replace("/", "__")
        path.write_text(text)
        paths.append(str(path))
    out = subprocess.run([shellcheck, "--shell=bash", "--format=gcc", *paths], capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr
