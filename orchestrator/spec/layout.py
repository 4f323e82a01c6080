"""The flexible pipeline-layout grammar of Megatron (``--pipeline-model-parallel-layout``).

A layout lists the pipeline stages separated by ``|``; inside a stage ``E`` is the embedding, ``t`` a transformer
layer, ``m`` an MTP layer and ``L`` the loss. ``X*n`` repeats one symbol, ``(...)*n`` a group (which may contain
``|``); commas are cosmetic. ``Et|(tt|)*30mL`` is 32 stages: ``Et``, thirty ``tt`` and ``mL``. Stage ``s`` runs on
pipeline rank ``s % PP`` as its virtual stage ``s // PP``.
"""

from __future__ import annotations

from dataclasses import dataclass

SYMBOLS = {"E": "embedding", "t": "transformer layer", "m": "MTP layer", "L": "loss"}


class LayoutError(ValueError):
    """The layout string does not follow the grammar."""


@dataclass(frozen=True)
class Layout:
    """A parsed layout."""

    stages: tuple[str, ...]
    """Each stage's symbols, in pipeline order."""

    @property
    def num_stages(self) -> int:
        return len(self.stages)

    def count(self, symbol: str) -> int:
        return sum(stage.count(symbol) for stage in self.stages)

    @property
    def num_layers(self) -> int:
        return self.count("t")

    @property
    def num_mtp(self) -> int:
        return self.count("m")

    def stage_of(self, pp_rank: int, vpp_rank: int, pp: int) -> str:
        return self.stages[vpp_rank * pp + pp_rank]


MAX_SYMBOLS = 100_000
"""The most symbols a layout may expand to (10,000 layers and their stage marks fit many times over)."""


def expand(text: str) -> str:
    """Unroll ``X*n`` and ``(...)*n`` (nested groups allowed) into a flat string."""
    out, pos = _expand_seq(text.replace(",", "").replace(" ", ""), 0)
    if pos != len(text.replace(",", "").replace(" ", "")):
        raise LayoutError(f"unbalanced ')' at position {pos}")
    return out


def _expand_seq(text: str, pos: int) -> tuple[str, int]:
    out: list[str] = []
    size = 0
    while pos < len(text) and text[pos] != ")":
        if text[pos] == "(":
            inner, pos = _expand_seq(text, pos + 1)
            if pos >= len(text):
                raise LayoutError("missing ')'")
            item, pos = inner, pos + 1
        elif text[pos] in SYMBOLS or text[pos] == "|":
            item, pos = text[pos], pos + 1
        else:
            raise LayoutError(f"unknown symbol {text[pos]!r} at position {pos} (known: E t m L | ( ) *n)")
        count, pos = _repeat(text, pos)
        size += len(item) * count
        if size > MAX_SYMBOLS:   # refused before the string is built: `t*1000000000000` allocates nothing
            raise LayoutError(f"expands to more than {MAX_SYMBOLS} symbols (a repeat count too large?)")
        out.append(item * count)
    return "".join(out), pos


def _repeat(text: str, pos: int) -> tuple[int, int]:
    if pos >= len(text) or text[pos] != "*":
        return 1, pos
    end = pos + 1
    while end < len(text) and text[end] in "0123456789":
        end += 1
    if end == pos + 1:
        raise LayoutError(f"'*' at position {pos} is not followed by a count")
    return int(text[pos + 1:end]), end


def in_force(text: str | None) -> str | None:
    """The layout Megatron is given: ``parallel.pipeline_layout`` when one is given, else None (an even split of the
    layers). The one place that decides it; rendering and every rule ask here."""
    return text.strip() or None if text else None


def parse(text: str) -> Layout:
    """Parse a layout string."""
    if not text.strip():
        raise LayoutError("empty layout")
    return Layout(tuple(expand(text).split("|")))


def check(layout: Layout, pp: int, vpp: int, num_layers: int, mtp_layers: int) -> list[str]:
    """Every way the layout disagrees with the model and the parallelism (empty when consistent)."""
    problems = []
    if layout.num_stages != pp * vpp:
        problems.append(f"has {layout.num_stages} stages but PP×VPP = {pp}×{vpp} = {pp * vpp}")
    if layout.num_layers != num_layers:
        problems.append(f"places {layout.num_layers} transformer layers ('t') but the model has {num_layers}")
    if layout.num_mtp != mtp_layers:
        problems.append(f"places {layout.num_mtp} MTP layers ('m') but the model has {mtp_layers}")
    flat = "".join(layout.stages)
    if not flat.startswith("E") or layout.count("E") != 1:
        problems.append("must start with the embedding 'E', exactly once")
    if not flat.endswith("L") or layout.count("L") != 1:
        problems.append("must end with the loss 'L', exactly once")
    if "m" in flat and "t" in flat[flat.index("m"):]:
        problems.append("places transformer layers after an MTP layer")
    return problems

