"""The one definition of a secret's name.

A secret never lands in a rendered file, a run record or a log: rendering refuses an ``env`` entry whose name looks
like one (it must be exported in the shell and is passed through by name), and run records redact such values.
"""

from __future__ import annotations

import re

PASSTHROUGH: tuple[str, ...] = ("WANDB_API_KEY", "HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "NGC_API_KEY")
"""Secrets every job passes through by name from the submitting shell (srun --export / the local launcher)."""

_SECRET_WORD = re.compile(r"(KEY|TOKEN|SECRET|PASSWORD|PASSWD|CREDENTIAL)", re.IGNORECASE)

REDACTED = "<redacted>"


def is_secret(name: str) -> bool:
    """Whether an environment variable of this name holds a secret (its value is never written)."""
    return _SECRET_WORD.search(name) is not None


def redact(env: dict[str, str]) -> dict[str, str]:
    """The mapping with every secret's value replaced by ``<redacted>``."""
    return {name: (REDACTED if is_secret(name) else value) for name, value in env.items()}
