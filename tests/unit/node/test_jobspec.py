"""job.json: the contract between login side and node side."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from orchestrator.node import jobspec

ARCH_EXAMPLE = {
    "name": "dsv3-proxy-3l",
    "command": ["python3", "-u", "-m", "orchestrator.train", "--num-layers", "3"],
    "env": {"CUDA_DEVICE_MAX_CONNECTIONS": "1", "NVTE_FWD_LAYERNORM_SM_MARGIN": "16"},
    "env_passthrough": ["WANDB_API_KEY", "HF_TOKEN"],
    "bindpcie": None,
    "gpus_per_node": 8,
    "megatron_path": None,
    "dispatcher_fallback": {"from": ["--moe-token-dispatcher-type", "flex"],
                            "to": ["--moe-token-dispatcher-type", "alltoall"]},
}


def test_the_documented_example_loads_and_round_trips(tmp_path: Path) -> None:
    src = tmp_path / "job.json"
    src.write_text(json.dumps(ARCH_EXAMPLE))
    spec = jobspec.load(src)
    assert spec.command[3] == "orchestrator.train" and spec.gpus_per_node == 8
    assert spec.env_passthrough == ("WANDB_API_KEY", "HF_TOKEN")
    assert spec.dispatcher_fallback == jobspec.DispatcherFallback()
    out = tmp_path / "copy.json"
    jobspec.dump(spec, out)
    assert json.loads(out.read_text()) == ARCH_EXAMPLE
    assert not list(tmp_path.glob(".*tmp*"))   # written atomically, no temp file left


def test_unknown_keys_survive_a_round_trip(tmp_path: Path) -> None:
    spec = jobspec.from_json({**ARCH_EXAMPLE, "future_field": {"a": 1}})
    jobspec.dump(spec, tmp_path / "j.json")
    assert json.loads((tmp_path / "j.json").read_text())["future_field"] == {"a": 1}


@pytest.mark.parametrize("patch,message", [
    ({"command": []}, "command must not be empty"),
    ({"command": ["python", 3]}, "command must be a list of strings"),
    ({"env": {"A": 1}}, "env must map names to string values"),
    ({"gpus_per_node": -1}, "gpus_per_node must be a non-negative integer"),
    ({"bindpcie": 5}, "bindpcie must be a string or null"),
    ({"dispatcher_fallback": "alltoall"}, "dispatcher_fallback must be an object"),
])
def test_wrong_types_are_rejected_with_the_field_name(patch: dict[str, object], message: str) -> None:
    with pytest.raises(jobspec.JobSpecError, match=message):
        jobspec.from_json({**ARCH_EXAMPLE, **patch})


def test_missing_or_broken_files(tmp_path: Path) -> None:
    with pytest.raises(jobspec.JobSpecError, match="cannot read job spec"):
        jobspec.load(tmp_path / "absent.json")
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(jobspec.JobSpecError, match="not valid JSON"):
        jobspec.load(tmp_path / "bad.json")


@pytest.mark.parametrize("profile", ["h100-eos", "local"])
def test_the_login_side_writes_job_json_with_the_job_spec_the_node_reads(profile: str) -> None:
    golden = Path(__file__).resolve().parents[2] / "golden" / profile / "job.json"
    spec = jobspec.load(golden)
    assert jobspec.dumps(spec) == golden.read_text()          # the golden file is exactly what dumps writes
    assert jobspec.from_json(json.loads(jobspec.dumps(spec))) == spec
