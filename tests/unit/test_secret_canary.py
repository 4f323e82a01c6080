"""A canary secret, set every way a user can set one, never lands in a file of the run directory, submitit's folder
or printed output: exported under a passthrough name (built-in or the profile's ``env_passthrough``) it travels by
name only; written as a value (``--set env.…``, a profile's or recipe's ``env``, a sweep variant, run.sh's
EXTRA_SET) it is refused without being echoed.

The real submissions use the local back-end (submitit's local controller, no Slurm) with ``profile.python=/bin/true``,
so each rank's node command exits at once: what is checked is what the toolkit writes, not what training prints.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from orchestrator.cli import main

CANARY = "canary-5ecret-7f3a9c"
EXPORTED = {"WANDB_API_KEY": CANARY, "HF_TOKEN": CANARY, "MY_SERVICE_TOKEN": CANARY, "DB_PASS": CANARY}
LOCAL = ["--profile", "local", "--recipe", "dsv3-proxy-3l", "--set", "profile.python=/bin/true",
         "--set", "profile.env_passthrough=[MY_SERVICE_TOKEN, DB_PASS]"]


@pytest.fixture
def shell(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """The submitting shell: the canary exported under four names; the test's directory as working directory."""
    for name, value in EXPORTED.items():
        monkeypatch.setenv(name, value)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def leaks(root: Path) -> list[str]:
    """Every file under root whose bytes hold the canary."""
    return [str(p) for p in root.rglob("*") if p.is_file() and CANARY.encode() in p.read_bytes()]


def printed(out: Result) -> str:
    return out.stdout + out.stderr


def wait_for_exit_files(run_dir: Path, count: int) -> None:
    """The local controller writes ``.submitit/<id>_exit.json`` when its job ends (bounded wait, not a timing check)."""
    deadline = time.monotonic() + 120
    while len(list((run_dir / ".submitit").glob("*_exit.json"))) < count and time.monotonic() < deadline:
        time.sleep(0.5)
    assert len(list((run_dir / ".submitit").glob("*_exit.json"))) == count, "the local job did not end"


def test_exported_secrets_travel_by_name_only(cli: CliRunner, shell: Path) -> None:
    root = shell / "runs"
    dry = cli.invoke(main, ["submit", *LOCAL, "--set", f"profile.output_root={root}", "--dry-run"])
    assert dry.exit_code == 0, dry.output
    assert CANARY not in printed(dry)
    assert '"env_passthrough": [' in dry.stdout and '"MY_SERVICE_TOKEN"' in dry.stdout and '"DB_PASS"' in dry.stdout
    out = cli.invoke(main, ["submit", *LOCAL, "--set", f"profile.output_root={root}"])
    assert out.exit_code == 0, out.output
    run_dir = next(p for p in root.iterdir() if p.is_dir())
    wait_for_exit_files(run_dir, 1)
    assert json.loads(next((run_dir / ".submitit").glob("*_exit.json")).read_text()) == {"exit_code": 0}
    assert (run_dir / ".submitit").is_dir() and list((run_dir / ".submitit").iterdir())
    assert CANARY not in printed(out) and leaks(shell) == []
    status = cli.invoke(main, ["status", str(run_dir)])
    logs = cli.invoke(main, ["logs", str(run_dir)])
    assert CANARY not in printed(status) + printed(logs) and status.exit_code == 0, status.output


def test_a_local_sweep_keeps_them_out_too(cli: CliRunner, shell: Path) -> None:
    sweep = shell / "s.yaml"
    sweep.write_text("name: s\nvariants:\n  - name: a\n  - name: b\n    set: [training.seed=7]\n")
    out = cli.invoke(main, ["submit", *LOCAL, "--set", f"profile.output_root={shell}/runs", "--sweep", str(sweep)])
    assert out.exit_code == 0, out.output
    run_dir = next(p for p in (shell / "runs").iterdir() if p.is_dir())
    wait_for_exit_files(run_dir, 1)
    assert CANARY not in printed(out) and leaks(shell) == []


@pytest.mark.parametrize("how", [
    ["--set", f"env.SERVICE_CREDENTIAL={CANARY}"], ["--set", f"env.GITHUB_PAT={CANARY}"],
    ["--set", f"profile.env.DB_PASS={CANARY}"], ["--set", f"env.HF_TOKEN=[{CANARY}]"],
    ["--set", f"env.HF_TOKEN={{a: {CANARY}}}"], ["--profile-file"], ["--recipe-file"], ["--sweep"]],
    ids=["set-credential", "set-pat", "set-profile-env", "set-list", "set-mapping", "profile-file", "recipe-file",
         "sweep-variant"])
def test_secrets_written_as_values_are_refused_without_echo(cli: CliRunner, shell: Path, how: list[str]) -> None:
    args = ["--set", f"profile.output_root={shell}/runs"]
    (shell / "mine").mkdir()
    (shell / "mine" / "p.yaml").write_text(f"extends: local\nenv: {{NGC_API_KEY: {CANARY}}}\n")
    (shell / "mine" / "r.yaml").write_text(f"extends: dsv3-proxy-3l\nenv: {{SLACK_TOKEN: {CANARY}}}\n")
    (shell / "s.yaml").write_text(f"name: s\nvariants:\n  - name: a\n    set: [env.WANDB_API_KEY={CANARY}]\n")
    if how == ["--profile-file"]:
        argv = ["--profile", "p", "--profiles-dir", str(shell / "mine"), "--recipe", "dsv3-proxy-3l", *args]
    elif how == ["--recipe-file"]:
        argv = ["--profile", "local", "--recipe", "r", "--recipes-dir", str(shell / "mine"), *args]
    elif how == ["--sweep"]:
        argv = [*LOCAL, *args, "--sweep", str(shell / "s.yaml")]
    else:
        argv = [*LOCAL, *args, *how]
    for verb in (["validate"], ["submit", "--dry-run"], ["submit"]):
        if verb == ["validate"] and how == ["--sweep"]:
            continue
        out = cli.invoke(main, [*verb, *argv])
        assert out.exit_code == 2, out.output
        assert CANARY not in printed(out), printed(out)
    assert not (shell / "runs").exists()


def test_run_sh_extra_set_secret_is_refused_without_echo(cli: CliRunner, shell: Path) -> None:
    env = {"PROFILE": "local", "OUTPUT_DIR": f"{shell}/runs", "EXTRA_SET": f"env.DB_PASSWORD={CANARY}"}
    out = cli.invoke(main, ["runsh"], env=env)
    assert out.exit_code == 2 and CANARY not in printed(out), printed(out)
    assert not (shell / "runs").exists()
