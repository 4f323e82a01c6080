"""Streaming parser of Megatron-LM training output: iteration lines, memory reports, the argument dump.

The parser reads bytes in large blocks of whole lines. Each block is first probed with substring searches
(``bytes.count``/``bytes.find`` run at memory speed); a regular expression runs only over blocks, or lines, that
hold its literal, so lines that match nothing cost almost nothing. Iteration lines of Megatron's usual shape are
read by one regex match each (a field-by-field path handles any other shape). The argument dump is kept as raw
bytes and decoded once, at the end. Rank prefixes written by ``srun --label`` (``0: ``), ``torchrun --tee``
(``[default0]:``) or torch (``[rank0]:``) need no stripping: patterns are searched for, not anchored at the line
start, which also catches an iteration line glued to the end of another rank's line. Standard library only.
"""

from __future__ import annotations

import ast
import os
import re
import statistics
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Iterator

BLOCK_BYTES = 8 << 20
"""Bytes read per block by ``parse_file`` and ``follow``."""

_ITER_RE = re.compile(rb"iteration +(\d+)/ *(\d+) \|([^\n]*)")
_FIELD_RE = re.compile(rb"\| ([^|:]+): +([^|]*?) *(?=\|)")
_FAST_RE = re.compile(
    rb"iteration +(\d+)/ *(\d+) \| consumed samples: +(\d+) \|(?: skipped samples: +\d+ \|)?"
    rb" elapsed time per iteration \(ms\): ([\d.]+) \|(?: throughput per GPU \(TFLOP/s/GPU\): ([\d.]+) \|)?"
    rb"(?: energy per GPU \(J/iter/GPU\): [^|]* \| power per GPU \(W/GPU\): [^|]* \|)?"
    rb"(?: learning rate: ([^ |]+) \|)? global batch size: +(\d+) \|(?: lm loss: ([^ |]+) \|)?"
    rb"(?: load_balancing_loss: ([^ |]+) \|)?(?: seq_load_balancing_loss: ([^ |]+) \|)?"
    rb"(?: global_load_balancing_loss: ([^ |]+) \|)?(?: z_loss: ([^ |]+) \|)?(?: mtp_1 loss: ([^ |]+) \|)?"
    rb"([^\n]*?) loss scale: ([^ |]+) \|"
    rb"(?: grad norm: ([^ |]+) \|)?(?: num zeros: [^|]* \|)?(?: params norm: [^|]* \|)?"
    rb" number of skipped iterations: +(\d+) \| number of nan iterations: +(\d+) \|")
"""Megatron's usual iteration line, all numbers in one match (the fast path). The losses DeepSeek-V3 runs print
have their own groups, in the order Megatron prints them; any other loss lands in the group before ``loss scale``."""
_LOSS_RE = re.compile(rb" ([^|:]+): ([^ |]+) \|")
_LOSS_NAMES: dict[bytes, tuple[str, bool]] = {}
"""Cache: field name as printed -> (loss name or '' when the field is not a loss, is a load-balancing loss)."""
_MEM_RE = re.compile(
    rb"\[Rank (\d+)\] \(after (\d+) iterations\) memory \(MB\) \| allocated: ([\d.]+) \| max allocated: "
    rb"([\d.]+) \| reserved: ([\d.]+) \| max reserved: ([\d.]+)")
_ARGS_START = b"------------------------ arguments ------------------------"
_ARGS_END = b"-------------------- end of arguments ---------------------"
_ARG_RE = re.compile(rb"^(?:[^\n]*?[:\]])? +([A-Za-z_]\w*) (?:\.+ | )([^\n]*)", re.M)
"""One line of the dump, ``  name ...... value`` (no dots when the name is long), after any rank prefix."""
_CONSTANTS: dict[str, object] = {"None": None, "True": True, "False": False}
_DUMP_INT_RE = re.compile(rb" (?:\.+ | )(\d+)\s")
_VOCAB_RE = re.compile(rb"> padded vocab \(size: (\d+)\) with (\d+) dummy tokens \(new size: (\d+)\)")
_VERSION_RE = re.compile(rb"> Megatron-Core version \.+ (\S+)")


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


@dataclass
class LogSummary:
    """Everything parsed from one run's output."""

    records: list[IterationRecord] = field(default_factory=list)
    """Iteration records ordered by iteration; a repeated iteration (restart) keeps its latest line."""
    memory: list[MemoryReport] = field(default_factory=list)
    """Memory report lines in log order."""
    args: dict[str, object] = field(default_factory=dict)
    """The ``arguments`` dump: name -> value (int, float, bool, None, list or str)."""
    padded_vocab_size: int | None = None
    """From ``> padded vocab (... new size: N)``: the vocabulary size the FLOPs formula uses."""
    megatron_version: str | None = None
    """From ``> Megatron-Core version .... X``."""

    def int_arg(self, name: str, default: int | None = None) -> int | None:
        """One integer argument of the dump (TP, PP, EP, ETP, GBS, MBS, seq length, world size, layers ...)."""
        value = self.args.get(name)
        return value if isinstance(value, int) and not isinstance(value, bool) else default

    @property
    def completed(self) -> bool:
        """True when the last iteration logged is the last one asked for."""
        return bool(self.records) and self.records[-1].iteration >= self.records[-1].train_iters

    @property
    def final_lm_loss(self) -> float | None:
        """``lm loss`` of the last iteration that printed one."""
        return next((r.lm_loss for r in reversed(self.records) if r.lm_loss is not None), None)

    @property
    def peak_max_allocated_mb(self) -> float | None:
        """Highest ``max allocated`` over all memory lines and ranks."""
        return max((m.max_allocated_mb for m in self.memory), default=None)


@dataclass(frozen=True)
class SteadyState:
    """Throughput after warm-up: medians over iterations >= ``first_iter``."""

    first_iter: int
    """First iteration counted (the guide: measure from iteration 3 on)."""
    iterations: int
    """Number of records counted."""
    median_tflops_per_gpu: float | None
    """Median of Megatron's ``throughput per GPU (TFLOP/s/GPU)``."""
    median_iter_ms: float | None
    """Median of ``elapsed time per iteration (ms)``."""
    tokens_per_s_per_gpu: float | None
    """Median of the per-iteration tokens/s/GPU."""
    warmup: tuple[IterationRecord, ...]
    """Records before ``first_iter``, reported apart and not counted."""


def _split_losses(items: Iterable[tuple[bytes, bytes]]) -> tuple[dict[str, float], dict[str, float]]:
    """``... loss`` fields by name as floats, and the MoE load-balancing ones among them."""
    losses: dict[str, float] = {}
    balancing: dict[str, float] = {}
    for key, raw in items:
        entry = _LOSS_NAMES.get(key)
        if entry is None:
            name = key.strip().decode(errors="replace")
            is_loss = "loss" in name and name != "loss scale"
            entry = _LOSS_NAMES[key] = (name if is_loss else "", is_loss and ("balancing" in name or "z_loss" in name))
        if entry[0] and (value := _num(raw)) is not None:
            losses[entry[0]] = value
            if entry[1]:
                balancing[entry[0]] = value
    return losses, balancing


def _lines_matching(block: bytes, pos: int, stop: int, needle: bytes,
                    pattern: re.Pattern[bytes]) -> Iterator[re.Match[bytes]]:
    """Matches of ``pattern`` on the lines holding ``needle``: a substring search, then the regex on those lines."""
    hit = block.find(needle, pos, stop)
    while hit >= 0:
        start = block.rfind(b"\n", pos, hit) + 1
        end = block.find(b"\n", hit, stop)
        end = stop if end < 0 else end
        m = pattern.search(block, start, end)
        if m:
            yield m
        hit = block.find(needle, end, stop)


def _dump_int(dump: bytes, name: bytes) -> int | None:
    """An integer argument straight from a raw argument dump (a substring search, then one small match)."""
    at = dump.find(b" " + name + b" ")
    m = _DUMP_INT_RE.match(dump, at + len(name) + 1) if at >= 0 else None
    return int(m[1]) if m else None


def _num(text: bytes) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


def _coerce(text: str) -> object:
    """An argument-dump value as Python: None, bool, int, float, list or tuple, else the string itself."""
    if text in _CONSTANTS:
        return _CONSTANTS[text]
    try:
        return int(text) if text.lstrip("-").isdigit() else float(text) if text[:1] not in "[(" \
            else ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


class _Parser:
    """Stateful block scanner shared by ``parse_lines``, ``parse_file`` and ``follow``."""

    def __init__(self) -> None:
        self.summary = LogSummary()
        self._by_iter: dict[int, IterationRecord] = {}
        self._dump: list[bytes] | None = None  # pieces of the argument dump being read, None outside one
        self._last_dump = b""
        self._tokens_per_iter: float | None = None  # seq_length / world_size, once a dump is read

    def feed(self, block: bytes, start: int = 0, stop: int | None = None) -> list[IterationRecord]:
        """Scan ``block[start:stop]`` (whole lines); return the iteration records it held, in order."""
        out: list[IterationRecord] = []
        pos, stop = start, len(block) if stop is None else stop
        while pos < stop:
            if self._dump is not None:
                end = block.find(_ARGS_END, pos, stop)
                self._dump.append(block[pos:stop if end < 0 else end])
                if end < 0:
                    break
                self._end_dump()
                pos = end + len(_ARGS_END)
                continue
            dump_at = block.find(_ARGS_START, pos, stop)
            self._scan(block, pos, stop if dump_at < 0 else dump_at, out)
            if dump_at < 0:
                break
            self._dump, pos = [], dump_at + len(_ARGS_START)
        return out

    def _end_dump(self) -> None:
        """A whole argument dump was read: keep it raw, pick out what tokens/s needs."""
        self._last_dump, self._dump = b"".join(self._dump or []), None
        seq, world = _dump_int(self._last_dump, b"seq_length"), _dump_int(self._last_dump, b"world_size")
        self._tokens_per_iter = seq / world if seq and world else None

    def _scan(self, block: bytes, pos: int, stop: int, out: list[IterationRecord]) -> None:
        n = block.count(b"elapsed time per iteration (ms)", pos, stop)
        if n:
            rows = _FAST_RE.findall(block, pos, stop)
            try:  # every iteration line has Megatron's usual shape: the fast path
                records = self._fast_records(rows) if len(rows) == n else []
            except ValueError:  # a value that is not a number
                records = []
            if len(records) != n:  # some line has another shape: read each one field by field
                records = [self._record(int(m[1]), int(m[2]), m[3])
                           for m in _ITER_RE.finditer(block, pos, stop)]
            for rec in records:
                self._by_iter[rec.iteration] = rec
            out.extend(records)
        for m in _lines_matching(block, pos, stop, b"memory (MB)", _MEM_RE):
            self.summary.memory.append(MemoryReport(
                int(m[1]), int(m[2]), float(m[3]), float(m[4]), float(m[5]), float(m[6])))
        for m in _lines_matching(block, pos, stop, b"> padded vocab", _VOCAB_RE):
            self.summary.padded_vocab_size = int(m[3])
        if self.summary.megatron_version is None:
            for m in _lines_matching(block, pos, stop, b"Megatron-Core version", _VERSION_RE):
                self.summary.megatron_version = m[1].decode()

    def _fast_records(self, rows: list[tuple[bytes, ...]]) -> list[IterationRecord]:
        """Records from ``_FAST_RE`` matches: the hot path of a long log, so written out without helpers."""
        tokens_per_iter = self._tokens_per_iter
        out: list[IterationRecord] = []
        for it, total, consumed, ms, tput, lr, gbs, lm, lb, slb, glb, z, mtp, other, scale, gnorm, skipped, nans \
                in rows:
            balancing: dict[str, float] = {}
            if lb:
                balancing["load_balancing_loss"] = float(lb)
            if slb:
                balancing["seq_load_balancing_loss"] = float(slb)
            if glb:
                balancing["global_load_balancing_loss"] = float(glb)
            if z:
                balancing["z_loss"] = float(z)
            lm_loss, mtp_loss = float(lm) if lm else None, float(mtp) if mtp else None
            losses = {"lm loss": lm_loss, **balancing} if lm else dict(balancing)
            if mtp:
                losses["mtp_1 loss"] = mtp_loss  # type: ignore[assignment]
            if other.strip():  # a loss this regex has no group for
                more, more_balancing = _split_losses(_LOSS_RE.findall(other))
                losses.update(more)
                balancing.update(more_balancing)
            elapsed, batch = float(ms), int(gbs)
            out.append(IterationRecord(
                int(it), int(total), elapsed, float(tput) if tput else None, float(lr) if lr else None, batch,
                lm_loss, mtp_loss, balancing, losses, float(gnorm) if gnorm else None, float(scale), int(skipped),
                int(nans), int(consumed), batch * tokens_per_iter * 1000.0 / elapsed if tokens_per_iter and elapsed
                else None))
        return out

    def _record(self, iteration: int, train_iters: int, rest: bytes) -> IterationRecord:
        """Any iteration line, field by field (the slow path)."""
        fields = dict(_FIELD_RE.findall(b"|" + rest))
        get = fields.get
        losses, balancing = _split_losses(fields.items())
        elapsed = _num(get(b"elapsed time per iteration (ms)", b""))
        gbs_raw = _num(get(b"global batch size", b""))
        gbs = int(gbs_raw) if gbs_raw is not None else None
        consumed = _num(get(b"consumed samples", b""))
        return IterationRecord(
            iteration, train_iters, elapsed, _num(get(b"throughput per GPU (TFLOP/s/GPU)", b"")),
            _num(get(b"learning rate", b"")), gbs, losses.get("lm loss"), losses.get("mtp_1 loss"),
            balancing, losses, _num(get(b"grad norm", b"")), _num(get(b"loss scale", b"")),
            int(_num(get(b"number of skipped iterations", b"0")) or 0),
            int(_num(get(b"number of nan iterations", b"0")) or 0),
            int(consumed) if consumed is not None else None,
            gbs * self._tokens_per_iter * 1000.0 / elapsed if self._tokens_per_iter and gbs and elapsed else None)

    def finish(self) -> LogSummary:
        """The summary: records sorted by iteration, the last argument dump decoded."""
        if self._dump:  # a dump cut short by the end of the log
            self._end_dump()
        self.summary.args = {m[1].decode(): _coerce(m[2].decode(errors="replace").strip())
                             for m in _ARG_RE.finditer(self._last_dump)}
        self.summary.records = [self._by_iter[i] for i in sorted(self._by_iter)]
        return self.summary


def _blocks(lines: Iterable[str | bytes], size: int = 1 << 20) -> Iterator[bytes]:
    """Join lines into blocks of whole lines of about ``size`` bytes."""
    buf: list[bytes] = []
    filled = 0
    for line in lines:
        raw = line.encode("utf-8", "replace") if isinstance(line, str) else line
        buf.append(raw if raw.endswith(b"\n") else raw + b"\n")
        filled += len(buf[-1])
        if filled >= size:
            yield b"".join(buf)
            buf, filled = [], 0
    if buf:
        yield b"".join(buf)


def _feed_file(parser: _Parser, path: str | os.PathLike[str], size: int = BLOCK_BYTES) -> None:
    """Feed a file to the parser in binary blocks; only the line cut by a block boundary is copied."""
    with open(path, "rb") as fh:
        tail = b""
        while chunk := fh.read(size):
            first = chunk.find(b"\n") + 1
            if first == 0:
                tail += chunk
                continue
            parser.feed(tail + chunk[:first])
            last = chunk.rfind(b"\n") + 1
            if last > first:
                parser.feed(chunk, first, last)
            tail = chunk[last:]
        if tail:
            parser.feed(tail + b"\n")


def parse_lines(lines: Iterable[str | bytes]) -> LogSummary:
    """Parse Megatron output given as lines (str or bytes, with or without newlines)."""
    parser = _Parser()
    for block in _blocks(lines):
        parser.feed(block)
    return parser.finish()


def parse_file(path: str | os.PathLike[str]) -> LogSummary:
    """Parse one log file (read in binary blocks of ``BLOCK_BYTES``)."""
    return parse_files([path])


def parse_files(paths: Iterable[str | os.PathLike[str]], block_bytes: int = BLOCK_BYTES) -> LogSummary:
    """Parse several files of one run (segments, or one file per rank) into one summary, in the order given."""
    parser = _Parser()
    for path in paths:
        _feed_file(parser, path, block_bytes)
    return parser.finish()


def follow(path: str | os.PathLike[str], poll_s: float = 1.0, idle_timeout_s: float | None = None,
           from_start: bool = True) -> Iterator[IterationRecord]:
    """Tail a growing log: yield each iteration record as its line is complete.

    Stops after ``idle_timeout_s`` seconds without growth (never when None). Starts at the beginning of the file
    (so the argument dump is read and tokens/s can be derived) unless ``from_start`` is False. A file that shrinks
    (rotated or rewritten) is read again from its start.
    """
    parser = _Parser()
    offset = 0 if from_start or not Path(path).exists() else Path(path).stat().st_size
    tail = b""
    idle_since = time.monotonic()
    while True:
        size = Path(path).stat().st_size if Path(path).exists() else 0
        if size < offset:
            offset, tail = 0, b""
        if size > offset:
            with open(path, "rb") as fh:
                fh.seek(offset)
                data = tail + fh.read(min(size - offset, BLOCK_BYTES))
                offset = fh.tell()
            cut = data.rfind(b"\n") + 1
            tail = data[cut:]
            if cut:
                yield from parser.feed(data[:cut])
            idle_since = time.monotonic()
            continue
        if idle_timeout_s is not None and time.monotonic() - idle_since >= idle_timeout_s:
            return
        time.sleep(poll_s)


def _median(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


def steady_state(records: Iterable[IterationRecord], first_iter: int = 3) -> SteadyState:
    """Medians of TFLOP/s/GPU, iteration time and tokens/s/GPU over iterations >= ``first_iter``."""
    records = list(records)
    counted = [r for r in records if r.iteration >= first_iter]
    return SteadyState(
        first_iter=first_iter, iterations=len(counted),
        median_tflops_per_gpu=_median([r.tflops_per_gpu for r in counted if r.tflops_per_gpu is not None]),
        median_iter_ms=_median([r.elapsed_ms for r in counted if r.elapsed_ms is not None]),
        tokens_per_s_per_gpu=_median(
            [r.tokens_per_s_per_gpu for r in counted if r.tokens_per_s_per_gpu is not None]),
        warmup=tuple(r for r in records if r.iteration < first_iter))
