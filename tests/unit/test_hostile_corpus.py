"""The hostile-input corpus (``hostile_cases.py``): each case refused with exit status 2 and one ``error:`` line
naming the setting and its fix; no traceback, nothing written, nothing submitted; and ``validate`` agrees with
``submit --dry-run`` on every case (one verdict computes both)."""

from __future__ import annotations

import collections
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from orchestrator.cli import main
from orchestrator.submit.backends import local, slurm

from hostile_cases import BASE, CASES, Case


@pytest.fixture
def sandbox(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, forbid_submission: Callable[..., None]) -> None:
    """Fail the test if anything is submitted, cancelled or a run directory created; run in the test's directory."""
    forbid_submission("a refused input submitted or created something",
                      (slurm, "cancel"), (slurm, "requeue_job"), (local.LocalBackend, "cancel"))
    for name in ("ORCHESTRATOR_PROFILES_DIR", "ORCHESTRATOR_RECIPES_DIR", "ORCHESTRATOR_RUNS"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)


def _fill(text: str, tmp: Path) -> str:
    return text.replace("{tmp}", str(tmp))


def prepare(case: Case, tmp: Path) -> tuple[list[str], dict[str, str]]:
    """Write the case's files; its argv and environment for this directory."""
    for rel, content in case.files.items():
        path = tmp / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(_fill(content, tmp))
    return [_fill(a, tmp) for a in case.argv], {k: _fill(v, tmp) for k, v in case.env.items()}


def snapshot(tmp: Path) -> dict[str, bytes]:
    return {str(p.relative_to(tmp)): (p.read_bytes() if p.is_file() else b"<dir>") for p in sorted(tmp.rglob("*"))}


def invoke(cli: CliRunner, argv: list[str], env: dict[str, str]) -> Result:
    return cli.invoke(main, argv, env=env)


def error_lines(out: Result) -> list[str]:
    return [line for line in out.stderr.splitlines() if line.startswith("error:")]


def assert_refused(out: Result, setting: str) -> None:
    """Exit 2, no traceback; the first error line names the setting, every error line (one per problem) has a fix;
    every other line is a warning or the summary."""
    assert out.exit_code == 2, out.output
    assert isinstance(out.exception, SystemExit), f"traceback: {out.exception!r}"
    assert "Traceback" not in out.output and out.stdout == ""
    errors = error_lines(out)
    assert errors and setting in errors[0], out.stderr
    assert all("(fix: " in line and line.endswith(")") for line in errors), errors
    others = [line for line in out.stderr.splitlines() if line not in errors]
    assert all(line.startswith("warning:") or line.endswith("nothing was rendered or submitted")
               for line in others), out.stderr


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_hostile_input_is_refused_in_one_line(cli: CliRunner, tmp_path: Path, sandbox: None, case: Case) -> None:
    argv, env = prepare(case, tmp_path)
    before = snapshot(tmp_path)
    out = invoke(cli, argv, env)
    assert_refused(out, case.setting)
    assert snapshot(tmp_path) == before, "something was written"
    assert not list(tmp_path.rglob("pwned"))


def test_the_corpus_covers_categories_1_to_9_with_100_cases() -> None:
    counts = collections.Counter(case.category for case in CASES)
    assert sorted(counts) == list(range(1, 10)) and all(n >= 5 for n in counts.values()), counts
    assert len(CASES) >= 100 and len({case.id for case in CASES}) == len(CASES)


@pytest.mark.parametrize("case", [c for c in CASES if c.checkable], ids=lambda c: c.id)
def test_validate_and_submit_dry_run_agree(cli: CliRunner, tmp_path: Path, sandbox: None, case: Case) -> None:
    argv, env = prepare(case, tmp_path)
    checked = invoke(cli, ["validate", *argv[1:]], env)
    dry = invoke(cli, ["submit", *argv[1:], "--dry-run"], env)
    assert (checked.exit_code, dry.exit_code) == (2, 2), checked.output + dry.output
    assert error_lines(checked) == error_lines(dry)


@pytest.mark.parametrize("extra", [(), ("--set", "profile.account=0123"), ("--set", "profile.account=0x1F"),
                                   ("--set", "profile.time_limit=4:00:00")], ids=["base", "octal", "hex", "time"])
def test_validate_and_submit_dry_run_agree_on_valid_input(cli: CliRunner, tmp_path: Path, sandbox: None,
                                                          extra: tuple[str, ...]) -> None:
    argv = [_fill(a, tmp_path) for a in (*BASE, *extra)]
    checked = cli.invoke(main, ["validate", "--no-megatron", *argv])
    dry = cli.invoke(main, ["submit", *argv, "--dry-run"])
    assert (checked.exit_code, dry.exit_code) == (0, 0), checked.output + dry.output
    assert checked.stdout.startswith("ok: ") and "===== sbatch.sh =====" in dry.stdout
