"""Slurm's time format, parsed in one place: a profile's ``time_limit`` (``sbatch --time``) and the durations
Slurm prints (``sacct``'s ``Elapsed``).

Slurm reads ``MM``, ``MM:SS``, ``HH:MM:SS``, ``D-HH``, ``D-HH:MM`` and ``D-HH:MM:SS``: a bare number is minutes
(``30`` is half an hour everywhere in the toolkit, the local back-end's timeout included).
"""

from __future__ import annotations

import math
import re

_TIME = re.compile(r"(?:(?P<d>\d{1,3})-(?P<dh>\d{1,2})(?::(?P<dm>\d{1,2})(?::(?P<ds>\d{1,2}))?)?"
                   r"|(?P<h>\d{1,4}):(?P<hm>\d{1,2}):(?P<hs>\d{1,2})"
                   r"|(?P<m>\d{1,6})(?::(?P<ms>\d{1,2}))?)")
FIX = "write a Slurm time: MM, MM:SS, HH:MM:SS, D-HH, D-HH:MM or D-HH:MM:SS (quoted in YAML)"


def seconds(text: str) -> int:
    """A Slurm time → seconds. ValueError for anything Slurm would not read, and for minutes or seconds past 59
    (hours past 23) after a larger unit."""
    match = _TIME.fullmatch(str(text).strip())
    if match is None:
        raise ValueError(f"not a Slurm time: {text!r}")
    g = {k: int(v) for k, v in match.groupdict().items() if v is not None}
    days, hours = g.get("d", 0), g.get("dh", g.get("h", 0))
    minutes, secs = g.get("dm", g.get("hm", g.get("m", 0))), g.get("ds", g.get("hs", g.get("ms", 0)))
    if ("d" in g and hours > 23) or (("d" in g or "h" in g) and minutes > 59) or secs > 59:
        raise ValueError(f"not a Slurm time: {text!r} (hours < 24 after days, minutes and seconds < 60)")
    return ((days * 24 + hours) * 60 + minutes) * 60 + secs


def limit_seconds(text: str) -> int:
    """A time limit (``profile.time_limit``) → seconds; ValueError also for a zero limit."""
    total = seconds(text)
    if total < 1:
        raise ValueError(f"not a Slurm time: {text!r} is zero")
    return total


def limit_minutes(text: str) -> int:
    """A time limit → whole minutes, a part minute rounded up (what Slurm itself grants)."""
    return math.ceil(limit_seconds(text) / 60)


def elapsed_seconds(text: str | None) -> int | None:
    """A duration Slurm printed (``Elapsed``: ``[D-]HH:MM:SS``, ``MM:SS``, maybe ``.mmm``) → seconds; None for
    ``UNLIMITED``, ``INVALID`` or empty."""
    try:
        return seconds(re.sub(r"\.\d+$", "", (text or "").strip()))
    except ValueError:
        return None
