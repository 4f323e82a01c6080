"""The one definition of a secret's name.

A secret never lands in a rendered file, a run record or a log: validation and rendering refuse an ``env`` entry
whose name looks like one (export it in the shell and list it in ``profile.env_passthrough``: jobs pass it on by
name), and run records redact such values.

A name looks like a secret when one of its ``_``-separated words is a secret word (``DB_PASS``, ``GITHUB_PAT``,
``AWS_SECRET_ACCESS_KEY``) or when it contains a long secret word anywhere (``APIKEY``, ``MYTOKEN``,
``SERVICE_CREDENTIALS``).
"""

from __future__ import annotations

import re

PASSTHROUGH: tuple[str, ...] = ("WANDB_API_KEY", "HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "NGC_API_KEY")
"""Secrets every job passes through by name from the submitting shell (the node entry copies them per rank)."""

WORDS: frozenset[str] = frozenset({
    "KEY", "KEYS", "TOKEN", "TOKENS", "SECRET", "SECRETS", "PASSWORD", "PASSWD", "PASS", "PWD", "PW", "CREDENTIAL",
    "CREDENTIALS", "CRED", "CREDS", "PAT", "AUTH", "AUTHORIZATION", "COOKIE", "PRIVATE", "APIKEY", "PASSPHRASE",
    "BEARER", "OAUTH", "DSN"})
"""A name holding one of these words (split at ``_``) is a secret's."""

_ANYWHERE = re.compile(r"TOKEN|SECRET|PASSW|CREDENTIAL|APIKEY|API_KEY|PRIVATE_KEY|ACCESS_KEY|PASSPHRASE")

NOT_SECRETS: frozenset[str] = frozenset({"PWD", "OLDPWD"})
"""Shell variables whose word happens to be a secret word (the working directory)."""

REDACTED = "<redacted>"


def is_secret(name: str) -> bool:
    """Whether an environment variable of this name holds a secret (its value is never written)."""
    upper = name.upper()
    if upper in NOT_SECRETS:
        return False
    return bool(WORDS & set(upper.split("_"))) or _ANYWHERE.search(upper) is not None


def redact(env: dict[str, str]) -> dict[str, str]:
    """The mapping with every secret's value replaced by ``<redacted>``."""
    return {name: (REDACTED if is_secret(name) else value) for name, value in env.items()}


def passthrough(extra: list[str] | tuple[str, ...]) -> tuple[str, ...]:
    """The names a job passes through: the built-in ones, then the profile's ``env_passthrough``, once each."""
    return tuple(dict.fromkeys([*PASSTHROUGH, *extra]))
