"""The bundled training entry and the megatron-core wheel's packaging pitfalls, without megatron.

What a user checks: the argv Megatron gets, the lines printed, that Megatron's ``make`` step gets
past the wheel's missing Makefile, and that a node without megatron-core says so in one line.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

from orchestrator.node import megatron_compat as compat
from orchestrator.node import train
from orchestrator.node.megatron_compat import MakefileAction

ROOT = Path(__file__).resolve().parents[3]
PROXY_ARGS = ["--num-layers", "3", "--moe-grouped-gemm", "--bf16"]


def run_python(code: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("RANK", None)
    return subprocess.run(
        [sys.executable, "-c", code, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )


def datasets_dir(tmp_path: Path, *, helper: bool = True, makefile: bool = False) -> Path:
    folder = tmp_path / "megatron" / "core" / "datasets"
    folder.mkdir(parents=True)
    if helper:
        (folder / "helpers_cpp.cpython-312-x86_64-linux-gnu.so").write_bytes(b"\x7fELF")
    if makefile:
        (folder / "Makefile").write_text("all:\n\tg++ helpers.cpp\n")
    return folder


# --------------------------------------------------------------------------- gradient accumulation fusion


def test_no_apex_adds_no_gradient_accumulation_fusion_with_a_warning() -> None:
    fixed = compat.fix_gradient_accumulation_fusion(PROXY_ARGS, fused_wgrad_available=False)

    assert fixed.argv == PROXY_ARGS + ["--no-gradient-accumulation-fusion"]
    assert len(fixed.messages) == 1
    assert "WARNING" in fixed.messages[0]
    assert "fused_weight_gradient_mlp_cuda" in fixed.messages[0]
    assert "--no-gradient-accumulation-fusion" in fixed.messages[0]


def test_flag_already_given_is_left_alone_and_not_duplicated() -> None:
    argv = PROXY_ARGS + ["--no-gradient-accumulation-fusion"]

    fixed = compat.fix_gradient_accumulation_fusion(argv, fused_wgrad_available=False)

    assert fixed.argv == argv
    assert fixed.messages == []


def test_with_apex_the_fusion_stays_on() -> None:
    fixed = compat.fix_gradient_accumulation_fusion(PROXY_ARGS, fused_wgrad_available=True)

    assert fixed.argv == PROXY_ARGS
    assert fixed.messages == []


def test_fix_does_not_mutate_the_callers_argv() -> None:
    argv = list(PROXY_ARGS)
    compat.fix_gradient_accumulation_fusion(argv, fused_wgrad_available=False)
    assert argv == PROXY_ARGS


# --------------------------------------------------------------------------- the datasets Makefile


def test_missing_makefile_is_written_and_make_then_succeeds(tmp_path: Path) -> None:
    folder = datasets_dir(tmp_path)

    plan = compat.ensure_datasets_makefile(folder)

    if shutil.which("make") is None:
        assert plan.action is MakefileAction.SKIP_MAKE
        return
    assert plan.action is MakefileAction.WRITE
    assert plan.makefile == folder / "Makefile"
    assert plan.message is not None and str(folder) in plan.message
    # Exactly what megatron.training runs on rank 0 at start.
    result = subprocess.run(["make", "-C", str(folder)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert "No targets" not in result.stderr


def test_an_existing_makefile_is_not_touched(tmp_path: Path) -> None:
    folder = datasets_dir(tmp_path, makefile=True)
    before = (folder / "Makefile").read_text()

    plan = compat.ensure_datasets_makefile(folder)

    assert (folder / "Makefile").read_text() == before
    assert plan.message is None or shutil.which("make") is None


def test_read_only_install_skips_megatrons_make_and_says_how_to_fix_in_one_line(tmp_path: Path) -> None:
    folder = datasets_dir(tmp_path)

    plan = compat.plan_datasets_makefile(
        folder, makefile_exists=False, prebuilt_helper=True, writable=False, make_on_path=True
    )

    assert plan.action is MakefileAction.SKIP_MAKE
    assert plan.message is not None and "\n" not in plan.message
    assert "read-only" in plan.message
    assert f"> {folder / 'Makefile'}" in plan.message
    report = compat.CompatReport([], [plan.message], plan)
    assert report.skip_compile_helpers


def test_no_make_on_path_skips_megatrons_make(tmp_path: Path) -> None:
    plan = compat.plan_datasets_makefile(
        datasets_dir(tmp_path), makefile_exists=False, prebuilt_helper=True, writable=True, make_on_path=False
    )
    assert plan.action is MakefileAction.SKIP_MAKE
    assert plan.message is not None and "`make` is not on PATH" in plan.message


def test_no_makefile_and_no_prebuilt_helper_is_reported_as_broken(tmp_path: Path) -> None:
    plan = compat.plan_datasets_makefile(
        datasets_dir(tmp_path, helper=False), makefile_exists=False, prebuilt_helper=False,
        writable=True, make_on_path=True,
    )
    assert plan.action is MakefileAction.BROKEN
    assert plan.message is not None and "reinstall megatron-core" in plan.message


def test_without_megatron_installed_there_is_nothing_to_fix() -> None:
    plan = compat.ensure_datasets_makefile(None)
    assert plan.action is MakefileAction.NOT_FOUND
    assert plan.message is None


def test_prepare_combines_both_fixes(tmp_path: Path) -> None:
    folder = datasets_dir(tmp_path)

    report = compat.prepare(PROXY_ARGS, folder)

    assert "--no-gradient-accumulation-fusion" in report.argv  # no APEX on this machine
    assert report.argv[: len(PROXY_ARGS)] == PROXY_ARGS
    assert all(line.startswith("orchestrator.train: ") for line in report.messages)
    assert report.makefile.action in (MakefileAction.WRITE, MakefileAction.SKIP_MAKE)


# --------------------------------------------------------------------------- the entry, without megatron


def test_importing_the_entry_pulls_in_neither_megatron_nor_login_side_packages() -> None:
    heavy = ("torch", "megatron", "jinja2", "click", "submitit")
    result = run_python(
        "import sys, orchestrator.node.train; print(sorted(m for m in sys.argv[1:] if m in sys.modules))", *heavy
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_without_megatron_the_entry_prints_one_line_naming_the_package_and_the_install() -> None:
    code = (
        "import sys, runpy; sys.modules['megatron'] = None; "
        "runpy.run_module('orchestrator.train', run_name='__main__')"
    )
    result = run_python(code, *PROXY_ARGS)

    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.returncode == train.EXIT_MEGATRON_MISSING
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    assert lines[0].startswith("orchestrator.train: error: ")
    assert "megatron-core" in lines[0] and "pip install" in lines[0]
    assert result.stdout == ""


def test_missing_megatron_message_is_one_line_even_for_a_multi_line_error() -> None:
    message = compat.missing_megatron_message(ImportError("No module named 'megatron'\nmore detail"))
    assert "\n" not in message
    assert "No module named 'megatron'" in message
    assert "megatron-core>=0.17" in message


def test_unsupported_megatron_options_are_named() -> None:
    args = SimpleNamespace(sft=True, yaml_cfg=None, use_legacy_models=False)
    assert compat.unsupported_options(args) == [
        "orchestrator.train: error: --sft is not supported by the bundled entry (use Megatron-LM's pretrain_gpt.py)"
    ]
    assert compat.unsupported_options(SimpleNamespace()) == []


# --------------------------------------------------------------------------- version-drift helpers


def test_dataset_config_reads_megatron_argument_names_and_skips_fields_a_version_lacks() -> None:
    args = SimpleNamespace(
        seed=1234, seq_length=4096, split="99,1,0", data_cache_path=None, create_attention_mask_in_dataloader=True,
        reset_position_ids=False, reset_attention_mask=False, eod_mask_loss=False, mmap_bin_files=True,
    )
    fields = ["random_seed", "sequence_length", "split", "path_to_cache", "create_attention_mask",
              "reset_position_ids", "reset_attention_mask", "eod_mask_loss", "mmap_bin_files", "fast_cache_load"]

    kwargs = compat.dataset_config_kwargs(args, fields)

    assert kwargs == {
        "random_seed": 1234, "sequence_length": 4096, "split": "99,1,0", "path_to_cache": None,
        "create_attention_mask": True, "reset_position_ids": False, "reset_attention_mask": False,
        "eod_mask_loss": False, "mmap_bin_files": True,
    }  # fast_cache_load: args lack dataloader_fast_cache_load (older Megatron)


def test_supported_kwargs_drops_what_an_older_signature_does_not_take() -> None:
    def old(batch: dict, cp_group: object = None) -> None: ...

    def new(**kwargs: object) -> None: ...

    given = {"batch": {}, "cp_group": None, "is_hybrid_cp": False}
    assert compat.supported_kwargs(old, given) == {"batch": {}, "cp_group": None}
    assert compat.supported_kwargs(new, given) == given


# --------------------------------------------------------------------------- startup timing


def test_first_iteration_line_reports_the_startup_phases() -> None:
    clock = train.StartupClock(start=100.0)
    clock.marks.update(imported=104.0, model_start=107.5, model_built=109.0, first_iteration=160.25)

    assert clock.first_iteration_line() == (
        "orchestrator.train: first iteration after 60.2 s (imports 4.0 s, init 3.5 s, model build 1.5 s)"
    )
    assert clock.rest_line() == "orchestrator.train: optimizer + data setup + iteration 1 took 51.2 s"


def test_process_start_time_is_before_the_module_was_imported() -> None:
    result = run_python(
        "import time; t0 = time.time(); from orchestrator.node import train; "
        "print(train.process_start_time(t0) <= t0, t0 - train.process_start_time(t0) < 60)"
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["True", "True"]


def test_process_start_time_falls_back_off_linux(monkeypatch: pytest.MonkeyPatch) -> None:
    def unreadable(self: Path) -> str:
        raise OSError("no /proc")

    monkeypatch.setattr(Path, "read_text", unreadable)
    assert train.process_start_time(123.0) == 123.0


def test_first_iteration_hook_runs_once_after_the_first_step() -> None:
    calls: list[str] = []

    def train_step(iteration: int) -> int:
        calls.append(f"step {iteration}")
        return iteration * 2

    wrapped = train.call_once_after(train_step, lambda: calls.append("first iteration"))

    assert [wrapped(1), wrapped(2), wrapped(3)] == [2, 4, 6]
    assert calls == ["step 1", "first iteration", "step 2", "step 3"]
    assert wrapped.__name__ == "train_step"


def test_log_lines_come_from_rank_zero_only(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("RANK", "1")
    train.log("model built after 1.0 s")
    monkeypatch.setenv("RANK", "0")
    train.log("model built after 2.0 s")
    assert capsys.readouterr().out == "orchestrator.train: model built after 2.0 s\n"


def test_clock_marks_measure_from_the_start() -> None:
    clock = train.StartupClock(start=time.time() - 5.0)
    assert 5.0 <= clock.mark("imported") < 6.0
