"""Provenance: which code ran (git commit and dirty state with the diff, the image), recorded at submit; rank 0's
own packages; ``submit --from`` says what differs now."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from orchestrator.cli import main
from orchestrator.node import entry, jobspec
from orchestrator.submit import provenance

ROOT = Path(__file__).parents[3]


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True, check=True).stdout


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    path = tmp_path / "megatron"
    path.mkdir()
    git(path, "init", "-q")
    (path / "pretrain_gpt.py").write_text("print('x')\n")
    git(path, "add", ".")
    git(path, "-c", "user.email=t@t", "-c", "user.name=t", "commit", "-q", "-m", "one")
    return path


def test_a_checkout_is_recorded_by_commit_and_its_changes_saved(repo: Path) -> None:
    clean, diff = provenance.git_state(repo)
    assert clean == {"path": str(repo), "git": git(repo, "rev-parse", "HEAD").strip(), "dirty": False} and diff == ""
    (repo / "pretrain_gpt.py").write_text("print('patched')\n")
    dirty, diff = provenance.git_state(repo)
    assert dirty["dirty"] is True and "+print('patched')" in diff
    assert provenance.git_state(repo.parent)[0]["git"] is None


def test_an_image_file_is_hashed_and_a_registry_name_recorded_by_name(tmp_path: Path) -> None:
    image = tmp_path / "img.sqsh"
    image.write_bytes(b"squashfs" * 100)
    found = provenance.image_state(str(image))
    assert found["bytes"] == 800 and len(found["sha256"]) == 64
    assert "sha256" not in provenance.image_state("nvcr.io#nvidia/pytorch:25.09-py3")


def test_changes_are_said_one_phrase_each() -> None:
    then = {"toolkit": {"git": "a" * 40, "dirty": False}}
    now = {"toolkit": {"git": "b" * 40, "dirty": True}}
    assert provenance.changes(then, now) == ["toolkit git: aaaaaaaaaaaa then, bbbbbbbbbbbb now",
                                             "toolkit dirty: False then, True now"]
    assert provenance.changes(then, then) == []


def test_the_record_holds_it_and_from_says_what_differs(tmp_path: Path, repo: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    import types

    from orchestrator.submit.backends import slurm_executor

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(slurm_executor.TemplateSlurmExecutor, "submit_script",
                        lambda self: types.SimpleNamespace(job_id="7001"))   # sbatch answered by a stub
    args = ["submit", "--profile", "local-slurm", "--set", f"profile.output_root={tmp_path}/runs",
            "--set", f"profile.megatron_path={repo}"]
    assert CliRunner().invoke(main, args).exit_code == 0
    [run_dir] = list((tmp_path / "runs").iterdir())
    rec = json.loads((run_dir / "record.json").read_text())["provenance"]
    assert rec["toolkit"]["git"] == git(ROOT, "rev-parse", "HEAD").strip()
    assert rec["megatron"] == {"path": str(repo), "git": git(repo, "rev-parse", "HEAD").strip(), "dirty": False}
    (repo / "pretrain_gpt.py").write_text("print('patched')\n")   # the checkout changed since
    again = CliRunner().invoke(main, ["submit", "--from", str(run_dir), "--dry-run"])
    assert again.exit_code == 0, again.output
    assert "warning: provenance: differs from the recorded run: megatron dirty: False then, True now" in again.stderr


def test_rank_0_records_the_jobs_own_packages(tmp_path: Path) -> None:
    spec = jobspec.JobSpec(name="x", command=(sys.executable, "-c", "pass"))
    entry.write_packages(spec, tmp_path, {"SLURM_JOB_ID": "42", "PATH": "/usr/bin:/bin"})
    freeze = (tmp_path / "provenance" / "pip-freeze-42.txt").read_text()
    versions = json.loads((tmp_path / "provenance" / "versions-42.json").read_text())
    assert "click==" in freeze.lower() and versions["python"] == sys.executable
    assert set(versions) - {"python"} <= {"torch", "megatron-core", "megatron_core", "transformer-engine",
                                          "transformer_engine", "transformer_engine_torch", "deep_ep", "deep-ep",
                                          "nvidia-resiliency-ext"}
