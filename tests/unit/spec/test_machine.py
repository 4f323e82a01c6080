"""GPUs counted, not assumed: ``gpus_per_node: auto`` / ``gpu: auto`` of the local profile, the refusal of more
ranks than GPUs, and the configuration picked for the GPUs found (``submit/fit.py``)."""

from __future__ import annotations

from collections.abc import Sequence

import pytest
from click.testing import CliRunner

from orchestrator.cli import main
from orchestrator.spec import machine
from orchestrator.spec.config import load_experiment
from orchestrator.spec.schema import ConfigError
from orchestrator.submit import fit
from orchestrator.submit.rules import blocking, validate

SMI_H200 = "NVIDIA H200, 143771\n"


def smi(out: str | None):  # type: ignore[no-untyped-def]
    return lambda argv: out if argv[0] == "nvidia-smi" else None


@pytest.mark.parametrize("env,out,count,source", [
    ({}, SMI_H200, 1, "nvidia-smi"),
    ({}, SMI_H200 * 8, 8, "nvidia-smi"),
    ({"CUDA_VISIBLE_DEVICES": "0,1"}, SMI_H200 * 8, 2, "CUDA_VISIBLE_DEVICES=0,1"),
    ({"CUDA_VISIBLE_DEVICES": ""}, SMI_H200 * 8, 0, "CUDA_VISIBLE_DEVICES="),
    ({"CUDA_VISIBLE_DEVICES": "-1"}, SMI_H200, 0, "CUDA_VISIBLE_DEVICES=-1"),
    ({}, None, 0, "nvidia-smi did not answer"),
])
def test_gpus_are_counted(env: dict[str, str], out: str | None, count: int, source: str) -> None:
    found = machine.count(env, smi(out))
    assert (found.count, found.source) == (count, source)
    if out and count:
        assert found.gpu_type == "h200" and found.memory_gb == pytest.approx(150.76, abs=0.01)
        assert found.describe() == f"{count} x NVIDIA H200 151 GB"


@pytest.mark.parametrize("name,key", [("NVIDIA H100 80GB HBM3", "h100"), ("NVIDIA GB200", "gb200"),
                                      ("NVIDIA B200", "b200"), ("NVIDIA A100-SXM4-80GB", "a100"),
                                      ("NVIDIA L40S", None), (None, None)])
def test_gpu_names_map_to_the_table(name: str | None, key: str | None) -> None:
    assert machine.gpu_type(name) == key


def on(monkeypatch: pytest.MonkeyPatch, found: machine.LocalGpus) -> None:
    monkeypatch.setattr(machine, "here", lambda: found)


ONE_H200 = machine.LocalGpus(1, "NVIDIA H200", 150.8, "nvidia-smi")
NO_GPU = machine.LocalGpus(0, None, None, "nvidia-smi did not answer")


def test_auto_is_the_machines_gpus_or_two_cpu_ranks(monkeypatch: pytest.MonkeyPatch) -> None:
    on(monkeypatch, ONE_H200)
    exp = load_experiment("local", None)
    assert (exp.profile.gpus_per_node, exp.profile.gpu) == (1, "h200")
    on(monkeypatch, NO_GPU)
    exp = load_experiment("local", None)
    assert (exp.profile.gpus_per_node, exp.profile.gpu) == (machine.CPU_RANKS, None)


def test_auto_is_refused_for_a_slurm_profile() -> None:
    with pytest.raises(ConfigError) as err:
        load_experiment("h100", None, ["profile.gpus_per_node=auto"])
    assert err.value.setting == "profile.gpus_per_node" and "a Slurm job's nodes are not this machine" in str(err.value)


def test_more_ranks_than_gpus_is_refused_in_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    on(monkeypatch, ONE_H200)
    exp = load_experiment("local", None, ["profile.gpus_per_node=2"])
    stops = blocking(validate(exp))
    assert [p.setting for p in stops] == ["profile.gpus_per_node"]
    assert "2 ranks want a GPU each, this machine has 1 x NVIDIA H200 151 GB" in stops[0].message
    assert stops[0].fix == "set profile.gpus_per_node=auto (or 1)"
    on(monkeypatch, NO_GPU)   # no GPU: CPU ranks, any count
    assert not blocking(validate(load_experiment("local", None, ["profile.gpus_per_node=2"])))


def test_one_gpu_gets_a_configuration_that_trains_on_it(monkeypatch: pytest.MonkeyPatch) -> None:
    """The newcomer's case: as shipped (EP 2, A2A overlap) the proxy cannot run on one GPU; the pick can."""
    on(monkeypatch, ONE_H200)
    exp = load_experiment("local", None)
    assert blocking(validate(exp))                      # the recipe as shipped does not fit one GPU
    pick = fit.for_machine(exp, recipe_named=False, user=[])
    assert pick is not None and "parallel.ep=1" in pick.overrides
    assert "switches.ep_a2a_overlap=false" in pick.overrides
    picked = load_experiment("local", None, list(pick.overrides))
    assert not blocking(validate(picked))
    assert pick.line.startswith("1 x NVIDIA H200 151 GB: TP1 PP1 EP1 MBS ")
    assert "predicted" in pick.line and "TFLOP/s/GPU" in pick.line


def test_the_users_settings_are_never_overridden(monkeypatch: pytest.MonkeyPatch) -> None:
    on(monkeypatch, ONE_H200)
    exp = load_experiment("local", None, ["training.micro_batch_size=1"])
    pick = fit.for_machine(exp, recipe_named=False, user=["training.micro_batch_size=1"])
    assert pick is not None and pick.overrides == ()
    assert "your training.micro_batch_size kept" in pick.line
    named = fit.for_machine(exp, recipe_named=True, user=[])
    assert named is not None and named.overrides == () and "as named" in named.line
    on(monkeypatch, NO_GPU)
    assert fit.for_machine(exp, recipe_named=False, user=[]) is None


def test_submit_says_what_it_picked_before_anything_runs(monkeypatch: pytest.MonkeyPatch, tmp_path: object,
                                                         forbid_submission: object) -> None:
    on(monkeypatch, ONE_H200)
    out = CliRunner().invoke(main, ["submit", "--profile", "local", "--no-megatron", "--dry-run",
                                    "--set", f"profile.output_root={tmp_path}/runs"])
    assert out.exit_code == 0, out.output
    first = out.stdout.splitlines()[0]
    assert first.startswith("this machine: 1 x NVIDIA H200 151 GB: TP1 PP1 EP1 MBS "), first
    assert '"--expert-model-parallel-size", "1"' in out.stdout


def test_flex_dispatcher_without_peers_is_refused_before_the_job_starts() -> None:
    """Megatron asserts 'DeepEP dispatcher requires TPxEP > 1' when it builds the model (seen on 1 x H200, after
    its own argument check accepted the launch): the rules refuse it, and the planner's one-GPU pick uses alltoall."""
    exp = load_experiment("local", None, ["profile.gpus_per_node=1", "parallel.ep=1", "switches.ep_a2a_overlap=false",
                                          "switches.delay_wgrad_compute=false"])
    stops = blocking(validate(exp))
    assert [p.setting for p in stops] == ["switches.token_dispatcher"]
    assert "TP x EP > 1" in stops[0].message and "switches.token_dispatcher=alltoall" in stops[0].fix
