"""Streaming parser of Megatron-LM training output: iteration lines, memory reports, the argument dump.

Bytes are read in large blocks of whole lines, probed with substring searches (memory speed), so lines of no
interest cost almost nothing; the lines that matter are only located and kept raw (a block mostly of iteration
lines, whole), and ``LogSummary.records``/``memory`` are built on first use. Records are built hundreds of lines
at a time, column by column (C-level bytes operations split the lines at their separators, a field is a stride
slice of the tokens converted by one ``map``); lines of another layout take the field-by-field reading
(``_record``), which gives the same results. The argument dump is decoded once, at the end. Rank prefixes
(``srun --label``'s ``0: ``, ``torchrun --tee``'s ``[default0]:``, torch's ``[rank0]:``) need no stripping:
patterns are searched for, not anchored, which also catches an iteration line glued to another rank's line.
Standard library only.
"""

from __future__ import annotations

import ast
import math
import os
import re
import statistics
import time
from dataclasses import dataclass, field
from functools import lru_cache, partial
from itertools import groupby, repeat
from operator import itemgetter, lt
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterable, Iterator

BLOCK_BYTES = 8 << 20
"""Bytes read per block by ``parse_file`` and ``follow``."""

_ELAPSED = b"elapsed time per iteration (ms)"
"""In every iteration line: a line ``iteration N/ M | ...`` without it is not one."""
_LINE_RE = re.compile(rb"iteration +\d+/ *\d+ \|[^\n]*")
_ITER_RE = re.compile(rb"iteration +(\d+)/ *(\d+) \|([^\n]*)")
_FIELD_RE = re.compile(rb"\| ([^|:]+): +([^|]*?) *(?=\|)")
_COLUMNS: dict[bytes, str] = {
    b" consumed samples": "consumed", b" " + _ELAPSED: "elapsed", b" throughput per GPU (TFLOP/s/GPU)": "tflops",
    b" learning rate": "lr", b" global batch size": "gbs", b" grad norm": "grad_norm", b" loss scale": "loss_scale",
    b" number of skipped iterations": "skipped", b" number of nan iterations": "nans"}
"""Fields kept, other than losses, by their name as ``_column_records`` splits it out -> column."""
_INT_COLUMNS = frozenset({"consumed", "gbs", "skipped", "nans"})
_COLON_TO_BAR = bytes.maketrans(b":", b"|")
_NOT_SEPARATORS = bytes(c for c in range(256) if c not in b":|\n")
_CHUNK, _MIN_CHUNK = 512, 32
"""Iteration lines built at once; lines of several layouts are halved down to ``_MIN_CHUNK``, then read one by one."""
_DENSE_LINE_BYTES = 800
"""A block is kept whole when its iteration lines x this exceed its size (at ~400 bytes a line they fill half)."""
_MEM_RE = re.compile(
    rb"\[Rank (\d+)\] \(after (\d+) iterations\) memory \(MB\) \| allocated: ([\d.]+) \| max allocated: "
    rb"([\d.]+) \| reserved: ([\d.]+) \| max reserved: ([\d.]+)")
_MEM_NEEDLE = b") memory (MB) | allocated: "
"""The longest literal of ``_MEM_RE``: a longer needle makes the substring search skip faster."""
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

    if not TYPE_CHECKING:  # hidden from type checkers, which would otherwise accept any attribute name
        def __getattr__(self, name: str) -> Any:
            """``records`` and ``memory`` of a parsed log, built from the raw lines the parser kept on first use."""
            build = self.__dict__.get("_lazy", {}).get(name)
            if build is None:
                raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")
            value = build()
            setattr(self, name, value)  # then drop the builder: a new dict, as a copy of this summary may share it
            self.__dict__["_lazy"] = {k: v for k, v in self.__dict__["_lazy"].items() if k != name}
            return value


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


@lru_cache(maxsize=None)
def _loss_entry(key: bytes) -> tuple[str, bool]:
    """A field name as printed -> (loss name, or '' when the field is not a loss; is a load-balancing loss)."""
    name = key.strip().decode(errors="replace")
    is_loss = "loss" in name and name != "loss scale"
    return name if is_loss else "", is_loss and ("balancing" in name or "z_loss" in name)


def _lines_holding(block: bytes, pos: int, stop: int, needle: bytes) -> list[bytes]:
    """The lines of ``block[pos:stop]`` that hold ``needle``, found by substring searches."""
    out: list[bytes] = []
    hit = block.find(needle, pos, stop)
    while hit >= 0:
        end = block.find(b"\n", hit, stop)
        end = stop if end < 0 else end
        out.append(block[block.rfind(b"\n", pos, hit) + 1:end])
        hit = block.find(needle, end, stop)
    return out


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


def _int(text: bytes) -> int | None:
    """An integer field, read through float as Megatron may print ``8.0``; None unless a finite number."""
    value = _num(text)
    return int(value) if value is not None and math.isfinite(value) else None


def _coerce(text: str) -> object:
    """An argument-dump value as Python: None, bool, int, float, list or tuple, else the string itself."""
    if text in _CONSTANTS:
        return _CONSTANTS[text]
    try:
        return int(text) if text.lstrip("-").isdigit() else float(text) if text[:1] not in "[(" \
            else ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


def _record(line: bytes, tokens_per_iter: float | None) -> IterationRecord | None:
    """An iteration line read field by field: the reference reading, used for lines of an unusual layout."""
    m = _ITER_RE.search(line)
    if not m or _ELAPSED not in m[3]:
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
    elapsed, gbs = _num(get(_ELAPSED, b"")), _int(get(b"global batch size", b""))
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


def _records(pieces: list[Piece]) -> list[IterationRecord]:
    """Records of the iteration lines of raw pieces, in log order."""
    out: list[IterationRecord] = []
    for tokens_per_iter, group in groupby(pieces, key=itemgetter(0)):  # the pieces under one argument dump
        lines: list[bytes] = []
        for _, text in group:
            lines += _LINE_RE.findall(text)
            full = len(lines) - len(lines) % _CHUNK
            for at in range(0, full, _CHUNK):
                out += _build(lines[at:at + _CHUNK], tokens_per_iter)
            del lines[:full]
        out += _build(lines, tokens_per_iter) if lines else []
    return out


def _latest_by_iteration(pieces: list[Piece]) -> list[IterationRecord]:
    """Records ordered by iteration; a repeated iteration (restart) keeps its latest line."""
    records = _records(pieces)
    iters = [r.iteration for r in records]
    if all(map(lt, iters, iters[1:])):
        return records
    by_iter = {r.iteration: r for r in records}
    return [by_iter[i] for i in sorted(by_iter)]


def _memory_reports(lines: list[bytes]) -> list[MemoryReport]:
    """The memory report of each line (its first), in log order."""
    return [MemoryReport(int(m[1]), int(m[2]), float(m[3]), float(m[4]), float(m[5]), float(m[6]))
            for m in map(_MEM_RE.search, lines) if m]


class _Parser:
    """Stateful block scanner shared by ``parse_lines``, ``parse_file`` and ``follow``."""

    def __init__(self) -> None:
        self.summary = LogSummary()
        self._dump: list[bytes] | None = None  # pieces of the argument dump being read, None outside one
        self._last_dump = b""
        self._tokens_per_iter: float | None = None  # seq_length / world_size, once a dump is read
        self._pieces: list[Piece] = []  # raw text of the iteration lines, records not built yet
        self._memory: list[bytes] = []  # raw memory report lines

    def feed(self, block: bytes, start: int = 0, stop: int | None = None) -> None:
        """Scan ``block[start:stop]`` (whole lines)."""
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
            self._scan(block, pos, stop if dump_at < 0 else dump_at)
            if dump_at < 0:
                break
            self._dump, pos = [], dump_at + len(_ARGS_START)

    def take(self) -> list[IterationRecord]:
        """The records of the iteration lines fed since the last call, in log order."""
        out, self._pieces = _records(self._pieces), []
        return out

    def _end_dump(self) -> None:
        """A whole argument dump was read: keep it raw, pick out what tokens/s needs."""
        self._last_dump, self._dump = b"".join(self._dump or []), None
        seq, world = _dump_int(self._last_dump, b"seq_length"), _dump_int(self._last_dump, b"world_size")
        self._tokens_per_iter = seq / world if seq and world else None

    def _scan(self, block: bytes, pos: int, stop: int) -> None:
        if n := block.count(_ELAPSED, pos, stop):  # iteration lines, kept whole where they fill the text
            self._pieces.append((self._tokens_per_iter, block[pos:stop] if n * _DENSE_LINE_BYTES > stop - pos
                                 else b"\n".join(_LINE_RE.findall(block, pos, stop))))
        self._memory += _lines_holding(block, pos, stop, _MEM_NEEDLE)
        for m in map(_VOCAB_RE.search, _lines_holding(block, pos, stop, b"> padded vocab (size: ")):
            if m:
                self.summary.padded_vocab_size = int(m[3])
        if self.summary.megatron_version is None:
            for m in map(_VERSION_RE.search, _lines_holding(block, pos, stop, b"> Megatron-Core version ")):
                if m:
                    self.summary.megatron_version = m[1].decode()

    def finish(self) -> LogSummary:
        """The summary, the last argument dump decoded; records and memory reports are built on first use."""
        if self._dump:  # a dump cut short by the end of the log
            self._end_dump()
        self.summary.args = {m[1].decode(): _coerce(m[2].decode(errors="replace").strip())
                             for m in _ARG_RE.finditer(self._last_dump)}
        lazy: dict[str, Callable[[], object]] = {}
        if self._pieces:
            lazy["records"] = partial(_latest_by_iteration, self._pieces)
        if self._memory:
            lazy["memory"] = partial(_memory_reports, self._memory)
        for name in lazy:
            delattr(self.summary, name)
        self.summary.__dict__["_lazy"] = lazy
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
                parser.feed(data[:cut])
                yield from parser.take()
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
