"""The preflight payload's per-rank JSON reports, read back from a run: its ``preflight/rank-N.json`` files first,
its logs for any rank without a file (a node that could not write to the run directory still logged its line)."""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

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


def reports(logs: Iterable[str]) -> list[dict[str, Any]]:
    """Every rank's report in these log files, by rank."""
    found = []
    for log in logs:
        with open(log, errors="replace") as handle:
            found += [obj for line in handle if _MARK in line for obj in report_objects(line)]
    return sorted(found, key=lambda r: int(r.get("rank", 0)))


def report_files(run_dir: str | Path) -> list[dict[str, Any]]:
    """The reports the ranks wrote to ``RUN_DIR/preflight/rank-N.json`` (unreadable ones skipped: the count says so)."""
    found = []
    for path in sorted(Path(run_dir, "preflight").glob("rank-*.json")):
        try:
            found.append(json.loads(path.read_text()))
        except (OSError, ValueError):
            continue
    return found


def collect(run_dir: str | Path, logs: Iterable[str]) -> list[dict[str, Any]]:
    """One report per rank, by rank: the rank's file where it wrote one, else its line in the logs."""
    by_rank = {int(r.get("rank", 0)): r for r in reports(logs)}
    by_rank.update({int(r.get("rank", 0)): r for r in report_files(run_dir)})
    return [by_rank[rank] for rank in sorted(by_rank)]


def summary(report: dict[str, Any]) -> str:
    """One line per rank: its checks and what bound it."""
    allreduce = report.get("allreduce") or {}
    margs = report.get("megatron_args") or {}
    return (f"rank {report.get('rank')}/{report.get('world_size')} {report.get('host')}: "
            f"{'ok' if report.get('ok') else 'FAILED'}, all-reduce "
            f"{'ok' if allreduce.get('ok') else 'FAILED'} ({allreduce.get('backend')}), "
            f"binding: {report.get('binding')}, megatron args: {margs.get('message')}")
