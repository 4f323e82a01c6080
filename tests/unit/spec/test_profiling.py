"""One-flag profiling: ``submit --profile-steps A-B [--profile-ranks R,..] [--memory-snapshot]`` → Megatron's
torch-profiler and memory-history flags (Megatron's own check accepts them: tests/megatron_own), refusals in one line,
and ``report`` listing what profiling wrote."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from orchestrator.cli import main
from orchestrator.observe import report
from orchestrator.spec import megatron_args
from orchestrator.spec.config import load_experiment, profile_steps

FIXTURE_LOG = Path(__file__).parents[2] / "fixtures" / "megatron-logs" / "ok_bf16_alltoall_ep2.log"


def test_steps_are_parsed_in_one_place() -> None:
    assert profile_steps("5-7") == (5, 7)
    for bad in ("7-5", "0-3", "5", "a-b", "5-5"):
        with pytest.raises(ValueError):
            profile_steps(bad)


def test_the_flags_megatron_needs_for_its_torch_profiler() -> None:
    exp = load_experiment("local", None, ["profiling.steps=4-6", "profiling.ranks=[0,1]",
                                          "profiling.memory_snapshot=true"])
    argv = megatron_args.build(exp, "/runs/r").argv
    at = argv.index("--profile")
    assert argv[at:at + 12] == ["--profile", "--use-pytorch-profiler", "--profile-step-start", "4",
                                "--profile-step-end", "6", "--tensorboard-dir", "/runs/r/tensorboard",
                                "--profile-ranks", "0", "1", "--record-memory-history"]
    assert argv[argv.index("--memory-snapshot-path") + 1] == "/runs/r/memory-snapshot.pickle"
    assert "--profile" not in megatron_args.build(load_experiment("local", None), "/runs/r").argv


@pytest.mark.parametrize("flags,message", [
    (["--profile-steps", "6-4"], "error: profiling.steps: '6-4': A must be at least 1 and below B"),
    (["--profile-steps", "5-30"], "error: profiling.steps: ends at iteration 30, after the run's 20"),
    (["--profile-steps", "2-4", "--profile-ranks", "0,7"], "error: profiling.ranks: [7] are not ranks of a world of 2"),
])
def test_bad_profiling_is_one_line_and_nothing_is_submitted(flags: list[str], message: str, tmp_path: Path,
                                                            forbid_submission: object) -> None:
    out = CliRunner().invoke(main, ["submit", "--profile", "local", "--no-megatron", *flags,
                                    "--set", f"profile.output_root={tmp_path}/runs"])
    assert out.exit_code == 2 and out.stderr.startswith(message), out.output
    assert not (tmp_path / "runs").exists()


def test_report_lists_what_profiling_wrote(tmp_path: Path) -> None:
    (tmp_path / "logs").mkdir()
    (tmp_path / "logs" / "run.log").write_text(FIXTURE_LOG.read_text())
    (tmp_path / "torch_profile").mkdir()
    with gzip.open(tmp_path / "torch_profile" / "rank-0.json.gz", "wt") as fh:
        json.dump({"traceEvents": []}, fh)
    [row] = report.build_report([tmp_path])
    assert row.profiles == [str(tmp_path / "torch_profile" / "rank-0.json.gz")]
    assert f"profiling wrote {tmp_path}/torch_profile/rank-0.json.gz" in report.table([row])
