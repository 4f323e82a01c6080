"""Enumerate parallel configurations for a cluster, drop those over the GPU's memory, rank the rest by predicted
throughput. Each candidate carries the ``--set`` overrides that reproduce it.

Candidates vary TP, PP, VPP (with generated pipeline layouts), CP, EP, ETP, MBS and the recompute modules; the rest
of the recipe (precision, dispatcher, switches) stays as given. A candidate must satisfy the structural rules of
``validate`` (divisibility, experts, layout, batch, A2A overlap's needs); the planner's caller re-checks the shown
ones with the full rules.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass

from .calibration import FITTED, Efficiency
from ..spec.gpus import GpuSpec
from .memory import peaks
from .setup import Setup, Stage, even_stages, layout_stages, with_changes
from .throughput import estimate_step

RECOMPUTE_CHOICES: tuple[tuple[str, ...], ...] = (
    (), ("mla_up_proj",), ("mla_up_proj", "mlp"), ("mla_up_proj", "mlp", "moe_act"),
    ("mla_up_proj", "mlp", "moe_act", "layernorm"), ("mla_up_proj", "mlp", "moe_act", "layernorm", "core_attn"),
    ("mla_up_proj", "mlp", "moe_act", "shared_experts", "layernorm"),
)
"""Recompute sets tried, cheapest first."""


@dataclass(frozen=True)
class Candidate:
    """One ranked configuration."""

    setup: Setup
    """The configuration."""
    layout: str | None
    """Pipeline layout string (None: Megatron's even split)."""
    peak_memory_gb: float
    """Allocator peak of the worst rank."""
    device_memory_gb: float
    """Allocator peak plus what lives outside it."""
    tflops_per_gpu: float
    """Predicted Megatron TFLOP/s/GPU."""
    tokens_per_s_per_gpu: float
    """Predicted tokens/s/GPU."""

    def overrides(self) -> list[str]:
        """``--set`` items that turn the recipe into this candidate."""
        s = self.setup
        items = [f"parallel.tp={s.tp}", f"parallel.pp={s.pp}", f"parallel.vpp={s.vpp}", f"parallel.cp={s.cp}",
                 f"parallel.ep={s.ep}", f"parallel.etp={s.etp}", f"training.micro_batch_size={s.mbs}"]
        items += [f"parallel.pipeline_layout={self.layout}" if self.layout else "parallel.pipeline_layout=null"]
        rec = sorted(s.recompute, key=_recompute_order)
        items += ([f"switches.recompute_modules=[{','.join(rec)}]", "switches.fine_grained_recompute=true"] if rec
                  else ["switches.fine_grained_recompute=false"])
        if not s.a2a_overlap:
            items += ["switches.ep_a2a_overlap=false", "switches.delay_wgrad_compute=false"]
        if s.tp * s.ep == 1:   # no peers: the flex dispatcher (DeepEP) is refused by Megatron, alltoall is a no-op
            items += ["switches.token_dispatcher=alltoall", "switches.deepep=false"]
        return items


def _recompute_order(name: str) -> int:
    order = ("mla_up_proj", "mlp", "moe_act", "shared_experts", "layernorm", "core_attn", "moe")
    return order.index(name) if name in order else len(order)


_SHARED = ("rank_params", "rank_stages")
"""Memo entries that depend only on TP, PP, VPP, the stages, EP and ETP."""


def divisors(n: int, limit: int | None = None) -> list[int]:
    """Divisors of n up to limit."""
    return [d for d in range(1, (limit or n) + 1) if n % d == 0]


def layouts(layers: int, mtp: int, stages: int, first_dense: int) -> list[tuple[str | None, tuple[Stage, ...]]]:
    """Pipeline layouts for ``stages`` virtual stages: the even split when layers divide, and layouts with the
    embedding and the loss stages lighter than the middle ones (like the guide's ``Et|(tt|)*30mL``)."""
    out: list[tuple[str | None, tuple[Stage, ...]]] = []
    if layers % stages == 0 and stages > 0:
        out.append((None, even_stages(layers, first_dense, mtp, stages)))
    if stages < 3:
        return out
    tail = "m" * mtp + "L"
    for first, last in itertools.product(range(0, 4), range(0, 3)):
        middle, rest = divmod(layers - first - last, stages - 2)
        if rest or middle < 1 or first > middle or last > middle or (first, last) == (middle, middle):
            continue
        text = f"E{'t' * first}|({'t' * middle}|)*{stages - 2}{'t' * last}{tail}"
        out.append((text, layout_stages(text, first_dense)))
    return out[:3]


def _structural_ok(s: Setup, experts: int, heads: int, gbs: int) -> bool:
    world = s.world
    if world % (s.tp * s.cp * s.pp) or world % (s.etp * s.ep * s.pp) or experts % s.ep or heads % s.tp:
        return False
    if s.cp > 1 and s.seq % (2 * s.cp):
        return False
    dp = world // (s.tp * s.cp * s.pp)
    if gbs % (s.mbs * dp):
        return False
    if s.a2a_overlap and (s.ep == 1 or (s.pp > 1 and s.vpp == 1) or "moe" in s.recompute):
        return False
    return True


def candidates(base: Setup, gpus_per_node: int, max_pp: int = 16, mbs_choices: tuple[int, ...] = (1, 2, 4),
               cp_choices: tuple[int, ...] = (1, 2)) -> Iterator[tuple[str | None, Setup]]:
    """Every structurally valid variation of ``base`` (TP, PP, VPP + layout, CP, EP, ETP, MBS, recompute)."""
    for tp in divisors(gpus_per_node):
        for pp in [p for p in divisors(base.world // tp, max_pp)]:
            for vpp in (1, 2, 4, 8):
                if pp == 1 and vpp > 1:
                    continue
                for text, stages in layouts(base.layers, base.mtp, pp * vpp, base.first_dense):
                    yield from _inner(base, tp, pp, vpp, text, stages, mbs_choices, cp_choices)


def _inner(base: Setup, tp: int, pp: int, vpp: int, text: str | None, stages: tuple[Stage, ...],
           mbs_choices: tuple[int, ...], cp_choices: tuple[int, ...]) -> Iterator[tuple[str | None, Setup]]:
    shared: dict[tuple[int, int], dict[object, object]] = {}  # per (ETP, EP): what does not vary with CP/MBS/recompute
    for cp, mbs, etp in itertools.product(cp_choices, mbs_choices, sorted({1, tp})):
        for ep in divisors(base.experts, base.world // (pp * etp)):
            overlap = base.a2a_overlap and ep > 1 and (pp == 1 or vpp > 1)
            for rec in RECOMPUTE_CHOICES:
                s = with_changes(base, tp=tp, pp=pp, vpp=vpp, cp=cp, ep=ep, etp=etp, mbs=mbs, sp=tp > 1,
                                 stages=stages, recompute=frozenset(rec), a2a_overlap=overlap)
                if _structural_ok(s, base.experts, base.heads, base.gbs):
                    s.memo.update(shared.setdefault((etp, ep), {}))
                    yield text, s
                    shared[(etp, ep)] = {k: v for k, v in s.memo.items() if isinstance(k, tuple) and k[0] in _SHARED}


@dataclass(frozen=True)
class PlanResult:
    """The planner's answer."""

    ranked: list[Candidate]
    """Candidates that fit, fastest first."""
    evaluated: int
    """Configurations evaluated (memory and, where it fits, speed)."""
    over_memory: int
    """Configurations dropped for memory."""


def plan(base: Setup, gpu: GpuSpec, margin: float = 0.05, eff: Efficiency = FITTED,
         **choices: object) -> PlanResult:
    """Evaluate every candidate; keep those within ``(1 - margin) x`` the GPU's memory; fastest first."""
    limit, kept, evaluated, over = gpu.memory_gb * (1.0 - margin), [], 0, 0
    for text, s in candidates(base, base.gpus_per_node, **choices):  # type: ignore[arg-type]
        evaluated += 1
        allocated, device = peaks(s)
        if device > limit:
            over += 1
            continue
        step = estimate_step(s, gpu, eff)
        kept.append(Candidate(s, text, allocated, device, step.tflops_per_gpu, step.tokens_per_s_per_gpu))
    kept.sort(key=lambda c: -c.tflops_per_gpu)
    return PlanResult(kept, evaluated, over)


def _recompute_fix(s: Setup, modules: set[str]) -> tuple[str, Setup]:
    rec = sorted(modules, key=_recompute_order)
    added = ", ".join(m for m in rec if m not in s.recompute)
    return (f"recompute {added} (--set switches.fine_grained_recompute=true "
            f"--set switches.recompute_modules=[{','.join(rec)}])", with_changes(s, recompute=frozenset(rec)))


def fixes(s: Setup) -> list[tuple[str, Setup]]:
    """Ways to lower memory: one more recompute module, then several, a smaller MBS, more PP, more EP."""
    order = ("moe_act", "layernorm", "mla_up_proj", "mlp", "shared_experts", "core_attn")
    missing = [m for m in order if m not in s.recompute and not (m == "layernorm" and not s.fp8)]
    out = [_recompute_fix(s, set(s.recompute) | {m}) for m in missing]
    out += [_recompute_fix(s, set(s.recompute) | set(missing[:n])) for n in range(2, len(missing) + 1)]
    if s.mbs > 1:
        out.append((f"a smaller micro-batch (--set training.micro_batch_size={s.mbs // 2})",
                    with_changes(s, mbs=s.mbs // 2)))
    if s.world % (s.tp * s.cp * s.pp * 2) == 0 and s.layers % (s.pp * 2 * s.vpp) == 0:
        stages = even_stages(s.layers, s.first_dense, s.mtp, s.pp * 2 * s.vpp)
        out.append((f"more pipeline stages (--set parallel.pp={s.pp * 2} and a layout of {s.pp * 2 * s.vpp} stages)",
                    with_changes(s, pp=s.pp * 2, stages=stages)))
    if s.experts % (s.ep * 2) == 0 and s.world % (s.etp * s.ep * 2 * s.pp) == 0:
        out.append((f"more expert parallelism (--set parallel.ep={s.ep * 2})", with_changes(s, ep=s.ep * 2)))
    return out
