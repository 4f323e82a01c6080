"""Megatron iteration and memory lines -> typed records, built hundreds of lines at a time.

``logparse`` locates the lines while reading and keeps them raw; the functions here turn them into
``IterationRecord``/``MemoryReport`` on first use. Records are built column by column (C-level bytes operations
split the lines at their separators, a field is a stride slice of the tokens converted by one ``map``); lines of
another layout take the field-by-field reading (``_record``), which gives the same results. Standard library only.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from functools import lru_cache
from itertools import groupby, repeat
from operator import itemgetter, lt
from typing import Any

ELAPSED_NEEDLE = b"elapsed time per iteration (ms)"
"""In every iteration line: a line ``iteration N/ M | ...`` without it is not one."""
ITERATION_LINE_RE = re.compile(rb"iteration +\d+/ *\d+ \|[^\n]*")
_ITER_RE = re.compile(rb"iteration +(\d+)/ *(\d+) \|([^\n]*)")
_FIELD_RE = re.compile(rb"\| ([^|:]+): +([^|]*?) *(?=\|)")
_COLUMNS: dict[bytes, str] = {
    b" consumed samples": "consumed", b" " + ELAPSED_NEEDLE: "elapsed", b" throughput per GPU (TFLOP/s/GPU)": "tflops",
    b" learning rate": "lr", b" global batch size": "gbs", b" grad norm": "grad_norm", b" loss scale": "loss_scale",
    b" number of skipped iterations": "skipped", b" number of nan iterations": "nans"}
"""Fields kept, other than losses, by their name as ``_column_records`` splits it out -> column."""
_INT_COLUMNS = frozenset({"consumed", "gbs", "skipped", "nans"})
_COLON_TO_BAR = bytes.maketrans(b":", b"|")
_NOT_SEPARATORS = bytes(c for c in range(256) if c not in b":|\n")
_CHUNK, _MIN_CHUNK = 512, 32
"""Iteration lines built at once; lines of several layouts are halved down to ``_MIN_CHUNK``, then read one by one."""
DENSE_LINE_BYTES = 800
"""A block is kept whole when its iteration lines x this exceed its size (at ~400 bytes a line they fill half)."""
_MEM_RE = re.compile(
    rb"\[Rank (\d+)\] \(after (\d+) iterations\) memory \(MB\) \| allocated: ([\d.]+) \| max allocated: "
    rb"([\d.]+) \| reserved: ([\d.]+) \| max reserved: ([\d.]+)")
MEMORY_NEEDLE = b") memory (MB) | allocated: "
"""The longest literal of ``_MEM_RE``: a longer needle makes the substring search skip faster."""

@dataclass(slots=True)
class IterationRecord:
    """One Megatron iteration log line (``log_interval`` iterations averaged by Megatron itself)."""

    iteration: int
    """Iteration number as printed (``iteration N/ M``)."""
    train_iters: int
    """Total iterations the run was asked for (the ``M`` of ``N/ M``)."""
    elapsed_ms: float | None
    """``elapsed time per iteration (ms)``."""
    tflops_per_gpu: float | None
    """``throughput per GPU (TFLOP/s/GPU)`` as Megatron computed it (None without ``--log-throughput``)."""
    learning_rate: float | None
    """``learning rate``."""
    global_batch_size: int | None
    """``global batch size`` (samples per iteration; follows batch-size ramp-up)."""
    lm_loss: float | None
    """``lm loss``."""
    mtp_loss: float | None
    """``mtp_1 loss`` (first multi-token-prediction head), None without MTP."""
    load_balancing_losses: dict[str, float]
    """MoE auxiliary losses by name: ``load_balancing_loss``, ``seq_load_balancing_loss``, ``z_loss`` ..."""
    losses: dict[str, float]
    """Every ``... loss`` field of the line by its printed name (``lm loss``, ``mtp_1 loss``, ...)."""
    grad_norm: float | None
    """``grad norm``."""
    loss_scale: float | None
    """``loss scale``."""
    skipped_iterations: int
    """``number of skipped iterations`` in this log interval."""
    nan_iterations: int
    """``number of nan iterations`` in this log interval."""
    consumed_samples: int | None
    """``consumed samples`` so far."""
    tokens_per_s_per_gpu: float | None
    """Derived: GBS x seq_length / (iteration seconds x world size); None when the argument dump is missing."""


@dataclass(frozen=True, slots=True)
class MemoryReport:
    """One ``[Rank R] (after N iterations) memory (MB) | ...`` line; Megatron's MB are MiB (2**20 bytes)."""

    rank: int
    """Global rank that printed the line (one per model-parallel rank, data-parallel rank 0)."""
    after_iterations: int
    """The ``N`` of ``(after N iterations)``."""
    allocated_mb: float
    """``allocated``: memory held by tensors now."""
    max_allocated_mb: float
    """``max allocated``: peak memory held by tensors so far."""
    reserved_mb: float
    """``reserved``: memory held by the caching allocator now."""
    max_reserved_mb: float
    """``max reserved``: peak of ``reserved``."""

@lru_cache(maxsize=None)
def _loss_entry(key: bytes) -> tuple[str, bool]:
    """A field name as printed -> (loss name, or '' when the field is not a loss; is a load-balancing loss)."""
    name = key.strip().decode(errors="replace")
    is_loss = "loss" in name and name != "loss scale"
    return name if is_loss else "", is_loss and ("balancing" in name or "z_loss" in name)

def _num(text: bytes) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


def _int(text: bytes) -> int | None:
    """An integer field, read through float as Megatron may print ``8.0``; None unless a finite number."""
    value = _num(text)
    return int(value) if value is not None and math.isfinite(value) else None

def _record(line: bytes, tokens_per_iter: float | None) -> IterationRecord | None:
    """An iteration line read field by field: the reference reading, used for lines of an unusual layout."""
    m = _ITER_RE.search(line)
    if not m or ELAPSED_NEEDLE not in m[3]:
        return None
    fields = dict(_FIELD_RE.findall(b"|" + m[3]))
    get = fields.get
    losses: dict[str, float] = {}
    balancing: dict[str, float] = {}  # the MoE load-balancing losses among them
    for key, raw in fields.items():
        name, is_balancing = _loss_entry(key)
        if name and (value := _num(raw)) is not None:
            losses[name] = value
            if is_balancing:
                balancing[name] = value
    elapsed, gbs = _num(get(ELAPSED_NEEDLE, b"")), _int(get(b"global batch size", b""))
    return IterationRecord(
        int(m[1]), int(m[2]), elapsed, _num(get(b"throughput per GPU (TFLOP/s/GPU)", b"")),
        _num(get(b"learning rate", b"")), gbs, losses.get("lm loss"), losses.get("mtp_1 loss"),
        balancing, losses, _num(get(b"grad norm", b"")), _num(get(b"loss scale", b"")),
        _int(get(b"number of skipped iterations", b"0")) or 0, _int(get(b"number of nan iterations", b"0")) or 0,
        _int(get(b"consumed samples", b"")),
        gbs * tokens_per_iter * 1000.0 / elapsed if tokens_per_iter and gbs and elapsed else None)


def _column_records(lines: list[bytes], tokens_per_iter: float | None) -> list[IterationRecord]:
    """Records of iteration lines of one layout, built column by column, equal to ``_record``'s; else ValueError.

    When every line holds the same run of separators (``|``, then ``:|`` per field) and each colon is followed by
    a space, splitting the lines at them gives each line the same number of tokens: ``iteration N/ M``, then the
    name and the value of each field as ``_FIELD_RE`` reads them. A field is then a stride slice of the tokens."""
    n = len(lines)
    text = b"\n".join(lines) + b"\n"
    tokens = text.translate(_COLON_TO_BAR).split(b"|")
    width = (len(tokens) - 1) // n
    fields, end = width // 2, n * width
    if (not width % 2 or len(tokens) != end + 1 or text.count(b": ") != n * fields
            or text.translate(None, _NOT_SEPARATORS) != (b"|" + b":|" * fields + b"\n") * n):
        raise ValueError("iteration lines of several layouts")
    numbers = b"".join(tokens[0:end:width]).replace(b"iteration", b"/").split(b"/")  # '', N, M, N, M ...
    if len(numbers) != 2 * n + 1:
        raise ValueError("text after the last field")
    cols: dict[str, list[Any]] = {}
    losses: dict[str, list[Any]] = {}  # a repeated loss keeps its first place and its last value, as in _record
    balancing: list[str] = []
    for at in range(1, width, 2):
        names = tokens[at:end:width]
        key = names[0]
        if names.count(key) != n:
            raise ValueError("iteration lines of several layouts")
        if column := _COLUMNS.get(key):
            cols[column] = _numbers(tokens[at + 1:end:width], column in _INT_COLUMNS)
        elif (loss := _loss_entry(key))[0]:  # any other field is left out, as _record leaves it
            if key != b" " + key.strip():  # _record reads it after "| " and strips it
                raise ValueError(f"field {key!r}")
            losses[loss[0]] = _numbers(tokens[at + 1:end:width], False)
            if loss[1] and loss[0] not in balancing:
                balancing.append(loss[0])
    gbs, elapsed = cols.get("gbs"), cols.get("elapsed")
    if elapsed is None:
        raise ValueError("lines without the iteration time")
    none, zero = repeat(None), repeat(0)
    return list(map(
        IterationRecord, map(int, numbers[1::2]), map(int, numbers[2::2]), elapsed, cols.get("tflops", none),
        cols.get("lr", none), gbs or none, losses.get("lm loss", none), losses.get("mtp_1 loss", none),
        _dicts(balancing, [losses[name] for name in balancing], n), _dicts(list(losses), list(losses.values()), n),
        cols.get("grad_norm", none), cols.get("loss_scale", none), cols.get("skipped", zero),
        cols.get("nans", zero), cols.get("consumed", none),
        [g * tokens_per_iter * 1000.0 / e if g and e else None for g, e in zip(gbs, elapsed)]
        if tokens_per_iter and gbs else none))


def _numbers(tokens: list[bytes], as_int: bool) -> list[Any]:
    """One field's values as ``_record`` reads them (ints through float); a value repeated throughout, once."""
    if len(tokens) > 1 and tokens.count(tokens[0]) == len(tokens):
        return _numbers(tokens[:1], as_int) * len(tokens)
    return list(map(int, map(float, tokens))) if as_int else list(map(float, tokens))


def _dicts(names: list[str], columns: list[list[Any]], n: int) -> list[dict[str, float]]:
    """One dict per line from columns of values."""
    return list(map(dict, map(zip, repeat(names), zip(*columns)))) if columns else [{} for _ in range(n)]


def _build(lines: list[bytes], tokens_per_iter: float | None) -> list[IterationRecord]:
    """Records of iteration lines: column by column where their layouts allow it, else line by line."""
    try:
        return _column_records(lines, tokens_per_iter)
    except (ValueError, OverflowError):
        if len(lines) > _MIN_CHUNK:
            half = len(lines) // 2
            return _build(lines[:half], tokens_per_iter) + _build(lines[half:], tokens_per_iter)
        return [rec for line in lines if (rec := _record(line, tokens_per_iter))]


Piece = tuple[float | None, bytes]
"""Raw text holding iteration lines, and the tokens per sample and second (seq_length / world_size) for them."""


def records_of(pieces: list[Piece]) -> list[IterationRecord]:
    """Records of the iteration lines of raw pieces, in log order."""
    out: list[IterationRecord] = []
    for tokens_per_iter, group in groupby(pieces, key=itemgetter(0)):  # the pieces under one argument dump
        lines: list[bytes] = []
        for _, text in group:
            lines += ITERATION_LINE_RE.findall(text)
            full = len(lines) - len(lines) % _CHUNK
            for at in range(0, full, _CHUNK):
                out += _build(lines[at:at + _CHUNK], tokens_per_iter)
            del lines[:full]
        out += _build(lines, tokens_per_iter) if lines else []
    return out


def latest_by_iteration(pieces: list[Piece]) -> list[IterationRecord]:
    """Records ordered by iteration; a repeated iteration (restart) keeps its latest line."""
    records = records_of(pieces)
    iters = [r.iteration for r in records]
    if all(map(lt, iters, iters[1:])):
        return records
    by_iter = {r.iteration: r for r in records}
    return [by_iter[i] for i in sorted(by_iter)]


def memory_reports(lines: list[bytes]) -> list[MemoryReport]:
    """The memory report of each line (its first), in log order."""
    return [MemoryReport(int(m[1]), int(m[2]), float(m[3]), float(m[4]), float(m[5]), float(m[6]))
            for m in map(_MEM_RE.search, lines) if m]
