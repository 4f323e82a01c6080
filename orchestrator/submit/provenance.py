"""Which code ran: the git commit and dirty state of the toolkit and of the Megatron checkout (their uncommitted
diff saved in the run directory), and the container image (size, time, and its sha256 where it is a file small
enough to hash at submit). Recorded in ``record.json`` under ``provenance``; ``submit --from`` says what differs
now. Rank 0 adds the job's own ``pip freeze`` and versions on the node (``node.entry``).
"""

from __future__ import annotations

import hashlib
import subprocess
from pathlib import Path
from typing import Any

from ..spec import package_data
from ..spec.config import Experiment

HASH_LIMIT = 1 << 30
"""Images up to 1 GiB are hashed at submit; a larger one (a 20 GB squashfs) is recorded by size and time."""

DIFF_DIR = "provenance"
"""Where the uncommitted diffs go, in the run directory."""


def _git(path: Path, *args: str) -> str | None:
    try:
        out = subprocess.run(["git", "-C", str(path), *args], capture_output=True, text=True, timeout=20, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout if out.returncode == 0 else None


def git_state(path: Path) -> tuple[dict[str, Any], str]:
    """(what the record says of the checkout at ``path``, its uncommitted diff or '')."""
    sha = _git(path, "rev-parse", "HEAD")
    if sha is None:
        return {"path": str(path), "git": None, "note": "not a git checkout readable here"}, ""
    status = _git(path, "status", "--porcelain", "--untracked-files=no") or ""
    diff = (_git(path, "diff", "HEAD") or "") if status.strip() else ""
    return {"path": str(path), "git": sha.strip(), "dirty": bool(status.strip())}, diff


def image_state(image: str) -> dict[str, Any]:
    """The container image: its name, and for a file its size, time and (up to ``HASH_LIMIT``) sha256."""
    path = Path(image)
    if not path.is_file():
        return {"image": image, "note": "not a file here (a registry name): recorded by name"}
    stat = path.stat()
    found: dict[str, Any] = {"image": image, "bytes": stat.st_size, "mtime": int(stat.st_mtime)}
    if stat.st_size <= HASH_LIMIT:
        digest = hashlib.sha256()
        with path.open("rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                digest.update(block)
        found["sha256"] = digest.hexdigest()
    return found


def collect(exp: Experiment) -> tuple[dict[str, Any], dict[str, str]]:
    """(the record's ``provenance``, the diff files to write: relative path -> text)."""
    checkouts = {"toolkit": package_data.package_dir().parent}
    if exp.profile.megatron_path:
        checkouts["megatron"] = Path(exp.profile.megatron_path)
    found: dict[str, Any] = {}
    files: dict[str, str] = {}
    for part, path in checkouts.items():
        found[part], diff = git_state(path)
        if diff:
            found[part]["diff"] = f"{DIFF_DIR}/{part}.diff"
            files[found[part]["diff"]] = diff
    if exp.profile.container.image:
        found["container"] = image_state(exp.profile.container.image)
    return found, files


def changes(then: dict[str, Any], now: dict[str, Any]) -> list[str]:
    """What differs between a recorded provenance and today's, one phrase each (``submit --from`` says them)."""
    out = []
    for part in sorted(set(then) | set(now)):
        was, is_now = then.get(part) or {}, now.get(part) or {}
        for key in ("git", "dirty", "sha256", "bytes", "mtime"):
            if was.get(key) != is_now.get(key) and (key in was or key in is_now):
                out.append(f"{part} {key}: {_short(was.get(key))} then, {_short(is_now.get(key))} now")
    return out


def _short(value: Any) -> str:
    return value[:12] if isinstance(value, str) and len(value) == 40 else str(value)
