"""The CLI as a user drives it: profiles, render --dry-run/--out/--run-sh, validate; exit codes and one-line errors."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from click.testing import CliRunner

from orchestrator.cli import main
from orchestrator.spec.config import load_profile
from orchestrator.submit.run_script import render_run_sh

ROOT = Path(__file__).resolve().parents[3]


def test_profiles_table_lists_every_shipped_profile(cli: CliRunner) -> None:
    out = cli.invoke(main, ["profiles"])
    assert out.exit_code == 0
    for name in ("h100-eos", "h100", "h200", "gb200-nvl72", "local-slurm", "local"):
        assert f"\n{name} " in out.output
    assert "cluster_profiles/h100-eos.yaml" in out.output


def test_render_dry_run_prints_script_with_every_guide_configuration(cli: CliRunner) -> None:
    out = cli.invoke(main, ["render", "--profile", "h100-eos", "--dry-run"])
    assert out.exit_code == 0, out.output
    assert "===== sbatch.sh =====" in out.stdout and "#SBATCH --nodes=128" in out.stdout
    for flag in ("--moe-flex-dispatcher-backend", "--fp8-recipe", "--overlap-moe-expert-parallel-comm",
                 "--pipeline-model-parallel-layout", "Et|(tt|)*30mL", "--mtp-num-layers", "--manual-gc"):
        assert flag in out.stdout
    assert '"--cross-entropy-fusion-impl", "native"' in out.stdout
    assert "--cross-entropy-fusion-impl te" not in out.stdout  # h100 profiles target megatron-core 0.19.2
    assert "warning: megatron-core 0.19.2 (profile): --cross-entropy-fusion-impl te is refused" in out.stderr
    assert "missing: profile.account" in out.stderr


def test_render_out_writes_files_and_refuses_to_overwrite(cli: CliRunner, tmp_path: Path) -> None:
    out_dir = tmp_path / "try1"
    first = cli.invoke(main, ["render", "--profile", "local-slurm", "--recipe", "dsv3-proxy-3l", "--out", str(out_dir)])
    assert first.exit_code == 0, first.output
    assert (out_dir / "sbatch.sh").stat().st_mode & 0o111 and (out_dir / "job.json").exists()
    output = next(ln for ln in (out_dir / "sbatch.sh").read_text().splitlines() if ln.startswith("#SBATCH --output="))
    assert output.startswith(f"#SBATCH --output={out_dir}/logs/") and (out_dir / "logs").is_dir()  # sbatch it as is
    before = (out_dir / "sbatch.sh").read_text()
    again = cli.invoke(main, ["render", "--profile", "local-slurm", "--recipe", "dsv3-proxy-3l", "--out", str(out_dir),
                              "--set", "training.train_iters=5"])
    assert again.exit_code == 2 and "already holds" in again.stderr
    assert (out_dir / "sbatch.sh").read_text() == before


def test_validate_reports_every_problem_and_exits_2(cli: CliRunner) -> None:
    out = cli.invoke(main, ["validate", "--profile", "h100", "--set", "profile.account=a", "--set", "parallel.pp=4",
                            "--set", "training.global_batch_size=100"])
    assert out.exit_code == 2
    errors = [line for line in out.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 2
    assert any("parallel.pipeline_layout" in e and "32 stages but PP×VPP = 4×4 = 16" in e for e in errors)
    assert "nothing was rendered or submitted" in out.stderr


def test_validate_ok(cli: CliRunner) -> None:
    out = cli.invoke(main, ["validate", "--profile", "h100", "--set", "profile.account=a", "--no-megatron"])
    assert out.exit_code == 0, out.output
    assert "world size 1024" in out.output


def test_bad_override_is_one_line_exit_2(cli: CliRunner) -> None:
    out = cli.invoke(main, ["validate", "--profile", "h100", "--set", "parallel.pp=eight"])
    assert out.exit_code == 2
    assert out.stderr.strip() == ("error: recipe.parallel.pp: expected an integer, got 'eight' "
                                  "(fix: write a whole number, e.g. 8)")


def test_render_run_sh_for_a_cluster(cli: CliRunner, tmp_path: Path) -> None:
    target = tmp_path / "run.sh"
    out = cli.invoke(main, ["render", "--profile", "h100-eos", "--run-sh", str(target)])
    assert out.exit_code == 0
    text = target.read_text()
    assert "PROFILE=${PROFILE:-h100-eos}" in text and "PARTITION=${PARTITION:-batch}" in text
    assert "ACCOUNT=${ACCOUNT:-''}  # FILL: Slurm account" in text
    assert cli.invoke(main, ["render", "--profile", "h100-eos", "--run-sh", str(target)]).exit_code == 2


def test_top_level_run_sh_is_the_rendered_local_one() -> None:
    assert (ROOT / "run.sh").read_text() == render_run_sh(load_profile("local")), \
        "run.sh is stale: regenerate with  rm run.sh && python -m orchestrator render --profile local --run-sh run.sh"


def test_python_dash_m_and_exit_code() -> None:
    out = subprocess.run([sys.executable, "-m", "orchestrator", "render", "--profile", "nope", "--dry-run"],
                         capture_output=True, text=True, cwd=ROOT)
    assert out.returncode == 2 and out.stderr.startswith("error: --profile: no profile named 'nope'")


def test_recipes_explain_documents_every_switch(cli: CliRunner) -> None:
    import dataclasses

    from orchestrator.spec.config import Switches
    out = cli.invoke(main, ["recipes", "--explain", "deepseek-v3"])
    assert out.exit_code == 0
    for f in dataclasses.fields(Switches):
        line = next(line for line in out.stdout.splitlines() if line.startswith(f.name + " "))
        assert len(line.split(maxsplit=2)) == 3, f"{f.name} has no doc"
