"""Every sweep file shipped in sweeps/ loads and passes every rule on the local profile it was run with."""

from __future__ import annotations

from pathlib import Path

import pytest

from orchestrator.spec.config import load_experiment
from orchestrator.spec.sweep import expand, load_sweep
from orchestrator.submit.rules import blocking, validate

SWEEPS = sorted((Path(__file__).resolve().parents[3] / "sweeps").glob("*.yaml"))


def test_the_sweeps_folder_is_not_empty() -> None:
    assert {p.stem for p in SWEEPS} >= {"proxy-ablation", "proxy-tuning", "proxy-repeat", "proxy-ep4",
                                        "proxy-cudagraph"}


@pytest.mark.parametrize("path", SWEEPS, ids=lambda p: p.stem)
def test_every_variant_of_a_shipped_sweep_is_valid(path: Path) -> None:
    sweep = load_sweep(path)
    variants = expand(load_experiment("local", sweep.recipe), sweep)
    problems = {v.name: [str(p) for p in blocking(validate(exp))] for v, exp in variants}
    assert problems == {v.name: [] for v, _ in variants}
    assert len({v.name for v, _ in variants}) == len(sweep.variants) >= 2
