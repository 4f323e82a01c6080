"""Why a training job ended: known failure signatures of Megatron/torch/NCCL/DeepEP logs and Slurm end states.

``SIGNATURES`` (``node/signatures.py``) is the table: each entry has literal ``needles`` tested first (cheap), a regex run only on lines
holding one, and a cause and a fix (``str.format`` templates over the regex's named groups and ``where``, e.g.
" on rank 3"). The verdict, in order: the earliest root-cause signature (configuration error, OOM, DeepEP,
NVSHMEM); else the exception of the rank whose Python traceback began first; else a symptom (an NCCL watchdog
timeout: some other rank failed or hung); else the launcher's "first observed failure" summary. Standard
library only.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from typing import BinaryIO, Iterable, Iterator

from .signatures import ROOT, SIGNATURES, SYMPTOM, Retry, Signature

@dataclass(frozen=True)
class Diagnosis:
    """The verdict on one failed run."""

    name: str
    """The signature that matched (``python_exception``, ``slurm_timeout`` ... for the generic ones)."""
    cause: str
    """Why the run failed, in one sentence."""
    fix: str
    """What to change."""
    evidence: str
    """The matched log line (without its rank prefix; cut to 400 characters), or the Slurm state."""
    rank: int | None = None
    """Global rank the failure was first seen on, when the log says."""
    line: int | None = None
    """1-based line number of the evidence in the log."""
    retry: Retry = "deterministic"
    """Whether the same job can succeed when run again (``Signature.retry``; unknown causes are deterministic)."""
    hardware: bool = False
    """The node is at fault: exclude it from the next attempt."""



_PREFIX_RE = re.compile(r"^\s*(?:(\d+): |\[(?:default|rank)(\d+)\]: ?)")
_ROOT_RANK_RE = re.compile(r"^\s*rank\s*: (\d+)")
_ROOT_EXIT_RE = re.compile(r"^\s*exitcode\s*: (-?\d+)")
_SIGNALS = {-9: "SIGKILL (host out of memory, scancel or the time limit)", -6: "SIGABRT (a C++/CUDA assertion)",
            -11: "SIGSEGV (a crash in native code)", -15: "SIGTERM (stopped by the launcher or Slurm)"}
_MAX_TRACEBACK_LINES = 5000
_CHAINED = ("During handling of the above exception", "The above exception was the direct cause")
_NEEDLE_BYTES = tuple(sorted({n.encode() for s in SIGNATURES for n in s.needles} | {
    b"Traceback (most recent call last):", b"Root Cause (first observed failure)", *(c.encode() for c in _CHAINED)}))
"""Every substring that makes a line worth matching in ``diagnose_file``."""


def _strip_prefix(line: str) -> tuple[str, int | None]:
    """The line without its srun/torchrun/torch rank prefixes, and the rank they name (torch's wins)."""
    rank_srun = rank_torch = None
    while m := _PREFIX_RE.match(line):
        if m[1] is not None:
            rank_srun = int(m[1])
        else:
            rank_torch = int(m[2])
        line = line[m.end():]
    return line.rstrip("\n"), rank_torch if rank_torch is not None else rank_srun


@dataclass
class _Hit:
    sig: Signature
    line: int
    rank: int | None
    text: str
    groups: dict[str, str]


@dataclass
class _Chain:
    """One rank's traceback(s), chained ones included: the exception lines of the first and of the last."""
    start: int
    exception: tuple[int, str] | None = None
    first: tuple[int, str] | None = None
    chained: bool = False


@dataclass
class _Scanner:
    hits: list[_Hit] = field(default_factory=list)
    chains: dict[int | None, list[_Chain]] = field(default_factory=dict)
    open_tb: dict[int | None, _Chain] = field(default_factory=dict)
    root: dict[str, int] = field(default_factory=dict)
    in_root: bool = False
    n: int = 0

    def feed(self, raw: str) -> None:
        self.n += 1
        text, rank = _strip_prefix(raw)
        for sig in SIGNATURES:
            if any(n in text for n in sig.needles) and (m := sig.regex.search(text)):
                groups = {k: v for k, v in m.groupdict().items() if v is not None}
                peer = int(groups["peer"]) if "peer" in groups else None
                self.hits.append(_Hit(sig, self.n, rank if rank is not None else peer, _evidence(text, m), groups))
        self._traceback(text, rank)
        if "Root Cause (first observed failure)" in text:
            self.in_root = True
        elif self.in_root and text.startswith("====="):
            self.in_root = False
        elif self.in_root and (m := _ROOT_RANK_RE.match(text) or _ROOT_EXIT_RE.match(text)):
            self.root.setdefault("rank" if "rank" in m[0] else "exitcode", int(m[1]))

    def _traceback(self, text: str, rank: int | None) -> None:
        chain = self.open_tb.get(rank)
        if text.startswith("Traceback (most recent call last):"):
            if chain is None or not chain.chained:
                chain = _Chain(self.n)
                self.chains.setdefault(rank, []).append(chain)
            chain.chained, chain.exception = False, None
            self.open_tb[rank] = chain
        elif chain is not None:
            if self.n - chain.start > _MAX_TRACEBACK_LINES:  # never found its exception line: give up on it
                del self.open_tb[rank]
            elif chain.exception is None and text and not text[0].isspace():
                chain.exception = (self.n, text)
                chain.first = chain.first or chain.exception
            elif chain.exception is not None and any(c in text for c in _CHAINED):
                chain.chained = True

    @property
    def busy(self) -> bool:
        """Inside a traceback or the launcher's summary: following lines matter even without a needle."""
        return self.in_root or any(c.exception is None or c.chained for c in self.open_tb.values())


def _evidence(text: str, m: re.Match[str] | None = None, width: int = 400) -> str:
    """The line, or when it is long, the part of it around the match."""
    if len(text) <= width or m is None or m.end() <= width:
        return text[:width]
    start = max(0, min(m.start() - 40, len(text) - width))
    return text[start:start + width]


def _where(rank: int | None) -> str:
    return f" on rank {rank}" if rank is not None else ""


def _from_hits(scan: _Scanner, tier: int) -> Diagnosis | None:
    tiered = [h for h in scan.hits if h.sig.tier == tier]
    if not tiered:
        return None
    best = min(tiered, key=lambda h: h.line)
    rank = best.rank
    if rank is None:  # e.g. an unprefixed warning line: take the first rank that shows the same failure
        rank = next((h.rank for h in scan.hits if h.sig is best.sig and h.rank is not None), scan.root.get("rank"))
    values = {"where": _where(rank), "size": "an unknown size", "phase": "dispatch/combine", **best.groups}
    cause = best.sig.cause.format(**values)
    if best.sig.name == "cuda_oom" and "total" in best.groups:
        cause += f" (GPU {best.groups.get('gpu')}: {best.groups['total']} total, {best.groups['free']} free)"
    return Diagnosis(best.sig.name, cause, best.sig.fix.format(**values), best.text, rank, best.line,
                     best.sig.retry, best.sig.hardware)


def _is_symptom(text: str) -> bool:
    return "ChildFailedError" in text or any(
        s.tier == SYMPTOM and any(n in text for n in s.needles) and s.regex.search(text) for s in SIGNATURES)


def _from_tracebacks(scan: _Scanner) -> Diagnosis | None:
    """The exception of the rank whose traceback began first (launcher and NCCL-timeout exceptions aside). In a
    chain ("During handling of the above exception ...") the first exception is the cause and the last one a
    consequence (a CUDA-graph capture error, then ``capture_end`` failing): both are named, the first leads."""
    firsts = [(chain, rank) for rank, chains in scan.chains.items() for chain in chains[:1]
              if chain.exception and chain.first and not _is_symptom(chain.exception[1])]
    if not firsts:
        return None
    chain, rank = min(firsts, key=lambda c: c[0].start)
    line, text = chain.first or (chain.start, "")
    rank = rank if rank is not None else scan.root.get("rank")
    cause = f"Python exception{_where(rank)}: {_evidence(text, None, 300)}"
    if chain.exception and chain.exception[1] != text:
        cause += f" (the chain ends in: {_evidence(chain.exception[1], None, 200)})"
    return Diagnosis("python_exception", cause, "read that rank's traceback above the exception line; errors on "
                     "other ranks after it (NCCL timeouts, SIGTERM) follow from it", _evidence(text), rank, line)


def _from_launcher(scan: _Scanner) -> Diagnosis | None:
    if "rank" not in scan.root:
        return None
    rank, code = scan.root["rank"], scan.root.get("exitcode")
    how = f"was killed by {_SIGNALS.get(code, f'signal {-code}')}" if code is not None and code < 0 else \
        f"exited with code {code}"
    return Diagnosis("rank_exit", f"rank {rank} {how} (the launcher's first observed failure)",
                     "search that rank's output for its first error; if it printed none, rerun with "
                     "TORCHELASTIC_ERROR_FILE set or under `srun --label` to see every rank",
                     f"rank : {rank}, exitcode : {code}", rank, None)


def _verdict(scan: _Scanner) -> Diagnosis | None:
    """A known root cause, else the first failing rank's exception, else a symptom, else the launcher's word."""
    return (_from_hits(scan, ROOT) or _from_tracebacks(scan) or _from_hits(scan, SYMPTOM)
            or _from_launcher(scan))


def diagnose_lines(lines: Iterable[str]) -> Diagnosis | None:
    """The failure a log shows, or None when it shows none."""
    scan = _Scanner()
    for line in lines:
        scan.feed(line)
    return _verdict(scan)


def _candidate_starts(block: bytes) -> list[int]:
    """Offsets of the starts of the lines of ``block`` that hold a needle (substring searches only)."""
    starts: set[int] = set()
    for needle in _NEEDLE_BYTES:
        hit = block.find(needle)
        while hit >= 0:
            starts.add(block.rfind(b"\n", 0, hit) + 1)
            hit = block.find(needle, hit + len(needle))
    return sorted(starts)


def _scan_block(scan: _Scanner, block: bytes) -> None:
    """Feed the lines of a block of whole lines that can matter: those with a needle, and the lines after them
    while a traceback or the launcher's summary is open. Every other line is only counted."""
    cursor, line_no = 0, scan.n  # line_no: lines before ``cursor``
    for start in ([0] if scan.busy else []) + _candidate_starts(block):
        if start < cursor:
            continue
        line_no += block.count(b"\n", cursor, start)
        cursor = start
        while cursor < len(block):
            end = block.find(b"\n", cursor)
            end = len(block) if end < 0 else end
            scan.n = line_no
            scan.feed(block[cursor:end].decode("utf-8", "replace"))
            line_no, cursor = line_no + 1, end + 1
            if not scan.busy:
                break
    scan.n = line_no + block.count(b"\n", cursor)


ATTEMPT_START = r"^orchestrator: job \S+ on .*\(restart \d+\)\s*$"
"""The batch script's first line of each attempt of a job: a requeued job appends to the same log, and why a job
ended is its newest attempt's story (an earlier attempt's failure was retried)."""
_ATTEMPT_BYTES = re.compile(ATTEMPT_START.encode(), re.M)


def _blocks(fh: BinaryIO, block_bytes: int) -> Iterator[bytes]:
    """The file in blocks of whole lines (the last one as it ends)."""
    tail = b""
    while chunk := fh.read(block_bytes):
        data = tail + chunk
        cut = data.rfind(b"\n") + 1
        tail = data[cut:]
        yield data[:cut]
    if tail:
        yield tail


def diagnose_file(path: str | os.PathLike[str], block_bytes: int = 4 << 20) -> Diagnosis | None:
    """The failure a log file shows in its newest attempt, or None. Only lines holding a signature's substring (and
    the lines of the tracebacks they open) are decoded and matched, so a long clean log is read once at memory-search
    speed; an attempt's first line starts the scan anew. Line numbers count from the file's start."""
    scan, lines = _Scanner(), 0
    with open(path, "rb") as fh:
        for block in _blocks(fh, block_bytes):
            starts = [m.start() for m in _ATTEMPT_BYTES.finditer(block)]
            if starts:
                scan = _Scanner(n=lines + block.count(b"\n", 0, starts[-1]))
            _scan_block(scan, block[starts[-1]:] if starts else block)
            lines += block.count(b"\n")
    return _verdict(scan)


_SLURM: dict[str, tuple[str, str]] = {
    "TIMEOUT": ("the job reached its time limit and Slurm stopped it",
                "raise the time limit, or run in segments that resume from checkpoints (--save-interval, --load)"),
    "PREEMPTED": ("a higher-priority job preempted this one",
                  "resubmit (or --requeue); save checkpoints often; use a partition or QoS without preemption"),
    "NODE_FAIL": ("a node of the allocation failed (hardware, network or slurmd)",
                  "resubmit with the node excluded (--exclude), and report it (sinfo -R shows why it is down)"),
    "OUT_OF_MEMORY": ("a task exceeded its host (CPU) memory limit and the cgroup OOM killer ended it",
                      "ask for more memory (--mem=0 takes the whole node), use fewer data-loader workers, or "
                      "keep fewer checkpoint copies in host memory"),
    "CANCELLED": ("the job was cancelled (scancel){by}", "nothing to fix if intended; otherwise resubmit"),
    "BOOT_FAIL": ("a node failed to boot for the job", "resubmit with the node excluded and report it"),
    "DEADLINE": ("the job missed its --deadline", "resubmit with a later deadline or a shorter run"),
}


_SLURM_TRANSIENT = frozenset({"PREEMPTED", "NODE_FAIL", "BOOT_FAIL"})
"""End states after which the same job can run again (the hardware ones exclude their node)."""
_SLURM_HARDWARE = frozenset({"NODE_FAIL", "BOOT_FAIL"})


def diagnose_slurm_state(state: str, exit_code: str | None = None) -> Diagnosis | None:
    """What a Slurm end state (``sacct`` State, e.g. ``CANCELLED by 1000``) and ExitCode (``1:0``) mean."""
    parts = state.strip().split(None, 1)
    base = parts[0].rstrip("+").upper() if parts else ""
    evidence = f"State={state.strip()}" + (f" ExitCode={exit_code}" if exit_code else "")
    if base in _SLURM:
        cause, fix = _SLURM[base]
        by = f" {parts[1]}" if len(parts) > 1 else ""
        return Diagnosis(f"slurm_{base.lower()}", cause.format(by=by), fix, evidence,
                         retry="transient" if base in _SLURM_TRANSIENT else "deterministic",
                         hardware=base in _SLURM_HARDWARE)
    if base == "FAILED":
        code, _, signal = (exit_code or "").partition(":")
        how = f"was killed by signal {signal}" if signal not in ("", "0") else f"exited with code {code or '?'}"
        return Diagnosis("slurm_failed", f"the job's batch script {how}",
                         "see the diagnosis of the job's log (orchestrator report RUN_DIR)", evidence)
    return None
