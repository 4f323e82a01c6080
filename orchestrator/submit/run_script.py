"""The variables of ``run.sh``: what each sets, which are required, and the rendered environment block.

run.sh only exports its variables and calls ``orchestrator runsh``; all logic lives here, in one table.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from ..spec.config import ClusterProfile
from .render import render_template
from ..spec.schema import ConfigError


@dataclass(frozen=True)
class RunVar:
    """One variable of run.sh's environment block."""

    name: str
    setting: str
    """The dotted setting it overrides ('' for variables the runner itself reads)."""
    doc: str
    list_sep: str | None = None
    """Separator when the setting is a list (None for scalars)."""
    raw: bool = False
    """Pass the value to YAML as it is (numbers); otherwise it stays a string."""
    prefill: bool = True
    """Write the profile's value into the block (False: left empty, so PROFILE=other keeps that profile's value)."""


RUN_VARS: tuple[RunVar, ...] = (
    RunVar("PROFILE", "", "cluster profile: orchestrator profiles lists them"),
    RunVar("RECIPE", "", "recipe; empty = the profile's default_recipe (orchestrator recipes lists them)"),
    RunVar("NNODES", "profile.nodes", "nodes per job; empty = the profile's", raw=True, prefill=False),
    RunVar("ACCOUNT", "profile.account", "Slurm account"),
    RunVar("PARTITION", "profile.partition", "Slurm partition"),
    RunVar("TIME_LIMIT", "profile.time_limit", "wall-clock limit per job, HH:MM:SS"),
    RunVar("CONTAINER_IMAGE", "profile.container.image", "container image (squashfs or registry URI)"),
    RunVar("CONTAINER_MOUNTS", "profile.container.mounts", "container mounts, SRC:DST,SRC:DST", ","),
    RunVar("MEGATRON_PATH", "profile.megatron_path", "Megatron-LM checkout in the container; empty = bundled entry"),
    RunVar("DATA_PATH", "training.data_path", "dataset prefixes (space separated); empty = mock data", " "),
    RunVar("TOKENIZER_MODEL", "training.tokenizer_model", "tokenizer path or HF name; empty = NullTokenizer"),
    RunVar("OUTPUT_DIR", "profile.output_root", "where run directories, logs and checkpoints go"),
    RunVar("BINDPCIE_PATH", "profile.bindpcie_path", "NVIDIA mlperf-common bindpcie; empty = built-in binding"),
    RunVar("WANDB_PROJECT", "training.wandb_project", "W&B project; the key is read from $WANDB_API_KEY"),
    RunVar("EXTRA_SET", "", "more overrides, space separated KEY=VALUE (e.g. parallel.pp=4)"),
    RunVar("DRY_RUN", "", "1 = print every rendered file and submit nothing"),
)


def profile_value(profile: ClusterProfile, var: RunVar) -> str:
    """The profile's current value of a run.sh variable, as text ('' when unset)."""
    if var.name == "PROFILE":
        return profile.name
    if not var.setting.startswith("profile.") or not var.prefill:
        return ""
    value: object = profile
    for part in var.setting.removeprefix("profile.").split("."):
        value = getattr(value, part)
    if isinstance(value, list):
        return (var.list_sep or ",").join(value)
    return "" if value is None else str(value)


def block_variables(profile: ClusterProfile) -> list[dict[str, object]]:
    """The block's rows: name, value, whether it must be filled, doc."""
    rows = []
    for var in RUN_VARS:
        value = profile_value(profile, var)
        rows.append({"name": var.name, "value": value, "doc": var.doc,
                     "fill": var.setting in _required_settings(profile) and not value})
    return rows


def render_run_sh(profile: ClusterProfile) -> str:
    """A complete run.sh for this cluster."""
    return render_template("run.sh.j2", profile=profile, variables=block_variables(profile))


def overrides_from_env(env: Mapping[str, str]) -> list[str]:
    """``--set`` overrides for every non-empty run.sh variable that maps to a setting."""
    out = []
    for var in RUN_VARS:
        value = env.get(var.name, "").strip()
        if not var.setting or not value:
            continue
        if var.list_sep is not None:
            items = [item.strip() for item in value.split(var.list_sep)]
            if not all(items):
                raise ConfigError(var.name, f"{value!r} holds an empty item", f"separate the items by "
                                  f"{var.list_sep!r} with nothing empty between, or leave {var.name} empty to keep "
                                  "the profile's")
            out.append(f"{var.setting}=[{', '.join(_yaml_str(i) for i in items)}]")
        else:
            out.append(f"{var.setting}={value if var.raw else _yaml_str(value)}")
    if env.get("TOKENIZER_MODEL", "").strip():
        out.append("training.tokenizer_type=HuggingFaceTokenizer")
    out += env.get("EXTRA_SET", "").split()
    return out


def check_required(profile: ClusterProfile) -> None:
    """Stop with one line naming the run.sh variable when a required setting is still empty."""
    by_setting = {var.setting: var for var in RUN_VARS if var.setting}
    for setting in _required_settings(profile):
        var = by_setting.get(setting)
        if var and not profile_value(profile, var):
            raise ConfigError(var.name, f"is empty but profile {profile.name} needs {setting}",
                              f"set {var.name}=... in run.sh's environment block or export it")


def training_blocker(gpus: int) -> str | None:
    """Why the proxy cannot train on this machine (None when it can): GPUs and megatron.training are needed."""
    from ..node.megatron_check import available
    from ..spec import machine

    if not available():
        return "megatron.training is not importable here (megatron-core >= 0.17 on Python >= 3.12 ships it)"
    here = machine.here()
    return None if here.count >= gpus else f"{here.describe()}, the local profile runs {gpus} ranks"


def _required_settings(profile: ClusterProfile) -> set[str]:
    return {f"profile.{name}" for name in profile.required}


def _yaml_str(value: str) -> str:
    """A YAML double-quoted scalar, so values like 'no', '1e3' or 'a: b' stay strings."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
