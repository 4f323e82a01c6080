"""Streaming parser of Megatron-LM training output: iteration lines, memory reports, the argument dump.

Bytes are read in large blocks of whole lines, probed with substring searches (memory speed), so lines of no
interest cost almost nothing; the lines that matter are only located and kept raw (a block mostly of iteration
lines, whole), and ``LogSummary.records``/``memory`` are built on first use by ``logrecords``. The argument dump
is decoded once, at the end. Rank prefixes (``srun --label``'s ``0: ``, ``torchrun --tee``'s ``[default0]:``,
torch's ``[rank0]:``) need no stripping: patterns are searched for, not anchored, which also catches an iteration
line glued to another rank's line. Standard library only.
"""

from __future__ import annotations

import ast
import os
import re
import statistics
import time
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterable, Iterator

from ..node.jobspec import DEEPEP_FALLBACK_WARNING
from .logrecords import (DENSE_LINE_BYTES, ELAPSED_NEEDLE, ITERATION_LINE_RE, MEMORY_NEEDLE, IterationRecord,
                         MemoryReport, Piece, latest_by_iteration, memory_reports, records_of)

__all__ = ["BLOCK_BYTES", "IterationRecord", "LogSummary", "MemoryReport", "SteadyState", "follow", "parse_file",
           "parse_files", "parse_lines", "steady_state"]

BLOCK_BYTES = 8 << 20
"""Bytes read per block by ``parse_file`` and ``follow``."""

_ARGS_START = b"------------------------ arguments ------------------------"
_ARGS_END = b"-------------------- end of arguments ---------------------"
_ARG_RE = re.compile(rb"^(?:[^\n]*?[:\]])? +([A-Za-z_]\w*) (?:\.+ | )([^\n]*)", re.M)
"""One line of the dump, ``  name ...... value`` (no dots when the name is long), after any rank prefix."""
_CONSTANTS: dict[str, object] = {"None": None, "True": True, "False": False}
_DUMP_INT_RE = re.compile(rb" (?:\.+ | )(\d+)\s")
_VOCAB_RE = re.compile(rb"> padded vocab \(size: (\d+)\) with (\d+) dummy tokens \(new size: (\d+)\)")
_VERSION_RE = re.compile(rb"> Megatron-Core version \.+ (\S+)")
_FALLBACK = DEEPEP_FALLBACK_WARNING.encode()


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
    deepep_fallback: bool = False
    """The node entry warned that DeepEP was asked for but missing, and ran the alltoall dispatcher instead."""

    def int_arg(self, name: str, default: int | None = None) -> int | None:
        """One integer argument of the dump (TP, PP, EP, ETP, GBS, MBS, seq length, world size, layers ...)."""
        value = self.args.get(name)
        return value if isinstance(value, int) and not isinstance(value, bool) else default

    @property
    def dispatcher(self) -> str | None:
        """The MoE token dispatcher Megatron ran (``alltoall``, ``flex/deepep`` ...), from the argument dump."""
        kind, backend = self.args.get("moe_token_dispatcher_type"), self.args.get("moe_flex_dispatcher_backend")
        if not isinstance(kind, str):
            return None
        return f"{kind}/{backend}" if kind == "flex" and isinstance(backend, str) else kind

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
        out, self._pieces = records_of(self._pieces), []
        return out

    def _end_dump(self) -> None:
        """A whole argument dump was read: keep it raw, pick out what tokens/s needs."""
        self._last_dump, self._dump = b"".join(self._dump or []), None
        seq, world = _dump_int(self._last_dump, b"seq_length"), _dump_int(self._last_dump, b"world_size")
        self._tokens_per_iter = seq / world if seq and world else None

    def _scan(self, block: bytes, pos: int, stop: int) -> None:
        if n := block.count(ELAPSED_NEEDLE, pos, stop):  # iteration lines, kept whole where they fill the text
            self._pieces.append((self._tokens_per_iter, block[pos:stop] if n * DENSE_LINE_BYTES > stop - pos
                                 else b"\n".join(ITERATION_LINE_RE.findall(block, pos, stop))))
        self._memory += _lines_holding(block, pos, stop, MEMORY_NEEDLE)
        for m in map(_VOCAB_RE.search, _lines_holding(block, pos, stop, b"> padded vocab (size: ")):
            if m:
                self.summary.padded_vocab_size = int(m[3])
        if not self.summary.deepep_fallback and block.find(_FALLBACK, pos, stop) >= 0:
            self.summary.deepep_fallback = True
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
            lazy["records"] = partial(latest_by_iteration, self._pieces)
        if self._memory:
            lazy["memory"] = partial(memory_reports, self._memory)
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
