"""What every verb shares to end: exit codes, the one-line error, a run directory's error. Light on purpose:
``status`` imports only this (and what it reads), never the submit side."""

from __future__ import annotations

import sys
from typing import NoReturn

import click

from ..submit import run_records

SCREENFUL = 40
"""More status rows (or dry-run files) than this are summarised unless every one is asked for."""
EXIT_INVALID = 2
EXIT_FAILED = 1


def fail(message: str, code: int = EXIT_INVALID) -> NoReturn:
    """Print one line to stderr and exit."""
    click.echo(f"error: {message}", err=True)
    sys.exit(code)


def run_error(verb: str, exc: run_records.RunError) -> str:
    """One line for a run directory that cannot be used: a damaged record names its file, field and fix."""
    fix = exc.fix if isinstance(exc, run_records.RecordError) else "pass a run directory or --root"
    return f"{verb}: {exc} (fix: {fix})"
