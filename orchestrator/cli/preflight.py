"""``orchestrator preflight``: the short job that proves rendezvous, binding, GPUs, versions and Megatron's args."""

from __future__ import annotations

import json
from typing import Any

import click

from ..submit import launch
from ..observe import status
from .common import EXIT_FAILED, experiment_options, handle_config_errors, load
from .submit import print_submission, submission_errors


_MARK = '{"preflight"'
_DECODER = json.JSONDecoder()


def report_objects(line: str) -> list[dict[str, Any]]:
    """The preflight reports in one log line: anywhere in it, several when ranks' output got glued together."""
    found, at = [], line.find(_MARK)
    while at >= 0:
        try:
            obj, end = _DECODER.raw_decode(line, at)
            found.append(obj)
        except json.JSONDecodeError:   # cut by other output: skipped (the rank count check then names it)
            end = at + len(_MARK)
        at = line.find(_MARK, end)
    return found


def reports(rows: list[status.Row]) -> list[dict[str, Any]]:
    """The per-rank JSON reports the preflight payload printed."""
    found = []
    for row in rows:
        if not row.log:
            continue
        with open(row.log, errors="replace") as handle:
            found += [obj for line in handle if _MARK in line for obj in report_objects(line)]
    return sorted(found, key=lambda r: int(r.get("rank", 0)))


def summary(report: dict[str, Any]) -> str:
    allreduce = report.get("allreduce") or {}
    margs = report.get("megatron_args") or {}
    return (f"rank {report.get('rank')}/{report.get('world_size')} {report.get('host')}: "
            f"{'ok' if report.get('ok') else 'FAILED'}, all-reduce "
            f"{'ok' if allreduce.get('ok') else 'FAILED'} ({allreduce.get('backend')}), "
            f"binding: {report.get('binding')}, megatron args: {margs.get('message')}")


@click.command("preflight")
@experiment_options
@click.option("--no-wait", is_flag=True, help="submit and return (see `orchestrator status` / `logs`)")
@handle_config_errors
def preflight(profile: str, recipe: str | None, overrides: tuple[str, ...], profiles_dir: str | None,
              recipes_dir: str | None, no_wait: bool) -> None:
    """Run the preflight payload with PROFILE + RECIPE's allocation; exit 1 if any rank's check failed."""
    exp = load(profile, recipe, overrides, profiles_dir, recipes_dir)
    with submission_errors():
        sub = launch.submit_run(exp, list(overrides), preflight=True)
    print_submission(sub)
    if no_wait:
        return
    rows = status.follow([sub.run_dir], interval_s=1.0)
    found = reports(rows)
    for report in found:
        click.echo(summary(report))
    if found:
        click.echo(f"versions: {json.dumps(found[0].get('versions'))}")
        for lack in found[0].get("lacks") or []: 
            click.echo(f"lacks: {lack}")
    expected = exp.world_size
    if not all(r.ok for r in rows) or len(found) != expected or not all(r.get("ok") for r in found):
        click.echo(f"preflight FAILED: {len(found)}/{expected} rank reports, job state "
                   f"{', '.join(r.state for r in rows)}; see {sub.run_dir}/logs", err=True)
        raise SystemExit(EXIT_FAILED)
    click.echo(f"preflight ok: {len(found)} ranks")
