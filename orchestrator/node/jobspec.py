"""The node-side job spec (``job.json``): the contract between the login side and the node side.

``JobSpec`` is the only definition of job.json: the login side builds one (``submit.render.job_spec``) and writes
it with ``dumps``; the node entry (``python -m orchestrator.node SPEC``) reads it with ``load``. Standard library
only. See docs/ARCHITECTURE.md for the format. Unknown keys are kept in ``extra`` (and written back by ``dump``)
so a newer login side does not break an older node side.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

DEFAULT_FALLBACK_FROM = ("--moe-token-dispatcher-type", "flex")
DEFAULT_FALLBACK_TO = ("--moe-token-dispatcher-type", "alltoall")
DEEPEP_FALLBACK_WARNING = "WARNING: DeepEP token dispatcher requested but NOT available on this node."
"""The node entry's first warning line when it falls back from DeepEP; log readers look for it."""


class JobSpecError(ValueError):
    """job.json is missing, not JSON, or has a field of the wrong type."""


@dataclass(frozen=True)
class DispatcherFallback:
    """What to run instead of the flex/DeepEP token dispatcher when DeepEP is unusable on the node."""

    from_: tuple[str, ...] = DEFAULT_FALLBACK_FROM
    to: tuple[str, ...] = DEFAULT_FALLBACK_TO

    def to_json(self) -> dict[str, list[str]]:
        return {"from": list(self.from_), "to": list(self.to)}


@dataclass(frozen=True)
class JobSpec:
    """What one rank of a job runs, and how its node prepares for it."""

    name: str
    """The recipe's name (log lines and reports)."""
    command: tuple[str, ...]
    """The training command run per rank (the bundled entry or a Megatron checkout's pretrain_gpt.py)."""
    env: dict[str, str] = field(default_factory=dict)
    """Environment set for every rank: the recipe's, then the cluster's (never a secret)."""
    env_passthrough: tuple[str, ...] = ()
    """Secrets passed through by name from the submitting environment when set."""
    bindpcie: str | None = None
    """NVIDIA bindpcie path; None = the built-in NUMA binding."""
    gpus_per_node: int = 0
    """GPUs per node (ranks per node)."""
    megatron_path: str | None = None
    """Megatron-LM checkout put on PYTHONPATH; None = the installed megatron-core."""
    dispatcher_fallback: DispatcherFallback | None = None
    """What replaces the flex/DeepEP dispatcher flags when DeepEP is unusable on the node."""
    extra: dict[str, Any] = field(default_factory=dict)
    """Keys this version does not know, kept and written back."""

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = dict(self.extra)
        data.update({
            "name": self.name,
            "command": list(self.command),
            "env": dict(self.env),
            "env_passthrough": list(self.env_passthrough),
            "bindpcie": self.bindpcie,
            "gpus_per_node": self.gpus_per_node,
            "megatron_path": self.megatron_path,
            "dispatcher_fallback": self.dispatcher_fallback.to_json() if self.dispatcher_fallback else None,
        })
        return data


_KNOWN = {"name", "command", "env", "env_passthrough", "bindpcie", "gpus_per_node", "megatron_path",
          "dispatcher_fallback"}


def _str_list(data: dict[str, Any], key: str, required: bool = False) -> tuple[str, ...]:
    value = data.get(key, None)
    if value is None and not required:
        return ()
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise JobSpecError(f"job.json: {key} must be a list of strings")
    return tuple(value)


def _optional_str(data: dict[str, Any], key: str) -> str | None:
    value = data.get(key)
    if value is not None and not isinstance(value, str):
        raise JobSpecError(f"job.json: {key} must be a string or null")
    return value or None


def _fallback(value: Any) -> DispatcherFallback | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        raise JobSpecError("job.json: dispatcher_fallback must be an object with 'from' and 'to' lists")
    return DispatcherFallback(from_=_str_list(value, "from") or DEFAULT_FALLBACK_FROM,
                              to=_str_list(value, "to") or DEFAULT_FALLBACK_TO)


def from_json(data: Any) -> JobSpec:
    """Build a JobSpec from parsed JSON, checking every field's type."""
    if not isinstance(data, dict):
        raise JobSpecError("job.json: top level must be an object")
    name = data.get("name", "")
    if not isinstance(name, str):
        raise JobSpecError("job.json: name must be a string")
    command = _str_list(data, "command", required=True)
    if not command:
        raise JobSpecError("job.json: command must not be empty")
    env = data.get("env") or {}
    if not isinstance(env, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in env.items()):
        raise JobSpecError("job.json: env must map names to string values")
    gpus = data.get("gpus_per_node", 0)
    if not isinstance(gpus, int) or isinstance(gpus, bool) or gpus < 0:
        raise JobSpecError("job.json: gpus_per_node must be a non-negative integer")
    return JobSpec(
        name=name, command=command, env=dict(env), env_passthrough=_str_list(data, "env_passthrough"),
        bindpcie=_optional_str(data, "bindpcie"), gpus_per_node=gpus,
        megatron_path=_optional_str(data, "megatron_path"),
        dispatcher_fallback=_fallback(data.get("dispatcher_fallback")),
        extra={k: v for k, v in data.items() if k not in _KNOWN},
    )


def load(path: str | os.PathLike[str]) -> JobSpec:
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise JobSpecError(f"cannot read job spec {path}: {exc.strerror}") from exc
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise JobSpecError(f"job spec {path} is not valid JSON: {exc}") from exc
    return from_json(data)


def dumps(spec: JobSpec) -> str:
    """job.json's text: one field per line, each value compact JSON (keys of ``env`` sorted)."""
    fields = [f"  {json.dumps(key)}: {json.dumps(value, sort_keys=True)}" for key, value in spec.to_json().items()]
    return "{\n" + ",\n".join(fields) + "\n}\n"


def dump(spec: JobSpec, path: str | os.PathLike[str]) -> None:
    """Write ``spec`` as JSON (atomically: a node never reads half a file)."""
    target = Path(path)
    tmp = target.with_name(f".{target.name}.tmp{os.getpid()}")
    tmp.write_text(dumps(spec), encoding="utf-8")
    os.replace(tmp, target)
