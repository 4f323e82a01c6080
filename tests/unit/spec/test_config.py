"""Loading profiles and recipes: extends, user directories, unknown keys, typed overrides."""

from __future__ import annotations

from pathlib import Path

import pytest

from orchestrator.spec.config import load_experiment, load_profile, load_recipe
from orchestrator.spec.schema import ConfigError


def test_extends_merges_nested_settings() -> None:
    h200 = load_profile("h200")
    assert h200.gpus_per_node == 8 and h200.container.image  # from h100
    assert h200.env["NCCL_IB_TIMEOUT"] == "19" and h200.env["NVSHMEM_DISABLE_NVLS"] == "1"
    assert h200.description.startswith("DGX H200")


def test_proxy_recipe_inherits_the_model_and_changes_its_size() -> None:
    proxy = load_recipe("dsv3-proxy-3l")
    assert (proxy.model.num_layers, proxy.model.num_experts, proxy.model.hidden_size) == (3, 16, 7168)
    assert proxy.model.q_lora_rank == 1536 and proxy.parallel.ep == 2


def test_deepseek_v3_recipe_matches_the_guide() -> None:
    r = load_recipe("deepseek-v3")
    m, p = r.model, r.parallel
    assert (m.num_layers, m.first_k_dense, m.hidden_size, m.ffn_hidden_size, m.num_attention_heads) == (61, 3, 7168, 18432, 128)
    assert (m.q_lora_rank, m.kv_lora_rank, m.qk_head_dim, m.qk_pos_emb_head_dim, m.v_head_dim) == (1536, 512, 128, 64, 128)
    assert (m.num_experts, m.moe_router_topk, m.moe_router_num_groups, m.moe_router_group_topk) == (256, 8, 8, 4)
    assert (m.moe_ffn_hidden_size, m.moe_shared_expert_intermediate_size, m.vocab_size, m.seq_length) == (2048, 2048, 129280, 4096)
    assert (p.tp, p.pp, p.vpp, p.ep, p.etp, r.nodes) == (2, 8, 4, 64, 1, 128)
    assert (r.training.micro_batch_size, r.training.global_batch_size) == (1, 8192)
    assert p.pipeline_layout == "Et|(tt|)*30mL"


def test_unknown_key_is_an_error_with_a_suggestion(tmp_path: Path) -> None:
    (tmp_path / "mine.yaml").write_text("extends: h100\naccount: a\ngpus_per_nod: 4\n")
    with pytest.raises(ConfigError, match=r"profile.gpus_per_nod: unknown setting \(fix: did you mean 'gpus_per_node'\?\)"):
        load_profile("mine", tmp_path)


def test_user_profiles_dir_and_environment_variable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "mycluster.yaml").write_text("extends: h100\naccount: proj\npartition: gpu\n")
    assert load_profile("mycluster", tmp_path).partition == "gpu"
    monkeypatch.setenv("ORCHESTRATOR_PROFILES_DIR", str(tmp_path))
    assert load_profile("mycluster").account == "proj"


def test_missing_profile_lists_the_known_ones() -> None:
    with pytest.raises(ConfigError, match="no profile named 'h1OO'.*h100-eos"):
        load_profile("h1OO")


def test_extends_cycle_is_reported(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text("extends: b\n")
    (tmp_path / "b.yaml").write_text("extends: a\n")
    with pytest.raises(ConfigError, match="cycle a -> b -> a"):
        load_profile("a", tmp_path)


@pytest.mark.parametrize("override, message", [
    ("parallel.pp=four", "recipe.parallel.pp: expected an integer"),
    ("switches.deepep=maybe", "recipe.switches.deepep: expected true or false"),
    ("switches.token_dispatcher=fast", "'fast' is not allowed"),
    ("parallel.ppp=4", "did you mean 'pp'"),
    ("profile.nodes=x", "profile.nodes: expected an integer"),
    ("nonsense", "is not key=value"),
])
def test_overrides_are_type_checked(override: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_experiment("h100", "deepseek-v3", [override])


def test_overrides_reach_profile_and_recipe() -> None:
    exp = load_experiment("h100", "deepseek-v3", ["parallel.pp=4", "profile.partition=p1", "profile.nodes=2",
                                                  "switches.recompute_modules=[mlp]"])
    assert exp.recipe.parallel.pp == 4 and exp.profile.partition == "p1"
    assert exp.nodes == 2 and exp.world_size == 16 and exp.recipe.switches.recompute_modules == ["mlp"]


def test_a_group_given_as_a_mapping_merges_into_it() -> None:
    """``--set 'training={lr: 2.0e-4}'`` changes the learning rate only; the group's other settings keep theirs
    (it once reset every other training setting to its default)."""
    from orchestrator.spec.config import load_experiment

    before = load_experiment("local", "dsv3-proxy-3l")
    after = load_experiment("local", "dsv3-proxy-3l", ["training={lr: 2.0e-4}"])
    assert after.recipe.training.lr == 2.0e-4
    assert after.recipe.training.train_iters == before.recipe.training.train_iters == 20
    assert after.recipe.training.global_batch_size == before.recipe.training.global_batch_size
