"""The one plain-text table and JSON writer that ``status`` and ``report`` print rows with."""

from __future__ import annotations

import json
from collections.abc import Collection, Sequence
from dataclasses import asdict
from typing import Any


def table(headers: Sequence[str], cells: Sequence[Sequence[str]], right: Collection[int] = (),
          free_last: bool = False) -> str:
    """Columns padded to their widest cell (``right``: right-aligned column indices), trailing blanks stripped.

    ``free_last``: the last column is not widened to its cells (a long error text does not pad the header line).
    """
    widths = [max([len(h)] + [len(c[i]) for c in cells]) for i, h in enumerate(headers)]
    if free_last and widths:
        widths[-1] = len(headers[-1])

    def line(values: Sequence[str]) -> str:
        return "  ".join(v.rjust(w) if i in right else v.ljust(w) for i, (v, w) in enumerate(zip(values, widths)))

    return "\n".join(line(row).rstrip() for row in [headers, *cells])


def to_json(rows: Sequence[Any]) -> str:
    """Dataclass rows as an indented JSON list."""
    return json.dumps([asdict(r) for r in rows], indent=2)
