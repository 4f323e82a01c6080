"""Shared test helpers: the repository root and a CLI runner."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def cli() -> CliRunner:
    return CliRunner()
