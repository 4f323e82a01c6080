"""What may reach a rendered file unquoted: environment names, ``#SBATCH`` values and comment text.

The renderer's filters (``submit.render``) and the validation rules (``submit.rules``) both ask here, so
``validate`` refuses exactly what rendering would refuse, with the setting named.
"""

from __future__ import annotations

import re

ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
SBATCH_SAFE = re.compile(r"[A-Za-z0-9_.,:@%/+=\-\[\]]+")
SBATCH_CHARS = "letters, digits and . , : @ % / + = - _ [ ] only"
_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f\u0085\u2028\u2029\ud800-\udfff]")


def is_env_name(text: str) -> bool:
    """A valid environment variable name (whole match: ``'A\\n'`` is not one)."""
    return ENV_NAME.fullmatch(text) is not None


def is_sbatch_safe(text: str) -> bool:
    """Text an ``#SBATCH`` line can carry: no space, quote, newline or shell syntax."""
    return SBATCH_SAFE.fullmatch(text) is not None


def has_control(text: str) -> bool:
    """Whether text holds a line break, another control character (a tab is allowed) or a lone surrogate (which no
    file can hold: YAML's ``"\\ud800"`` makes one)."""
    return _CONTROL.search(text) is not None
