"""The preflight payload on this machine, as one local rank (no Slurm): real gloo group of one."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from orchestrator.node import capabilities, preflight

ROOT = Path(__file__).resolve().parents[3]


def test_megatron_arguments_are_what_follows_the_entry() -> None:
    assert preflight.megatron_arguments(["python3", "-u", "-m", "orchestrator.train", "--a", "1"]) == ["--a", "1"]
    assert preflight.megatron_arguments(["torchrun", "pretrain_gpt.py", "--b"]) == ["--b"]
    assert preflight.megatron_arguments(["trainer", "--c", "2"]) == ["--c", "2"]


def test_expected_sum() -> None:
    assert [preflight.expected_sum(n) for n in (1, 4, 16)] == [1, 10, 136]


def test_megatron_check_is_skipped_with_the_reason_when_megatron_training_is_absent() -> None:
    absent = capabilities.Capability("megatron.training", False, "0.16.1",
                                     "megatron.training not importable here (megatron-core 0.16.1)")
    assert preflight.validate_megatron_args(["--num-layers", "3"], absent) == {
        "checked": False, "ok": None, "message": "megatron.training not importable here (megatron-core 0.16.1)"}


def test_single_local_rank_preflight_reports_one_json_line(tmp_path: Path) -> None:
    spec = tmp_path / "job.json"
    spec.write_text(json.dumps({"name": "pf", "command": ["python3", "-m", "orchestrator.train", "--num-layers", "3",
                                                          "--moe-token-dispatcher-type", "flex",
                                                          "--moe-enable-deepep"]}))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLURM_", "RANK", "WORLD_SIZE", "MASTER_"))}
    env.update(ORCH_LAUNCHER="local", MASTER_PORT="29731")
    proc = subprocess.run([sys.executable, "-m", "orchestrator.node", "--preflight", str(spec)], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120)
    reports = [json.loads(ln) for ln in proc.stdout.splitlines() if ln.startswith('{"preflight"')]
    assert proc.returncode == 0, proc.stderr
    assert len(reports) == 1
    r = reports[0]
    assert (r["ok"], r["rank"], r["world_size"], r["launcher"]) == (True, 0, 1, "local")
    assert r["allreduce"]["ok"] and r["allreduce"]["sum"] == 1 and r["allreduce"]["backend"] in ("gloo", "nccl")
    assert set(r["versions"]) >= {"orchestrator", "torch", "megatron-core", "transformer_engine", "deep_ep"}
    if not capabilities.probe_deepep().usable:
        assert "falls back to --moe-token-dispatcher-type alltoall" in r["dispatcher"]
    if not capabilities.probe_megatron_training().usable:
        assert r["megatron_args"]["message"].startswith("megatron.training not importable here")
    lacks = [line.split(":")[0] for line in r["lacks"]]        # what this environment (an image) lacks to train
    assert ("megatron-core >= 0.17 (Python >= 3.12) or a Megatron-LM checkout (profile.megatron_path)" in lacks) \
        == (not capabilities.probe_megatron_training().usable)
    assert ("DeepEP (deep_ep), or switches.deepep=false" in lacks) == (not capabilities.probe_deepep().usable)
    assert json.loads((tmp_path / "preflight" / "rank-0.json").read_text()) == r   # the file the CLI reads


def test_what_an_image_lacks_is_named_with_what_to_install() -> None:
    absent = capabilities.Capability("x", False, None, "not installed")
    caps = {"megatron.training": absent, "transformer_engine": absent, "deep_ep": absent}
    assert capabilities.missing(caps, deepep_wanted=False) == [
        "megatron-core >= 0.17 (Python >= 3.12) or a Megatron-LM checkout (profile.megatron_path): not installed",
        "Transformer Engine (transformer-engine[pytorch]): not installed"]
    assert len(capabilities.missing(caps, deepep_wanted=True)) == 3
    present = capabilities.Capability("x", True, "1.0")
    assert capabilities.missing(dict.fromkeys(caps, present), deepep_wanted=True) == []


def test_reports_glued_together_by_ranks_sharing_a_log_are_all_read() -> None:
    # seen in CI: two local ranks under `python -u` wrote '{...}{...}\n\n' into their shared log
    from orchestrator.observe.preflight_reports import report_objects
    r0, r1 = json.dumps({"preflight": "x", "rank": 0}), json.dumps({"preflight": "x", "rank": 1})
    assert report_objects(r0 + r1) == [{"preflight": "x", "rank": 0}, {"preflight": "x", "rank": 1}]
    assert report_objects("[default1]:" + r1 + "\n") == [{"preflight": "x", "rank": 1}]
    assert report_objects(r0[:20] + r1) == [{"preflight": "x", "rank": 1}]   # a cut one is skipped, not fatal
    assert report_objects("no report here") == []


def test_a_rank_whose_log_line_was_lost_is_read_from_its_file(tmp_path: Path) -> None:
    # seen in CI: 4 ranks on two nodes, 3 lines in the shared log; rank 1 had written its file
    from orchestrator.observe.preflight_reports import collect
    log = tmp_path / "logs" / "pf_7.log"
    log.parent.mkdir()
    lines = [json.dumps({"preflight": "x", "rank": r, "ok": True, "via": "log"}) for r in (0, 2, 3)]
    log.write_text("\n".join(lines) + "\n")
    preflight.write_report(preflight.report_path(str(tmp_path / "job.json"), 1),
                           {"preflight": "x", "rank": 1, "ok": True, "via": "file"})
    preflight.write_report(preflight.report_path(str(tmp_path / "job.json"), 2),
                           {"preflight": "x", "rank": 2, "ok": False, "via": "file"})
    found = collect(tmp_path, [str(log)])
    assert [(r["rank"], r["via"]) for r in found] == [(0, "log"), (1, "file"), (2, "file"), (3, "log")]
    assert found[2]["ok"] is False                          # a file wins over a line for the same rank
    assert not list((tmp_path / "preflight").glob(".*"))    # no partial files left behind


def test_a_report_that_cannot_be_written_is_said_and_not_raised(tmp_path: Path,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    blocker = tmp_path / "preflight"
    blocker.write_text("a file where the directory should be")
    preflight.write_report(preflight.report_path(str(tmp_path / "job.json"), 0), {"preflight": "x", "rank": 0})
    assert "cannot write" in capsys.readouterr().err


RECORD_WRITES = """
import sys, runpy
class Recorder:
    def __init__(self, inner): self.inner, self.writes = inner, []
    def write(self, text): self.writes.append(text); return self.inner.write(text)
    def __getattr__(self, name): return getattr(self.inner, name)
sys.stdout = rec = Recorder(sys.stdout)
sys.argv = ["preflight", sys.argv[1]]
try:
    runpy.run_module("orchestrator.node.preflight", run_name="__main__")
finally:
    print(repr([w for w in rec.writes if "preflight" in w or w == "\\n"]), file=sys.stderr)
"""


def test_the_report_line_and_its_newline_are_one_write(tmp_path: Path) -> None:
    # ranks appending to one log cannot split a line written at once; under `python -u` print() makes two writes
    spec = tmp_path / "job.json"
    spec.write_text(json.dumps({"name": "pf", "command": ["python3", "-m", "orchestrator.train"]}))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLURM_", "RANK", "WORLD_SIZE", "MASTER_"))}
    env.update(ORCH_LAUNCHER="local", MASTER_ADDR="127.0.0.1", MASTER_PORT="29733", RANK="0", WORLD_SIZE="1",
               LOCAL_RANK="0", LOCAL_WORLD_SIZE="1")
    proc = subprocess.run([sys.executable, "-u", "-c", RECORD_WRITES, str(spec)], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120)
    writes = eval(proc.stderr.strip().splitlines()[-1])  # noqa: S307 - our own repr() of a list of str
    [report] = [w for w in writes if w.startswith('{"preflight"')]
    assert report.endswith("}\n") and json.loads(report)["rank"] == 0 and "\n" not in writes


def test_preflight_names_the_numactl_a_configured_bindpcie_needs(tmp_path: Path) -> None:
    """bindpcie execs numactl; on a node without numactl the rank would exit 127. The preflight rank binds with the
    built-in fallback, passes, and its report and binding line name what is missing."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    wrapper = bin_dir / "bindpcie"
    wrapper.write_text('#!/bin/sh\nexec numactl --cpunodebind=0 --membind=0 -- "$@"\n')
    wrapper.chmod(0o755)
    spec = tmp_path / "job.json"
    spec.write_text(json.dumps({"name": "pf", "bindpcie": str(wrapper),
                                "command": ["python3", "-m", "orchestrator.train", "--num-layers", "3"]}))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLURM_", "RANK", "WORLD_SIZE", "MASTER_"))}
    env.update(ORCH_LAUNCHER="local", MASTER_PORT="29733", PATH=str(bin_dir))   # no numactl on this PATH
    proc = subprocess.run([sys.executable, "-m", "orchestrator.node", "--preflight", str(spec)], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    report = next(json.loads(ln) for ln in proc.stdout.splitlines() if ln.startswith('{"preflight"'))
    assert any(line.startswith("bindpcie (profile.bindpcie_path): numactl not found") for line in report["lacks"])
    assert "numactl not found (bindpcie execs it" in proc.stderr and "built-in binding instead" in proc.stderr
