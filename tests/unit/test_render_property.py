"""Property: whatever text a user puts in ANY string field (profile, recipe, sweep, variant, ``--set``, run.sh's
variables) -- newlines, control characters, quotes, ``$()``, backticks, ``;``, unicode -- the toolkit either
refuses it with a ConfigError / blocking problems, or every file it renders passes ``bash -n`` and running the
rendered scripts (with stub ``srun`` and ``python3`` on PATH) executes no injected payload.

``profile.setup`` is left out on purpose: its items are shell lines run as written (SECURITY.md).
"""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import types
from pathlib import Path
from typing import Any, Union, get_args, get_origin, get_type_hints

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from orchestrator.spec import config
from orchestrator.spec.sweep import Sweep, Variant
from orchestrator.spec.schema import ConfigError
from orchestrator.submit.checks import InvalidSubmission
from orchestrator.submit.plan import Request
from orchestrator.submit.run_script import RUN_VARS, overrides_from_env, render_run_sh
from orchestrator.submit.verdict import verdict

MARK = "PWNED"
FRAGMENTS = [f"$(touch {MARK})", f"`touch {MARK}`", f"; touch {MARK}", f"\ntouch {MARK}\n", f"' ; touch {MARK} ; '",
             f'" ; touch {MARK} ; "', "\\", "#", "${IFS}", f"&& touch {MARK}", f"| touch {MARK}", "\r", "\x00",
             "\x1b[31m", "é", "日本語", "\u2028", " ", "%", "*", "~", "$HOME", "\t", "{{ x }}", "%a", "-", "a", "1"]
TEXT = st.lists(st.one_of(st.sampled_from(FRAGMENTS), st.text(max_size=4)), min_size=1, max_size=4).map("".join)
SAFE_NAME = st.from_regex(r"[A-Za-z0-9._-]{1,64}", fullmatch=True)
SKIP = {"profile.setup", "profile.scheduler"}


def string_fields(cls: type, prefix: str) -> list[tuple[str, str]]:
    """(dotted path, kind) of every string field below a dataclass: 'str', 'list' or 'dict'."""
    out: list[tuple[str, str]] = []
    for name, tp in get_type_hints(cls).items():
        path = f"{prefix}{name}"
        origin, args = get_origin(tp), get_args(tp)
        if origin in (Union, types.UnionType):
            tp = next(a for a in args if a is not type(None))
            origin, args = get_origin(tp), get_args(tp)
        if dataclasses.is_dataclass(tp):
            out += string_fields(tp, f"{path}.")  # type: ignore[arg-type]
        elif tp is str:
            out.append((path, "str"))
        elif origin is list and args == (str,):
            out.append((path, "list"))
        elif origin is dict:
            out.append((path, "dict"))
    return [(p, k) for p, k in out if p not in SKIP]


FIELDS = string_fields(config.ClusterProfile, "profile.") + string_fields(config.Recipe, "")


def override(path: str, kind: str, value: str) -> str:
    """A --set override giving ``value`` to the field (YAML double-quoted, so the text arrives as it is)."""
    quoted = json.dumps(value)
    if kind == "list":
        return f"{path}=[{quoted}]"
    if kind == "dict":
        return f"{path}.HOSTILE_{abs(hash(value)) % 1000}={quoted}"
    return f"{path}={quoted}"


def stubs(tmp: Path) -> dict[str, str]:
    """A PATH with srun and python3 that do nothing, and what the batch script expects from Slurm."""
    bin_dir = tmp / "bin"
    bin_dir.mkdir(exist_ok=True)
    for name in ("srun", "python3"):
        (bin_dir / name).write_text("#!/bin/sh\nexit 0\n")
        (bin_dir / name).chmod(0o755)
    return {"PATH": f"{bin_dir}:/usr/bin:/bin", "SLURM_JOB_ID": "1", "SLURM_JOB_NODELIST": "n1", "HOME": str(tmp)}


def check_scripts(files: dict[str, str], tmp: Path) -> None:
    """Every rendered shell script passes bash -n; running it with the stubs leaves no payload behind."""
    event("accepted: scripts checked")
    env = stubs(tmp)
    for name, text in files.items():
        if not name.endswith(".sh"):
            continue
        path = tmp / Path(name).name
        path.write_text(text)
        syntax = subprocess.run(["bash", "-n", str(path)], capture_output=True, text=True)
        assert syntax.returncode == 0, f"{name}: {syntax.stderr}\n{text}"
        subprocess.run(["bash", str(path)], cwd=tmp, env=env, capture_output=True, timeout=60)
        assert not list(tmp.rglob(MARK)), f"{name} ran an injected command:\n{text}"


def accepted(overrides: list[str], profile: str = "local-slurm", sweep: Sweep | None = None) -> dict[str, str] | None:
    """The files a submit would write, or None when the toolkit refuses the input (as it may)."""
    try:
        exp = config.load_experiment(profile, "dsv3-proxy-3l", overrides)
        found = verdict(Request(exp, tuple(overrides), sweep=sweep, megatron_check=False))
    except (ConfigError, InvalidSubmission):
        return None
    if found.dry is None:
        return None
    return {f.path: f.text for f in found.dry.files}


SETTINGS = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@pytest.mark.parametrize("profile", ["local-slurm", "local"])
@SETTINGS
@given(field=st.sampled_from(FIELDS), value=TEXT)
def test_any_string_field_renders_safe_scripts(tmp_path_factory: pytest.TempPathFactory, profile: str,
                                               field: tuple[str, str], value: str) -> None:
    tmp = tmp_path_factory.mktemp("prop")
    files = accepted([f"profile.output_root={tmp}/runs", override(*field, value)], profile)
    if files is not None:
        check_scripts(files, tmp)


@SETTINGS
@given(name=st.one_of(TEXT, SAFE_NAME), variant=st.one_of(TEXT, SAFE_NAME), description=TEXT, item=TEXT)
def test_sweep_and_variant_strings_render_safe_scripts(tmp_path_factory: pytest.TempPathFactory, name: str,
                                                       variant: str, description: str, item: str) -> None:
    tmp = tmp_path_factory.mktemp("prop")
    try:
        sweep = config.from_dict(Sweep, {"name": name, "variants": [
            {"name": variant, "description": description, "set": [f"training.tokenizer_type={json.dumps(item)}"]}]},
            "sweep")
    except ConfigError:
        return
    assert isinstance(sweep.variants[0], Variant)
    files = accepted([f"profile.output_root={tmp}/runs"], sweep=sweep)
    if files is not None:
        check_scripts(files, tmp)


@SETTINGS
@given(var=st.sampled_from([v.name for v in RUN_VARS if v.name not in ("PROFILE", "RECIPE", "DRY_RUN")]),
       value=TEXT)
def test_run_sh_variables_render_safe_files(tmp_path_factory: pytest.TempPathFactory, var: str, value: str) -> None:
    """A hostile run.sh variable: the overrides it becomes, the files they render, and run.sh's own block."""
    tmp = tmp_path_factory.mktemp("prop")
    try:
        overrides = overrides_from_env({var: value, "OUTPUT_DIR": f"{tmp}/runs"})
        profile = config.load_experiment("local-slurm", "dsv3-proxy-3l", overrides).profile
        run_sh = render_run_sh(profile)
    except ConfigError:
        return
    files = accepted(overrides) or {}
    check_scripts({**files, "run.sh": run_sh}, tmp)


def test_the_property_covers_every_string_field() -> None:
    paths = {p for p, _ in FIELDS}
    assert {"profile.name", "name", "profile.account", "profile.env", "env", "profile.container.image",
            "profile.container.mounts", "training.data_path", "training.extra_args", "profile.output_root",
            "profile.time_limit", "profile.python", "profile.env_passthrough"} <= paths
    assert len(FIELDS) >= 25 and os.path.exists("/bin/bash")
