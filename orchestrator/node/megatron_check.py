"""Megatron's own argument validation, run on a rendered argument list without a GPU or a process group.

``python -m orchestrator.node.megatron_check --world-size N -- ARG...`` prints one JSON line
``{"ok": ..., "error": ...}`` and exits 0 when Megatron accepts the arguments, 1 when it rejects them, 3 when
megatron.training is missing.
The one harness for Megatron's argument check: the login side runs it in a subprocess (Megatron imports torch and
mutates global state), the preflight payload calls ``check`` inside the job, where megatron-core is installed.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import sys
from typing import Any

from orchestrator.node.capabilities import module_found


def available() -> bool:
    """Whether megatron.training can be imported here (megatron-core >= 0.17 ships it)."""
    return module_found("megatron.training")


def check(argv: list[str], world_size: int | None = None) -> dict[str, Any]:
    """Parse and validate ``argv`` with Megatron's parser (and build its TransformerConfig); never raises.

    ``world_size``: the ranks to validate for, set as WORLD_SIZE (rank 0); None keeps the process's own (preflight).
    """
    if world_size is not None:
        os.environ.update(WORLD_SIZE=str(world_size), RANK="0", LOCAL_RANK="0")
    saved = sys.argv
    sys.argv = ["pretrain_gpt.py", *argv]
    noise = io.StringIO()
    try:
        with contextlib.redirect_stdout(noise), contextlib.redirect_stderr(noise):
            from megatron.training.arguments import parse_args, validate_args
            args = parse_args()
            validate_args(args, {})
            _transformer_config(args)
        return {"ok": True, "error": None}
    except SystemExit as exc:  # argparse refuses unknown or malformed flags this way
        return {"ok": False, "error": f"argument parser exited ({exc.code}): {_last_line(noise.getvalue())}"}
    except Exception as exc:  # noqa: BLE001 -- any Megatron assertion is the answer we want
        return {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
    finally:
        sys.argv = saved


def _transformer_config(args: Any) -> None:
    """Build the TransformerConfig too: its __post_init__ holds most MoE/overlap checks."""
    try:
        from megatron.training.arguments import core_transformer_config_from_args
    except ImportError:
        return
    core_transformer_config_from_args(args)


def _last_line(text: str) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return lines[-1] if lines else ""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--world-size", type=int, required=True)
    parser.add_argument("argv", nargs=argparse.REMAINDER)
    ns = parser.parse_args()
    argv = ns.argv[1:] if ns.argv[:1] == ["--"] else ns.argv
    if not available():
        print(json.dumps({"ok": None, "error": "megatron.training is not importable here"}))
        return 3
    result = check(argv, ns.world_size)
    print(json.dumps(result))
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
