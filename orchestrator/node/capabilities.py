"""What this node can import: torch, Transformer Engine, megatron-core (+ megatron.training), DeepEP.

Standard library at import time; the probed packages are imported only inside the probe functions. Each probe
returns a ``Capability`` with the version, whether it is usable and, when not, why.

Cheap by default: megatron-core and Transformer Engine are located with ``importlib.util.find_spec`` and their
version read from the installed metadata (importing megatron.core alone takes seconds per rank). ``deep=True``
imports them for real. DeepEP is always imported, because "usable" means: ``deep_ep`` imports AND has ``Buffer``
AND ``deep_ep.utils.EventOverlap`` exists (what Megatron's flex dispatcher uses).
"""

from __future__ import annotations

import importlib
import importlib.metadata
import importlib.util
import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True)
class Capability:
    name: str
    usable: bool
    version: str | None = None
    reason: str = ""                 # why unusable, or a note (e.g. "CPU only")

    def describe(self) -> str:
        if self.usable:
            return f"{self.name} {self.version or '?'}" + (f" ({self.reason})" if self.reason else "")
        return f"{self.name} unusable: {self.reason}"

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def _dist_version(*dists: str) -> str | None:
    for dist in dists:
        try:
            return importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            continue
    return None


def module_found(module: str) -> bool:
    """Whether ``module`` can be imported here, found without importing it: the one importability probe."""
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def _import(module: str) -> tuple[Any, str]:
    """(module, "") or (None, reason)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return importlib.import_module(module), ""
    except Exception as exc:  # noqa: BLE001 - any import failure makes it unusable; report why
        return None, f"import {module} failed: {type(exc).__name__}: {exc}".strip()


def probe_torch() -> Capability:
    torch, why = _import("torch")
    if torch is None:
        return Capability("torch", False, _dist_version("torch"), why)
    note = "CPU only"
    if torch.cuda.is_available():
        nccl = ".".join(str(v) for v in torch.cuda.nccl.version()) if hasattr(torch.cuda, "nccl") else "?"
        note = f"CUDA {torch.version.cuda}, {torch.cuda.device_count()} GPU(s), NCCL {nccl}"
    return Capability("torch", True, str(torch.__version__), note)


def _probe_package(name: str, dists: tuple[str, ...], module: str, deep_module: str, deep: bool) -> Capability:
    """Found (cheap, no import) or, with ``deep``, imported; the version from the distribution or the module."""
    version = _dist_version(*dists)
    if not module_found(module):
        return Capability(name, False, version, "not installed")
    if not deep:
        return Capability(name, True, version, "found, not imported")
    imported, why = _import(deep_module)
    if imported is None:
        return Capability(name, False, version, why)
    return Capability(name, True, str(getattr(imported, "__version__", version)))


def probe_transformer_engine(deep: bool = False) -> Capability:
    return _probe_package("transformer_engine", ("transformer_engine", "transformer-engine", "transformer_engine_torch"),
                          "transformer_engine", "transformer_engine.pytorch", deep)


def probe_megatron_core(deep: bool = False) -> Capability:
    return _probe_package("megatron-core", ("megatron-core", "megatron_core"), "megatron.core", "megatron.core", deep)


def probe_megatron_training() -> Capability:
    """megatron.training ships in the megatron-core wheel from 0.17 (Python >= 3.12) or in a Megatron-LM checkout."""
    core = _dist_version("megatron-core", "megatron_core")
    if not module_found("megatron"):
        return Capability("megatron.training", False, None, "megatron not installed")
    if not module_found("megatron.training"):
        return Capability("megatron.training", False, core,
                          f"megatron.training not importable here (megatron-core {core or 'not installed'})")
    return Capability("megatron.training", True, core)


def probe_deepep() -> Capability:
    version = _dist_version("deep_ep", "deep-ep")
    if not module_found("deep_ep"):
        return Capability("deep_ep", False, version, "deep_ep is not installed")
    deep_ep, why = _import("deep_ep")
    if deep_ep is None:
        return Capability("deep_ep", False, version, why)
    if not hasattr(deep_ep, "Buffer"):
        return Capability("deep_ep", False, version, "deep_ep has no Buffer (not the DeepEP Megatron expects)")
    utils, why = _import("deep_ep.utils")
    if utils is None or not hasattr(utils, "EventOverlap"):
        return Capability("deep_ep", False, version, why or "deep_ep.utils has no EventOverlap")
    return Capability("deep_ep", True, version or str(getattr(deep_ep, "__version__", "?")))


def toolkit_version() -> str:
    version = _dist_version("orchestrator", "dsv3-orchestrator")
    if version:
        return version
    try:
        return str(getattr(importlib.import_module("orchestrator"), "__version__", "unknown"))
    except ImportError:
        return "unknown"


def probe_all(deep: bool = False) -> dict[str, Capability]:
    probes: list[Callable[[], Capability]] = [
        probe_torch,
        lambda: probe_transformer_engine(deep),
        lambda: probe_megatron_core(deep),
        probe_megatron_training,
        probe_deepep,
    ]
    caps = [p() for p in probes]
    return {c.name: c for c in caps}


def missing(caps: dict[str, Capability], deepep_wanted: bool) -> list[str]:
    """What this environment (a node, a container image) lacks to train, one line each naming what to add."""
    needs = [("megatron.training", "megatron-core >= 0.17 (Python >= 3.12) or a Megatron-LM checkout "
                                   "(profile.megatron_path)"),
             ("transformer_engine", "Transformer Engine (transformer-engine[pytorch])")]
    if deepep_wanted:
        needs.append(("deep_ep", "DeepEP (deep_ep), or switches.deepep=false"))
    return [f"{what}: {caps[name].reason or 'unusable'}" for name, what in needs
            if name in caps and not caps[name].usable]


def version_report(caps: dict[str, Capability]) -> dict[str, str]:
    """{name: version or 'unusable: why'} for reports, plus the toolkit's own version."""
    out = {"orchestrator": toolkit_version()}
    for name, cap in caps.items():
        out[name] = (cap.version or "?") if cap.usable else f"unusable: {cap.reason}"
    return out
