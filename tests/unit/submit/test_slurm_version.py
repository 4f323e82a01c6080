"""The Slurm version gate: an ``#SBATCH`` option the submitting cluster's Slurm does not know is refused before
anything is written (the real 22.05 refusal is checked in ``tests/e2e/test_launch.py``)."""

from __future__ import annotations

import pytest

from orchestrator.spec.config import load_experiment
from orchestrator.spec.schema import ConfigError
from orchestrator.submit import plan_records
from orchestrator.submit.backends import slurm
from orchestrator.submit.plan import Request

FILLS = ["profile.account=acct", "profile.container.image=/images/megatron.sqsh"]


def test_segment_needs_slurm_23_11() -> None:
    assert slurm.missing_options(["segment"], (22, 5, 8)) == {"segment": (23, 11)}
    assert slurm.missing_options(["segment"], (23, 11, 0)) == {}
    assert slurm.missing_options(["segment"], None) == {}     # no sbatch answers: nothing to compare with


@pytest.mark.parametrize("version,refused", [((22, 5, 8), True), ((24, 11, 1), False), (None, False)])
def test_gb200_dry_run_is_refused_only_by_a_slurm_without_segment(
        monkeypatch: pytest.MonkeyPatch, version: tuple[int, int, int] | None, refused: bool) -> None:
    monkeypatch.setattr(slurm, "client_version", lambda: version)
    exp = load_experiment("gb200-nvl72", None, FILLS)
    assert exp.segment == 16
    request = Request(exp, megatron_check=False)
    if not refused:
        dry = plan_records.dry_run(request)
        assert any("#SBATCH --segment=16" in f.text for f in dry.files)
        return
    with pytest.raises(ConfigError) as err:
        plan_records.dry_run(request)
    assert err.value.setting == "profile.segment"
    assert "Slurm 22.5.8 has no #SBATCH --segment (Slurm 23.11 brought it)" in str(err.value)
    assert "set profile.segment=null" in str(err.value)


def test_no_segment_no_question(monkeypatch: pytest.MonkeyPatch) -> None:
    """A profile without --segment never asks sbatch for its version."""
    def asked() -> None:
        raise AssertionError("sbatch --version was run for a script without --segment")
    monkeypatch.setattr(slurm, "client_version", asked)
    plan_records.dry_run(Request(load_experiment("h100-eos", None, FILLS), megatron_check=False))
