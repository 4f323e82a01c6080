"""Megatron's own argument validation, run on a rendered argument list without a GPU or a process group.

``python -m orchestrator.node.megatron_check --world-size N [--gpu-capability 9.0 --gpus-per-node 8
--gpu-memory-gb 85 --gpu-name H100 --te-version 2.20.2] -- ARG...`` prints one JSON line
``{"ok": ..., "error": ..., "failed_at": ..., "warnings": [...]}`` and exits 0 when Megatron accepts the arguments,
1 when it rejects them, 3 when megatron.training is missing.

Where the machine has no GPU (a login node, CI), Megatron's device queries (``torch.cuda.get_device_capability``
for grouped GEMM, the device count and properties) are answered from the given GPU facts (the profile's GPU
table) and Transformer Engine's version from ``--te-version`` (the job image's), so the check judges the job's
machine, not this one. Where a GPU is present nothing is answered for it.

The one harness for Megatron's argument check: the login side runs it in a subprocess under a Python >= 3.12 that
has megatron.training (``submit.checks.megatron_python``), the preflight payload and the CPU stand-in of the e2e
tests call ``check`` (or this module) too.

Importing Megatron takes seconds, a check a tenth of one: ``--serve SOCKET`` keeps one process with Megatron
imported that checks each request in a forked child (nothing one check changes reaches the next), and ``run_jobs``
asks it first where ``$ORCHESTRATOR_MEGATRON_SERVER`` names its socket, else starts the interpreter.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import signal
import socket
import subprocess
import sys
import traceback
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

from orchestrator.node.capabilities import module_found


DEFAULT_VENV = "/opt/orchestrator/megatron-py312"
"""Where ``scripts/megatron-env.sh`` builds the Python 3.12 environment for this check (the login side looks there)."""


@dataclass(frozen=True)
class JobMachine:
    """What the job's machine would answer: its GPUs and its Transformer Engine."""

    capability: tuple[int, int]
    gpus_per_node: int
    memory_gb: float
    name: str
    te_version: str | None


PYTHON_ENV = "ORCHESTRATOR_MEGATRON_PYTHON"
"""Names the interpreter (Python >= 3.12 with megatron-core) that runs this check."""


def available() -> bool:
    """Whether megatron.training can be imported here (megatron-core >= 0.17 ships it)."""
    return module_found("megatron.training")


def megatron_python() -> str | None:
    """The interpreter for this check: this one if it imports megatron.training, else ``$ORCHESTRATOR_MEGATRON_
    PYTHON``, else the default environment (``DEFAULT_VENV``) when it exists; None when there is none."""
    if available():
        return sys.executable
    if named := os.environ.get(PYTHON_ENV):
        return named
    default = os.path.join(DEFAULT_VENV, "bin", "python")
    return default if os.path.exists(default) else None


SERVER_ENV = "ORCHESTRATOR_MEGATRON_SERVER"
"""The Unix socket of a ``--serve`` process of this check (same interpreter and Megatron as ``megatron_python``)."""


def run_jobs(python: str, jobs: list[dict[str, Any]], timeout_s: float = 600.0) -> list[dict[str, Any]] | str:
    """This check over ``jobs`` (``[{"world_size", "machine", "argv"}]``): by the server where one answers, else in
    one process of ``python``; a result per job, or why it could not run."""
    served = ask_server(jobs, timeout_s)
    if served is not None:
        return served
    toolkit = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (toolkit, os.environ.get("PYTHONPATH")) if p)}
    try:
        out = subprocess.run([python, "-m", "orchestrator.node.megatron_check", "--batch"], input=json.dumps(jobs),
                             capture_output=True, text=True, timeout=timeout_s, check=False, env=env)
    except subprocess.TimeoutExpired:
        return f"it did not finish in {timeout_s:.0f} s"
    except OSError as err:
        return f"{python}: {err.strerror}"
    last = (out.stdout.strip().splitlines() or [""])[-1]
    if last.startswith("{"):
        return str(json.loads(last).get("error"))
    if not last.startswith("["):
        return f"{python} exited {out.returncode}: {_last_line(out.stderr)[-300:] or 'no output'}"
    results: list[dict[str, Any]] = json.loads(last)
    return results


def ask_server(jobs: list[dict[str, Any]], timeout_s: float) -> list[dict[str, Any]] | None:
    """The server's results for ``jobs``; None where no server is named or it does not answer."""
    path = os.environ.get(SERVER_ENV)
    if not path:
        return None
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
            conn.settimeout(timeout_s)
            conn.connect(path)
            conn.sendall(json.dumps(jobs).encode())
            conn.shutdown(socket.SHUT_WR)
            answer: list[dict[str, Any]] = json.loads(_read_all(conn))
    except (OSError, ValueError):
        return None
    return answer if isinstance(answer, list) and len(answer) == len(jobs) else None


def _read_all(conn: socket.socket) -> bytes:
    chunks = []
    while chunk := conn.recv(1 << 16):
        chunks.append(chunk)
    return b"".join(chunks)


def serve(path: str) -> int:
    """Answer requests on the Unix socket ``path`` until killed: Megatron imported once here, each request checked
    in a forked child that writes one JSON list back."""
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        import megatron.training.arguments  # noqa: F401 -- the import every child shares
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(path)
    os.chmod(path, 0o600)  # this user's checks only
    server.listen(16)
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # children are reaped by the kernel
    print(json.dumps({"serving": path, "pid": os.getpid()}), flush=True)
    while True:
        conn, _ = server.accept()
        if os.fork() == 0:
            server.close()
            _answer(conn)
            os._exit(0)
        conn.close()


def _answer(conn: socket.socket) -> None:
    try:
        jobs = json.loads(_read_all(conn))
        results = [check(list(job["argv"]), job.get("world_size"), _machine(job.get("machine"))) for job in jobs]
        conn.sendall(json.dumps(results).encode())
    except Exception:  # noqa: BLE001 -- a malformed request gets no answer; the client falls back
        pass
    finally:
        conn.close()


def check(argv: list[str], world_size: int | None = None, machine: JobMachine | None = None) -> dict[str, Any]:
    """Parse and validate ``argv`` with Megatron's parser (and build its TransformerConfig); never raises.

    ``world_size``: the ranks to validate for, set as WORLD_SIZE (rank 0); None keeps the process's own (preflight).
    ``machine``: the job machine's answers where this one has no GPU. ``failed_at``: the source line of Megatron's
    that refused (an ``assert args.X ...`` names the argument when the message does not).
    """
    if world_size is not None:
        os.environ.update(WORLD_SIZE=str(world_size), RANK="0", LOCAL_RANK="0")
    saved = sys.argv
    noise = io.StringIO()
    try:
        with contextlib.redirect_stdout(noise), contextlib.redirect_stderr(noise):
            from megatron.training.arguments import core_transformer_config_from_args, parse_args, validate_args
        sys.argv = ["pretrain_gpt.py", *argv]
        with _answered(machine), warnings.catch_warnings(record=True) as caught, \
                contextlib.redirect_stdout(noise), contextlib.redirect_stderr(noise):
            warnings.simplefilter("always")
            args = parse_args()
            validate_args(args, {})
            core_transformer_config_from_args(args)
        return {"ok": True, "error": None, "failed_at": None, "warnings": _warnings(caught, noise.getvalue()),
                "version": _version()}
    except SystemExit as exc:  # argparse refuses unknown or malformed flags this way
        return {"ok": False, "error": f"argument parser exited ({exc.code}): {_last_line(noise.getvalue())}",
                "failed_at": None, "warnings": [], "version": _version()}
    except Exception as exc:  # noqa: BLE001 -- any Megatron assertion is the answer we want
        return {"ok": False, "error": f"{type(exc).__name__}: {exc}".rstrip(": "), "failed_at": _failed_at(exc),
                "warnings": [], "version": _version()}
    finally:
        sys.argv = saved


@contextlib.contextmanager
def _answered(machine: JobMachine | None) -> Iterator[None]:
    """Answer Megatron's device and TE-version queries from ``machine`` while the check runs (no GPU here)."""
    import torch

    if machine is None or torch.cuda.is_available():
        yield
        return
    import megatron.core.utils as mcore_utils
    from packaging.version import Version

    props = SimpleNamespace(name=machine.name, major=machine.capability[0], minor=machine.capability[1],
                            total_memory=int(machine.memory_gb * 1e9), multi_processor_count=132)
    answers = {"is_available": lambda: True, "device_count": lambda: machine.gpus_per_node,
               "get_device_capability": lambda *_a, **_k: machine.capability,
               "get_device_properties": lambda *_a, **_k: props, "get_device_name": lambda *_a, **_k: machine.name,
               "current_device": lambda: 0}
    saved = {name: getattr(torch.cuda, name) for name in answers}
    saved_te, kernels = mcore_utils._te_version, _te_kernels(machine)
    try:
        for name, fn in answers.items():
            setattr(torch.cuda, name, fn)
        if kernels is not None:
            mcore_utils._te_version = Version(str(machine.te_version))
            for name in kernels:
                setattr(kernels.module, name, _ImageKernel(name))
        yield
    finally:
        for name, fn in saved.items():
            setattr(torch.cuda, name, fn)
        mcore_utils._te_version = saved_te
        for name in kernels or ():
            setattr(kernels.module, name, None)  # type: ignore[union-attr]


class _ImageKernel:
    """Stands for a Transformer Engine kernel of the job's image during the check: present, never called."""

    def __init__(self, name: str) -> None:
        self.name = name

    def __call__(self, *_args: object, **_kwargs: object) -> None:
        raise RuntimeError(f"{self.name}: the argument check does not run kernels")


class _Kernels(list[str]):
    module: Any = None


def _te_kernels(machine: JobMachine) -> _Kernels | None:
    """The TE kernels Megatron's MoE code found missing here (``fused_*`` set to None) that the job's TE has."""
    if not machine.te_version or module_found("transformer_engine"):
        return None
    from megatron.core.transformer.moe import moe_utils

    found = _Kernels(n for n in vars(moe_utils) if n.startswith("fused_") and getattr(moe_utils, n) is None)
    found.module = moe_utils
    return found


def _version() -> str:
    from importlib.metadata import version

    return version("megatron-core")


def _failed_at(exc: BaseException) -> str | None:
    """The source line inside Megatron that raised, e.g. ``assert args.save_interval is not None``."""
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if "megatron" in f.filename]
    return (frames[-1].line or None) if frames else None


def _warnings(caught: list[warnings.WarningMessage], printed: str) -> list[str]:
    """Megatron's own warnings during the check: ``warnings.warn`` from megatron and its printed WARNING lines."""
    found = [str(w.message).strip() for w in caught if "megatron" in str(w.filename)]
    found += [line.strip() for line in printed.splitlines() if "WARNING" in line]
    return list(dict.fromkeys(line for line in found if line))


def _last_line(text: str) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return lines[-1] if lines else ""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--batch", action="store_true",
                        help='read [{"world_size": N, "machine": {...} or null, "argv": [...]}, ...] from stdin and '
                             'print one JSON list of results (Megatron is imported once)')
    parser.add_argument("--serve", metavar="SOCKET", help="keep Megatron imported and answer batches on this Unix "
                        f"socket (clients find it through ${SERVER_ENV})")
    parser.add_argument("--world-size", type=int)
    parser.add_argument("--gpu-capability", help="the job GPU's compute capability, e.g. 9.0")
    parser.add_argument("--gpus-per-node", type=int, default=8)
    parser.add_argument("--gpu-memory-gb", type=float, default=80.0)
    parser.add_argument("--gpu-name", default="GPU")
    parser.add_argument("--te-version", help="Transformer Engine in the job's image")
    parser.add_argument("argv", nargs=argparse.REMAINDER)
    ns = parser.parse_args()
    if not available():
        print(json.dumps({"ok": None, "error": f"megatron.training is not importable by {sys.executable}"}))
        return 3
    if ns.serve:
        return serve(ns.serve)
    if ns.batch:
        results = [check(list(job["argv"]), job.get("world_size"), _machine(job.get("machine")))
                   for job in json.load(sys.stdin)]
        print(json.dumps(results))
        return 0 if all(r["ok"] for r in results) else 1
    if ns.world_size is None:
        parser.error("--world-size is required without --batch")
    argv = ns.argv[1:] if ns.argv[:1] == ["--"] else ns.argv
    machine = None
    if ns.gpu_capability:
        major, _, minor = ns.gpu_capability.partition(".")
        machine = JobMachine((int(major), int(minor or 0)), ns.gpus_per_node, ns.gpu_memory_gb, ns.gpu_name,
                             ns.te_version)
    result = check(argv, ns.world_size, machine)
    print(json.dumps(result))
    return 0 if result["ok"] else 1


def _machine(fields: dict[str, Any] | None) -> JobMachine | None:
    """A job machine from its JSON fields (``capability`` as a list)."""
    if not fields:
        return None
    return JobMachine(**{**fields, "capability": tuple(fields["capability"])})


if __name__ == "__main__":
    sys.exit(main())
