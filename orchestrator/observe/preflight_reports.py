"""The preflight payload's per-rank JSON reports, read back from a run's logs."""

from __future__ import annotations

import json
from collections.abc import Iterable
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


def summary(report: dict[str, Any]) -> str:
    """One line per rank: its checks and what bound it."""
    allreduce = report.get("allreduce") or {}
    margs = report.get("megatron_args") or {}
    return (f"rank {report.get('rank')}/{report.get('world_size')} {report.get('host')}: "
            f"{'ok' if report.get('ok') else 'FAILED'}, all-reduce "
            f"{'ok' if allreduce.get('ok') else 'FAILED'} ({allreduce.get('backend')}), "
            f"binding: {report.get('binding')}, megatron args: {margs.get('message')}")
