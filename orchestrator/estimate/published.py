"""Published DeepSeek-V3 rows of the Megatron-Bridge performance summary (docs/performance-summary*.md of
NVIDIA-NeMo/Megatron-Bridge), used as checks of the estimator beyond the measured runs. Force-balanced routing,
dropless; MTP as the row says."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class PublishedRow:
    """One row: the system, its configuration and the published throughput."""

    release: str
    """NeMo container release of the row."""
    gpu: str
    """GPU type (the table's key)."""
    gpus: int
    """GPUs."""
    precision: str
    """``bf16``, ``fp8`` (H100 blockwise 128x128 / 1x128) or ``mxfp8`` (Blackwell; modelled as FP8)."""
    gbs: int
    """Global batch size."""
    tp: int
    """Tensor parallel."""
    pp: int
    """Pipeline parallel."""
    vpp: int
    """Virtual stages per pipeline rank."""
    ep: int
    """Expert parallel."""
    mtp: bool
    """MTP layer on."""
    tokens_per_s_per_gpu: float
    """Published tokens/s/GPU."""
    tflops_per_gpu: float
    """Published model TFLOP/s/GPU."""


ROWS: tuple[PublishedRow, ...] = (
    # the blockwise figure: the row says "338 (330)", the parenthesis for 128x128 weight and 1x128 activation
    # scaling (DeepSeek-V3's own, the recipe's --fp8-recipe blockwise); its tokens/s is the row's 1297 scaled by
    # 330/338 (the row gives no blockwise tokens/s)
    PublishedRow("25.09", "h100", 1024, "fp8", 8192, 2, 8, 4, 64, True, 1266, 330),
    PublishedRow("25.11", "gb200", 256, "bf16", 4096, 1, 4, 4, 64, False, 3139, 782),
    PublishedRow("25.11", "gb200", 256, "mxfp8", 4096, 1, 8, 4, 32, False, 4018, 1003),
    PublishedRow("25.11", "b200", 256, "mxfp8", 2048, 1, 16, 1, 8, True, 2139, 557),
    PublishedRow("26.02", "gb200", 256, "mxfp8", 4096, 1, 4, 4, 64, True, 3955, 1028),
    PublishedRow("26.02", "b200", 256, "mxfp8", 4096, 1, 16, 1, 8, True, 2689, 699),
)
"""The rows used; the H100 row is the seed guide's own configuration (TP2 PP8 VPP4 EP64, MBS 1)."""
