"""The estimator's free constants: achieved fractions of the GPU table's peaks. Fitted by
``benchmarks/estimator_evidence.py --fit`` on the runs of ``FIT_SETS``; the other runs test them."""

from __future__ import annotations

from dataclasses import dataclass, fields

FIT_SETS = ("2026-11-28-h200x2", "2026-12-02-h200-points-realdata")
"""Result directories under ``benchmarks/results/`` whose runs fit the constants; every other run tests them."""


@dataclass(frozen=True)
class Efficiency:
    """What a GPU achieves of its table's peaks."""

    gemm_bf16: float = 0.68
    """Fraction of the BF16 peak reached by large BF16 GEMMs (linear layers, logits) and fused attention."""
    gemm_fp8: float = 0.45
    """Fraction of the FP8 peak reached by large FP8 blockwise GEMMs, quantization included."""
    gemm_m_half: float = 2048.0
    """Token rows M at which a GEMM runs at half its large-GEMM rate: achieved rate = ``peak x fraction x M /
    (M + gemm_m_half)``. Equivalently a fixed cost per GEMM call the size of ``gemm_m_half`` token rows (weight-sized
    work that does not scale with tokens: FP8 casts and transposes of the weight, fp32 gradient accumulation, launch
    gaps), which a larger micro-batch amortises. M is the micro-batch's tokens for attention, dense MLP, shared
    expert and logits, and each local expert's rows (``throughput.expert_rows``) for routed experts. Fitted since
    the 1-GPU points of 2026-12-02 (MBS 1/2/4, sequence 1024-8192) tell it apart from the GEMM fractions."""
    memory_bound: float = 6.0
    """Bytes moved by element-wise kernels (norms, RoPE, SwiGLU, permute, softmax, casts) per byte of activation
    saved, at the GPU's memory bandwidth."""
    link: float = 0.4645
    """Fraction of NVLink / network bandwidth achieved by all-to-all and collectives (the default is the value fitted
    on the EP2 runs of 2026-11-28; held there since, as the 1-GPU points have no communication)."""
    a2a_hidden: float = 0.5458
    """Fraction of the EP all-to-all hidden behind another micro-batch's compute with EP A2A overlap (held as
    ``link``)."""
    layer_fixed_s: float = 0.001
    """Seconds per layer and micro-batch (forward + backward) that do not scale with its tokens: kernel launches
    and host work between them, which small micro-batches feel most."""

    def as_dict(self) -> dict[str, float]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


FITTED = Efficiency(gemm_bf16=0.6635, gemm_fp8=0.3796, gemm_m_half=1387.6191, memory_bound=8.1854, link=0.4645,
                    a2a_hidden=0.5458, layer_fixed_s=0.0005)
"""The constants in use (written by the fit; see benchmarks/results/estimator/README.md)."""
