"""Hostile inputs that need more than the in-process corpus: a read-only output root (a read-only bind mount in a
private mount namespace), files another user cannot read (the CLI run as ``nobody``), and YAML 1.1's implicit types
kept as the text written."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from orchestrator.cli import main
from orchestrator.spec.config import load_recipe

ROOT = Path(__file__).resolve().parents[2]
BASE = ["--profile", "local-slurm", "--recipe", "dsv3-proxy-3l"]


MARGIN = load_recipe("dsv3-proxy-3l").training.exit_margin_minutes


def exit_duration(printed: str) -> int:
    """``--exit-duration-in-mins`` of the job.json a dry run printed."""
    command = json.loads(printed.split("===== job.json =====\n", 1)[1].split("=====")[0])["command"]
    return int(command[command.index("--exit-duration-in-mins") + 1])


def cli_argv(*args: str) -> list[str]:
    return [sys.executable, "-m", "orchestrator", *args]


def assert_one_line(proc: subprocess.CompletedProcess[str], *words: str) -> None:
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr and proc.stdout == ""
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "(fix: " in errors[0] and all(w in errors[0] for w in words), proc.stderr


@pytest.fixture
def shared_dir() -> Iterator[Path]:
    """A directory every user may enter (pytest's own tmp directories are private to root)."""
    path = Path(tempfile.mkdtemp(prefix="orch-hostile-"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


def can_mount_privately() -> bool:
    probe = subprocess.run(["unshare", "-m", "true"], capture_output=True)
    return probe.returncode == 0


@pytest.mark.skipif(not can_mount_privately(), reason="needs unshare -m (a private mount namespace)")
def test_a_read_only_output_root_is_refused_before_anything_is_written(shared_dir: Path) -> None:
    root = shared_dir / "ro"
    root.mkdir()
    script = (f"mount --bind -o ro {root} {root} && exec {' '.join(cli_argv('submit', *BASE))} "
              f"--set profile.output_root={root}/runs")
    proc = subprocess.run(["unshare", "-m", "sh", "-c", script], capture_output=True, text=True, cwd=shared_dir,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert_one_line(proc, "profile.output_root", "not writable")
    assert list(root.iterdir()) == []


NO_DAC = ["setpriv", "--bounding-set=-dac_override,-dac_read_search", "--inh-caps=-dac_override,-dac_read_search"]
"""Run as this user without the capability to read other modes' files (root would read a mode-000 file)."""


def without_dac(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    prefix = NO_DAC if os.geteuid() == 0 else []
    return subprocess.run([*prefix, *args], capture_output=True, text=True, cwd=cwd,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})


@pytest.mark.skipif(os.geteuid() == 0 and shutil.which("setpriv") is None, reason="root needs setpriv to drop DAC")
@pytest.mark.parametrize("verb", ["validate", "submit"])
def test_an_unreadable_profile_says_permission_not_syntax(tmp_path: Path, verb: str) -> None:
    profile = tmp_path / "p.yaml"
    profile.write_text("scheduler: slurm\nnodes: 2\ngpus_per_node: 2\n")
    profile.chmod(0)
    proc = without_dac(cli_argv(verb, "--profile", str(profile), "--recipe", "dsv3-proxy-3l"), tmp_path)
    assert_one_line(proc, str(profile), "permission denied", "chmod")
    assert "syntax" not in proc.stderr and not (tmp_path / "runs").exists()


@pytest.mark.skipif(os.geteuid() == 0 and shutil.which("setpriv") is None, reason="root needs setpriv to drop DAC")
def test_an_unreadable_log_is_one_line_in_logs_and_a_note_in_status(tmp_path: Path) -> None:
    run = tmp_path / "runs" / "r1"
    (run / "logs").mkdir(parents=True)
    record = {"run_id": "r1", "kind": "single", "backend": "local", "profile": {}, "recipe": {}, "overrides": [],
              "command": [], "env": {}, "versions": {}, "files": [],
              "jobs": [{"job_id": "999999999", "role": "run", "script": "launch_local.sh"}]}
    (run / "record.json").write_text(json.dumps(record))
    log = run / "logs" / "x_999999999.log"
    log.write_text("iteration 1\n")
    log.chmod(0)
    logs = without_dac(cli_argv("logs", str(run)), tmp_path)
    assert logs.returncode == 1 and "Traceback" not in logs.stderr
    assert logs.stderr.strip().splitlines()[-1] == (f"error: logs: {log} cannot be read (Permission denied) "
                                                    "(fix: check its permissions)")
    status = without_dac(cli_argv("status", str(run)), tmp_path)
    assert status.returncode == 0 and "Traceback" not in status.stderr, status.stderr
    assert "cannot read x_999999999.log" in status.stdout


def test_yaml_keeps_octal_hex_and_sexagesimal_text_as_written(cli: CliRunner, tmp_path: Path) -> None:
    (tmp_path / "p.yaml").write_text("extends: local-slurm\naccount: 0123\npartition: 0x1F\nqos: 1.50\n"
                                     "time_limit: 4:00:00\nreservation: 2026-01-01\n")
    out = cli.invoke(main, ["render", "--profile", str(tmp_path / "p.yaml"), "--recipe", "dsv3-proxy-3l",
                            "--set", f"profile.output_root={tmp_path}/runs", "--dry-run"])
    assert out.exit_code == 0, out.output
    for line in ("#SBATCH --account=0123", "#SBATCH --partition=0x1F", "#SBATCH --qos=1.50",
                 "#SBATCH --time=4:00:00", "#SBATCH --reservation=2026-01-01"):
        assert line in out.stdout
    assert exit_duration(out.stdout) == 240 - MARGIN      # 4 hours less the recipe's margin, not 14400 minutes


def test_set_keeps_text_as_written_too(cli: CliRunner, tmp_path: Path) -> None:
    out = cli.invoke(main, ["render", *BASE, "--set", f"profile.output_root={tmp_path}/runs", "--dry-run",
                            "--set", "profile.time_limit=12:00:00", "--set", "profile.account=0123"])
    assert out.exit_code == 0, out.output
    assert "#SBATCH --time=12:00:00" in out.stdout and "#SBATCH --account=0123" in out.stdout
    assert exit_duration(out.stdout) == 720 - MARGIN      # not 43198


@pytest.mark.parametrize("limit, minutes", [("30", 30), ("30:10", 31), ("4:00:00", 240), ("1-12", 2160),
                                            ("1-12:30", 2190), ("2-00:00:00", 2880)])
def test_every_slurm_time_format_is_understood(limit: str, minutes: int) -> None:
    from orchestrator.spec.slurm_time import limit_minutes as time_limit_minutes
    assert time_limit_minutes(limit) == minutes


def test_a_name_is_refused_in_every_rendered_file_path_not_just_one() -> None:
    """The template engine writes no text without a filter: a value that skips one is a bug, caught at render."""
    from orchestrator.submit.render import environment
    template = environment().from_string("# {{ name }}\n")
    with pytest.raises(TypeError, match="without a filter"):
        template.render(name="x\ntouch pwned")
    assert environment().from_string("# {{ name | comment }}\n").render(name="ok") == "# ok\n"


def test_cancel_says_a_job_had_already_ended_instead_of_claiming_it_cancelled(cli: CliRunner, tmp_path: Path) -> None:
    run = tmp_path / "r1"
    (run / "logs").mkdir(parents=True)
    record = {"run_id": "r1", "kind": "single", "backend": "local", "profile": {}, "recipe": {}, "overrides": [],
              "command": [], "env": {}, "versions": {}, "files": [],
              "jobs": [{"job_id": "999999999", "role": "run", "script": "launch_local.sh"}]}
    (run / "record.json").write_text(json.dumps(record))
    out = cli.invoke(main, ["cancel", str(run)])
    assert out.exit_code == 0, out.output
    assert out.stdout == "999999999 (r1) had already ended (CANCELLED): nothing to cancel\n"
    (run / ".submitit").mkdir()
    (run / ".submitit" / "999999999_exit.json").write_text('{"exit_code": 0}\n')
    assert "had already ended (COMPLETED)" in cli.invoke(main, ["cancel", str(run)]).stdout


def test_every_numeric_setting_has_a_documented_range() -> None:
    """One place (the field's metadata) holds each numeric field's valid range, and its doc shows it."""
    import dataclasses
    from typing import get_type_hints

    from orchestrator.spec import config, sweep
    from orchestrator.spec.schema import field_doc, valid_of
    classes = (config.ClusterProfile, config.ContainerConfig, config.ModelConfig, config.ParallelConfig,
               config.TrainingConfig, config.Switches, config.Recipe, sweep.Sweep, sweep.Variant)
    numeric = {int, float, int | None, float | None}
    missing = [f"{cls.__name__}.{f.name}" for cls in classes for f in dataclasses.fields(cls)
               if get_type_hints(cls)[f.name] in numeric and (valid_of(cls, f.name) is None
                                                              or "(valid: " not in field_doc(cls, f.name))]
    assert missing == []
    assert sum(get_type_hints(c)[f.name] in numeric for c in classes for f in dataclasses.fields(c)) >= 45
    assert field_doc(config.ClusterProfile, "nodes").endswith("(valid: 1 to 100000)")
