"""The one plain-text table and JSON writer that ``status`` and ``report`` print rows with."""

from __future__ import annotations

import json
import math
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
    """Dataclass rows as an indented JSON list; a NaN or infinite figure is null (bare NaN is not JSON)."""
    return json.dumps(_finite([asdict(r) for r in rows]), indent=2, allow_nan=False)


def _finite(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value
