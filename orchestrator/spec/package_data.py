"""Where the packaged data lives: ``templates/``, ``cluster_profiles/`` and ``recipes/``.

In a checkout they sit at the repository root; in an installed wheel setup.cfg maps them to the packages
``orchestrator.templates``, ``orchestrator.cluster_profiles`` and ``orchestrator.recipes_data``.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

_ROOT = Path(__file__).resolve().parent.parent.parent


def _data_dir(checkout_name: str, package: str) -> Path:
    local = _ROOT / checkout_name
    if local.is_dir():
        return local
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(f"packaged data {package} is missing: reinstall the toolkit (pip install .)")
    return Path(list(spec.submodule_search_locations)[0])


def package_dir() -> Path:
    """The orchestrator package's own directory (what a container mounts to run the node entry)."""
    return Path(__file__).resolve().parent.parent


def templates_dir() -> Path:
    """The Jinja2 templates."""
    return _data_dir("templates", "orchestrator.templates")


def profiles_dir() -> Path:
    """The built-in cluster profiles."""
    return _data_dir("cluster_profiles", "orchestrator.cluster_profiles")


def recipes_dir() -> Path:
    """The built-in recipes."""
    return _data_dir("recipes", "orchestrator.recipes_data")


def repo_file(name: str) -> Path | None:
    """A file at the checkout's root (run.sh, scripts/), when running from a checkout."""
    path = _ROOT / name
    return path if path.exists() else None
