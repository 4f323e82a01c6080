"""Rendering: golden files per profile, shell quoting that no value escapes, and secrets kept out."""

from __future__ import annotations

import difflib
import json
import os
import subprocess
from dataclasses import replace
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from orchestrator.spec.config import Experiment, load_experiment
from orchestrator.submit.render import render
from orchestrator.spec.schema import ConfigError

GOLDEN = Path(__file__).resolve().parents[2] / "golden"
RUN_DIR = "/runs/golden"
TOOLKIT = "/opt/toolkit/orchestrator"    # where the golden files' container finds the toolkit's package
CASES = {
    "h100-eos": "deepseek-v3", "h100": "deepseek-v3", "h200": "deepseek-v3", "gb200-nvl72": "deepseek-v3",
    "local-slurm": "dsv3-proxy-3l", "local": "dsv3-proxy-3l",
}


NODES = {"gb200-nvl72": ["profile.nodes=128"]}   # the recipe's 128 nodes (the profile's 18 would be refused)


def golden_experiment(profile: str) -> Experiment:
    return load_experiment(profile, CASES[profile], ["profile.megatron_version=0.19.2", *NODES.get(profile, [])])


@pytest.mark.parametrize("profile", sorted(CASES))
def test_golden_files(profile: str) -> None:
    files = render(golden_experiment(profile), RUN_DIR, toolkit_dir=TOOLKIT).files
    for name, text in files.items():
        path = GOLDEN / profile / name
        if os.environ.get("UPDATE_GOLDEN") == "1":
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
        expected = path.read_text() if path.exists() else ""
        if text != expected:
            diff = "".join(difflib.unified_diff(expected.splitlines(True), text.splitlines(True),
                                                f"golden/{profile}/{name}", "rendered"))
            pytest.fail(f"{name} for {profile} differs from its golden file (if the change is intended, "
                        f"regenerate: UPDATE_GOLDEN=1 python -m pytest tests/unit/submit/test_render.py):\n{diff}")


def test_rendered_scripts_are_valid_bash() -> None:
    for profile in CASES:
        for name, text in render(golden_experiment(profile), RUN_DIR).files.items():
            if name.endswith(".sh"):
                subprocess.run(["bash", "-n"], input=text, text=True, check=True)


def run_sbatch_script(text: str, tmp_path: Path) -> dict[str, object]:
    """Execute a rendered sbatch script with srun replaced by a probe that reports its argv and env."""
    probe = ("srun() { command python3 -c 'import json, os, sys; json.dump({\"argv\": sys.argv[1:], "
             "\"env\": dict(os.environ)}, sys.stdout)' \"$@\"; }\n"
             # the watchdog and the retry step around srun need a real job: here they do nothing
             "python3() { case \"$2\" in orchestrator.node.retry|orchestrator.node.watchdog) return 0;; esac; "
             "command python3 \"$@\"; }\n")
    script = tmp_path / "job.sh"
    script.write_text(probe + text.split("\n", 1)[1])
    env = {"PATH": os.environ["PATH"], "SLURM_JOB_ID": "1", "SLURM_JOB_NODELIST": "n1"}
    out = subprocess.run(["bash", str(script)], capture_output=True, text=True, env=env, check=True).stdout
    return dict(json.loads(out[out.index("{"):]))


shell_text = st.text(st.characters(blacklist_characters="\x00", blacklist_categories=("Cs",)), min_size=1, max_size=40)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(value=shell_text, image=shell_text)
def test_no_profile_value_escapes_shell_quoting(value: str, image: str, tmp_path: Path) -> None:
    exp = golden_experiment("h100-eos")
    profile = replace(exp.profile, env={"PROBE_VALUE": value}, container=replace(exp.profile.container, image=image))
    text = render(replace(exp, profile=profile), RUN_DIR).files["sbatch.sh"]
    seen = run_sbatch_script(text, tmp_path)
    assert seen["env"]["PROBE_VALUE"] == value  # type: ignore[index]
    assert f"--container-image={image}" in seen["argv"]  # type: ignore[operator]


@settings(max_examples=60, deadline=None)
@given(value=shell_text)
def test_sbatch_directive_values_are_refused_or_kept_whole(value: str) -> None:
    exp = golden_experiment("h100-eos")
    exp = replace(exp, profile=replace(exp.profile, account=value))
    try:
        text = render(exp, RUN_DIR).files["sbatch.sh"]
    except ConfigError as err:
        assert "#SBATCH" in str(err) and "\n" not in str(err)
        return
    assert f"#SBATCH --account={value}\n" in text and not any(c.isspace() for c in value)


@pytest.mark.parametrize("name", ["WANDB_API_KEY", "S3_CREDENTIALS"])   # the record redacts exactly these names
def test_secret_in_profile_env_is_refused(name: str) -> None:
    exp = golden_experiment("h100")
    exp = replace(exp, profile=replace(exp.profile, env={name: "abc123"}))
    with pytest.raises(ConfigError, match=f"env.{name}: looks like a secret.*export {name}"):
        render(exp, RUN_DIR)


def test_secrets_in_the_environment_never_reach_rendered_files(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WANDB_API_KEY", "sekrit-wandb-4242")
    monkeypatch.setenv("HF_TOKEN", "sekrit-hf-4242")
    exp = load_experiment("h100", "deepseek-v3", ["training.wandb_project=dsv3"])
    files = render(exp, RUN_DIR).files
    assert "WANDB_API_KEY" in files["job.json"]  # passed by name
    assert not any("sekrit" in text for text in files.values())


def test_bindpcie_and_megatron_checkout_reach_the_job() -> None:
    exp = load_experiment("h100", "deepseek-v3", ["profile.bindpcie_path=/opt/bindpcie",
                                                  "profile.megatron_path=/opt/Megatron-LM"])
    files = render(exp, RUN_DIR).files
    spec = json.loads(files["job.json"])
    assert spec["bindpcie"] == "/opt/bindpcie" and spec["command"][2] == "/opt/Megatron-LM/pretrain_gpt.py"
    assert "--cpu-bind=none" in files["sbatch.sh"]


def test_array_and_dependency_lines() -> None:
    files = render(golden_experiment("local-slurm"), RUN_DIR, array="0-2%2", dependency="afterok:12").files
    assert "#SBATCH --array=0-2%2\n" in files["sbatch.sh"]
    assert "#SBATCH --dependency=afterok:12\n" in files["sbatch.sh"]
    assert f"#SBATCH --output={RUN_DIR}/logs/%x_%A_%a.log" in files["sbatch.sh"]
