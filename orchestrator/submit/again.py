"""``submit --from RUN_DIR``: the same run again, derived anew, never taken from the record.

A run record is data: anyone who can write the run directory can edit it. So the request is derived from the
profile and recipe *names*, the overrides and the output root it records, loaded and validated exactly as a fresh
``submit --profile NAME --recipe NAME --set ...`` would be; the record's resolved values are only compared with that
derivation, and a record that differs (edited, or a profile that changed since) is refused in one line naming the
first difference. No field of a record reaches a rendered file unless a fresh submit would have put it there.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, TypeVar

from . import run_records
from .plan import Request, anchored
from ..spec.config import ClusterProfile, Experiment, Recipe, load_experiment
from ..spec.schema import ConfigError, from_dict, shown, to_dict
from ..spec.sweep import Sweep

T = TypeVar("T")
ANEW = "submit it anew with --profile/--recipe/--set (a record is not trusted to say what runs)"


def request_from_record(run_dir: str | Path) -> Request:
    """The recorded run (single, segments, preflight or sweep) as a fresh submit of its names and overrides."""
    try:
        old = run_records.load_record(run_dir)
    except run_records.RunError as exc:
        fix = exc.fix if isinstance(exc, run_records.RecordError) else "submit from an intact run directory"
        raise ConfigError("--from", str(exc), fix) from None
    where = Path(run_dir) / run_records.RECORD
    recorded = Experiment(_recorded(ClusterProfile, old.profile, "profile", where),
                          _recorded(Recipe, old.recipe, "recipe", where))
    kept = [o for o in old.overrides if not o.startswith("profile.output_root=")]
    overrides = (*kept, f"profile.output_root={recorded.profile.output_root}")   # new runs beside the old
    exp = _derived(recorded, list(overrides), where)
    origin = str(Path(run_dir).resolve())
    if old.kind == "array" and old.sweep:
        sweep = _recorded(Sweep, {"resolved": old.sweep}, "sweep", where)
        return Request(exp, overrides, sweep=sweep, submitted_from=origin, recorded_provenance=old.provenance)
    segments = max(1, len(old.jobs)) if old.kind == "segments" else 1
    dependency = (old.jobs[1].dependency or "afterok").split(":")[0] if segments > 1 else "afterok"
    if dependency not in ("afterok", "afterany"):
        raise ConfigError(f"--from: {where}: jobs[1].dependency", f"{dependency!r} is not a dependency a chain "
                          "of segments uses", ANEW)
    return Request(exp, overrides, segments=segments, segment_dependency=dependency,
                   preflight=old.kind == "preflight", submitted_from=origin, recorded_provenance=old.provenance)


def _derived(recorded: Experiment, overrides: list[str], where: Path) -> Experiment:
    """The experiment the record's names and overrides give now; refused where it differs from the record's."""
    try:
        exp = anchored(load_experiment(recorded.profile.name, recorded.recipe.name, overrides))
    except ConfigError as err:
        raise ConfigError(f"--from: {where}: {err.setting}", err.problem, f"{err.fix}; or {ANEW}") from None
    for group, now, then in (("profile", exp.profile, recorded.profile), ("recipe", exp.recipe, recorded.recipe)):
        if changed := differences(to_dict(then), to_dict(now)):
            key, was, is_now = changed[0]
            more = f" (and {len(changed) - 1} more)" if len(changed) > 1 else ""
            raise ConfigError(f"--from: {where}: {group}.{key}", f"the record says {shown(was)}, its {group} "
                              f"{now.name!r} with its overrides gives {shown(is_now)}{more}", ANEW)
    return exp


def differences(then: Any, now: Any, prefix: str = "") -> list[tuple[str, Any, Any]]:
    """Every dotted key whose value differs between two nested dicts."""
    if isinstance(then, dict) and isinstance(now, dict):
        return [d for key in sorted(set(then) | set(now), key=str)
                for d in differences(then.get(key), now.get(key), f"{prefix}{key}." if prefix or key else "")]
    return [] if then == now else [(prefix.rstrip("."), then, now)]


def _recorded(cls: type[T], section: dict[str, object], name: str, where: Path) -> T:
    """A recorded profile/recipe/sweep read back through its schema; an error names the record and the field."""
    try:
        if "resolved" not in section:
            raise ConfigError(f"{name}.resolved", "is missing", "submit from an intact run directory")
        return from_dict(cls, section["resolved"], name)
    except ConfigError as err:
        raise ConfigError(f"--from: {where}: {err.setting}", err.problem, err.fix) from None
