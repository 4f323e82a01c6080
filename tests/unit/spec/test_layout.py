"""The pipeline-layout grammar, checked against the guide's layout and against broken ones."""

from __future__ import annotations

import pytest

from orchestrator.spec.layout import LayoutError, check, expand, in_force, parse


def test_guide_layout_has_32_stages_61_layers_one_mtp() -> None:
    layout = parse("Et|(tt|)*30mL")
    assert layout.num_stages == 32
    assert layout.num_layers == 61
    assert layout.num_mtp == 1
    assert layout.stages[0] == "Et" and layout.stages[-1] == "mL"
    assert check(layout, pp=8, vpp=4, num_layers=61, mtp_layers=1) == []


def test_stage_placement_follows_megatron_vpp_order() -> None:
    layout = parse("E|t|t|L")
    assert layout.stage_of(pp_rank=1, vpp_rank=1, pp=2) == "L"
    assert layout.stage_of(pp_rank=0, vpp_rank=1, pp=2) == "t"


@pytest.mark.parametrize("text, flat", [
    ("t*3", "ttt"), ("(ab)", None), ("E(t|)*2L", "Et|t|L"), ("E,t*2|L", "Ett|L"), ("((t|)*2)*2", "t|t|t|t|"),
])
def test_expand(text: str, flat: str | None) -> None:
    if flat is None:
        with pytest.raises(LayoutError, match="unknown symbol 'a'"):
            expand(text)
    else:
        assert expand(text) == flat


@pytest.mark.parametrize("text, message", [
    ("Et|(tt|mL", "missing"), ("Et)|L", "unbalanced"), ("Et*|L", "not followed by a count"), ("", "empty"),
])
def test_malformed_layouts_are_refused(text: str, message: str) -> None:
    with pytest.raises(LayoutError, match=message):
        parse(text)


def test_wrong_stage_count_layer_count_and_mtp_are_each_reported() -> None:
    problems = check(parse("Et|(tt|)*29mL"), pp=8, vpp=4, num_layers=61, mtp_layers=1)
    assert any("31 stages but PP×VPP = 8×4 = 32" in p for p in problems)
    assert any("59 transformer layers" in p for p in problems)
    assert check(parse("Et|(tt|)*30L"), pp=8, vpp=4, num_layers=61, mtp_layers=1) == [
        "places 0 MTP layers ('m') but the model has 1"]


def test_embedding_loss_and_mtp_order() -> None:
    problems = check(parse("t|EL"), pp=2, vpp=1, num_layers=1, mtp_layers=0)
    assert problems == ["must start with the embedding 'E', exactly once"]
    assert "places transformer layers after an MTP layer" in check(parse("Em|tL"), 2, 1, 1, 1)


def test_the_layout_in_force_is_decided_in_one_place() -> None:
    assert in_force("Et|tmL") == "Et|tmL"                 # given: in force
    assert in_force(None) is None and in_force("") is None and in_force("  ") is None   # an even split
