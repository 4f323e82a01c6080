"""`orchestrator estimate` and `plan` as a user drives them, the profile `gpu` setting, and the memory guard rail
of `validate` / `submit` (warning; `--strict-memory` error)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from orchestrator.cli import main
from orchestrator.spec.config import list_names, load_experiment

ONE_GPU_ON_H100 = ["--profile", "local", "--set", "profile.gpu=h100", "--set", "profile.gpus_per_node=1",
                   "--set", "parallel.ep=1", "--set", "switches.ep_a2a_overlap=false",
                   "--set", "switches.delay_wgrad_compute=false", "--set", "switches.token_dispatcher=alltoall",
                   "--set", "switches.deepep=false"]
"""The 1-GPU smoke run measured at 82.3 GB (Megatron MB) on an H200: too big for an 80 GB H100 (alltoall: with
TP x EP = 1 Megatron refuses the flex dispatcher, and that run had fallen back to alltoall)."""
GUIDE_PP4_NO_RECOMPUTE = ["--profile", "h100-eos", "--set", "profile.account=a", "--set", "parallel.pp=4",
                          "--set", "parallel.pipeline_layout=Ettt|(tttt|)*14ttmL",
                          "--set", "switches.fine_grained_recompute=false"]


def test_every_shipped_profile_names_its_gpu_and_accepts_an_override() -> None:
    expected = {"h100": "h100", "h100-eos": "h100", "h200": "h200", "gb200-nvl72": "gb200", "local": None,
                "local-slurm": None, "gpu-slurm": "h200"}
    for name in list_names("profiles"):
        assert load_experiment(name, None).profile.gpu == expected[name]
        assert load_experiment(name, None, ["profile.gpu=h200"]).profile.gpu == "h200"


def test_estimate_json_fields(cli: CliRunner) -> None:
    out = cli.invoke(main, ["estimate", "--profile", "h100-eos", "--json"])
    assert out.exit_code == 0, out.output
    data = json.loads(out.stdout)
    for key in ("peak_memory_gb", "tflops_per_gpu", "step_time_s", "tokens_per_s_per_gpu", "breakdown", "assumptions"):
        assert key in data
    assert 0 < data["peak_memory_gb"] < 80 and data["fits"] is True
    inside = sum(v for k, v in data["breakdown"].items() if not k.startswith("outside_allocator"))
    assert inside == pytest.approx(data["peak_memory_gb"], abs=0.01)
    assert data["tokens_per_s_per_gpu"] == pytest.approx(8192 * 4096 / data["step_time_s"] / 1024, rel=1e-3)
    assert data["parallel"] == {"tp": 2, "pp": 8, "vpp": 4, "cp": 1, "ep": 64, "etp": 1, "dp": 64, "mbs": 1,
                                "gbs": 8192, "microbatches": 128, "world": 1024}


def test_estimate_on_local_needs_a_gpu_type(cli: CliRunner) -> None:
    out = cli.invoke(main, ["estimate", "--profile", "local"])
    assert out.exit_code == 2
    assert out.stderr.strip().startswith("error: profile.gpu:") and "--set profile.gpu=h200" in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1
    ok = cli.invoke(main, ["estimate", "--profile", "local", "--set", "profile.gpu=h200", "--json"])
    assert ok.exit_code == 0 and json.loads(ok.stdout)["gpu"] == "h200"


def test_plan_top_ranks_fitting_configurations_and_they_reproduce(cli: CliRunner, tmp_path: Path) -> None:
    png = tmp_path / "plan.png"
    out = cli.invoke(main, ["plan", "--profile", "h200", "--recipe", "dsv3-proxy-14l", "--top", "3", "--json",
                            "--plot", str(png)])
    assert out.exit_code == 0, out.output
    data = json.loads(out.stdout)
    top = data["top"]
    assert len(top) == 3 and data["evaluated"] > data["fitting"] >= 3
    assert [r["tflops_per_gpu"] for r in top] == sorted((r["tflops_per_gpu"] for r in top), reverse=True)
    assert all(r["device_memory_gb"] <= 0.95 * 150.8 for r in top)
    assert png.stat().st_size > 0
    best = top[0]
    args = ["estimate", "--profile", "h200", "--recipe", "dsv3-proxy-14l", "--json"]
    again = cli.invoke(main, args + [a for o in best["overrides"] for a in ("--set", o)])
    assert again.exit_code == 0, again.output
    assert json.loads(again.stdout)["tflops_per_gpu"] == pytest.approx(best["tflops_per_gpu"], abs=0.1)


def test_validate_warns_when_over_memory_and_strict_memory_refuses(cli: CliRunner) -> None:
    warn = cli.invoke(main, ["validate", "--no-megatron", *ONE_GPU_ON_H100])
    assert warn.exit_code == 0, warn.output
    line = next(x for x in warn.stderr.splitlines() if x.startswith("warning: memory:"))
    assert "exceeds the h100's 85.0 GB" in line and "largest component optimizer_state" in line
    assert "(fix: more GPUs per model copy" in line  # no recompute frees the optimizer state of one GPU
    strict = cli.invoke(main, ["validate", "--no-megatron", "--strict-memory", *GUIDE_PP4_NO_RECOMPUTE])
    assert strict.exit_code == 2
    errors = [x for x in strict.stderr.splitlines() if x.startswith("error: ")]
    assert len(errors) == 1 and errors[0].startswith("error: memory: predicted peak")
    assert "largest component" in errors[0] and "(fix: recompute" in errors[0]
    fine = cli.invoke(main, ["validate", "--no-megatron", "--strict-memory", *GUIDE_PP4_NO_RECOMPUTE[:-2]])
    assert fine.exit_code == 0 and "memory" not in fine.stderr


def test_submit_strict_memory_refuses_before_anything_is_written(cli: CliRunner, tmp_path: Path) -> None:
    out = cli.invoke(main, ["submit", "--dry-run", "--strict-memory", *ONE_GPU_ON_H100,
                            "--set", f"profile.output_root={tmp_path}"])
    assert out.exit_code == 2
    assert "error: memory: predicted peak" in out.stderr and "===== " not in out.stdout
    assert not any(tmp_path.iterdir())
