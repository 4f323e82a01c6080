"""Each pre-submit rule: one configuration it accepts, one it refuses with the setting and the fix named."""

from __future__ import annotations

import pytest

from orchestrator.spec.config import load_experiment
from orchestrator.submit.problem import Problem
from orchestrator.submit.rules import blocking, validate

ACCOUNT = "profile.account=acct"


def problems(profile: str = "h100-eos", recipe: str = "deepseek-v3", *overrides: str) -> list[Problem]:
    return blocking(validate(load_experiment(profile, recipe, [ACCOUNT, *overrides])))


def settings(found: list[Problem]) -> list[str]:
    return [p.setting for p in found]


@pytest.mark.parametrize("profile, recipe", [
    ("h100-eos", "deepseek-v3"), ("h100", "deepseek-v3"), ("h200", "deepseek-v3"),
    ("h100-profile.nodes=1", "dsv3-proxy-14l"), ("local", "dsv3-proxy-3l"), ("local-slurm", "dsv3-proxy-3l"),
])
def test_shipped_combinations_are_valid(profile: str, recipe: str) -> None:
    profile, _, nodes = profile.partition("-profile.nodes=")
    assert problems(profile, recipe, *([f"profile.nodes={nodes}"] if nodes else [])) == []


def test_nodes_live_in_the_profile_and_a_recipe_only_checks_them() -> None:
    # --set profile.nodes=16 on h100-eos used to render --nodes=128 (the recipe won); now it is refused
    found = problems("h100-eos", "deepseek-v3", "profile.nodes=16")[0]
    assert str(found) == ("error: nodes: recipe deepseek-v3 is built for 128 nodes but profile h100-eos gives 16 "
                          "(fix: --set profile.nodes=128, or --set nodes=null to run the recipe on 16 nodes)")
    exp = load_experiment("h100-eos", "deepseek-v3", [ACCOUNT, "profile.nodes=16", "nodes=null"])
    assert exp.nodes == 16 and exp.world_size == 128
    assert problems("h100", "dsv3-proxy-14l")[0].setting == "nodes"   # built for 1 node, h100 gives 128


def test_gb200_segments_and_expert_parallelism() -> None:
    assert settings(problems("gb200-nvl72", "deepseek-v3", "profile.nodes=128", "profile.segment=18")) == [
        "profile.segment"]   # 128 nodes are not whole segments of 18
    assert problems("gb200-nvl72", "deepseek-v3", "profile.nodes=128") == []   # segment: auto
    # 576 GPUs: EP64 × PP8 = 512 does not divide them, and GBS 8192 does not split over DP 36
    found = problems("gb200-nvl72", "deepseek-v3", "profile.nodes=144", "nodes=null")
    assert settings(found) == ["parallel.ep", "training.global_batch_size"]
    assert problems("gb200-nvl72", "deepseek-v3", "profile.nodes=144", "nodes=null", "parallel.ep=8",
                    "training.global_batch_size=8208") == []


def test_an_auto_segment_follows_the_node_count_as_the_seed() -> None:
    """SEGMENT = EP × TP / 4 (the seed's GB200 launch: 64 nodes of EP64 TP1 → 16) where it divides the nodes and
    fits a rack; else the largest divisor of the node count up to a rack's 18 nodes."""
    def segment(recipe: str, *extra: str) -> int | None:
        return load_experiment("gb200-nvl72", recipe, [ACCOUNT, *extra]).segment
    assert segment("deepseek-v3-gb200") == 16
    assert segment("deepseek-v3", "profile.nodes=128") == 16        # EP64 × TP2 / 4 = 32 > 18: 128's divisor 16
    assert segment("deepseek-v3", "profile.nodes=144", "nodes=null", "parallel.ep=8") == 4   # 8 × 2 / 4
    assert segment("deepseek-v3", "profile.nodes=126", "nodes=null", "parallel.ep=1") == 18  # 1 × 2 / 4 < 1: 18
    assert segment("deepseek-v3-gb200", "profile.segment=null") is None


def test_world_size_must_hold_tp_cp_pp() -> None:
    found = problems("h100", "deepseek-v3", "profile.nodes=3", "nodes=null")
    assert "parallel.tp/cp/pp" in settings(found)
    assert "world size 24 (3 nodes × 8 GPUs)" in str(found[0])


def test_expert_parallel_must_divide_world_and_experts() -> None:
    assert "parallel.ep" in settings(problems("h100", "deepseek-v3", "parallel.ep=48"))
    assert problems("h100", "deepseek-v3", "parallel.ep=32") == []


def test_pipeline_layout_stage_count_must_match_pp_times_vpp() -> None:
    found = problems("h100", "deepseek-v3", "parallel.pp=4")
    assert settings(found) == ["parallel.pipeline_layout"]
    assert "32 stages but PP×VPP = 4×4 = 16" in found[0].message


def test_pipeline_layout_layer_count_must_match_the_model() -> None:
    found = problems("h100", "deepseek-v3", "parallel.pipeline_layout=Et|(tt|)*30L")
    assert "places 0 MTP layers" in found[0].message
    found = problems("h100", "deepseek-v3", "model.num_layers=60")
    assert "places 61 transformer layers ('t') but the model has 60" in found[0].message


def test_even_split_needed_without_a_layout() -> None:
    found = problems("h100", "deepseek-v3", "parallel.pipeline_layout=null")
    assert settings(found) == ["parallel.pp/vpp"]


def test_global_batch_must_be_multiple_of_micro_batch_times_dp() -> None:
    found = problems("h100", "deepseek-v3", "training.global_batch_size=8190")
    assert settings(found) == ["training.global_batch_size"]
    assert "MBS×DP = 1×64" in found[0].message


def test_a_proxy_on_a_large_profile_is_told_to_use_fewer_nodes() -> None:
    # the 3-layer proxy (GBS 8) takes its node count from the profile: 128 nodes of h100 give DP 1024
    [found] = problems("h100", "dsv3-proxy-3l")
    assert found.setting == "training.global_batch_size" and "128 nodes × 8 GPUs (profile.nodes)" in found.fix
    assert problems("h100", "dsv3-proxy-3l", "profile.nodes=1") == []


@pytest.mark.parametrize("overrides, setting", [
    (["switches.token_dispatcher=alltoall"], "switches.deepep"),
    (["switches.deepep=false"], "switches.token_dispatcher"),
    (["switches.fp8_blockwise=false", "switches.router_padding_for_fp8=false"], "switches.fp8_param_gather"),
    (["parallel.distributed_optimizer=false", "switches.bf16_optimizer_states=false"], "switches.fp8_param_gather"),
    (["switches.ep_a2a_overlap=false"], "switches.delay_wgrad_compute"),
    (["switches.recompute_modules=[mla_up_proj, mystery]"], "switches.recompute_modules"),
    (["switches.recompute_modules=[moe]"], "switches.ep_a2a_overlap"),
    (["model.mtp_num_layers=2", "parallel.pipeline_layout=Et|(tt|)*30mmL"], "switches.ep_a2a_overlap"),
])
def test_switches_that_need_each_other(overrides: list[str], setting: str) -> None:
    assert setting in settings(problems("h100", "deepseek-v3", *overrides))


def test_cuda_graphs_with_expandable_segments_need_nccl_graph_register_off() -> None:
    # seen on 2 x H200 (benchmarks/results/2026-11-28-h200x2): Megatron asserted this one minute into the job
    # the seed's environment sets NCCL_GRAPH_REGISTER=0 already (and so do the recipes): a user who turns it on again
    found = problems("local", "dsv3-proxy-3l", "switches.cuda_graphs=true", "env.NCCL_GRAPH_REGISTER=1")
    assert settings(found) == ["switches.cuda_graphs"] and "--set env.NCCL_GRAPH_REGISTER=0" in str(found[0])
    assert problems("local", "dsv3-proxy-3l", "switches.cuda_graphs=true", "env.NCCL_GRAPH_REGISTER=0") == []


def test_cuda_graphs_with_a2a_overlap_warn_of_the_capture_failure_seen_on_h200() -> None:
    # seen on 4 x H200 (benchmarks/results/2026-11-28-h200x4): capture failed at iteration 3; without the overlap it ran
    def graph_warnings(*overrides: str) -> list[Problem]:
        found = validate(load_experiment("local", "dsv3-proxy-3l", ["env.NCCL_GRAPH_REGISTER=0", *overrides]))
        return [p for p in found if p.setting == "switches.cuda_graphs" and "capture" in p.message]
    found = graph_warnings("switches.cuda_graphs=true")
    assert [p.severity for p in found] == ["warning"] and "switches.ep_a2a_overlap=false" in found[0].fix
    assert graph_warnings("switches.cuda_graphs=true", "switches.ep_a2a_overlap=false",
                          "switches.delay_wgrad_compute=false") == []
    assert graph_warnings() == []


def test_a2a_overlap_needs_expert_parallelism() -> None:
    found = problems("local", "dsv3-proxy-3l", "parallel.ep=1")
    assert "switches.ep_a2a_overlap" in settings(found)
    assert "EP > 1" in str(found[0])


def test_required_profile_setting_blocks_submission_but_not_rendering() -> None:
    exp = load_experiment("h100-eos", "deepseek-v3")
    found = validate(exp)
    assert [p.setting for p in blocking(found)] == ["profile.account"]
    assert blocking(found, for_submit=False) == []


def test_every_problem_names_setting_and_fix() -> None:
    found = problems("h100", "deepseek-v3", "parallel.pp=3", "parallel.ep=7", "training.global_batch_size=7")
    assert len(found) >= 3  # all of them, not the first
    for problem in found:
        line = str(problem)
        assert "\n" not in line and line.startswith("error: ") and "(fix: " in line



def test_container_jobs_refuse_a_path_no_mount_covers() -> None:
    # h100-eos runs in a container that mounts /lustre (plus the toolkit and the run directory, always)
    [found] = problems("h100-eos", "deepseek-v3", "training.data_path=[0.5, /data/a_text, 0.5, /lustre/b_text]")
    assert str(found) == ("error: training.data_path: /data/a_text is not visible in the container: no "
                          "profile.container.mounts entry covers it (fix: add a mount such as '/data:/data' to "
                          "profile.container.mounts)")
    assert settings(problems("h100-eos", "deepseek-v3", "profile.megatron_path=/opt/megatron-lm",
                             "training.tokenizer_model=/models/tok", "training.tokenizer_type=HuggingFaceTokenizer",
                             "profile.bindpcie_path=/lustre/bindpcie")) == ["training.tokenizer_model",
                                                                             "profile.megatron_path"]
    assert problems("h100-eos", "deepseek-v3", "training.data_path=[/lustre/a_text]",
                    "training.tokenizer_model=deepseek-ai/DeepSeek-V3") == []     # a hub name is not a path
    assert problems("local-slurm", "dsv3-proxy-3l", "profile.megatron_path=/opt/megatron-lm") == []  # no container


def test_cuda_graphs_with_delayed_wgrad_need_gradient_accumulation_fusion() -> None:
    # seen on 2 x H200 (benchmarks/results/2026-11-29-h200x2-deepep): "CUDA graph with delay_wgrad_compute requires
    # gradient_accumulation_fusion to be enabled" at start-up
    warned = [p for p in validate(load_experiment("local", "dsv3-proxy-3l", ["switches.cuda_graphs=true"]))
              if p.setting == "switches.cuda_graphs" and "gradient-accumulation" in p.message]
    assert [p.severity for p in warned] == ["warning"]
    refused = problems("local", "dsv3-proxy-3l", "switches.cuda_graphs=true",
                       "training.extra_args=[--no-gradient-accumulation-fusion]")
    assert any(p.severity == "error" and "gradient-accumulation" in p.message for p in refused)
    assert not [p for p in validate(load_experiment("local", "dsv3-proxy-3l", [
        "switches.cuda_graphs=true", "switches.ep_a2a_overlap=false", "switches.delay_wgrad_compute=false"]))
        if "gradient-accumulation" in p.message]
