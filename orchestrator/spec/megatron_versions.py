"""Which Megatron a job targets, and what that version changed since the seed guide.

The guide was written for an older Megatron-Core; the drift table says, per flag, from which version it is refused
or deprecated and what replaces it. ``megatron_args`` applies it and prints each translation as a warning.
"""

from __future__ import annotations

import functools
import importlib.metadata
from dataclasses import dataclass

DEFAULT_TARGET = "0.19.2"
"""Target when neither the profile nor the installed package says: the version proven on the GPU machines."""

Version = tuple[int, ...]


def parse_version(text: str) -> Version:
    """``0.19.2`` / ``0.19.2rc1`` / ``0.19`` → (0, 19, 2) / (0, 19, 2) / (0, 19, 0)."""
    parts: list[int] = []
    for piece in text.strip().split(".")[:3]:
        digits = ""
        for ch in piece:
            if not ch.isdigit():
                break
            digits += ch
        if not digits:
            raise ValueError(f"not a version: {text!r}")
        parts.append(int(digits))
    return tuple(parts + [0] * (3 - len(parts)))


TRAINS_FROM = "0.17.0"
"""The first megatron-core that ships ``megatron.training`` (and so can run a job): an older one installed here
(0.16.1 is what Python 3.11 gets) says nothing about the Megatron a job runs."""


@functools.lru_cache(maxsize=1)
def installed_megatron() -> str | None:
    """The installed megatron-core version when it can train (>= TRAINS_FROM), if any (no import of Megatron
    itself); looked up once per process."""
    try:
        found = importlib.metadata.version("megatron-core")
    except importlib.metadata.PackageNotFoundError:
        return None
    return found if parse_version(found) >= parse_version(TRAINS_FROM) else None


@dataclass(frozen=True)
class Target:
    """The Megatron version arguments are built for, and where that came from."""

    version: str
    source: str
    """'profile', 'installed' or 'default'."""

    def at_least(self, version: str) -> bool:
        return parse_version(self.version) >= parse_version(version)


def resolve_target(profile_version: str | None) -> Target:
    """Profile setting first, then the installed package, then DEFAULT_TARGET."""
    if profile_version:
        parse_version(profile_version)
        return Target(profile_version, "profile")
    if (found := installed_megatron()) is not None:
        return Target(found, "installed")
    return Target(DEFAULT_TARGET, "default")


@dataclass(frozen=True)
class Drift:
    """One change of Megatron's command line since the seed guide."""

    guide_flag: str
    since: str
    kind: str
    """'refused' (Megatron stops) or 'deprecated' (Megatron warns; the new form is used)."""
    replacement: str
    reason: str


DRIFT: tuple[Drift, ...] = (
    Drift("--cross-entropy-fusion-impl te", "0.18.2", "refused", "--cross-entropy-fusion-impl native",
          "megatron-core >= 0.18.2 asserts 'Transformer Engine cross entropy loss fusion is disabled due to "
          "stability issues'"),
    Drift("--moe-enable-deepep", "0.16.0", "deprecated", "--moe-flex-dispatcher-backend deepep",
          "moe_enable_deepep is deprecated in favour of the flex dispatcher's backend flag"),
    Drift("--moe-router-padding-for-fp8", "0.16.0", "deprecated", "--moe-router-padding-for-quantization",
          "moe_router_padding_for_fp8 is now an alias of moe_router_padding_for_quantization"),
)


def drift_for(flag: str, target: Target) -> Drift | None:
    """The drift entry that applies to ``flag`` at ``target``, if any."""
    for entry in DRIFT:
        if entry.guide_flag == flag and target.at_least(entry.since):
            return entry
    return None
